//! The ports shared by use cases that keep documents and files and send messages through the
//! transactional outbox (risk monitoring, scoring): one struct, built one way.

use std::collections::HashMap;
use std::sync::Arc;

use puhui_domain::Error;
use puhui_ports::{
    BlobStore, Clock, Condition, IdGenerator, Item, Key, PortError, Queue, Table, TxOp, Update,
};

use crate::outbox::{Destination, Outbox};

/// Table, blob store, clock, ids, and an outbox writing through the same table.
#[derive(Clone)]
pub struct StoragePorts {
    /// The document table.
    pub table: Arc<dyn Table>,
    /// The blob store.
    pub blobs: Arc<dyn BlobStore>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Id source.
    pub ids: Arc<dyn IdGenerator>,
    /// Where messages are staged with the state changes that cause them.
    pub outbox: Arc<Outbox>,
}

impl StoragePorts {
    /// The ports, with an outbox over `table` delivering to `queues`.
    pub fn new(
        table: Arc<dyn Table>,
        blobs: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        queues: HashMap<Destination, Arc<dyn Queue>>,
    ) -> Self {
        StoragePorts {
            outbox: Arc::new(Outbox::new(
                table.clone(),
                clock.clone(),
                ids.clone(),
                queues,
            )),
            table,
            blobs,
            clock,
            ids,
        }
    }
}

/// The items of chunk `chunk` of a job split into chunks of `size` (empty past the end).
pub fn chunk_of<T>(all: &[T], chunk: u64, size: usize) -> &[T] {
    let start = usize::try_from(chunk)
        .unwrap_or(usize::MAX)
        .saturating_mul(size);
    all.get(start..start.saturating_add(size).min(all.len()))
        .unwrap_or(&[])
}

/// Records a job's chunk as done (`marker`, put only if absent) and adds its counts to the job
/// (which must exist) in one transaction, so a chunk counts once however often it is delivered.
/// True when this call counted it; false when an earlier delivery had.
pub async fn count_chunk_once(
    table: &dyn Table,
    marker: Item,
    job: Key,
    add: Vec<(String, i64)>,
) -> Result<bool, Error> {
    let ops = vec![
        TxOp::Put {
            item: marker,
            condition: Some(Condition::NotExists),
        },
        TxOp::Update {
            key: job,
            update: Update {
                add,
                ..Update::default()
            },
            condition: Some(Condition::Exists),
        },
    ];
    match table.transact(ops).await {
        Ok(()) => Ok(true),
        // The marker exists: an earlier delivery counted this chunk.
        Err(PortError::TransactionCancelled { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::chunk_of;

    #[test]
    fn chunks_cover_every_item_once() {
        let all: Vec<u32> = (0..250).collect();
        assert_eq!(chunk_of(&all, 0, 100), &all[..100]);
        assert_eq!(chunk_of(&all, 2, 100), &all[200..]);
        assert!(chunk_of(&all, 3, 100).is_empty());
        assert!(chunk_of(&all, u64::MAX, 100).is_empty());
    }
}
