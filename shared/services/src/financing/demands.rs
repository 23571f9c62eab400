//! The applicant's side: submit a demand after a scan, and follow its progress.

use chrono::{DateTime, Utc};
use puhui_domain::financing::ConsentRecord;
use puhui_domain::{
    ApplicantId, BankId, Bp, ClaimStage, DemandId, DemandStatus, Error, Fen, FinancingDemand,
    LoanCodeId, Submission, Uscc,
};
use puhui_ports::{Condition, Key, Query, TxOp};
use serde::Serialize;

use super::applicants::verified_phone;
use super::dispatch::DemandSubmitted;
use super::{FinancingPorts, LoanCodeService, demand_key, load_demand};
use crate::codec;
use crate::outbox::{Destination, Envelope};
use crate::paging::{Listing, PageRequest};

/// The applicant's use cases.
pub struct DemandService {
    ports: FinancingPorts,
    codes: LoanCodeService,
}

/// A bank's claim as the applicant sees it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApplicantClaim {
    /// The bank.
    pub bank_id: BankId,
    /// Its display name.
    pub bank_name: String,
    /// Where it is.
    pub stage: ClaimStage,
    /// Approved amount, once approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_amount: Option<Fen>,
    /// Approved rate, once approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annual_rate_bp: Option<Bp>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A demand as its applicant sees it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DemandView {
    /// Id.
    pub id: DemandId,
    /// The loan code scanned.
    pub loan_code: LoanCodeId,
    /// The firm.
    pub uscc: Uscc,
    /// The firm's name.
    pub firm_name: String,
    /// Amount wanted.
    pub amount: Fen,
    /// Term (months).
    pub term_months: u16,
    /// Purpose.
    pub purpose: String,
    /// Collateral available.
    pub collateral: bool,
    /// Where it is.
    pub status: DemandStatus,
    /// How many banks were offered it.
    pub offered_banks: usize,
    /// The banks' claims and their progress.
    pub claims: Vec<ApplicantClaim>,
    /// The verified phone banks will call, masked.
    pub phone: String,
    /// Consent text version recorded.
    pub consent_version: String,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
}

impl DemandService {
    /// The service over the shared ports.
    pub fn new(ports: FinancingPorts) -> Self {
        DemandService {
            codes: LoanCodeService::new(ports.clone()),
            ports,
        }
    }

    /// Records a demand and queues it for dispatch, in one transaction.
    pub async fn submit(
        &self,
        applicant: &ApplicantId,
        s: Submission,
    ) -> Result<FinancingDemand, Error> {
        let now = self.ports.clock.now();
        s.check(self.ports.config.amount_cap, now)?;
        let code = self.codes.get(&s.loan_code).await?.ok_or_else(|| {
            Error::field(
                "loan_code",
                "unknown_loan_code",
                format!("no loan code {}", s.loan_code),
            )
        })?;
        if !code.is_active(now) {
            return Err(Error::field(
                "loan_code",
                "loan_code_inactive",
                "this loan code has expired or is not valid yet",
            ));
        }
        let phone = verified_phone(&self.ports, applicant)
            .await?
            .ok_or_else(|| {
                Error::field(
                    "phone",
                    "phone_not_verified",
                    "verify the phone number through WeChat before applying",
                )
            })?;
        let demand = FinancingDemand {
            id: DemandId(self.ports.ids.ulid()),
            loan_code: code.id,
            issuing_bank: code.bank_id,
            code_product: code.product_id,
            applicant: applicant.clone(),
            phone,
            uscc: s.uscc,
            firm_name: s.firm_name.trim().to_owned(),
            amount: s.amount,
            term_months: s.term_months,
            purpose: s.purpose.trim().to_owned(),
            collateral: s.collateral,
            consent: ConsentRecord {
                text_version: s.consent.text_version,
                accepted_at: s.consent.accepted_at,
                recorded_at: now,
                applicant: applicant.clone(),
                applicant_role: s.applicant_role,
            },
            status: DemandStatus::Submitted,
            offered_banks: vec![],
            submitted_at: now,
        };
        let mut item = codec::to_item(demand_key(demand.id), &demand)?;
        item.attrs.insert("claims".into(), 0.into());
        item.gsi1 = Some(Key::new(
            format!("APPLICANT#{applicant}"),
            format!("DEMAND#{}", demand.id),
        ));
        let message = Envelope::json(
            Destination::DemandSubmitted,
            &DemandSubmitted {
                demand_id: demand.id,
            },
        )?;
        self.ports
            .outbox
            .commit(
                vec![TxOp::Put {
                    item,
                    condition: Some(Condition::NotExists),
                }],
                vec![message],
            )
            .await?;
        tracing::info!(demand_id = %demand.id, loan_code = %demand.loan_code, "demand submitted");
        Ok(demand)
    }

    /// The applicant's own demands, newest first.
    pub async fn list_own(
        &self,
        applicant: &ApplicantId,
        page: PageRequest,
    ) -> Result<Listing<DemandView>, Error> {
        let result = self
            .ports
            .table
            .query(Query {
                ascending: false,
                ..Query::partition(format!("APPLICANT#{applicant}"))
                    .on_gsi1()
                    .prefix("DEMAND#")
                    .limit(page.limit()?)
                    .after(page.cursor)
            })
            .await?;
        let mut items = Vec::with_capacity(result.items.len());
        for item in result.items {
            let d: FinancingDemand = codec::from_item(item)?;
            items.push(self.view(d).await?);
        }
        Ok(Listing {
            items,
            next_cursor: result.next,
        })
    }

    /// One of the applicant's demands; another applicant's is not found.
    pub async fn get_own(
        &self,
        applicant: &ApplicantId,
        id: DemandId,
    ) -> Result<DemandView, Error> {
        let (d, _) = load_demand(self.ports.table.as_ref(), id).await?;
        if &d.applicant != applicant {
            return Err(Error::NotFound(format!("demand {id}")));
        }
        self.view(d).await
    }

    /// The applicant's view of a demand they hold (with each bank's claim).
    pub async fn view(&self, d: FinancingDemand) -> Result<DemandView, Error> {
        let claims = self
            .ports
            .table
            .query(Query::partition(format!("DEMAND#{}", d.id)).prefix("CLAIM#"))
            .await?
            .items
            .into_iter()
            .map(codec::from_item::<puhui_domain::Claim>)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|c| ApplicantClaim {
                bank_name: self.ports.config.bank_name(&c.bank_id),
                bank_id: c.bank_id,
                stage: c.stage,
                approved_amount: c.approved_amount,
                annual_rate_bp: c.annual_rate_bp,
                updated_at: c.updated_at,
            })
            .collect();
        Ok(DemandView {
            id: d.id,
            loan_code: d.loan_code,
            uscc: d.uscc,
            firm_name: d.firm_name,
            amount: d.amount,
            term_months: d.term_months,
            purpose: d.purpose,
            collateral: d.collateral,
            status: d.status,
            offered_banks: d.offered_banks.len(),
            claims,
            phone: d.phone.masked(),
            consent_version: d.consent.text_version,
            submitted_at: d.submitted_at,
        })
    }
}
