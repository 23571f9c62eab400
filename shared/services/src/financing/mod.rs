//! The financing flow's use cases: loan codes, applicants' submissions, matching and offers,
//! bank claims (at most three per demand) and their progress, notifications and reminders.
//!
//! Storage (single table; every state change and the messages it causes are committed together
//! through the [`Outbox`](crate::outbox::Outbox)):
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! |---|---|---|---|
//! | loan code | `LOANCODE#<scene>` | `CODE` | `LOANCODES#<bank or PLATFORM>` / `<scene>` |
//! | applicant | `APPLICANT#<id>` | `PROFILE` | – |
//! | demand (+ `claims` counter) | `DEMAND#<id>` | `DEMAND` | `APPLICANT#<id>` / `DEMAND#<id>` |
//! | offer to a bank | `DEMAND#<id>` | `OFFER#<bank>` | `OFFERS#<bank>` / `<demand id>` |
//! | a bank's claim | `DEMAND#<id>` | `CLAIM#<bank>` | while unprogressed: `CLAIMS#UNPROGRESSED` / `<claimed_at>#<id>#<bank>` |
//! | notification sent | `NOTIFICATION#<hash of key>` | `DELIVERY` | – |
//! | firm indicators (written by ingest) | `FIRM#<uscc>` | `INDICATORS#LATEST` | – |

mod applicants;
mod delivery;
mod demands;
mod desk;
mod dispatch;
mod loan_codes;
pub mod notices;
mod reminders;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use puhui_domain::{
    ApplicantRole, BankId, ClaimStage, DemandId, Error, Fen, FinancingDemand, LoanCodeId, Uscc,
};
use puhui_engines::ProductMatch;
use puhui_ports::{Clock, IdGenerator, Key, Table};
use serde::{Deserialize, Serialize};

pub(crate) use applicants::verified_phone_in;
pub use applicants::{ApplicantLogin, ApplicantService};
pub use delivery::{Delivery, NotificationService};
pub use demands::{ApplicantClaim, DemandService, DemandView};
pub use desk::{ClaimOutcome, DeskDemand, DeskFilter, DeskService};
pub use dispatch::{DemandSubmitted, DispatchService};
pub use loan_codes::{LoanCodeIssuer, LoanCodeService, LoanCodeView};
pub use reminders::{ReminderReport, ReminderService};

use crate::outbox::Outbox;
use crate::products::ProductService;

/// Settings of the financing flow.
#[derive(Debug, Clone)]
pub struct FinancingConfig {
    /// Largest amount a demand may ask for.
    pub amount_cap: Fen,
    /// A claim without progress for this long gets a reminder to the bank.
    pub remind_after: Duration,
    /// A claim without progress for this long is released so another bank may take it.
    pub release_after: Duration,
    /// Display names of banks (for messages to firms); the id is used when a bank has none.
    pub bank_names: HashMap<BankId, String>,
    /// How long demand-dispatch reuses the catalogue it read (zero: read it for every demand).
    pub catalogue_ttl: Duration,
}

impl Default for FinancingConfig {
    /// ¥10 million cap; reminder after 1 day and release after 3 days without progress (the
    /// "1-3-5" rule: accept within 1 day, contact within 3, disburse within 5).
    fn default() -> Self {
        FinancingConfig {
            amount_cap: Fen::yuan(10_000_000),
            remind_after: Duration::from_secs(24 * 3600),
            release_after: Duration::from_secs(72 * 3600),
            bank_names: HashMap::new(),
            catalogue_ttl: Duration::from_secs(5),
        }
    }
}

impl FinancingConfig {
    /// Reads `PUHUI_DEMAND_AMOUNT_CAP_FEN`, `PUHUI_CLAIM_REMIND_AFTER_SECS`,
    /// `PUHUI_CLAIM_RELEASE_AFTER_SECS`, `PUHUI_CATALOGUE_CACHE_SECS` and `PUHUI_BANK_NAMES`
    /// (a JSON object of id → name), with the defaults for what is unset.
    pub fn from_env() -> Result<Self, String> {
        let mut c = FinancingConfig::default();
        let num = |k: &str| -> Result<Option<i64>, String> {
            match std::env::var(k) {
                Ok(v) if !v.is_empty() => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(Some)
                    .ok_or_else(|| format!("{k} must be a positive integer, got {v}")),
                _ => Ok(None),
            }
        };
        if let Some(n) = num("PUHUI_DEMAND_AMOUNT_CAP_FEN")? {
            c.amount_cap = Fen(n);
        }
        if let Some(n) = num("PUHUI_CLAIM_REMIND_AFTER_SECS")? {
            c.remind_after = Duration::from_secs(n as u64);
        }
        if let Some(n) = num("PUHUI_CLAIM_RELEASE_AFTER_SECS")? {
            c.release_after = Duration::from_secs(n as u64);
        }
        if let Ok(v) = std::env::var("PUHUI_CATALOGUE_CACHE_SECS")
            && !v.is_empty()
        {
            c.catalogue_ttl = Duration::from_secs(v.parse().map_err(|_| {
                format!("PUHUI_CATALOGUE_CACHE_SECS must be a number of seconds, got {v}")
            })?);
        }
        if c.release_after <= c.remind_after {
            return Err("PUHUI_CLAIM_RELEASE_AFTER_SECS must exceed the reminder time".into());
        }
        if let Ok(v) = std::env::var("PUHUI_BANK_NAMES")
            && !v.is_empty()
        {
            c.bank_names = serde_json::from_str(&v)
                .map_err(|e| format!("PUHUI_BANK_NAMES must be a JSON object of names: {e}"))?;
        }
        Ok(c)
    }

    /// The bank's display name.
    pub fn bank_name(&self, bank: &BankId) -> String {
        self.bank_names
            .get(bank)
            .cloned()
            .unwrap_or_else(|| bank.to_string())
    }
}

/// The ports and settings every financing use case shares.
#[derive(Clone)]
pub struct FinancingPorts {
    /// The document table.
    pub table: Arc<dyn Table>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Id source.
    pub ids: Arc<dyn IdGenerator>,
    /// Where messages are staged with state changes.
    pub outbox: Arc<Outbox>,
    /// The product catalogue (for matching and loan-code pages).
    pub products: Arc<ProductService>,
    /// Settings.
    pub config: Arc<FinancingConfig>,
}

impl FinancingPorts {
    /// The ports over a table and the queues this function sends to, with `config`.
    pub fn new(
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        queues: HashMap<crate::outbox::Destination, Arc<dyn puhui_ports::Queue>>,
        config: FinancingConfig,
    ) -> Self {
        FinancingPorts {
            outbox: Arc::new(Outbox::new(
                table.clone(),
                clock.clone(),
                ids.clone(),
                queues,
            )),
            products: Arc::new(ProductService::new(
                table.clone(),
                clock.clone(),
                ids.clone(),
            )),
            table,
            clock,
            ids,
            config: Arc::new(config),
        }
    }
}

/// Time as stored in sort keys: fixed width, so text order is time order.
pub(crate) fn sortable(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn demand_key(id: DemandId) -> Key {
    Key::new(format!("DEMAND#{id}"), "DEMAND")
}

pub(crate) fn offer_key(id: DemandId, bank: &BankId) -> Key {
    Key::new(format!("DEMAND#{id}"), format!("OFFER#{bank}"))
}

pub(crate) fn claim_key(id: DemandId, bank: &BankId) -> Key {
    Key::new(format!("DEMAND#{id}"), format!("CLAIM#{bank}"))
}

pub(crate) fn loan_code_key(id: &LoanCodeId) -> Key {
    Key::new(format!("LOANCODE#{id}"), "CODE")
}

/// Index partition of claims nobody has progressed yet (scanned by the reminder schedule).
pub(crate) const UNPROGRESSED: &str = "CLAIMS#UNPROGRESSED";

pub(crate) fn unprogressed_key(claimed_at: DateTime<Utc>, id: DemandId, bank: &BankId) -> Key {
    Key::new(
        UNPROGRESSED,
        format!("{}#{id}#{bank}", sortable(claimed_at)),
    )
}

/// A demand as offered to one bank: what the bank may see before it claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OfferRecord {
    /// The demand.
    pub demand_id: DemandId,
    /// The bank offered it.
    pub bank_id: BankId,
    /// 1 for the first bank offered.
    pub rank: u32,
    /// True if this bank issued the loan code scanned.
    pub issuing_bank: bool,
    /// This bank's products that match, best first, with the reasons.
    pub products: Vec<ProductMatch>,
    /// The firm's name (public business information).
    pub firm_name: String,
    /// The firm's USCC (public business information).
    pub uscc: Uscc,
    /// Amount wanted.
    pub amount: Fen,
    /// Term wanted (months).
    pub term_months: u16,
    /// Purpose.
    pub purpose: String,
    /// Collateral available.
    pub collateral: bool,
    /// The applicant's capacity.
    pub applicant_role: ApplicantRole,
    /// When the demand was submitted.
    pub submitted_at: DateTime<Utc>,
    /// This bank's claim stage, once it claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_stage: Option<ClaimStage>,
}

pub(crate) async fn load_demand(
    table: &dyn Table,
    id: DemandId,
) -> Result<(FinancingDemand, u64), Error> {
    match table.get(&demand_key(id)).await? {
        Some(item) => {
            let version = item.version;
            Ok((crate::codec::from_item(item)?, version))
        }
        None => Err(Error::NotFound(format!("demand {id}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_times_order_as_text() {
        let a: DateTime<Utc> = "2026-11-23T01:00:00Z".parse().unwrap_or_default();
        let b = a + chrono::Duration::microseconds(1);
        let c = a + chrono::Duration::days(400);
        assert!(sortable(a) < sortable(b) && sortable(b) < sortable(c));
        assert_eq!(sortable(a).len(), sortable(c).len());
    }
}
