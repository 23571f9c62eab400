//! demand-dispatch: match a submitted demand to the catalogue, record the offers, and queue the
//! notifications — all in one transaction that only a `submitted` demand can pass, so a
//! redelivered message changes nothing.

use std::sync::Arc;

use puhui_domain::{DemandId, DemandStatus, DivisionCode, Error, FinancingDemand, Product};
use puhui_engines::{BankOffer, MatchRequest, match_demand};
use puhui_ports::{Condition, Key, PortError, TxOp, Update};
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};

use super::{FinancingPorts, OfferRecord, demand_key, load_demand, notices, offer_key};
use crate::codec;
use crate::outbox::{Destination, Envelope};

/// The message that asks for a demand to be dispatched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemandSubmitted {
    /// The demand.
    pub demand_id: DemandId,
}

/// The dispatch use case.
pub struct DispatchService {
    ports: FinancingPorts,
    /// The catalogue as last read, kept for `config.catalogue_ttl` (a warm function serves
    /// many demands; the catalogue changes a few times a day).
    catalogue: std::sync::Mutex<Option<(std::time::Instant, Arc<Vec<Product>>)>>,
}

impl DispatchService {
    /// The service over the shared ports.
    pub fn new(ports: FinancingPorts) -> Self {
        DispatchService {
            ports,
            catalogue: std::sync::Mutex::new(None),
        }
    }

    /// Listed products, from the cache while it is fresh.
    async fn listed(&self) -> Result<Arc<Vec<Product>>, Error> {
        let ttl = self.ports.config.catalogue_ttl;
        if let Some((at, products)) = &*self.catalogue.lock().unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < ttl
        {
            return Ok(products.clone());
        }
        let products = Arc::new(self.ports.products.listed().await?);
        *self.catalogue.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), products.clone()));
        Ok(products)
    }

    /// Dispatches one demand; a demand already dispatched is left as it is. Returns the offers
    /// made now (empty when there was nothing to do).
    pub async fn dispatch(&self, id: DemandId) -> Result<Vec<BankOffer>, Error> {
        let (demand, version) = load_demand(self.ports.table.as_ref(), id).await?;
        if demand.status != DemandStatus::Submitted {
            tracing::info!(demand_id = %id, "demand already dispatched");
            return Ok(vec![]);
        }
        let profile = crate::profiles::indicators(self.ports.table.as_ref(), &demand.uscc).await?;
        let (industry, indicators) = match profile {
            Some(p) => (p.industry, Some(p.values)),
            None => (None, None),
        };
        let now = self.ports.clock.now();
        let request = MatchRequest {
            region: DivisionCode::parse(demand.uscc.division()).ok(),
            industry,
            amount: demand.amount,
            term_months: demand.term_months,
            collateral: demand.collateral,
            issuing_bank: demand.issuing_bank.clone(),
            code_product: demand.code_product,
            indicators,
            today: puhui_domain::time::business_date(now),
        };
        let products = self.listed().await?;
        // The validity window is checked again: a cached product may have expired since.
        let current: Vec<Product> = products
            .iter()
            .filter(|p| p.in_catalogue(request.today))
            .cloned()
            .collect();
        let offers = match_demand(&request, &current);
        let (ops, messages) = self.plan(&demand, version, &offers, now)?;
        match self.ports.outbox.commit(ops, messages).await {
            Ok(()) => {}
            // Another delivery of the same message got there first: its result stands.
            Err(PortError::TransactionCancelled { .. } | PortError::ConditionFailed(_)) => {
                tracing::info!(demand_id = %id, "demand dispatched concurrently");
                return Ok(vec![]);
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(demand_id = %id, banks = offers.len(), "demand dispatched");
        Ok(offers)
    }

    fn plan(
        &self,
        d: &FinancingDemand,
        version: u64,
        offers: &[BankOffer],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(Vec<TxOp>, Vec<Envelope>), Error> {
        let status = if offers.is_empty() {
            DemandStatus::Unmatched
        } else {
            DemandStatus::Offered
        };
        let banks: Vec<_> = offers.iter().map(|o| o.bank_id.clone()).collect();
        let mut set = Map::new();
        set.insert("status".into(), json!(status));
        set.insert("offered_banks".into(), json!(banks));
        set.insert("dispatched_at".into(), json!(now));
        let mut ops = vec![TxOp::Update {
            key: demand_key(d.id),
            update: Update {
                set,
                ..Update::default()
            },
            condition: Some(Condition::VersionEquals(version)),
        }];
        let mut messages = vec![Envelope::json(
            Destination::Notifications,
            &notices::demand_received(d, offers.len()),
        )?];
        for o in offers {
            let record = OfferRecord {
                demand_id: d.id,
                bank_id: o.bank_id.clone(),
                rank: o.rank,
                issuing_bank: o.issuing_bank,
                products: o.products.clone(),
                firm_name: d.firm_name.clone(),
                uscc: d.uscc.clone(),
                amount: d.amount,
                term_months: d.term_months,
                purpose: d.purpose.clone(),
                collateral: d.collateral,
                applicant_role: d.consent.applicant_role,
                submitted_at: d.submitted_at,
                claim_stage: None,
            };
            let mut item = codec::to_item(offer_key(d.id, &o.bank_id), &record)?;
            item.gsi1 = Some(Key::new(format!("OFFERS#{}", o.bank_id), d.id.to_string()));
            ops.push(TxOp::Put {
                item,
                condition: Some(Condition::NotExists),
            });
            messages.push(Envelope::json(
                Destination::Notifications,
                &notices::offered(d, o),
            )?);
        }
        Ok((ops, messages))
    }
}
