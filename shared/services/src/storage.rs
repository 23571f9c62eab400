//! The ports shared by use cases that keep documents and files and send messages through the
//! transactional outbox (risk monitoring, scoring): one struct, built one way.

use std::collections::HashMap;
use std::sync::Arc;

use puhui_ports::{BlobStore, Clock, IdGenerator, Queue, Table};

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
