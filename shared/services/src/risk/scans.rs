//! risk-scan: plans a scan of the newest snapshot as shard × bank tasks on the `risk-shard`
//! queue and records it with its plan, so progress, completion and failing shards are visible.
//!
//! A scan's id is the period plus a hash of its plan (business date, shards and every bank's
//! rule-set version): the schedule firing again the same day with nothing changed finds the scan
//! planned and does nothing; a new day, rule-set version or snapshot makes a new scan, whose
//! alerts already raised are found and not repeated. A planner that crashed half-way is resumed by
//! the next run (tasks and messages are idempotent: workers skip tasks already done).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use puhui_domain::risk::Period;
use puhui_domain::{BankId, Error, Principal, Role};
use puhui_ports::queue::MAX_BATCH;
use puhui_ports::{Condition, Key, PortError, Query, Queue, QueueMessage};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::snapshots::SnapshotStore;
use super::worker::ShardTask;
use super::{RiskPorts, scan_key, task_key};
use crate::codec;
use crate::paging::{Listing, PageRequest, all_pages};

/// Index partition listing scans, newest last.
const SCANS: &str = "SCANS";
/// Most tasks one scan may plan (shards × banks).
pub const MAX_TASKS: usize = 5000;

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Queued, not finished.
    Pending,
    /// Evaluated; its alerts are written.
    Done,
    /// Its last attempt failed (see `error`); the queue retries it and finally dead-letters it.
    Failed,
}

/// One rule's counts in a task (on the bank's watched firms in the shard).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleTally {
    /// The rule.
    pub rule_id: String,
    /// Watched firms it fired on.
    pub hits: u64,
    /// Missing indicator values its leaves met (each leaf on a missing value is false).
    pub missing: u64,
    /// Hits not alerted because of the rule's cool-down.
    pub suppressed: u64,
    /// Alerts for this period (hits minus suppressed).
    pub alerts: u64,
}

/// One task of a scan: a shard for a bank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskRecord {
    /// The scan.
    pub scan_id: String,
    /// The shard's file name.
    pub shard: String,
    /// Its position in the manifest.
    pub shard_index: u32,
    /// The bank.
    pub bank_id: BankId,
    /// The rule-set version run.
    pub rule_set_version: u64,
    /// Where it stands.
    pub status: TaskStatus,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// The last failure, while failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Watched firms found in the shard.
    #[serde(default)]
    pub watched_rows: u64,
    /// Alerts for this period from this task.
    #[serde(default)]
    pub alerts: u64,
    /// Per-rule counts, once done.
    #[serde(default)]
    pub rules: Vec<RuleTally>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version.
    #[serde(default)]
    pub version: u64,
}

/// A bank's part of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlannedBank {
    /// The bank.
    pub bank_id: BankId,
    /// Its rule-set version.
    pub rule_set_version: u64,
}

/// Where a scan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScanStatus {
    /// Tasks are pending.
    Running,
    /// Every task is done.
    Completed,
    /// No task is pending but some are failing (their messages retry, then dead-letter).
    Failing,
}

/// A scan: its plan and progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScanRecord {
    /// `<period>-<plan hash>`.
    pub id: String,
    /// The snapshot's period.
    #[schema(value_type = String)]
    pub period: Period,
    /// Shard files, in manifest order.
    pub shards: Vec<String>,
    /// Banks and rule-set versions.
    pub plan: Vec<PlannedBank>,
    /// Tasks (shards × banks).
    pub tasks_planned: u64,
    /// Tasks done.
    #[serde(default)]
    pub tasks_done: u64,
    /// Tasks whose last attempt failed.
    #[serde(default)]
    pub tasks_failing: u64,
    /// Alerts raised so far.
    #[serde(default)]
    pub alerts: u64,
    /// True once every task message was sent.
    #[serde(default)]
    pub enqueued: bool,
    /// When it was planned.
    pub created_at: DateTime<Utc>,
    /// Derived from the counts.
    #[serde(default = "running")]
    pub status: ScanStatus,
}

fn running() -> ScanStatus {
    ScanStatus::Running
}

impl ScanRecord {
    fn with_status(mut self) -> Self {
        self.status = if self.tasks_done >= self.tasks_planned {
            ScanStatus::Completed
        } else if self.tasks_done + self.tasks_failing >= self.tasks_planned {
            ScanStatus::Failing
        } else {
            ScanStatus::Running
        };
        self
    }
}

/// A scan with its tasks (a bank sees only its own part).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScanReport {
    /// The scan (for a bank: counts over its own tasks).
    pub scan: ScanRecord,
    /// Its tasks.
    pub tasks: Vec<TaskRecord>,
}

/// What one run of the planner did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PlanOutcome {
    /// No snapshot published yet.
    NoSnapshot,
    /// No bank has a rule set and a watch list.
    NothingToScan,
    /// Planned (or finished planning) a scan.
    Planned {
        /// The scan.
        scan_id: String,
        /// Tasks sent.
        tasks: u64,
    },
    /// This snapshot and these rule sets were scanned already.
    AlreadyPlanned {
        /// The scan.
        scan_id: String,
    },
}

/// Plans scans (the risk-scan schedule).
pub struct ScanPlanner {
    ports: RiskPorts,
    queue: Arc<dyn Queue>,
}

impl ScanPlanner {
    /// A planner sending tasks to the `risk-shard` queue.
    pub fn new(ports: RiskPorts, queue: Arc<dyn Queue>) -> Self {
        ScanPlanner { ports, queue }
    }

    /// Plans a scan of the newest snapshot for every bank with a rule set and a watch list.
    pub async fn plan(&self) -> Result<PlanOutcome, Error> {
        let store = SnapshotStore::new(self.ports.blobs.clone());
        let Some(manifest) = store.latest().await? else {
            return Ok(PlanOutcome::NoSnapshot);
        };
        let period = Period::parse(&manifest.period).map_err(|e| Error::Internal(e.message))?;
        let table = self.ports.table.as_ref();
        let mut plan = Vec::new();
        for item in all_pages(table, Query::partition("RULESETS").on_gsi1().limit(1000)).await? {
            let bank = BankId::parse(&item.key.pk["RULESET#".len()..])
                .map_err(|e| Error::Internal(format!("rule-set pointer {}: {e}", item.key.pk)))?;
            let watching = !table
                .query(Query::partition(format!("WATCH#{bank}")).limit(1))
                .await?
                .items
                .is_empty();
            if watching {
                plan.push(PlannedBank {
                    bank_id: bank,
                    rule_set_version: item.version,
                });
            }
        }
        if plan.is_empty() || manifest.shards.is_empty() {
            return Ok(PlanOutcome::NothingToScan);
        }
        let shards: Vec<String> = manifest.shards.iter().map(|s| s.path.clone()).collect();
        let tasks = shards.len() * plan.len();
        if tasks > MAX_TASKS {
            return Err(Error::Internal(format!(
                "a scan of {tasks} tasks exceeds {MAX_TASKS}; write fewer, larger shards"
            )));
        }
        // The business date is part of the plan: each day's run scans again, so firms added to
        // a watch list since are scanned within a day (alerts already raised are not repeated).
        let today = puhui_domain::time::business_date(self.ports.clock.now());
        let mut h = Sha256::new();
        h.update(format!("{today}\n").as_bytes());
        for s in &shards {
            h.update(s.as_bytes());
            h.update(b"\n");
        }
        for b in &plan {
            h.update(format!("{}={}\n", b.bank_id, b.rule_set_version).as_bytes());
        }
        let id = format!("{period}-{}", &hex::encode(h.finalize())[..12]);
        let record = ScanRecord {
            id: id.clone(),
            period,
            shards: shards.clone(),
            plan: plan.clone(),
            tasks_planned: tasks as u64,
            tasks_done: 0,
            tasks_failing: 0,
            alerts: 0,
            enqueued: false,
            created_at: self.ports.clock.now(),
            status: ScanStatus::Running,
        };
        let mut item = codec::to_item(scan_key(&id), &record)?;
        item.gsi1 = Some(Key::new(SCANS, self.ports.ids.ulid().to_string()));
        match table.put(item, Some(Condition::NotExists)).await {
            Ok(()) => {}
            Err(PortError::ConditionFailed(_)) => {
                let stored = load_scan(&self.ports, &id).await?;
                if stored.enqueued {
                    return Ok(PlanOutcome::AlreadyPlanned { scan_id: id });
                }
                tracing::info!(scan = %id, "resuming a scan whose planning was interrupted");
            }
            Err(e) => return Err(e.into()),
        }
        let mut messages = Vec::with_capacity(tasks);
        for (i, shard) in shards.iter().enumerate() {
            for b in &plan {
                let task = TaskRecord {
                    scan_id: id.clone(),
                    shard: shard.clone(),
                    shard_index: i as u32,
                    bank_id: b.bank_id.clone(),
                    rule_set_version: b.rule_set_version,
                    status: TaskStatus::Pending,
                    attempts: 0,
                    error: None,
                    watched_rows: 0,
                    alerts: 0,
                    rules: Vec::new(),
                    finished_at: None,
                    version: 1,
                };
                let key = task_key(&id, i as u32, &b.bank_id);
                match table
                    .put(codec::to_item(key, &task)?, Some(Condition::NotExists))
                    .await
                {
                    Ok(()) | Err(PortError::ConditionFailed(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                let body = ShardTask {
                    scan_id: id.clone(),
                    period,
                    shard: shard.clone(),
                    shard_index: i as u32,
                    bank_id: b.bank_id.clone(),
                    rule_set_version: b.rule_set_version,
                };
                messages.push(QueueMessage::new(
                    serde_json::to_string(&body).map_err(|e| Error::Internal(e.to_string()))?,
                ));
            }
        }
        for chunk in messages.chunks(MAX_BATCH) {
            for result in self.queue.send_batch(chunk.to_vec()).await? {
                result?;
            }
        }
        let mut set = serde_json::Map::new();
        set.insert("enqueued".into(), true.into());
        table
            .update(
                &scan_key(&id),
                puhui_ports::Update {
                    set,
                    ..Default::default()
                },
                Some(Condition::Exists),
            )
            .await?;
        tracing::info!(scan = %id, tasks, "scan planned");
        Ok(PlanOutcome::Planned {
            scan_id: id,
            tasks: tasks as u64,
        })
    }
}

async fn load_scan(ports: &RiskPorts, id: &str) -> Result<ScanRecord, Error> {
    match ports.table.get(&scan_key(id)).await? {
        Some(item) => Ok(codec::from_item::<ScanRecord>(item)?.with_status()),
        None => Err(Error::NotFound(format!("scan {id}"))),
    }
}

/// Reading scans (risk-desk).
#[derive(Clone)]
pub struct ScanView {
    ports: RiskPorts,
}

impl ScanView {
    /// The view over the risk ports.
    pub fn new(ports: RiskPorts) -> Self {
        ScanView { ports }
    }

    /// Scans, newest first (platform staff see all; a bank sees every scan with counts over its
    /// own tasks only on [`ScanView::get`]).
    pub async fn list(
        &self,
        who: &Principal,
        page: PageRequest,
    ) -> Result<Listing<ScanRecord>, Error> {
        let platform = who.has(Role::PlatformAdmin);
        let bank = if platform {
            None
        } else {
            Some(super::risk_bank(who)?.clone())
        };
        let result = self
            .ports
            .table
            .query(Query {
                ascending: false,
                ..Query::partition(SCANS)
                    .on_gsi1()
                    .limit(page.limit()?)
                    .after(page.cursor)
            })
            .await?;
        let mut items = Vec::new();
        for item in result.items {
            let scan = codec::from_item::<ScanRecord>(item)?.with_status();
            match &bank {
                None => items.push(scan),
                Some(b) => {
                    if let Some(mine) = scan.plan.iter().find(|p| &p.bank_id == b).cloned() {
                        items.push(self.own_part(scan, mine).await?.scan);
                    }
                }
            }
        }
        Ok(Listing {
            items,
            next_cursor: result.next,
        })
    }

    /// One scan with its tasks.
    pub async fn get(&self, who: &Principal, id: &str) -> Result<ScanReport, Error> {
        let scan = load_scan(&self.ports, id).await?;
        if who.has(Role::PlatformAdmin) {
            let tasks = self.tasks(id).await?;
            return Ok(ScanReport { scan, tasks });
        }
        let bank = super::risk_bank(who)?;
        let mine = scan
            .plan
            .iter()
            .find(|p| &p.bank_id == bank)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("scan {id}")))?;
        self.own_part(scan, mine).await
    }

    async fn tasks(&self, id: &str) -> Result<Vec<TaskRecord>, Error> {
        all_pages(
            self.ports.table.as_ref(),
            Query::partition(format!("SCAN#{id}"))
                .prefix("TASK#")
                .limit(1000),
        )
        .await?
        .into_iter()
        .map(codec::from_item)
        .collect()
    }

    /// The scan as one bank sees it: its plan entry, its tasks and counts over them.
    async fn own_part(&self, mut scan: ScanRecord, mine: PlannedBank) -> Result<ScanReport, Error> {
        let tasks: Vec<TaskRecord> = self
            .tasks(&scan.id)
            .await?
            .into_iter()
            .filter(|t| t.bank_id == mine.bank_id)
            .collect();
        scan.plan = vec![mine];
        scan.tasks_planned = scan.shards.len() as u64;
        scan.tasks_done = tasks
            .iter()
            .filter(|t| t.status == TaskStatus::Done)
            .count() as u64;
        scan.tasks_failing = tasks
            .iter()
            .filter(|t| t.status == TaskStatus::Failed)
            .count() as u64;
        scan.alerts = tasks.iter().map(|t| t.alerts).sum();
        Ok(ScanReport {
            scan: scan.with_status(),
            tasks,
        })
    }
}
