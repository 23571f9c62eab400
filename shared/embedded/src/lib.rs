//! Puhui embedded adapter: the default local backend, with no external services. It implements
//! the ports with the semantics of the production AWS services, proven by the same conformance
//! suite (`puhui-conformance`):
//!
//! - [`SqliteTable`] — the document table (DynamoDB semantics) in a SQLite file.
//! - [`SqliteQueue`] — queues with visibility timeouts and dead-letter queues (SQS semantics) in
//!   a SQLite file (the table's file or another).
//! - [`LocalBlobStore`] — objects (S3 semantics) as files under a directory, with presigned
//!   URLs signed by HMAC-SHA256 and served by the local runner through
//!   [`LocalBlobStore::open_presigned`].
//!
//! # SQLite schema
//!
//! Every connection runs in WAL mode with a busy timeout, and every conditional write is a
//! `BEGIN IMMEDIATE` transaction that reads the item, evaluates the condition in Rust and writes,
//! so writers in other tasks, connections or processes never interleave.
//!
//! ```sql
//! -- The table: one row per item; attributes are kept as JSON text, exactly as given.
//! CREATE TABLE items (
//!     pk TEXT NOT NULL, sk TEXT NOT NULL,      -- primary key, compared byte-wise (BINARY)
//!     gsi1pk TEXT, gsi1sk TEXT,                -- secondary-index key; NULL keeps the item out
//!     version INTEGER NOT NULL,
//!     expires_at INTEGER,                      -- seconds since the epoch (TTL), or NULL
//!     attrs TEXT NOT NULL,                     -- JSON object without the reserved names
//!     PRIMARY KEY (pk, sk)
//! ) WITHOUT ROWID;
//! CREATE INDEX items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;
//!
//! -- Queues: their redrive policy, their messages (in send order) and FIFO dedup records.
//! CREATE TABLE queues (name TEXT PRIMARY KEY, fifo INTEGER, max_receives INTEGER, dead_letter TEXT);
//! CREATE TABLE queue_messages (
//!     seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- send order
//!     queue TEXT, id TEXT, body TEXT, group_id TEXT,
//!     sent_at INTEGER, visible_at INTEGER,     -- milliseconds since the epoch
//!     receive_count INTEGER, receipt TEXT      -- receipt: fresh random token per delivery
//! );
//! CREATE TABLE queue_dedup (queue TEXT, dedup_id TEXT, message_id TEXT, sent_at INTEGER,
//!                           PRIMARY KEY (queue, dedup_id));
//! ```
//!
//! # Blob layout
//!
//! Object key `a/b/c.csv` is the file `<root>/a.d/b.d/c.csv.blob`. The suffixes keep a key and
//! its "sub-keys" (`a` and `a/b`, both legal in S3) from colliding as file and directory; files
//! are written to a temporary name and renamed, so readers never see half an object.

mod blob;
mod queue;
mod sqlite;
mod table;

pub use blob::{LocalBlobStore, PresignError};
pub use queue::{QueueConfig, SqliteQueue};
pub use table::SqliteTable;
