//! Query cursors: base64url (no padding) of a JSON object of the last item's key attributes as
//! strings, the same format as the embedded adapter's. A cursor names the partition (and on the
//! index, the index key) it was issued for, so it cannot be replayed on another query; it is
//! checked before it becomes an ExclusiveStartKey, since clients hold cursors.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use puhui_ports::{IndexName, PortError, PortResult, Query};
use serde_json::{Map, Value};

use super::codec::Attrs;

/// The key attributes a cursor of `index` holds.
fn cursor_attrs(index: IndexName) -> &'static [&'static str] {
    match index {
        IndexName::Primary => &["pk", "sk"],
        IndexName::Gsi1 => &["pk", "sk", "gsi1pk", "gsi1sk"],
    }
}

/// The cursor after a raw DynamoDB item in a query of `index`.
pub(crate) fn cursor_after(item: &Attrs, index: IndexName) -> PortResult<String> {
    let mut map = Map::new();
    for name in cursor_attrs(index) {
        match item.get(*name) {
            Some(AttributeValue::S(v)) => {
                map.insert((*name).to_owned(), Value::String(v.clone()));
            }
            _ => {
                return Err(PortError::Backend(format!(
                    "query returned an item without '{name}'"
                )));
            }
        }
    }
    Ok(URL_SAFE_NO_PAD.encode(Value::Object(map).to_string()))
}

/// The ExclusiveStartKey of a cursor issued for `query`'s partition, index and range; anything
/// else is `BadCursor`.
pub(crate) fn decode_cursor(text: &str, query: &Query) -> PortResult<Attrs> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| PortError::BadCursor)?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| PortError::BadCursor)?;
    let Value::Object(map) = value else {
        return Err(PortError::BadCursor);
    };
    let field = |name: &str| match map.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(PortError::BadCursor),
    };
    let (partition, sort) = match query.index {
        IndexName::Primary => {
            // A cursor of the index carries index keys: refuse it on the table.
            if map.contains_key("gsi1pk") || map.contains_key("gsi1sk") {
                return Err(PortError::BadCursor);
            }
            (field("pk")?, field("sk")?)
        }
        IndexName::Gsi1 => (field("gsi1pk")?, field("gsi1sk")?),
    };
    // DynamoDB refuses a start key outside the key condition; such a cursor was never issued
    // for this query.
    if partition != query.pk || !query.range.contains(&sort) {
        return Err(PortError::BadCursor);
    }
    cursor_attrs(query.index)
        .iter()
        .map(|name| Ok(((*name).to_owned(), AttributeValue::S(field(name)?))))
        .collect::<PortResult<HashMap<_, _>>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> Attrs {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned())))
            .collect()
    }

    #[test]
    fn cursors_round_trip_only_on_their_own_query() {
        let item = raw(&[("pk", "p"), ("sk", "s"), ("gsi1pk", "g"), ("gsi1sk", "gs")]);
        let primary = Query::partition("p");
        let index = Query::partition("g").on_gsi1();
        let from_primary = cursor_after(&item, IndexName::Primary).unwrap_or_default();
        let from_index = cursor_after(&item, IndexName::Gsi1).unwrap_or_default();
        assert_eq!(
            decode_cursor(&from_primary, &primary).ok(),
            Some(raw(&[("pk", "p"), ("sk", "s")]))
        );
        assert_eq!(decode_cursor(&from_index, &index).ok(), Some(item));
        let bad =
            |text: &str, q: &Query| matches!(decode_cursor(text, q), Err(PortError::BadCursor));
        assert!(bad(&from_primary, &index) && bad(&from_index, &primary));
        assert!(bad(&from_primary, &Query::partition("other")));
        assert!(bad(&from_primary, &Query::partition("p").prefix("x")));
        for garbage in ["", "not a cursor!", "e30", "eyJwayI6MX0", "W10"] {
            assert!(bad(garbage, &primary), "{garbage}");
        }
    }
}
