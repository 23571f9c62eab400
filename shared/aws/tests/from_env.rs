//! `AwsBackend::from_env` takes its endpoint from the SDK's standard `AWS_ENDPOINT_URL` and
//! path-style S3 from `PUHUI_S3_FORCE_PATH_STYLE`. The environment is read at start, so the test
//! runs itself again as a child process with those variables set (changing the environment of
//! a running multi-threaded test binary is unsound). Needs the moto server of
//! `tests/scripts/with-moto.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use puhui_aws::{AwsBackend, provision};
use puhui_ports::BlobStore;

const CHILD: &str = "from_env_child";

#[test]
fn from_env_reads_the_standard_endpoint_variable() {
    let endpoint = std::env::var("PUHUI_TEST_AWS_ENDPOINT").expect(
        "PUHUI_TEST_AWS_ENDPOINT is unset: run `tests/scripts/with-moto.sh cargo test -p puhui-aws`",
    );
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            CHILD,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("PUHUI_S3_FORCE_PATH_STYLE", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("PUHUI_TEST_AWS_ENDPOINT")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "child did not run:\n{text}");
}

/// Runs only as the child of the test above.
#[tokio::test]
#[ignore = "run by from_env_reads_the_standard_endpoint_variable"]
async fn from_env_child() {
    let backend = AwsBackend::from_env().await;
    let bucket = format!("from-env-{}", ulid::Ulid::new().to_string().to_lowercase());
    provision::ensure_bucket(backend.s3(), &bucket)
        .await
        .unwrap();
    let blobs = backend.blobs(bucket.as_str());
    blobs
        .put("a/b.txt", b"hi".to_vec(), "text/plain")
        .await
        .unwrap();
    assert_eq!(
        blobs.get("a/b.txt").await.unwrap().as_deref(),
        Some(&b"hi"[..])
    );
    let url = blobs
        .presign_get("a/b.txt", std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .url;
    assert!(
        url.starts_with(&format!(
            "{}/{bucket}/a/b.txt?",
            std::env::var("AWS_ENDPOINT_URL").unwrap()
        )),
        "path-style URL on the configured endpoint: {url}"
    );
    let tables = backend.dynamodb().list_tables().send().await.unwrap();
    let _ = tables.table_names();
}
