//! reminders (schedule): a claim with no progress within the reminder time gets one reminder to
//! its bank; still none at the release time, it is released so another bank may take the demand.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use puhui_domain::financing::ReleaseReason;
use puhui_domain::{Claim, Error};
use puhui_ports::{Condition, KeyRange, PortError, Query, TxOp};

use super::desk::release_plan;
use super::{FinancingPorts, UNPROGRESSED, claim_key, load_demand, notices, sortable};
use crate::codec;
use crate::outbox::{Destination, Envelope};

/// Most claims one run looks at (the next run continues).
const PER_RUN: usize = 5000;

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReminderReport {
    /// Reminders queued.
    pub reminded: usize,
    /// Claims released.
    pub released: usize,
    /// Claims that changed while we looked (left for the next run).
    pub skipped: usize,
}

/// The reminder use case.
pub struct ReminderService {
    ports: FinancingPorts,
}

impl ReminderService {
    /// The service over the shared ports.
    pub fn new(ports: FinancingPorts) -> Self {
        ReminderService { ports }
    }

    /// One run: reminds and releases what is due now.
    pub async fn run(&self) -> Result<ReminderReport, Error> {
        let now = self.ports.clock.now();
        let remind_before = before(now, self.ports.config.remind_after);
        let release_before = before(now, self.ports.config.release_after);
        // Sort keys start with the claim time: everything up to the cutoff is due. Reminded
        // claims stay in the index until released, so read past them page by page.
        let mut due = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .ports
                .table
                .query(Query {
                    range: KeyRange::Between(
                        String::new(),
                        format!("{}~", sortable(remind_before)),
                    ),
                    ..Query::partition(UNPROGRESSED)
                        .on_gsi1()
                        .limit(1000)
                        .after(cursor)
                })
                .await?;
            due.extend(page.items);
            cursor = page.next;
            if cursor.is_none() || due.len() >= PER_RUN {
                break;
            }
        }
        let mut report = ReminderReport::default();
        for item in due {
            let claim: Claim = match self.ports.table.get(&item.key).await? {
                Some(current) => codec::from_item(current)?,
                None => continue,
            };
            if claim.stage != puhui_domain::ClaimStage::Claimed {
                continue;
            }
            let (demand, _) = load_demand(self.ports.table.as_ref(), claim.demand_id).await?;
            let result = if claim.claimed_at <= release_before {
                let (ops, messages, _) = release_plan(
                    &self.ports,
                    &demand,
                    claim,
                    ReleaseReason::NoProgress,
                    "platform",
                )?;
                self.ports.outbox.commit(ops, messages).await.map(|()| {
                    report.released += 1;
                })
            } else if claim.reminded_at.is_none() {
                let mut next = claim.clone();
                next.reminded_at = Some(now);
                next.version += 1;
                let mut stored = codec::to_item(claim_key(claim.demand_id, &claim.bank_id), &next)?;
                stored.gsi1 = item.gsi1.clone(); // still unprogressed: stays in the index
                let ops = vec![TxOp::Put {
                    item: stored,
                    condition: Some(Condition::VersionEquals(claim.version)),
                }];
                let messages = vec![Envelope::json(
                    Destination::Notifications,
                    &notices::reminder(&demand, &claim, &self.ports.config),
                )?];
                self.ports.outbox.commit(ops, messages).await.map(|()| {
                    report.reminded += 1;
                })
            } else {
                Ok(())
            };
            match result {
                Ok(()) => {}
                // The bank moved the claim meanwhile: nothing to do.
                Err(PortError::TransactionCancelled { .. }) => report.skipped += 1,
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(
            reminded = report.reminded,
            released = report.released,
            "reminder run"
        );
        Ok(report)
    }
}

/// `now` minus `d`, saturating at the earliest representable time.
fn before(now: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    ChronoDuration::from_std(d)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
