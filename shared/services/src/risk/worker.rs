//! risk-worker: one task of a scan — one snapshot shard for one bank's rule-set version.
//!
//! The shard's rows are narrowed to the bank's watch list, the compiled rule set is evaluated
//! column-wise, hits inside a rule's cool-down are suppressed, and each remaining hit becomes an
//! alert keyed by (bank, firm, rule, period). Alerts are written with "must not exist", in the
//! same transaction as their per-rule counts and their notifications (outbox), so a redelivered
//! or rerun task finds what it wrote before and writes nothing twice. The task is marked done
//! last; a task already done is skipped.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_schema::DataType;
use puhui_domain::risk::{AlertId, AlertStatus, Period, RiskAlert, RiskSettings};
use puhui_domain::rules::{WatchRule, check_rule_set};
use puhui_domain::{BankId, Error, Uscc};
use puhui_engines::columnar::CompiledRules;
use puhui_ports::{Condition, KeyRange, PortError, Query, TxOp, Update};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::notices;
use super::rule_sets::RuleSetService;
use super::scans::{RuleTally, TaskRecord, TaskStatus};
use super::snapshots::SnapshotStore;
use super::watch::WatchListService;
use super::{
    RiskPorts, alert_index_key, alert_key, cooldown_window, load_settings, scan_key, stats_key,
    task_key,
};
use crate::codec;
use crate::outbox::{Destination, Envelope};

/// The queue message of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardTask {
    /// The scan.
    pub scan_id: String,
    /// The snapshot's period.
    pub period: Period,
    /// The shard's file name in the manifest.
    pub shard: String,
    /// The shard's position in the manifest.
    pub shard_index: u32,
    /// The bank.
    pub bank_id: BankId,
    /// The rule-set version to run.
    pub rule_set_version: u64,
}

/// What processing a task did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Evaluated and recorded now.
    Done {
        /// Alerts written by this run.
        raised: u64,
        /// Alerts found already written (by an earlier, interrupted run).
        existing: u64,
    },
    /// Another delivery finished it before.
    AlreadyDone,
}

/// Alerts per transaction: each brings its own put and at most one count update, plus the
/// outbox entry, within the 25-operation limit.
const ALERTS_PER_TX: usize = 8;
const TX_ATTEMPTS: u32 = 8;
/// Compiled rule sets kept per warm instance (versions never change once saved).
const COMPILED_CACHE: usize = 64;

type Compiled = Arc<(Vec<WatchRule>, CompiledRules)>;

/// Processes scan tasks.
pub struct ShardWorker {
    ports: RiskPorts,
    compiled: Mutex<HashMap<(BankId, u64), Compiled>>,
}

/// One hit on a watched firm, before cool-down.
struct Hit {
    uscc: String,
    rule: usize,
    facts: Map<String, Value>,
}

impl ShardWorker {
    /// A worker over the risk ports.
    pub fn new(ports: RiskPorts) -> Self {
        ShardWorker {
            ports,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// Processes one task; an error leaves the message to be retried (and, in the end,
    /// dead-lettered) and is recorded on the task so the scan shows it.
    pub async fn process(&self, t: &ShardTask) -> Result<TaskOutcome, Error> {
        let key = task_key(&t.scan_id, t.shard_index, &t.bank_id);
        let item = self.ports.table.get(&key).await?.ok_or_else(|| {
            Error::NotFound(format!(
                "task {} of scan {} was never planned",
                key.sk, t.scan_id
            ))
        })?;
        let record: TaskRecord = codec::from_item(item)?;
        if record.status == TaskStatus::Done {
            return Ok(TaskOutcome::AlreadyDone);
        }
        match self.run(t).await {
            Ok((tallies, watched_rows, raised, existing)) => {
                self.finish(t, &record, tallies, watched_rows, raised, existing)
                    .await
            }
            Err(e) => {
                if let Err(e2) = self.record_failure(t, &record, &e).await {
                    tracing::warn!(error = %e2, "could not record the task's failure");
                }
                Err(e)
            }
        }
    }

    async fn rules(&self, t: &ShardTask) -> Result<Compiled, Error> {
        let cache_key = (t.bank_id.clone(), t.rule_set_version);
        if let Some(c) = self
            .compiled
            .lock()
            .ok()
            .and_then(|m| m.get(&cache_key).cloned())
        {
            return Ok(c);
        }
        let set = RuleSetService::new(self.ports.clone())
            .version(&t.bank_id, t.rule_set_version)
            .await?;
        let rules = check_rule_set(&set.rules).map_err(|e| {
            Error::Internal(format!(
                "stored rule set {} v{} no longer checks: {e}",
                t.bank_id, t.rule_set_version
            ))
        })?;
        let compiled = CompiledRules::compile(&rules);
        let c: Compiled = Arc::new((rules, compiled));
        if let Ok(mut m) = self.compiled.lock() {
            if m.len() >= COMPILED_CACHE {
                m.clear();
            }
            m.insert(cache_key, c.clone());
        }
        Ok(c)
    }

    /// Evaluates the shard and writes the alerts; returns the per-rule tallies, the watched
    /// rows seen, alerts written now and alerts found written already.
    async fn run(&self, t: &ShardTask) -> Result<(Vec<RuleTally>, u64, u64, u64), Error> {
        let compiled = self.rules(t).await?;
        let (rules, _) = &*compiled;
        let mut tallies: Vec<RuleTally> = rules
            .iter()
            .map(|r| RuleTally {
                rule_id: r.id.clone(),
                ..RuleTally::default()
            })
            .collect();
        let watched = WatchListService::new(self.ports.clone())
            .watched(&t.bank_id)
            .await?;
        if watched.is_empty() {
            return Ok((tallies, 0, 0, 0));
        }
        let batches = SnapshotStore::new(self.ports.blobs.clone())
            .shard(t.period, &t.shard, Some(super::facts_read(rules)))
            .await?;
        let c = compiled.clone();
        let (hits, watched_rows, per_rule) =
            tokio::task::spawn_blocking(move || evaluate(&c.0, &c.1, &batches, &watched))
                .await
                .map_err(|e| Error::Internal(format!("evaluation stopped: {e}")))??;
        for (tally, (h, m)) in tallies.iter_mut().zip(per_rule) {
            tally.hits = h;
            tally.missing = m;
        }

        let mut alerts = Vec::new();
        let now = self.ports.clock.now();
        for hit in hits {
            let rule = &rules[hit.rule];
            let uscc = Uscc::parse(&hit.uscc).map_err(|e| {
                Error::Internal(format!("watched firm {} unreadable: {e}", hit.uscc))
            })?;
            if self.cooling_down(&t.bank_id, &uscc, rule, t.period).await? {
                tallies[hit.rule].suppressed += 1;
                continue;
            }
            alerts.push(RiskAlert {
                id: AlertId {
                    period: t.period,
                    uscc: uscc.clone(),
                    rule_id: rule.id.clone(),
                },
                bank_id: t.bank_id.clone(),
                uscc,
                period: t.period,
                rule_id: rule.id.clone(),
                rule_name: rule.name.clone(),
                severity: rule.severity,
                rule_set_version: t.rule_set_version,
                scan_id: t.scan_id.clone(),
                facts: hit.facts,
                status: AlertStatus::Open,
                verdict: None,
                raised_at: now,
                history: Vec::new(),
                version: 1,
            });
        }
        let settings = load_settings(self.ports.table.as_ref(), &t.bank_id).await?;
        let (mut raised, mut existing) = (0, 0);
        for chunk in alerts.chunks(ALERTS_PER_TX) {
            let (r, e) = self.raise(chunk.to_vec(), &settings).await?;
            raised += r;
            existing += e;
            for a in chunk {
                if let Some(tally) = tallies.iter_mut().find(|x| x.rule_id == a.rule_id) {
                    tally.alerts += 1;
                }
            }
        }
        Ok((tallies, watched_rows, raised, existing))
    }

    /// True if the firm already has an alert for the rule in the rule's cool-down window.
    async fn cooling_down(
        &self,
        bank: &BankId,
        uscc: &Uscc,
        rule: &WatchRule,
        period: Period,
    ) -> Result<bool, Error> {
        let Some((from, to)) = cooldown_window(period, rule.cooldown_periods) else {
            return Ok(false);
        };
        let page = self
            .ports
            .table
            .query(Query {
                range: KeyRange::Between(
                    format!("{}#{from}", rule.id),
                    format!("{}#{to}", rule.id),
                ),
                ..Query::partition(format!("ALERT#{bank}#{uscc}")).limit(1)
            })
            .await?;
        Ok(!page.items.is_empty())
    }

    /// Writes alerts that do not exist yet, with their counts and notifications, in one
    /// transaction; alerts found written already are dropped and the rest retried.
    async fn raise(
        &self,
        mut alerts: Vec<RiskAlert>,
        settings: &RiskSettings,
    ) -> Result<(u64, u64), Error> {
        let mut existing = 0;
        let mut attempt = 0;
        while !alerts.is_empty() {
            let mut ops = Vec::with_capacity(alerts.len() * 2 + 1);
            let mut messages = Vec::new();
            let mut per_rule: HashMap<&str, i64> = HashMap::new();
            for a in &alerts {
                let mut item = codec::to_item(alert_key(&a.bank_id, &a.id), a)?;
                item.gsi1 = Some(alert_index_key(&a.bank_id, &a.id));
                ops.push(TxOp::Put {
                    item,
                    condition: Some(Condition::NotExists),
                });
                *per_rule.entry(a.rule_id.as_str()).or_default() += 1;
                for n in notices::alert_raised(a, settings) {
                    messages.push(Envelope::json(Destination::Notifications, &n)?);
                }
            }
            let bank = &alerts[0].bank_id;
            for (rule, n) in per_rule {
                ops.push(TxOp::Update {
                    key: stats_key(bank, rule),
                    update: Update {
                        set: Map::from_iter([("rule_id".to_owned(), json!(rule))]),
                        add: vec![("hits".into(), n)],
                        ..Update::default()
                    },
                    condition: None,
                });
            }
            match self.ports.outbox.commit(ops, messages).await {
                Ok(()) => return Ok((alerts.len() as u64, existing)),
                Err(PortError::TransactionCancelled { reasons }) => {
                    let before = alerts.len();
                    let mut i = 0;
                    alerts.retain(|_| {
                        let keep = reasons.get(i).is_none_or(Option::is_none);
                        i += 1;
                        keep
                    });
                    if alerts.len() == before {
                        return Err(Error::Internal(format!(
                            "alert transaction cancelled: {reasons:?}"
                        )));
                    }
                    existing += (before - alerts.len()) as u64;
                }
                Err(PortError::Unavailable(m)) if attempt + 1 < TX_ATTEMPTS => {
                    tracing::debug!(attempt, error = %m, "alert write conflicted; retrying");
                    tokio::time::sleep(Duration::from_millis(20 << attempt.min(5))).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok((0, existing))
    }

    async fn finish(
        &self,
        t: &ShardTask,
        record: &TaskRecord,
        tallies: Vec<RuleTally>,
        watched_rows: u64,
        raised: u64,
        existing: u64,
    ) -> Result<TaskOutcome, Error> {
        let mut next = record.clone();
        next.status = TaskStatus::Done;
        next.rules = tallies;
        next.watched_rows = watched_rows;
        next.alerts = next.rules.iter().map(|r| r.alerts).sum();
        next.error = None;
        next.finished_at = Some(self.ports.clock.now());
        let mut scan = Update {
            add: vec![
                ("tasks_done".into(), 1),
                ("alerts".into(), next.alerts as i64),
            ],
            ..Update::default()
        };
        if record.status == TaskStatus::Failed {
            scan.add.push(("tasks_failing".into(), -1));
        }
        let ops = vec![
            TxOp::Update {
                key: task_key(&t.scan_id, t.shard_index, &t.bank_id),
                update: Update {
                    set: codec::attrs(&next)?,
                    // `error` is skipped when none, so setting the attributes would leave an
                    // earlier attempt's failure on the done task: remove it.
                    remove: vec!["error".into()],
                    ..Update::default()
                },
                condition: Some(Condition::VersionEquals(record.version)),
            },
            TxOp::Update {
                key: scan_key(&t.scan_id),
                update: scan,
                condition: Some(Condition::Exists),
            },
        ];
        match self.ports.table.transact(ops).await {
            Ok(()) => {
                tracing::info!(scan = %t.scan_id, shard = %t.shard, bank = %t.bank_id, raised, existing, "task done");
                Ok(TaskOutcome::Done { raised, existing })
            }
            // Another delivery recorded the task meanwhile (done or failed): read which.
            Err(PortError::TransactionCancelled { .. }) => {
                let key = task_key(&t.scan_id, t.shard_index, &t.bank_id);
                match self.ports.table.get(&key).await? {
                    Some(item)
                        if codec::from_item::<TaskRecord>(item.clone())?.status
                            == TaskStatus::Done =>
                    {
                        Ok(TaskOutcome::AlreadyDone)
                    }
                    _ => Err(Error::Unavailable("task changed meanwhile; retry".into())),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn record_failure(
        &self,
        t: &ShardTask,
        record: &TaskRecord,
        e: &Error,
    ) -> Result<(), Error> {
        let mut set = Map::new();
        set.insert("status".into(), json!(TaskStatus::Failed));
        set.insert("error".into(), json!(e.to_string()));
        let mut ops = vec![TxOp::Update {
            key: task_key(&t.scan_id, t.shard_index, &t.bank_id),
            update: Update {
                set,
                add: vec![("attempts".into(), 1)],
                ..Update::default()
            },
            condition: Some(Condition::VersionEquals(record.version)),
        }];
        if record.status != TaskStatus::Failed {
            ops.push(TxOp::Update {
                key: scan_key(&t.scan_id),
                update: Update {
                    add: vec![("tasks_failing".into(), 1)],
                    ..Update::default()
                },
                condition: Some(Condition::Exists),
            });
        }
        self.ports.table.transact(ops).await?;
        Ok(())
    }
}

/// The rows of `batch` whose `uscc` is on the watch list.
pub(crate) fn watched_rows(
    batch: &RecordBatch,
    watched: &HashSet<String>,
) -> Result<RecordBatch, Error> {
    let uscc = batch
        .column_by_name(puhui_snapshot::USCC)
        .ok_or_else(|| Error::Internal("shard has no uscc column".into()))?;
    let keep: BooleanArray = match uscc.data_type() {
        DataType::Utf8 => uscc
            .as_string::<i32>()
            .iter()
            .map(|u| Some(u.is_some_and(|u| watched.contains(u))))
            .collect(),
        DataType::LargeUtf8 => uscc
            .as_string::<i64>()
            .iter()
            .map(|u| Some(u.is_some_and(|u| watched.contains(u))))
            .collect(),
        other => return Err(Error::Internal(format!("uscc column is {other}"))),
    };
    arrow_select::filter::filter_record_batch(batch, &keep)
        .map_err(|e| Error::Internal(format!("filtering the shard: {e}")))
}

/// Per rule (hits, missing values met) on the watched rows, and every hit with its facts.
type Evaluation = (Vec<Hit>, u64, Vec<(u64, u64)>);

fn evaluate(
    rules: &[WatchRule],
    compiled: &CompiledRules,
    batches: &[RecordBatch],
    watched: &HashSet<String>,
) -> Result<Evaluation, Error> {
    let mut hits = Vec::new();
    let mut per_rule = vec![(0u64, 0u64); rules.len()];
    let mut rows = 0u64;
    // Each rule's facts, once (not per hit).
    let facts_of: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            r.conditions
                .leaves()
                .iter()
                .map(|l| l.fact.clone())
                .collect()
        })
        .collect();
    for batch in batches {
        let mine = watched_rows(batch, watched)?;
        rows += mine.num_rows() as u64;
        let uscc = mine
            .column_by_name(puhui_snapshot::USCC)
            .ok_or_else(|| Error::Internal("shard has no uscc column".into()))?;
        for (r, result) in compiled.evaluate(&mine).into_iter().enumerate() {
            per_rule[r].0 += result.hits.count_set_bits() as u64;
            per_rule[r].1 += result.missing;
            for row in result.hits.set_indices() {
                let facts = facts_of[r]
                    .iter()
                    .map(|f| (f.clone(), value_at(&mine, f, row)))
                    .collect();
                hits.push(Hit {
                    uscc: text_at(uscc.as_ref(), row),
                    rule: r,
                    facts,
                });
            }
        }
    }
    Ok((hits, rows, per_rule))
}

fn text_at(a: &dyn Array, row: usize) -> String {
    match a.data_type() {
        DataType::LargeUtf8 => a.as_string::<i64>().value(row).to_owned(),
        _ => a.as_string::<i32>().value(row).to_owned(),
    }
}

/// An indicator's value in a row as JSON (null when missing or the column is absent).
fn value_at(batch: &RecordBatch, column: &str, row: usize) -> Value {
    let Some(a) = batch.column_by_name(column) else {
        return Value::Null;
    };
    if a.is_null(row) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Int64 => json!(a.as_primitive::<Int64Type>().value(row)),
        DataType::Int32 => json!(a.as_primitive::<Int32Type>().value(row)),
        DataType::Float64 => json!(a.as_primitive::<Float64Type>().value(row)),
        DataType::Float32 => json!(a.as_primitive::<Float32Type>().value(row)),
        DataType::Boolean => json!(a.as_boolean().value(row)),
        DataType::Utf8 | DataType::LargeUtf8 => json!(text_at(a.as_ref(), row)),
        _ => Value::Null,
    }
}
