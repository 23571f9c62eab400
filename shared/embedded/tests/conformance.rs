//! The ports' conformance suite against the embedded adapter.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use puhui_conformance::{BlobFixture, QueueFixture};
use puhui_embedded::{LocalBlobStore, QueueConfig, SqliteQueue, SqliteTable};
use puhui_ports::{Clock, Queue, SystemClock, Table};

/// One directory per test binary; every test opens its own connections on the shared files,
/// which also exercises locking between connections.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        std::env::temp_dir().join(format!("puhui-embedded-conformance-{}", ulid::Ulid::new()))
    })
}

async fn table() -> Arc<dyn Table> {
    Arc::new(SqliteTable::open(dir().join("table.db")).unwrap())
}

const BASE_URL: &str = "http://127.0.0.1:1/local";

async fn blobs() -> BlobFixture {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(LocalBlobStore::new(
        dir().join("blobs"),
        BASE_URL.into(),
        b"conformance secret".to_vec(),
        clock,
    ));
    let reader = store.clone();
    BlobFixture {
        store,
        fetch: Arc::new(move |url: String| {
            let reader = reader.clone();
            Box::pin(async move {
                let path_and_query = url.strip_prefix(BASE_URL)?;
                reader.open_presigned(path_and_query).await.ok()
            })
        }),
    }
}

async fn queues() -> QueueFixture {
    let (path, ns, clock) = (
        dir().join("queues.db"),
        ulid::Ulid::new(),
        Arc::new(SystemClock),
    );
    let main = SqliteQueue::open(
        &path,
        &format!("main-{ns}"),
        QueueConfig {
            max_receives: 2,
            fifo: false,
        },
        clock.clone(),
    )
    .unwrap();
    let fifo = SqliteQueue::open(
        &path,
        &format!("fifo-{ns}"),
        QueueConfig {
            max_receives: 5,
            fifo: true,
        },
        clock,
    )
    .unwrap();
    let dead_letter: Arc<dyn Queue> = Arc::new(main.dead_letter());
    QueueFixture {
        main: Arc::new(main),
        dead_letter,
        max_receives: 2,
        fifo: Arc::new(fifo),
    }
}

puhui_conformance::table_tests!(table);
puhui_conformance::blob_tests!(blobs);
puhui_conformance::queue_tests!(queues);
