//! End to end on the AWS adapter: every function runs under `cargo lambda watch` and talks to
//! DynamoDB, SQS and S3 on a local AWS-API server (moto) through the AWS SDK.
//!
//! - product-listing is driven over HTTP by the demo's walk-through;
//! - the financing story runs across scan-submit, bank-desk and product-listing (each on its
//!   own function URL), while a pump plays Lambda's SQS event source mapping: it receives from
//!   the queues, invokes demand-dispatch and notify with the batch, and deletes what they did
//!   not report as failed; notify delivers through the real HTTP adapters to a local SMS
//!   gateway and webhook receiver, whose requests are checked (signature, raw phone);
//! - every committed event fixture is invoked with `cargo lambda invoke` and must answer as
//!   its directory's `expected.json` says — among them those of the risk functions (risk-scan,
//!   risk-worker, risk-desk), which run with an empty snapshot bucket and the risk-shard queue,
//!   and of the scoring functions (model-score, model-batch), which store model files and job
//!   inputs in that bucket and send job chunks to the scoring-jobs queue (nothing consumes it
//!   here), and of data-query, which reads and writes the table (its audit records, quota
//!   counters and export jobs), keeps export inputs in the bucket, sends export chunks to the
//!   data-exports queue (nothing consumes it here) and verifies applicant sessions with
//!   scan-submit's secret, and of data-export, whose fixtures name jobs that do not exist, and of
//!   snapshot-build, which finds nothing to build in the empty snapshot bucket, and of
//!   data-quality, which reports on days no file was delivered to the run's bucket.
//!
//! Run through `make test` (or `tests/scripts/with-moto.sh cargo test -p puhui-tests`), which
//! starts moto and puts cargo-lambda on the PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use puhui_ports::Queue;
use puhui_samplekit::demo::{self, Api};
use puhui_samplekit::tokens::DevIssuer;
use serde_json::Value;
use tokio::process::{Child, Command};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn cargo_lambda() -> PathBuf {
    let venv = repo_root().join(".venv/bin/cargo-lambda");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("cargo-lambda")
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the emulator (and so its function) when the test ends, pass or fail.
struct Emulator(Child);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

/// The functions the emulator serves, as named by their crates.
const FUNCTIONS: [&str; 17] = [
    "product-listing",
    "scan-submit",
    "bank-desk",
    "demand-dispatch",
    "notify",
    "reminders",
    "outbox-relay",
    "risk-scan",
    "risk-worker",
    "risk-desk",
    "model-score",
    "model-batch",
    "data-query",
    "data-ingest",
    "data-export",
    "snapshot-build",
    "data-quality",
];

const WEBHOOK_SECRET: &str = "e2e-webhook-secret";
const SMS_SECRET: &str = "e2e-sms-secret";

/// What the local SMS gateway and bank webhook endpoints received: (path, signature, body).
type Received = Arc<Mutex<Vec<(String, String, Value)>>>;

async fn start_receiver() -> (String, Received) {
    use axum::extract::State;
    use axum::http::{HeaderMap, Uri};
    let received: Received = Arc::default();
    async fn record(
        State(r): State<Received>,
        uri: Uri,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> &'static str {
        let sig = headers
            .get("x-puhui-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let secret = if uri.path() == "/sms" {
            SMS_SECRET
        } else {
            WEBHOOK_SECRET
        };
        assert!(
            puhui_outbound::verify(secret.as_bytes(), &body, &sig),
            "bad signature on {uri}"
        );
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        r.lock().unwrap().push((uri.path().to_owned(), sig, value));
        "ok"
    }
    let app = axum::Router::new()
        .fallback(axum::routing::post(record))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (url, received)
}

/// Invokes a function through the emulator with a JSON payload; returns its JSON answer.
async fn invoke(port: u16, function: &str, payload_file: &Path) -> Result<Value, String> {
    let out = Command::new(cargo_lambda())
        .args([
            "lambda",
            "invoke",
            function,
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ])
        .arg("--data-file")
        .arg(payload_file)
        .current_dir(repo_root())
        .output()
        .await
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).map_err(|_| {
        format!(
            "{function}: {} {}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

/// One SQS batch as Lambda's event source mapping delivers it.
fn sqs_event(messages: &[puhui_ports::ReceivedMessage]) -> Value {
    serde_json::json!({"Records": messages.iter().map(|m| serde_json::json!({
        "messageId": m.id, "receiptHandle": m.receipt, "body": m.body,
        "attributes": {"ApproximateReceiveCount": m.receive_count.to_string()},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:e2e", "awsRegion": "us-east-1"
    })).collect::<Vec<_>>()})
}

/// Plays the SQS event source mapping for `function` until the process ends.
async fn pump(port: u16, queue: Arc<dyn Queue>, function: &'static str, work: PathBuf) {
    let file = work.join(format!("{function}-batch.json"));
    loop {
        let batch = match queue.receive(10, Duration::from_secs(60)).await {
            Ok(b) if !b.is_empty() => b,
            _ => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        std::fs::write(&file, sqs_event(&batch).to_string()).unwrap();
        let answer = invoke(port, function, &file).await.unwrap_or_else(|e| {
            panic!("{function} failed on its batch: {e}");
        });
        let failed: Vec<&str> = answer["batchItemFailures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["itemIdentifier"].as_str())
            .collect();
        for m in &batch {
            if !failed.contains(&m.id.as_str()) {
                queue.delete(&m.receipt).await.unwrap();
            }
        }
    }
}

async fn wait_until_up(api: &Api, path: &str, want: u16) {
    // The first request may wait for cargo-lambda to build and start the function; the env
    // file is also only parsed then, so a bad one shows up here.
    for _ in 0..300 {
        if let Ok(a) = api.call(reqwest::Method::GET, path, None, &[], None).await
            && a.status.as_u16() == want
        {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("{path} did not answer {want} under cargo lambda watch");
}

/// The entries of an `expected.json` in the order the file lists them (`serde_json::Map` sorts
/// its keys): a directory's fixtures may build on one another, e.g. model-score's upload comes
/// before the reads and the activation of the uploaded model.
fn in_file_order(raw: &str, map: serde_json::Map<String, Value>) -> Vec<(String, Value)> {
    let mut entries: Vec<(String, Value)> = map.into_iter().collect();
    // Keys are fixture file names, quoted once each as a key of the top-level object.
    entries.sort_by_key(|(file, _)| raw.find(&format!("\"{file}\":")).unwrap_or(usize::MAX));
    entries
}

/// Every fixture in `events/<function>/`, in the order its `expected.json` lists them, answers
/// as that file says: a number is the HTTP status; `{"batchItemFailures": [ids]}` the message
/// ids reported failed; any other object must be contained in the answer.
async fn check_fixtures(port: u16) -> Vec<String> {
    let mut wrong = Vec::new();
    for function in FUNCTIONS {
        let dir = repo_root().join("events").join(function);
        let raw = std::fs::read_to_string(dir.join("expected.json")).unwrap_or_else(|e| {
            panic!("events/{function}/expected.json: {e}");
        });
        let expected = in_file_order(&raw, serde_json::from_str(&raw).unwrap());
        assert!(!expected.is_empty(), "events/{function} has no cases");
        for (file, want) in &expected {
            let got = match invoke(port, function, &dir.join(file)).await {
                Ok(v) => v,
                Err(e) => {
                    wrong.push(format!("{function}/{file}: {e}"));
                    continue;
                }
            };
            let ok = match want {
                Value::Number(n) => got["statusCode"].as_u64() == n.as_u64(),
                Value::Object(o) if o.contains_key("batchItemFailures") => {
                    let ids = |v: &Value| {
                        let mut ids: Vec<String> = v
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|x| {
                                x.as_str()
                                    .or_else(|| x["itemIdentifier"].as_str())
                                    .unwrap_or_default()
                                    .to_owned()
                            })
                            .collect();
                        ids.sort();
                        ids
                    };
                    ids(&o["batchItemFailures"]) == ids(&got["batchItemFailures"])
                }
                Value::Object(o) => o.iter().all(|(k, v)| &got[k] == v),
                _ => false,
            };
            if !ok {
                wrong.push(format!("{function}/{file}: expected {want}, got {got}"));
            }
        }
    }
    wrong
}

/// The bucket of `events/data-ingest/` and the objects its good fixtures announce (see
/// `events/generate.py`): a registration file and a tax-credit file whose key needs encoding.
const INGEST_BUCKET: &str = "puhui-e2e-ingest";

/// Delivers the files; returns the raw personal values (C2 and C3 columns) they carry.
async fn deliver_ingest_files(aws: &puhui_aws::AwsBackend) -> Vec<String> {
    use puhui_domain::interfaces::Sensitivity;
    use puhui_ports::BlobStore;
    use puhui_samplekit::govdata;
    puhui_aws::provision::ensure_bucket(aws.s3(), INGEST_BUCKET)
        .await
        .unwrap();
    let blobs = aws.blobs(INGEST_BUCKET);
    let catalogue = puhui_domain::sources::SourceCatalogue::builtin();
    let firms = govdata::firms(30, 17);
    let mut personal = Vec::new();
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
    for (source, key) in [
        (
            "market_regulation_registration",
            "incoming/market_regulation_registration/2026-11-23/market_regulation_registration.csv",
        ),
        (
            "tax_credit",
            "incoming/tax_credit/2026-11-23/纳税信用 A级+B级.csv",
        ),
    ] {
        let source = catalogue.get(source).unwrap();
        let file = govdata::batch(source, &firms, as_of, 5, 3);
        blobs.put(key, file.utf8(), "text/csv").await.unwrap();
        for f in &source.fields {
            if matches!(f.sensitivity, Sensitivity::C2 | Sensitivity::C3) {
                personal.extend(file.loads.values().filter_map(|c| c.get(&f.name)).cloned());
            }
        }
    }
    personal
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_function_under_cargo_lambda_on_the_aws_adapter() {
    let endpoint = std::env::var("PUHUI_TEST_AWS_ENDPOINT").expect(
        "PUHUI_TEST_AWS_ENDPOINT is unset: run through tests/scripts/with-moto.sh (make test does)",
    );
    let run = ulid::Ulid::new().to_string().to_lowercase();
    let backend = puhui_aws::provision::backend_for(&endpoint).await;
    let table = format!("puhui-e2e-{run}");
    puhui_aws::provision::ensure_table(backend.dynamodb(), &table)
        .await
        .unwrap();
    // The risk functions' snapshot bucket, left without snapshots so risk-scan finds none; the
    // scoring functions keep model files and jobs in it (models/, scoring-jobs/).
    let bucket = format!("puhui-e2e-{run}");
    puhui_aws::provision::ensure_bucket(backend.s3(), &bucket)
        .await
        .unwrap();
    let mut queues = Vec::new();
    for name in [
        "demand",
        "notify",
        "risk-shard",
        "scoring-jobs",
        "data-exports",
    ] {
        let dlq = puhui_aws::provision::ensure_queue(
            backend.sqs(),
            &format!("e2e-{name}-dlq-{run}"),
            false,
            None,
        )
        .await
        .unwrap();
        let arn = puhui_aws::provision::queue_arn(backend.sqs(), &dlq)
            .await
            .unwrap();
        let url = puhui_aws::provision::ensure_queue(
            backend.sqs(),
            &format!("e2e-{name}-{run}"),
            false,
            Some((&arn, 5)),
        )
        .await
        .unwrap();
        queues.push(url);
    }
    let (receiver, received) = start_receiver().await;

    let work = std::env::temp_dir().join(format!("puhui-e2e-{run}"));
    std::fs::create_dir_all(&work).unwrap();
    let issuer = DevIssuer::generate().unwrap();
    let jwks = work.join("jwks.json");
    std::fs::write(&jwks, issuer.jwks_json()).unwrap();
    let env_file = work.join("function.env");
    let banks: Vec<String> = puhui_samplekit::data::BANKS
        .iter()
        .map(|b| format!("\"{}\":\"{receiver}/webhook/{}\"", b.id, b.id))
        .collect();
    std::fs::write(
        &env_file,
        format!(
            "PUHUI_TABLE={table}\nAWS_ENDPOINT_URL={endpoint}\nAWS_ACCESS_KEY_ID=test\nAWS_SECRET_ACCESS_KEY=test\n\
             AWS_REGION=us-east-1\nPUHUI_JWKS_PATH={}\nRUST_LOG='info,puhui=debug'\n\
             PUHUI_DEMAND_QUEUE_URL={}\nPUHUI_NOTIFY_QUEUE_URL={}\nPUHUI_RISK_SHARD_QUEUE_URL={}\n\
             PUHUI_SCORING_QUEUE_URL={}\nPUHUI_EXPORT_QUEUE_URL={}\n\
             PUHUI_BUCKET={bucket}\nPUHUI_S3_FORCE_PATH_STYLE=true\n\
             PUHUI_SESSION_SECRET=e2e-session-secret-at-least-32-bytes-long\nPUHUI_WECHAT=dev\n\
             PUHUI_DATA_QUERY_DAILY_QUOTA=1000\nPUHUI_DATA_QUERY_BANK_QUOTAS='nbcb=500,fixture-bank=50'\n\
             PUHUI_NOTIFIER=http\nPUHUI_SMS_GATEWAY_URL={receiver}/sms\nPUHUI_SMS_GATEWAY_SECRET={SMS_SECRET}\n\
             PUHUI_BANK_WEBHOOKS='{{{}}}'\nPUHUI_WEBHOOK_SECRET={WEBHOOK_SECRET}\n",
            jwks.display(),
            queues[0],
            queues[1],
            queues[2],
            queues[3],
            queues[4],
            banks.join(",")
        ),
    )
    .unwrap();

    // The emulator's output, the functions' log lines among it, is kept for the final scan.
    let log_path = work.join("emulator.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let child = Command::new(cargo_lambda())
        .args([
            "lambda",
            "watch",
            "--ignore-changes",
            "-A",
            "127.0.0.1",
            "-P",
            &port.to_string(),
        ])
        .arg("--env-file")
        .arg(&env_file)
        .current_dir(repo_root())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start cargo-lambda (make tools installs it)");
    let _emulator = Emulator(child);
    let url = |f: &str| format!("http://127.0.0.1:{port}/lambda-url/{f}");

    // Product listing over its function URL, on DynamoDB through the SDK.
    let products = Api::new(&url("product-listing"));
    wait_until_up(&products, "/v1/catalogue", 200).await;
    assert_eq!(demo::seed(&products, &issuer, 11).await.unwrap(), 12);
    demo::walkthrough(&products, &issuer).await.unwrap();

    // The financing story across the functions, with the queues pumped into the consumers.
    let api = Api::new(&url("product-listing"))
        .route("/v1/applicant", &url("scan-submit"))
        .route("/v1/loan-codes", &url("scan-submit"))
        .route("/v1/desk", &url("bank-desk"));
    wait_until_up(&api, "/v1/loan-codes/warm-up", 404).await;
    wait_until_up(&api, "/v1/desk/demands", 401).await;
    let aws = puhui_aws::AwsBackend::from_config(
        &puhui_aws::provision::sdk_config_for(&endpoint).await,
        true,
    );
    let demand_q: Arc<dyn Queue> = Arc::new(aws.queue(&queues[0]));
    let notify_q: Arc<dyn Queue> = Arc::new(aws.queue(&queues[1]));
    let pumps = [
        tokio::spawn(pump(port, demand_q, "demand-dispatch", work.clone())),
        tokio::spawn(pump(port, notify_q, "notify", work.clone())),
    ];
    let story = demo::StoryPaths {
        outbox: None,
        qr_dir: None,
    };
    demo::financing_story(&api, &issuer, 1, story)
        .await
        .unwrap();

    // received + 4 offers + 3 claims + 3 progress steps, delivered through the HTTP adapters.
    let mut sent = Vec::new();
    for _ in 0..600 {
        sent = received.lock().unwrap().clone();
        if sent.len() >= 11 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for p in &pumps {
        p.abort();
    }
    let sms: Vec<&Value> = sent
        .iter()
        .filter(|(path, _, _)| path == "/sms")
        .map(|(_, _, b)| b)
        .collect();
    let hooks: Vec<&str> = sent
        .iter()
        .filter(|(path, _, _)| path.starts_with("/webhook/"))
        .map(|(path, _, _)| path.as_str())
        .collect();
    assert_eq!(sms.len(), 7, "received + 3 claimed + 3 progress: {sent:?}");
    assert!(sms.iter().all(|b| b["phone"] == "13812345678"), "{sms:?}");
    let mut templates: Vec<&str> = sms.iter().filter_map(|b| b["template"].as_str()).collect();
    templates.sort();
    assert_eq!(
        templates,
        vec![
            "claimed",
            "claimed",
            "claimed",
            "demand_received",
            "progress",
            "progress",
            "progress"
        ]
    );
    assert_eq!(hooks.len(), 4, "one offer per bank: {hooks:?}");

    // data-ingest's fixtures name their own bucket (the function reads the bucket each S3
    // record names); the files two of them announce are put there first.
    let personal = deliver_ingest_files(&backend).await;
    assert!(!personal.is_empty(), "the ingest files carry personal data");

    let wrong = check_fixtures(port).await;
    assert!(
        wrong.is_empty(),
        "fixtures answered wrongly:\n{}",
        wrong.join("\n")
    );

    // No function logged a raw personal value: the sample data's, the applicant's phone the
    // SMS gateway got in full, the ingested files' C2/C3 columns, or anything ID- or
    // phone-shaped. The functions' request lines must be there, so the scan covered them.
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("\"request done\""),
        "no function's log reached the emulator's output"
    );
    let scanner = puhui_samplekit::pii::Scanner::sample()
        .planting(personal)
        .planting(
            sms.iter()
                .filter_map(|b| b["phone"].as_str().map(str::to_owned)),
        );
    match scanner.check_log("cargo lambda watch", &log) {
        Ok(lines) => eprintln!("{lines} log lines of the functions scanned: no raw personal data"),
        Err(leaks) => panic!("{leaks}"),
    }
    std::fs::remove_dir_all(&work).ok();
}
