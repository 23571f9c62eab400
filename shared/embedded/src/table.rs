//! [`SqliteTable`]: the document table port on a SQLite file, with DynamoDB semantics.

mod cursor;
mod plan;

use std::path::Path;

use async_trait::async_trait;
use puhui_ports::{
    IndexName, Item, Key, KeyRange, Page, PortError, PortResult, Query, Table, TxOp, Update,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params, params_from_iter};

use crate::sqlite::{Db, db_err};
use cursor::{Cursor, prefix_upper_bound};
use plan::{Write, plan};
use puhui_ports::table::{check_op, check_transaction};

/// Largest page a query returns.
const MAX_PAGE: u32 = 1000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    gsi1pk TEXT,
    gsi1sk TEXT,
    version INTEGER NOT NULL,
    expires_at INTEGER,
    attrs TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;
";

const COLUMNS: &str = "pk, sk, gsi1pk, gsi1sk, version, expires_at, attrs";

/// The document table on a SQLite file.
#[derive(Clone)]
pub struct SqliteTable {
    db: Db,
}

impl SqliteTable {
    /// Opens the table in the SQLite file at `path`, creating the file and schema if needed.
    pub fn open(path: impl AsRef<Path>) -> PortResult<SqliteTable> {
        Ok(SqliteTable {
            db: Db::open(path.as_ref(), SCHEMA)?,
        })
    }

    /// Runs one conditional write; a failed condition is `ConditionFailed`.
    async fn write_one(&self, op: TxOp) -> PortResult<Write> {
        check_op(&op)?;
        let outcome = self.db.call(move |conn| execute(conn, vec![op])).await?;
        match outcome {
            Ok(mut writes) => writes
                .pop()
                .ok_or_else(|| PortError::Backend("write produced no outcome".into())),
            Err(reasons) => Err(PortError::ConditionFailed(
                reasons.into_iter().flatten().next().unwrap_or_default(),
            )),
        }
    }
}

#[async_trait]
impl Table for SqliteTable {
    async fn get(&self, key: &Key) -> PortResult<Option<Item>> {
        let key = key.clone();
        self.db.call(move |conn| read_item(conn, &key)).await
    }

    async fn put(&self, item: Item, condition: Option<puhui_ports::Condition>) -> PortResult<()> {
        self.write_one(TxOp::Put { item, condition })
            .await
            .map(drop)
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<puhui_ports::Condition>,
    ) -> PortResult<Item> {
        match self
            .write_one(TxOp::Update {
                key: key.clone(),
                update,
                condition,
            })
            .await?
        {
            Write::Put(item) => Ok(item),
            other => Err(PortError::Backend(format!("update planned {other:?}"))),
        }
    }

    async fn delete(&self, key: &Key, condition: Option<puhui_ports::Condition>) -> PortResult<()> {
        self.write_one(TxOp::Delete {
            key: key.clone(),
            condition,
        })
        .await
        .map(drop)
    }

    async fn query(&self, query: Query) -> PortResult<Page> {
        let after = query
            .cursor
            .as_deref()
            .map(|c| Cursor::decode(c, &query))
            .transpose()?;
        self.db
            .call(move |conn| query_page(conn, &query, after.as_ref()))
            .await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        check_transaction(&ops)?;
        match self.db.call(move |conn| execute(conn, ops)).await? {
            Ok(_) => Ok(()),
            Err(reasons) => Err(PortError::TransactionCancelled { reasons }),
        }
    }
}

/// Evaluates every operation against the stored items and, if all conditions hold, applies them,
/// in one immediate transaction. `Err(reasons)` lists the failed conditions (nothing written).
fn execute(
    conn: &mut Connection,
    ops: Vec<TxOp>,
) -> PortResult<Result<Vec<Write>, Vec<Option<String>>>> {
    // IMMEDIATE takes the write lock before the reads, so no other connection can change an
    // item between its condition check and the write.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let mut writes = Vec::with_capacity(ops.len());
    let mut reasons = Vec::with_capacity(ops.len());
    for op in ops {
        let current = read_item(&tx, op.key())?;
        match plan(op, current)? {
            Ok(write) => {
                writes.push(write);
                reasons.push(None);
            }
            Err(reason) => reasons.push(Some(reason)),
        }
    }
    if reasons.iter().any(Option::is_some) {
        return Ok(Err(reasons)); // dropping `tx` rolls back
    }
    for write in &writes {
        apply(&tx, write)?;
    }
    tx.commit().map_err(db_err)?;
    Ok(Ok(writes))
}

/// Stores one planned write.
fn apply(conn: &Connection, write: &Write) -> PortResult<()> {
    match write {
        Write::Put(item) => {
            let attrs = serde_json::to_string(&item.attrs)
                .map_err(|e| PortError::Invalid(format!("attributes: {e}")))?;
            let version = i64::try_from(item.version)
                .map_err(|_| PortError::Invalid("version too large".into()))?;
            let (gsi1pk, gsi1sk) = item.gsi1.as_ref().map(|k| (&k.pk, &k.sk)).unzip();
            conn.prepare_cached(&format!(
                "INSERT OR REPLACE INTO items ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    item.key.pk,
                    item.key.sk,
                    gsi1pk,
                    gsi1sk,
                    version,
                    item.expires_at,
                    attrs
                ])
            })
            .map_err(db_err)?;
        }
        Write::Delete(key) => {
            conn.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
                .and_then(|mut s| s.execute(params![key.pk, key.sk]))
                .map_err(db_err)?;
        }
        Write::Nothing => {}
    }
    Ok(())
}

/// Reads one item.
fn read_item(conn: &Connection, key: &Key) -> PortResult<Option<Item>> {
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM items WHERE pk = ?1 AND sk = ?2"
        ))
        .and_then(|mut s| {
            s.query_row(params![key.pk, key.sk], RawItem::from_row)
                .optional()
        })
        .map_err(db_err)?;
    raw.map(RawItem::into_item).transpose()
}

/// Reads one page: `limit + 1` rows, so a full last page knows there is nothing after it.
fn query_page(conn: &Connection, query: &Query, after: Option<&Cursor>) -> PortResult<Page> {
    let limit = query.limit.clamp(1, MAX_PAGE);
    let (sql, args) = page_sql(query, after, limit + 1);
    let raws = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(params_from_iter(args), RawItem::from_row)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(db_err)?;
    let mut items = raws
        .into_iter()
        .map(RawItem::into_item)
        .collect::<PortResult<Vec<_>>>()?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more {
        items.last().map(|i| Cursor::after(i, query.index).encode())
    } else {
        None
    };
    Ok(Page { items, next })
}

/// The SQL and arguments of one page. Keys compare with SQLite's BINARY collation, which is
/// the byte order DynamoDB sorts by.
fn page_sql(query: &Query, after: Option<&Cursor>, fetch: u32) -> (String, Vec<SqlValue>) {
    let (pk_col, sk_col) = match query.index {
        IndexName::Primary => ("pk", "sk"),
        IndexName::Gsi1 => ("gsi1pk", "gsi1sk"),
    };
    let mut sql = format!("SELECT {COLUMNS} FROM items WHERE {pk_col} = ?");
    let mut args = vec![SqlValue::Text(query.pk.clone())];
    match &query.range {
        KeyRange::All => {}
        KeyRange::Prefix(p) => {
            sql += &format!(" AND {sk_col} >= ?");
            args.push(SqlValue::Text(p.clone()));
            if let Some(bound) = prefix_upper_bound(p) {
                sql += &format!(" AND {sk_col} < ?");
                args.push(SqlValue::Text(bound));
            }
        }
        KeyRange::Between(low, high) => {
            sql += &format!(" AND {sk_col} BETWEEN ? AND ?");
            args.extend([SqlValue::Text(low.clone()), SqlValue::Text(high.clone())]);
        }
    }
    let (cmp, dir) = if query.ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    // On the index several items may share a sort key; (gsi1sk, pk, sk) orders them totally.
    let order_cols: &[&str] = match query.index {
        IndexName::Primary => &["sk"],
        IndexName::Gsi1 => &["gsi1sk", "pk", "sk"],
    };
    if let Some(c) = after {
        match query.index {
            IndexName::Primary => args.push(SqlValue::Text(c.key.sk.clone())),
            IndexName::Gsi1 => {
                let gsi1sk = c.gsi1.as_ref().map(|g| g.sk.clone()).unwrap_or_default();
                args.extend([gsi1sk, c.key.pk.clone(), c.key.sk.clone()].map(SqlValue::Text));
            }
        }
        sql += &format!(
            " AND ({}) {cmp} ({})",
            order_cols.join(", "),
            vec!["?"; order_cols.len()].join(", ")
        );
    }
    let order: Vec<String> = order_cols.iter().map(|c| format!("{c} {dir}")).collect();
    // The limit is literal SQL, not an argument: SQLite plans with a bound LIMIT's value and
    // re-prepares the statement whenever it is bound to another one, which made every query
    // of a page size other than the last one's parse and plan again (a tenth of a data query's
    // CPU). Page sizes are few, and the statement cache holds them.
    sql += &format!(" ORDER BY {} LIMIT {fetch}", order.join(", "));
    (sql, args)
}

/// A row as stored, before the JSON and the index key are decoded.
struct RawItem {
    pk: String,
    sk: String,
    gsi1pk: Option<String>,
    gsi1sk: Option<String>,
    version: i64,
    expires_at: Option<i64>,
    attrs: String,
}

impl RawItem {
    /// Reads the columns in [`COLUMNS`] order.
    fn from_row(row: &Row<'_>) -> rusqlite::Result<RawItem> {
        Ok(RawItem {
            pk: row.get(0)?,
            sk: row.get(1)?,
            gsi1pk: row.get(2)?,
            gsi1sk: row.get(3)?,
            version: row.get(4)?,
            expires_at: row.get(5)?,
            attrs: row.get(6)?,
        })
    }

    /// The item; a row this adapter did not write is a backend error, not a panic.
    fn into_item(self) -> PortResult<Item> {
        let attrs = serde_json::from_str(&self.attrs).map_err(|e| {
            PortError::Backend(format!("stored attributes of {}/{}: {e}", self.pk, self.sk))
        })?;
        let version = u64::try_from(self.version)
            .map_err(|_| PortError::Backend(format!("stored version {}", self.version)))?;
        let gsi1 = self.gsi1pk.zip(self.gsi1sk).map(|(pk, sk)| Key { pk, sk });
        Ok(Item {
            key: Key {
                pk: self.pk,
                sk: self.sk,
            },
            gsi1,
            version,
            expires_at: self.expires_at,
            attrs,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Pages of different sizes over one statement shape must not make SQLite re-prepare it on
    /// each call (it does when the LIMIT is a bound argument).
    #[test]
    fn pages_of_different_sizes_are_not_prepared_again() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let query = |limit| {
            let mut q = Query::partition("FIRM#1").prefix("PROFILE#");
            q.limit = limit;
            q
        };
        for _ in 0..10 {
            for limit in [5, 7] {
                query_page(&conn, &query(limit), None).unwrap();
            }
        }
        for limit in [5, 7] {
            let (sql, _) = page_sql(&query(limit), None, limit + 1);
            let statement = conn.prepare_cached(&sql).unwrap();
            assert_eq!(
                statement.get_status(rusqlite::StatementStatus::RePrepare),
                0
            );
        }
    }
}
