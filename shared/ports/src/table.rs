//! The document table port (DynamoDB semantics).
//!
//! An [`Item`] has a primary key (`pk`, `sk`), an optional key on the one secondary index
//! (`gsi1`), a version, an optional expiry, and JSON attributes. The names `pk`, `sk`,
//! `gsi1pk`, `gsi1sk`, `version` and `ttl` are reserved for those and refused as attributes.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::PortResult;

/// Attribute names the adapters use for keys and bookkeeping.
pub const RESERVED: [&str; 6] = ["pk", "sk", "gsi1pk", "gsi1sk", "version", "ttl"];

/// A primary or index key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
}

impl Key {
    /// A key from its parts.
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// A stored item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Primary key.
    pub key: Key,
    /// Key on the secondary index `gsi1`; `None` keeps the item out of it (sparse index).
    pub gsi1: Option<Key>,
    /// Version number maintained by the caller on put and incremented by [`Update`].
    pub version: u64,
    /// Expiry in seconds since the epoch (DynamoDB TTL). Expired items may linger until the
    /// backend sweeps them; readers that care compare with the clock.
    pub expires_at: Option<i64>,
    /// The item's attributes (a JSON object without the reserved names). Numbers must fit
    /// DynamoDB's (at most 38 significant digits); a float without a fraction (`2.0`) may read
    /// back as an integer (`2`), so store money and counts as integers.
    pub attrs: Map<String, Value>,
}

impl Item {
    /// An item with attributes, version 1, no index key and no expiry.
    pub fn new(key: Key, attrs: Map<String, Value>) -> Self {
        Item {
            key,
            gsi1: None,
            version: 1,
            expires_at: None,
            attrs,
        }
    }
}

/// A condition a write requires of the stored item.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The item must not exist.
    NotExists,
    /// The item must exist.
    Exists,
    /// The item must exist with this version.
    VersionEquals(u64),
    /// The item must exist and the numeric attribute `attr` (absent counts as 0) must be below `bound`.
    Below { attr: String, bound: i64 },
    /// The item must not exist, or have expired at or before `now` (seconds since the epoch).
    NotExistsOrExpired { now: i64 },
}

/// A partial change to one item; the version is incremented by one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Update {
    /// Attributes to set (replace).
    pub set: Map<String, Value>,
    /// Attributes to remove.
    pub remove: Vec<String>,
    /// Numeric attributes to add to (absent counts as 0).
    pub add: Vec<(String, i64)>,
    /// Replace the secondary-index key: `Some(Some(k))` sets it, `Some(None)` removes it.
    pub gsi1: Option<Option<Key>>,
    /// Replace the expiry: `Some(None)` clears it.
    pub expires_at: Option<Option<i64>>,
}

/// Which key a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexName {
    /// The table's primary key.
    Primary,
    /// The secondary index `gsi1`.
    Gsi1,
}

/// A condition on the sort key in a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRange {
    /// Every sort key.
    All,
    /// Sort keys starting with the prefix.
    Prefix(String),
    /// Sort keys between the bounds, inclusive.
    Between(String, String),
}

impl KeyRange {
    /// True if the sort key `sk` satisfies this condition.
    pub fn contains(&self, sk: &str) -> bool {
        match self {
            KeyRange::All => true,
            KeyRange::Prefix(p) => sk.starts_with(p.as_str()),
            KeyRange::Between(low, high) => low.as_str() <= sk && sk <= high.as_str(),
        }
    }
}

/// A query over one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Which key to read.
    pub index: IndexName,
    /// Partition key value.
    pub pk: String,
    /// Sort-key condition.
    pub range: KeyRange,
    /// Most items to return in this page (1–1000).
    pub limit: u32,
    /// Ascending sort-key order if true.
    pub ascending: bool,
    /// Opaque cursor from the previous page's [`Page::next`]. A cursor that is malformed or was
    /// issued for another partition or index is refused with `PortError::BadCursor`, never
    /// passed to the backend (clients hold cursors, so they are untrusted input).
    pub cursor: Option<String>,
}

impl Query {
    /// An ascending query of one partition of the primary key, 100 items a page.
    pub fn partition(pk: impl Into<String>) -> Self {
        Query {
            index: IndexName::Primary,
            pk: pk.into(),
            range: KeyRange::All,
            limit: 100,
            ascending: true,
            cursor: None,
        }
    }

    /// The same query on the secondary index.
    pub fn on_gsi1(mut self) -> Self {
        self.index = IndexName::Gsi1;
        self
    }

    /// With a sort-key prefix.
    pub fn prefix(mut self, p: impl Into<String>) -> Self {
        self.range = KeyRange::Prefix(p.into());
        self
    }

    /// With a page size.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = n;
        self
    }

    /// Continuing after a cursor.
    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }
}

/// One page of query results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The items, in sort-key order.
    pub items: Vec<Item>,
    /// Cursor for the next page; `None` when there are no more items.
    pub next: Option<String>,
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum TxOp {
    /// Put an item, optionally under a condition.
    Put {
        item: Item,
        condition: Option<Condition>,
    },
    /// Update an item, optionally under a condition.
    Update {
        key: Key,
        update: Update,
        condition: Option<Condition>,
    },
    /// Delete an item, optionally under a condition.
    Delete {
        key: Key,
        condition: Option<Condition>,
    },
    /// Require a condition of an item without writing it.
    Check { key: Key, condition: Condition },
}

/// The document table.
#[async_trait]
pub trait Table: Send + Sync {
    /// Reads one item (strongly consistent).
    async fn get(&self, key: &Key) -> PortResult<Option<Item>>;

    /// Writes an item whole. Fails with `ConditionFailed` if `condition` does not hold.
    async fn put(&self, item: Item, condition: Option<Condition>) -> PortResult<()>;

    /// Changes part of an item and returns it as stored after the change. An update of an
    /// absent item creates it (like DynamoDB) unless the condition requires it to exist.
    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<Condition>,
    ) -> PortResult<Item>;

    /// Deletes an item; deleting an absent item succeeds unless the condition requires it.
    async fn delete(&self, key: &Key, condition: Option<Condition>) -> PortResult<()>;

    /// Reads one page of a partition, on the table or the secondary index.
    async fn query(&self, query: Query) -> PortResult<Page>;

    /// Applies up to 25 operations on distinct items, all or none.
    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()>;
}

/// Most operations in one transaction.
pub const MAX_TX_OPS: usize = 25;
/// Largest partition key (DynamoDB's limit), in bytes.
pub const MAX_PK_BYTES: usize = 2048;
/// Largest sort key (DynamoDB's limit), in bytes.
pub const MAX_SK_BYTES: usize = 1024;

impl TxOp {
    /// The item this operation touches.
    pub fn key(&self) -> &Key {
        match self {
            TxOp::Put { item, .. } => &item.key,
            TxOp::Update { key, .. } | TxOp::Delete { key, .. } | TxOp::Check { key, .. } => key,
        }
    }
}

/// Key attributes must be non-empty and within DynamoDB's size limits.
pub fn check_key(key: &Key) -> PortResult<()> {
    let bad = key.pk.is_empty()
        || key.sk.is_empty()
        || key.pk.len() > MAX_PK_BYTES
        || key.sk.len() > MAX_SK_BYTES;
    if bad {
        Err(crate::PortError::Invalid(format!("invalid key {key:?}")))
    } else {
        Ok(())
    }
}

/// An item DynamoDB would accept: valid keys, no reserved attribute, a version that fits.
pub fn check_item(item: &Item) -> PortResult<()> {
    check_key(&item.key)?;
    check_attrs(&item.attrs)?;
    item.gsi1.as_ref().map_or(Ok(()), check_key)?;
    i64::try_from(item.version)
        .map(|_| ())
        .map_err(|_| crate::PortError::Invalid(format!("version {} is too large", item.version)))
}

/// Reserved names are refused in every clause, and one attribute may appear in only one clause
/// (DynamoDB refuses overlapping document paths in an update expression).
pub fn check_update(update: &Update) -> PortResult<()> {
    check_attrs(&update.set)?;
    let named = update
        .set
        .keys()
        .chain(&update.remove)
        .chain(update.add.iter().map(|(name, _)| name));
    let mut seen = std::collections::HashSet::new();
    for name in named {
        if name.is_empty() || RESERVED.contains(&name.as_str()) {
            return Err(crate::PortError::Invalid(format!(
                "attribute name '{name}' is empty or reserved"
            )));
        }
        if !seen.insert(name) {
            return Err(crate::PortError::Invalid(format!(
                "attribute '{name}' appears twice in one update"
            )));
        }
    }
    if let Some(Some(gsi1)) = &update.gsi1 {
        check_key(gsi1)?;
    }
    Ok(())
}

/// One operation, checked on its own.
pub fn check_op(op: &TxOp) -> PortResult<()> {
    match op {
        TxOp::Put { item, .. } => check_item(item),
        TxOp::Update { key, update, .. } => check_key(key).and_then(|()| check_update(update)),
        TxOp::Delete { key, .. } | TxOp::Check { key, .. } => check_key(key),
    }
}

/// 1 to [`MAX_TX_OPS`] valid operations on distinct items (DynamoDB refuses the rest before
/// evaluating any condition).
pub fn check_transaction(ops: &[TxOp]) -> PortResult<()> {
    if ops.is_empty() || ops.len() > MAX_TX_OPS {
        return Err(crate::PortError::Invalid(format!(
            "a transaction takes 1 to {MAX_TX_OPS} operations, not {}",
            ops.len()
        )));
    }
    let mut keys = std::collections::HashSet::new();
    for op in ops {
        check_op(op)?;
        if !keys.insert(op.key()) {
            return Err(crate::PortError::Invalid(format!(
                "two operations on one item {:?}",
                op.key()
            )));
        }
    }
    Ok(())
}

/// Checks that attributes avoid the reserved names; adapters call it before every write.
pub fn check_attrs(attrs: &Map<String, Value>) -> PortResult<()> {
    match attrs.keys().find(|k| RESERVED.contains(&k.as_str())) {
        Some(k) => Err(crate::PortError::Invalid(format!(
            "attribute name '{k}' is reserved"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put(pk: &str) -> TxOp {
        TxOp::Put {
            item: Item::new(Key::new(pk, "S"), Map::new()),
            condition: None,
        }
    }

    #[test]
    fn transactions_are_checked_before_any_backend_sees_them() {
        assert!(check_transaction(&[put("a"), put("b")]).is_ok());
        assert!(check_transaction(&[]).is_err(), "empty");
        assert!(
            check_transaction(&[put("a"), put("a")]).is_err(),
            "one item twice"
        );
        let many: Vec<TxOp> = (0..=MAX_TX_OPS).map(|i| put(&i.to_string())).collect();
        assert!(check_transaction(&many).is_err(), "too many");
        assert!(check_transaction(&[put("")]).is_err(), "empty key");
        assert!(check_key(&Key::new("p".repeat(MAX_PK_BYTES + 1), "s")).is_err());
    }

    #[test]
    fn updates_may_not_touch_reserved_or_repeated_names() {
        let set = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
        assert!(
            check_update(&Update {
                set: set(json!({"a": 1})),
                add: vec![("b".into(), 1)],
                ..Update::default()
            })
            .is_ok()
        );
        assert!(
            check_update(&Update {
                set: set(json!({"version": 1})),
                ..Update::default()
            })
            .is_err()
        );
        assert!(
            check_update(&Update {
                add: vec![("ttl".into(), 1)],
                ..Update::default()
            })
            .is_err()
        );
        assert!(
            check_update(&Update {
                set: set(json!({"a": 1})),
                remove: vec!["a".into()],
                ..Update::default()
            })
            .is_err()
        );
        let mut item = Item::new(Key::new("p", "s"), Map::new());
        item.version = u64::MAX;
        assert!(
            check_item(&item).is_err(),
            "version beyond DynamoDB's numbers"
        );
    }
}
