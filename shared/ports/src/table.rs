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

/// Checks that attributes avoid the reserved names; adapters call it before every write.
pub fn check_attrs(attrs: &Map<String, Value>) -> PortResult<()> {
    match attrs.keys().find(|k| RESERVED.contains(&k.as_str())) {
        Some(k) => Err(crate::PortError::Invalid(format!(
            "attribute name '{k}' is reserved"
        ))),
        None => Ok(()),
    }
}
