//! The local runner over real HTTP on a loopback port: the demo's walk-through passes, the
//! presigned-blob route enforces signature and expiry, and the consumer loop acknowledges only
//! what its handler did not report as failed.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use puhui_embedded::{QueueConfig, SqliteQueue};
use puhui_ports::{BlobStore, Queue, QueueMessage, SystemClock};
use puhui_runner::{Consumer, Runner, RunnerConfig, consumers};
use puhui_samplekit::demo::Api;
use puhui_samplekit::tokens::DevIssuer;

struct Running {
    base: String,
    runner_backend: puhui_runner::Backend,
    issuer: DevIssuer,
    /// The runner's queue consumers, not polled: a test drives the ones it needs.
    consumers: Vec<Consumer>,
}

async fn start() -> Running {
    let dir = std::env::temp_dir().join(format!("puhui-runner-{}", ulid::Ulid::new()));
    let config = RunnerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        dev_keys: dir.join("keys"),
    };
    let listener = tokio::net::TcpListener::bind(config.addr).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let runner = Runner::build(&config, &base).unwrap();
    let backend = runner.backend.clone();
    let consumers = runner.consumers.clone();
    tokio::spawn(async move { axum::serve(listener, runner.app).await.unwrap() });
    Running {
        base,
        runner_backend: backend,
        issuer: DevIssuer::load(&config.dev_keys).unwrap(),
        consumers,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_walkthrough_passes_on_the_runner() {
    let r = start().await;
    let api = Api::new(&r.base);
    assert_eq!(
        puhui_samplekit::demo::seed(&api, &r.issuer, 7)
            .await
            .unwrap(),
        12
    );
    puhui_samplekit::demo::walkthrough(&api, &r.issuer)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_utf8_and_oversized_bodies_over_real_http_are_client_errors() {
    let r = start().await;
    let token = r
        .issuer
        .bank_token("u", "nbcb", &["product_admin"], 600)
        .unwrap();
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        http.post(format!("{}/v1/products", r.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let resp = post(b"{\"name\":\"\xff\xfe\"}".to_vec()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let resp = post(vec![b' '; 200 * 1024]).await.unwrap();
    assert_eq!(resp.status().as_u16(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_blob_links_work_until_tampered() {
    let r = start().await;
    let blobs = r.runner_backend.blobs.clone();
    blobs
        .put(
            "exports/nbcb/portfolio.csv",
            b"uscc\n91350100M000100Y43\n".to_vec(),
            "text/csv",
        )
        .await
        .unwrap();
    let link = blobs
        .presign_get("exports/nbcb/portfolio.csv", Duration::from_secs(60))
        .await
        .unwrap();
    let got = reqwest::get(&link.url).await.unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(
        got.bytes().await.unwrap().as_ref(),
        b"uscc\n91350100M000100Y43\n"
    );
    let tampered = link.url.replace("portfolio", "portfolia");
    assert_eq!(
        reqwest::get(&tampered).await.unwrap().status().as_u16(),
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_loop_acknowledges_successes_and_redelivers_failures() {
    let dir = std::env::temp_dir().join(format!("puhui-consumer-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let queue = Arc::new(
        SqliteQueue::open(
            dir.join("q.db"),
            "work",
            QueueConfig {
                max_receives: 5,
                fifo: false,
            },
            Arc::new(SystemClock),
        )
        .unwrap(),
    );
    queue.send(QueueMessage::new("good")).await.unwrap();
    queue.send(QueueMessage::new("bad")).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let consumer = Consumer {
        name: "test",
        queue: queue.clone(),
        batch_size: 10,
        visibility: Duration::from_secs(1),
        handler: Arc::new(move |event| {
            let seen = seen.clone();
            Box::pin(async move {
                seen.fetch_add(1, Ordering::SeqCst);
                let mut resp = SqsBatchResponse::default();
                for r in event.records {
                    if r.body.as_deref() == Some("bad") {
                        resp.add_failure(r.message_id.unwrap());
                    }
                }
                resp
            })
        }),
    };
    assert_eq!(consumers::poll_once(&consumer).await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let again = queue.receive(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        again.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["bad"]
    );
    assert_eq!(again[0].receive_count, 2);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// An export over real HTTP: submitted with a bank token, processed by the runner's
/// data-export consumer, read back through its presigned link; another bank gets 404, and a
/// list longer than 10,000 firms is a 422 naming `firms` (not a 413: the route takes the body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_runs_through_the_runner_and_its_link() {
    use puhui_domain::Uscc;
    use puhui_domain::authorization::{Authorization, AuthorizationId, ConsentEvidence, Purpose};
    use puhui_domain::interfaces::{ProfileCategory, ProfileField};
    use puhui_ports::Table;
    use puhui_services::authorizations::Authorizations;
    use serde_json::{Value, json};

    let Running {
        base,
        runner_backend: b,
        issuer,
        consumers,
    } = start().await;
    let exporter = consumers
        .into_iter()
        .find(|c| c.name == "data-export")
        .unwrap();

    let (authorized, stranger) = (
        Uscc::parse("91330212PHRK0001XR").unwrap(),
        Uscc::parse("91350100M000100Y43").unwrap(),
    );
    let now = chrono::Utc::now();
    Authorizations::new(b.table.clone(), b.clock.clone())
        .grant(&Authorization {
            id: AuthorizationId(ulid::Ulid::new()),
            uscc: authorized.clone(),
            bank_id: puhui_domain::BankId::parse("nbcb").unwrap(),
            scope: vec!["tax_summary".into()],
            purposes: vec![Purpose::PreLoan],
            valid_from: now - chrono::Duration::hours(1),
            valid_until: now + chrono::Duration::days(30),
            evidence: ConsentEvidence {
                consented_by: "legal-rep-1".into(),
                method: "counter".into(),
                text_version: "consent-v3".into(),
                at: now,
            },
            revoked_at: None,
        })
        .await
        .unwrap();
    let fields = [(
        "tax_paid_12m".to_owned(),
        ProfileField {
            value: json!(61_234_567),
            source: "tax".into(),
            as_of: "2026-10-31".parse().unwrap(),
        },
    )]
    .into_iter()
    .collect();
    let item =
        puhui_services::profiles::category_item(&authorized, ProfileCategory::Operating, &fields)
            .unwrap();
    b.table.put(item, None).await.unwrap();

    let http = reqwest::Client::new();
    let nbcb = issuer
        .bank_token("u", "nbcb", &["loan_officer"], 600)
        .unwrap();
    let submit = |firms: Vec<String>| {
        http.post(format!("{base}/v1/exports"))
            .bearer_auth(&nbcb)
            .json(&json!({"interfaces": ["tax_summary"], "purpose": "pre_loan", "firms": firms}))
            .send()
    };
    let resp = submit(vec![authorized.to_string(), stranger.to_string()])
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(consumers::poll_once(&exporter).await.unwrap(), 1);
    let view: Value = http
        .get(format!("{base}/v1/exports/{id}"))
        .bearer_auth(&nbcb)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["skipped"][0]["reason"], "no_authorization");
    let link = view["results"][0].as_str().unwrap();
    let part = http.get(link).send().await.unwrap();
    assert_eq!(part.status().as_u16(), 200);
    let csv = part.text().await.unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains(&authorized.to_string()) && !csv.contains(&stranger.to_string()));

    let czbank = issuer
        .bank_token("u", "czbank", &["loan_officer"], 600)
        .unwrap();
    let resp = http
        .get(format!("{base}/v1/exports/{id}"))
        .bearer_auth(&czbank)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    let resp = submit(vec![authorized.to_string(); 10_001]).await.unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "firms", "{problem}");
}
