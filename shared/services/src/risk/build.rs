//! snapshot-build: at period close, the period's indicator snapshot built from its indicator
//! inputs (what ingest appended), the newest earlier snapshot (carried forward) and the
//! snapshots 6 and 12 months back (change indicators' bases), by the rule of
//! [`puhui_snapshot::build`], then published through [`SnapshotStore::publish`] (shards first,
//! manifest last). The same inputs and earlier snapshots give the same snapshot, so building a
//! period again is idempotent; a late file for a period is taken in by building it again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use puhui_domain::Error;
use puhui_domain::indicators::CHANGES;
use puhui_domain::risk::Period;
use puhui_ports::BlobStore;
use puhui_snapshot::Writer;
use puhui_snapshot::build::{self, Base};
use serde::{Deserialize, Serialize};

use super::SnapshotStore;

/// Input objects fetched at once (S3 answers each in tens of milliseconds).
const FETCH_CONCURRENCY: usize = 8;

/// What one build did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildReport {
    /// The period built.
    pub period: Period,
    /// Firms in the snapshot.
    pub firms: u64,
    /// Shards written.
    pub shards: u64,
    /// Input objects read.
    pub input_objects: u64,
    /// Input rows read.
    pub input_rows: u64,
    /// Firm × indicator values taken from this period's inputs.
    pub from_inputs: u64,
    /// Change values computed from levels.
    pub computed: u64,
    /// The snapshot carried forward, if any.
    pub previous: Option<Period>,
    /// The base snapshots found for change indicators.
    pub bases: Vec<Period>,
    /// Wall time.
    pub duration_ms: u64,
}

/// Builds and publishes periods' snapshots.
#[derive(Clone)]
pub struct SnapshotBuilder {
    store: SnapshotStore,
    scratch: PathBuf,
}

impl SnapshotBuilder {
    /// The builder over a blob store, writing shards in the system's temporary directory
    /// before they are uploaded.
    pub fn new(blobs: Arc<dyn BlobStore>) -> Self {
        Self::with_scratch(blobs, std::env::temp_dir())
    }

    /// The builder writing shards under `scratch` before they are uploaded.
    pub fn with_scratch(blobs: Arc<dyn BlobStore>, scratch: PathBuf) -> Self {
        SnapshotBuilder {
            store: SnapshotStore::new(blobs),
            scratch,
        }
    }

    /// Builds and publishes the snapshot of `period`. Not found when the period has no inputs
    /// and there is no earlier snapshot (there would be nothing in it).
    pub async fn build(&self, period: Period) -> Result<BuildReport, Error> {
        let started = Instant::now();
        let keys = self.store.input_keys(period).await?;
        // `buffered` keeps key order: the builder's tie rule depends on it.
        // Owned keys and store: a future borrowing from the closure's argument is not `Send`
        // for every lifetime, which a spawned schedule needs.
        let inputs: Vec<_> = futures::stream::iter(keys.clone())
            .map(|k| {
                let store = self.store.clone();
                async move { store.inputs(&k).await }
            })
            .buffered(FETCH_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .flatten()
            .collect();
        let previous = self.store.latest_before(period).await?;
        if inputs.is_empty() && previous.is_none() {
            return Err(Error::NotFound(format!(
                "indicator inputs of {period} (and no earlier snapshot)"
            )));
        }
        let previous_batches = match &previous {
            Some(m) => self.store.all(m, None).await?,
            None => Vec::new(),
        };
        let mut bases = Vec::new();
        let mut months: Vec<u16> = CHANGES.iter().map(|c| c.months).collect();
        months.sort_unstable();
        months.dedup();
        for m in months {
            let levels: Vec<String> = CHANGES
                .iter()
                .filter(|c| c.months == m)
                .map(|c| c.level.to_owned())
                .collect();
            if let Some(manifest) = self.store.find(period.minus(m)).await? {
                bases.push(Base {
                    months: m,
                    batches: self.store.all(&manifest, Some(levels)).await?,
                });
            }
        }
        let base_periods = bases.iter().map(|b| period.minus(b.months)).collect();
        let input_rows = inputs.iter().map(|b| b.num_rows() as u64).sum();
        let dir = self.scratch.join(format!(
            "puhui-snapshot-build-{period}-{}",
            ulid::Ulid::new()
        ));
        let out = dir.clone();
        let built = tokio::task::spawn_blocking(move || {
            let built = build::build(&previous_batches, &inputs, &bases)?;
            drop((previous_batches, inputs, bases));
            let mut w = Writer::create(&out, &period.to_string())?;
            for shard in &built.shards {
                w.write_shard(shard)?;
            }
            w.finish()?;
            Ok::<_, puhui_snapshot::SnapshotError>(built)
        })
        .await
        .map_err(|e| Error::Internal(format!("snapshot builder stopped: {e}")));
        let published = match built {
            Ok(Ok(b)) => self.store.publish(&dir).await.map(|m| (b, m)),
            Ok(Err(e)) => Err(Error::Internal(e.to_string())),
            Err(e) => Err(e),
        };
        // The scratch copy goes whatever happened (Lambda's /tmp outlives the invocation).
        std::fs::remove_dir_all(&dir).ok();
        let (built, manifest) = published?;
        Ok(BuildReport {
            period,
            firms: built.firms as u64,
            shards: manifest.shards.len() as u64,
            input_objects: keys.len() as u64,
            input_rows,
            from_inputs: built.from_inputs,
            computed: built.computed,
            previous: previous.and_then(|m| Period::parse(&m.period).ok()),
            bases: base_periods,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }
}
