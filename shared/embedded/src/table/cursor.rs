//! Query cursors (opaque to callers: base64url of the last item's keys as JSON) and the
//! upper bound that turns a sort-key prefix into an indexable range.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use puhui_ports::{IndexName, Item, Key, PortError, PortResult, Query};
use serde_json::{Map, Value};

/// Where the previous page stopped: the keys of its last item. It names the partition (and,
/// on the index, the index key) it was issued for, so it cannot be replayed on another query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// The last item's primary key.
    pub key: Key,
    /// The last item's index key (index queries only).
    pub gsi1: Option<Key>,
}

impl Cursor {
    /// The cursor after `item` in a query of `index`.
    pub(crate) fn after(item: &Item, index: IndexName) -> Cursor {
        let gsi1 = match index {
            IndexName::Primary => None,
            IndexName::Gsi1 => item.gsi1.clone(),
        };
        Cursor {
            key: item.key.clone(),
            gsi1,
        }
    }

    /// The opaque text handed to callers.
    pub(crate) fn encode(&self) -> String {
        let mut map = Map::new();
        map.insert("pk".into(), Value::String(self.key.pk.clone()));
        map.insert("sk".into(), Value::String(self.key.sk.clone()));
        if let Some(g) = &self.gsi1 {
            map.insert("gsi1pk".into(), Value::String(g.pk.clone()));
            map.insert("gsi1sk".into(), Value::String(g.sk.clone()));
        }
        URL_SAFE_NO_PAD.encode(Value::Object(map).to_string())
    }

    /// Reads back a cursor issued for `query`'s partition, index and range; anything else (including
    /// text we never issued) is `BadCursor`, since clients hold cursors.
    pub(crate) fn decode(text: &str, query: &Query) -> PortResult<Cursor> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| PortError::BadCursor)?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| PortError::BadCursor)?;
        let field = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
        let pair = |pk: &str, sk: &str| field(pk).zip(field(sk)).map(|(pk, sk)| Key { pk, sk });
        let key = pair("pk", "sk").ok_or(PortError::BadCursor)?;
        let gsi1 = pair("gsi1pk", "gsi1sk");
        let position = match query.index {
            IndexName::Primary => (gsi1.is_none()).then_some(&key),
            IndexName::Gsi1 => gsi1.as_ref(),
        };
        // A cursor outside the query's partition or sort-key range was issued for another query.
        if !position.is_some_and(|p| p.pk == query.pk && query.range.contains(&p.sk)) {
            return Err(PortError::BadCursor);
        }
        Ok(Cursor { key, gsi1 })
    }
}

/// The least string above every string that starts with `prefix` (byte order, which is code
/// point order for UTF-8), or `None` if there is none. `sk >= prefix AND sk < bound` is then
/// exactly "starts with prefix" and can use the index.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = next_char(last) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The next Unicode scalar value after `c`, skipping the surrogate gap.
fn next_char(c: char) -> Option<char> {
    let mut code = u32::from(c) + 1;
    if (0xD800..=0xDFFF).contains(&code) {
        code = 0xE000;
    }
    char::from_u32(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound_covers_exactly_the_prefix() {
        assert_eq!(prefix_upper_bound("A#").as_deref(), Some("A$"));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
        let bound = prefix_upper_bound("中").unwrap_or_default();
        assert!("中文" < bound.as_str() && "中\u{10FFFF}" < bound.as_str());
    }

    #[test]
    fn cursors_round_trip_only_on_their_own_query() {
        let mut item = Item::new(Key::new("p", "s"), Map::new());
        item.gsi1 = Some(Key::new("g", "gs"));
        let primary = Query::partition("p");
        let index = Query::partition("g").on_gsi1();
        for q in [&primary, &index] {
            let c = Cursor::after(&item, q.index);
            assert_eq!(Cursor::decode(&c.encode(), q).ok(), Some(c));
        }
        let from_primary = Cursor::after(&item, IndexName::Primary).encode();
        let from_index = Cursor::after(&item, IndexName::Gsi1).encode();
        let bad =
            |text: &str, q: &Query| matches!(Cursor::decode(text, q), Err(PortError::BadCursor));
        assert!(bad(&from_primary, &index) && bad(&from_index, &primary));
        assert!(bad(&from_primary, &Query::partition("other")));
        assert!(bad(&from_index, &Query::partition("other").on_gsi1()));
        for garbage in [
            "",
            "not a cursor!",
            "e30",
            "eyJwayI6MX0",
            &URL_SAFE_NO_PAD.encode("[1]"),
        ] {
            assert!(bad(garbage, &primary), "{garbage}");
        }
    }
}
