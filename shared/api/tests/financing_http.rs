//! The financing flow end to end in-process: the scan-submit, bank-desk and product routers on
//! the embedded table and queues, with real bank tokens (DevIssuer) and real applicant sessions
//! (POST /v1/applicant/login through the development WeChat exchange). Loan codes, refused
//! submissions that leave nothing behind, idempotent retries, token separation, and the desk:
//! offers, at most three claims, progress, release and what each bank may see.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use puhui_api::applicant::{self, ApplicantApi};
use puhui_api::desk::{self, DeskApi};
use puhui_api::events;
use puhui_api::products::{self, ProductsApi};
use puhui_domain::{ApplicantId, BankId};
use puhui_edge::auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER};
use puhui_edge::{AuthConfig, Authenticator, Sessions};
use puhui_embedded::{QueueConfig, SqliteQueue, SqliteTable};
use puhui_outbound::wechat::DevWeChat;
use puhui_ports::{Clock, Queue, ReceivedMessage, SystemClock, UlidGenerator, WeChatIdentity};
use puhui_samplekit::tokens::DevIssuer;
use puhui_services::financing::{DispatchService, FinancingConfig, FinancingPorts};
use puhui_services::outbox::Destination;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The firm of every submission: registered in division 350100 (Fuzhou).
const USCC: &str = "91350100M000100Y43";
/// The applicant's verified phone.
const PHONE: &str = "13812345678";
const PHONE_CODE: &str = "dev-phone:86-13812345678";
const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

/// Banks A–E serve the firm's region; F does not.
const A: &str = "nbcb";
const B: &str = "icbc-nb";
const C: &str = "ccb-nb";
const D: &str = "boc-nb";
const E: &str = "abc-nb";
const F: &str = "czbank";
const NAMES: [(&str, &str); 5] = [
    (A, "宁波银行"),
    (B, "工商银行宁波分行"),
    (C, "建设银行宁波分行"),
    (D, "中国银行宁波分行"),
    (E, "农业银行宁波分行"),
];

struct App {
    app: Router,
    issuer: DevIssuer,
    sessions: Arc<Sessions>,
    demand_queue: Arc<SqliteQueue>,
    notify_queue: Arc<SqliteQueue>,
    dispatch: DispatchService,
    _dir: PathBuf,
}

struct Reply {
    status: StatusCode,
    content_type: String,
    headers: axum::http::HeaderMap,
    text: String,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

fn app() -> App {
    let dir = std::env::temp_dir().join(format!("puhui-financing-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let table = Arc::new(SqliteTable::open(dir.join("table.db")).unwrap());
    let queue = |name: &str| {
        let config = QueueConfig {
            max_receives: 5,
            fifo: false,
        };
        Arc::new(SqliteQueue::open(dir.join("queues.db"), name, config, clock.clone()).unwrap())
    };
    let demand_queue = queue("demand-submitted");
    let notify_queue = queue("notifications");
    let mut queues: HashMap<Destination, Arc<dyn Queue>> = HashMap::new();
    queues.insert(Destination::DemandSubmitted, demand_queue.clone());
    queues.insert(Destination::Notifications, notify_queue.clone());
    let mut config = FinancingConfig::default();
    for (id, name) in NAMES {
        config
            .bank_names
            .insert(BankId::parse(id).unwrap(), name.to_owned());
    }
    let ports = FinancingPorts::new(
        table.clone(),
        clock,
        Arc::new(UlidGenerator::default()),
        queues,
        config,
    );
    let issuer = DevIssuer::generate().unwrap();
    let auth = Arc::new(
        Authenticator::new(AuthConfig {
            issuer: DEFAULT_ISSUER.into(),
            audience: DEFAULT_AUDIENCE.into(),
            algorithm: jsonwebtoken::Algorithm::ES256,
            jwks: serde_json::from_str(&issuer.jwks_json()).unwrap(),
        })
        .unwrap(),
    );
    let sessions = Arc::new(Sessions::new(&[42u8; 32], Duration::from_secs(1800)).unwrap());
    let wechat: Arc<dyn WeChatIdentity> = Arc::new(DevWeChat::new());
    let routes = applicant::routes(ApplicantApi::new(ports.clone(), wechat, sessions.clone()))
        .merge(desk::routes(DeskApi::new(ports.clone(), auth.clone())))
        .merge(products::routes(ProductsApi::new(table, auth)));
    App {
        app: puhui_api::finish(routes, 64 * 1024),
        issuer,
        sessions,
        demand_queue,
        notify_queue,
        dispatch: DispatchService::new(ports),
        _dir: dir,
    }
}

fn product(regions: Value) -> Value {
    json!({"name": "Tax-credit loan", "product_type": "credit",
           "amount": {"min": 1_000_000, "max": 500_000_000}, "term_months": {"min": 1, "max": 36},
           "annual_rate_bp": {"min": 400, "max": 900}, "regions": regions,
           "valid_from": "2025-01-01"})
}

fn submission(code: &str) -> Value {
    let accepted_at = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    json!({"loan_code": code, "uscc": USCC, "firm_name": "福州闽江机械有限公司",
           "applicant_role": "legal_representative", "amount": 50_000_000, "term_months": 12,
           "purpose": "采购原材料", "collateral": false,
           "consent": {"accepted": true, "text_version": "auth-v3", "accepted_at": accepted_at}})
}

fn assert_problem(r: &Reply, status: u16, field: Option<&str>) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert_eq!(r.content_type, "application/problem+json", "{}", r.text);
    assert_eq!(r.body["status"], status, "{}", r.text);
    assert!(
        r.body["type"].as_str().unwrap().starts_with("/problems/"),
        "{}",
        r.text
    );
    assert!(!r.body["detail"].as_str().unwrap().is_empty());
    if let Some(f) = field {
        let fields: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors[] in {}", r.text))
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&f), "{f} not in {fields:?}: {}", r.text);
    }
}

fn assert_status(r: &Reply, status: u16) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
}

impl App {
    fn bank(&self, bank: &str, roles: &[&str]) -> String {
        self.issuer
            .bank_token(&format!("{bank}-staff"), bank, roles, 600)
            .unwrap()
    }

    /// Platform staff: no bank_id claim.
    fn platform(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        self.issuer
            .sign(&json!({"iss": DEFAULT_ISSUER, "aud": DEFAULT_AUDIENCE, "sub": "ops-1",
                          "roles": ["platform_admin"], "iat": now, "nbf": now - 5, "exp": now + 600}))
            .unwrap()
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let content_type = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            headers,
            text,
            body,
        }
    }

    async fn get(&self, uri: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, uri, token, &[], Body::empty()).await
    }

    async fn post(&self, uri: &str, token: Option<&str>, body: &Value) -> Reply {
        self.call(Method::POST, uri, token, JSON, Body::from(body.to_string()))
            .await
    }

    async fn login(&self, name: &str, phone_code: Option<&str>) -> Reply {
        let mut body = json!({"code": format!("dev:{name}")});
        if let Some(p) = phone_code {
            body["phone_code"] = json!(p);
        }
        self.post("/v1/applicant/login", None, &body).await
    }

    /// A logged-in applicant with the verified phone [`PHONE`]; returns the session token.
    async fn applicant(&self, name: &str) -> String {
        let r = self.login(name, Some(PHONE_CODE)).await;
        assert_status(&r, 200);
        assert_eq!(r.body["phone_verified"], true);
        assert_eq!(r.body["phone"], "138****5678");
        r.body["token"].as_str().unwrap().to_owned()
    }

    /// Creates and lists a product of `bank`; returns its id.
    async fn listed_product(&self, bank: &str, regions: Value) -> String {
        let t = self.bank(bank, &["product_admin"]);
        let created = self.post("/v1/products", Some(&t), &product(regions)).await;
        assert_status(&created, 201);
        let id = created.body["id"].as_str().unwrap().to_owned();
        let listed = self
            .call(
                Method::POST,
                &format!("/v1/products/{id}/list"),
                Some(&t),
                &[],
                Body::empty(),
            )
            .await;
        assert_status(&listed, 200);
        assert_eq!(listed.body["status"], "listed");
        id
    }

    async fn create_code(&self, token: &str, draft: &Value) -> Reply {
        self.post("/v1/desk/loan-codes", Some(token), draft).await
    }

    async fn submit(&self, token: &str, body: &Value, key: Option<&str>) -> Reply {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(k) = key {
            headers.push(("idempotency-key", k));
        }
        self.call(
            Method::POST,
            "/v1/applicant/demands",
            Some(token),
            &headers,
            Body::from(body.to_string()),
        )
        .await
    }

    /// Receives (and hides) every visible message of a queue.
    async fn receive_all(queue: &SqliteQueue) -> Vec<ReceivedMessage> {
        let mut all = Vec::new();
        loop {
            let batch = queue.receive(10, Duration::from_secs(60)).await.unwrap();
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }

    /// Drains the demand queue through the demand-dispatch handler; returns how many messages.
    async fn drain_dispatch(&self) -> usize {
        let received = Self::receive_all(&self.demand_queue).await;
        let mut event = SqsEvent::default();
        event.records = received
            .iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = Some(m.id.clone());
                record.receipt_handle = Some(m.receipt.clone());
                record.body = Some(m.body.clone());
                record
            })
            .collect();
        let response = events::dispatch_batch(&self.dispatch, event).await.unwrap();
        assert!(
            response.batch_item_failures.is_empty(),
            "dispatch failed for {:?}",
            response.batch_item_failures
        );
        for m in &received {
            self.demand_queue.delete(&m.receipt).await.unwrap();
        }
        received.len()
    }
}

#[tokio::test]
async fn loan_codes_are_issued_by_the_right_people_and_resolve_for_anyone() {
    let h = app();
    let a_admin = h.bank(A, &["product_admin"]);
    let product_a = h.listed_product(A, json!(["350100"])).await;
    let product_b = h.listed_product(B, json!(["350100"])).await;

    // A bank's product admin issues codes for its own bank, named or implied.
    let own = h
        .create_code(
            &a_admin,
            &json!({"id": "nbcb-yz-2026", "branch": "鄞州支行", "product_id": product_a,
                    "campaign": "spring"}),
        )
        .await;
    assert_status(&own, 201);
    assert_eq!(own.body["id"], "nbcb-yz-2026");
    assert_eq!(own.body["bank_id"], A);
    assert_eq!(own.body["product_id"].as_str(), Some(product_a.as_str()));
    assert_eq!(own.body["created_by"], format!("{A}-staff"));
    let named = h
        .create_code(&a_admin, &json!({"id": "nbcb-named", "bank_id": A}))
        .await;
    assert_status(&named, 201);
    assert_eq!(named.body["bank_id"], A);
    let generated = h.create_code(&a_admin, &json!({})).await;
    assert_status(&generated, 201);
    assert!(!generated.body["id"].as_str().unwrap().is_empty());

    // ...but never for another bank, nor with another bank's product.
    let other = h
        .create_code(&a_admin, &json!({"id": "nbcb-for-icbc", "bank_id": B}))
        .await;
    assert_problem(&other, 403, None);
    assert_problem(
        &h.get("/v1/loan-codes/nbcb-for-icbc", None).await,
        404,
        None,
    );
    let foreign_product = h
        .create_code(
            &a_admin,
            &json!({"id": "nbcb-foreign", "product_id": product_b}),
        )
        .await;
    assert_problem(&foreign_product, 422, Some("product_id"));

    // Platform staff issue platform codes and codes for any bank.
    let platform = h.platform();
    let p_code = h.create_code(&platform, &json!({"id": "puhui-2026"})).await;
    assert_status(&p_code, 201);
    assert!(p_code.body["bank_id"].is_null(), "{}", p_code.text);
    let p_for_b = h
        .create_code(
            &platform,
            &json!({"id": "puhui-icbc", "bank_id": B, "product_id": product_b}),
        )
        .await;
    assert_status(&p_for_b, 201);
    assert_eq!(p_for_b.body["bank_id"], B);
    // A platform code cannot advertise a product (no bank to own it).
    assert_problem(
        &h.create_code(
            &platform,
            &json!({"id": "puhui-prod", "product_id": product_a}),
        )
        .await,
        422,
        Some("product_id"),
    );

    // Loan officers (and risk admins) may not issue codes.
    for roles in [&["loan_officer"][..], &["risk_admin"][..]] {
        let t = h.bank(A, roles);
        assert_problem(
            &h.create_code(&t, &json!({"id": "officer-code"})).await,
            403,
            None,
        );
        assert_problem(&h.get("/v1/desk/loan-codes", Some(&t)).await, 403, None);
    }
    assert_problem(&h.get("/v1/loan-codes/officer-code", None).await, 404, None);

    // A scene is used once, whoever asks.
    assert_problem(
        &h.create_code(&a_admin, &json!({"id": "nbcb-yz-2026"}))
            .await,
        409,
        None,
    );
    assert_problem(
        &h.create_code(&platform, &json!({"id": "nbcb-yz-2026"}))
            .await,
        409,
        None,
    );

    // Scenes WeChat would refuse, and inverted validity.
    for scene in ["a".repeat(33), "ab c".to_owned(), "贷款码".to_owned()] {
        assert_problem(
            &h.create_code(&a_admin, &json!({"id": scene})).await,
            422,
            Some("id"),
        );
    }
    assert_problem(
        &h.create_code(
            &a_admin,
            &json!({"id": "nbcb-inverted", "valid_from": "2026-12-01T00:00:00Z",
                    "valid_to": "2026-11-01T00:00:00Z"}),
        )
        .await,
        422,
        Some("valid_to"),
    );
    assert_problem(
        &h.get("/v1/loan-codes/nbcb-inverted", None).await,
        404,
        None,
    );
    assert_problem(
        &h.create_code(&a_admin, &json!({"id": "nbcb-x", "colour": "red"}))
            .await,
        422,
        None,
    );

    // Anyone resolves a code: issuer, and for a bank code its listed product.
    let scan = h.get("/v1/loan-codes/nbcb-yz-2026", None).await;
    assert_status(&scan, 200);
    assert_eq!(scan.body["id"], "nbcb-yz-2026");
    assert_eq!(scan.body["issuer"]["kind"], "bank");
    assert_eq!(scan.body["issuer"]["bank_id"], A);
    assert_eq!(scan.body["issuer"]["bank_name"], "宁波银行");
    assert_eq!(scan.body["issuer"]["branch"], "鄞州支行");
    assert_eq!(scan.body["campaign"], "spring");
    assert_eq!(scan.body["active"], true);
    let products = scan.body["products"].as_array().unwrap();
    assert_eq!(products.len(), 1, "{}", scan.text);
    assert_eq!(products[0]["id"].as_str(), Some(product_a.as_str()));
    let scan = h.get("/v1/loan-codes/puhui-icbc", None).await;
    assert_eq!(scan.body["issuer"]["bank_id"], B);
    assert_eq!(
        scan.body["products"][0]["id"].as_str(),
        Some(product_b.as_str())
    );
    let scan = h.get("/v1/loan-codes/puhui-2026", None).await;
    assert_status(&scan, 200);
    assert_eq!(scan.body["issuer"]["kind"], "platform");
    assert!(
        scan.body["issuer"].get("bank_id").is_none(),
        "{}",
        scan.text
    );
    assert_eq!(scan.body["products"], json!([]));

    assert_problem(&h.get("/v1/loan-codes/no-such-code", None).await, 404, None);
    assert_problem(
        &h.get(&format!("/v1/loan-codes/{}", "a".repeat(33)), None)
            .await,
        400,
        Some("path.id"),
    );
    assert_problem(
        &h.get("/v1/loan-codes/ab%20c", None).await,
        400,
        Some("path.id"),
    );

    // Each issuer lists its own codes.
    let mine = h.get("/v1/desk/loan-codes", Some(&a_admin)).await;
    assert_status(&mine, 200);
    let ids: Vec<&str> = mine.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"nbcb-yz-2026") && ids.contains(&"nbcb-named"));
    assert_eq!(ids.len(), 3, "{ids:?}");
    let theirs = h.get("/v1/desk/loan-codes", Some(&platform)).await;
    let ids: Vec<&str> = theirs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["puhui-2026"]);
}

#[tokio::test]
async fn refused_submissions_write_nothing() {
    let h = app();
    let admin = h.bank(A, &["product_admin"]);
    assert_status(&h.create_code(&admin, &json!({"id": "nbcb-yz"})).await, 201);
    assert_status(
        &h.create_code(
            &admin,
            &json!({"id": "nbcb-old", "valid_from": "2020-01-01T00:00:00Z",
                    "valid_to": "2020-06-30T00:00:00Z"}),
        )
        .await,
        201,
    );
    assert_status(
        &h.create_code(
            &admin,
            &json!({"id": "nbcb-later", "valid_from": "2030-01-01T00:00:00Z"}),
        )
        .await,
        201,
    );
    let alice = h.applicant("alice").await;

    type Breaks = fn(&mut Value);
    let cases: [(&str, u16, Breaks); 12] = [
        ("uscc", 422, |s| s["uscc"] = json!("91350100M000100Y44")),
        ("uscc", 422, |s| s["uscc"] = json!("91350100M000100Y4")),
        ("amount", 422, |s| s["amount"] = json!(0)),
        ("amount", 422, |s| s["amount"] = json!(1_000_000_001i64)),
        ("term_months", 422, |s| s["term_months"] = json!(0)),
        ("consent.accepted", 422, |s| {
            s["consent"]["accepted"] = json!(false)
        }),
        ("loan_code", 422, |s| s["loan_code"] = json!("no-such-code")),
        ("loan_code", 422, |s| s["loan_code"] = json!("nbcb-old")),
        ("loan_code", 422, |s| s["loan_code"] = json!("nbcb-later")),
        ("phone", 422, |s| s["phone"] = json!(PHONE)),
        ("firm_name", 422, |s| {
            s.as_object_mut().unwrap().remove("firm_name");
        }),
        ("consent.accepted_at", 422, |s| {
            s["consent"]["accepted_at"] = json!("2099-01-01T00:00:00Z")
        }),
    ];
    for (field, status, breaks) in cases {
        let mut body = submission("nbcb-yz");
        breaks(&mut body);
        let r = h.submit(&alice, &body, None).await;
        assert_problem(&r, status, Some(field));
    }
    // The amount cap is inclusive: exactly ¥10 million is not refused for its amount (it is
    // refused here only because the term is broken, so nothing is written).
    let mut at_cap = submission("nbcb-yz");
    at_cap["amount"] = json!(1_000_000_000i64);
    at_cap["term_months"] = json!(0);
    let r = h.submit(&alice, &at_cap, None).await;
    assert_problem(&r, 422, Some("term_months"));
    assert!(
        !r.text.contains("\"field\":\"amount\""),
        "the cap itself is allowed: {}",
        r.text
    );

    // Bodies that are not a submission at all.
    let mut huge = submission("nbcb-yz");
    huge["purpose"] = json!("x".repeat(1024 * 1024));
    assert_problem(&h.submit(&alice, &huge, None).await, 413, None);
    let not_json = h
        .call(
            Method::POST,
            "/v1/applicant/demands",
            Some(&alice),
            JSON,
            Body::from("{\"loan_code\": \"nbcb-yz\", "),
        )
        .await;
    assert_problem(&not_json, 400, Some("body"));
    let form = h
        .call(
            Method::POST,
            "/v1/applicant/demands",
            Some(&alice),
            &[("content-type", "application/x-www-form-urlencoded")],
            Body::from(submission("nbcb-yz").to_string()),
        )
        .await;
    assert_problem(&form, 400, Some("content-type"));
    let bad_key = h
        .submit(&alice, &submission("nbcb-yz"), Some("has spaces in it"))
        .await;
    assert_problem(&bad_key, 400, Some("header.idempotency-key"));

    // A phone outside the mainland is refused at login and at verification.
    let hk = h.login("hk_user", Some("dev-phone:852-91234567")).await;
    assert_problem(&hk, 422, Some("phone_code"));
    let bad_code = h.login("hk_user", Some("not-a-phone-code")).await;
    assert_problem(&bad_code, 422, Some("phone_code"));
    let bad_login = h.login("a b", None).await;
    assert_problem(&bad_login, 422, Some("code"));

    // Logged in without a phone: the submission is refused for the phone.
    let bob = h.login("bob", None).await;
    assert_status(&bob, 200);
    assert_eq!(bob.body["phone_verified"], false);
    assert!(bob.body.get("phone").is_none(), "{}", bob.text);
    let bob = bob.body["token"].as_str().unwrap().to_owned();
    let verify_hk = h
        .post(
            "/v1/applicant/phone",
            Some(&bob),
            &json!({"code": "dev-phone:852-91234567"}),
        )
        .await;
    assert_problem(&verify_hk, 422, Some("phone_code"));
    assert_problem(
        &h.submit(&bob, &submission("nbcb-yz"), None).await,
        422,
        Some("phone"),
    );

    // Nothing was written: no demands, and no message on either queue.
    for token in [&alice, &bob] {
        let mine = h.get("/v1/applicant/demands", Some(token)).await;
        assert_status(&mine, 200);
        assert_eq!(mine.body["items"], json!([]), "{}", mine.text);
    }
    assert!(App::receive_all(&h.demand_queue).await.is_empty());
    assert!(App::receive_all(&h.notify_queue).await.is_empty());

    // A refused attempt does not poison its payload: once the phone is verified the same
    // request goes through.
    let verified = h
        .post(
            "/v1/applicant/phone",
            Some(&bob),
            &json!({"code": PHONE_CODE}),
        )
        .await;
    assert_status(&verified, 200);
    assert_eq!(verified.body["phone"], "138****5678");
    assert_status(&h.submit(&bob, &submission("nbcb-yz"), None).await, 201);
}

#[tokio::test]
async fn a_good_submission_is_written_once_and_replayed_on_retry() {
    let h = app();
    let admin = h.bank(A, &["product_admin"]);
    assert_status(&h.create_code(&admin, &json!({"id": "nbcb-yz"})).await, 201);
    let alice = h.applicant("alice").await;
    let body = submission("nbcb-yz");

    let first = h.submit(&alice, &body, Some("submit-0001")).await;
    assert_status(&first, 201);
    assert_eq!(first.content_type, "application/json");
    let id = first.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        first.header("location"),
        Some(format!("/v1/applicant/demands/{id}").as_str())
    );
    assert!(first.header("idempotent-replayed").is_none());
    assert_eq!(first.body["status"], "submitted");
    assert_eq!(first.body["phone"], "138****5678");
    assert_eq!(first.body["uscc"], USCC);
    assert_eq!(first.body["amount"], 50_000_000);
    assert_eq!(first.body["claims"], json!([]));
    assert!(
        !first.text.contains(PHONE),
        "the applicant's view masks the phone"
    );

    let again = h.submit(&alice, &body, Some("submit-0001")).await;
    assert_status(&again, 201);
    assert_eq!(again.body["id"].as_str(), Some(id.as_str()));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.header("location"), first.header("location"));

    // The key cannot be reused for another request.
    let mut other = body.clone();
    other["amount"] = json!(60_000_000);
    assert_problem(
        &h.submit(&alice, &other, Some("submit-0001")).await,
        422,
        Some("header.idempotency-key"),
    );

    let mine = h.get("/v1/applicant/demands", Some(&alice)).await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);
    let one = h
        .get(&format!("/v1/applicant/demands/{id}"), Some(&alice))
        .await;
    assert_status(&one, 200);
    assert_eq!(one.body["id"].as_str(), Some(id.as_str()));

    let queued = App::receive_all(&h.demand_queue).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    let message: Value = serde_json::from_str(&queued[0].body).unwrap();
    assert_eq!(message, json!({"demand_id": id}));
    assert!(App::receive_all(&h.notify_queue).await.is_empty());
}

#[tokio::test]
async fn applicant_sessions_and_bank_tokens_are_not_interchangeable() {
    let h = app();
    let alice = h.applicant("alice").await;
    let some_id = ulid::Ulid::new().to_string();
    let progress = json!({"stage": "contacted"});
    let draft_code = json!({"id": "nbcb-x"});
    let draft_product = product(json!([]));
    let empty = json!(null);
    // (method, path, body) of every bank route.
    let bank_routes: Vec<(Method, String, &Value)> = vec![
        (Method::GET, "/v1/desk/demands".into(), &empty),
        (Method::GET, format!("/v1/desk/demands/{some_id}"), &empty),
        (
            Method::POST,
            format!("/v1/desk/demands/{some_id}/claim"),
            &empty,
        ),
        (
            Method::POST,
            format!("/v1/desk/demands/{some_id}/progress"),
            &progress,
        ),
        (
            Method::POST,
            format!("/v1/desk/demands/{some_id}/release"),
            &empty,
        ),
        (Method::GET, "/v1/desk/loan-codes".into(), &empty),
        (Method::POST, "/v1/desk/loan-codes".into(), &draft_code),
        (Method::GET, "/v1/products".into(), &empty),
        (Method::POST, "/v1/products".into(), &draft_product),
        (Method::GET, format!("/v1/products/{some_id}"), &empty),
    ];
    let submit = submission("nbcb-x");
    let phone = json!({"code": PHONE_CODE});
    let applicant_routes: Vec<(Method, String, &Value)> = vec![
        (Method::GET, "/v1/applicant/demands".into(), &empty),
        (Method::POST, "/v1/applicant/demands".into(), &submit),
        (
            Method::GET,
            format!("/v1/applicant/demands/{some_id}"),
            &empty,
        ),
        (Method::POST, "/v1/applicant/phone".into(), &phone),
    ];
    let send = |method: Method, path: String, token: Option<String>, body: &Value| {
        let body = if body.is_null() {
            Body::empty()
        } else {
            Body::from(body.to_string())
        };
        let h = &h;
        async move { h.call(method, &path, token.as_deref(), JSON, body).await }
    };

    // Controls: each token works where it belongs.
    assert_status(&h.get("/v1/applicant/demands", Some(&alice)).await, 200);
    let officer = h.bank(A, &["loan_officer"]);
    assert_status(&h.get("/v1/desk/demands", Some(&officer)).await, 200);

    for (method, path, body) in &bank_routes {
        let r = send(method.clone(), path.clone(), Some(alice.clone()), body).await;
        assert_problem(&r, 401, None);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{path}");
        assert_problem(
            &send(method.clone(), path.clone(), None, body).await,
            401,
            None,
        );
    }
    let bank_tokens = [
        h.bank(A, &["product_admin"]),
        h.bank(A, &["loan_officer"]),
        h.bank(A, &["risk_admin"]),
        h.bank(A, &["platform_admin"]),
        h.bank(A, &["product_admin", "loan_officer", "platform_admin"]),
        h.platform(),
    ];
    for (method, path, body) in &applicant_routes {
        for token in &bank_tokens {
            let r = send(method.clone(), path.clone(), Some(token.clone()), body).await;
            assert_problem(&r, 401, None);
        }
        assert_problem(
            &send(method.clone(), path.clone(), None, body).await,
            401,
            None,
        );
    }

    // An expired session of a real applicant, a session under another secret, and junk.
    let who: ApplicantId = h.sessions.verify(&alice).unwrap();
    let (expired, _) = h
        .sessions
        .issue(&who, chrono::Utc::now() - chrono::Duration::hours(2))
        .unwrap();
    let (foreign, _) = Sessions::new(&[7u8; 32], Duration::from_secs(600))
        .unwrap()
        .issue(&who, chrono::Utc::now())
        .unwrap();
    for token in [expired, foreign, "not.a.jwt".to_owned()] {
        for (method, path, body) in &applicant_routes {
            let r = send(method.clone(), path.clone(), Some(token.clone()), body).await;
            assert_problem(&r, 401, None);
        }
    }
    let expired_bank = h
        .issuer
        .bank_token("u1", A, &["loan_officer"], -3600)
        .unwrap();
    assert_problem(
        &h.get("/v1/desk/demands", Some(&expired_bank)).await,
        401,
        None,
    );
}

#[tokio::test]
async fn the_desk_offers_claims_progress_and_releases() {
    let h = app();
    let product_a = h.listed_product(A, json!(["350100"])).await;
    h.listed_product(B, json!(["350100"])).await;
    h.listed_product(C, json!(["350000"])).await;
    h.listed_product(D, json!(["350100"])).await;
    h.listed_product(E, json!([])).await;
    h.listed_product(F, json!(["330200"])).await;
    assert_status(
        &h.create_code(
            &h.bank(A, &["product_admin"]),
            &json!({"id": "nbcb-fz", "product_id": product_a}),
        )
        .await,
        201,
    );
    let alice = h.applicant("alice").await;
    let submitted = h.submit(&alice, &submission("nbcb-fz"), None).await;
    assert_status(&submitted, 201);
    let id = submitted.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/desk/demands/{id}");

    // Before dispatch nobody is offered it.
    let officer = |bank: &str| h.bank(bank, &["loan_officer"]);
    assert_problem(&h.get(&path, Some(&officer(A))).await, 404, None);

    assert_eq!(h.drain_dispatch().await, 1);
    assert!(App::receive_all(&h.demand_queue).await.is_empty());
    let view = h
        .get(&format!("/v1/applicant/demands/{id}"), Some(&alice))
        .await;
    assert_eq!(view.body["status"], "offered", "{}", view.text);
    assert_eq!(view.body["offered_banks"], 5, "{}", view.text);

    // Bank A (the issuer) sees the offer first, with its product.
    let listed = h.get("/v1/desk/demands", Some(&officer(A))).await;
    assert_status(&listed, 200);
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", listed.text);
    assert_eq!(items[0]["demand_id"].as_str(), Some(id.as_str()));
    assert_eq!(items[0]["bank_id"], A);
    assert_eq!(items[0]["rank"], 1);
    assert_eq!(items[0]["issuing_bank"], true);
    assert_eq!(
        items[0]["products"][0]["product_id"].as_str(),
        Some(product_a.as_str())
    );
    assert!(!listed.text.contains(PHONE), "offers carry no phone");
    // Only loan officers work the desk.
    assert_problem(
        &h.get("/v1/desk/demands", Some(&h.bank(A, &["product_admin"])))
            .await,
        403,
        None,
    );
    assert_problem(
        &h.get("/v1/desk/demands?state=lost", Some(&officer(A)))
            .await,
        422,
        Some("state"),
    );

    // A bank with no matching product cannot see or claim it.
    assert_problem(&h.get(&path, Some(&officer(F))).await, 404, None);
    assert_problem(
        &h.post(&format!("{path}/claim"), Some(&officer(F)), &json!(null))
            .await,
        404,
        None,
    );
    let f_list = h.get("/v1/desk/demands", Some(&officer(F))).await;
    assert_eq!(f_list.body["items"], json!([]));
    // Nor can anyone see a demand that does not exist.
    let unknown = ulid::Ulid::new().to_string();
    assert_problem(
        &h.get(&format!("/v1/desk/demands/{unknown}"), Some(&officer(A)))
            .await,
        404,
        None,
    );

    // Before claiming, the phone is masked.
    let a_before = h.get(&path, Some(&officer(A))).await;
    assert_status(&a_before, 200);
    assert_eq!(a_before.body["phone"], "138****5678");
    assert_eq!(a_before.body["slots_left"], 3);
    assert!(a_before.body.get("claim").is_none());

    // Three banks claim; a repeat is the same claim; a fourth is refused.
    let claim = |bank: &'static str| {
        let h = &h;
        let path = path.clone();
        async move {
            h.call(
                Method::POST,
                &format!("{path}/claim"),
                Some(&h.bank(bank, &["loan_officer"])),
                &[],
                Body::empty(),
            )
            .await
        }
    };
    let a_claim = claim(A).await;
    assert_status(&a_claim, 201);
    assert_eq!(a_claim.body["bank_id"], A);
    assert_eq!(a_claim.body["stage"], "claimed");
    assert_status(&claim(B).await, 201);
    assert_status(&claim(C).await, 201);
    let a_again = claim(A).await;
    assert_status(&a_again, 200);
    assert_eq!(a_again.body, a_claim.body, "the same claim");
    assert_problem(&claim(D).await, 409, None);
    assert_problem(&claim(E).await, 409, None);

    // A sees its claim and the full phone; D sees neither anyone's claim nor the phone.
    let a_view = h.get(&path, Some(&officer(A))).await;
    assert_status(&a_view, 200);
    assert_eq!(a_view.body["phone"], PHONE);
    assert_eq!(a_view.body["phone"].as_str().unwrap().len(), 11);
    assert_eq!(a_view.body["claim"]["bank_id"], A);
    assert_eq!(a_view.body["claim_stage"], "claimed");
    assert_eq!(a_view.body["slots_left"], 0);
    let d_view = h.get(&path, Some(&officer(D))).await;
    assert_status(&d_view, 200);
    assert_eq!(d_view.body["phone"], "138****5678");
    assert!(!d_view.text.contains(PHONE));
    assert!(d_view.body.get("claim").is_none(), "{}", d_view.text);
    assert!(d_view.body.get("claim_stage").is_none(), "{}", d_view.text);
    assert_eq!(d_view.body["bank_id"], D);
    for other in [A, B, C] {
        assert!(
            !d_view.text.contains(&format!("\"{other}\"")),
            "{other} leaks to {D}: {}",
            d_view.text
        );
    }
    // A's view names no other bank either.
    for other in [B, C, D] {
        assert!(
            !a_view.text.contains(&format!("\"{other}\"")),
            "{}",
            a_view.text
        );
    }

    // Progress: one step at a time; approval needs amount and rate.
    let progress = |bank: &'static str, update: Value| {
        let h = &h;
        let path = path.clone();
        async move {
            h.post(
                &format!("{path}/progress"),
                Some(&h.bank(bank, &["loan_officer"])),
                &update,
            )
            .await
        }
    };
    let contacted = progress(A, json!({"stage": "contacted", "note": "called the owner"})).await;
    assert_status(&contacted, 200);
    assert_eq!(contacted.body["stage"], "contacted");
    assert_problem(
        &progress(A, json!({"stage": "approved"})).await,
        422,
        Some("approved_amount"),
    );
    assert_problem(
        &progress(
            A,
            json!({"stage": "approved", "approved_amount": 40_000_000}),
        )
        .await,
        422,
        Some("annual_rate_bp"),
    );
    assert_problem(
        &progress(A, json!({"stage": "under_review", "annual_rate_bp": 420})).await,
        422,
        Some("annual_rate_bp"),
    );
    assert_problem(
        &progress(A, json!({"stage": "released"})).await,
        422,
        Some("stage"),
    );
    // Skipping review is refused even with a complete approval.
    assert_problem(
        &progress(
            A,
            json!({"stage": "approved", "approved_amount": 40_000_000, "annual_rate_bp": 420}),
        )
        .await,
        409,
        None,
    );
    assert_problem(
        &progress(B, json!({"stage": "under_review"})).await,
        409,
        None,
    );
    assert_status(&progress(A, json!({"stage": "under_review"})).await, 200);
    let approved = progress(
        A,
        json!({"stage": "approved", "approved_amount": 40_000_000, "annual_rate_bp": 420}),
    )
    .await;
    assert_status(&approved, 200);
    assert_eq!(approved.body["stage"], "approved");
    assert_eq!(approved.body["approved_amount"], 40_000_000);
    assert_eq!(approved.body["annual_rate_bp"], 420);
    assert_eq!(approved.body["history"].as_array().unwrap().len(), 4);
    // A bank without a claim has nothing to progress or release.
    assert_problem(&progress(D, json!({"stage": "contacted"})).await, 404, None);
    let release = |bank: &'static str| {
        let h = &h;
        let path = path.clone();
        async move {
            h.call(
                Method::POST,
                &format!("{path}/release"),
                Some(&h.bank(bank, &["loan_officer"])),
                &[],
                Body::empty(),
            )
            .await
        }
    };
    assert_problem(&release(D).await, 404, None);
    // A decided claim stays.
    assert_problem(&release(A).await, 409, None);

    // B gives its slot back; D may now take it, B may not retake it.
    let released = release(B).await;
    assert_status(&released, 200);
    assert_eq!(released.body["stage"], "released");
    assert_problem(&release(B).await, 409, None);
    let b_view = h.get(&path, Some(&officer(B))).await;
    assert_eq!(
        b_view.body["phone"], "138****5678",
        "a released bank loses the phone"
    );
    assert_eq!(b_view.body["slots_left"], 1);
    assert_status(&claim(D).await, 201);
    assert_problem(&claim(B).await, 409, None);
    assert_problem(&claim(E).await, 409, None);
    let d_view = h.get(&path, Some(&officer(D))).await;
    assert_eq!(d_view.body["phone"], PHONE);
    assert_eq!(d_view.body["claim"]["bank_id"], D);

    // The desk list filters by our claim's stage.
    let a_approved = h
        .get("/v1/desk/demands?state=approved", Some(&officer(A)))
        .await;
    assert_eq!(a_approved.body["items"].as_array().unwrap().len(), 1);
    let e_open = h
        .get("/v1/desk/demands?state=open", Some(&officer(E)))
        .await;
    assert_eq!(e_open.body["items"].as_array().unwrap().len(), 1);
    let a_open = h
        .get("/v1/desk/demands?state=open", Some(&officer(A)))
        .await;
    assert_eq!(a_open.body["items"], json!([]));

    // The applicant follows every bank's progress, by name.
    let view = h
        .get(&format!("/v1/applicant/demands/{id}"), Some(&alice))
        .await;
    assert_status(&view, 200);
    let mut claims: Vec<(String, String, String)> = view.body["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["bank_id"].as_str().unwrap().to_owned(),
                c["bank_name"].as_str().unwrap().to_owned(),
                c["stage"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    claims.sort();
    let mut expected: Vec<(String, String, String)> = [
        (A, "宁波银行", "approved"),
        (B, "工商银行宁波分行", "released"),
        (C, "建设银行宁波分行", "claimed"),
        (D, "中国银行宁波分行", "claimed"),
    ]
    .iter()
    .map(|(b, n, s)| (b.to_string(), n.to_string(), s.to_string()))
    .collect();
    expected.sort();
    assert_eq!(claims, expected, "{}", view.text);
    let a_entry = view.body["claims"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["bank_id"] == A)
        .unwrap();
    assert_eq!(a_entry["approved_amount"], 40_000_000);
    assert_eq!(a_entry["annual_rate_bp"], 420);
    assert_eq!(view.body["phone"], "138****5678");

    // Another applicant cannot see it.
    let mallory = h.applicant("mallory").await;
    assert_problem(
        &h.get(&format!("/v1/applicant/demands/{id}"), Some(&mallory))
            .await,
        404,
        None,
    );
    let theirs = h.get("/v1/applicant/demands", Some(&mallory)).await;
    assert_eq!(theirs.body["items"], json!([]));

    // Claims and progress notified someone: the notifications queue is not empty.
    assert!(!App::receive_all(&h.notify_queue).await.is_empty());
}

#[tokio::test]
async fn malformed_ids_are_bad_requests() {
    let h = app();
    let officer = h.bank(A, &["loan_officer"]);
    let alice = h.applicant("alice").await;
    for (method, path, token, body) in [
        (Method::GET, "/v1/desk/demands/not-a-ulid", &officer, None),
        (
            Method::POST,
            "/v1/desk/demands/not-a-ulid/claim",
            &officer,
            None,
        ),
        (
            Method::POST,
            "/v1/desk/demands/not-a-ulid/progress",
            &officer,
            Some(json!({"stage": "contacted"})),
        ),
        (
            Method::POST,
            "/v1/desk/demands/not-a-ulid/release",
            &officer,
            None,
        ),
        (
            Method::GET,
            "/v1/applicant/demands/not-a-ulid",
            &alice,
            None,
        ),
        (
            Method::GET,
            "/v1/desk/demands/01ARZ3NDEKTSV4RRFFQ69G5FA",
            &officer,
            None,
        ),
    ] {
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let r = h.call(method, path, Some(token), JSON, body).await;
        assert_problem(&r, 400, Some("path.id"));
    }
    // Bad queries are problems too.
    assert_problem(
        &h.get("/v1/desk/demands?min_amount=lots", Some(&officer))
            .await,
        400,
        None,
    );
    assert_problem(
        &h.get("/v1/desk/demands?colour=red", Some(&officer)).await,
        400,
        None,
    );
    assert_problem(
        &h.get("/v1/applicant/demands?limit=1000", Some(&alice))
            .await,
        422,
        Some("limit"),
    );
}

/// Regression: `valid_from` defaults to now *before* the inverted-validity check, so a draft with
/// only a past `valid_to` (a code dead on creation) is refused.
#[tokio::test]
async fn a_code_with_only_a_past_valid_to_is_refused() {
    let h = app();
    let admin = h.bank(A, &["product_admin"]);
    let r = h
        .create_code(
            &admin,
            &json!({"id": "born-dead", "valid_to": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_problem(&r, 422, Some("valid_to"));
    assert_problem(&h.get("/v1/loan-codes/born-dead", None).await, 404, None);
}
