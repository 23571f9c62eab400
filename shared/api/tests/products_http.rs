//! The product routes end to end in-process (router → service → embedded table): every kind of
//! bad input gets a problem+json answer with a reason and never a 500; tenants stay apart;
//! gateway-verified claims are accepted only when complete.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use puhui_api::products::{ProductsApi, routes};
use puhui_edge::auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER};
use puhui_edge::{AuthConfig, Authenticator};
use puhui_embedded::SqliteTable;
use puhui_samplekit::tokens::DevIssuer;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Harness {
    app: Router,
    issuer: DevIssuer,
}

fn harness() -> Harness {
    let dir = std::env::temp_dir().join(format!("puhui-api-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let table = Arc::new(SqliteTable::open(dir.join("t.db")).unwrap());
    let issuer = DevIssuer::generate().unwrap();
    let config = AuthConfig {
        issuer: DEFAULT_ISSUER.into(),
        audience: DEFAULT_AUDIENCE.into(),
        algorithm: jsonwebtoken::Algorithm::ES256,
        jwks: serde_json::from_str(&issuer.jwks_json()).unwrap(),
    };
    let auth = Arc::new(Authenticator::new(config).unwrap());
    Harness {
        app: puhui_api::finish(routes(ProductsApi::new(table, auth)), 16 * 1024),
        issuer,
    }
}

fn product() -> Value {
    json!({"name": "Tax-credit loan", "product_type": "credit",
           "amount": {"min": 1_000_000, "max": 300_000_000}, "term_months": {"min": 1, "max": 36},
           "annual_rate_bp": {"min": 345, "max": 900}, "regions": ["330200"], "industries": ["C"],
           "valid_from": "2026-01-01", "valid_to": "2027-12-31"})
}

struct Reply {
    status: StatusCode,
    content_type: String,
    etag: Option<String>,
    body: Value,
}

impl Harness {
    fn token(&self, bank: &str, roles: &[&str]) -> String {
        self.issuer.bank_token("u1", bank, roles, 600).unwrap()
    }

    async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let content_type = header("content-type").unwrap_or_default();
        let etag = header("etag");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Reply {
            status,
            content_type,
            etag,
            body,
        }
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
        self.send(req.body(body).unwrap()).await
    }

    async fn create(&self, token: &str, body: &Value) -> Reply {
        let json = [("content-type", "application/json")];
        self.call(
            Method::POST,
            "/v1/products",
            Some(token),
            &json,
            Body::from(body.to_string()),
        )
        .await
    }
}

fn assert_problem(r: &Reply, status: u16, field: Option<&str>) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_eq!(r.content_type, "application/problem+json");
    assert_eq!(r.body["status"], status);
    assert!(r.body["type"].as_str().unwrap().starts_with("/problems/"));
    assert!(!r.body["detail"].as_str().unwrap().is_empty());
    if let Some(f) = field {
        let fields: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&f), "{f} not in {fields:?}");
    }
}

#[tokio::test]
async fn bad_bodies_get_problem_details_never_a_500() {
    let h = harness();
    let t = h.token("nbcb", &["product_admin"]);
    const JSON: &[(&str, &str)] = &[("content-type", "application/json")];
    let post = |body: Body, headers: &'static [(&'static str, &'static str)]| {
        let t = t.clone();
        let h = &h;
        async move {
            h.call(Method::POST, "/v1/products", Some(&t), headers, body)
                .await
        }
    };
    assert_problem(
        &post(Body::from("{\"name\": "), JSON).await,
        400,
        Some("body"),
    );
    assert_problem(
        &post(Body::from(&b"{\"name\":\"\xff\xfe\"}"[..]), JSON).await,
        400,
        Some("body"),
    );
    assert_problem(
        &post(
            Body::from(product().to_string()),
            &[("content-type", "text/plain")],
        )
        .await,
        400,
        Some("content-type"),
    );
    assert_problem(
        &post(Body::from(product().to_string()), &[]).await,
        400,
        Some("content-type"),
    );
    let mut unknown = product();
    unknown["colour"] = json!("red");
    assert_problem(&h.create(&t, &unknown).await, 422, None);
    let mut wrong_type = product();
    wrong_type["amount"]["min"] = json!("lots");
    assert_problem(&h.create(&t, &wrong_type).await, 422, Some("amount.min"));
    let mut missing = product();
    missing.as_object_mut().unwrap().remove("name");
    assert_problem(&h.create(&t, &missing).await, 422, Some("name"));
    let mut bad_region = product();
    bad_region["regions"] = json!(["330200", "33020"]);
    assert_problem(&h.create(&t, &bad_region).await, 422, Some("regions[1]"));
    let mut inverted = product();
    inverted["amount"] = json!({"min": 500, "max": 100});
    assert_problem(&h.create(&t, &inverted).await, 422, Some("amount.max"));
    let mut huge = product();
    huge["description"] = json!("x".repeat(20_000));
    assert_problem(&h.create(&t, &huge).await, 413, None);
    assert_problem(&h.create(&t, &json!([1, 2])).await, 422, None);
}

#[tokio::test]
async fn bad_paths_queries_and_headers_get_problem_details() {
    let h = harness();
    let t = h.token("nbcb", &["product_admin"]);
    assert_problem(
        &h.call(
            Method::GET,
            "/v1/products/not-a-ulid",
            Some(&t),
            &[],
            Body::empty(),
        )
        .await,
        400,
        Some("path.id"),
    );
    assert_problem(
        &h.call(
            Method::GET,
            "/v1/products?limit=abc",
            Some(&t),
            &[],
            Body::empty(),
        )
        .await,
        400,
        None,
    );
    assert_problem(
        &h.call(
            Method::GET,
            "/v1/products?limit=1000",
            Some(&t),
            &[],
            Body::empty(),
        )
        .await,
        422,
        Some("limit"),
    );
    assert_problem(
        &h.call(
            Method::GET,
            "/v1/products?status=gone",
            Some(&t),
            &[],
            Body::empty(),
        )
        .await,
        400,
        None,
    );
    assert_problem(
        &h.call(
            Method::GET,
            "/v1/products?cursor=%FF%FE",
            Some(&t),
            &[],
            Body::empty(),
        )
        .await,
        422,
        Some("cursor"),
    );
    assert_problem(
        &h.call(
            Method::GET,
            "/v1/catalogue?region=33",
            None,
            &[],
            Body::empty(),
        )
        .await,
        400,
        None,
    );
    assert_problem(
        &h.call(
            Method::GET,
            "/v1/catalogue?amount=-x",
            None,
            &[],
            Body::empty(),
        )
        .await,
        400,
        None,
    );
    assert_problem(
        &h.call(
            Method::GET,
            "/v1/catalogue?colour=red",
            None,
            &[],
            Body::empty(),
        )
        .await,
        400,
        None,
    );
    assert_problem(
        &h.call(Method::GET, "/v1/nothing-here", None, &[], Body::empty())
            .await,
        404,
        None,
    );
    assert_problem(
        &h.call(Method::DELETE, "/v1/catalogue", None, &[], Body::empty())
            .await,
        405,
        None,
    );
    let created = h.create(&t, &product()).await;
    let path = format!("/v1/products/{}", created.body["id"].as_str().unwrap());
    let json = [("content-type", "application/json")];
    let body = || Body::from(product().to_string());
    assert_problem(
        &h.call(Method::PUT, &path, Some(&t), &json, body()).await,
        428,
        None,
    );
    let garbage = [
        ("content-type", "application/json"),
        ("if-match", "version one"),
    ];
    assert_problem(
        &h.call(Method::PUT, &path, Some(&t), &garbage, body()).await,
        400,
        Some("header.if-match"),
    );
    let bad_key = [
        ("content-type", "application/json"),
        ("idempotency-key", "has spaces in it"),
    ];
    assert_problem(
        &h.call(Method::POST, "/v1/products", Some(&t), &bad_key, body())
            .await,
        400,
        Some("header.idempotency-key"),
    );
}

#[tokio::test]
async fn authentication_and_roles_are_enforced() {
    let h = harness();
    let json = [("content-type", "application/json")];
    let body = || Body::from(product().to_string());
    assert_problem(
        &h.call(Method::POST, "/v1/products", None, &json, body())
            .await,
        401,
        None,
    );
    assert_problem(
        &h.call(
            Method::POST,
            "/v1/products",
            Some("not.a.jwt"),
            &json,
            body(),
        )
        .await,
        401,
        None,
    );
    let expired = h
        .issuer
        .bank_token("u1", "nbcb", &["product_admin"], -3600)
        .unwrap();
    assert_problem(
        &h.call(Method::POST, "/v1/products", Some(&expired), &json, body())
            .await,
        401,
        None,
    );
    let forger = DevIssuer::generate().unwrap();
    let forged = forger
        .bank_token("u1", "nbcb", &["product_admin"], 600)
        .unwrap();
    assert_problem(
        &h.call(Method::POST, "/v1/products", Some(&forged), &json, body())
            .await,
        401,
        None,
    );
    let officer = h.token("nbcb", &["loan_officer"]);
    assert_problem(&h.create(&officer, &product()).await, 403, None);
    // A header a client could set never grants a tenant.
    let spoof = [
        ("content-type", "application/json"),
        ("x-bank-id", "nbcb"),
        ("x-roles", "product_admin"),
    ];
    assert_problem(
        &h.call(Method::POST, "/v1/products", None, &spoof, body())
            .await,
        401,
        None,
    );
    // The catalogue is public.
    assert_eq!(
        h.call(Method::GET, "/v1/catalogue", None, &[], Body::empty())
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn tenants_are_isolated_and_ids_do_not_leak() {
    let h = harness();
    let nbcb = h.token("nbcb", &["product_admin"]);
    let icbc = h.token("icbc-nb", &["product_admin"]);
    let created = h.create(&nbcb, &product()).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let path = format!("/v1/products/{}", created.body["id"].as_str().unwrap());
    assert_problem(
        &h.call(Method::GET, &path, Some(&icbc), &[], Body::empty())
            .await,
        404,
        None,
    );
    let put = [("content-type", "application/json"), ("if-match", "\"1\"")];
    assert_problem(
        &h.call(
            Method::PUT,
            &path,
            Some(&icbc),
            &put,
            Body::from(product().to_string()),
        )
        .await,
        404,
        None,
    );
    assert_problem(
        &h.call(
            Method::POST,
            &format!("{path}/list"),
            Some(&icbc),
            &[],
            Body::empty(),
        )
        .await,
        404,
        None,
    );
    let theirs = h
        .call(Method::GET, "/v1/products", Some(&icbc), &[], Body::empty())
        .await;
    assert_eq!(theirs.body["items"], json!([]));
    // The owner sees it, with its ETag.
    let mine = h
        .call(Method::GET, &path, Some(&nbcb), &[], Body::empty())
        .await;
    assert_eq!(
        (mine.status, mine.etag.as_deref()),
        (StatusCode::OK, Some("\"1\""))
    );
}

#[tokio::test]
async fn optimistic_concurrency_and_lifecycle_over_http() {
    let h = harness();
    let t = h.token("nbcb", &["product_admin"]);
    let created = h.create(&t, &product()).await;
    let path = format!("/v1/products/{}", created.body["id"].as_str().unwrap());
    let put = |etag: &'static str| [("content-type", "application/json"), ("if-match", etag)];
    let mut changed = product();
    changed["name"] = json!("Renamed");
    let ok = h
        .call(
            Method::PUT,
            &path,
            Some(&t),
            &put("\"1\""),
            Body::from(changed.to_string()),
        )
        .await;
    assert_eq!(
        (ok.status, ok.etag.as_deref(), ok.body["name"].as_str()),
        (StatusCode::OK, Some("\"2\""), Some("Renamed"))
    );
    let stale = h
        .call(
            Method::PUT,
            &path,
            Some(&t),
            &put("W/\"1\""),
            Body::from(product().to_string()),
        )
        .await;
    assert_problem(&stale, 412, None);
    assert!(stale.body["detail"].as_str().unwrap().contains("current 2"));
    let listed = h
        .call(
            Method::POST,
            &format!("{path}/list"),
            Some(&t),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(listed.body["status"], "listed");
    let cat = h
        .call(
            Method::GET,
            "/v1/catalogue?region=330203&term=12",
            None,
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(cat.body["items"].as_array().unwrap().len(), 1);
    assert!(
        cat.body["items"][0].get("version").is_none(),
        "catalogue shows no internals"
    );
    assert_problem(
        &h.call(
            Method::POST,
            &format!("{path}/list"),
            Some(&t),
            &[],
            Body::empty(),
        )
        .await,
        409,
        None,
    );
    let delisted = h
        .call(
            Method::POST,
            &format!("{path}/delist"),
            Some(&t),
            &[("if-match", "\"3\"")],
            Body::empty(),
        )
        .await;
    assert_eq!(
        (delisted.status, delisted.body["status"].as_str()),
        (StatusCode::OK, Some("delisted"))
    );
    let cat = h
        .call(Method::GET, "/v1/catalogue", None, &[], Body::empty())
        .await;
    assert_eq!(cat.body["items"], json!([]));
}

#[tokio::test]
async fn retried_creates_are_replayed() {
    let h = harness();
    let t = h.token("nbcb", &["product_admin"]);
    let headers = [
        ("content-type", "application/json"),
        ("idempotency-key", "req-42"),
    ];
    let first = h
        .call(
            Method::POST,
            "/v1/products",
            Some(&t),
            &headers,
            Body::from(product().to_string()),
        )
        .await;
    let second = h
        .call(
            Method::POST,
            "/v1/products",
            Some(&t),
            &headers,
            Body::from(product().to_string()),
        )
        .await;
    assert_eq!(
        (first.status, second.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(first.body["id"], second.body["id"]);
    let mut other = product();
    other["name"] = json!("Different");
    let reuse = h
        .call(
            Method::POST,
            "/v1/products",
            Some(&t),
            &headers,
            Body::from(other.to_string()),
        )
        .await;
    assert_problem(&reuse, 422, Some("header.idempotency-key"));
    let listing = h
        .call(Method::GET, "/v1/products", Some(&t), &[], Body::empty())
        .await;
    assert_eq!(listing.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn gateway_claims_are_used_when_the_event_carries_them() {
    use lambda_http::aws_lambda_events::apigw::{
        ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
        ApiGatewayV2httpRequestContext,
    };
    use lambda_http::request::RequestContext;
    let h = harness();
    let claims = |bank: &str, aud: &str| {
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        let exp = (chrono::Utc::now().timestamp() + 300).to_string();
        for (k, v) in [
            ("iss", DEFAULT_ISSUER),
            ("aud", aud),
            ("sub", "gw-user"),
            ("bank_id", bank),
            ("roles", "[product_admin]"),
            ("exp", &exp),
        ] {
            jwt.claims.insert(k.to_owned(), v.to_owned());
        }
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.authorizer = Some(authorizer);
        RequestContext::ApiGatewayV2(ctx)
    };
    let request = |ctx: RequestContext| {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/v1/products")
            .header("content-type", "application/json")
            .body(Body::from(product().to_string()))
            .unwrap();
        req.extensions_mut().insert(ctx);
        req
    };
    let ok = h.send(request(claims("nbcb", DEFAULT_AUDIENCE))).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(ok.body["bank_id"], "nbcb");
    assert_problem(
        &h.send(request(claims("nbcb", "another-api"))).await,
        401,
        None,
    );
}
