//! [`SqliteQueue`]: the queue port in a SQLite file, with SQS semantics: at-least-once delivery,
//! visibility timeouts, receive counts, a dead-letter queue, and FIFO deduplication and
//! message-group ordering.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use puhui_ports::queue::MAX_BATCH;
use puhui_ports::{Clock, PortError, PortResult, Queue, QueueMessage, ReceivedMessage};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use crate::sqlite::{Db, db_err};

/// SQS's deduplication window on FIFO queues.
const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;
/// SQS's classic largest message body.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// SQS's most messages per receive.
const MAX_RECEIVE: u32 = 10;
/// SQS's longest visibility timeout.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    fifo INTEGER NOT NULL,
    max_receives INTEGER NOT NULL,
    dead_letter TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queue_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    group_id TEXT,
    sent_at INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT
);
CREATE INDEX IF NOT EXISTS queue_messages_visible ON queue_messages (queue, visible_at, seq);
CREATE INDEX IF NOT EXISTS queue_messages_receipt ON queue_messages (receipt) WHERE receipt IS NOT NULL;
CREATE TABLE IF NOT EXISTS queue_dedup (
    queue TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (queue, dedup_id)
) WITHOUT ROWID;
";

/// A queue's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Receives after which a message moves to the dead-letter queue (SQS `maxReceiveCount`);
    /// 0 never moves it.
    pub max_receives: u32,
    /// FIFO queue: deduplication by id within 5 minutes, a group id on every message, and one
    /// batch of a message group in flight at a time.
    pub fifo: bool,
}

/// One queue in a SQLite file.
#[derive(Clone)]
pub struct SqliteQueue {
    db: Db,
    name: String,
    config: QueueConfig,
    clock: Arc<dyn Clock>,
}

impl SqliteQueue {
    /// Opens (creating if needed) the queue `name` in the SQLite file at `path`, recording its
    /// redrive policy.
    pub fn open(
        path: impl AsRef<Path>,
        name: &str,
        config: QueueConfig,
        clock: Arc<dyn Clock>,
    ) -> PortResult<SqliteQueue> {
        if name.is_empty() {
            return Err(PortError::Invalid("a queue needs a name".into()));
        }
        let db = Db::open(path.as_ref(), SCHEMA)?;
        let queue = SqliteQueue {
            db,
            name: name.to_owned(),
            config,
            clock,
        };
        let dead_letter = (config.max_receives > 0).then(|| queue.dead_letter_name());
        // Opening may happen outside a runtime, so this write runs on the calling thread.
        queue.db.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO queues (name, fifo, max_receives, dead_letter) VALUES (?1, ?2, ?3, ?4)",
                params![name, config.fifo, config.max_receives, dead_letter],
            )
            .map(drop)
            .map_err(db_err)
        })?;
        Ok(queue)
    }

    /// The queue's dead-letter queue, `{name}-dlq`; it never dead-letters messages itself.
    pub fn dead_letter(&self) -> SqliteQueue {
        SqliteQueue {
            db: self.db.clone(),
            name: self.dead_letter_name(),
            config: QueueConfig {
                max_receives: 0,
                fifo: self.config.fifo,
            },
            clock: self.clock.clone(),
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn dead_letter_name(&self) -> String {
        format!("{}-dlq", self.name)
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Sends messages in one transaction; per message its id or why it was refused.
    async fn send_all(&self, messages: Vec<QueueMessage>) -> PortResult<Vec<PortResult<String>>> {
        let (name, fifo, now) = (self.name.clone(), self.config.fifo, self.now_ms());
        self.db
            .call(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(db_err)?;
                if fifo {
                    forget_old_dedup_ids(&tx, &name, now)?;
                }
                let mut results = Vec::with_capacity(messages.len());
                for message in messages {
                    let result = match validate(&message, fifo) {
                        Ok(()) => Ok(enqueue(&tx, &name, fifo, &message, now)?),
                        Err(e) => Err(e),
                    };
                    results.push(result);
                }
                tx.commit().map_err(db_err)?;
                Ok(results)
            })
            .await
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send(&self, message: QueueMessage) -> PortResult<String> {
        // Refuse before taking the write lock; `send_all` would report the same error.
        validate(&message, self.config.fifo)?;
        self.send_all(vec![message])
            .await?
            .pop()
            .unwrap_or_else(|| Err(PortError::Backend("send produced no result".into())))
    }

    async fn send_batch(&self, messages: Vec<QueueMessage>) -> PortResult<Vec<PortResult<String>>> {
        if messages.is_empty() || messages.len() > MAX_BATCH {
            return Err(PortError::Invalid(format!(
                "a batch takes 1 to {MAX_BATCH} messages, not {}",
                messages.len()
            )));
        }
        self.send_all(messages).await
    }

    async fn receive(&self, max: u32, visibility: Duration) -> PortResult<Vec<ReceivedMessage>> {
        if !(1..=MAX_RECEIVE).contains(&max) {
            return Err(PortError::Invalid(format!(
                "receive takes 1 to {MAX_RECEIVE} messages, not {max}"
            )));
        }
        if visibility > MAX_VISIBILITY {
            return Err(PortError::Invalid(format!(
                "visibility timeout over {} s",
                MAX_VISIBILITY.as_secs()
            )));
        }
        let now = self.now_ms();
        let hidden_until =
            now.saturating_add(i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX));
        let (name, fifo) = (self.name.clone(), self.config.fifo);
        self.db
            .call(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(db_err)?;
                dead_letter_exhausted(&tx, &name, now)?;
                let picked = pick_visible(&tx, &name, fifo, max, now)?;
                let delivered = picked
                    .into_iter()
                    .map(|m| deliver(&tx, m, hidden_until))
                    .collect::<PortResult<Vec<_>>>()?;
                tx.commit().map_err(db_err)?;
                Ok(delivered)
            })
            .await
    }

    async fn delete(&self, receipt: &str) -> PortResult<()> {
        if receipt.is_empty() {
            return Err(PortError::Invalid("empty receipt".into()));
        }
        let (name, receipt) = (self.name.clone(), receipt.to_owned());
        // A stale receipt (the message was received again since) matches nothing: like SQS,
        // that is not an error, and the newer delivery stays.
        self.db
            .call(move |conn| {
                conn.prepare_cached("DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2")
                    .and_then(|mut s| s.execute(params![name, receipt]))
                    .map(drop)
                    .map_err(db_err)
            })
            .await
    }
}

/// What SQS refuses in a message.
fn validate(message: &QueueMessage, fifo: bool) -> PortResult<()> {
    if message.body.is_empty() || message.body.len() > MAX_BODY_BYTES {
        return Err(PortError::Invalid(format!(
            "message body of {} bytes (1 to {MAX_BODY_BYTES})",
            message.body.len()
        )));
    }
    if fifo && message.group_id.as_deref().is_none_or(str::is_empty) {
        return Err(PortError::Invalid(
            "a FIFO queue needs a message group id".into(),
        ));
    }
    Ok(())
}

/// Drops deduplication records older than the window.
fn forget_old_dedup_ids(tx: &Transaction<'_>, queue: &str, now: i64) -> PortResult<()> {
    tx.prepare_cached("DELETE FROM queue_dedup WHERE queue = ?1 AND sent_at <= ?2")
        .and_then(|mut s| s.execute(params![queue, now - DEDUP_WINDOW_MS]))
        .map(drop)
        .map_err(db_err)
}

/// Stores one message and returns its id; on a FIFO queue a deduplication id seen within the
/// window returns the first message's id and stores nothing.
fn enqueue(
    tx: &Transaction<'_>,
    queue: &str,
    fifo: bool,
    message: &QueueMessage,
    now: i64,
) -> PortResult<String> {
    let dedup_id = message.dedup_id.as_deref().filter(|_| fifo);
    if let Some(dedup_id) = dedup_id {
        let seen: Option<String> = tx
            .prepare_cached("SELECT message_id FROM queue_dedup WHERE queue = ?1 AND dedup_id = ?2")
            .and_then(|mut s| {
                s.query_row(params![queue, dedup_id], |r| r.get(0))
                    .optional()
            })
            .map_err(db_err)?;
        if let Some(id) = seen {
            return Ok(id);
        }
    }
    let id = ulid::Ulid::new().to_string();
    let group_id = message.group_id.as_deref().filter(|_| fifo);
    tx.prepare_cached("INSERT INTO queue_messages (queue, id, body, group_id, sent_at, visible_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)")
        .and_then(|mut s| s.execute(params![queue, id, message.body, group_id, now]))
        .map_err(db_err)?;
    if let Some(dedup_id) = dedup_id {
        tx.prepare_cached("INSERT INTO queue_dedup (queue, dedup_id, message_id, sent_at) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![queue, dedup_id, id, now]))
            .map_err(db_err)?;
    }
    Ok(id)
}

/// Moves visible messages of the queue being read that were received `max_receives` times to its
/// dead-letter queue: as in SQS, the move happens on the receive that would exceed the limit.
fn dead_letter_exhausted(tx: &Transaction<'_>, queue: &str, now: i64) -> PortResult<()> {
    let sources: Vec<(String, i64, String)> = tx
        .prepare_cached(
            "SELECT name, max_receives, dead_letter FROM queues
             WHERE name = ?1 AND dead_letter IS NOT NULL AND max_receives > 0",
        )
        .and_then(|mut s| {
            s.query_map(params![queue], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(db_err)?;
    for (source, max_receives, dead_letter) in sources {
        // The message keeps its id, body, send order and receive count, as in SQS.
        let moved = tx
            .prepare_cached(
                "UPDATE queue_messages SET queue = ?1, visible_at = ?2, receipt = NULL
                 WHERE queue = ?3 AND visible_at <= ?2 AND receive_count >= ?4",
            )
            .and_then(|mut s| s.execute(params![dead_letter, now, source, max_receives]))
            .map_err(db_err)?;
        if moved > 0 {
            tracing::debug!(source, dead_letter, moved, "dead-lettered messages");
        }
    }
    Ok(())
}

/// A message chosen for delivery.
struct Picked {
    seq: i64,
    id: String,
    body: String,
    receive_count: i64,
}

/// Up to `max` visible messages in send order. On a FIFO queue a group with a message in flight
/// is skipped entirely, so a group's messages are processed in order.
fn pick_visible(
    tx: &Transaction<'_>,
    queue: &str,
    fifo: bool,
    max: u32,
    now: i64,
) -> PortResult<Vec<Picked>> {
    let busy_groups: HashSet<String> = if fifo {
        tx.prepare_cached("SELECT DISTINCT group_id FROM queue_messages WHERE queue = ?1 AND visible_at > ?2 AND group_id IS NOT NULL")
            .and_then(|mut s| s.query_map(params![queue, now], |r| r.get(0))?.collect())
            .map_err(db_err)?
    } else {
        HashSet::new()
    };
    let mut stmt = tx
        .prepare_cached("SELECT seq, id, body, group_id, receive_count FROM queue_messages WHERE queue = ?1 AND visible_at <= ?2 ORDER BY seq")
        .map_err(db_err)?;
    let mut rows = stmt.query(params![queue, now]).map_err(db_err)?;
    let mut picked = Vec::new();
    // Rows are read lazily, so a long backlog costs only as many rows as it takes to fill `max`.
    while picked.len() < max as usize {
        let Some(row) = rows.next().map_err(db_err)? else {
            break;
        };
        let group: Option<String> = row.get(3).map_err(db_err)?;
        if group.is_some_and(|g| busy_groups.contains(&g)) {
            continue;
        }
        picked.push(Picked {
            seq: row.get(0).map_err(db_err)?,
            id: row.get(1).map_err(db_err)?,
            body: row.get(2).map_err(db_err)?,
            receive_count: row.get(4).map_err(db_err)?,
        });
    }
    Ok(picked)
}

/// Hides a message until `hidden_until` under a fresh receipt and counts the receive.
fn deliver(tx: &Transaction<'_>, m: Picked, hidden_until: i64) -> PortResult<ReceivedMessage> {
    // A fresh random token per delivery: a consumer holding an older receipt cannot delete a
    // message that was handed to someone else since.
    let receipt = format!("{}.{}", m.id, ulid::Ulid::new());
    let receive_count = m.receive_count.saturating_add(1);
    tx.prepare_cached("UPDATE queue_messages SET receive_count = ?1, visible_at = ?2, receipt = ?3 WHERE seq = ?4")
        .and_then(|mut s| s.execute(params![receive_count, hidden_until, receipt, m.seq]))
        .map_err(db_err)?;
    Ok(ReceivedMessage {
        id: m.id,
        body: m.body,
        receipt,
        receive_count: u32::try_from(receive_count).unwrap_or(u32::MAX),
    })
}
