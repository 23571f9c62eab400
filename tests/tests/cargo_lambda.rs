//! End to end on the AWS adapter: product-listing runs under `cargo lambda watch`, talks to
//! DynamoDB on a local AWS-API server (moto) through the AWS SDK, and is driven over HTTP by the
//! same walk-through the demo uses; then every committed event fixture is invoked with
//! `cargo lambda invoke` and must answer its expected status.
//!
//! Run through `make test` (or `tests/scripts/with-moto.sh cargo test -p puhui-tests`), which
//! starts moto and puts cargo-lambda on the PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

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

async fn provision_table(endpoint: &str, name: &str) {
    let backend = puhui_aws::provision::backend_for(endpoint).await;
    puhui_aws::provision::ensure_table(backend.dynamodb(), name)
        .await
        .unwrap();
}

async fn wait_until_up(api: &Api) {
    // The first request may wait for cargo-lambda to build and start the function.
    for _ in 0..600 {
        if let Ok(a) = api
            .call(reqwest::Method::GET, "/v1/catalogue", None, &[], None)
            .await
            && a.status.as_u16() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("product-listing did not answer under cargo lambda watch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_listing_under_cargo_lambda_on_the_aws_adapter() {
    let endpoint = std::env::var("PUHUI_TEST_AWS_ENDPOINT").expect(
        "PUHUI_TEST_AWS_ENDPOINT is unset: run through tests/scripts/with-moto.sh (make test does)",
    );
    let table = format!("puhui-e2e-{}", ulid::Ulid::new().to_string().to_lowercase());
    provision_table(&endpoint, &table).await;

    let work = std::env::temp_dir().join(format!("puhui-e2e-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&work).unwrap();
    let issuer = DevIssuer::generate().unwrap();
    let jwks = work.join("jwks.json");
    std::fs::write(&jwks, issuer.jwks_json()).unwrap();
    let env_file = work.join("function.env");
    std::fs::write(
        &env_file,
        format!(
            "PUHUI_TABLE={table}\nAWS_ENDPOINT_URL={endpoint}\nAWS_ACCESS_KEY_ID=test\nAWS_SECRET_ACCESS_KEY=test\n\
             AWS_REGION=us-east-1\nPUHUI_JWKS_PATH={}\nRUST_LOG=warn\n",
            jwks.display()
        ),
    )
    .unwrap();

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
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start cargo-lambda (make tools installs it)");
    let _emulator = Emulator(child);

    // HTTP through the emulator's function URL, on DynamoDB through the SDK.
    let api = Api::new(&format!(
        "http://127.0.0.1:{port}/lambda-url/product-listing"
    ));
    wait_until_up(&api).await;
    assert_eq!(demo::seed(&api, &issuer, 11).await.unwrap(), 12);
    demo::walkthrough(&api, &issuer).await.unwrap();

    // Every committed fixture answers its expected status.
    let fixtures = repo_root().join("events/product-listing");
    let expected: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(fixtures.join("expected.json")).unwrap()).unwrap();
    let mut wrong = Vec::new();
    for (file, status) in &expected {
        let out = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                "product-listing",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
            ])
            .arg("--data-file")
            .arg(fixtures.join(file))
            .current_dir(repo_root())
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let got = serde_json::from_str::<Value>(stdout.trim())
            .ok()
            .and_then(|v| v["statusCode"].as_u64());
        if got != status.as_u64() {
            wrong.push(format!(
                "{file}: expected {status}, got {got:?} ({} {})",
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "fixtures answered wrongly:\n{}",
        wrong.join("\n")
    );
    std::fs::remove_dir_all(&work).ok();
}
