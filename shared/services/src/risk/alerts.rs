//! The risk desk's alerts: list with filters, work one (acknowledge, verify, close), per-rule
//! statistics for tuning thresholds, and the bank's alert settings. A bank reads and changes
//! only its own: every key starts with the caller's bank.

use puhui_domain::risk::{
    AlertAction, AlertChange, AlertId, AlertStatus, Period, RiskAlert, RiskSettings, RuleStats,
    Verdict,
};
use puhui_domain::rules::Severity;
use puhui_domain::{Error, Principal, Role, Uscc};
use puhui_ports::{Condition, PortError, Query, TxOp, Update};
use serde::Deserialize;
use serde_json::{Map, json};

use super::{
    RiskPorts, alert_index_key, alert_key, load_settings, risk_bank, settings_key, stats_key,
};
use crate::codec;
use crate::paging::{Listing, PageRequest, all_pages};

/// Filters for listing alerts (all optional, combined with AND).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertFilter {
    /// `open`, `acknowledged`, `verified` or `closed`.
    pub status: Option<AlertStatus>,
    /// `info`, `warning` or `critical`.
    pub severity: Option<Severity>,
    /// One rule.
    pub rule_id: Option<String>,
    /// One period, `YYYY-MM`.
    #[param(value_type = Option<String>)]
    pub period: Option<Period>,
    /// One firm.
    #[param(value_type = Option<String>)]
    pub uscc: Option<Uscc>,
    /// Page size (1–100, default 20).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// Most items read to fill one filtered page (the rest is reached with the cursor).
const SCAN_CAP: usize = 2000;

/// Alert use cases.
#[derive(Clone)]
pub struct AlertService {
    ports: RiskPorts,
}

impl AlertService {
    /// The service over the risk ports.
    pub fn new(ports: RiskPorts) -> Self {
        AlertService { ports }
    }

    /// The caller's alerts, newest period first, filtered.
    pub async fn list(&self, who: &Principal, f: AlertFilter) -> Result<Listing<RiskAlert>, Error> {
        let bank = risk_bank(who)?;
        let limit = PageRequest {
            limit: f.limit,
            cursor: None,
        }
        .limit()?;
        let base = match (&f.uscc, f.period) {
            // One firm: its own partition (sort key `<rule>#<period>`).
            (Some(u), _) => Query::partition(format!("ALERT#{bank}#{u}")),
            (None, Some(p)) => Query::partition(format!("ALERTS#{bank}"))
                .on_gsi1()
                .prefix(format!("{p}#")),
            (None, None) => Query::partition(format!("ALERTS#{bank}")).on_gsi1(),
        };
        let keep = |a: &RiskAlert| {
            f.status.is_none_or(|s| a.status == s)
                && f.severity.is_none_or(|s| a.severity == s)
                && f.rule_id.as_ref().is_none_or(|r| &a.rule_id == r)
                && f.period.is_none_or(|p| a.period == p)
        };
        let mut items = Vec::new();
        let mut cursor = f.cursor.clone();
        let mut read = 0;
        // Filters apply after the read, so read on until the page is full.
        loop {
            let page = self
                .ports
                .table
                .query(Query {
                    ascending: false,
                    ..base.clone().limit(limit - items.len() as u32).after(cursor)
                })
                .await?;
            read += page.items.len();
            for item in page.items {
                let a: RiskAlert = codec::from_item(item)?;
                if keep(&a) {
                    items.push(a);
                }
            }
            cursor = page.next;
            if cursor.is_none() || items.len() as u32 >= limit || read >= SCAN_CAP {
                break;
            }
        }
        Ok(Listing {
            items,
            next_cursor: cursor,
        })
    }

    /// One of the caller's alerts.
    pub async fn get(&self, who: &Principal, id: &AlertId) -> Result<RiskAlert, Error> {
        let bank = risk_bank(who)?;
        match self.ports.table.get(&alert_key(bank, id)).await? {
            Some(item) => codec::from_item(item),
            None => Err(Error::NotFound(format!("alert {id}"))),
        }
    }

    /// Acknowledges, verifies or closes an alert (409 for a move its status does not allow).
    pub async fn act(
        &self,
        who: &Principal,
        id: &AlertId,
        action: AlertAction,
    ) -> Result<RiskAlert, Error> {
        action.check()?;
        let current = self.get(who, id).await?;
        let bank = &current.bank_id;
        let status = action.apply(current.status)?;
        let now = self.ports.clock.now();
        let mut next = current.clone();
        next.status = status;
        next.version = current.version + 1;
        next.history.push(AlertChange {
            status,
            at: now,
            by: who.subject.clone(),
            note: action.note().map(str::to_owned),
        });
        let counter = match &action {
            AlertAction::Acknowledge { .. } => "acknowledged",
            AlertAction::Verify { verdict, .. } => {
                next.verdict = Some(*verdict);
                match verdict {
                    Verdict::ConfirmedRisk => "confirmed",
                    Verdict::FalseAlarm => "false_alarm",
                }
            }
            AlertAction::Close { .. } => "closed",
        };
        let mut item = codec::to_item(alert_key(bank, id), &next)?;
        item.gsi1 = Some(alert_index_key(bank, id));
        let ops = vec![
            TxOp::Put {
                item,
                condition: Some(Condition::VersionEquals(current.version)),
            },
            TxOp::Update {
                key: stats_key(bank, &id.rule_id),
                update: Update {
                    set: Map::from_iter([("rule_id".to_owned(), json!(id.rule_id))]),
                    add: vec![(counter.into(), 1)],
                    ..Update::default()
                },
                condition: None,
            },
        ];
        match self.ports.table.transact(ops).await {
            Ok(()) => Ok(next),
            Err(PortError::TransactionCancelled { .. }) => Err(Error::Conflict(format!(
                "alert {id} changed meanwhile; read it again"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Per-rule counts with the false-alarm rate, by rule id.
    pub async fn stats(&self, who: &Principal) -> Result<Vec<RuleStats>, Error> {
        let bank = risk_bank(who)?;
        all_pages(
            self.ports.table.as_ref(),
            Query::partition(format!("RISKSTATS#{bank}")).limit(1000),
        )
        .await?
        .into_iter()
        .map(|i| codec::from_item::<RuleStats>(i).map(RuleStats::with_rate))
        .collect()
    }

    /// The caller's alert settings (defaults until saved).
    pub async fn settings(&self, who: &Principal) -> Result<RiskSettings, Error> {
        load_settings(self.ports.table.as_ref(), risk_bank(who)?).await
    }

    /// Replaces the caller's alert settings (`risk_admin`).
    pub async fn save_settings(
        &self,
        who: &Principal,
        settings: RiskSettings,
    ) -> Result<RiskSettings, Error> {
        let bank = who.bank_with_role(Role::RiskAdmin)?;
        settings.check()?;
        self.ports
            .table
            .put(codec::to_item(settings_key(bank), &settings)?, None)
            .await?;
        Ok(settings)
    }
}
