//! Items as DynamoDB attribute maps: the key and bookkeeping attributes, and the JSON attributes
//! converted with `serde_dynamo` (numbers travel as decimal strings, so 64-bit integers,
//! negatives and decimals come back exactly).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use puhui_ports::table::RESERVED;
use puhui_ports::{Item, Key, PortError, PortResult};
use serde_json::{Map, Value};

/// A DynamoDB item.
pub(crate) type Attrs = HashMap<String, AttributeValue>;

/// A number attribute value.
pub(crate) fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// The primary key of an item as a DynamoDB key.
pub(crate) fn key_map(key: &Key) -> Attrs {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(key.pk.clone())),
        ("sk".to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// One JSON attribute as a DynamoDB value.
pub(crate) fn to_attribute_value(name: &str, value: &Value) -> PortResult<AttributeValue> {
    serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(value)
        .map_err(|e| PortError::Invalid(format!("attribute '{name}': {e}")))
}

/// The DynamoDB item of a port item (validated by the caller).
pub(crate) fn encode_item(item: &Item) -> PortResult<Attrs> {
    let mut out = key_map(&item.key);
    for (name, value) in &item.attrs {
        out.insert(name.clone(), to_attribute_value(name, value)?);
    }
    if let Some(g) = &item.gsi1 {
        out.insert("gsi1pk".into(), AttributeValue::S(g.pk.clone()));
        out.insert("gsi1sk".into(), AttributeValue::S(g.sk.clone()));
    }
    out.insert("version".into(), number(item.version));
    if let Some(at) = item.expires_at {
        out.insert("ttl".into(), number(at));
    }
    Ok(out)
}

/// The port item of a stored DynamoDB item; an item this adapter did not write is a backend
/// error, never a panic.
pub(crate) fn decode_item(mut raw: Attrs) -> PortResult<Item> {
    let pk = take_string(&mut raw, "pk")?;
    let sk = take_string(&mut raw, "sk")?;
    let where_ = format!("{pk}/{sk}");
    let gsi1pk = raw.remove("gsi1pk");
    let gsi1sk = raw.remove("gsi1sk");
    let gsi1 = match (gsi1pk, gsi1sk) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => Some(Key { pk, sk }),
        (None, None) => None,
        _ => return Err(corrupt(&where_, "gsi1pk/gsi1sk")),
    };
    let version = match raw.remove("version") {
        Some(AttributeValue::N(n)) => n.parse::<u64>().map_err(|_| corrupt(&where_, "version"))?,
        None => 0,
        Some(_) => return Err(corrupt(&where_, "version")),
    };
    let expires_at = match raw.remove("ttl") {
        Some(AttributeValue::N(n)) => Some(n.parse::<i64>().map_err(|_| corrupt(&where_, "ttl"))?),
        None => None,
        Some(_) => return Err(corrupt(&where_, "ttl")),
    };
    let mut attrs = Map::new();
    for (name, value) in raw {
        if RESERVED.contains(&name.as_str()) {
            continue;
        }
        if !known(&value) {
            return Err(corrupt(&where_, &name));
        }
        let json: Value = serde_dynamo::aws_sdk_dynamodb_1::from_attribute_value(value)
            .map_err(|e| PortError::Backend(format!("stored attribute {name} of {where_}: {e}")))?;
        attrs.insert(name, json);
    }
    Ok(Item {
        key: Key { pk, sk },
        gsi1,
        version,
        expires_at,
        attrs,
    })
}

/// Removes a string attribute.
fn take_string(raw: &mut Attrs, name: &str) -> PortResult<String> {
    match raw.remove(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        _ => Err(PortError::Backend(format!(
            "stored item without a string '{name}'"
        ))),
    }
}

/// The error for a stored attribute this adapter cannot read.
fn corrupt(item: &str, attr: &str) -> PortError {
    PortError::Backend(format!("stored item {item}: unreadable attribute '{attr}'"))
}

/// Whether every value in the tree is a type this SDK knows (`serde_dynamo` panics on an
/// unknown variant, which a newer DynamoDB could send).
fn known(value: &AttributeValue) -> bool {
    match value {
        AttributeValue::M(m) => m.values().all(known),
        AttributeValue::L(l) => l.iter().all(known),
        AttributeValue::S(_)
        | AttributeValue::N(_)
        | AttributeValue::Bool(_)
        | AttributeValue::Null(_)
        | AttributeValue::B(_)
        | AttributeValue::Ss(_)
        | AttributeValue::Ns(_)
        | AttributeValue::Bs(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_round_trip_exactly() {
        let attrs = json!({"big": 9_007_199_254_740_993_i64, "max": u64::MAX, "neg": -42,
            "ratio": -0.125, "empty": "", "none": null, "list": [],
            "nested": {"a": [1, {"b": false}], "c": "中文"}});
        let mut item = Item::new(
            Key::new("P", "S"),
            attrs.as_object().cloned().unwrap_or_default(),
        );
        item.gsi1 = Some(Key::new("G", "GS"));
        item.version = 7;
        item.expires_at = Some(-5);
        let encoded = encode_item(&item).unwrap_or_default();
        assert_eq!(
            encoded.get("big"),
            Some(&AttributeValue::N("9007199254740993".into()))
        );
        assert_eq!(decode_item(encoded).ok(), Some(item));
    }

    #[test]
    fn unreadable_items_are_errors() {
        let mut raw = key_map(&Key::new("P", "S"));
        raw.insert("version".into(), AttributeValue::S("x".into()));
        assert!(matches!(decode_item(raw), Err(PortError::Backend(_))));
        let mut raw = key_map(&Key::new("P", "S"));
        raw.insert("gsi1pk".into(), AttributeValue::S("x".into()));
        assert!(matches!(decode_item(raw), Err(PortError::Backend(_))));
        assert!(decode_item(HashMap::new()).is_err());
    }
}
