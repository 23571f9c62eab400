//! Risk monitoring: banks' versioned rule sets and watch lists, scheduled scans of the newest
//! indicator snapshot (planned as shard × bank tasks on a queue), alerts raised exactly once per
//! (bank, firm, rule, period), and the desk where staff work them.
//!
//! Storage (single table):
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! |---|---|---|---|
//! | rule-set version | `RULESET#<bank>` | `V#<version, 10 digits>` | – |
//! | newest rule set | `RULESET#<bank>` | `CURRENT` | `RULESETS` / `<bank>` |
//! | watched firm | `WATCH#<bank>` | `<uscc>` | – |
//! | alert settings | `RISKSETTINGS#<bank>` | `SETTINGS` | – |
//! | alert | `ALERT#<bank>#<uscc>` | `<rule>#<period>` | `ALERTS#<bank>` / `<period>#<uscc>#<rule>` |
//! | per-rule counts | `RISKSTATS#<bank>` | `<rule>` | – |
//! | scan | `SCAN#<id>` | `SCAN` | `SCANS` / `<created ulid>` |
//! | scan task | `SCAN#<id>` | `TASK#<shard, 5 digits>#<bank>` | – |
//!
//! Snapshots live in the blob store under `snapshots/<period>/` (`manifest.json` and shards).

mod alerts;
mod build;
mod notices;
mod rule_sets;
mod scans;
mod snapshots;
mod watch;
mod worker;

use puhui_domain::risk::{AlertId, Period};
use puhui_domain::{BankId, Error, Principal, Role, Uscc};
use puhui_ports::{Key, Table};

pub use alerts::{AlertFilter, AlertService};
pub use build::{BuildReport, SnapshotBuilder};
pub use rule_sets::{DryRun, DryRunCount, RuleSetDraft, RuleSetService};
pub use scans::{
    PlanOutcome, PlannedBank, RuleTally, ScanPlanner, ScanRecord, ScanReport, ScanStatus, ScanView,
    TaskRecord, TaskStatus,
};
pub use snapshots::{INPUTS, SNAPSHOTS, SnapshotStore};
pub use watch::{BulkReport, BulkUpload, WatchListService, watch_op};
pub use worker::{ShardTask, ShardWorker, TaskOutcome};

/// The ports every risk use case shares (snapshots in the blob store; alert notifications
/// staged in the outbox with the alerts).
pub type RiskPorts = crate::storage::StoragePorts;

/// The caller's bank if it holds one of the risk roles (`risk_admin` or `loan_officer`).
pub(crate) fn risk_bank(who: &Principal) -> Result<&BankId, Error> {
    who.bank_with_role(Role::RiskAdmin)
        .or_else(|_| who.bank_with_role(Role::LoanOfficer))
}

pub(crate) fn current_rule_set_key(bank: &BankId) -> Key {
    Key::new(format!("RULESET#{bank}"), "CURRENT")
}

pub(crate) fn rule_set_key(bank: &BankId, version: u64) -> Key {
    Key::new(format!("RULESET#{bank}"), format!("V#{version:010}"))
}

pub(crate) fn watch_key(bank: &BankId, uscc: &Uscc) -> Key {
    Key::new(format!("WATCH#{bank}"), uscc.as_str())
}

pub(crate) fn settings_key(bank: &BankId) -> Key {
    Key::new(format!("RISKSETTINGS#{bank}"), "SETTINGS")
}

pub(crate) fn alert_key(bank: &BankId, id: &AlertId) -> Key {
    Key::new(
        format!("ALERT#{bank}#{}", id.uscc),
        format!("{}#{}", id.rule_id, id.period),
    )
}

pub(crate) fn alert_index_key(bank: &BankId, id: &AlertId) -> Key {
    Key::new(
        format!("ALERTS#{bank}"),
        format!("{}#{}#{}", id.period, id.uscc, id.rule_id),
    )
}

pub(crate) fn stats_key(bank: &BankId, rule_id: &str) -> Key {
    Key::new(format!("RISKSTATS#{bank}"), rule_id)
}

pub(crate) fn scan_key(id: &str) -> Key {
    Key::new(format!("SCAN#{id}"), "SCAN")
}

pub(crate) fn task_key(scan: &str, shard_index: u32, bank: &BankId) -> Key {
    Key::new(
        format!("SCAN#{scan}"),
        format!("TASK#{shard_index:05}#{bank}"),
    )
}

/// The bank's alert settings (defaults until saved). Read from the attributes alone: the
/// settings refuse unknown fields (as the API must), and the item's version is not one of them.
pub(crate) async fn load_settings(
    table: &dyn Table,
    bank: &BankId,
) -> Result<puhui_domain::risk::RiskSettings, Error> {
    match table.get(&settings_key(bank)).await? {
        Some(item) => serde_json::from_value(serde_json::Value::Object(item.attrs))
            .map_err(|e| Error::Internal(format!("stored settings of {bank} unreadable: {e}"))),
        None => Ok(puhui_domain::risk::RiskSettings::default()),
    }
}

/// The indicators a rule set reads (what a shard read must decode).
pub(crate) fn facts_read(rules: &[puhui_domain::rules::WatchRule]) -> Vec<String> {
    let mut facts: Vec<String> = rules
        .iter()
        .flat_map(|r| r.conditions.leaves())
        .map(|l| l.fact.clone())
        .collect();
    facts.sort();
    facts.dedup();
    facts
}

/// Periods whose alerts a hit in `period` must not repeat: the `cooldown` periods before it.
pub(crate) fn cooldown_window(period: Period, cooldown: u16) -> Option<(Period, Period)> {
    (cooldown > 0).then(|| (period.minus(cooldown), period.minus(1)))
}
