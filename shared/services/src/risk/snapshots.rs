//! Indicator snapshots in the blob store: `snapshots/<period>/manifest.json` and its shards, in
//! the format of `puhui-snapshot` (one definition of the schema); and the periods' indicator
//! inputs they are built from, `indicator-inputs/<period>/<source>/<date>/<file>.parquet`.

use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use puhui_domain::Error;
use puhui_domain::risk::Period;
use puhui_ports::BlobStore;
use puhui_snapshot::{MANIFEST, Manifest, SnapshotError};

use crate::ingest::BlobPath;

/// Key prefix of every snapshot.
pub const SNAPSHOTS: &str = "snapshots/";
/// Key prefix of the periods' indicator inputs.
pub const INPUTS: &str = "indicator-inputs/";

/// Reads (and, for samplekit and ingest, publishes) snapshots.
#[derive(Clone)]
pub struct SnapshotStore {
    blobs: Arc<dyn BlobStore>,
}

impl SnapshotStore {
    /// The store over a blob store.
    pub fn new(blobs: Arc<dyn BlobStore>) -> Self {
        SnapshotStore { blobs }
    }

    /// The blob key of a file of the period's snapshot.
    pub fn key(period: Period, file: &str) -> String {
        format!("{SNAPSHOTS}{period}/{file}")
    }

    /// The newest period with a manifest (a snapshot without one is still being written).
    pub async fn latest(&self) -> Result<Option<Manifest>, Error> {
        self.newest(None).await
    }

    /// The newest snapshot of a period before `period`.
    pub async fn latest_before(&self, period: Period) -> Result<Option<Manifest>, Error> {
        self.newest(Some(period)).await
    }

    /// The period's manifest, or `None` when the period has no (finished) snapshot.
    pub async fn find(&self, period: Period) -> Result<Option<Manifest>, Error> {
        match self.manifest(period).await {
            Ok(m) => Ok(Some(m)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn newest(&self, before: Option<Period>) -> Result<Option<Manifest>, Error> {
        let newest = self
            .blobs
            .list(SNAPSHOTS)
            .await?
            .into_iter()
            .filter_map(|b| {
                let rest = b.key.strip_prefix(SNAPSHOTS)?;
                let (period, file) = rest.split_once('/')?;
                (file == MANIFEST).then(|| Period::parse(period).ok())?
            })
            .filter(|p| before.is_none_or(|b| *p < b))
            .max();
        match newest {
            Some(p) => self.manifest(p).await.map(Some),
            None => Ok(None),
        }
    }

    /// The period's manifest, checked.
    pub async fn manifest(&self, period: Period) -> Result<Manifest, Error> {
        let key = Self::key(period, MANIFEST);
        let bytes = self
            .blobs
            .get(&key)
            .await?
            .ok_or_else(|| Error::NotFound(format!("snapshot {period}")))?;
        let m = puhui_snapshot::parse_manifest(&bytes, &key).map_err(internal)?;
        if m.period != period.to_string() {
            return Err(Error::Internal(format!("{key} names period {}", m.period)));
        }
        Ok(m)
    }

    /// One shard's rows, with only the indicator `columns` given (all when `None`) besides
    /// `uscc`. A missing or malformed shard is an error naming it.
    pub async fn shard(
        &self,
        period: Period,
        file: &str,
        columns: Option<Vec<String>>,
    ) -> Result<Vec<RecordBatch>, Error> {
        let key = Self::key(period, file);
        let bytes =
            self.blobs.get(&key).await?.ok_or_else(|| {
                Error::Internal(format!("{key}: listed in the manifest but absent"))
            })?;
        // Decoding is CPU work: off the async workers.
        tokio::task::spawn_blocking(move || {
            puhui_snapshot::read_shard_bytes(bytes.into(), &key, columns.as_deref())
        })
        .await
        .map_err(|e| Error::Internal(format!("shard reader stopped: {e}")))?
        .map_err(internal)
    }

    /// Every shard's rows, in manifest order (columns as in [`SnapshotStore::shard`]).
    pub async fn all(
        &self,
        m: &Manifest,
        columns: Option<Vec<String>>,
    ) -> Result<Vec<RecordBatch>, Error> {
        let period = Period::parse(&m.period).map_err(|e| Error::Internal(e.message))?;
        let mut out = Vec::new();
        for s in &m.shards {
            out.extend(self.shard(period, &s.path, columns.clone()).await?);
        }
        Ok(out)
    }

    /// Uploads a snapshot folder written by `puhui_snapshot::Writer`: shards first, the manifest
    /// last, so a reader never sees a manifest whose shards are not there yet.
    pub async fn publish(&self, dir: &Path) -> Result<Manifest, Error> {
        let m = Manifest::load(dir).map_err(internal)?;
        let period = Period::parse(&m.period).map_err(|e| Error::Internal(e.message))?;
        for s in &m.shards {
            let bytes = std::fs::read(dir.join(&s.path))
                .map_err(|e| Error::Internal(format!("{}: {e}", s.path)))?;
            self.blobs
                .put(
                    &Self::key(period, &s.path),
                    bytes,
                    "application/vnd.apache.parquet",
                )
                .await?;
        }
        let manifest = serde_json::to_vec(&m).map_err(|e| Error::Internal(e.to_string()))?;
        self.blobs
            .put(&Self::key(period, MANIFEST), manifest, "application/json")
            .await?;
        Ok(m)
    }
}

impl SnapshotStore {
    /// The key of the inputs one ingested file gives a period: the file's identity, so a
    /// re-ingest overwrites them.
    pub fn input_key(period: Period, file: &BlobPath) -> String {
        format!(
            "{INPUTS}{period}/{}/{}/{}.parquet",
            file.source, file.date, file.file
        )
    }

    /// Stores the inputs one ingested file gives a period, encoded as
    /// [`puhui_snapshot::build::InputWriter`] encodes them.
    pub async fn put_inputs(
        &self,
        period: Period,
        file: &BlobPath,
        bytes: Vec<u8>,
    ) -> Result<(), Error> {
        self.blobs
            .put(
                &Self::input_key(period, file),
                bytes,
                "application/vnd.apache.parquet",
            )
            .await?;
        Ok(())
    }

    /// The keys of the period's inputs, in key order (the builder's fixed input order).
    pub async fn input_keys(&self, period: Period) -> Result<Vec<String>, Error> {
        let mut keys: Vec<String> = self
            .blobs
            .list(&format!("{INPUTS}{period}/"))
            .await?
            .into_iter()
            .map(|b| b.key)
            .filter(|k| k.ends_with(".parquet"))
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// One input object's rows; a missing or malformed object is an error naming it.
    pub async fn inputs(&self, key: &str) -> Result<Vec<RecordBatch>, Error> {
        let bytes = self
            .blobs
            .get(key)
            .await?
            .ok_or_else(|| Error::Internal(format!("{key}: listed but absent")))?;
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || {
            puhui_snapshot::build::read_input_bytes(bytes.into(), &key)
        })
        .await
        .map_err(|e| Error::Internal(format!("input reader stopped: {e}")))?
        .map_err(internal)
    }
}

fn internal(e: SnapshotError) -> Error {
    Error::Internal(e.to_string())
}
