//! A SQLite connection shared by async callers: opened with the settings every store needs, and
//! used from blocking threads so the async runtime never waits on disk or locks.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, mpsc};
use std::time::Duration;

use puhui_ports::{PortError, PortResult};
use rusqlite::{Connection, ErrorCode};

/// How long a writer waits for another connection's write transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One connection behind a mutex (`rusqlite::Connection` is `Send` but not `Sync`), the WAL's
/// size as the checkpointer last saw it, and the handle that keeps the checkpointer running
/// (dropping the last clone stops it).
#[derive(Clone)]
pub(crate) struct Db {
    conn: Arc<Mutex<Connection>>,
    wal_frames: Arc<AtomicI64>,
    _checkpointer: Arc<mpsc::Sender<()>>,
}

/// How often the background checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// WAL frames (4 KiB pages) past which the connection rewinds the WAL (about 16 MiB).
///
/// The background checkpointer's passive passes never let the WAL rewind under a steady stream
/// of writes: a writer rewinds only when every frame has been copied back, and each pass ends
/// behind the writes made during it. The WAL then grows without end and every page read
/// searches its index, so the whole store slows with it (1.5 GB and a doubled p99 after a minute
/// at 1,000 queries a second). A `RESTART` checkpoint from the background thread does rewind,
/// but it holds writers back while it waits for readers (p99 200 ms). So once the WAL is past
/// this size, the serving connection itself checkpoints between two calls: it is the only
/// reader and writer, so the pass copies the few frames the background left, without waiting,
/// and its next write starts the WAL from the beginning.
const REWIND_AFTER_FRAMES: i64 = 4096;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

/// Bytes the WAL file is cut back to when it is rewound (`journal_size_limit`).
const WAL_SIZE_LIMIT: i64 = 32 * 1024 * 1024;

/// Starts a thread with its own connection that checkpoints the WAL passively (never blocking
/// readers or writers) and publishes the WAL's frame count, until the returned sender is dropped.
fn spawn_checkpointer(path: &Path, wal_frames: Arc<AtomicI64>) -> PortResult<mpsc::Sender<()>> {
    let conn = Connection::open(path).map_err(db_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(CHECKPOINT_EVERY) {
                match passive_checkpoint(&conn) {
                    Ok(frames) => wal_frames.store(frames, Ordering::Relaxed),
                    Err(e) => tracing::debug!(error = %e, "checkpoint skipped"),
                }
            }
        })
        .map_err(|e| PortError::Backend(format!("cannot start the checkpointer: {e}")))?;
    Ok(tx)
}

/// One passive checkpoint pass; returns the WAL's frame count.
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        row.get::<_, i64>(1)
    })
}

impl Db {
    /// Opens (creating if needed) the file and applies `schema`.
    pub(crate) fn open(path: &Path, schema: &str) -> PortResult<Db> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| PortError::Backend(format!("creating {}: {e}", parent.display())))?;
        }
        let conn = Connection::open(path).map_err(db_err)?;
        // The busy timeout first, so the WAL switch and schema creation wait for other openers.
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(db_err)?;
        // In WAL mode NORMAL is durable against application crashes, which is what a local backend needs.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        // Checkpoints (copying the WAL back and syncing the file) would otherwise run inside
        // whichever commit crosses the threshold, adding a disk sync to that request; a
        // background thread does them instead.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(db_err)?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .map_err(db_err)?;
        conn.execute_batch(schema).map_err(db_err)?;
        // Room for every statement shape the stores use (keys, ranges, cursors, page sizes), so
        // none is parsed again on the serving path.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let wal_frames = Arc::new(AtomicI64::new(0));
        let stop = spawn_checkpointer(path, wal_frames.clone())?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
            wal_frames,
            _checkpointer: Arc::new(stop),
        })
    }

    /// Runs `f` with the connection on the calling thread (setup, outside the async paths).
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> PortResult<T>,
    ) -> PortResult<T> {
        f(&mut self.lock())
    }

    /// Runs `f` with the connection: right here when the connection is free, else on a
    /// blocking thread once it is.
    ///
    /// Every store call is bounded (one item, one page, or a transaction of at most 25 items)
    /// and SQLite answers it in tens of microseconds from the page cache, less than handing it
    /// to another thread costs: at 1,000 queries a second the four hand-offs of each query were
    /// a fifth of the runner's time and most of its tail latency. A call that would wait for the
    /// lock is handed off instead, so an async worker never waits behind another call.
    pub(crate) async fn call<T, F>(&self, f: F) -> PortResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> PortResult<T> + Send + 'static,
    {
        let f = match self.try_here(f) {
            Ok(out) => return out,
            Err(f) => f,
        };
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let out = f(&mut db.lock());
            db.rewind_if_due();
            out
        })
        .await
        .map_err(|e| PortError::Backend(format!("blocking task failed: {e}")))?
    }

    /// Runs `f` on this thread if the connection is free; gives `f` back if it is not.
    fn try_here<T, F>(&self, f: F) -> Result<PortResult<T>, F>
    where
        F: FnOnce(&mut Connection) -> PortResult<T>,
    {
        let mut conn = match self.conn.try_lock() {
            Ok(guard) => guard,
            // A panic while holding the lock dropped its transaction, which rolled back: the
            // connection is still consistent, so a poisoned lock is safe to reuse.
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(f),
        };
        let out = f(&mut conn);
        drop(conn);
        if self.wal_frames.load(Ordering::Relaxed) > REWIND_AFTER_FRAMES {
            // The rewind copies what the background pass left (up to a few MiB): that is
            // blocking-pool work, not this request's.
            let db = self.clone();
            tokio::task::spawn_blocking(move || db.rewind());
        }
        Ok(out)
    }

    /// The connection, waiting for it (a poisoned lock is safe to reuse: see [`Db::call`]).
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rewinds the WAL if the background pass reports it past [`REWIND_AFTER_FRAMES`].
    fn rewind_if_due(&self) {
        if self.wal_frames.load(Ordering::Relaxed) > REWIND_AFTER_FRAMES {
            self.rewind();
        }
    }

    /// One checkpoint on the serving connection, so its next write starts the WAL over (see
    /// [`REWIND_AFTER_FRAMES`]). Busy (the background pass is running) is fine: a later call
    /// tries again.
    fn rewind(&self) {
        let conn = self.lock();
        if self.wal_frames.load(Ordering::Relaxed) <= REWIND_AFTER_FRAMES {
            return; // another call rewound it meanwhile
        }
        match passive_checkpoint(&conn) {
            Ok(_) => self.wal_frames.store(0, Ordering::Relaxed),
            Err(e) => tracing::debug!(error = %e, "rewinding checkpoint skipped"),
        }
    }
}

/// Maps a SQLite error: lock contention is retryable, anything else is a backend error.
pub(crate) fn db_err(e: rusqlite::Error) -> PortError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            PortError::Unavailable(e.to_string())
        }
        _ => PortError::Backend(e.to_string()),
    }
}
