//! Loan codes: created by platform and bank admins, resolved by anyone who scans one.

use chrono::{DateTime, Utc};
use puhui_domain::financing::LoanCodeDraft;
use puhui_domain::{BankId, Error, LoanCode, LoanCodeId, Principal, Role};
use puhui_ports::{Condition, Key, PortError, Query};
use serde::Serialize;

use super::{FinancingPorts, loan_code_key};
use crate::codec;
use crate::paging::{Listing, PageRequest};
use crate::products::{CatalogueEntry, CatalogueFilter};

/// Most products a loan-code page shows.
const PAGE_PRODUCTS: u32 = 20;

/// Loan-code use cases.
pub struct LoanCodeService {
    ports: FinancingPorts,
}

/// Who issued a code, as the scanning applicant sees it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LoanCodeIssuer {
    /// `platform` or `bank`.
    pub kind: &'static str,
    /// The bank, for a bank's code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_id: Option<BankId>,
    /// The bank's display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_name: Option<String>,
    /// The branch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

/// What the mini-program shows after a scan.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LoanCodeView {
    /// The scene.
    pub id: LoanCodeId,
    /// Who issued it.
    pub issuer: LoanCodeIssuer,
    /// Campaign, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// True if a submission may use it now.
    pub active: bool,
    /// Last moment it may be used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<DateTime<Utc>>,
    /// Products to show: the advertised one, else the issuing bank's listed products, else
    /// (platform codes) none — the whole catalogue is one tap away.
    pub products: Vec<CatalogueEntry>,
}

fn issuer_partition(bank: Option<&BankId>) -> String {
    match bank {
        Some(b) => format!("LOANCODES#{b}"),
        None => "LOANCODES#PLATFORM".into(),
    }
}

impl LoanCodeService {
    /// The service over the shared ports.
    pub fn new(ports: FinancingPorts) -> Self {
        LoanCodeService { ports }
    }

    /// Creates a loan code. Bank product admins issue codes for their own bank; platform
    /// admins for any bank or the platform.
    pub async fn create(&self, who: &Principal, draft: LoanCodeDraft) -> Result<LoanCode, Error> {
        let bank = if who.has(Role::PlatformAdmin) {
            draft.bank_id.clone()
        } else {
            let own = who.bank_with_role(Role::ProductAdmin)?;
            match &draft.bank_id {
                Some(b) if b != own => {
                    return Err(Error::Forbidden(
                        "a bank may only issue loan codes for itself".into(),
                    ));
                }
                _ => Some(own.clone()),
            }
        };
        let now = self.ports.clock.now();
        // Default the start before checking, so an end already in the past is refused.
        let draft = LoanCodeDraft {
            bank_id: bank.clone(),
            valid_from: Some(draft.valid_from.unwrap_or(now)),
            ..draft
        };
        draft.check()?;
        if let (Some(bank), Some(product)) = (&bank, draft.product_id) {
            let key = crate::products::product_key(bank, &product);
            if self.ports.table.get(&key).await?.is_none() {
                return Err(Error::field(
                    "product_id",
                    "unknown_product",
                    format!("bank {bank} has no product {product}"),
                ));
            }
        }
        let id = match draft.id.clone() {
            Some(id) => id,
            None => LoanCodeId::parse(&format!("L{}", self.ports.ids.ulid()))
                .map_err(|e| Error::Internal(e.to_string()))?,
        };
        let code = LoanCode {
            id: id.clone(),
            bank_id: bank.clone(),
            branch: draft.branch,
            product_id: draft.product_id,
            campaign: draft.campaign,
            valid_from: draft.valid_from.unwrap_or(now),
            valid_to: draft.valid_to,
            created_by: who.subject.clone(),
            created_at: now,
        };
        let mut item = codec::to_item(loan_code_key(&id), &code)?;
        item.gsi1 = Some(Key::new(issuer_partition(bank.as_ref()), id.to_string()));
        self.ports
            .table
            .put(item, Some(Condition::NotExists))
            .await
            .map_err(|e| match e {
                PortError::ConditionFailed(_) => {
                    Error::Conflict(format!("loan code {id} already exists"))
                }
                other => other.into(),
            })?;
        tracing::info!(loan_code = %id, "loan code created");
        Ok(code)
    }

    /// The caller's bank's loan codes (platform admins: the platform's own).
    pub async fn list(
        &self,
        who: &Principal,
        page: PageRequest,
    ) -> Result<Listing<LoanCode>, Error> {
        let partition = if who.has(Role::PlatformAdmin) && who.bank_id.is_none() {
            issuer_partition(None)
        } else {
            issuer_partition(Some(who.bank_with_role(Role::ProductAdmin)?))
        };
        crate::paging::page_of(
            self.ports.table.as_ref(),
            Query::partition(partition).on_gsi1(),
            page,
        )
        .await
    }

    /// A stored loan code.
    pub async fn get(&self, id: &LoanCodeId) -> Result<Option<LoanCode>, Error> {
        match self.ports.table.get(&loan_code_key(id)).await? {
            Some(item) => Ok(Some(codec::from_item(item)?)),
            None => Ok(None),
        }
    }

    /// What a scan shows: issuer, validity and products. Unknown codes are 404.
    pub async fn resolve(&self, id: &LoanCodeId) -> Result<LoanCodeView, Error> {
        let code = self
            .get(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("loan code {id}")))?;
        let products = match &code.bank_id {
            None => vec![],
            Some(bank) => {
                let listing = self
                    .ports
                    .products
                    .catalogue(CatalogueFilter {
                        bank: Some(bank.clone()),
                        limit: Some(PAGE_PRODUCTS),
                        ..CatalogueFilter::default()
                    })
                    .await?;
                match code.product_id {
                    Some(p) => listing.items.into_iter().filter(|e| e.id == p).collect(),
                    None => listing.items,
                }
            }
        };
        let now = self.ports.clock.now();
        Ok(LoanCodeView {
            issuer: LoanCodeIssuer {
                kind: if code.bank_id.is_some() {
                    "bank"
                } else {
                    "platform"
                },
                bank_name: code
                    .bank_id
                    .as_ref()
                    .map(|b| self.ports.config.bank_name(b)),
                bank_id: code.bank_id.clone(),
                branch: code.branch.clone(),
            },
            active: code.is_active(now),
            id: code.id,
            campaign: code.campaign,
            valid_to: code.valid_to,
            products,
        })
    }
}
