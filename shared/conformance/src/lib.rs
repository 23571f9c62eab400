//! The conformance suite of the Puhui ports: the behaviour every adapter must have, written once.
//!
//! Each adapter's test crate expands the macros with a constructor, so the same tests run against
//! the embedded adapter and against the AWS adapter (on a local AWS-API server):
//!
//! ```ignore
//! puhui_conformance::table_tests!(crate::table);   // async fn table() -> Arc<dyn Table>
//! puhui_conformance::blob_tests!(crate::blobs);    // async fn blobs() -> BlobFixture
//! puhui_conformance::queue_tests!(crate::queues);  // async fn queues() -> QueueFixture
//! ```
//!
//! Tests share one table, bucket or queue set; each works in its own random key space.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test suite: a failed unwrap is a failed test.

pub mod blob;
pub mod queue;
pub mod table;

pub use blob::BlobFixture;
pub use queue::QueueFixture;

/// A fresh random namespace for one test's keys.
pub fn namespace(test: &str) -> String {
    format!("{test}-{}", ulid::Ulid::new())
}
