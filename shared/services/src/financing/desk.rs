//! bank-desk: loan officers see the demands offered to their bank, claim them (at most three
//! banks per demand, enforced by one conditional transaction), report progress and release.
//!
//! A bank sees only its own offers and claims: every read is keyed by the caller's bank, so
//! another bank's claim or a demand not offered to it is simply not found.

use std::time::Duration;

use chrono::{DateTime, Utc};
use puhui_domain::financing::{MAX_CLAIMS, ReleaseReason, StageChange};
use puhui_domain::{
    Authorization, AuthorizationId, BankId, Claim, ClaimStage, DemandId, Error, FinancingDemand,
    Principal, ProgressUpdate, Role,
};
use puhui_ports::{Condition, PortError, Query, TxOp, Update};
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};

use super::{
    FinancingPorts, OfferRecord, claim_key, demand_key, load_demand, notices, offer_key,
    unprogressed_key,
};
use crate::codec;
use crate::outbox::{Destination, Envelope};
use crate::paging::{Listing, PageRequest};

/// The loan officers' use cases.
pub struct DeskService {
    ports: FinancingPorts,
}

/// Filters of the offered-demands list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeskFilter {
    /// `open` (not claimed by us), `claimed` (any stage of ours), or one claim stage.
    pub state: Option<String>,
    /// Smallest amount (fen).
    pub min_amount: Option<i64>,
    /// Largest amount (fen).
    pub max_amount: Option<i64>,
    /// Page size.
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// A demand as an offered bank sees it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeskDemand {
    /// The offer: demand facts, matching products and reasons, our claim stage.
    #[serde(flatten)]
    pub offer: OfferRecord,
    /// Claim slots still free (of three).
    pub slots_left: i64,
    /// The applicant's phone: in full once we hold a claim (to contact the firm), masked before.
    pub phone: String,
    /// Our claim, if we made one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
}

/// The result of a claim request.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimOutcome {
    /// The claim.
    pub claim: Claim,
    /// False if the bank already held it (the request changed nothing).
    pub created: bool,
}

const STATES: [&str; 9] = [
    "open",
    "claimed",
    "contacted",
    "under_review",
    "approved",
    "declined",
    "disbursed",
    "released",
    "any",
];

/// Attempts on a transaction conflict (concurrent claims on one demand in DynamoDB).
const CLAIM_ATTEMPTS: u32 = 8;

fn who_bank(who: &Principal) -> Result<&BankId, Error> {
    who.bank_with_role(Role::LoanOfficer)
}

impl DeskService {
    /// The service over the shared ports.
    pub fn new(ports: FinancingPorts) -> Self {
        DeskService { ports }
    }

    /// Demands offered to the caller's bank, newest first, filtered.
    pub async fn list(
        &self,
        who: &Principal,
        f: DeskFilter,
    ) -> Result<Listing<OfferRecord>, Error> {
        let bank = who_bank(who)?;
        let state = f.state.as_deref().unwrap_or("any");
        if !STATES.contains(&state) {
            return Err(Error::field(
                "state",
                "unknown_state",
                format!("one of {}", STATES.join(", ")),
            ));
        }
        let page = PageRequest {
            limit: f.limit,
            cursor: f.cursor.clone(),
        };
        let limit = page.limit()?;
        let keep = |o: &OfferRecord| {
            let state_ok = match (state, o.claim_stage) {
                ("any", _) => true,
                ("open", s) => s.is_none(),
                ("claimed", s) => s.is_some(),
                (name, Some(s)) => s.name() == name,
                (_, None) => false,
            };
            state_ok
                && f.min_amount.is_none_or(|m| o.amount.0 >= m)
                && f.max_amount.is_none_or(|m| o.amount.0 <= m)
        };
        let mut items = Vec::new();
        let mut cursor = page.cursor;
        // Filters apply after the read, so read on until the page is full.
        loop {
            let result = self
                .ports
                .table
                .query(Query {
                    ascending: false,
                    ..Query::partition(format!("OFFERS#{bank}"))
                        .on_gsi1()
                        .limit(limit - items.len() as u32)
                        .after(cursor)
                })
                .await?;
            for item in result.items {
                let o: OfferRecord = codec::from_item(item)?;
                if keep(&o) {
                    items.push(o);
                }
            }
            cursor = result.next;
            if cursor.is_none() || items.len() as u32 >= limit {
                break;
            }
        }
        Ok(Listing {
            items,
            next_cursor: cursor,
        })
    }

    async fn offer(&self, bank: &BankId, id: DemandId) -> Result<OfferRecord, Error> {
        match self.ports.table.get(&offer_key(id, bank)).await? {
            Some(item) => codec::from_item(item),
            None => Err(Error::NotFound(format!("demand {id}"))),
        }
    }

    async fn claim_of(&self, bank: &BankId, id: DemandId) -> Result<Option<Claim>, Error> {
        match self.ports.table.get(&claim_key(id, bank)).await? {
            Some(item) => Ok(Some(codec::from_item(item)?)),
            None => Ok(None),
        }
    }

    /// One offered demand with our claim and the free slots.
    pub async fn get(&self, who: &Principal, id: DemandId) -> Result<DeskDemand, Error> {
        let bank = who_bank(who)?;
        let offer = self.offer(bank, id).await?;
        let claim = self.claim_of(bank, id).await?;
        let item = self
            .ports
            .table
            .get(&demand_key(id))
            .await?
            .ok_or_else(|| Error::NotFound(format!("demand {id}")))?;
        let taken = item
            .attrs
            .get("claims")
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        let demand: FinancingDemand = codec::from_item(item)?;
        let holds = claim.as_ref().is_some_and(|c| c.stage.holds_slot());
        Ok(DeskDemand {
            offer,
            slots_left: (MAX_CLAIMS - taken).max(0),
            phone: if holds {
                demand.phone.expose().to_owned()
            } else {
                demand.phone.masked()
            },
            claim,
        })
    }

    /// Claims an offered demand for the caller's bank. At most three banks hold a claim at a
    /// time; a bank claiming again gets its existing claim; a released claim cannot be retaken.
    pub async fn claim(&self, who: &Principal, id: DemandId) -> Result<ClaimOutcome, Error> {
        let bank = who_bank(who)?;
        self.offer(bank, id).await?;
        if let Some(existing) = self.claim_of(bank, id).await? {
            return existing_claim(existing);
        }
        let (demand, _) = load_demand(self.ports.table.as_ref(), id).await?;
        for attempt in 0..CLAIM_ATTEMPTS {
            let now = self.ports.clock.now();
            let claim = Claim {
                demand_id: id,
                bank_id: bank.clone(),
                stage: ClaimStage::Claimed,
                approved_amount: None,
                annual_rate_bp: None,
                released: None,
                claimed_at: now,
                updated_at: now,
                reminded_at: None,
                history: vec![StageChange {
                    stage: ClaimStage::Claimed,
                    at: now,
                    by: who.subject.clone(),
                    note: None,
                }],
                version: 1,
            };
            let mut item = codec::to_item(claim_key(id, bank), &claim)?;
            item.gsi1 = Some(unprogressed_key(now, id, bank));
            let ops = vec![
                TxOp::Update {
                    key: demand_key(id),
                    update: Update {
                        add: vec![("claims".into(), 1)],
                        ..Update::default()
                    },
                    condition: Some(Condition::Below {
                        attr: "claims".into(),
                        bound: MAX_CLAIMS,
                    }),
                },
                TxOp::Put {
                    item,
                    condition: Some(Condition::NotExists),
                },
                set_offer_stage(id, bank, ClaimStage::Claimed),
                // The firm's consent on submitting becomes this bank's authorization.
                crate::authorizations::grant_op(&Authorization::for_claim(
                    AuthorizationId(self.ports.ids.ulid()),
                    &demand,
                    bank,
                    now,
                ))?,
            ];
            let messages = vec![Envelope::json(
                Destination::Notifications,
                &notices::claimed(&demand, bank, &self.ports.config),
            )?];
            match self.ports.outbox.commit(ops, messages).await {
                Ok(()) => {
                    tracing::info!(demand_id = %id, "demand claimed");
                    return Ok(ClaimOutcome {
                        claim,
                        created: true,
                    });
                }
                Err(PortError::TransactionCancelled { reasons }) => {
                    if reasons.get(1).is_some_and(Option::is_some) {
                        // Our own concurrent request won: same answer as a repeat.
                        let existing = self.claim_of(bank, id).await?.ok_or_else(|| {
                            Error::Internal("claim vanished after a conflict".into())
                        })?;
                        return existing_claim(existing);
                    }
                    if reasons.first().is_some_and(Option::is_some) {
                        return Err(Error::Conflict(format!(
                            "demand {id} already has {MAX_CLAIMS} banks working on it"
                        )));
                    }
                    return Err(Error::Internal(format!("claim cancelled: {reasons:?}")));
                }
                // DynamoDB cancels concurrent transactions on one item: wait a little, retry.
                Err(PortError::Unavailable(m)) if attempt + 1 < CLAIM_ATTEMPTS => {
                    tracing::debug!(attempt, error = %m, "claim conflicted; retrying");
                    tokio::time::sleep(backoff(attempt, bank)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Unavailable(
            "too many concurrent claims; retry".into(),
        ))
    }

    /// Moves our claim to the next stage.
    pub async fn progress(
        &self,
        who: &Principal,
        id: DemandId,
        update: ProgressUpdate,
    ) -> Result<Claim, Error> {
        let bank = who_bank(who)?;
        update.check()?;
        let current = self
            .claim_of(bank, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("claim on demand {id}")))?;
        let (demand, _) = load_demand(self.ports.table.as_ref(), id).await?;
        let stage = current.stage.transition(update.stage)?;
        let now = self.ports.clock.now();
        let mut next = current.clone();
        next.stage = stage;
        next.updated_at = now;
        next.version = current.version + 1;
        if stage == ClaimStage::Approved {
            next.approved_amount = update.approved_amount;
            next.annual_rate_bp = update.annual_rate_bp;
        }
        next.history.push(StageChange {
            stage,
            at: now,
            by: who.subject.clone(),
            note: update.note,
        });
        // Progress made: out of the reminder index.
        let item = codec::to_item(claim_key(id, bank), &next)?;
        let mut ops = vec![
            TxOp::Put {
                item,
                condition: Some(Condition::VersionEquals(current.version)),
            },
            set_offer_stage(id, bank, stage),
        ];
        if stage == ClaimStage::Approved {
            // An approved borrower is watched from now on (risk scans, issue 5).
            ops.push(crate::risk::watch_op(
                bank,
                &demand.uscc,
                puhui_domain::risk::WatchSource::Financing,
                &who.subject,
                now,
            )?);
        }
        let messages = vec![Envelope::json(
            Destination::Notifications,
            &notices::progress(&demand, &next, &self.ports.config),
        )?];
        self.commit_change(ops, messages, id).await?;
        tracing::info!(demand_id = %id, stage = stage.name(), "claim progressed");
        Ok(next)
    }

    /// Gives our claim back, freeing its slot for another bank.
    pub async fn release(&self, who: &Principal, id: DemandId) -> Result<Claim, Error> {
        let bank = who_bank(who)?;
        let current = self
            .claim_of(bank, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("claim on demand {id}")))?;
        let (demand, _) = load_demand(self.ports.table.as_ref(), id).await?;
        let (ops, messages, next) = release_plan(
            &self.ports,
            &demand,
            current,
            ReleaseReason::ByBank,
            &who.subject,
        )?;
        self.commit_change(ops, messages, id).await?;
        tracing::info!(demand_id = %id, "claim released by bank");
        Ok(next)
    }

    async fn commit_change(
        &self,
        ops: Vec<TxOp>,
        messages: Vec<Envelope>,
        id: DemandId,
    ) -> Result<(), Error> {
        match self.ports.outbox.commit(ops, messages).await {
            Ok(()) => Ok(()),
            Err(PortError::TransactionCancelled { .. }) => Err(Error::Conflict(format!(
                "the claim on demand {id} changed meanwhile; read it again"
            ))),
            Err(e) => Err(e.into()),
        }
    }
}

fn existing_claim(existing: Claim) -> Result<ClaimOutcome, Error> {
    if existing.stage == ClaimStage::Released {
        return Err(Error::Conflict(
            "this bank released its claim on the demand and cannot claim it again".into(),
        ));
    }
    Ok(ClaimOutcome {
        claim: existing,
        created: false,
    })
}

fn set_offer_stage(id: DemandId, bank: &BankId, stage: ClaimStage) -> TxOp {
    let mut set = Map::new();
    set.insert("claim_stage".into(), json!(stage));
    TxOp::Update {
        key: offer_key(id, bank),
        update: Update {
            set,
            ..Update::default()
        },
        condition: Some(Condition::Exists),
    }
}

/// The writes and messages that release a claim (by the bank, or for lack of progress).
pub(super) fn release_plan(
    ports: &FinancingPorts,
    demand: &FinancingDemand,
    current: Claim,
    reason: ReleaseReason,
    by: &str,
) -> Result<(Vec<TxOp>, Vec<Envelope>, Claim), Error> {
    let stage = current.stage.transition(ClaimStage::Released)?;
    let now: DateTime<Utc> = ports.clock.now();
    let mut next = current.clone();
    next.stage = stage;
    next.released = Some(reason);
    next.updated_at = now;
    next.version = current.version + 1;
    next.history.push(StageChange {
        stage,
        at: now,
        by: by.to_owned(),
        note: None,
    });
    let id = current.demand_id;
    let bank = &current.bank_id;
    let ops = vec![
        TxOp::Put {
            item: codec::to_item(claim_key(id, bank), &next)?,
            condition: Some(Condition::VersionEquals(current.version)),
        },
        TxOp::Update {
            key: demand_key(id),
            update: Update {
                add: vec![("claims".into(), -1)],
                ..Update::default()
            },
            condition: Some(Condition::Exists),
        },
        set_offer_stage(id, bank, stage),
    ];
    let mut messages = vec![Envelope::json(
        Destination::Notifications,
        &notices::released(demand, bank, &ports.config),
    )?];
    if reason == ReleaseReason::NoProgress {
        messages.push(Envelope::json(
            Destination::Notifications,
            &notices::auto_released(demand, bank),
        )?);
    }
    Ok((ops, messages, next))
}

/// A short, bank-dependent pause so concurrent claimers do not retry in lockstep.
fn backoff(attempt: u32, bank: &BankId) -> Duration {
    let spread = bank.as_str().bytes().map(u64::from).sum::<u64>() % 17;
    Duration::from_millis(5 * u64::from(attempt + 1) + spread)
}
