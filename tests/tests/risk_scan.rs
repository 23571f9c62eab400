//! The risk scan's invariants (issue 5), proven on both storage adapters: the embedded one
//! (SQLite table and queues, a local blob directory) and the AWS one (DynamoDB, SQS and S3 on a
//! local AWS-API server, moto).
//!
//! Each scenario is one `async fn(&Env)` written against the ports only; every scenario runs
//! twice, `_on_embedded` and `_on_aws`:
//!
//! 1. every task message delivered three times, shuffled and concurrently, raises exactly the
//!    alerts the row-wise evaluator predicts, each notified once, with the per-rule counts of
//!    the row-wise evaluator, and the same alerts and messages as a single delivery;
//! 2. a task that fails or dies half-way through writing its alerts completes on its rerun
//!    with the alerts, messages and counts of an uninterrupted run;
//! 3. a shard that cannot be read fails its task (shown on the scan) and, once the queue's
//!    receives are spent, ends in the dead-letter queue;
//! 4. a rule's cool-down suppresses a firm's repeat alerts for that many periods, and the next
//!    day's scan of the same snapshot raises, counts and sends nothing again;
//! 5. a bank sees and works only its own alerts, and its staff's verdicts feed its statistics;
//! 6. a borrower approved in the financing flow is watched, scanned and alerted on.
//!
//! Snapshots are samplekit's deterministic synthetic ones, published through the blob store as
//! ingest does; expected alerts come from reading them back and evaluating every rule row by
//! row (`puhui_engines::rules`), independently of the worker's columnar evaluation. Time is a
//! manual clock and ids come from the clock and a counter, so two runs of the same inputs write
//! identical alerts. The AWS side needs `PUHUI_TEST_AWS_ENDPOINT`: run through
//! `tests/scripts/with-moto.sh cargo test -p puhui-tests --test risk_scan`. Moto's transactions
//! cost in proportion to the table's size, so scenario 1 watches fewer firms there (see
//! [`stride`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::DataType;
use puhui_api::events::{risk_scan, risk_shard_batch};
use puhui_domain::risk::{
    AlertAction, AlertId, AlertStatus, Period, RiskAlert, RiskSettings, RuleStats, Verdict,
    WatchSource,
};
use puhui_domain::rules::{WatchRuleDraft, check_rule_set};
use puhui_domain::{BankId, Bp, ClaimStage, Error, Fen, Phone, ProgressUpdate, Uscc};
use puhui_engines::rules::evaluate_row;
use puhui_ports::Recipient;
use puhui_runner::consumers::{Consumer, poll_once};
use puhui_samplekit::scan::random_rules;
use puhui_services::financing::{DeskService, DispatchService, FinancingConfig};
use puhui_services::paging::PageRequest;
use puhui_services::risk::{
    AlertFilter, AlertService, BulkUpload, PlanOutcome, RiskPorts, RuleSetDraft, RuleSetService,
    RuleTally, ScanPlanner, ScanReport, ScanStatus, ScanView, ShardTask, ShardWorker,
    SnapshotStore, TaskOutcome, TaskRecord, TaskStatus, WatchListService,
};
use puhui_tests::harness::{
    Env, Fault, Faulty, Kind, MAX_RECEIVES, TempDir, bank, drain, feed, firm_uscc, notification,
    officer, platform_admin, product_admin, risk_admin, setup,
};
use serde_json::{Map, Value, json};

/// The period most scenarios scan.
const PERIOD: &str = "2026-10";

// ---------------------------------------------------------------------------------------------
// Principals, rule sets, watch lists, snapshots.
// ---------------------------------------------------------------------------------------------

fn phone(s: &str) -> Phone {
    Phone::parse(s).unwrap()
}

/// Alerts to the bank's webhook only: what a bank gets until it saves settings. (Not
/// `RiskSettings::default()`, whose derived `webhook` is false.)
fn webhook_only() -> RiskSettings {
    RiskSettings {
        sms: Vec::new(),
        webhook: true,
    }
}

/// Ten of samplekit's random selective rules, plus [`null_prone_rule`].
fn rule_set(seed: u64) -> Vec<WatchRuleDraft> {
    let mut rules: Vec<WatchRuleDraft> = serde_json::from_value(random_rules(10, seed)).unwrap();
    rules.push(null_prone_rule());
    rules
}

/// A rule whose leaves sit under `not`: a missing grade or water figure (5–10% of firms each)
/// makes it fire, so missing values and hits meet.
fn null_prone_rule() -> WatchRuleDraft {
    serde_json::from_value(json!({
        "id": "grade-unknown", "name": "纳税信用等级缺失或为D", "severity": "warning",
        "conditions": {"all": [
            {"not": {"fact": "tax_credit_grade", "operator": "in", "value": ["A", "B", "C", "M"]}},
            {"not": {"fact": "water_yoy", "operator": "greaterThan", "value": 0.5}}
        ]}
    }))
    .unwrap()
}

/// A rule that fires on roughly a third of the firms (grade C, D, M or missing).
fn broad_rule(id: &str, cooldown: Option<u16>) -> WatchRuleDraft {
    serde_json::from_value(json!({
        "id": id, "name": "纳税信用等级不在A、B级", "severity": "critical",
        "conditions": {"not": {"fact": "tax_credit_grade", "operator": "in", "value": ["A", "B"]}},
        "cooldown_periods": cooldown,
    }))
    .unwrap()
}

/// One bank's risk setup.
struct BankPlan {
    bank: BankId,
    rules: Vec<WatchRuleDraft>,
    watched: Vec<String>,
    settings: RiskSettings,
}

impl BankPlan {
    fn watched_set(&self) -> HashSet<String> {
        self.watched.iter().cloned().collect()
    }
}

/// Saves the bank's rule set (version 1), its watch list and alert settings.
async fn configure(ports: &RiskPorts, b: &BankPlan) {
    let who = risk_admin(&b.bank);
    let set = RuleSetService::new(ports.clone())
        .save(
            &who,
            RuleSetDraft {
                rules: b.rules.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(set.version, 1);
    let report = WatchListService::new(ports.clone())
        .bulk(
            &who,
            BulkUpload {
                usccs: b.watched.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(report.added, b.watched.len());
    AlertService::new(ports.clone())
        .save_settings(&who, b.settings.clone())
        .await
        .unwrap();
}

/// A firm's indicators as the row-wise evaluator reads them (missing values left out).
type Row = Map<String, Value>;

/// Every firm of the snapshot in `dir`, in snapshot order, as (uscc, row), built from the Arrow
/// columns independently of the worker's reading.
fn rows(dir: &Path) -> Vec<(String, Row)> {
    let snap = puhui_snapshot::Snapshot::open(dir).unwrap();
    let mut out = Vec::new();
    for b in snap.read_all().unwrap() {
        let uscc = b
            .column_by_name(puhui_snapshot::USCC)
            .unwrap()
            .as_string::<i32>();
        for i in 0..b.num_rows() {
            let mut row = Map::new();
            for (f, col) in b.schema().fields().iter().zip(b.columns()) {
                // The registration columns are not indicators: no rule can name them.
                let registration = puhui_snapshot::REGISTRATION_COLUMNS
                    .iter()
                    .any(|c| c.name == f.name());
                if f.name() == puhui_snapshot::USCC || registration || col.is_null(i) {
                    continue;
                }
                let v = match f.data_type() {
                    DataType::Int64 => json!(col.as_primitive::<Int64Type>().value(i)),
                    DataType::Float64 => json!(col.as_primitive::<Float64Type>().value(i)),
                    DataType::Boolean => json!(col.as_boolean().value(i)),
                    DataType::Utf8 => json!(col.as_string::<i32>().value(i)),
                    other => panic!("{}: unexpected column type {other}", f.name()),
                };
                row.insert(f.name().clone(), v);
            }
            out.push((uscc.value(i).to_owned(), row));
        }
    }
    out
}

/// Writes samplekit's snapshot of `firms` firms (`seed`) in `shards` shards for `period`,
/// publishes it, and returns its firms (see [`rows`]).
async fn publish(
    ports: &RiskPorts,
    firms: usize,
    seed: u64,
    shards: usize,
    period: &str,
) -> Vec<(String, Row)> {
    let dir = TempDir::new("risk");
    puhui_samplekit::snapshot::write(&dir.0, firms, seed, shards, period).unwrap();
    let m = SnapshotStore::new(ports.blobs.clone())
        .publish(&dir.0)
        .await
        .unwrap();
    assert_eq!((m.shards.len(), m.total_rows), (shards, firms as u64));
    rows(&dir.0)
}

/// Plans a scan of the newest snapshot; returns its id and the task messages (taken off the
/// risk-shard queue), after checking that there are `tasks` of them.
async fn plan(env: &Env, ports: &RiskPorts, tasks: u64) -> (String, Vec<String>) {
    let planner = ScanPlanner::new(ports.clone(), env.risk_queue.clone());
    let outcome = risk_scan(&planner).await.unwrap();
    let PlanOutcome::Planned { scan_id, tasks: n } = outcome else {
        panic!("expected a planned scan, got {outcome:?}");
    };
    assert_eq!(n, tasks);
    let bodies = drain(env.risk_queue.as_ref()).await;
    assert_eq!(bodies.len() as u64, tasks, "one message per task");
    (scan_id, bodies)
}

fn task_of(body: &str) -> ShardTask {
    serde_json::from_str(body).unwrap()
}

/// The scan with all its tasks, as platform staff see it.
async fn scan(ports: &RiskPorts, id: &str) -> ScanReport {
    ScanView::new(ports.clone())
        .get(&platform_admin(), id)
        .await
        .unwrap()
}

/// Every alert of the bank, through the desk's listing, page after page.
async fn alerts_of(ports: &RiskPorts, bank: &BankId) -> Vec<RiskAlert> {
    list_all(ports, bank, AlertFilter::default()).await
}

async fn list_all(ports: &RiskPorts, bank: &BankId, filter: AlertFilter) -> Vec<RiskAlert> {
    let service = AlertService::new(ports.clone());
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = service
            .list(
                &risk_admin(bank),
                AlertFilter {
                    limit: Some(100),
                    cursor,
                    ..filter.clone()
                },
            )
            .await
            .unwrap();
        out.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            out.sort_by_key(|a| a.id.to_string());
            return out;
        }
    }
}

async fn stats_of(ports: &RiskPorts, bank: &BankId) -> BTreeMap<String, RuleStats> {
    AlertService::new(ports.clone())
        .stats(&risk_admin(bank))
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.rule_id.clone(), s))
        .collect()
}

/// Alerts per rule id.
fn per_rule(alerts: &[RiskAlert]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for a in alerts {
        *m.entry(a.rule_id.clone()).or_default() += 1;
    }
    m
}

/// (bank, uscc, rule, period): what makes an alert unique.
type AlertKey = (String, String, String, String);

fn key_of(a: &RiskAlert) -> AlertKey {
    (
        a.bank_id.to_string(),
        a.uscc.to_string(),
        a.rule_id.clone(),
        a.period.to_string(),
    )
}

/// What the row-wise evaluator says of one bank's rules on its watched firms.
#[derive(Debug, Default)]
struct Expected {
    alerts: BTreeSet<AlertKey>,
    /// Per rule: hits and missing values met.
    tallies: BTreeMap<String, (u64, u64)>,
    /// Watched firms in the snapshot.
    rows: u64,
}

fn expected(firms: &[(String, Row)], b: &BankPlan, period: &str) -> Expected {
    let rules = check_rule_set(&b.rules).unwrap();
    let watched = b.watched_set();
    let mut e = Expected::default();
    for r in &rules {
        e.tallies.insert(r.id.clone(), (0, 0));
    }
    for (uscc, row) in firms.iter().filter(|(u, _)| watched.contains(u)) {
        e.rows += 1;
        for r in &rules {
            let o = evaluate_row(&r.conditions, row);
            let t = e.tallies.get_mut(&r.id).unwrap();
            t.1 += u64::from(o.missing);
            if o.hit {
                t.0 += 1;
                e.alerts.insert((
                    b.bank.to_string(),
                    uscc.clone(),
                    r.id.clone(),
                    period.to_owned(),
                ));
            }
        }
    }
    e
}

/// The bank's per-rule tallies summed over its tasks.
fn summed(tasks: &[TaskRecord], bank: &BankId) -> BTreeMap<String, RuleTally> {
    let mut m: BTreeMap<String, RuleTally> = BTreeMap::new();
    for t in tasks.iter().filter(|t| &t.bank_id == bank) {
        for r in &t.rules {
            let s = m.entry(r.rule_id.clone()).or_insert_with(|| RuleTally {
                rule_id: r.rule_id.clone(),
                ..RuleTally::default()
            });
            s.hits += r.hits;
            s.missing += r.missing;
            s.suppressed += r.suppressed;
            s.alerts += r.alerts;
        }
    }
    m
}

/// Checks the alert messages against the alerts and the banks' settings: one message per
/// alert and recipient (the webhook if enabled, each risk manager's phone), every key unique,
/// so the notifier sends each once. SMS keys name the phone by a tag, never the number.
fn check_notifications(bodies: &[String], alerts: &[RiskAlert], banks: &[&BankPlan]) {
    let recipient = |r: &Recipient| serde_json::to_string(r).unwrap();
    // (bank, alert id, recipient): banks share rule ids and firms, so the id alone is not unique.
    let mut want = BTreeSet::new();
    for a in alerts {
        let b = banks.iter().find(|b| b.bank == a.bank_id).unwrap();
        let mut to = Vec::new();
        if b.settings.webhook {
            to.push(Recipient::BankWebhook {
                bank_id: a.bank_id.clone(),
            });
        }
        to.extend(
            b.settings
                .sms
                .iter()
                .map(|p| Recipient::Sms { phone: p.clone() }),
        );
        for r in to {
            want.insert((a.bank_id.to_string(), a.id.to_string(), recipient(&r)));
        }
    }
    let mut got = BTreeSet::new();
    let mut keys = HashSet::new();
    // Per phone, the tag its keys carry: one per phone, different phones different tags.
    let mut tags: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for body in bodies {
        let n = notification(body);
        assert!(keys.insert(n.key.clone()), "key {} sent twice", n.key);
        assert_eq!(n.template, "risk_alert");
        let id = n.params["alert_id"].as_str().unwrap().to_owned();
        // risk-alert:<bank>:<alert id>:<channel>
        let mut parts = n.key.splitn(4, ':');
        let (Some("risk-alert"), Some(bank), Some(key_id), Some(channel)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            panic!("key {}", n.key)
        };
        assert_eq!(key_id, id, "{}", n.key);
        match &n.recipient {
            Recipient::BankWebhook { bank_id } => {
                assert_eq!((bank_id.as_str(), channel), (bank, "webhook"), "{}", n.key);
            }
            Recipient::Sms { phone } => {
                let tag = channel
                    .strip_prefix("sms:")
                    .unwrap_or_else(|| panic!("SMS key {}", n.key));
                assert!(
                    !n.key.contains(phone.expose()),
                    "a phone number in {}",
                    n.key
                );
                tags.entry(phone.expose().to_owned())
                    .or_default()
                    .insert(tag.to_owned());
            }
            Recipient::PlatformOps => panic!("a risk alert to the platform: {}", n.key),
        }
        assert!(got.insert((bank.to_owned(), id, recipient(&n.recipient))));
    }
    assert_eq!(got, want, "one message per alert and recipient");
    assert!(tags.values().all(|t| t.len() == 1), "{tags:?}");
    let distinct: HashSet<&String> = tags.values().flatten().collect();
    assert_eq!(distinct.len(), tags.len(), "{tags:?}");
}

// ---------------------------------------------------------------------------------------------
// Scenario 1: every task three times, shuffled: the row-wise evaluator's alerts, each once.
// ---------------------------------------------------------------------------------------------

/// One firm in `stride` on each watch list of scenario 1 (twice over: see [`two_banks`]).
///
/// Moto snapshots a table for rollback by deep-copying it once per operation of every
/// transaction (a tenth to a quarter of a second per transaction at a few hundred items), so
/// there the cost of a scan grows with the square of its alerts. The embedded run carries the scale (400
/// firms per bank); the AWS run, with an eighth of it, the adapter.
fn stride(kind: Kind) -> usize {
    match kind {
        Kind::Embedded => 10,
        Kind::Aws => 80,
    }
}

/// Two banks with different rule sets, overlapping watch lists and different settings over a
/// snapshot of 2,000 firms in 4 shards.
fn two_banks(firms: &[(String, Row)], stride: usize) -> [BankPlan; 2] {
    let pick = |keep: &dyn Fn(usize) -> bool| -> Vec<String> {
        firms
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, (u, _))| u.clone())
            .collect()
    };
    // Two firms in `stride` each, one of them on both lists; bank A also watches a firm not
    // in the snapshot, which the scan must simply not find.
    let mut a_watched = pick(&|i| i % stride < 2);
    a_watched.push(firm_uscc());
    [
        BankPlan {
            bank: bank("rska"),
            rules: rule_set(1),
            watched: a_watched,
            settings: RiskSettings {
                sms: vec![phone("13900000001"), phone("13900000002")],
                webhook: true,
            },
        },
        BankPlan {
            bank: bank("rskb"),
            rules: rule_set(2),
            watched: pick(&|i| (1..3).contains(&(i % stride))),
            settings: RiskSettings {
                sms: vec![phone("13900000003")],
                webhook: false,
            },
        },
    ]
}

/// What one scan left behind.
#[derive(Debug)]
struct ScanRun {
    /// Every alert, both banks, by id.
    alerts: Vec<RiskAlert>,
    /// The alert messages, sorted.
    notify_bodies: Vec<String>,
    /// The scan's tasks, in key order.
    tasks: Vec<TaskRecord>,
    /// Both banks' per-rule statistics.
    stats: Vec<BTreeMap<String, RuleStats>>,
}

/// Publish, configure two banks, plan, then every task message handed to risk-worker `copies`
/// times; checks the result against the row-wise evaluator.
async fn run_scan(env: &Env, copies: usize) -> ScanRun {
    let ports = env.risk_ports();
    let firms = publish(&ports, 2000, 21, 4, PERIOD).await;
    let stride = stride(env.kind);
    let banks = two_banks(&firms, stride);
    for b in &banks {
        configure(&ports, b).await;
    }
    let (scan_id, bodies) = plan(env, &ports, 8).await;
    let worker = ShardWorker::new(ports.clone());
    let w = &worker;
    let failures = feed(
        |e| async move {
            risk_shard_batch(w, e)
                .await
                .expect("every record has an id")
        },
        &bodies,
        copies,
        17,
    )
    .await;
    assert_eq!(failures, 0, "no delivery fails, however many copies race");

    let report = scan(&ports, &scan_id).await;
    assert!(
        report.tasks.iter().all(|t| t.status == TaskStatus::Done),
        "{:?}",
        report.tasks
    );
    let s = &report.scan;
    assert_eq!(
        (s.status, s.tasks_planned, s.tasks_done, s.tasks_failing),
        (ScanStatus::Completed, 8, 8, 0)
    );

    let mut alerts = Vec::new();
    for b in &banks {
        let mine = alerts_of(&ports, &b.bank).await;
        assert!(mine.iter().all(|a| a.bank_id == b.bank));
        let want = expected(&firms, b, PERIOD);
        let got: BTreeSet<AlertKey> = mine.iter().map(key_of).collect();
        assert_eq!(
            got.len(),
            mine.len(),
            "one alert per (bank, firm, rule, period)"
        );
        assert_eq!(got, want.alerts, "alerts of {}", b.bank);
        let tallies = summed(&report.tasks, &b.bank);
        let got_tallies: BTreeMap<String, (u64, u64)> = tallies
            .iter()
            .map(|(r, t)| (r.clone(), (t.hits, t.missing)))
            .collect();
        assert_eq!(
            got_tallies, want.tallies,
            "per-rule hits and missing of {}",
            b.bank
        );
        assert!(
            tallies
                .values()
                .all(|t| t.alerts == t.hits && t.suppressed == 0)
        );
        let rows: u64 = report
            .tasks
            .iter()
            .filter(|t| t.bank_id == b.bank)
            .map(|t| t.watched_rows)
            .sum();
        assert_eq!(rows, want.rows);
        assert_eq!(
            rows,
            2 * 2000 / stride as u64,
            "the firm outside the snapshot is not found"
        );
        // The statistics count each alert once, however often its task ran.
        let stats = stats_of(&ports, &b.bank).await;
        let hits: BTreeMap<String, u64> = stats.iter().map(|(r, s)| (r.clone(), s.hits)).collect();
        assert_eq!(hits, per_rule(&mine));
        assert!(
            per_rule(&mine).len() >= 2,
            "{}: {:?}",
            b.bank,
            per_rule(&mine)
        );
        alerts.extend(mine);
    }
    // Enough to mean something: alerts of several rules for each bank, some on missing values.
    assert!(alerts.len() > 40, "only {} alerts", alerts.len());
    assert!(
        alerts.iter().any(|a| a.facts.values().any(Value::is_null)),
        "some alert fired on a missing value"
    );
    assert_eq!(s.alerts, alerts.len() as u64);

    let notify_bodies = drain(env.notify_queue.as_ref()).await;
    check_notifications(&notify_bodies, &alerts, &banks.iter().collect::<Vec<_>>());

    // The schedule firing again with nothing changed plans nothing.
    let planner = ScanPlanner::new(ports.clone(), env.risk_queue.clone());
    assert_eq!(
        risk_scan(&planner).await.unwrap(),
        PlanOutcome::AlreadyPlanned {
            scan_id: scan_id.clone()
        }
    );
    assert!(drain(env.risk_queue.as_ref()).await.is_empty());

    let mut stats = Vec::new();
    for b in &banks {
        stats.push(stats_of(&ports, &b.bank).await);
    }
    let mut notify_bodies = notify_bodies;
    notify_bodies.sort();
    ScanRun {
        alerts,
        notify_bodies,
        tasks: report.tasks,
        stats,
    }
}

async fn redelivered_tasks_raise_each_alert_once(env: &Env) {
    let thrice = run_scan(env, 3).await;
    let once = run_scan(&env.fresh().await, 1).await;
    assert_eq!(thrice.alerts, once.alerts, "the same alerts, item for item");
    assert_eq!(
        thrice.notify_bodies, once.notify_bodies,
        "the same messages, each once"
    );
    assert_eq!(thrice.tasks, once.tasks, "the same task records");
    assert_eq!(thrice.stats, once.stats);
}

// ---------------------------------------------------------------------------------------------
// Scenario 2: a task interrupted half-way through its alert writes completes on its rerun.
// ---------------------------------------------------------------------------------------------

/// One bank watching one firm in nine of a 450-firm snapshot in 3 shards, with a rule nearly
/// every firm meets, so each task writes at least two transactions of alerts (8 alerts per
/// transaction). Returns the tasks in shard order.
async fn crash_setup(env: &Env) -> (BankPlan, String, Vec<ShardTask>) {
    let ports = env.risk_ports();
    let firms = publish(&ports, 450, 5, 3, PERIOD).await;
    let b = BankPlan {
        bank: bank("rskc"),
        rules: vec![
            serde_json::from_value(json!({
                "id": "tax-paid", "name": "有纳税记录（几乎每户命中）", "severity": "info",
                "conditions": {"fact": "tax_paid_12m", "operator": "greaterThan", "value": 0}
            }))
            .unwrap(),
            null_prone_rule(),
        ],
        watched: firms.iter().step_by(9).map(|(u, _)| u.clone()).collect(),
        settings: webhook_only(),
    };
    configure(&ports, &b).await;
    let (scan_id, bodies) = plan(env, &ports, 3).await;
    let mut tasks: Vec<ShardTask> = bodies.iter().map(|m| task_of(m)).collect();
    tasks.sort_by_key(|t| t.shard_index);
    (b, scan_id, tasks)
}

/// The task record of `t`.
async fn task_record(ports: &RiskPorts, t: &ShardTask) -> TaskRecord {
    scan(ports, &t.scan_id)
        .await
        .tasks
        .into_iter()
        .find(|r| r.shard_index == t.shard_index && r.bank_id == t.bank_id)
        .unwrap()
}

fn raised(o: &TaskOutcome) -> (u64, u64) {
    match o {
        TaskOutcome::Done { raised, existing } => (*raised, *existing),
        TaskOutcome::AlreadyDone => panic!("the task was not done yet"),
    }
}

async fn interrupted_task_completes_on_rerun(env: &Env) {
    // The reference: the same scan on a fresh backend, every task run once without faults.
    let clean_env = env.fresh().await;
    let (b, _, tasks) = crash_setup(&clean_env).await;
    let clean_ports = clean_env.risk_ports();
    let worker = ShardWorker::new(clean_ports.clone());
    let mut per_task = Vec::new();
    for t in &tasks {
        let (r, e) = raised(&worker.process(t).await.unwrap());
        assert_eq!(e, 0);
        per_task.push(r);
    }
    assert!(
        per_task.iter().all(|n| *n > 8),
        "each task needs several alert transactions: {per_task:?}"
    );
    let clean_alerts = alerts_of(&clean_ports, &b.bank).await;
    let clean_notify = {
        let mut v = drain(clean_env.notify_queue.as_ref()).await;
        v.sort();
        v
    };
    assert_eq!(
        clean_notify.len(),
        clean_alerts.len(),
        "a webhook message each"
    );
    check_notifications(&clean_notify, &clean_alerts, &[&b]);
    let clean_stats = stats_of(&clean_ports, &b.bank).await;
    let clean_tasks = scan(&clean_ports, &tasks[0].scan_id).await.tasks;

    let (b, scan_id, tasks) = crash_setup(env).await;
    let ports = env.risk_ports();
    let faulty = Arc::new(Faulty::new(env.table.clone()));
    let worker = ShardWorker::new(env.risk_ports_on(faulty.clone()));

    // Task 0: its second alert transaction is throttled once; the worker retries it in place.
    faulty.arm(2, Fault::Unavailable);
    let outcome = worker.process(&tasks[0]).await.unwrap();
    assert!(faulty.spent());
    assert_eq!(raised(&outcome), (per_task[0], 0));

    // Task 1: its second alert transaction fails; the first (8 alerts) is committed.
    faulty.arm(2, Fault::Broken);
    let e = worker.process(&tasks[1]).await.unwrap_err();
    assert!(faulty.spent());
    assert!(e.to_string().contains("connection reset"), "{e}");
    assert_eq!(
        alerts_of(&ports, &b.bank).await.len() as u64,
        per_task[0] + 8
    );
    let t1 = task_record(&ports, &tasks[1]).await;
    assert_eq!((t1.status, t1.attempts), (TaskStatus::Failed, 1));
    assert!(
        t1.error
            .as_deref()
            .is_some_and(|m| m.contains("connection reset")),
        "{:?}",
        t1.error
    );
    let s = scan(&ports, &scan_id).await.scan;
    assert_eq!(
        (s.status, s.tasks_done, s.tasks_failing),
        (ScanStatus::Running, 1, 1)
    );

    // Task 2: the instance dies during its second alert transaction; nothing is recorded.
    faulty.arm(2, Fault::Hang);
    tokio::select! {
        r = worker.process(&tasks[2]) => panic!("the task finished through a hang: {r:?}"),
        () = faulty.hung.notified() => {}
    }
    assert_eq!(
        alerts_of(&ports, &b.bank).await.len() as u64,
        per_task[0] + 8 + 8
    );
    let t2 = task_record(&ports, &tasks[2]).await;
    assert_eq!(
        (t2.status, t2.attempts, t2.error),
        (TaskStatus::Pending, 0, None)
    );

    // The queue delivers both again, to a new instance on a healthy table.
    let worker = ShardWorker::new(ports.clone());
    assert_eq!(
        raised(&worker.process(&tasks[2]).await.unwrap()),
        (per_task[2] - 8, 8)
    );
    let s = scan(&ports, &scan_id).await.scan;
    assert_eq!(
        (s.status, s.tasks_done, s.tasks_failing),
        (ScanStatus::Failing, 2, 1),
        "no task pending, one failing"
    );
    assert_eq!(
        raised(&worker.process(&tasks[1]).await.unwrap()),
        (per_task[1] - 8, 8)
    );
    assert_eq!(
        worker.process(&tasks[1]).await.unwrap(),
        TaskOutcome::AlreadyDone
    );

    let report = scan(&ports, &scan_id).await;
    let s = &report.scan;
    assert_eq!(
        (s.status, s.tasks_done, s.tasks_failing),
        (ScanStatus::Completed, 3, 0)
    );
    let t1 = task_record(&ports, &tasks[1]).await;
    assert_eq!(
        (t1.status, t1.attempts, t1.error.as_deref()),
        (TaskStatus::Done, 1, None),
        "done, its failure counted but no longer shown"
    );
    let alerts = alerts_of(&ports, &b.bank).await;
    assert_eq!(alerts, clean_alerts, "the alerts of an uninterrupted run");
    assert_eq!(s.alerts, alerts.len() as u64);
    let mut notify = drain(env.notify_queue.as_ref()).await;
    notify.sort();
    assert_eq!(
        notify, clean_notify,
        "the messages of an uninterrupted run, once each"
    );
    let stats = stats_of(&ports, &b.bank).await;
    assert_eq!(stats, clean_stats);
    let hits: BTreeMap<String, u64> = stats.iter().map(|(r, s)| (r.clone(), s.hits)).collect();
    assert_eq!(hits, per_rule(&alerts), "each alert counted once");
    // The tallies too, attempts and versions aside.
    let tally = |ts: &[TaskRecord]| -> Vec<(u32, Vec<RuleTally>, u64, u64)> {
        ts.iter()
            .map(|t| (t.shard_index, t.rules.clone(), t.watched_rows, t.alerts))
            .collect()
    };
    assert_eq!(tally(&report.tasks), tally(&clean_tasks));
}

// ---------------------------------------------------------------------------------------------
// Scenario 3: a malformed shard fails its task and ends in the dead-letter queue.
// ---------------------------------------------------------------------------------------------

/// One handler call for one record: message id, shard, receive count, reported failed.
type Delivery = (String, String, String, bool);

async fn malformed_shard_is_dead_lettered(env: &Env) {
    let ports = env.risk_ports();
    let firms = publish(&ports, 100, 9, 2, PERIOD).await;
    let b = BankPlan {
        bank: bank("rskd"),
        rules: vec![broad_rule("grade-low", None)],
        watched: firms.iter().step_by(4).map(|(u, _)| u.clone()).collect(),
        settings: webhook_only(),
    };
    configure(&ports, &b).await;
    // The second shard's object is overwritten with bytes no Parquet reader accepts.
    let period = Period::parse(PERIOD).unwrap();
    let bad_key = SnapshotStore::key(period, "part-00001.parquet");
    ports
        .blobs
        .put(
            &bad_key,
            b"PAR1 not a parquet file PAR1".to_vec(),
            "application/vnd.apache.parquet",
        )
        .await
        .unwrap();
    let planner = ScanPlanner::new(ports.clone(), env.risk_queue.clone());
    let PlanOutcome::Planned { scan_id, tasks: 2 } = risk_scan(&planner).await.unwrap() else {
        panic!("expected two tasks")
    };

    // risk-worker as its event source mapping runs it: batches off the queue, failures
    // reported per record and left on the queue, no wait before the next receive.
    let worker = Arc::new(ShardWorker::new(ports.clone()));
    let calls: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let seen = calls.clone();
    let mut consumer = Consumer::new("risk-worker", env.risk_queue.clone(), move |e| {
        let (w, seen) = (worker.clone(), seen.clone());
        Box::pin(async move {
            let records: Vec<(String, String, String)> = e
                .records
                .iter()
                .map(|r| {
                    (
                        r.message_id.clone().unwrap(),
                        task_of(r.body.as_deref().unwrap()).shard,
                        r.attributes
                            .get("ApproximateReceiveCount")
                            .cloned()
                            .unwrap_or_default(),
                    )
                })
                .collect();
            let response = risk_shard_batch(&w, e).await.unwrap();
            let failed: HashSet<&str> = response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.as_str())
                .collect();
            let mut seen = seen.lock().unwrap();
            for (id, shard, count) in records {
                let f = failed.contains(id.as_str());
                seen.push((id, shard, count, f));
            }
            drop(seen);
            response
        })
    });
    consumer.visibility = Duration::ZERO;
    let bad_deliveries = || {
        calls
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.1 == "part-00001.parquet")
            .count()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n = poll_once(&consumer).await.unwrap();
        let handled = bad_deliveries();
        if n == 0 && handled >= MAX_RECEIVES as usize {
            break;
        }
        assert!(
            handled <= MAX_RECEIVES as usize,
            "handed to the worker past the receive limit"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task of the malformed shard was not dead-lettered in time"
        );
        if n == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let calls = calls.lock().unwrap().clone();
    let good: Vec<&Delivery> = calls
        .iter()
        .filter(|d| d.1 == "part-00000.parquet")
        .collect();
    assert_eq!(good.len(), 1, "the readable shard once: {calls:?}");
    assert!(!good[0].3, "and not failed");
    let bad: Vec<&Delivery> = calls
        .iter()
        .filter(|d| d.1 == "part-00001.parquet")
        .collect();
    let bad_id = bad[0].0.clone();
    let want: Vec<Delivery> = (1..=MAX_RECEIVES)
        .map(|k| {
            (
                bad_id.clone(),
                "part-00001.parquet".to_owned(),
                k.to_string(),
                true,
            )
        })
        .collect();
    assert_eq!(
        bad.into_iter().cloned().collect::<Vec<_>>(),
        want,
        "each delivery reported as a batch item failure"
    );

    let report = scan(&ports, &scan_id).await;
    let failed = report.tasks.iter().find(|t| t.shard_index == 1).unwrap();
    assert_eq!(
        (failed.status, failed.attempts),
        (TaskStatus::Failed, MAX_RECEIVES)
    );
    let error = failed.error.as_deref().unwrap_or_default();
    assert!(
        error.contains(&bad_key),
        "the error names the shard: {error}"
    );
    let done = report.tasks.iter().find(|t| t.shard_index == 0).unwrap();
    assert_eq!(done.status, TaskStatus::Done);
    let s = &report.scan;
    assert_eq!(
        (s.status, s.tasks_done, s.tasks_failing),
        (ScanStatus::Failing, 1, 1)
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut dead = Vec::new();
    while dead.is_empty() && tokio::time::Instant::now() < deadline {
        dead = env
            .risk_dead_letter
            .receive(10, Duration::from_secs(30))
            .await
            .unwrap();
        if dead.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].id, bad_id, "in the dead-letter queue, intact");
    let task = task_of(&dead[0].body);
    assert_eq!(
        (task.scan_id.as_str(), task.shard.as_str(), task.shard_index),
        (scan_id.as_str(), "part-00001.parquet", 1)
    );
    assert!(drain(env.risk_queue.as_ref()).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Scenario 4: a cool-down of two periods suppresses the next two periods' repeats.
// ---------------------------------------------------------------------------------------------

async fn cool_down_suppresses_repeats(env: &Env) {
    let ports = env.risk_ports();
    let b = bank("rske");
    // The firms the rules hit, known once the first snapshot is read.
    let mut hitting: BTreeSet<String> = BTreeSet::new();
    let periods = ["2026-08", "2026-09", "2026-10", "2026-11"];
    for (i, p) in periods.iter().enumerate() {
        // The same seed every month: the same firms with the same values, so every firm that
        // hits does so in every period.
        let firms = publish(&ports, 40, 13, 1, p).await;
        if i == 0 {
            let bp = BankPlan {
                bank: b.clone(),
                rules: vec![
                    broad_rule("grade-low-2", Some(2)),
                    broad_rule("grade-low", None),
                ],
                watched: firms.iter().map(|(u, _)| u.clone()).collect(),
                settings: webhook_only(),
            };
            configure(&ports, &bp).await;
            hitting = expected(&firms, &bp, p)
                .alerts
                .into_iter()
                .filter(|k| k.2 == "grade-low-2")
                .map(|k| k.1)
                .collect();
        }
        let h = hitting.len() as u64;
        assert!(h > 5, "{h} firms hit");
        let (scan_id, bodies) = plan(env, &ports, 1).await;
        assert!(scan_id.starts_with(p), "{scan_id}");
        let worker = ShardWorker::new(ports.clone());
        let w = &worker;
        let failures = feed(
            |e| async move { risk_shard_batch(w, e).await.unwrap() },
            &bodies,
            1,
            0,
        )
        .await;
        assert_eq!(failures, 0);
        let report = scan(&ports, &scan_id).await;
        let tally = |rule: &str| {
            let t = report.tasks[0]
                .rules
                .iter()
                .find(|r| r.rule_id == rule)
                .unwrap();
            (t.hits, t.suppressed, t.alerts)
        };
        let alerting = i == 0 || i == 3;
        let want = if alerting { (h, 0, h) } else { (h, h, 0) };
        assert_eq!(tally("grade-low-2"), want, "{p}");
        assert_eq!(
            tally("grade-low"),
            (h, 0, h),
            "{p}: no cool-down, every period"
        );

        let alerted: BTreeSet<String> = list_all(
            &ports,
            &b,
            AlertFilter {
                period: Some(Period::parse(p).unwrap()),
                rule_id: Some("grade-low-2".into()),
                ..AlertFilter::default()
            },
        )
        .await
        .into_iter()
        .map(|a| a.uscc.to_string())
        .collect();
        if alerting {
            assert_eq!(alerted, hitting, "{p}");
        } else {
            assert!(alerted.is_empty(), "{p}: {alerted:?}");
        }
        // One message per alert raised, suppressed hits send nothing. (Read now: the embedded
        // queue drops messages older than SQS's retention, and the clock moves a month.)
        let sent = drain(env.notify_queue.as_ref()).await.len() as u64;
        assert_eq!(sent, if alerting { 2 * h } else { h }, "{p}");
        env.clock.advance(chrono::Duration::days(30));
    }
    // Each hitting firm: alerts in 08 and 11 only for the cooled rule, every month otherwise.
    let all = alerts_of(&ports, &b).await;
    for u in &hitting {
        let periods_of = |rule: &str| -> Vec<String> {
            let mut v: Vec<String> = all
                .iter()
                .filter(|a| a.uscc.as_str() == u && a.rule_id == rule)
                .map(|a| a.period.to_string())
                .collect();
            v.sort();
            v
        };
        assert_eq!(periods_of("grade-low-2"), ["2026-08", "2026-11"], "{u}");
        assert_eq!(periods_of("grade-low"), periods, "{u}");
    }
    let stats = stats_of(&ports, &b).await;
    let h = hitting.len() as u64;
    assert_eq!(stats["grade-low-2"].hits, 2 * h);
    assert_eq!(stats["grade-low"].hits, 4 * h);

    // The next day's run scans the same snapshot again (firms watched since would be covered):
    // a new scan, which finds the period's alerts raised already: nothing raised, counted or
    // sent again, and the cool-down does not count the period's own alerts against it.
    env.clock.advance(chrono::Duration::days(1));
    let (scan_id, bodies) = plan(env, &ports, 1).await;
    assert!(scan_id.starts_with("2026-11"), "{scan_id}");
    let outcome = ShardWorker::new(ports.clone())
        .process(&task_of(&bodies[0]))
        .await
        .unwrap();
    assert_eq!(raised(&outcome), (0, 2 * h));
    let report = scan(&ports, &scan_id).await;
    assert_eq!(
        (report.scan.status, report.scan.alerts),
        (ScanStatus::Completed, 2 * h)
    );
    assert!(
        report.tasks[0]
            .rules
            .iter()
            .all(|t| (t.hits, t.suppressed, t.alerts) == (h, 0, h))
    );
    assert_eq!(alerts_of(&ports, &b).await, all, "nothing raised again");
    assert_eq!(stats_of(&ports, &b).await, stats, "nothing counted again");
    assert!(
        drain(env.notify_queue.as_ref()).await.is_empty(),
        "nothing sent again"
    );
}

// ---------------------------------------------------------------------------------------------
// Scenario 5: tenant isolation and the desk's moves.
// ---------------------------------------------------------------------------------------------

async fn banks_work_only_their_own_alerts(env: &Env) {
    let ports = env.risk_ports();
    let firms = publish(&ports, 120, 31, 1, PERIOD).await;
    let usccs: Vec<String> = firms.iter().map(|(u, _)| u.clone()).collect();
    // The same rules, firms 0–79 for A and 40–119 for B: on the firms both watch, both banks
    // hold an alert with the same id.
    let rules = vec![broad_rule("grade-low", None)];
    let (a, b) = (bank("rskf"), bank("rskg"));
    let plans = [
        BankPlan {
            bank: a.clone(),
            rules: rules.clone(),
            watched: usccs[..80].to_vec(),
            settings: webhook_only(),
        },
        BankPlan {
            bank: b.clone(),
            rules,
            watched: usccs[40..].to_vec(),
            settings: webhook_only(),
        },
    ];
    for p in &plans {
        configure(&ports, p).await;
    }
    let (_, bodies) = plan(env, &ports, 2).await;
    let worker = ShardWorker::new(ports.clone());
    for body in &bodies {
        worker.process(&task_of(body)).await.unwrap();
    }
    let mine_a = alerts_of(&ports, &a).await;
    let mine_b = alerts_of(&ports, &b).await;
    for (p, mine) in plans.iter().zip([&mine_a, &mine_b]) {
        assert!(mine.iter().all(|x| x.bank_id == p.bank), "{}", p.bank);
        let keys: BTreeSet<AlertKey> = mine.iter().map(key_of).collect();
        assert_eq!(keys, expected(&firms, p, PERIOD).alerts, "{}", p.bank);
    }
    let watched_b = plans[1].watched_set();
    let only_a: Vec<&RiskAlert> = mine_a
        .iter()
        .filter(|x| !watched_b.contains(x.uscc.as_str()))
        .collect();
    let shared = mine_a
        .iter()
        .find(|x| watched_b.contains(x.uscc.as_str()))
        .expect("an alert on a firm both banks watch");
    assert!(
        only_a.len() >= 2,
        "{} alerts on firms only A watches",
        only_a.len()
    );

    let desk = AlertService::new(ports.clone());
    let (who_a, who_b) = (risk_admin(&a), risk_admin(&b));
    let alpha = only_a[0].id.clone();
    // B cannot read or work A's alert: to B it does not exist.
    assert!(matches!(
        desk.get(&who_b, &alpha).await,
        Err(Error::NotFound(_))
    ));
    let ack = AlertAction::Acknowledge { note: None };
    assert!(matches!(
        desk.act(&who_b, &alpha, ack.clone()).await,
        Err(Error::NotFound(_))
    ));
    // The same id names each bank's own alert.
    let theirs = desk.get(&who_b, &shared.id).await.unwrap();
    assert_eq!(
        (theirs.bank_id.clone(), theirs.id.clone()),
        (b.clone(), shared.id.clone())
    );
    assert_eq!(desk.get(&who_a, &shared.id).await.unwrap(), *shared);
    // Staff without a risk role read nothing.
    assert!(matches!(
        desk.list(&product_admin(&a), AlertFilter::default()).await,
        Err(Error::Forbidden(_))
    ));

    // acknowledge → verify (false alarm, with a note) → close.
    let acked = desk.act(&who_a, &alpha, ack.clone()).await.unwrap();
    assert_eq!(acked.status, AlertStatus::Acknowledged);
    let blank = AlertAction::Verify {
        verdict: Verdict::FalseAlarm,
        note: " ".into(),
    };
    assert!(matches!(
        desk.act(&who_a, &alpha, blank).await,
        Err(Error::Validation(_))
    ));
    let verified = desk
        .act(
            &who_a,
            &alpha,
            AlertAction::Verify {
                verdict: Verdict::FalseAlarm,
                note: "季节性停产，已电话核实".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (verified.status, verified.verdict),
        (AlertStatus::Verified, Some(Verdict::FalseAlarm))
    );
    let closed = desk
        .act(&who_a, &alpha, AlertAction::Close { note: None })
        .await
        .unwrap();
    assert_eq!(closed.status, AlertStatus::Closed);
    assert_eq!(
        closed
            .history
            .iter()
            .map(|c| (c.status, c.by.as_str(), c.note.as_deref()))
            .collect::<Vec<_>>(),
        [
            (AlertStatus::Acknowledged, who_a.subject.as_str(), None),
            (
                AlertStatus::Verified,
                who_a.subject.as_str(),
                Some("季节性停产，已电话核实")
            ),
            (AlertStatus::Closed, who_a.subject.as_str(), None),
        ]
    );
    assert_eq!(desk.get(&who_a, &alpha).await.unwrap(), closed);
    // A closed alert moves no further.
    for action in [
        ack,
        AlertAction::Close { note: None },
        AlertAction::Verify {
            verdict: Verdict::ConfirmedRisk,
            note: "再次核实".into(),
        },
    ] {
        assert!(
            matches!(
                desk.act(&who_a, &alpha, action).await,
                Err(Error::Conflict(_))
            ),
            "closed alert moved"
        );
    }

    let rule = &alpha.rule_id;
    let hits = mine_a.iter().filter(|x| &x.rule_id == rule).count() as u64;
    let s = &stats_of(&ports, &a).await[rule];
    assert_eq!(
        (s.hits, s.acknowledged, s.false_alarm, s.confirmed, s.closed),
        (hits, 1, 1, 0, 1)
    );
    assert_eq!(s.false_alarm_rate, Some(1.0));
    // A second verdict, a confirmed risk, straight from open: the rate is over verified alerts.
    let beta = only_a[1].id.clone();
    desk.act(
        &who_a,
        &beta,
        AlertAction::Verify {
            verdict: Verdict::ConfirmedRisk,
            note: "欠税属实".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(stats_of(&ports, &a).await[rule].false_alarm_rate, Some(0.5));
    // B's statistics and alerts are untouched by A's work.
    let sb = &stats_of(&ports, &b).await[rule];
    assert_eq!(
        (
            sb.acknowledged,
            sb.false_alarm,
            sb.confirmed,
            sb.closed,
            sb.false_alarm_rate
        ),
        (0, 0, 0, 0, None)
    );
    assert!(
        alerts_of(&ports, &b)
            .await
            .iter()
            .all(|x| x.status == AlertStatus::Open)
    );
    // The desk's filters: A's closed alerts are exactly alpha.
    let closed_a = list_all(
        &ports,
        &a,
        AlertFilter {
            status: Some(AlertStatus::Closed),
            ..AlertFilter::default()
        },
    )
    .await;
    assert_eq!(
        closed_a
            .iter()
            .map(|x| x.id.clone())
            .collect::<Vec<AlertId>>(),
        [alpha]
    );
}

// ---------------------------------------------------------------------------------------------
// Scenario 6: a borrower approved in the financing flow is watched and scanned.
// ---------------------------------------------------------------------------------------------

/// A one-firm snapshot for `uscc` in which every indicator is missing.
fn blank_snapshot(dir: &Path, uscc: &str, period: &str) {
    let schema = puhui_snapshot::schema();
    let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(vec![uscc]))];
    columns.extend(
        schema.fields()[1..]
            .iter()
            .map(|f| arrow_array::new_null_array(f.data_type(), 1)),
    );
    let batch = RecordBatch::try_new(schema, columns).unwrap();
    let mut w = puhui_snapshot::Writer::create(dir, period).unwrap();
    w.write_shard(&[batch]).unwrap();
    w.finish().unwrap();
}

async fn approved_borrower_is_watched_and_scanned(env: &Env) {
    let ports = env.ports(FinancingConfig::default());
    let lender = bank("rskh");
    let applicant = setup(env, &ports, std::slice::from_ref(&lender), 1).await;
    let d = applicant.submit().await;
    DispatchService::new(ports.clone())
        .dispatch(d.id)
        .await
        .unwrap();
    let desk = DeskService::new(ports.clone());
    let who = officer(&lender);
    assert!(desk.claim(&who, d.id).await.unwrap().created);
    for stage in [
        ClaimStage::Contacted,
        ClaimStage::UnderReview,
        ClaimStage::Approved,
    ] {
        let approved = stage == ClaimStage::Approved;
        desk.progress(
            &who,
            d.id,
            ProgressUpdate {
                stage,
                approved_amount: approved.then_some(Fen(30_000_000)),
                annual_rate_bp: approved.then_some(Bp(385)),
                note: None,
            },
        )
        .await
        .unwrap();
        // Watched from the approval on, not before.
        let watched = WatchListService::new(env.risk_ports())
            .watched(&lender)
            .await
            .unwrap();
        assert_eq!(watched.len(), usize::from(approved), "{stage:?}");
    }
    drain(env.notify_queue.as_ref()).await;

    // On the lender's watch list, as its loan officer sees it.
    let risk = env.risk_ports();
    let watched = WatchListService::new(risk.clone())
        .list(
            &who,
            PageRequest {
                limit: Some(10),
                cursor: None,
            },
        )
        .await
        .unwrap()
        .items;
    assert_eq!(watched.len(), 1);
    let entry = &watched[0];
    assert_eq!(
        (entry.uscc.as_str(), entry.source, entry.added_by.as_str()),
        (
            firm_uscc().as_str(),
            WatchSource::Financing,
            who.subject.as_str()
        )
    );

    // The next scan looks at it: a snapshot where all its figures are missing fires a rule
    // over `not`.
    let admin = risk_admin(&lender);
    RuleSetService::new(risk.clone())
        .save(
            &admin,
            RuleSetDraft {
                rules: vec![broad_rule("grade-low", None)],
            },
        )
        .await
        .unwrap();
    let dir = TempDir::new("risk");
    blank_snapshot(&dir.0, &firm_uscc(), PERIOD);
    SnapshotStore::new(risk.blobs.clone())
        .publish(&dir.0)
        .await
        .unwrap();
    let (_, bodies) = plan(env, &risk, 1).await;
    let outcome = ShardWorker::new(risk.clone())
        .process(&task_of(&bodies[0]))
        .await
        .unwrap();
    assert_eq!(raised(&outcome), (1, 0));
    let alerts = alerts_of(&risk, &lender).await;
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(
        (a.uscc.clone(), a.rule_id.as_str(), a.period.to_string()),
        (
            Uscc::parse(&firm_uscc()).unwrap(),
            "grade-low",
            PERIOD.to_owned()
        )
    );
    assert_eq!(
        a.facts,
        Map::from_iter([("tax_credit_grade".into(), Value::Null)])
    );
    let sent = drain(env.notify_queue.as_ref()).await;
    assert_eq!(
        sent.iter().map(|m| notification(m).key).collect::<Vec<_>>(),
        [format!("risk-alert:{lender}:{}:webhook", a.id)]
    );
}

// ---------------------------------------------------------------------------------------------
// The tests: every scenario on both adapters.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivered_tasks_raise_each_alert_once_on_embedded() {
    redelivered_tasks_raise_each_alert_once(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivered_tasks_raise_each_alert_once_on_aws() {
    redelivered_tasks_raise_each_alert_once(&Env::new(Kind::Aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interrupted_task_completes_on_rerun_on_embedded() {
    interrupted_task_completes_on_rerun(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interrupted_task_completes_on_rerun_on_aws() {
    interrupted_task_completes_on_rerun(&Env::new(Kind::Aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_shard_is_dead_lettered_on_embedded() {
    malformed_shard_is_dead_lettered(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_shard_is_dead_lettered_on_aws() {
    malformed_shard_is_dead_lettered(&Env::new(Kind::Aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cool_down_suppresses_repeats_on_embedded() {
    cool_down_suppresses_repeats(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cool_down_suppresses_repeats_on_aws() {
    cool_down_suppresses_repeats(&Env::new(Kind::Aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn banks_work_only_their_own_alerts_on_embedded() {
    banks_work_only_their_own_alerts(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn banks_work_only_their_own_alerts_on_aws() {
    banks_work_only_their_own_alerts(&Env::new(Kind::Aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approved_borrower_is_watched_and_scanned_on_embedded() {
    approved_borrower_is_watched_and_scanned(&Env::new(Kind::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approved_borrower_is_watched_and_scanned_on_aws() {
    approved_borrower_is_watched_and_scanned(&Env::new(Kind::Aws).await).await;
}
