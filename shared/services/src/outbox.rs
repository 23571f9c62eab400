//! Transactional outbox: a state change and the messages it must cause are written in one table
//! transaction, so neither can happen without the other. Right after the commit the writer
//! sends the messages and deletes the outbox entry ([`Outbox::flush`]); if it crashes in
//! between, the scheduled relay ([`Outbox::sweep`]) sends what is left. A message may therefore
//! be sent twice, never lost — every consumer is idempotent.
//!
//! Storage: `pk = OUTBOX#<ulid>`, `sk = OUTBOX`, indexed at `gsi1pk = OUTBOX`,
//! `gsi1sk = <ulid>` so the relay finds old entries in time order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use puhui_domain::Error;
use puhui_ports::queue::MAX_BATCH;
use puhui_ports::{
    Clock, Condition, IdGenerator, Key, KeyRange, PortError, PortResult, Query, Queue,
    QueueMessage, Table, TxOp,
};
use serde::{Deserialize, Serialize};

/// Where a message goes: one queue per consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Destination {
    /// New demands, consumed by demand-dispatch.
    DemandSubmitted,
    /// Notifications, consumed by notify.
    Notifications,
    /// Chunks of batch-scoring jobs, consumed by model-batch.
    ScoringJobs,
    /// Chunks of bulk data-export jobs, consumed by data-export.
    DataExports,
}

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The queue.
    pub destination: Destination,
    /// The body (JSON).
    pub body: String,
}

impl Envelope {
    /// A message with a JSON body.
    pub fn json<T: Serialize>(destination: Destination, body: &T) -> Result<Self, Error> {
        Ok(Envelope {
            destination,
            body: serde_json::to_string(body).map_err(|e| Error::Internal(e.to_string()))?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    messages: Vec<Envelope>,
}

const OUTBOX_INDEX: &str = "OUTBOX";

/// The outbox and the queues it feeds.
pub struct Outbox {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    queues: HashMap<Destination, Arc<dyn Queue>>,
}

/// An outbox entry staged in a transaction, to flush once the transaction commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged(Key);

impl Outbox {
    /// An outbox over the table, delivering to the given queues. A function that only writes
    /// some destinations may leave the others out; flushing a message for a missing queue
    /// fails and leaves the entry to a relay that has it.
    pub fn new(
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        queues: HashMap<Destination, Arc<dyn Queue>>,
    ) -> Self {
        Outbox {
            table,
            clock,
            ids,
            queues,
        }
    }

    /// The transaction operation that records `messages`, and the handle to flush them.
    pub fn stage(&self, messages: Vec<Envelope>) -> Result<(TxOp, Staged), Error> {
        let id = self.ids.ulid().to_string();
        let key = Key::new(format!("OUTBOX#{id}"), "OUTBOX");
        let mut item = crate::codec::to_item(key.clone(), &Entry { messages })?;
        item.gsi1 = Some(Key::new(OUTBOX_INDEX, id));
        Ok((
            TxOp::Put {
                item,
                condition: Some(Condition::NotExists),
            },
            Staged(key),
        ))
    }

    /// Sends a committed entry's messages and deletes it. Failures are logged and left to the
    /// relay: the state change already happened, so the caller's request still succeeds.
    pub async fn flush(&self, staged: Staged) {
        if let Err(e) = self.flush_key(&staged.0).await {
            tracing::warn!(error = %e, entry = %staged.0.pk, "outbox flush failed; the relay will retry");
        }
    }

    async fn flush_key(&self, key: &Key) -> Result<(), Error> {
        let Some(item) = self.table.get(key).await? else {
            return Ok(()); // flushed already (by the writer or the relay)
        };
        let entry: Entry = crate::codec::from_item(item)?;
        let mut by_queue: HashMap<Destination, Vec<QueueMessage>> = HashMap::new();
        for m in entry.messages {
            by_queue
                .entry(m.destination)
                .or_default()
                .push(QueueMessage::new(m.body));
        }
        for (destination, messages) in by_queue {
            let queue = self.queues.get(&destination).ok_or_else(|| {
                Error::Internal(format!("no queue configured for {destination:?}"))
            })?;
            for chunk in messages.chunks(MAX_BATCH) {
                for result in queue.send_batch(chunk.to_vec()).await? {
                    result?;
                }
            }
        }
        self.table.delete(key, None).await?;
        Ok(())
    }

    /// The relay: flushes entries older than `min_age` (younger ones are still being flushed
    /// by their writers), at most `limit` per run. Returns how many were flushed.
    pub async fn sweep(&self, min_age: Duration, limit: u32) -> Result<usize, Error> {
        let cutoff_ms = (self.clock.now().timestamp_millis() - min_age.as_millis() as i64).max(0);
        let cutoff = ulid::Ulid::from_parts(cutoff_ms as u64, 0).to_string();
        let page = self
            .table
            .query(Query {
                range: KeyRange::Between(String::new(), cutoff),
                ..Query::partition(OUTBOX_INDEX)
                    .on_gsi1()
                    .limit(limit.clamp(1, 1000))
            })
            .await?;
        let mut flushed = 0;
        for item in page.items {
            match self.flush_key(&item.key).await {
                Ok(()) => flushed += 1,
                Err(e) => tracing::warn!(error = %e, entry = %item.key.pk, "relay could not flush"),
            }
        }
        Ok(flushed)
    }

    /// Commits `ops` plus the outbox entry for `messages` in one transaction, then flushes.
    /// Port errors come back as they are, so callers can read a cancellation's reasons.
    pub async fn commit(&self, mut ops: Vec<TxOp>, messages: Vec<Envelope>) -> PortResult<()> {
        let staged = if messages.is_empty() {
            None
        } else {
            let (op, staged) = self
                .stage(messages)
                .map_err(|e| PortError::Invalid(e.to_string()))?;
            ops.push(op);
            Some(staged)
        };
        self.table.transact(ops).await?;
        if let Some(s) = staged {
            self.flush(s).await;
        }
        Ok(())
    }
}
