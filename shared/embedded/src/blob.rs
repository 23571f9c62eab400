//! [`LocalBlobStore`]: the blob store port on a local directory, with S3 semantics and
//! presigned URLs that the local runner serves.

mod paths;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::DateTime;
use hmac::{Hmac, Mac};
use puhui_ports::blob::{MAX_PRESIGN, check_key};
use puhui_ports::{BlobMeta, BlobStore, Clock, PortError, PortResult, Presigned};
use sha2::Sha256;

use paths::{decode_key, encode_key, object_path, temp_name, walk};

type HmacSha256 = Hmac<Sha256>;

/// Objects as files under a root directory.
#[derive(Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
    base_url: String,
    secret: Vec<u8>,
    clock: Arc<dyn Clock>,
}

/// Why a presigned URL was not served.
#[derive(Debug, thiserror::Error)]
pub enum PresignError {
    /// The URL is not one this store produced (bad path, encoding or query).
    #[error("malformed presigned URL: {0}")]
    Malformed(String),
    /// The signature does not match the key and expiry.
    #[error("bad signature")]
    BadSignature,
    /// The URL's validity has passed.
    #[error("presigned URL expired")]
    Expired,
    /// The object does not exist (any more).
    #[error("object not found")]
    NotFound,
    /// Reading the object failed.
    #[error("reading the object: {0}")]
    Io(#[from] std::io::Error),
}

impl LocalBlobStore {
    /// A store under `root` whose presigned URLs start with `base_url` and are signed with `secret`.
    pub fn new(
        root: PathBuf,
        base_url: String,
        secret: Vec<u8>,
        clock: Arc<dyn Clock>,
    ) -> LocalBlobStore {
        let base_url = base_url.trim_end_matches('/').to_owned();
        LocalBlobStore {
            root,
            base_url,
            secret,
            clock,
        }
    }

    /// Serves a presigned URL's path and query (`/blobs/{key}?expires=..&signature=..`):
    /// checks the signature, then the expiry, then reads the object.
    pub async fn open_presigned(&self, path_and_query: &str) -> Result<Vec<u8>, PresignError> {
        let (key, expires, signature) = parse_presigned(path_and_query)?;
        if !verify(&self.secret, &key, expires, &signature) {
            return Err(PresignError::BadSignature);
        }
        if self.clock.now().timestamp() >= expires {
            return Err(PresignError::Expired);
        }
        // We signed it, so the key passed `check_key`; checking again costs nothing and keeps
        // this path safe even if the secret leaks.
        check_key(&key).map_err(|e| PresignError::Malformed(e.to_string()))?;
        let path = object_path(&self.root, &key);
        match blocking(move || std::fs::read(path)).await.and_then(|r| r) {
            Ok(bytes) => Ok(bytes),
            Err(e) if is_absent(&e) => Err(PresignError::NotFound),
            Err(e) => Err(PresignError::Io(e)),
        }
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> PortResult<()> {
        // The content type is not kept: reads return bytes only, and the runner serves them as
        // octet-stream.
        check_key(key)?;
        let path = object_path(&self.root, key);
        blocking(move || write_atomically(&path, &bytes))
            .await
            .and_then(|r| r)
            .map_err(io_err)
    }

    async fn get(&self, key: &str) -> PortResult<Option<Vec<u8>>> {
        check_key(key)?;
        let path = object_path(&self.root, key);
        match blocking(move || std::fs::read(path)).await.and_then(|r| r) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    async fn download(&self, key: &str, to: &Path) -> PortResult<Option<u64>> {
        check_key(key)?;
        let (from, to) = (object_path(&self.root, key), to.to_owned());
        match blocking(move || std::fs::copy(from, to))
            .await
            .and_then(|r| r)
        {
            Ok(size) => Ok(Some(size)),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    async fn list(&self, prefix: &str) -> PortResult<Vec<BlobMeta>> {
        let (root, prefix) = (self.root.clone(), prefix.to_owned());
        let mut listed = blocking(move || {
            let mut out = Vec::new();
            walk(&root, "", &prefix, &mut out).map(|()| out)
        })
        .await
        .and_then(|r| r)
        .map_err(io_err)?;
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    async fn delete(&self, key: &str) -> PortResult<()> {
        check_key(key)?;
        let path = object_path(&self.root, key);
        match blocking(move || std::fs::remove_file(path))
            .await
            .and_then(|r| r)
        {
            Err(e) if !is_absent(&e) => Err(io_err(e)),
            _ => Ok(()),
        }
    }

    async fn presign_get(&self, key: &str, expires_in: Duration) -> PortResult<Presigned> {
        check_key(key)?;
        if expires_in > MAX_PRESIGN {
            return Err(PortError::Invalid(format!(
                "presigned URLs last at most {} s",
                MAX_PRESIGN.as_secs()
            )));
        }
        let secs = i64::try_from(expires_in.as_secs())
            .map_err(|_| PortError::Invalid("expiry too far".into()))?;
        let expires = self.clock.now().timestamp().saturating_add(secs);
        let expires_at = DateTime::from_timestamp(expires, 0)
            .ok_or_else(|| PortError::Invalid("expiry out of range".into()))?;
        let signature = hex::encode(mac(&self.secret, key, expires)?.finalize().into_bytes());
        let url = format!(
            "{}/blobs/{}?expires={expires}&signature={signature}",
            self.base_url,
            encode_key(key)
        );
        Ok(Presigned { url, expires_at })
    }
}

/// Writes to a temporary file beside `path` and renames it over `path`, so a reader sees the
/// old object or the new one, never a part.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("object path has no directory"))?;
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(temp_name());
    let written = std::fs::File::create(&temp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_data()
    });
    let renamed = written.and_then(|()| std::fs::rename(&temp, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&temp); // best effort: the write already failed
    }
    renamed
}

/// The MAC over what a presigned URL grants: one key until one instant.
fn mac(secret: &[u8], key: &str, expires: i64) -> PortResult<HmacSha256> {
    // HMAC accepts keys of any length; the error exists only for other MACs.
    let mut mac = HmacSha256::new_from_slice(secret)
        .map_err(|e| PortError::Backend(format!("signing key: {e}")))?;
    mac.update(key.as_bytes());
    mac.update(b"\n");
    mac.update(expires.to_string().as_bytes());
    Ok(mac)
}

/// Checks a signature in constant time.
fn verify(secret: &[u8], key: &str, expires: i64, signature: &[u8]) -> bool {
    mac(secret, key, expires).is_ok_and(|m| m.verify_slice(signature).is_ok())
}

/// Splits `/blobs/{key}?expires=..&signature=..` into the key, the expiry and the raw signature.
fn parse_presigned(path_and_query: &str) -> Result<(String, i64, Vec<u8>), PresignError> {
    let malformed = |what: &str| PresignError::Malformed(what.to_owned());
    let (path, query) = path_and_query
        .split_once('?')
        .ok_or_else(|| malformed("no query"))?;
    let encoded = path
        .strip_prefix("/blobs/")
        .ok_or_else(|| malformed("not a /blobs/ path"))?;
    let key = decode_key(encoded).ok_or_else(|| malformed("bad key encoding"))?;
    let (mut expires, mut signature) = (None, None);
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("expires", v)) => {
                expires = Some(v.parse::<i64>().map_err(|_| malformed("bad expires"))?)
            }
            Some(("signature", v)) => {
                signature = Some(hex::decode(v).map_err(|_| malformed("bad signature encoding"))?)
            }
            _ => {}
        }
    }
    match (expires, signature) {
        (Some(e), Some(s)) => Ok((key, e, s)),
        _ => Err(malformed("expires and signature are required")),
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, std::io::Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)
}

/// Whether an error means the object is not there (including a missing parent directory, or a
/// path component that is a file).
fn is_absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

/// Maps a file error: a name the filesystem refuses (too long) is an invalid key.
fn io_err(e: std::io::Error) -> PortError {
    match e.kind() {
        std::io::ErrorKind::InvalidFilename => {
            PortError::Invalid(format!("object key unusable as a file name: {e}"))
        }
        _ => PortError::Backend(e.to_string()),
    }
}
