//! The conformance suite against DynamoDB, S3 and SQS as served by a local AWS-API server
//! (moto). Run through `tests/scripts/with-moto.sh` (as `make test` does), which exports its
//! endpoint as `PUHUI_TEST_AWS_ENDPOINT`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use puhui_aws::AwsBackend;
use puhui_aws::provision;
use puhui_conformance::{BlobFixture, QueueFixture};
use puhui_ports::{BlobStore, Queue, Table};

const TABLE: &str = "puhui-conformance";
const BUCKET: &str = "puhui-conformance";

async fn backend() -> AwsBackend {
    let endpoint = std::env::var("PUHUI_TEST_AWS_ENDPOINT").expect(
        "PUHUI_TEST_AWS_ENDPOINT is unset: run `tests/scripts/with-moto.sh cargo test -p puhui-aws` (make test does)",
    );
    provision::backend_for(&endpoint).await
}

async fn table() -> Arc<dyn Table> {
    let b = backend().await;
    provision::ensure_table(b.dynamodb(), TABLE).await.unwrap();
    Arc::new(b.table(TABLE))
}

async fn blobs() -> BlobFixture {
    let b = backend().await;
    provision::ensure_bucket(b.s3(), BUCKET).await.unwrap();
    let store: Arc<dyn BlobStore> = Arc::new(b.blobs(BUCKET));
    let fetch: puhui_conformance::blob::Fetch = Arc::new(|url: String| {
        Box::pin(async move {
            let resp = reqwest::get(&url).await.ok()?;
            if !resp.status().is_success() {
                return None;
            }
            resp.bytes().await.ok().map(|b| b.to_vec())
        })
    });
    BlobFixture { store, fetch }
}

async fn queues() -> QueueFixture {
    let b = backend().await;
    let sqs = b.sqs();
    let name = format!("conf-{}", ulid::Ulid::new().to_string().to_lowercase());
    let dlq_url = provision::ensure_queue(sqs, &format!("{name}-dlq"), false, None)
        .await
        .unwrap();
    let dlq_arn = provision::queue_arn(sqs, &dlq_url).await.unwrap();
    let main_url = provision::ensure_queue(sqs, &name, false, Some((&dlq_arn, 2)))
        .await
        .unwrap();
    let fifo_url = provision::ensure_queue(sqs, &format!("{name}-fifo"), true, None)
        .await
        .unwrap();
    let main: Arc<dyn Queue> = Arc::new(b.queue(main_url));
    let dead_letter: Arc<dyn Queue> = Arc::new(b.queue(dlq_url));
    let fifo: Arc<dyn Queue> = Arc::new(b.queue(fifo_url));
    QueueFixture {
        main,
        dead_letter,
        max_receives: 2,
        fifo,
    }
}

puhui_conformance::table_tests!(table);
puhui_conformance::blob_tests!(blobs);
puhui_conformance::queue_tests!(queues);
