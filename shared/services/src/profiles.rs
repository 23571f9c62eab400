//! Firm profiles as the ingest writes them. What matching and scoring read: the firm's
//! industry and its newest indicator values, at `FIRM#<uscc>` / `INDICATORS#LATEST`.

use puhui_domain::{Error, IndustryCode, Uscc};
use puhui_ports::{Key, Table};
use serde_json::{Map, Value};

/// A firm's newest indicators.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FirmIndicators {
    /// Industry code, when known and valid.
    pub industry: Option<IndustryCode>,
    /// Indicator id → value.
    pub values: Map<String, Value>,
}

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
