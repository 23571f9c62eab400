//! The demo driver: talks to a running Puhui over real HTTP, as a bank's product admin and as
//! the public would, and checks every answer. Used by `make demo` and the end-to-end tests.

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::data::{self, BANKS, Rng};
use crate::tokens::DevIssuer;

/// A failed expectation: which step, what was expected, what came back.
pub type DemoError = crate::Failure;

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers of interest.
    pub etag: Option<String>,
    /// Whether it was replayed by the idempotency layer.
    pub replayed: bool,
    /// `content-type`.
    pub content_type: String,
    /// Parsed JSON body (`Null` if none).
    pub body: Value,
}

/// An HTTP client for one Puhui deployment.
pub struct Api {
    base: String,
    /// Path prefixes served elsewhere (one function URL per Lambda), longest first.
    routes: Vec<(String, String)>,
    http: Client,
}

impl Api {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        Api {
            base: base.trim_end_matches('/').to_owned(),
            routes: vec![],
            http: Client::new(),
        }
    }

    /// Sends paths starting with `prefix` to `base` instead (e.g. each Lambda's function URL).
    pub fn route(mut self, prefix: &str, base: &str) -> Self {
        self.routes
            .push((prefix.to_owned(), base.trim_end_matches('/').to_owned()));
        self.routes.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        self
    }

    fn base_for(&self, path: &str) -> &str {
        self.routes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map_or(self.base.as_str(), |(_, base)| base.as_str())
    }

    /// Sends a request; `token` adds a bearer header, `headers` any others.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer, DemoError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_for(path)));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| crate::Failure(format!("{method} {path}: {e}")))?;
        let status = resp.status();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header("etag");
        let replayed = header("idempotent-replayed").is_some();
        let content_type = header("content-type").unwrap_or_default();
        let text = resp
            .text()
            .await
            .map_err(|e| crate::Failure(format!("{method} {path}: {e}")))?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer {
            status,
            etag,
            replayed,
            content_type,
            body,
        })
    }
}

/// Fails the demo unless the answer has `status`.
pub(crate) fn expect(step: &str, a: &Answer, status: u16) -> Result<(), DemoError> {
    if a.status.as_u16() == status {
        Ok(())
    } else {
        Err(crate::Failure(format!(
            "{step}: expected HTTP {status}, got {} {}",
            a.status, a.body
        )))
    }
}

/// A development token of `bank` with `roles`, valid an hour.
pub(crate) fn token(issuer: &DevIssuer, bank: &str, roles: &[&str]) -> Result<String, DemoError> {
    issuer
        .bank_token(&format!("{bank}-admin"), bank, roles, 3600)
        .map_err(|e| crate::Failure(e.to_string()))
}

/// Seeds every sample bank's products (listed) through the API; returns how many were listed.
pub async fn seed(api: &Api, issuer: &DevIssuer, seed: u64) -> Result<usize, DemoError> {
    let mut rng = Rng::new(seed);
    let mut listed = 0;
    for (b, bank) in BANKS.iter().enumerate() {
        let t = token(issuer, bank.id, &["product_admin"])?;
        for n in 0..3 {
            let body = data::product(&mut rng, b * 3 + n);
            let key = format!("seed-{seed}-{}-{n}", bank.id);
            let created = api
                .call(
                    Method::POST,
                    "/v1/products",
                    Some(&t),
                    &[("idempotency-key", &key)],
                    Some(&body),
                )
                .await?;
            expect("seed: create product", &created, 201)?;
            let id = created.body["id"].as_str().unwrap_or_default().to_owned();
            if created.body["status"] == "draft" {
                let l = api
                    .call(
                        Method::POST,
                        &format!("/v1/products/{id}/list"),
                        Some(&t),
                        &[],
                        None,
                    )
                    .await?;
                expect("seed: list product", &l, 200)?;
            }
            listed += 1;
        }
    }
    Ok(listed)
}

/// Walks a product admin through create → retry → update → conflict → bad input → other
/// tenant → list → catalogue → delist, printing each step and checking each answer.
pub async fn walkthrough(api: &Api, issuer: &DevIssuer) -> Result<(), DemoError> {
    let admin = token(issuer, "nbcb", &["product_admin"])?;
    let rival = token(issuer, "icbc-nb", &["product_admin"])?;
    let officer = token(issuer, "nbcb", &["loan_officer"])?;
    let mut product = json!({
        "name": "专精特新贷 Specialised-SME loan",
        "description": "For 'specialised and sophisticated' SMEs in Ningbo",
        "product_type": "credit",
        "amount": {"min": 50_000_000, "max": 500_000_000},
        "term_months": {"min": 6, "max": 36},
        "annual_rate_bp": {"min": 290, "max": 600},
        "regions": ["330200"],
        "industries": ["C"],
        "conditions": [{"fact": "tax_credit_grade", "operator": "in", "value": ["A", "B"]},
                       {"fact": "dishonest_debtor", "operator": "equal", "value": false}],
        "valid_from": "2026-01-01",
        "valid_to": "2027-12-31"
    });

    step(3, "Bank of Ningbo's product admin creates a draft product");
    let key = format!("demo-{}", chrono::Utc::now().timestamp_millis());
    let created = api
        .call(
            Method::POST,
            "/v1/products",
            Some(&admin),
            &[("idempotency-key", &key)],
            Some(&product),
        )
        .await?;
    expect("create", &created, 201)?;
    let id = created.body["id"].as_str().unwrap_or_default().to_owned();
    say(&format!(
        "201 Created  id={id}  status={}  ETag={}",
        created.body["status"],
        created.etag.as_deref().unwrap_or("-")
    ));

    step(
        4,
        "The client retries the same request (same Idempotency-Key)",
    );
    let retry = api
        .call(
            Method::POST,
            "/v1/products",
            Some(&admin),
            &[("idempotency-key", &key)],
            Some(&product),
        )
        .await?;
    expect("retry", &retry, 201)?;
    if retry.body["id"] != created.body["id"] || !retry.replayed {
        return Err(crate::Failure(
            "retry: expected the first response replayed".into(),
        ));
    }
    say(&format!(
        "201 replayed (Idempotent-Replayed: true), same id={} — no duplicate product",
        retry.body["id"]
    ));

    step(
        5,
        "Raise the maximum amount to ¥8,000,000 with If-Match: \"1\"",
    );
    product["amount"]["max"] = json!(800_000_000);
    let path = format!("/v1/products/{id}");
    let updated = api
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            &[("if-match", "\"1\"")],
            Some(&product),
        )
        .await?;
    expect("update", &updated, 200)?;
    say(&format!(
        "200 OK  version={}  ETag={}",
        updated.body["version"],
        updated.etag.as_deref().unwrap_or("-")
    ));

    step(6, "A second admin, still holding version 1, tries to save");
    product["annual_rate_bp"]["min"] = json!(250);
    let stale = api
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            &[("if-match", "\"1\"")],
            Some(&product),
        )
        .await?;
    expect("conflict", &stale, 412)?;
    say(&format!(
        "412 {}  ({})  — {}",
        stale.body["title"].as_str().unwrap_or(""),
        stale.content_type,
        stale.body["detail"].as_str().unwrap_or("")
    ));

    step(7, "Bad input: amount range inverted, region code mistyped");
    let mut bad = product.clone();
    bad["amount"] = json!({"min": 900, "max": 100});
    let invalid = api
        .call(Method::POST, "/v1/products", Some(&admin), &[], Some(&bad))
        .await?;
    expect("range check", &invalid, 422)?;
    say(&format!("422 {}", field_errors(&invalid.body)));
    bad["amount"] = product["amount"].clone();
    bad["regions"] = json!(["33020"]);
    let invalid = api
        .call(Method::POST, "/v1/products", Some(&admin), &[], Some(&bad))
        .await?;
    expect("region check", &invalid, 422)?;
    say(&format!("422 {}", field_errors(&invalid.body)));

    step(
        8,
        "Another bank (ICBC Ningbo) and a loan officer try to touch the product",
    );
    let other = api
        .call(Method::GET, &path, Some(&rival), &[], None)
        .await?;
    expect("other tenant", &other, 404)?;
    say("ICBC's product admin: 404 Not Found — another bank's product does not exist for it");
    let wrong_role = api
        .call(
            Method::PUT,
            &path,
            Some(&officer),
            &[("if-match", "\"2\"")],
            Some(&product),
        )
        .await?;
    expect("wrong role", &wrong_role, 403)?;
    say(&format!(
        "Bank of Ningbo loan officer: 403 — {}",
        wrong_role.body["detail"].as_str().unwrap_or("")
    ));

    step(
        9,
        "List the product; a firm in Haishu district (330203) wanting ¥1,000,000 for 12 months browses",
    );
    let listed = api
        .call(
            Method::POST,
            &format!("{path}/list"),
            Some(&admin),
            &[("if-match", "\"2\"")],
            None,
        )
        .await?;
    expect("list", &listed, 200)?;
    let query = "/v1/catalogue?region=330203&amount=100000000&term=12&industry=C1311";
    let cat = api.call(Method::GET, query, None, &[], None).await?;
    expect("catalogue", &cat, 200)?;
    print_catalogue(&cat.body);
    if !contains(&cat.body, &id) {
        return Err(crate::Failure(
            "catalogue: the listed product is missing".into(),
        ));
    }

    step(10, "Delist the product; the catalogue no longer offers it");
    let delisted = api
        .call(
            Method::POST,
            &format!("{path}/delist"),
            Some(&admin),
            &[],
            None,
        )
        .await?;
    expect("delist", &delisted, 200)?;
    say(&format!(
        "200 OK  status={}  version={}",
        delisted.body["status"], delisted.body["version"]
    ));
    let cat = api.call(Method::GET, query, None, &[], None).await?;
    expect("catalogue after delist", &cat, 200)?;
    if contains(&cat.body, &id) {
        return Err(crate::Failure(
            "catalogue: the delisted product is still offered".into(),
        ));
    }
    say(&format!(
        "catalogue now has {} matching products, without {id}",
        cat.body["items"].as_array().map_or(0, Vec::len)
    ));
    Ok(())
}

fn contains(listing: &Value, id: &str) -> bool {
    listing["items"]
        .as_array()
        .is_some_and(|items| items.iter().any(|p| p["id"] == id))
}

fn field_errors(problem: &Value) -> String {
    let errors = problem["errors"].as_array().cloned().unwrap_or_default();
    let parts: Vec<String> = errors
        .iter()
        .map(|e| {
            format!(
                "{} ({})",
                e["field"].as_str().unwrap_or("?"),
                e["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    format!(
        "{}: {}",
        problem["title"].as_str().unwrap_or(""),
        parts.join("; ")
    )
}

fn print_catalogue(listing: &Value) {
    for p in listing["items"].as_array().into_iter().flatten().take(6) {
        let fen = p["amount"]["max"].as_i64().unwrap_or(0);
        let bp = p["annual_rate_bp"]["min"].as_i64().unwrap_or(0);
        say(&format!(
            "  {:<10} {:<36} from {}.{:02}%  up to ¥{}",
            p["bank_id"].as_str().unwrap_or(""),
            p["name"].as_str().unwrap_or(""),
            bp / 100,
            bp % 100,
            fen / 100
        ));
    }
}

/// Prints a numbered step heading.
pub fn step(n: u32, what: &str) {
    println!("\n{n:>2}. {what}");
}

/// Prints an indented result line.
pub fn say(what: &str) {
    println!("    {what}");
}

/// What the financing story needs from its surroundings.
pub struct StoryPaths<'a> {
    /// The runner's notification outbox file, printed at the end (none: not printed).
    pub outbox: Option<&'a std::path::Path>,
    /// Where the loan codes' QR PNGs are saved (none: not saved).
    pub qr_dir: Option<&'a std::path::Path>,
}

/// The financing flow end to end: a bank issues a loan code, a firm scans it in the
/// mini-program and applies, three banks claim, the fourth is refused, progress reaches
/// approval, and every notification is printed. Needs the runner's consumers running.
/// Returns the next step's number.
pub async fn financing_story(
    api: &Api,
    issuer: &DevIssuer,
    first_step: u32,
    paths: StoryPaths<'_>,
) -> Result<u32, DemoError> {
    let mut n = first_step;
    let mut next = |what: &str| {
        step(n, what);
        n += 1;
    };
    let banks: Vec<&str> = BANKS.iter().map(|b| b.id).collect();
    next("Four banks list a small-business credit loan for Ningbo");
    for bank in &banks {
        let admin = token(issuer, bank, &["product_admin"])?;
        let body = json!({
            "name": "普惠小微信用贷 Inclusive SME credit", "product_type": "credit",
            "amount": {"min": 1_000_000, "max": 300_000_000},
            "term_months": {"min": 1, "max": 36},
            "annual_rate_bp": {"min": 330 + 15 * banks.iter().position(|b| b == bank).unwrap_or(0) as i64, "max": 800},
            "regions": ["330200"], "valid_from": "2026-01-01"
        });
        let created = api
            .call(Method::POST, "/v1/products", Some(&admin), &[], Some(&body))
            .await?;
        expect("story: create product", &created, 201)?;
        let id = created.body["id"].as_str().unwrap_or_default().to_owned();
        let listed = api
            .call(
                Method::POST,
                &format!("/v1/products/{id}/list"),
                Some(&admin),
                &[],
                None,
            )
            .await?;
        expect("story: list product", &listed, 200)?;
    }
    say("4 products listed");

    next(
        "Bank of Ningbo's Yinzhou branch issues a loan code (贷款码); the platform issues one too",
    );
    let admin = token(issuer, "nbcb", &["product_admin"])?;
    let scene = format!(
        "nbcb-yz-{}",
        chrono::Utc::now().timestamp_millis() % 1_000_000
    );
    let code = api
        .call(
            Method::POST,
            "/v1/desk/loan-codes",
            Some(&admin),
            &[],
            Some(&json!({"id": scene, "branch": "鄞州支行 Yinzhou", "campaign": "2026 冬季普惠"})),
        )
        .await?;
    expect("story: create loan code", &code, 201)?;
    let ops = issuer
        .bank_token_without_bank("platform-ops", &["platform_admin"], 3600)
        .map_err(|e| crate::Failure(e.to_string()))?;
    let platform_scene = format!("pf-{}", chrono::Utc::now().timestamp_millis() % 1_000_000);
    let platform = api
        .call(
            Method::POST,
            "/v1/desk/loan-codes",
            Some(&ops),
            &[],
            Some(&json!({"id": platform_scene})),
        )
        .await?;
    expect("story: create platform loan code", &platform, 201)?;
    say(&format!(
        "201 Created  scene={scene} (bank), scene={platform_scene} (platform)"
    ));
    if let Some(dir) = paths.qr_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| crate::Failure(format!("{}: {e}", dir.display())))?;
        for s in [&scene, &platform_scene] {
            let png = crate::qr::loan_code_png(s, crate::qr::DEFAULT_PAGE)
                .map_err(|e| crate::Failure(e.to_string()))?;
            let file = dir.join(format!("{s}.png"));
            std::fs::write(&file, png)
                .map_err(|e| crate::Failure(format!("{}: {e}", file.display())))?;
        }
        say(&format!(
            "QR codes saved in {} (payload {})",
            dir.display(),
            crate::qr::payload(&scene, crate::qr::DEFAULT_PAGE)
        ));
    }

    next("A firm owner scans it: WeChat login and verified phone, then the code's page");
    let login = api
        .call(
            Method::POST,
            "/v1/applicant/login",
            None,
            &[],
            Some(&json!({"code": "dev:zhang-wei", "phone_code": "dev-phone:86-13812345678"})),
        )
        .await?;
    expect("story: login", &login, 200)?;
    let session = login.body["token"].as_str().unwrap_or_default().to_owned();
    say(&format!(
        "session issued, verified phone {}",
        login.body["phone"]
    ));
    let page = api
        .call(
            Method::GET,
            &format!("/v1/loan-codes/{scene}"),
            None,
            &[],
            None,
        )
        .await?;
    expect("story: loan code page", &page, 200)?;
    say(&format!(
        "{} · {} · {} products shown",
        page.body["issuer"]["bank_name"].as_str().unwrap_or(""),
        page.body["issuer"]["branch"].as_str().unwrap_or(""),
        page.body["products"].as_array().map_or(0, Vec::len)
    ));

    next(
        "A bad submission first (wrong USCC check character, amount 0, no consent): nothing is written",
    );
    let mut rng = Rng::new(7);
    let uscc = data::uscc(&mut rng, "330203");
    let mut bad_uscc = uscc.clone();
    let last = if bad_uscc.ends_with('0') { '1' } else { '0' };
    bad_uscc.pop();
    bad_uscc.push(last);
    let submission = json!({
        "loan_code": scene, "uscc": uscc, "firm_name": "宁波甬江精密机械有限公司",
        "applicant_role": "legal_representative", "amount": 50_000_000, "term_months": 12,
        "purpose": "采购原材料 raw materials", "collateral": false,
        "consent": {"accepted": true, "text_version": "auth-v3", "accepted_at": chrono::Utc::now()}
    });
    let mut bad = submission.clone();
    bad["uscc"] = json!(bad_uscc);
    let refused = api
        .call(
            Method::POST,
            "/v1/applicant/demands",
            Some(&session),
            &[],
            Some(&bad),
        )
        .await?;
    expect("story: bad uscc", &refused, 422)?;
    say(&format!("422 {}", field_errors(&refused.body)));
    let mut bad = submission.clone();
    bad["amount"] = json!(0);
    bad["consent"]["accepted"] = json!(false);
    let refused = api
        .call(
            Method::POST,
            "/v1/applicant/demands",
            Some(&session),
            &[],
            Some(&bad),
        )
        .await?;
    expect("story: bad amount and consent", &refused, 422)?;
    say(&format!("422 {}", field_errors(&refused.body)));

    next("The firm applies for ¥500,000 over 12 months (retried once: still one demand)");
    let key = format!("story-{}", chrono::Utc::now().timestamp_millis());
    let submitted = api
        .call(
            Method::POST,
            "/v1/applicant/demands",
            Some(&session),
            &[("idempotency-key", &key)],
            Some(&submission),
        )
        .await?;
    expect("story: submit", &submitted, 201)?;
    let retried = api
        .call(
            Method::POST,
            "/v1/applicant/demands",
            Some(&session),
            &[("idempotency-key", &key)],
            Some(&submission),
        )
        .await?;
    expect("story: submit retry", &retried, 201)?;
    let demand = submitted.body["id"].as_str().unwrap_or_default().to_owned();
    if retried.body["id"] != submitted.body["id"] || !retried.replayed {
        return Err(crate::Failure(
            "story: the retry created a second demand".into(),
        ));
    }
    say(&format!(
        "201 Created  demand={demand}  (retry replayed, same id)"
    ));

    next("demand-dispatch matches it to the catalogue and offers it to banks");
    let mut view = Value::Null;
    // Up to 30 s: under the Lambda emulator each consumer invocation starts a process.
    for _ in 0..300 {
        let got = api
            .call(
                Method::GET,
                &format!("/v1/applicant/demands/{demand}"),
                Some(&session),
                &[],
                None,
            )
            .await?;
        expect("story: my demand", &got, 200)?;
        if got.body["status"] != "submitted" {
            view = got.body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if view["status"] != "offered" {
        return Err(crate::Failure(format!("story: demand not offered: {view}")));
    }
    say(&format!(
        "status={}  offered to {} banks",
        view["status"], view["offered_banks"]
    ));
    let officer = |bank: &str| token(issuer, bank, &["loan_officer"]);
    let offer = api
        .call(
            Method::GET,
            &format!("/v1/desk/demands/{demand}"),
            Some(&officer("nbcb")?),
            &[],
            None,
        )
        .await?;
    expect("story: offer", &offer, 200)?;
    say(&format!(
        "Bank of Ningbo sees rank {} (it issued the code), phone {}, best product score {}:",
        offer.body["rank"], offer.body["phone"], offer.body["products"][0]["score"]
    ));
    for r in offer.body["products"][0]["reasons"]
        .as_array()
        .into_iter()
        .flatten()
    {
        say(&format!(
            "  +{:>2} {:<16} {}",
            r["points"],
            r["factor"].as_str().unwrap_or(""),
            r["detail"].as_str().unwrap_or("")
        ));
    }

    next("Four banks race to claim it (抢单): three succeed, the fourth is refused");
    for bank in &banks {
        let claimed = api
            .call(
                Method::POST,
                &format!("/v1/desk/demands/{demand}/claim"),
                Some(&officer(bank)?),
                &[],
                None,
            )
            .await?;
        let want = if bank == &banks[3] { 409 } else { 201 };
        expect(&format!("story: claim by {bank}"), &claimed, want)?;
        say(&format!(
            "{bank:<8} {} {}",
            claimed.status.as_u16(),
            if want == 201 {
                "claimed".to_owned()
            } else {
                claimed.body["detail"].as_str().unwrap_or("").to_owned()
            }
        ));
    }
    let again = api
        .call(
            Method::POST,
            &format!("/v1/desk/demands/{demand}/claim"),
            Some(&officer(banks[0])?),
            &[],
            None,
        )
        .await?;
    expect("story: claim again", &again, 200)?;
    say(&format!(
        "{:<8} 200 claiming again changes nothing",
        banks[0]
    ));

    next("Bank of Ningbo works its claim: contacted → under review → approved");
    let nbcb = officer("nbcb")?;
    for update in [
        json!({"stage": "contacted", "note": "电话联系法人"}),
        json!({"stage": "under_review"}),
        json!({"stage": "approved", "approved_amount": 50_000_000, "annual_rate_bp": 365}),
    ] {
        let moved = api
            .call(
                Method::POST,
                &format!("/v1/desk/demands/{demand}/progress"),
                Some(&nbcb),
                &[],
                Some(&update),
            )
            .await?;
        expect("story: progress", &moved, 200)?;
        say(&format!("200 stage={}", moved.body["stage"]));
    }
    let mine = api
        .call(
            Method::GET,
            &format!("/v1/applicant/demands/{demand}"),
            Some(&session),
            &[],
            None,
        )
        .await?;
    expect("story: applicant view", &mine, 200)?;
    say("The firm's view in the mini-program:");
    for c in mine.body["claims"].as_array().into_iter().flatten() {
        say(&format!(
            "  {:<44} {}",
            c["bank_name"].as_str().unwrap_or(""),
            c["stage"].as_str().unwrap_or("")
        ));
    }

    if let Some(outbox) = paths.outbox {
        next("Notifications sent (local outbox; phones masked)");
        // received + offers + 3 claims + 3 progress steps, delivered by the notify consumer.
        let want = 1 + view["offered_banks"].as_u64().unwrap_or(0) as usize + 3 + 3;
        let mut sent = vec![];
        for _ in 0..300 {
            sent = puhui_outbound::notify::read_outbox(outbox);
            if sent.len() >= want {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        if sent.len() < want {
            return Err(crate::Failure(format!(
                "story: {} of {want} notifications sent",
                sent.len()
            )));
        }
        for s in &sent {
            say(&format!(
                "{:<22} {}",
                s["recipient"].as_str().unwrap_or(""),
                s["text"].as_str().unwrap_or("")
            ));
        }
    }
    Ok(n)
}
