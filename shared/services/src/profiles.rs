//! Firm profiles as the ingest writes them.
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | newest indicators | `FIRM#<uscc>` | `INDICATORS#LATEST` | `industry`, `values: {<indicator>: value}`, `as_of: {<indicator or "industry">: date}` |
//! | one profile category | `FIRM#<uscc>` | `PROFILE#<category>` | `fields: {<field>: {"value", "source", "as_of"}}` |
//!
//! Matching and scoring read the indicators; data interfaces read the categories (one item per
//! category of [`ProfileCategory`], so an ingest of one department's file rewrites one item).

use puhui_domain::interfaces::{FirmProfile, ProfileCategory, ProfileField};
use puhui_domain::{Error, IndustryCode, Uscc};
use puhui_ports::{Item, Key, Query, Table};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A firm's newest indicators.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FirmIndicators {
    /// Industry code, when known and valid.
    pub industry: Option<IndustryCode>,
    /// Indicator id → value.
    pub values: Map<String, Value>,
}

/// The attribute of the firm's newest indicators holding its industry code (also the target
/// field a registration source loads it into).
pub const INDUSTRY: &str = "industry";

/// The attribute of the firm's newest indicators holding each value's as-of date
/// (`{<indicator id or "industry">: "YYYY-MM-DD"}`), written by the ingest.
pub const INDICATORS_AS_OF: &str = "as_of";

/// The key of a firm's newest indicators.
pub fn indicators_key(uscc: &Uscc) -> Key {
    Key::new(format!("FIRM#{uscc}"), "INDICATORS#LATEST")
}

/// The firm's newest indicators, `None` when the ingest has written none.
pub async fn indicators(table: &dyn Table, uscc: &Uscc) -> Result<Option<FirmIndicators>, Error> {
    let Some(item) = table.get(&indicators_key(uscc)).await? else {
        return Ok(None);
    };
    Ok(Some(FirmIndicators {
        industry: item
            .attrs
            .get("industry")
            .and_then(Value::as_str)
            .and_then(|s| IndustryCode::parse(s).ok()),
        values: item
            .attrs
            .get("values")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    }))
}

/// The key of one category of a firm's profile.
pub fn category_key(uscc: &Uscc, category: ProfileCategory) -> Key {
    Key::new(format!("FIRM#{uscc}"), format!("PROFILE#{category}"))
}

/// The item holding one category of a firm's profile, as the ingest writes it.
pub fn category_item(
    uscc: &Uscc,
    category: ProfileCategory,
    fields: &BTreeMap<String, ProfileField>,
) -> Result<Item, Error> {
    let mut attrs = Map::new();
    attrs.insert(
        "fields".into(),
        serde_json::to_value(fields).map_err(|e| Error::Internal(e.to_string()))?,
    );
    Ok(Item::new(category_key(uscc, category), attrs))
}

/// Every category of the firm's profile the ingest has written (one query of the firm's
/// partition). A stored category that does not read is an internal error, never skipped: a
/// view silently missing fields would look like data the firm does not have.
pub async fn profile(table: &dyn Table, uscc: &Uscc) -> Result<FirmProfile, Error> {
    let query = Query::partition(format!("FIRM#{uscc}")).prefix("PROFILE#");
    let mut out = FirmProfile::new();
    for item in crate::paging::all_pages(table, query).await? {
        let name = item.key.sk.trim_start_matches("PROFILE#");
        let category: ProfileCategory = serde_json::from_value(Value::String(name.into()))
            .map_err(|_| Error::Internal(format!("profile of {uscc}: unknown category {name}")))?;
        out.insert(category, category_fields(uscc, category, &item)?);
    }
    Ok(out)
}

/// One category of the firm's profile (one read), `None` when the ingest has written none;
/// for callers that need a few fields, not the whole profile.
pub async fn category(
    table: &dyn Table,
    uscc: &Uscc,
    category: ProfileCategory,
) -> Result<Option<BTreeMap<String, ProfileField>>, Error> {
    match table.get(&category_key(uscc, category)).await? {
        Some(item) => category_fields(uscc, category, &item).map(Some),
        None => Ok(None),
    }
}

/// The fields of a stored category item; one that does not read is an internal error.
fn category_fields(
    uscc: &Uscc,
    category: ProfileCategory,
    item: &Item,
) -> Result<BTreeMap<String, ProfileField>, Error> {
    serde_json::from_value(item.attrs.get("fields").cloned().unwrap_or(Value::Null))
        .map_err(|e| Error::Internal(format!("profile of {uscc}, {category}: {e}")))
}
