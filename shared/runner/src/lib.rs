//! The local runner: Puhui on one machine with no external services. Every HTTP function's
//! router is mounted on one port, queue consumers poll their SQLite queues in-process, and
//! schedules fire on timers — the same handlers the Lambdas run, on the embedded backend.
//!
//! A new function plugs in with one line in [`Runner::functions`]: its routes, its consumers or
//! its schedules.

pub mod consumers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::HashMap;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use puhui_api::applicant::ApplicantApi;
use puhui_api::data_export::DataExportApi;
use puhui_api::desk::DeskApi;
use puhui_api::events;
use puhui_api::quality::QualityApi;
use puhui_api::risk::RiskApi;
use puhui_api::scoring::ScoringApi;
use puhui_edge::{AuthConfig, Authenticator, Sessions};
use puhui_embedded::{LocalBlobStore, PresignError, QueueConfig, SqliteQueue, SqliteTable};
use puhui_outbound::notify::OutboxFileNotifier;
use puhui_outbound::wechat::DevWeChat;
use puhui_ports::{Clock, Notifier, Queue, SystemClock, UlidGenerator, WeChatIdentity};
use puhui_services::financing::{
    DispatchService, FinancingConfig, FinancingPorts, NotificationService, ReminderService,
};
use puhui_services::ingest::IngestService;
use puhui_services::outbox::Destination;
use puhui_services::quality::DataQualityService;
use puhui_services::risk::{RiskPorts, ScanPlanner, ShardWorker, SnapshotBuilder};
use puhui_services::scoring::ScoringPorts;
use puhui_services::storage::StoragePorts;

pub use consumers::{Consumer, Schedule};

/// Runner settings, from the environment with local defaults.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Listen address (`PUHUI_ADDR`, default `127.0.0.1:8080`; port 0 picks a free one).
    pub addr: SocketAddr,
    /// Where the SQLite files and blobs live (`PUHUI_DATA_DIR`, default `.puhui/data`).
    pub data_dir: PathBuf,
    /// Where the development signing key and JWKS live (`PUHUI_DEV_KEYS`, default `.puhui/dev-keys`).
    pub dev_keys: PathBuf,
}

impl RunnerConfig {
    /// Reads the configuration.
    pub fn from_env() -> Result<Self, String> {
        let var = |k: &str, d: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| d.to_owned())
        };
        let addr = var("PUHUI_ADDR", "127.0.0.1:8080");
        Ok(RunnerConfig {
            addr: addr
                .parse()
                .map_err(|e| format!("PUHUI_ADDR={addr}: {e}"))?,
            data_dir: var("PUHUI_DATA_DIR", ".puhui/data").into(),
            dev_keys: var("PUHUI_DEV_KEYS", ".puhui/dev-keys").into(),
        })
    }
}

/// The assembled local platform: routes plus background work.
pub struct Runner {
    /// Every HTTP route, with the shared layers applied.
    pub app: Router,
    /// Queue consumers to poll.
    pub consumers: Vec<Consumer>,
    /// Timed jobs.
    pub schedules: Vec<Schedule>,
    /// The ports everything runs on.
    pub backend: Backend,
}

/// Ports of the embedded backend, shared by every function in the runner.
#[derive(Clone)]
pub struct Backend {
    /// The document table.
    pub table: Arc<SqliteTable>,
    /// The blob store (presigned URLs served at `/blobs/...`).
    pub blobs: Arc<LocalBlobStore>,
    /// Token verification (dev keys unless `PUHUI_JWKS`/`PUHUI_JWKS_PATH` is set).
    pub auth: Arc<Authenticator>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The queue of submitted demands (consumed by demand-dispatch).
    pub demand_queue: Arc<SqliteQueue>,
    /// The queue of notifications (consumed by notify).
    pub notify_queue: Arc<SqliteQueue>,
    /// The queue of scan tasks (consumed by risk-worker).
    pub risk_shard_queue: Arc<SqliteQueue>,
    /// The queue of scoring-job chunks (consumed by model-batch).
    pub scoring_queue: Arc<SqliteQueue>,
    /// The queue of export-job chunks (consumed by data-export).
    pub export_queue: Arc<SqliteQueue>,
    /// Applicant sessions (secret created on first run).
    pub sessions: Arc<Sessions>,
    /// The WeChat exchange (the development stand-in).
    pub wechat: Arc<dyn WeChatIdentity>,
    /// Where notifications go (the local outbox file).
    pub notifier: Arc<dyn Notifier>,
    /// Financing settings.
    pub financing: FinancingConfig,
}

/// Receives after which a message goes to its queue's dead-letter queue.
pub const MAX_RECEIVES: u32 = 5;

/// Where the local notifier writes, under the data directory.
pub const OUTBOX_FILE: &str = "notifications.jsonl";

impl Runner {
    /// Opens the embedded backend under `config.data_dir` and mounts every function.
    pub fn build(
        config: &RunnerConfig,
        base_url: &str,
    ) -> Result<Runner, Box<dyn std::error::Error>> {
        std::fs::create_dir_all(&config.data_dir)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let table = Arc::new(SqliteTable::open(config.data_dir.join("puhui.db"))?);
        let blobs = Arc::new(LocalBlobStore::new(
            config.data_dir.join("blobs"),
            base_url.to_owned(),
            blob_secret(config)?,
            clock.clone(),
        ));
        let mut auth_config = AuthConfig::from_env()?;
        if auth_config.jwks.keys.is_empty() {
            // No keys configured: trust the local development issuer (created on first run).
            let dev = puhui_samplekit::tokens::DevIssuer::load_or_create(&config.dev_keys)?;
            auth_config.jwks = serde_json::from_str(&dev.jwks_json())?;
        }
        let auth = Arc::new(Authenticator::new(auth_config)?);
        let data_dir = &config.data_dir;
        let queue = |name: &str| {
            let config = QueueConfig {
                max_receives: MAX_RECEIVES,
                fifo: false,
            };
            SqliteQueue::open(data_dir.join("queues.db"), name, config, clock.clone()).map(Arc::new)
        };
        let mut financing = FinancingConfig::from_env()?;
        for bank in puhui_samplekit::data::BANKS {
            if let Ok(id) = puhui_domain::BankId::parse(bank.id) {
                financing
                    .bank_names
                    .entry(id)
                    .or_insert_with(|| bank.name.to_owned());
            }
        }
        let backend = Backend {
            demand_queue: queue("demand-submitted")?,
            notify_queue: queue("notifications")?,
            risk_shard_queue: queue("risk-shard")?,
            scoring_queue: queue("scoring-jobs")?,
            export_queue: queue("data-exports")?,
            sessions: Arc::new(Sessions::new(
                &secret_file(config, "session-secret")?,
                std::time::Duration::from_secs(1800),
            )?),
            wechat: Arc::new(DevWeChat::new()),
            notifier: Arc::new(OutboxFileNotifier::new(config.data_dir.join(OUTBOX_FILE))),
            financing,
            table,
            blobs,
            auth,
            clock,
        };
        Ok(Self::functions(&backend))
    }

    /// The financing ports over the embedded table and both queues.
    pub fn financing_ports(b: &Backend) -> FinancingPorts {
        let mut queues: HashMap<Destination, Arc<dyn Queue>> = HashMap::new();
        queues.insert(Destination::DemandSubmitted, b.demand_queue.clone());
        queues.insert(Destination::Notifications, b.notify_queue.clone());
        // The relay flushes this outbox: it must reach every queue any writer stages for.
        queues.insert(Destination::ScoringJobs, b.scoring_queue.clone());
        queues.insert(Destination::DataExports, b.export_queue.clone());
        FinancingPorts::new(
            b.table.clone(),
            b.clock.clone(),
            Arc::new(UlidGenerator::default()),
            queues,
            b.financing.clone(),
        )
    }

    /// Storage ports over the embedded table and blob store, with an outbox delivering to
    /// `destination`'s queue (risk: notifications; scoring and exports: job chunks).
    fn storage_ports(
        b: &Backend,
        destination: Destination,
        queue: Arc<SqliteQueue>,
    ) -> StoragePorts {
        let queue: Arc<dyn Queue> = queue;
        StoragePorts::new(
            b.table.clone(),
            b.blobs.clone(),
            b.clock.clone(),
            Arc::new(UlidGenerator::default()),
            HashMap::from([(destination, queue)]),
        )
    }

    /// The risk ports over the embedded table, blob store and notification queue.
    pub fn risk_ports(b: &Backend) -> RiskPorts {
        Self::storage_ports(b, Destination::Notifications, b.notify_queue.clone())
    }

    /// The scoring ports over the embedded table, blob store and scoring queue.
    pub fn scoring_ports(b: &Backend) -> ScoringPorts {
        Self::storage_ports(b, Destination::ScoringJobs, b.scoring_queue.clone())
    }

    /// The export ports over the embedded table, blob store and data-exports queue.
    pub fn export_ports(b: &Backend) -> StoragePorts {
        Self::storage_ports(b, Destination::DataExports, b.export_queue.clone())
    }

    /// Every function of the platform. Add a function here, one line each.
    pub fn functions(b: &Backend) -> Runner {
        let ports = Self::financing_ports(b);
        let dispatch = Arc::new(DispatchService::new(ports.clone()));
        let notify = Arc::new(NotificationService::new(
            b.table.clone(),
            b.clock.clone(),
            b.notifier.clone(),
        ));
        let reminders = Arc::new(ReminderService::new(ports.clone()));
        let outbox = ports.outbox.clone();
        let risk = Self::risk_ports(b);
        let worker = Arc::new(ShardWorker::new(risk.clone()));
        let planner = Arc::new(ScanPlanner::new(risk.clone(), b.risk_shard_queue.clone()));
        let scoring = ScoringApi::new(Self::scoring_ports(b), b.auth.clone());
        let batch = scoring.batch.clone();
        let exports = DataExportApi::new(Self::export_ports(b), quotas(), b.auth.clone());
        let exporter = exports.service.clone();
        let ingest = Arc::new(IngestService::new(
            b.table.clone(),
            b.blobs.clone(),
            b.clock.clone(),
        ));
        let incoming = b.blobs.clone();
        let snapshots = Arc::new(SnapshotBuilder::new(b.blobs.clone()));
        let snapshot_clock = b.clock.clone();
        let quality = Arc::new(DataQualityService::new(Self::risk_ports(b)));
        let quality_clock = b.clock.clone();
        let routes = Router::new()
            .merge(puhui_api::products::routes(
                puhui_api::products::ProductsApi::new(b.table.clone(), b.auth.clone()),
            ))
            .merge(puhui_api::applicant::routes(ApplicantApi::new(
                ports.clone(),
                b.wechat.clone(),
                b.sessions.clone(),
            )))
            .merge(puhui_api::desk::routes(DeskApi::new(
                ports.clone(),
                b.auth.clone(),
            )))
            .merge(puhui_api::risk::routes(RiskApi::new(risk, b.auth.clone())))
            .merge(puhui_api::scoring::routes(scoring))
            .merge(puhui_api::data_query::routes(data_query_api(b)))
            .merge(puhui_api::screening::routes(
                puhui_api::screening::ScreeningApi::new(
                    b.table.clone(),
                    b.blobs.clone(),
                    b.clock.clone(),
                    Arc::new(UlidGenerator::default()),
                    b.auth.clone(),
                ),
            ))
            .merge(puhui_api::data_export::routes(exports))
            .merge(puhui_api::quality::routes(QualityApi::new(
                b.table.clone(),
                b.auth.clone(),
            )))
            .merge(puhui_api::openapi_routes())
            .merge(blob_routes(b.blobs.clone()));
        Runner {
            app: puhui_api::finish(routes, puhui_edge::max_body_bytes_from_env()),
            consumers: vec![
                Consumer::new("demand-dispatch", b.demand_queue.clone(), move |e| {
                    let s = dispatch.clone();
                    Box::pin(async move { batch_result(events::dispatch_batch(&s, e).await) })
                }),
                Consumer::new("notify", b.notify_queue.clone(), move |e| {
                    let s = notify.clone();
                    Box::pin(async move { batch_result(events::notify_batch(&s, e).await) })
                }),
                Consumer::new("risk-worker", b.risk_shard_queue.clone(), move |e| {
                    let w = worker.clone();
                    Box::pin(async move { batch_result(events::risk_shard_batch(&w, e).await) })
                }),
                Consumer::new("model-batch", b.scoring_queue.clone(), move |e| {
                    let s = batch.clone();
                    Box::pin(async move { batch_result(events::scoring_job_batch(&s, e).await) })
                }),
                Consumer::new("data-export", b.export_queue.clone(), move |e| {
                    let s = exporter.clone();
                    Box::pin(async move { batch_result(events::export_job_batch(&s, e).await) })
                }),
            ],
            schedules: vec![
                Schedule::new(
                    "reminders",
                    interval_from_env("PUHUI_REMINDER_INTERVAL_SECS", 60),
                    move || {
                        let s = reminders.clone();
                        Box::pin(async move {
                            if let Err(e) = events::remind(&s).await {
                                tracing::warn!(error = %e, "reminder run failed");
                            }
                        })
                    },
                ),
                Schedule::new(
                    "risk-scan",
                    interval_from_env("PUHUI_RISK_SCAN_INTERVAL_SECS", 300),
                    move || {
                        let p = planner.clone();
                        Box::pin(async move {
                            match events::risk_scan(&p).await {
                                Ok(outcome) => tracing::info!(?outcome, "risk scan planner ran"),
                                Err(e) => tracing::warn!(error = %e, "risk scan planning failed"),
                            }
                        })
                    },
                ),
                Schedule::new(
                    "outbox-relay",
                    interval_from_env("PUHUI_RELAY_INTERVAL_SECS", 30),
                    move || {
                        let o = outbox.clone();
                        Box::pin(async move {
                            if let Err(e) = events::relay(&o).await {
                                tracing::warn!(error = %e, "outbox relay failed");
                            }
                        })
                    },
                ),
                // The local blob store raises no events: data-ingest sweeps incoming/ instead
                // (a file already ingested answers from its marker and changes nothing).
                Schedule::new(
                    "data-ingest",
                    interval_from_env("PUHUI_INGEST_INTERVAL_SECS", 5),
                    move || {
                        let (s, blobs) = (ingest.clone(), incoming.clone());
                        Box::pin(async move { ingest_incoming(&s, blobs.as_ref()).await })
                    },
                ),
                // The month just closed, as the Lambda's monthly schedule builds it (a month
                // already built is rebuilt to the same content). Another month: `samplekit
                // snapshot-build --dir <data dir>/blobs --period YYYY-MM`.
                Schedule::new(
                    "snapshot-build",
                    interval_from_env("PUHUI_SNAPSHOT_BUILD_INTERVAL_SECS", 86_400),
                    move || {
                        let (s, clock) = (snapshots.clone(), snapshot_clock.clone());
                        Box::pin(async move {
                            let event = serde_json::json!({});
                            match events::snapshot_build(&s, clock.now(), &event).await {
                                Ok(a) => tracing::info!(outcome = a.outcome, period = %a.period,
                                    "snapshot-build ran"),
                                Err(e) => tracing::warn!(error = %e, "snapshot build failed"),
                            }
                        })
                    },
                ),
                // Daily in production; locally every PUHUI_DATA_QUALITY_INTERVAL_SECS (default
                // an hour) for the previous business day (a rerun rewrites the same report).
                Schedule::new(
                    "data-quality",
                    interval_from_env("PUHUI_DATA_QUALITY_INTERVAL_SECS", 3600),
                    move || {
                        let (s, clock) = (quality.clone(), quality_clock.clone());
                        Box::pin(async move {
                            let event = serde_json::json!({});
                            if let Err(e) = events::data_quality(&s, &event, clock.now()).await {
                                tracing::warn!(error = %e, "data-quality run failed");
                            }
                        })
                    },
                ),
            ],
            backend: b.clone(),
        }
    }
}

/// Ingests every file under `incoming/` not ingested yet. A file that can never load (bad key,
/// unknown source) is logged at each sweep; a storage failure ends the sweep until the next.
async fn ingest_incoming(service: &IngestService, blobs: &LocalBlobStore) {
    use puhui_ports::BlobStore;
    use puhui_services::ingest::INCOMING;
    let listed = match blobs.list(INCOMING).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "data-ingest: incoming/ not listed");
            return;
        }
    };
    for meta in listed {
        match service.ingest(&meta.key).await {
            // The service logs each file it ingests.
            Ok(_) => {}
            Err(e @ (puhui_domain::Error::Validation(_) | puhui_domain::Error::NotFound(_))) => {
                tracing::debug!(key = %meta.key, error = %e, "data-ingest: file skipped");
            }
            Err(e) => {
                tracing::warn!(key = %meta.key, error = %e, "data-ingest failed; next sweep retries");
                return;
            }
        }
    }
}

/// The banks' daily quotas (queries and exports), from the environment as in the Lambda; a bad
/// value is logged and the defaults used, so the runner still starts.
fn quotas() -> puhui_services::data_query::DataQueryConfig {
    use puhui_services::data_query::DataQueryConfig;
    DataQueryConfig::from_env().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "data-query quotas not read; using the defaults");
        DataQueryConfig::default()
    })
}

/// The data-query routes' state over the embedded backend.
fn data_query_api(b: &Backend) -> puhui_api::data_query::DataQueryApi {
    puhui_api::data_query::DataQueryApi::new(
        b.table.clone(),
        b.clock.clone(),
        Arc::new(UlidGenerator::default()),
        quotas(),
        b.auth.clone(),
        b.sessions.clone(),
    )
}

/// A whole batch the handler could not report record by record: every record is retried.
fn batch_result(
    r: Result<SqsBatchResponse, puhui_edge::batch::WholeBatchFailed>,
) -> SqsBatchResponse {
    r.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "batch failed as a whole");
        let mut all = SqsBatchResponse::default();
        all.add_failure(String::new());
        all
    })
}

fn interval_from_env(var: &str, default_secs: u64) -> std::time::Duration {
    let secs = std::env::var(var)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(default_secs);
    std::time::Duration::from_secs(secs)
}

/// A per-installation secret for signing local presigned URLs, created on first run.
fn blob_secret(config: &RunnerConfig) -> std::io::Result<Vec<u8>> {
    secret_file(config, "blob-url-secret")
}

/// A 32-byte secret kept under the data directory, created on first run.
fn secret_file(config: &RunnerConfig, name: &str) -> std::io::Result<Vec<u8>> {
    let path = config.data_dir.join(name);
    if let Ok(hex_secret) = std::fs::read_to_string(&path)
        && let Ok(secret) = hex::decode(hex_secret.trim())
    {
        return Ok(secret);
    }
    let mut secret = vec![0u8; 32];
    aws_lc_rs::rand::fill(&mut secret)
        .map_err(|_| std::io::Error::other("no randomness for the blob URL secret"))?;
    std::fs::write(&path, hex::encode(&secret))?;
    Ok(secret)
}

fn blob_routes(blobs: Arc<LocalBlobStore>) -> Router {
    Router::new()
        .route("/blobs/{*key}", get(serve_presigned))
        .with_state(blobs)
}

/// Serves a presigned URL of the local blob store: signature and expiry checked.
async fn serve_presigned(State(blobs): State<Arc<LocalBlobStore>>, req: Request) -> Response {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("", |p| p.as_str())
        .to_owned();
    match blobs.open_presigned(&path_and_query).await {
        Ok(bytes) => (
            StatusCode::OK,
            [("content-type", "application/octet-stream")],
            bytes,
        )
            .into_response(),
        Err(e) => {
            let status = match e {
                PresignError::Malformed(_) => StatusCode::BAD_REQUEST,
                PresignError::BadSignature | PresignError::Expired => StatusCode::FORBIDDEN,
                PresignError::NotFound => StatusCode::NOT_FOUND,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let problem = serde_json::json!({"type": "/problems/presigned-url", "title": "Presigned URL refused",
                                             "status": status.as_u16(), "detail": e.to_string()});
            (
                status,
                [("content-type", puhui_edge::problem::PROBLEM_JSON)],
                problem.to_string(),
            )
                .into_response()
        }
    }
}
