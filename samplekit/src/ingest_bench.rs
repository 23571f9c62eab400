//! Ingest throughput on the embedded backend (issue 6): one generated government file of N
//! firms ingested by [`IngestService`] exactly as data-ingest does it (both passes: preflight
//! and load, every loaded row's profile category and indicators written), timed, with the
//! process's peak resident memory.
//!
//! Two commands so the peak memory of the ingest is not the generator's:
//!   samplekit govfile --source tax_operating --firms 1380000 --out tax.csv
//!   samplekit ingest-file --data-dir DIR --source tax_operating --file tax.csv

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use puhui_domain::sources::SourceCatalogue;
use puhui_ports::BlobStore;
use puhui_services::ingest::{IngestOutcome, IngestService};

use crate::{Failure, govdata};

/// Every how many rows a generated benchmark file breaks a rule (a realistic trickle).
const BAD_EVERY: usize = 500;

/// Writes `source`'s file for `firms` generated firms (as of `as_of`) to `out`; returns rows.
pub fn write_file(
    source: &str,
    firms: usize,
    as_of: NaiveDate,
    out: &Path,
) -> Result<usize, Failure> {
    let catalogue = SourceCatalogue::builtin();
    let source = catalogue
        .get(source)
        .ok_or_else(|| Failure(format!("no source {source} in the catalogue")))?;
    let file = govdata::batch(source, &govdata::firms(firms, 2026), as_of, BAD_EVERY, 7);
    let bytes = if out.extension().is_some_and(|e| e == "parquet") {
        file.parquet().map_err(Failure)?
    } else {
        file.utf8()
    };
    std::fs::write(out, bytes).map_err(|e| Failure(format!("{}: {e}", out.display())))?;
    Ok(file.rows)
}

/// What one timed ingest did.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestRun {
    /// Rows read, loaded, quarantined; profile categories written.
    pub rows_read: u64,
    /// Rows loaded.
    pub loaded: u64,
    /// Rows quarantined.
    pub quarantined: u64,
    /// Profile items written.
    pub profiles_written: u64,
    /// Seconds from the blob put to the report.
    pub seconds: f64,
    /// Peak resident memory of the process during the ingest, in MiB (`VmHWM`, reset after the
    /// file was put), when the platform reports it.
    pub peak_rss_mib: Option<f64>,
}

/// Puts `file` into the embedded blob store under `data_dir` as a delivery of `source` and
/// ingests it into the embedded table there, timed.
pub async fn ingest_file(data_dir: &Path, source: &str, file: &Path) -> Result<IngestRun, Failure> {
    let fail = |e: &dyn std::fmt::Display| Failure(e.to_string());
    let table =
        puhui_embedded::SqliteTable::open(data_dir.join("puhui.db")).map_err(|e| fail(&e))?;
    let blobs = puhui_embedded::LocalBlobStore::new(
        data_dir.join("blobs"),
        "http://127.0.0.1".into(),
        Vec::new(),
        Arc::new(puhui_ports::SystemClock),
    );
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Failure(format!("{} has no file name", file.display())))?;
    let key = format!("incoming/{source}/2026-11-30/{name}");
    let bytes = std::fs::read(file).map_err(|e| Failure(format!("{}: {e}", file.display())))?;
    blobs
        .put(&key, bytes, "text/csv")
        .await
        .map_err(|e| fail(&e))?;
    let service = IngestService::new(
        Arc::new(table),
        Arc::new(blobs),
        Arc::new(puhui_ports::SystemClock),
    );
    let started = Instant::now();
    let report = match service.ingest(&key).await.map_err(|e| fail(&e))? {
        IngestOutcome::Ingested(r) => r,
        other => return Err(Failure(format!("{key} not ingested: {other:?}"))),
    };
    if let Some(rejection) = report.rejection {
        return Err(Failure(format!("{key} rejected whole: {rejection}")));
    }
    Ok(IngestRun {
        rows_read: report.rows_read,
        loaded: report.loaded,
        quarantined: report.quarantined,
        profiles_written: report.profiles_written,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_mib: peak_rss_mib(),
    })
}

/// `VmHWM` of this process from `/proc/self/status`, in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}
