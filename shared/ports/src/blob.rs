//! The blob store port (S3 semantics): objects by key, listing by prefix, presigned reads.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::PortResult;

/// What a listing says of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// Object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// A presigned GET URL and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    /// The URL; anyone holding it may read the object until `expires_at`.
    pub url: String,
    /// Expiry instant.
    pub expires_at: DateTime<Utc>,
}

/// Longest validity a presigned URL may have (S3's limit for SigV4).
pub const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);

/// The blob store.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores an object, replacing any object with the same key.
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> PortResult<()>;

    /// Reads an object; `None` if it does not exist.
    async fn get(&self, key: &str) -> PortResult<Option<Vec<u8>>>;

    /// Copies an object into the local file `to` (created or truncated) a part at a time, so a
    /// file of any size is read without holding it in memory; its size in bytes, or `None` if
    /// it does not exist (then `to` is left untouched).
    async fn download(&self, key: &str, to: &Path) -> PortResult<Option<u64>>;

    /// Lists every object whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> PortResult<Vec<BlobMeta>>;

    /// Deletes an object; deleting an absent object succeeds.
    async fn delete(&self, key: &str) -> PortResult<()>;

    /// A URL that reads the object without credentials until `expires_in` has passed
    /// (at most [`MAX_PRESIGN`]).
    async fn presign_get(&self, key: &str, expires_in: Duration) -> PortResult<Presigned>;
}

/// Checks an object key: non-empty, at most 1024 bytes, no `..` segment, no leading `/`.
pub fn check_key(key: &str) -> PortResult<()> {
    let bad = key.is_empty()
        || key.len() > 1024
        || key.starts_with('/')
        || key.split('/').any(|s| s == ".." || s == ".")
        || key.chars().any(char::is_control);
    if bad {
        Err(crate::PortError::Invalid(format!(
            "invalid object key {key:?}"
        )))
    } else {
        Ok(())
    }
}
