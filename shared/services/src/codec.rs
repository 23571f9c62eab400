//! Domain values to and from table items: JSON attributes, with a `version` field (if the value
//! has one) kept in the item's own version, which conditional writes compare.

use puhui_domain::Error;
use puhui_ports::{Item, Key};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The value's attributes (a JSON object), without `version`.
pub fn attrs<T: Serialize>(value: &T) -> Result<Map<String, Value>, Error> {
    match serde_json::to_value(value).map_err(|e| Error::Internal(e.to_string()))? {
        Value::Object(mut m) => {
            m.remove("version");
            Ok(m)
        }
        _ => Err(Error::Internal(
            "value did not serialize to an object".into(),
        )),
    }
}

/// An item holding `value` at `key`; a `version` field becomes the item's version.
pub fn to_item<T: Serialize>(key: Key, value: &T) -> Result<Item, Error> {
    let version = serde_json::to_value(value)
        .ok()
        .and_then(|v| v.get("version").and_then(Value::as_u64));
    let mut item = Item::new(key, attrs(value)?);
    if let Some(v) = version {
        item.version = v;
    }
    Ok(item)
}

/// The value stored in an item, with the item's version as its `version` field.
pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, Error> {
    let mut attrs = item.attrs;
    attrs.insert("version".into(), item.version.into());
    serde_json::from_value(Value::Object(attrs)).map_err(|e| {
        Error::Internal(format!(
            "stored item {}/{} unreadable: {e}",
            item.key.pk, item.key.sk
        ))
    })
}
