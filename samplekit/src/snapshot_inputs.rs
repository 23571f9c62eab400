//! A month's worth of indicator inputs at region scale, put in a blob store under the keys
//! ingest and snapshot-build use, for the snapshot-build benchmark: the previous month's snapshot (a
//! synthetic one, [`crate::snapshot::write`]), the same firms' snapshots 6 and 12 months back
//! (the change indicators' bases), and this month's inputs — every source of the catalogue that
//! feeds indicators, delivering for 90% of the firms (plus 1% new firms) in files of
//! [`FILE_ROWS`] rows, with values from the synthetic firm generator.

use std::path::Path;
use std::sync::Arc;

use puhui_domain::indicators;
use puhui_domain::risk::Period;
use puhui_domain::sources::SourceCatalogue;
use puhui_ports::BlobStore;
use puhui_services::ingest::BlobPath;
use puhui_services::risk::SnapshotStore;
use puhui_snapshot::build::{InputRows, SHARD_ROWS, write_input_bytes};
use puhui_snapshot::{MANIFEST, Manifest, Snapshot};
use serde_json::Value;

use crate::Failure;
use crate::data::{self, Rng};
use crate::snapshot::{Cell, firm};

/// Rows per generated input file (a department's file for part of the region).
pub const FILE_ROWS: usize = 250_000;

/// What was generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// Firms in the previous snapshot.
    pub firms: u64,
    /// Input files written.
    pub files: u64,
    /// Input rows written.
    pub rows: u64,
}

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure(e.to_string())
}

/// Puts the blobs for building `period` in `blobs`, staging the snapshots' files under
/// `scratch` (removed at the end).
pub async fn generate(
    blobs: Arc<dyn BlobStore>,
    scratch: &Path,
    firms: usize,
    seed: u64,
    period: Period,
) -> Result<Generated, Failure> {
    let store = SnapshotStore::new(blobs.clone());
    let previous = scratch.join(period.minus(1).to_string());
    let shards = firms.div_ceil(SHARD_ROWS).max(1);
    let m = crate::snapshot::write(&previous, firms, seed, shards, &period.minus(1).to_string())?;
    store.publish(&previous).await.map_err(fail)?;
    // The bases: the same firms and values under earlier periods (a change computed against
    // them is 0, which is all the benchmark needs).
    for months in [6, 12] {
        let p = period.minus(months).to_string();
        let base = Manifest {
            period: p,
            ..m.clone()
        };
        let json = serde_json::to_vec(&base).map_err(fail)?;
        std::fs::write(previous.join(MANIFEST), json).map_err(fail)?;
        store.publish(&previous).await.map_err(fail)?;
    }

    let snap = Snapshot::open(&previous).map_err(fail)?;
    let mut codes: Vec<String> = Vec::with_capacity(firms + firms / 100);
    for part in &snap.parts {
        for b in snap.read_columns(part, &[], true).map_err(fail)? {
            let a = arrow_array::cast::AsArray::as_string::<i32>(b.column(0));
            codes.extend(a.iter().flatten().map(str::to_owned));
        }
    }
    let mut rng = Rng::new(seed ^ 0x5eed);
    for _ in 0..firms / 100 {
        let division = *rng.pick(data::NINGBO_DISTRICTS);
        codes.push(data::uscc(&mut rng, division));
    }

    let as_of = chrono::NaiveDate::from_ymd_opt(
        period.to_string()[..4].parse().map_err(fail)?,
        period.to_string()[5..].parse().map_err(fail)?,
        1,
    )
    .ok_or_else(|| Failure(format!("no first day of {period}")))?;
    let mut generated = Generated {
        firms: m.total_rows,
        files: 0,
        rows: 0,
    };
    for source in &SourceCatalogue::builtin().sources {
        let ids: Vec<&'static str> = source
            .fields
            .iter()
            .filter_map(|f| indicators::find(f.target.as_deref()?).map(|i| i.id))
            .collect();
        if ids.is_empty() {
            continue;
        }
        let delivering: Vec<&String> = codes.iter().filter(|_| rng.below(10) != 0).collect();
        for (n, chunk) in delivering.chunks(FILE_ROWS).enumerate() {
            let mut rows = InputRows::new();
            for code in chunk {
                let values: Vec<(&str, Value)> = firm(&mut rng)
                    .into_iter()
                    .filter(|(id, _)| ids.contains(id))
                    .map(|(id, c)| (id, json(c)))
                    .collect();
                // Deliveries spread over the month.
                let day = as_of + chrono::Duration::days(i64::from(rng.below(28) as u32));
                rows.push(code, day, values.iter().map(|(k, v)| (*k, v)));
            }
            generated.rows += rows.len() as u64;
            let batch = rows.finish().map_err(fail)?;
            let bytes = write_input_bytes(&[batch]).map_err(fail)?;
            let file = BlobPath {
                source: source.id.clone(),
                date: as_of,
                file: format!("part-{n:03}.csv"),
            };
            blobs
                .put(
                    &SnapshotStore::input_key(period, &file),
                    bytes,
                    "application/vnd.apache.parquet",
                )
                .await
                .map_err(fail)?;
            generated.files += 1;
        }
    }
    std::fs::remove_dir_all(scratch).ok();
    Ok(generated)
}

fn json(c: Cell) -> Value {
    match c {
        Cell::Int(x) => Value::from(x),
        Cell::Ratio(x) => Value::from(x),
        Cell::Bool(b) => Value::Bool(b),
        Cell::Label(s) => Value::from(s),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn inputs_cover_the_fed_indicators_of_most_firms_in_the_period() {
        let root = std::env::temp_dir().join(format!("samplekit-inputs-{}", std::process::id()));
        std::fs::remove_dir_all(&root).ok();
        let blobs: Arc<dyn BlobStore> = Arc::new(puhui_embedded::LocalBlobStore::new(
            root.join("blobs"),
            "http://127.0.0.1/blobs".into(),
            b"t".to_vec(),
            Arc::new(puhui_ports::SystemClock),
        ));
        let period = Period::parse("2026-10").unwrap();
        let g = generate(blobs.clone(), &root.join("scratch"), 2000, 3, period)
            .await
            .unwrap();
        assert_eq!(g.firms, 2000);
        let store = SnapshotStore::new(blobs);
        for p in ["2026-09", "2026-04", "2025-10"] {
            let m = store.manifest(Period::parse(p).unwrap()).await.unwrap();
            assert_eq!((m.period.as_str(), m.total_rows), (p, 2000));
        }
        // Four sources feed indicators; each delivers for about 90% of 2,020 firms.
        let keys = store.input_keys(period).await.unwrap();
        assert_eq!((g.files, keys.len()), (4, 4));
        assert!((7000..7600).contains(&g.rows), "{}", g.rows);
        let tax = keys.iter().find(|k| k.contains("/tax_operating/")).unwrap();
        let batches = store.inputs(tax).await.unwrap();
        let b = &batches[0];
        assert_eq!(b.column_by_name("tax_paid_12m").unwrap().null_count(), 0);
        // The courts' indicators are not the tax file's: no values, not decoded.
        assert!(b.column_by_name("dishonest_debtor").is_none());
        std::fs::remove_dir_all(&root).ok();
    }
}
