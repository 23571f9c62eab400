//! How a Lambda function is wired in production: every port from environment variables, built
//! once per sandbox. A function's `main.rs` calls these and hands the result to its handler.
//!
//! | variable | used by | meaning |
//! |---|---|---|
//! | `PUHUI_TABLE` | all | DynamoDB table name |
//! | `PUHUI_DEMAND_QUEUE_URL` | scan-submit, outbox-relay | SQS queue of submitted demands |
//! | `PUHUI_NOTIFY_QUEUE_URL` | demand-dispatch, bank-desk, reminders, outbox-relay, risk-worker, data-quality | SQS queue of notifications |
//! | `PUHUI_NOTIFIER` | notify | `http` (SMS gateway + bank webhooks, default) or `outbox-file` |
//! | `PUHUI_OUTBOX_FILE` | notify with `outbox-file` | where the local stand-in writes |
//! | `PUHUI_WECHAT` | scan-submit | `api` (default) or `dev` (local stand-in, never in production) |
//! | `PUHUI_BUCKET` | risk-scan, risk-worker, risk-desk, model-score, model-batch, data-query (screening, exports), data-export, snapshot-build, data-quality | S3 bucket: `snapshots/<period>/`, `indicator-inputs/`, `models/`, `scoring-jobs/`, `exports/`, `incoming/` and `quality/` (data-quality) |
//! | `PUHUI_RISK_SHARD_QUEUE_URL` | risk-scan | SQS queue of scan tasks (consumed by risk-worker) |
//! | `PUHUI_SCORING_QUEUE_URL` | model-score, outbox-relay | SQS queue of scoring-job chunks (consumed by model-batch) |
//! | `PUHUI_EXPORT_QUEUE_URL` | data-query, outbox-relay | SQS queue of export-job chunks (consumed by data-export) |
//!
//! data-ingest reads the bucket each S3 event names (`incoming/`, `quarantine/`), not
//! `PUHUI_BUCKET`: see [`ingest`].
//!
//! plus those of [`puhui_edge::AuthConfig`], [`puhui_edge::Sessions`],
//! [`puhui_services::financing::FinancingConfig`] and the `puhui-outbound` adapters.

use std::collections::HashMap;
use std::sync::Arc;

use puhui_aws::AwsBackend;
use puhui_edge::{AuthConfig, Authenticator};
use puhui_ports::{BlobStore, Notifier, Queue, SystemClock, Table, UlidGenerator, WeChatIdentity};
use puhui_services::financing::{FinancingConfig, FinancingPorts};
use puhui_services::outbox::Destination;
use puhui_services::risk::RiskPorts;
use puhui_services::scoring::ScoringPorts;
use puhui_services::storage::StoragePorts;

/// A wiring error, reported at start so a function never runs half-configured.
pub type WiringError = Box<dyn std::error::Error + Send + Sync>;

/// A required environment variable.
pub fn env(name: &str) -> Result<String, WiringError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{name} is not set").into())
}

/// The AWS clients (endpoint from `AWS_ENDPOINT_URL` when set) and the table.
pub async fn backend() -> Result<(AwsBackend, Arc<dyn Table>), WiringError> {
    let aws = AwsBackend::from_env().await;
    let table: Arc<dyn Table> = Arc::new(aws.table(env("PUHUI_TABLE")?));
    Ok((aws, table))
}

fn queue_var(d: Destination) -> &'static str {
    match d {
        Destination::DemandSubmitted => "PUHUI_DEMAND_QUEUE_URL",
        Destination::Notifications => "PUHUI_NOTIFY_QUEUE_URL",
        Destination::ScoringJobs => "PUHUI_SCORING_QUEUE_URL",
        Destination::DataExports => "PUHUI_EXPORT_QUEUE_URL",
    }
}

/// The financing ports over the table, with the queues this function sends to.
pub fn financing(
    aws: &AwsBackend,
    table: Arc<dyn Table>,
    sends_to: &[Destination],
) -> Result<FinancingPorts, WiringError> {
    let mut queues: HashMap<Destination, Arc<dyn Queue>> = HashMap::new();
    for d in sends_to {
        queues.insert(*d, Arc::new(aws.queue(env(queue_var(*d))?)));
    }
    Ok(FinancingPorts::new(
        table,
        Arc::new(SystemClock),
        Arc::new(UlidGenerator::default()),
        queues,
        FinancingConfig::from_env()?,
    ))
}

/// Storage ports over the table and `PUHUI_BUCKET`, with an outbox delivering to the queues of
/// `sends_to`.
fn storage(
    aws: &AwsBackend,
    table: Arc<dyn Table>,
    sends_to: &[Destination],
) -> Result<StoragePorts, WiringError> {
    let mut queues: HashMap<Destination, Arc<dyn Queue>> = HashMap::new();
    for d in sends_to {
        queues.insert(*d, Arc::new(aws.queue(env(queue_var(*d))?)));
    }
    Ok(StoragePorts::new(
        table,
        Arc::new(aws.blobs(env("PUHUI_BUCKET")?)),
        Arc::new(SystemClock),
        Arc::new(UlidGenerator::default()),
        queues,
    ))
}

/// The blob store of `PUHUI_BUCKET` (snapshots, for screening).
pub fn blobs(aws: &AwsBackend) -> Result<Arc<dyn BlobStore>, WiringError> {
    Ok(Arc::new(aws.blobs(env("PUHUI_BUCKET")?)))
}

/// The risk ports: the table, the snapshot bucket and the notification queue (alerts send
/// through the outbox).
pub fn risk(aws: &AwsBackend, table: Arc<dyn Table>) -> Result<RiskPorts, WiringError> {
    storage(aws, table, &[Destination::Notifications])
}

/// The data-quality ports: the table, `PUHUI_BUCKET` (incoming files read, reports written
/// under `quality/`) and the notification queue (platform alerts send through the outbox).
pub fn quality(aws: &AwsBackend, table: Arc<dyn Table>) -> Result<StoragePorts, WiringError> {
    storage(aws, table, &[Destination::Notifications])
}

/// The scoring ports: the table, the bucket (models and job results) and, for a function that
/// submits jobs, the scoring queue (chunks go out through the outbox).
pub fn scoring(
    aws: &AwsBackend,
    table: Arc<dyn Table>,
    sends_to: &[Destination],
) -> Result<ScoringPorts, WiringError> {
    storage(aws, table, sends_to)
}

/// The export ports: the table, the bucket (export inputs and parts) and, for a function that
/// submits exports, the data-exports queue (chunks go out through the outbox).
pub fn data_export(
    aws: &AwsBackend,
    table: Arc<dyn Table>,
    sends_to: &[Destination],
) -> Result<StoragePorts, WiringError> {
    storage(aws, table, sends_to)
}

/// The ingest service over the table and `bucket` (data-ingest takes it from each S3 event:
/// the template cannot pass the bucket's name to a function its notification depends on).
pub fn ingest(
    aws: &AwsBackend,
    table: Arc<dyn Table>,
    bucket: &str,
) -> puhui_services::ingest::IngestService {
    puhui_services::ingest::IngestService::new(
        table,
        Arc::new(aws.blobs(bucket)),
        Arc::new(SystemClock),
    )
}

/// The snapshot builder over `PUHUI_BUCKET` (it reads and writes blobs only, no table).
pub async fn snapshot_builder() -> Result<puhui_services::risk::SnapshotBuilder, WiringError> {
    let aws = AwsBackend::from_env().await;
    Ok(puhui_services::risk::SnapshotBuilder::new(Arc::new(
        aws.blobs(env("PUHUI_BUCKET")?),
    )))
}

/// The bank-token verifier.
pub fn authenticator() -> Result<Arc<Authenticator>, WiringError> {
    Ok(Arc::new(Authenticator::new(AuthConfig::from_env()?)?))
}

/// The notifier chosen by `PUHUI_NOTIFIER`.
pub fn notifier() -> Result<Arc<dyn Notifier>, WiringError> {
    use puhui_outbound::notify::{
        HttpSmsNotifier, OutboxFileNotifier, RoutingNotifier, WebhookNotifier,
    };
    match std::env::var("PUHUI_NOTIFIER").as_deref() {
        Ok("outbox-file") => Ok(Arc::new(OutboxFileNotifier::new(env("PUHUI_OUTBOX_FILE")?))),
        Ok("http") | Ok("") | Err(_) => Ok(Arc::new(RoutingNotifier::new(
            Arc::new(HttpSmsNotifier::from_env()?),
            Arc::new(WebhookNotifier::from_env()?),
        ))),
        Ok(other) => Err(format!("PUHUI_NOTIFIER must be http or outbox-file, not {other}").into()),
    }
}

/// The WeChat exchange chosen by `PUHUI_WECHAT`.
pub fn wechat() -> Result<Arc<dyn WeChatIdentity>, WiringError> {
    use puhui_outbound::wechat::{DevWeChat, WeChatApi};
    match std::env::var("PUHUI_WECHAT").as_deref() {
        Ok("dev") => {
            tracing::warn!(
                "PUHUI_WECHAT=dev: development login codes accepted; never in production"
            );
            Ok(Arc::new(DevWeChat::new()))
        }
        Ok("api") | Ok("") | Err(_) => Ok(Arc::new(WeChatApi::from_env()?)),
        Ok(other) => Err(format!("PUHUI_WECHAT must be api or dev, not {other}").into()),
    }
}
