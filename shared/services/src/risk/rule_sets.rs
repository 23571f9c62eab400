//! A bank's rule set: saved as a new version each time (scans name the version they ran), read,
//! and tried against the newest snapshot without raising anything (dry run).

use std::collections::HashSet;

use puhui_domain::risk::RuleSet;
use puhui_domain::rules::{WatchRule, WatchRuleDraft, check_rule_set};
use puhui_domain::{BankId, Error, Principal, Role};
use puhui_engines::columnar::CompiledRules;
use puhui_ports::{Condition, PortError, TxOp, Update};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::snapshots::SnapshotStore;
use super::watch::WatchListService;
use super::worker::watched_rows;
use super::{RiskPorts, current_rule_set_key, risk_bank, rule_set_key};
use crate::codec;

/// A rule set as a bank submits it.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSetDraft {
    /// The rules (1–200), each with a unique id.
    pub rules: Vec<WatchRuleDraft>,
}

/// One rule's counts in a dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DryRunCount {
    /// The rule.
    pub rule_id: String,
    /// Watched firms it fires on.
    pub watched_hits: u64,
    /// Missing indicator values its leaves met on watched firms.
    pub watched_missing: u64,
    /// Firms in the whole snapshot it fires on (how selective the rule is).
    pub all_hits: u64,
}

/// What a rule set would raise on the newest snapshot: counts only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DryRun {
    /// The snapshot's period.
    pub period: String,
    /// Firms in the snapshot.
    pub firms: u64,
    /// Of them, on the bank's watch list.
    pub watched_firms: u64,
    /// Per rule, in rule-set order.
    pub rules: Vec<DryRunCount>,
}

/// Rule-set use cases.
#[derive(Clone)]
pub struct RuleSetService {
    ports: RiskPorts,
}

impl RuleSetService {
    /// The service over the risk ports.
    pub fn new(ports: RiskPorts) -> Self {
        RuleSetService { ports }
    }

    /// Checks and saves the caller's rule set as the next version (`risk_admin`).
    pub async fn save(&self, who: &Principal, draft: RuleSetDraft) -> Result<RuleSet, Error> {
        let bank = who.bank_with_role(Role::RiskAdmin)?;
        check_rule_set(&draft.rules)?;
        let current = self.ports.table.get(&current_rule_set_key(bank)).await?;
        let (version, condition) = match &current {
            Some(item) => (item.version + 1, Condition::VersionEquals(item.version)),
            None => (1, Condition::NotExists),
        };
        let set = RuleSet {
            bank_id: bank.clone(),
            version,
            rules: draft.rules,
            saved_at: self.ports.clock.now(),
            saved_by: who.subject.clone(),
        };
        // The pointer's item version counts the saves, so it is the rule set's version.
        let mut pointer = serde_json::Map::new();
        pointer.insert("bank_id".into(), json!(bank));
        pointer.insert("rule_set_version".into(), json!(version));
        let ops = vec![
            TxOp::Update {
                key: current_rule_set_key(bank),
                update: Update {
                    set: pointer,
                    gsi1: Some(Some(puhui_ports::Key::new("RULESETS", bank.as_str()))),
                    ..Update::default()
                },
                condition: Some(condition),
            },
            TxOp::Put {
                item: codec::to_item(rule_set_key(bank, version), &set)?,
                condition: Some(Condition::NotExists),
            },
        ];
        match self.ports.table.transact(ops).await {
            Ok(()) => {
                tracing::info!(bank = %bank, version, "rule set saved");
                Ok(set)
            }
            Err(PortError::TransactionCancelled { .. }) => Err(Error::Conflict(
                "the rule set was saved by someone else meanwhile; read it again".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The caller's newest rule set.
    pub async fn current(&self, who: &Principal) -> Result<RuleSet, Error> {
        let bank = risk_bank(who)?;
        let version = self
            .current_version(bank)
            .await?
            .ok_or_else(|| Error::NotFound("rule set (none saved yet)".into()))?;
        self.version(bank, version).await
    }

    /// One saved version of the caller's rule set.
    pub async fn get_version(&self, who: &Principal, version: u64) -> Result<RuleSet, Error> {
        self.version(risk_bank(who)?, version).await
    }

    /// The bank's newest version number.
    pub(crate) async fn current_version(&self, bank: &BankId) -> Result<Option<u64>, Error> {
        Ok(self
            .ports
            .table
            .get(&current_rule_set_key(bank))
            .await?
            .map(|i| i.version))
    }

    /// A stored version.
    pub(crate) async fn version(&self, bank: &BankId, version: u64) -> Result<RuleSet, Error> {
        match self.ports.table.get(&rule_set_key(bank, version)).await? {
            Some(item) => codec::from_item(item),
            None => Err(Error::NotFound(format!("rule set version {version}"))),
        }
    }

    /// Runs `draft` (or, without one, the newest saved set) over the newest snapshot and
    /// returns counts only: nothing is raised, stored or sent.
    pub async fn dry_run(
        &self,
        who: &Principal,
        draft: Option<RuleSetDraft>,
    ) -> Result<DryRun, Error> {
        let bank = risk_bank(who)?;
        let rules: Vec<WatchRule> = match draft {
            Some(d) => check_rule_set(&d.rules)?,
            None => check_rule_set(&self.current(who).await?.rules)?,
        };
        let store = SnapshotStore::new(self.ports.blobs.clone());
        let manifest = store
            .latest()
            .await?
            .ok_or_else(|| Error::NotFound("snapshot (none published yet)".into()))?;
        let batches = store
            .all(&manifest, Some(super::facts_read(&rules)))
            .await?;
        let watched = WatchListService::new(self.ports.clone())
            .watched(bank)
            .await?;
        let period = manifest.period.clone();
        let firms = manifest.total_rows;
        tokio::task::spawn_blocking(move || count(&rules, &batches, &watched, period, firms))
            .await
            .map_err(|e| Error::Internal(format!("dry run stopped: {e}")))?
    }
}

fn count(
    rules: &[WatchRule],
    batches: &[arrow_array::RecordBatch],
    watched: &HashSet<String>,
    period: String,
    firms: u64,
) -> Result<DryRun, Error> {
    let compiled = CompiledRules::compile(rules);
    let mut counts: Vec<DryRunCount> = rules
        .iter()
        .map(|r| DryRunCount {
            rule_id: r.id.clone(),
            watched_hits: 0,
            watched_missing: 0,
            all_hits: 0,
        })
        .collect();
    let mut watched_firms = 0;
    for batch in batches {
        for (c, h) in counts.iter_mut().zip(compiled.evaluate(batch)) {
            c.all_hits += h.hits.count_set_bits() as u64;
        }
        let mine = watched_rows(batch, watched)?;
        watched_firms += mine.num_rows() as u64;
        for (c, h) in counts.iter_mut().zip(compiled.evaluate(&mine)) {
            c.watched_hits += h.hits.count_set_bits() as u64;
            c.watched_missing += h.missing;
        }
    }
    Ok(DryRun {
        period,
        firms,
        watched_firms,
        rules: counts,
    })
}
