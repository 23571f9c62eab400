//! Product listing: banks' product admins maintain their loan products; anyone may browse the
//! public catalogue of listed, currently valid products.
//!
//! Storage (single table): a product lives at `pk = BANK#<bank_id>`, `sk = PRODUCT#<id>`, so a
//! bank can only ever address its own products — another tenant's id is simply not found
//! (404, never 403, so ids do not leak). While listed it also carries the catalogue index key
//! `gsi1pk = CATALOGUE`, `gsi1sk = PRODUCT#<id>`; delisting removes it (sparse index).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDate;
use puhui_domain::product::{EligibilityCondition, Range};
use puhui_domain::{
    BankId, Bp, DivisionCode, Error, Fen, IndustryCode, Principal, Product, ProductDraft,
    ProductId, ProductStatus, ProductType, Role,
};
use puhui_ports::{Clock, Condition, IdGenerator, Item, Key, PortError, Query, Table};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::paging::{Listing, PageRequest};

const CATALOGUE_PK: &str = "CATALOGUE";
/// Most listed products the catalogue considers (a city's product supermarket holds hundreds).
const CATALOGUE_CAP: usize = 10_000;

/// The product-listing use cases.
pub struct ProductService {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

/// Filters of the public catalogue (all optional), with paging.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CatalogueFilter {
    /// The firm's location: products serving an area that contains it.
    pub region: Option<DivisionCode>,
    /// The firm's industry: products serving it.
    pub industry: Option<IndustryCode>,
    /// Amount wanted (fen): products whose range contains it.
    pub amount: Option<Fen>,
    /// Term wanted (months): products whose range contains it.
    pub term: Option<u16>,
    /// Kind of loan.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub product_type: Option<ProductType>,
    /// One bank's products only.
    pub bank: Option<BankId>,
    /// Page size.
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// A product as the public catalogue shows it: terms and eligibility, no internal lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CatalogueEntry {
    /// Product id.
    pub id: ProductId,
    /// Offering bank.
    pub bank_id: BankId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Kind of loan.
    pub product_type: ProductType,
    /// Amount range (fen).
    pub amount: Range<Fen>,
    /// Term range (months).
    pub term_months: Range<u16>,
    /// Annual rate range (bp).
    pub annual_rate_bp: Range<Bp>,
    /// Areas served (empty: all).
    pub regions: Vec<DivisionCode>,
    /// Industries served (empty: all).
    pub industries: Vec<IndustryCode>,
    /// Eligibility conditions.
    pub conditions: Vec<EligibilityCondition>,
    /// First day in the catalogue.
    pub valid_from: NaiveDate,
    /// Last day in the catalogue.
    pub valid_to: Option<NaiveDate>,
}

impl From<Product> for CatalogueEntry {
    fn from(p: Product) -> Self {
        let t = p.terms;
        CatalogueEntry {
            id: p.id,
            bank_id: p.bank_id,
            name: t.name,
            description: t.description,
            product_type: t.product_type,
            amount: t.amount,
            term_months: t.term_months,
            annual_rate_bp: t.annual_rate_bp,
            regions: t.regions,
            industries: t.industries,
            conditions: t.conditions,
            valid_from: t.valid_from,
            valid_to: t.valid_to,
        }
    }
}

/// Where a bank's product is stored.
pub(crate) fn product_key(bank: &BankId, id: &ProductId) -> Key {
    Key::new(format!("BANK#{bank}"), format!("PRODUCT#{id}"))
}

fn to_item(p: &Product) -> Result<Item, Error> {
    let Value::Object(mut attrs) =
        serde_json::to_value(p).map_err(|e| Error::Internal(e.to_string()))?
    else {
        return Err(Error::Internal(
            "product did not serialize to an object".into(),
        ));
    };
    // The version lives in the item's own version field, which the table's conditions use.
    attrs.remove("version");
    let mut item = Item::new(product_key(&p.bank_id, &p.id), attrs);
    item.version = p.version;
    if p.status == ProductStatus::Listed {
        item.gsi1 = Some(Key::new(CATALOGUE_PK, format!("PRODUCT#{}", p.id)));
    }
    Ok(item)
}

fn from_item(item: Item) -> Result<Product, Error> {
    let mut attrs = item.attrs;
    attrs.insert("version".into(), item.version.into());
    serde_json::from_value(Value::Object(attrs))
        .map_err(|e| Error::Internal(format!("stored product unreadable: {e}")))
}

impl ProductService {
    /// A service over the given ports.
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>, ids: Arc<dyn IdGenerator>) -> Self {
        ProductService { table, clock, ids }
    }

    /// Creates a draft product for the caller's bank.
    pub async fn create(&self, who: &Principal, draft: ProductDraft) -> Result<Product, Error> {
        let bank = who.bank_with_role(Role::ProductAdmin)?;
        draft.check()?;
        let now = self.clock.now();
        let product = Product {
            id: ProductId(self.ids.ulid()),
            bank_id: bank.clone(),
            terms: draft,
            status: ProductStatus::Draft,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.table
            .put(to_item(&product)?, Some(Condition::NotExists))
            .await
            .map_err(|e| match e {
                PortError::ConditionFailed(_) => Error::Internal("product id collision".into()),
                other => other.into(),
            })?;
        tracing::info!(product_id = %product.id, "product created");
        Ok(product)
    }

    /// One of the caller's bank's products.
    pub async fn get(&self, who: &Principal, id: ProductId) -> Result<Product, Error> {
        let bank = who.bank_with_role(Role::ProductAdmin)?;
        self.load(bank, id).await
    }

    async fn load(&self, bank: &BankId, id: ProductId) -> Result<Product, Error> {
        match self.table.get(&product_key(bank, &id)).await? {
            Some(item) => from_item(item),
            None => Err(Error::NotFound(format!("product {id}"))),
        }
    }

    /// The caller's bank's products, oldest first, optionally of one status.
    pub async fn list_own(
        &self,
        who: &Principal,
        status: Option<ProductStatus>,
        page: PageRequest,
    ) -> Result<Listing<Product>, Error> {
        let bank = who.bank_with_role(Role::ProductAdmin)?;
        let limit = page.limit()?;
        let mut items = Vec::new();
        let mut cursor = page.cursor;
        // Filtering by status happens after the read, so keep reading until the page is full.
        loop {
            let want = limit - items.len() as u32;
            let q = Query::partition(format!("BANK#{bank}"))
                .prefix("PRODUCT#")
                .limit(want)
                .after(cursor);
            let result = self.table.query(q).await?;
            for item in result.items {
                let p = from_item(item)?;
                if status.is_none_or(|s| s == p.status) {
                    items.push(p);
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

    /// Replaces a product's terms if the caller's copy (`expected_version`) is current.
    pub async fn replace(
        &self,
        who: &Principal,
        id: ProductId,
        expected_version: u64,
        draft: ProductDraft,
    ) -> Result<Product, Error> {
        let bank = who.bank_with_role(Role::ProductAdmin)?;
        draft.check()?;
        let current = self.load(bank, id).await?;
        let mut next = current.clone();
        next.terms = draft;
        self.save_next(current, next, expected_version).await
    }

    /// Lists or delists a product (`expected_version` optional: status moves are checked anyway).
    pub async fn set_status(
        &self,
        who: &Principal,
        id: ProductId,
        to: ProductStatus,
        expected_version: Option<u64>,
    ) -> Result<Product, Error> {
        let bank = who.bank_with_role(Role::ProductAdmin)?;
        let current = self.load(bank, id).await?;
        let mut next = current.clone();
        next.status = current.status.transition(to)?;
        let expected = expected_version.unwrap_or(current.version);
        let saved = self.save_next(current, next, expected).await?;
        tracing::info!(product_id = %saved.id, status = ?saved.status, "product status changed");
        Ok(saved)
    }

    /// Writes `next` over `current` if the stored version is still `expected`.
    async fn save_next(
        &self,
        current: Product,
        mut next: Product,
        expected: u64,
    ) -> Result<Product, Error> {
        if current.version != expected {
            return Err(Error::PreconditionFailed {
                expected,
                current: current.version,
            });
        }
        next.version = expected + 1;
        next.updated_at = self.clock.now();
        match self
            .table
            .put(to_item(&next)?, Some(Condition::VersionEquals(expected)))
            .await
        {
            Ok(()) => Ok(next),
            Err(PortError::ConditionFailed(_)) => {
                // Someone else wrote between our read and our write.
                let now = self.load(&current.bank_id, current.id).await?;
                Err(Error::PreconditionFailed {
                    expected,
                    current: now.version,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The public catalogue: listed products valid today (Shanghai business date) that match
    /// the filter, cheapest first (lowest minimum rate, then largest maximum amount).
    pub async fn catalogue(
        &self,
        filter: CatalogueFilter,
    ) -> Result<Listing<CatalogueEntry>, Error> {
        let page = PageRequest {
            limit: filter.limit,
            cursor: filter.cursor.clone(),
        };
        let limit = page.limit()? as usize;
        let offset = match &page.cursor {
            None => 0,
            Some(c) => decode_offset(c)
                .ok_or_else(|| Error::field("cursor", "invalid_cursor", "cursor is malformed"))?,
        };
        let mut matching: Vec<Product> = self
            .listed()
            .await?
            .into_iter()
            .filter(|p| matches(p, &filter))
            .collect();
        matching.sort_by(|a, b| {
            (
                a.terms.annual_rate_bp.min,
                std::cmp::Reverse(a.terms.amount.max),
                a.id,
            )
                .cmp(&(
                    b.terms.annual_rate_bp.min,
                    std::cmp::Reverse(b.terms.amount.max),
                    b.id,
                ))
        });
        let total = matching.len();
        let items: Vec<CatalogueEntry> = matching
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(CatalogueEntry::from)
            .collect();
        // The offset comes from a client-held cursor: saturate rather than overflow.
        let end = offset.saturating_add(limit);
        let next_cursor = (end < total).then(|| encode_offset(end));
        Ok(Listing { items, next_cursor })
    }
}

impl ProductService {
    /// Every product in the catalogue today (Shanghai business date): listed and inside its
    /// validity window. The matching engine and the catalogue page both read this.
    pub async fn listed(&self) -> Result<Vec<Product>, Error> {
        let today = puhui_domain::time::business_date(self.clock.now());
        let mut listed = Vec::new();
        let mut cursor = None;
        let mut seen = 0usize;
        loop {
            let q = Query::partition(CATALOGUE_PK)
                .on_gsi1()
                .limit(1000)
                .after(cursor);
            let result = self.table.query(q).await?;
            seen += result.items.len();
            for item in result.items {
                let p = from_item(item)?;
                if p.in_catalogue(today) {
                    listed.push(p);
                }
            }
            cursor = result.next;
            if cursor.is_none() || seen >= CATALOGUE_CAP {
                break;
            }
        }
        Ok(listed)
    }
}

fn matches(p: &Product, f: &CatalogueFilter) -> bool {
    f.region.as_ref().is_none_or(|r| p.serves_region(r))
        && f.industry.as_ref().is_none_or(|i| p.serves_industry(i))
        && f.amount.is_none_or(|a| p.terms.amount.contains(a))
        && f.term.is_none_or(|t| p.terms.term_months.contains(t))
        && f.product_type.is_none_or(|t| p.terms.product_type == t)
        && f.bank.as_ref().is_none_or(|b| &p.bank_id == b)
}

fn encode_offset(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

fn decode_offset(cursor: &str) -> Option<usize> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix("o:")?
        .parse()
        .ok()
}
