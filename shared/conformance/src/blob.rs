//! Blob store behaviour: put, get, list by prefix, delete, and presigned reads.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use puhui_ports::{BlobStore, PortError};

use crate::namespace;

/// Reads a presigned URL the way an outside client would; `None` if refused or absent.
pub type Fetch =
    Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send>> + Send + Sync>;

/// A store under test and a way to follow its presigned URLs.
#[derive(Clone)]
pub struct BlobFixture {
    /// The store.
    pub store: Arc<dyn BlobStore>,
    /// An HTTP GET (or equivalent) of a presigned URL.
    pub fetch: Fetch,
}

/// Expands to one `#[tokio::test]` per blob behaviour, each calling `$make().await`.
#[macro_export]
macro_rules! blob_tests {
    ($make:path) => {
        $crate::blob_tests!(@each $make; blob_round_trip_and_overwrite, list_by_prefix_in_key_order,
            delete_is_idempotent, presigned_url_reads_the_object, bad_keys_are_refused,
            large_binary_objects_survive, download_copies_to_a_local_file);
    };
    (@each $make:path; $($name:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::blob::$name($make().await).await;
            }
        )+
    };
}

/// Bytes read back as written; a second put replaces the first; absent keys read as `None`.
pub async fn blob_round_trip_and_overwrite(f: BlobFixture) {
    let ns = namespace("blob");
    let key = format!("{ns}/a.json");
    f.store
        .put(&key, b"{\"v\":1}".to_vec(), "application/json")
        .await
        .unwrap();
    assert_eq!(
        f.store.get(&key).await.unwrap().as_deref(),
        Some(&b"{\"v\":1}"[..])
    );
    f.store
        .put(&key, b"second".to_vec(), "text/plain")
        .await
        .unwrap();
    assert_eq!(
        f.store.get(&key).await.unwrap().as_deref(),
        Some(&b"second"[..])
    );
    assert_eq!(f.store.get(&format!("{ns}/missing")).await.unwrap(), None);
}

/// Listing returns exactly the keys under the prefix, sorted, with sizes.
pub async fn list_by_prefix_in_key_order(f: BlobFixture) {
    let ns = namespace("list");
    for k in ["b/2.csv", "a/1.csv", "b/1.csv", "bb/3.csv"] {
        f.store
            .put(&format!("{ns}/{k}"), k.as_bytes().to_vec(), "text/csv")
            .await
            .unwrap();
    }
    let listed = f.store.list(&format!("{ns}/b/")).await.unwrap();
    let keys: Vec<_> = listed
        .iter()
        .map(|m| m.key.trim_start_matches(&format!("{ns}/")).to_string())
        .collect();
    assert_eq!(keys, vec!["b/1.csv", "b/2.csv"]);
    assert!(listed.iter().all(|m| m.size == 7));
    assert_eq!(f.store.list(&format!("{ns}/")).await.unwrap().len(), 4);
    assert!(f.store.list(&format!("{ns}/zzz")).await.unwrap().is_empty());
}

/// Deleting removes the object; deleting again succeeds.
pub async fn delete_is_idempotent(f: BlobFixture) {
    let ns = namespace("del");
    let key = format!("{ns}/x");
    f.store
        .put(&key, vec![1, 2, 3], "application/octet-stream")
        .await
        .unwrap();
    f.store.delete(&key).await.unwrap();
    assert_eq!(f.store.get(&key).await.unwrap(), None);
    f.store.delete(&key).await.unwrap();
    assert!(f.store.list(&ns).await.unwrap().is_empty());
}

/// A presigned URL reads the object without credentials and reports its expiry.
pub async fn presigned_url_reads_the_object(f: BlobFixture) {
    let ns = namespace("presign");
    let key = format!("{ns}/export 1.csv");
    f.store
        .put(
            &key,
            "统一社会信用代码\n91350100M000100Y43\n".as_bytes().to_vec(),
            "text/csv",
        )
        .await
        .unwrap();
    let p = f
        .store
        .presign_get(&key, Duration::from_secs(300))
        .await
        .unwrap();
    let left = p.expires_at - puhui_ports::chrono::Utc::now();
    assert!(
        left.num_seconds() > 240 && left.num_seconds() <= 300,
        "expires in {left}"
    );
    assert_eq!(
        (f.fetch)(p.url).await.as_deref(),
        Some("统一社会信用代码\n91350100M000100Y43\n".as_bytes())
    );
    let err = f
        .store
        .presign_get(&key, Duration::from_secs(8 * 24 * 3600))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PortError::Invalid(_)),
        "longer than 7 days: {err:?}"
    );
}

/// Keys that could escape a directory or confuse a listing are refused.
pub async fn bad_keys_are_refused(f: BlobFixture) {
    for key in ["", "/abs", "a/../b", "./a", "a/\u{0}b"] {
        let err = f.store.put(key, vec![1], "text/plain").await.unwrap_err();
        assert!(matches!(err, PortError::Invalid(_)), "{key:?}: {err:?}");
    }
}

/// A few megabytes of arbitrary bytes survive unchanged.
pub async fn large_binary_objects_survive(f: BlobFixture) {
    let ns = namespace("big");
    let bytes: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    f.store
        .put(
            &format!("{ns}/snapshot.parquet"),
            bytes.clone(),
            "application/octet-stream",
        )
        .await
        .unwrap();
    assert_eq!(
        f.store
            .get(&format!("{ns}/snapshot.parquet"))
            .await
            .unwrap(),
        Some(bytes)
    );
}

/// A download writes the object's exact bytes to the local file and returns its size; an
/// absent object is `None` and leaves the file alone.
pub async fn download_copies_to_a_local_file(f: BlobFixture) {
    let ns = namespace("download");
    let key = format!("{ns}/incoming.csv");
    let bytes: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
    f.store.put(&key, bytes.clone(), "text/csv").await.unwrap();
    let dir = std::env::temp_dir().join(format!("puhui-{ns}"));
    std::fs::create_dir_all(&dir).unwrap();
    let to = dir.join("copy");
    std::fs::write(&to, b"stale content longer than nothing").unwrap();
    assert_eq!(
        f.store.download(&key, &to).await.unwrap(),
        Some(bytes.len() as u64)
    );
    assert_eq!(std::fs::read(&to).unwrap(), bytes);
    let untouched = dir.join("untouched");
    std::fs::write(&untouched, b"keep").unwrap();
    assert_eq!(
        f.store
            .download(&format!("{ns}/absent"), &untouched)
            .await
            .unwrap(),
        None
    );
    assert_eq!(std::fs::read(&untouched).unwrap(), b"keep");
    assert!(f.store.download("../escape", &untouched).await.is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
