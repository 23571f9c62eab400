//! What the end-to-end scenarios share: one backend of either adapter (table, queues, blob
//! store) with a manual clock and deterministic ids, the setup a financing demand needs, and
//! queue helpers that hand messages to a consumer as the Lambda event source mapping would.
//!
//! The embedded backend is a SQLite table, SQLite queues and a local blob directory in a
//! temporary directory; the AWS one is DynamoDB, SQS and S3 on a local AWS-API server (moto)
//! named by `PUHUI_TEST_AWS_ENDPOINT` (see `tests/scripts/with-moto.sh`), each environment in
//! its own table, bucket and queues.
// A harness failure is a test failure: panicking with the cause is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use puhui_domain::financing::LoanCodeDraft;
use puhui_domain::{
    ApplicantId, BankId, DemandStatus, FinancingDemand, LoanCodeId, Principal, ProductDraft,
    ProductStatus, Role, Submission,
};
use puhui_embedded::{LocalBlobStore, QueueConfig, SqliteQueue, SqliteTable};
use puhui_outbound::wechat::DevWeChat;
use puhui_ports::{
    BlobStore, Clock, Condition, IdGenerator, Item, Key, ManualClock, Notification, Page,
    PortError, PortResult, Query, Queue, Table, TxOp, Update,
};
use puhui_samplekit::data::{self, Rng};
use puhui_services::audit::AuditRecord;
use puhui_services::financing::{
    ApplicantService, DemandService, FinancingConfig, FinancingPorts, LoanCodeService,
};
use puhui_services::outbox::Destination;
use puhui_services::paging::all_pages;
use puhui_services::risk::RiskPorts;
use puhui_services::scoring::ScoringPorts;
use puhui_services::storage::StoragePorts;
use serde_json::json;

/// Monday 10:00 in Shanghai; the sample products are valid from 2026-01-01 to 2027-12-31.
pub const T0: &str = "2026-11-23T02:00:00Z";
/// Receives after which a message of a queue with a dead-letter queue is dead-lettered (small,
/// to keep the tests short).
pub const MAX_RECEIVES: u32 = 3;
/// Messages per batch, as the event source mappings.
pub const BATCH: usize = 10;

/// Which storage adapter an environment runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SQLite table and queues, local blob directory.
    Embedded,
    /// DynamoDB, SQS and S3 on moto.
    Aws,
}

/// Ids from the manual clock and a counter: monotonic, in step with the clock (the outbox relay
/// compares entry ids with the clock), and the same on every run of the same calls.
pub struct ClockIds {
    clock: Arc<ManualClock>,
    counter: AtomicU64,
}

impl ClockIds {
    /// Ids timed by `clock`, counting from 1.
    pub fn new(clock: Arc<ManualClock>) -> Self {
        ClockIds {
            clock,
            counter: AtomicU64::new(0),
        }
    }
}

impl IdGenerator for ClockIds {
    fn ulid(&self) -> ulid::Ulid {
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let ms = u64::try_from(self.clock.now().timestamp_millis()).unwrap();
        ulid::Ulid::from_parts(ms, u128::from(n))
    }
}

/// DynamoDB applies every request atomically and runs transactions in isolation; moto does
/// not: it serves requests on parallel threads, applies a transaction's writes before checking
/// the others' conditions, and undoes a cancelled one by restoring a snapshot of the whole table,
/// erasing whatever other requests committed meanwhile (100 threads running "add 1 if below 3 +
/// put if absent" leave 3 successes but 4–7 items). This gives each table request back the
/// isolation DynamoDB guarantees: reads run together, each write runs alone. The flows' requests
/// still interleave freely between calls, which is what the scenarios exercise.
pub struct Isolated<T> {
    inner: T,
    lock: tokio::sync::RwLock<()>,
}

impl<T> Isolated<T> {
    /// `inner` with per-request isolation.
    pub fn new(inner: T) -> Self {
        Isolated {
            inner,
            lock: tokio::sync::RwLock::new(()),
        }
    }
}

#[async_trait::async_trait]
impl<T: Table> Table for Isolated<T> {
    async fn get(&self, key: &Key) -> PortResult<Option<Item>> {
        let _read = self.lock.read().await;
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> PortResult<()> {
        let _write = self.lock.write().await;
        self.inner.put(item, condition).await
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<Condition>,
    ) -> PortResult<Item> {
        let _write = self.lock.write().await;
        self.inner.update(key, update, condition).await
    }

    async fn delete(&self, key: &Key, condition: Option<Condition>) -> PortResult<()> {
        let _write = self.lock.write().await;
        self.inner.delete(key, condition).await
    }

    async fn query(&self, query: Query) -> PortResult<Page> {
        let _read = self.lock.read().await;
        self.inner.query(query).await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        let _write = self.lock.write().await;
        self.inner.transact(ops).await
    }
}

/// One backend (table, queues, blob store), a manual clock and deterministic ids.
pub struct Env {
    /// The adapter.
    pub kind: Kind,
    /// The single table.
    pub table: Arc<dyn Table>,
    /// demand-submitted, consumed by demand-dispatch; dead-letters after [`MAX_RECEIVES`].
    pub demand_queue: Arc<dyn Queue>,
    /// demand-submitted's dead-letter queue.
    pub demand_dead_letter: Arc<dyn Queue>,
    /// notifications, consumed by notify.
    pub notify_queue: Arc<dyn Queue>,
    /// risk-shard (scan tasks), consumed by risk-worker; dead-letters after [`MAX_RECEIVES`].
    pub risk_queue: Arc<dyn Queue>,
    /// risk-shard's dead-letter queue.
    pub risk_dead_letter: Arc<dyn Queue>,
    /// scoring-jobs (chunks), consumed by model-batch; dead-letters after [`MAX_RECEIVES`].
    pub scoring_queue: Arc<dyn Queue>,
    /// scoring-jobs' dead-letter queue.
    pub scoring_dead_letter: Arc<dyn Queue>,
    /// data-exports (chunks), consumed by data-export; dead-letters after [`MAX_RECEIVES`].
    pub export_queue: Arc<dyn Queue>,
    /// data-exports' dead-letter queue.
    pub export_dead_letter: Arc<dyn Queue>,
    /// Snapshots.
    pub blobs: Arc<dyn BlobStore>,
    /// The time every service sees.
    pub clock: Arc<ManualClock>,
    /// Id source.
    pub ids: Arc<ClockIds>,
    /// The embedded backend's directory, removed when the environment is dropped.
    dir: Option<PathBuf>,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Env {
    /// A new, empty backend of `kind` with the clock at [`T0`].
    pub async fn new(kind: Kind) -> Env {
        let clock = Arc::new(ManualClock::new(at(T0)));
        let ids = Arc::new(ClockIds::new(clock.clone()));
        match kind {
            Kind::Embedded => {
                let dir = std::env::temp_dir().join(format!("puhui-e2e-{}", ulid::Ulid::new()));
                std::fs::create_dir_all(&dir).unwrap();
                let table = Arc::new(SqliteTable::open(dir.join("puhui.db")).unwrap());
                let queue = |name: &str| {
                    let config = QueueConfig {
                        max_receives: MAX_RECEIVES,
                        fifo: false,
                    };
                    SqliteQueue::open(dir.join("queues.db"), name, config, clock.clone()).unwrap()
                };
                let demand = queue("demand-submitted");
                let demand_dead_letter = demand.dead_letter();
                let risk = queue("risk-shard");
                let risk_dead_letter = risk.dead_letter();
                let scoring = queue("scoring-jobs");
                let scoring_dead_letter = scoring.dead_letter();
                let export = queue("data-exports");
                let export_dead_letter = export.dead_letter();
                let blobs = LocalBlobStore::new(
                    dir.join("blobs"),
                    "http://127.0.0.1:8080/blobs".into(),
                    b"e2e-test-secret".to_vec(),
                    clock.clone(),
                );
                Env {
                    kind,
                    table,
                    demand_queue: Arc::new(demand),
                    demand_dead_letter: Arc::new(demand_dead_letter),
                    notify_queue: Arc::new(queue("notifications")),
                    risk_queue: Arc::new(risk),
                    risk_dead_letter: Arc::new(risk_dead_letter),
                    scoring_queue: Arc::new(scoring),
                    scoring_dead_letter: Arc::new(scoring_dead_letter),
                    export_queue: Arc::new(export),
                    export_dead_letter: Arc::new(export_dead_letter),
                    blobs: Arc::new(blobs),
                    clock,
                    ids,
                    dir: Some(dir),
                }
            }
            Kind::Aws => {
                let endpoint = std::env::var("PUHUI_TEST_AWS_ENDPOINT").expect(
                    "PUHUI_TEST_AWS_ENDPOINT is unset: run through tests/scripts/with-moto.sh \
                     (make test does)",
                );
                let b = puhui_aws::provision::backend_for(&endpoint).await;
                let ns = format!("e2e-{}", ulid::Ulid::new().to_string().to_lowercase());
                puhui_aws::provision::ensure_table(b.dynamodb(), &ns)
                    .await
                    .unwrap();
                puhui_aws::provision::ensure_bucket(b.s3(), &ns)
                    .await
                    .unwrap();
                let sqs = b.sqs();
                // A queue with a dead-letter queue after MAX_RECEIVES receives: (queue, DLQ).
                let with_dead_letter = |name: String| async move {
                    let dlq_url = puhui_aws::provision::ensure_queue(
                        sqs,
                        &format!("{name}-dlq"),
                        false,
                        None,
                    )
                    .await
                    .unwrap();
                    let dlq_arn = puhui_aws::provision::queue_arn(sqs, &dlq_url)
                        .await
                        .unwrap();
                    let url = puhui_aws::provision::ensure_queue(
                        sqs,
                        &name,
                        false,
                        Some((&dlq_arn, MAX_RECEIVES)),
                    )
                    .await
                    .unwrap();
                    (url, dlq_url)
                };
                let (demand_url, demand_dlq_url) = with_dead_letter(format!("{ns}-demand")).await;
                let (risk_url, risk_dlq_url) = with_dead_letter(format!("{ns}-risk-shard")).await;
                let (scoring_url, scoring_dlq_url) =
                    with_dead_letter(format!("{ns}-scoring-jobs")).await;
                let (export_url, export_dlq_url) =
                    with_dead_letter(format!("{ns}-data-exports")).await;
                let notify_url =
                    puhui_aws::provision::ensure_queue(sqs, &format!("{ns}-notify"), false, None)
                        .await
                        .unwrap();
                Env {
                    kind,
                    table: Arc::new(Isolated::new(b.table(ns.clone()))),
                    demand_queue: Arc::new(b.queue(demand_url)),
                    demand_dead_letter: Arc::new(b.queue(demand_dlq_url)),
                    notify_queue: Arc::new(b.queue(notify_url)),
                    risk_queue: Arc::new(b.queue(risk_url)),
                    risk_dead_letter: Arc::new(b.queue(risk_dlq_url)),
                    scoring_queue: Arc::new(b.queue(scoring_url)),
                    scoring_dead_letter: Arc::new(b.queue(scoring_dlq_url)),
                    export_queue: Arc::new(b.queue(export_url)),
                    export_dead_letter: Arc::new(b.queue(export_dlq_url)),
                    blobs: Arc::new(b.blobs(ns)),
                    clock,
                    ids,
                    dir: None,
                }
            }
        }
    }

    /// A second, empty backend of the same kind.
    pub async fn fresh(&self) -> Env {
        Env::new(self.kind).await
    }

    /// The financing ports over this backend, with `config`.
    pub fn ports(&self, config: FinancingConfig) -> FinancingPorts {
        self.ports_on(self.table.clone(), config)
    }

    /// The financing ports over `table` (say, this backend's table behind a decorator) and the
    /// rest of this backend; the outbox writes through `table` too.
    pub fn ports_on(&self, table: Arc<dyn Table>, config: FinancingConfig) -> FinancingPorts {
        let mut queues: HashMap<Destination, Arc<dyn Queue>> = HashMap::new();
        queues.insert(Destination::DemandSubmitted, self.demand_queue.clone());
        queues.insert(Destination::Notifications, self.notify_queue.clone());
        FinancingPorts::new(table, self.clock.clone(), self.ids.clone(), queues, config)
    }

    /// The risk ports over this backend.
    pub fn risk_ports(&self) -> RiskPorts {
        self.risk_ports_on(self.table.clone())
    }

    /// The risk ports over `table` (say, this backend's table behind a decorator) and the rest
    /// of this backend; the outbox writes through `table` too.
    pub fn risk_ports_on(&self, table: Arc<dyn Table>) -> RiskPorts {
        self.storage_ports(table, Destination::Notifications, self.notify_queue.clone())
    }

    /// The scoring ports over this backend (job chunks go to the scoring queue).
    pub fn scoring_ports(&self) -> ScoringPorts {
        self.storage_ports(
            self.table.clone(),
            Destination::ScoringJobs,
            self.scoring_queue.clone(),
        )
    }

    /// The export ports over `table` (say, this backend's table behind a decorator) and the
    /// rest of this backend (export chunks go to the data-exports queue).
    pub fn export_ports_on(&self, table: Arc<dyn Table>) -> StoragePorts {
        self.storage_ports(table, Destination::DataExports, self.export_queue.clone())
    }

    fn storage_ports(
        &self,
        table: Arc<dyn Table>,
        destination: Destination,
        queue: Arc<dyn Queue>,
    ) -> StoragePorts {
        StoragePorts::new(
            table,
            self.blobs.clone(),
            self.clock.clone(),
            self.ids.clone(),
            HashMap::from([(destination, queue)]),
        )
    }

    /// The clock's time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// An RFC 3339 time.
pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// `n` minutes.
pub fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

// ---------------------------------------------------------------------------------------------
// Principals and the setup a financing demand needs: banks and products, a loan code, an
// applicant, a submission.
// ---------------------------------------------------------------------------------------------

/// A bank id.
pub fn bank(id: &str) -> BankId {
    BankId::parse(id).unwrap()
}

/// The bank's product admin.
pub fn product_admin(bank: &BankId) -> Principal {
    Principal {
        subject: format!("{bank}-admin"),
        bank_id: Some(bank.clone()),
        roles: vec![Role::ProductAdmin],
    }
}

/// The bank's loan officer.
pub fn officer(bank: &BankId) -> Principal {
    Principal {
        subject: format!("{bank}-officer"),
        bank_id: Some(bank.clone()),
        roles: vec![Role::LoanOfficer],
    }
}

/// The bank's risk administrator (rule sets, settings, alerts; the bank's own models).
pub fn risk_admin(bank: &BankId) -> Principal {
    Principal {
        subject: format!("{bank}-risk"),
        bank_id: Some(bank.clone()),
        roles: vec![Role::RiskAdmin],
    }
}

/// The platform's administrator.
pub fn platform_admin() -> Principal {
    Principal {
        subject: "platform-admin".into(),
        bank_id: None,
        roles: vec![Role::PlatformAdmin],
    }
}

/// Lists one sample product per bank, serving all of Ningbo (330200), so every bank matches a
/// firm registered in 330203. `parallel` creates them concurrently (ids then depend on timing).
pub async fn seed_products(ports: &FinancingPorts, banks: &[BankId], parallel: usize) {
    futures::stream::iter(banks.iter().enumerate())
        .for_each_concurrent(parallel, |(n, b)| async move {
            let mut body = data::product(&mut Rng::new(n as u64 + 1), n);
            body["regions"] = json!(["330200"]);
            let draft: ProductDraft = serde_json::from_value(body).unwrap();
            let who = product_admin(b);
            let p = ports.products.create(&who, draft).await.unwrap();
            ports
                .products
                .set_status(&who, p.id, ProductStatus::Listed, None)
                .await
                .unwrap();
        })
        .await;
    assert_eq!(ports.products.listed().await.unwrap().len(), banks.len());
}

/// Creates the loan code `flow-code`.
pub async fn loan_code(ports: &FinancingPorts) -> LoanCodeId {
    let draft: LoanCodeDraft = serde_json::from_value(json!({"id": "flow-code"})).unwrap();
    LoanCodeService::new(ports.clone())
        .create(&platform_admin(), draft)
        .await
        .unwrap()
        .id
}

/// A temporary folder, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty folder under the system's temporary folder, named after `purpose`.
    pub fn new(purpose: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("puhui-{purpose}-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Logs an applicant in through the WeChat stand-in, with a verified phone.
pub async fn applicant(ports: &FinancingPorts) -> ApplicantId {
    let login = ApplicantService::new(ports.clone(), Arc::new(DevWeChat::new()))
        .login("dev:alice", Some("dev-phone:86-13812345678"))
        .await
        .unwrap();
    assert_eq!(
        login.phone.as_ref().map(|p| p.expose()),
        Some("13812345678")
    );
    login.applicant
}

/// The firm every submission is for (registered in 330203).
pub fn firm_uscc() -> String {
    data::uscc(&mut Rng::new(7), "330203")
}

/// A submission for [`firm_uscc`] through `code`, consented a minute before `now`.
pub fn submission(code: &LoanCodeId, now: DateTime<Utc>) -> Submission {
    serde_json::from_value(json!({
        "loan_code": code, "uscc": firm_uscc(), "firm_name": "宁波甬江机械有限公司",
        "applicant_role": "legal_representative", "amount": 50_000_000, "term_months": 12,
        "purpose": "采购原材料", "collateral": true,
        "consent": {"accepted": true, "text_version": "auth-v3",
                    "accepted_at": now - chrono::Duration::seconds(60)}
    }))
    .unwrap()
}

/// Products for `banks`, a loan code, a logged-in applicant: everything a submission needs.
pub async fn setup(
    env: &Env,
    ports: &FinancingPorts,
    banks: &[BankId],
    parallel: usize,
) -> Applicant {
    seed_products(ports, banks, parallel).await;
    Applicant {
        code: loan_code(ports).await,
        id: applicant(ports).await,
        demands: DemandService::new(ports.clone()),
        now: env.now(),
    }
}

/// An applicant ready to submit.
pub struct Applicant {
    /// The loan code submitted through.
    pub code: LoanCodeId,
    /// The applicant.
    pub id: ApplicantId,
    /// The demand service.
    pub demands: DemandService,
    /// When the consent was given (a minute before).
    pub now: DateTime<Utc>,
}

impl Applicant {
    /// Submits a demand for [`firm_uscc`].
    pub async fn submit(&self) -> FinancingDemand {
        let d = self
            .demands
            .submit(&self.id, submission(&self.code, self.now))
            .await
            .unwrap();
        assert_eq!(d.status, DemandStatus::Submitted);
        d
    }
}

// ---------------------------------------------------------------------------------------------
// Queues and consumers.
// ---------------------------------------------------------------------------------------------

/// Receives and deletes everything on the queue; the bodies, in the order received.
pub async fn drain(q: &dyn Queue) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let got = q.receive(10, Duration::from_secs(30)).await.unwrap();
        if got.is_empty() {
            return bodies;
        }
        for m in got {
            q.delete(&m.receipt).await.unwrap();
            bodies.push(m.body);
        }
    }
}

/// A notification message's body, parsed.
pub fn notification(body: &str) -> Notification {
    serde_json::from_str(body).unwrap()
}

/// The notifications' keys, sorted (repeats kept).
pub fn keys(bodies: &[String]) -> Vec<String> {
    let mut k: Vec<String> = bodies.iter().map(|b| notification(b).key).collect();
    k.sort();
    k
}

/// `v`, sorted.
pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The event a function receives for `deliveries` of (message id, body).
pub fn sqs_event(deliveries: &[(String, String)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = deliveries
        .iter()
        .map(|(id, body)| {
            let mut m = SqsMessage::default();
            m.message_id = Some(id.clone());
            m.body = Some(body.clone());
            m.event_source = Some("aws:sqs".into());
            m
        })
        .collect();
    event
}

/// Fisher–Yates, driven by `rng`.
pub fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// Feeds every body `copies` times, shuffled by `seed` (no shuffle for one copy), in batches of
/// [`BATCH`] handled concurrently, as by several instances of the function; what the handler
/// reports failed is delivered again, as SQS would, until nothing fails. Returns how many
/// deliveries failed on the way.
pub async fn feed<H, F>(handle: H, bodies: &[String], copies: usize, seed: u64) -> usize
where
    H: Fn(SqsEvent) -> F,
    F: Future<Output = SqsBatchResponse>,
{
    let mut pending: Vec<(String, String)> = bodies
        .iter()
        .enumerate()
        .flat_map(|(i, b)| (0..copies).map(move |c| (format!("m{i}-{c}"), b.clone())))
        .collect();
    if copies > 1 {
        shuffle(&mut pending, &mut Rng::new(seed));
    }
    let mut failures = 0;
    for _round in 0..10 {
        if pending.is_empty() {
            return failures;
        }
        let responses =
            futures::future::join_all(pending.chunks(BATCH).map(|batch| handle(sqs_event(batch))))
                .await;
        let failed: HashSet<String> = responses
            .into_iter()
            .flat_map(|r| r.batch_item_failures)
            .map(|f| f.item_identifier)
            .collect();
        failures += failed.len();
        pending.retain(|(id, _)| failed.contains(id));
    }
    panic!(
        "{} deliveries still failing after 10 redeliveries",
        pending.len()
    );
}

/// What the faulty table does to one `transact` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Refuses it as throttled (nothing written): the kind of failure callers retry.
    Unavailable,
    /// Fails it for good (nothing written), as a broken connection the caller cannot retry.
    Broken,
    /// Never answers, as when the function instance dies mid-task (a Lambda timeout): the
    /// caller's future is dropped and nothing after this point runs.
    Hang,
}

/// The table, with one `transact` call chosen in advance made to fail or hang.
pub struct Faulty {
    inner: Arc<dyn Table>,
    transacts: AtomicUsize,
    /// The call (counted from the first) that meets the fault.
    armed: Mutex<Option<(usize, Fault)>>,
    /// Signalled when a call hangs.
    pub hung: tokio::sync::Notify,
}

impl Faulty {
    /// `inner`, with no fault armed.
    pub fn new(inner: Arc<dyn Table>) -> Faulty {
        Faulty {
            inner,
            transacts: AtomicUsize::new(0),
            armed: Mutex::new(None),
            hung: tokio::sync::Notify::new(),
        }
    }

    /// The `nth` transaction from now meets `fault`.
    pub fn arm(&self, nth: usize, fault: Fault) {
        let at = self.transacts.load(Ordering::SeqCst) + nth;
        *self.armed.lock().unwrap() = Some((at, fault));
    }

    /// True once the armed fault was met.
    pub fn spent(&self) -> bool {
        self.armed.lock().unwrap().is_none()
    }
}

#[async_trait::async_trait]
impl Table for Faulty {
    async fn get(&self, key: &Key) -> PortResult<Option<Item>> {
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Option<puhui_ports::Condition>) -> PortResult<()> {
        self.inner.put(item, condition).await
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<puhui_ports::Condition>,
    ) -> PortResult<Item> {
        self.inner.update(key, update, condition).await
    }

    async fn delete(&self, key: &Key, condition: Option<puhui_ports::Condition>) -> PortResult<()> {
        self.inner.delete(key, condition).await
    }

    async fn query(&self, query: Query) -> PortResult<Page> {
        self.inner.query(query).await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        let n = self.transacts.fetch_add(1, Ordering::SeqCst) + 1;
        let fault = {
            let mut armed = self.armed.lock().unwrap();
            match *armed {
                Some((at, f)) if at == n => {
                    *armed = None;
                    Some(f)
                }
                _ => None,
            }
        };
        match fault {
            None => self.inner.transact(ops).await,
            Some(Fault::Unavailable) => Err(PortError::Unavailable("injected: throttled".into())),
            Some(Fault::Broken) => Err(PortError::Backend(
                "injected: connection reset mid-task".into(),
            )),
            Some(Fault::Hang) => {
                self.hung.notify_one();
                std::future::pending().await
            }
        }
    }
}

/// The table, failing every audit write: a put of an audit record, and a transaction holding
/// one (nothing of it is written).
pub struct NoAudit(pub Arc<dyn Table>);

#[async_trait::async_trait]
impl Table for NoAudit {
    async fn get(&self, key: &Key) -> PortResult<Option<Item>> {
        self.0.get(key).await
    }
    async fn put(&self, item: Item, condition: Option<puhui_ports::Condition>) -> PortResult<()> {
        if item.key.pk.starts_with("AUDIT#") {
            return Err(PortError::Unavailable("injected: audit store down".into()));
        }
        self.0.put(item, condition).await
    }
    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<puhui_ports::Condition>,
    ) -> PortResult<Item> {
        self.0.update(key, update, condition).await
    }
    async fn delete(&self, key: &Key, condition: Option<puhui_ports::Condition>) -> PortResult<()> {
        self.0.delete(key, condition).await
    }
    async fn query(&self, query: Query) -> PortResult<Page> {
        self.0.query(query).await
    }
    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        let audited = ops
            .iter()
            .any(|op| matches!(op, TxOp::Put { item, .. } if item.key.pk.starts_with("AUDIT#")));
        if audited {
            return Err(PortError::Unavailable("injected: audit store down".into()));
        }
        self.0.transact(ops).await
    }
}

/// Every audit record of the bank, oldest first.
pub async fn audit_of(env: &Env, bank: &BankId) -> Vec<AuditRecord> {
    all_pages(
        env.table.as_ref(),
        Query::partition(format!("AUDIT#{bank}")),
    )
    .await
    .unwrap()
    .into_iter()
    .map(|i| puhui_services::codec::from_item(i).unwrap())
    .collect()
}

/// One `#[tokio::test]` per adapter for each scenario `async fn $name(env: &Env)`:
/// `on_both! { scenario => scenario_on_embedded, scenario_on_aws; }`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident => $embedded:ident, $aws:ident;)*) => {$(
        #[tokio::test]
        async fn $embedded() {
            $name(&$crate::harness::Env::new($crate::harness::Kind::Embedded).await).await;
        }

        #[tokio::test]
        async fn $aws() {
            $name(&$crate::harness::Env::new($crate::harness::Kind::Aws).await).await;
        }
    )*};
}
