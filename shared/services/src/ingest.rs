//! Government data ingest: a batch file under `incoming/<source>/<YYYY-MM-DD>/<file>` (`.csv`,
//! `.ndjson`/`.jsonl` or `.parquet`) read by its source's declaration (see [`puhui_domain::sources`]) through the ingest engine, each loaded
//! row upserted into the firm's profile category, each quarantined row written to
//! `quarantine/<source>/<date>/<file>.ndjson`, and a report stored and queryable.
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | one file's ingest | `INGEST#<source>#<date>` | `FILE#<file>#<sha256>` | `status` (`processing`/`done`), `blob_key`, `report` |
//! | a firm's newest indicators | `FIRM#<uscc>` | `INDICATORS#LATEST` | `industry`, `values: {<indicator>: value}`, `as_of: {<indicator or "industry">: date}` |
//!
//! The marker is both the idempotency record and the report: it is put only if absent (or its
//! processing lease expired), so a file delivered twice — or one event delivered twice — is
//! processed once; a changed file at the same key has another hash and is processed anew.
//! Profile fields are replaced only by a row whose as-of date is newer than the stored field's
//! (a conditional write on the item's version), so replaying a file after a crash changes nothing
//! it already wrote.
//!
//! A loaded row's target fields that are catalogue indicators (see
//! [`puhui_domain::indicators`]), and a registration's `industry`, are also upserted into the
//! firm's newest indicators — the item matching and scoring read — by the same rule: each value
//! (typed as its indicator declares) is replaced only by a row whose as-of date is newer than
//! the one kept beside it in `as_of`, by a conditional write on the item's version. A value
//! stored without an as-of date (seeded by hand) counts as older than any ingested row.
//!
//! The same indicator values (with the industry, and a registration's `established_on`, which
//! screening filters on) are appended to the period's indicator inputs, the snapshot builder's
//! only source (the table cannot be scanned): one Parquet object per file and period,
//! `indicator-inputs/<YYYY-MM>/<source>/<date>/<file>.parquet` (see
//! [`SnapshotStore::input_key`]), a row's period being the month of its as-of date. The key is
//! the file's identity, so ingesting the file again (a replay, or a corrected file at the same
//! key) overwrites its inputs instead of adding to them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use puhui_domain::indicators::{self, IndicatorType};
use puhui_domain::interfaces::ProfileField;
use puhui_domain::risk::Period;
use puhui_domain::sources::{Source, SourceCatalogue};
use puhui_domain::{Error, IndustryCode, Uscc};
use puhui_engines::ingest::{
    self as engine, Encoding, FileFormat, FileRejection, LoadedRow, QuarantinedRow, RowOutcome,
};
use puhui_ports::{BlobStore, Clock, Condition, Item, Key, PortError, Query, Table, TxOp, Update};
use puhui_snapshot::build::InputWriter;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::profiles;
use crate::risk::SnapshotStore;

/// Prefix under which departments deliver files.
pub const INCOMING: &str = "incoming/";
/// Prefix of quarantine objects.
pub const QUARANTINE: &str = "quarantine/";
/// How long a `processing` marker holds off other deliveries of the file (a Lambda's longest
/// run), after which a crashed ingest is taken over.
const LEASE_SECONDS: i64 = 15 * 60;
/// Attempts at a profile write that keeps losing to concurrent writers.
const WRITE_ATTEMPTS: usize = 8;

/// Loaded rows written in one transaction (two items each: the profile category and the
/// newest indicators), so a file costs a write per dozen rows rather than two per row.
const CHUNK_ROWS: usize = puhui_ports::table::MAX_TX_OPS / 2;

/// The parts of an incoming object's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobPath {
    /// Source id.
    pub source: String,
    /// Delivery date.
    pub date: NaiveDate,
    /// File name.
    pub file: String,
}

/// Parses `incoming/<source>/<YYYY-MM-DD>/<file>`.
pub fn parse_blob_key(key: &str) -> Result<BlobPath, Error> {
    let bad = || {
        Error::field(
            "blob_key",
            "invalid_blob_key",
            "expected incoming/<source>/<YYYY-MM-DD>/<file>",
        )
    };
    let rest = key.strip_prefix(INCOMING).ok_or_else(bad)?;
    let mut parts = rest.splitn(3, '/');
    let (Some(source), Some(date), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| bad())?;
    if source.is_empty() || file.is_empty() || file.contains('/') {
        return Err(bad());
    }
    Ok(BlobPath {
        source: source.to_owned(),
        date,
        file: file.to_owned(),
    })
}

/// What one file's ingest did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Source id.
    pub source: String,
    /// Delivery date.
    pub date: NaiveDate,
    /// File name.
    pub file: String,
    /// The object read.
    pub blob_key: String,
    /// SHA-256 of its content, hex.
    pub sha256: String,
    /// The encoding it was read in (absent when rejected before decoding).
    pub encoding: Option<Encoding>,
    /// Rows read (0 when the file was rejected whole).
    pub rows_read: u64,
    /// Rows loaded.
    pub loaded: u64,
    /// Rows quarantined.
    pub quarantined: u64,
    /// Rejecting rule → rows it quarantined (a row failing two rules counts under both).
    pub quarantined_by_rule: BTreeMap<String, u64>,
    /// Warning rule → loaded rows that failed it.
    pub warnings_by_rule: BTreeMap<String, u64>,
    /// Why the whole file was quarantined, when it was.
    pub rejection: Option<FileRejection>,
    /// Profile categories written (a loaded row whose fields were all older changes nothing).
    pub profiles_written: u64,
    /// Firms' newest-indicator items written (a loaded row with no indicator, or whose
    /// indicators were all older, changes nothing).
    #[serde(default)]
    pub indicators_written: u64,
    /// Rows appended to the periods' indicator inputs (loaded rows carrying an indicator).
    #[serde(default)]
    pub indicator_inputs: u64,
    /// The quarantine object, when anything was quarantined.
    pub quarantine_key: Option<String>,
    /// Wall time of the ingest.
    pub duration_ms: u64,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
}

/// What [`IngestService::ingest`] did with a delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestOutcome {
    /// The file was processed now.
    Ingested(IngestReport),
    /// This file (same key and content) was already processed; nothing changed.
    AlreadyIngested(IngestReport),
    /// Another delivery of this file is being processed right now; nothing changed.
    InProgress,
}

/// Ingests government batch files and answers for their reports.
#[derive(Clone)]
pub struct IngestService {
    table: Arc<dyn Table>,
    blobs: Arc<dyn BlobStore>,
    clock: Arc<dyn Clock>,
    catalogue: Arc<SourceCatalogue>,
}

fn marker_pk(source: &str, date: NaiveDate) -> String {
    format!("INGEST#{source}#{date}")
}

/// Running totals of one pass over a file.
#[derive(Default)]
struct Tally {
    read: u64,
    loaded: u64,
    quarantined: u64,
    by_rule: BTreeMap<String, u64>,
    warnings: BTreeMap<String, u64>,
    written: u64,
    indicators_written: u64,
}

impl IngestService {
    /// The service over the built-in source catalogue.
    pub fn new(table: Arc<dyn Table>, blobs: Arc<dyn BlobStore>, clock: Arc<dyn Clock>) -> Self {
        Self::with_catalogue(
            table,
            blobs,
            clock,
            Arc::new(SourceCatalogue::builtin().clone()),
        )
    }

    /// The service over another catalogue.
    pub fn with_catalogue(
        table: Arc<dyn Table>,
        blobs: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
        catalogue: Arc<SourceCatalogue>,
    ) -> Self {
        IngestService {
            table,
            blobs,
            clock,
            catalogue,
        }
    }

    /// Ingests the object at `blob_key` once: a repeat of the same key and content changes
    /// nothing. Fails (leaving the marker's lease to expire, so a retry takes over) only when
    /// storage fails; bad files and rows are reported, not errors.
    pub async fn ingest(&self, blob_key: &str) -> Result<IngestOutcome, Error> {
        let started = Instant::now();
        let path = parse_blob_key(blob_key)?;
        let source = self.catalogue.get(&path.source).ok_or_else(|| {
            Error::field(
                "blob_key",
                "unknown_source",
                format!("no source {} in the catalogue", path.source),
            )
        })?;
        // The file is spooled to local disk and read from there, so memory stays bounded
        // however big it is (Lambda: /tmp, sized in the template).
        let spool = tempfile::NamedTempFile::new()
            .map_err(|e| Error::Internal(format!("no local spool file: {e}")))?;
        self.blobs
            .download(blob_key, spool.path())
            .await?
            .ok_or_else(|| Error::NotFound(format!("object {blob_key}")))?;
        let sha256 = blocking(spool.path(), |file| {
            let mut hasher = Sha256::new();
            std::io::copy(&mut BufReader::new(file), &mut hasher)?;
            Ok(hex::encode(hasher.finalize()))
        })
        .await?;
        let marker = Key::new(
            marker_pk(&path.source, path.date),
            format!("FILE#{}#{sha256}", path.file),
        );
        if let Some(done) = self.finished(&marker).await? {
            return Ok(IngestOutcome::AlreadyIngested(done));
        }
        let now = self.clock.now().timestamp();
        let mut attrs = Map::new();
        attrs.insert("status".into(), json!("processing"));
        attrs.insert("blob_key".into(), json!(blob_key));
        let mut item = Item::new(marker.clone(), attrs);
        item.expires_at = Some(now + LEASE_SECONDS);
        match self
            .table
            .put(item, Some(Condition::NotExistsOrExpired { now }))
            .await
        {
            Ok(()) => {}
            Err(PortError::ConditionFailed(_)) => {
                return Ok(match self.finished(&marker).await? {
                    Some(done) => IngestOutcome::AlreadyIngested(done),
                    None => IngestOutcome::InProgress,
                });
            }
            Err(e) => return Err(e.into()),
        }
        let version = self
            .table
            .get(&marker)
            .await?
            .map_or(1, |stored| stored.version);

        let mut report = IngestReport {
            source: path.source.clone(),
            date: path.date,
            file: path.file.clone(),
            blob_key: blob_key.to_owned(),
            sha256,
            encoding: None,
            rows_read: 0,
            loaded: 0,
            quarantined: 0,
            quarantined_by_rule: BTreeMap::new(),
            warnings_by_rule: BTreeMap::new(),
            rejection: None,
            profiles_written: 0,
            indicators_written: 0,
            indicator_inputs: 0,
            quarantine_key: None,
            duration_ms: 0,
            finished_at: self.clock.now(),
        };
        let quarantine_key = format!(
            "{QUARANTINE}{}/{}/{}.ndjson",
            path.source, path.date, path.file
        );
        let checked = {
            let (source, name) = (source.clone(), path.file.clone());
            blocking(spool.path(), move |file| {
                Ok(preflight(&source, &name, file))
            })
            .await?
        };
        match checked {
            Err(rejection) => {
                // The whole file is the quarantined unit; the original stays under incoming/.
                let line = json!({
                    "whole_file": true,
                    "blob_key": blob_key,
                    "sha256": report.sha256,
                    "reason": rejection.to_string(),
                    "rejection": rejection,
                });
                self.put_quarantine(&quarantine_key, format!("{line}\n").into_bytes())
                    .await?;
                report.rejection = Some(rejection);
                report.quarantine_key = Some(quarantine_key);
            }
            Ok((format, encoding)) => {
                report.encoding = Some(encoding);
                let file = File::open(spool.path())
                    .map_err(|e| Error::Internal(format!("spool file: {e}")))?;
                let (tally, quarantine, inputs) = self.load(source, format, file).await?;
                if tally.read != tally.loaded + tally.quarantined {
                    return Err(Error::Internal(format!(
                        "{blob_key}: {} rows read but {} loaded and {} quarantined",
                        tally.read, tally.loaded, tally.quarantined
                    )));
                }
                if !quarantine.is_empty() {
                    self.put_quarantine(&quarantine_key, quarantine).await?;
                    report.quarantine_key = Some(quarantine_key);
                }
                let store = SnapshotStore::new(self.blobs.clone());
                for (period, (spool, writer)) in inputs {
                    report.indicator_inputs += writer.rows();
                    writer
                        .finish()
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    // The encoded inputs are a few bytes a row: read whole for the put.
                    let bytes = std::fs::read(spool.path())
                        .map_err(|e| Error::Internal(format!("input spool: {e}")))?;
                    store.put_inputs(period, &path, bytes).await?;
                }
                report.rows_read = tally.read;
                report.loaded = tally.loaded;
                report.quarantined = tally.quarantined;
                report.quarantined_by_rule = tally.by_rule;
                report.warnings_by_rule = tally.warnings;
                report.profiles_written = tally.written;
                report.indicators_written = tally.indicators_written;
            }
        }
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        report.finished_at = self.clock.now();
        let mut set = Map::new();
        set.insert("status".into(), json!("done"));
        set.insert(
            "report".into(),
            serde_json::to_value(&report).map_err(|e| Error::Internal(e.to_string()))?,
        );
        let update = Update {
            set,
            expires_at: Some(None),
            ..Update::default()
        };
        self.table
            .update(&marker, update, Some(Condition::VersionEquals(version)))
            .await?;
        tracing::info!(
            source = %report.source, file = %report.file, rows_read = report.rows_read,
            loaded = report.loaded, quarantined = report.quarantined,
            rejected_whole = report.rejection.is_some(), duration_ms = report.duration_ms,
            "file ingested"
        );
        Ok(IngestOutcome::Ingested(report))
    }

    /// Reports of the files of `source` delivered on `date` that finished, in file-name order.
    pub async fn reports(&self, source: &str, date: NaiveDate) -> Result<Vec<IngestReport>, Error> {
        let query = Query::partition(marker_pk(source, date)).prefix("FILE#");
        crate::paging::all_pages(self.table.as_ref(), query)
            .await?
            .into_iter()
            .filter(|item| item.attrs.get("status") == Some(&json!("done")))
            .map(|item| report_of(&item))
            .collect()
    }

    async fn finished(&self, marker: &Key) -> Result<Option<IngestReport>, Error> {
        match self.table.get(marker).await? {
            Some(item) if item.attrs.get("status") == Some(&json!("done")) => {
                report_of(&item).map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn put_quarantine(&self, key: &str, bytes: Vec<u8>) -> Result<(), Error> {
        Ok(self.blobs.put(key, bytes, "application/x-ndjson").await?)
    }

    /// The loading pass: loaded rows written [`CHUNK_ROWS`] at a time, quarantined rows
    /// collected as NDJSON (memory grows with the bad rows only), loaded rows' indicators
    /// encoded by period into local spool files a batch at a time.
    async fn load(
        &self,
        source: &Source,
        format: FileFormat,
        file: File,
    ) -> Result<(Tally, Vec<u8>, BTreeMap<Period, PeriodInputs>), Error> {
        let mut tally = Tally::default();
        let mut quarantine = Vec::new();
        let mut inputs: BTreeMap<Period, PeriodInputs> = BTreeMap::new();
        let mut chunk: Vec<LoadedRow> = Vec::with_capacity(CHUNK_ROWS);
        let rows = engine::rows(source, format, file)
            .map_err(|e| Error::Internal(format!("file changed between passes: {e}")))?;
        for outcome in rows {
            let outcome = outcome
                .map_err(|e| Error::Internal(format!("file changed between passes: {e}")))?;
            tally.read += 1;
            match outcome {
                RowOutcome::Loaded(row) => {
                    tally.loaded += 1;
                    for w in &row.warnings {
                        *tally.warnings.entry(w.rule.clone()).or_default() += 1;
                    }
                    // Dates before 1970 have no period: such a row feeds no snapshot.
                    if let Ok(period) = Period::parse(&row.as_of.format("%Y-%m").to_string()) {
                        let values = snapshot_values(&row);
                        let (_, writer) = match inputs.entry(period) {
                            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                            std::collections::btree_map::Entry::Vacant(e) => {
                                e.insert(period_inputs()?)
                            }
                        };
                        writer
                            .push(
                                row.uscc.as_str(),
                                row.as_of,
                                values.iter().map(|(k, v)| (k.as_str(), v)),
                            )
                            .map_err(|e| Error::Internal(e.to_string()))?;
                    }
                    // One transaction writes an item once: a firm's second row starts a chunk.
                    if chunk.iter().any(|r| r.uscc == row.uscc) {
                        self.write_chunk(source, &mut chunk, &mut tally).await?;
                    }
                    chunk.push(row);
                    if chunk.len() == CHUNK_ROWS {
                        self.write_chunk(source, &mut chunk, &mut tally).await?;
                    }
                }
                RowOutcome::Quarantined(row) => {
                    tally.quarantined += 1;
                    for rule in row.rejected_by() {
                        *tally.by_rule.entry(rule.to_owned()).or_default() += 1;
                    }
                    quarantine.extend_from_slice(quarantine_line(&row)?.as_bytes());
                }
            }
        }
        self.write_chunk(source, &mut chunk, &mut tally).await?;
        inputs.retain(|_, (_, writer)| writer.rows() > 0);
        Ok((tally, quarantine, inputs))
    }

    /// Writes the chunk's rows (distinct firms) where newer than what is stored: the stored
    /// items read concurrently, every write in one transaction, each conditional on the version
    /// read. When another writer got in between, each row is written again on its own, reading
    /// and merging until its write holds. Empties the chunk.
    async fn write_chunk(
        &self,
        source: &Source,
        chunk: &mut Vec<LoadedRow>,
        tally: &mut Tally,
    ) -> Result<(), Error> {
        if chunk.is_empty() {
            return Ok(());
        }
        let stored = futures::future::try_join_all(chunk.iter().map(|row| async move {
            let profile = self
                .table
                .get(&profiles::category_key(&row.uscc, source.category))
                .await?;
            let indicators = self.table.get(&profiles::indicators_key(&row.uscc)).await?;
            Ok::<_, PortError>((profile, indicators))
        }))
        .await?;
        let mut ops = Vec::with_capacity(2 * chunk.len());
        let (mut profiles_written, mut indicators_written) = (0, 0);
        for (row, (profile, indicators)) in chunk.iter().zip(stored) {
            if let Some((item, condition)) = profile_write(source, row, profile)? {
                ops.push(TxOp::Put {
                    item,
                    condition: Some(condition),
                });
                profiles_written += 1;
            }
            // Written even when the profile was not (a replay after a crash between the two
            // writes completes the indicators; an older row changes nothing).
            if let Some((item, condition)) = indicators_write(row, indicators) {
                ops.push(TxOp::Put {
                    item,
                    condition: Some(condition),
                });
                indicators_written += 1;
            }
        }
        let outcome = if ops.is_empty() {
            Ok(())
        } else {
            self.table.transact(ops).await
        };
        match outcome {
            Ok(()) => {
                tally.written += profiles_written;
                tally.indicators_written += indicators_written;
            }
            Err(PortError::TransactionCancelled { .. } | PortError::ConditionFailed(_)) => {
                for row in chunk.iter() {
                    if self.upsert(source, row).await? {
                        tally.written += 1;
                    }
                    if self.upsert_indicators(row).await? {
                        tally.indicators_written += 1;
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
        chunk.clear();
        Ok(())
    }

    /// Stores the row's fields in the firm's category where newer than what is stored; true if
    /// anything was written.
    async fn upsert(&self, source: &Source, row: &LoadedRow) -> Result<bool, Error> {
        let key = profiles::category_key(&row.uscc, source.category);
        self.merge_until_written(&key, |stored| profile_write(source, row, stored))
            .await
    }

    /// Stores the row's indicator values (and industry) in the firm's newest indicators where
    /// newer than what is stored; true if anything was written.
    async fn upsert_indicators(&self, row: &LoadedRow) -> Result<bool, Error> {
        let key = profiles::indicators_key(&row.uscc);
        self.merge_until_written(&key, |stored| Ok(indicators_write(row, stored)))
            .await
    }

    /// Reads the item at `key`, merges into it with `merge` and writes it conditional on the
    /// version read, reading and merging again when another file of the same firm got in
    /// between; true if anything was written (`merge` found something newer).
    async fn merge_until_written(
        &self,
        key: &Key,
        merge: impl Fn(Option<Item>) -> Result<Option<(Item, Condition)>, Error>,
    ) -> Result<bool, Error> {
        for _ in 0..WRITE_ATTEMPTS {
            let Some((item, condition)) = merge(self.table.get(key).await?)? else {
                return Ok(false);
            };
            match self.table.put(item, Some(condition)).await {
                Ok(()) => return Ok(true),
                Err(PortError::ConditionFailed(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Unavailable(format!(
            "{} of {} kept changing while being written",
            key.sk, key.pk
        )))
    }
}

/// The firm's category item with the row's fields merged in where newer than `stored`, and
/// the condition that `stored` is still what is there; `None` when nothing is newer.
fn profile_write(
    source: &Source,
    row: &LoadedRow,
    stored: Option<Item>,
) -> Result<Option<(Item, Condition)>, Error> {
    let version = stored.as_ref().map(|item| item.version);
    let mut fields = match &stored {
        Some(item) => stored_fields(&row.uscc, item)?,
        None => BTreeMap::new(),
    };
    let mut changed = false;
    for (name, value) in &row.values {
        if fields.get(name).is_none_or(|f| f.as_of < row.as_of) {
            fields.insert(
                name.clone(),
                ProfileField {
                    value: value.clone(),
                    source: source.department.clone(),
                    as_of: row.as_of,
                },
            );
            changed = true;
        }
    }
    if !changed {
        return Ok(None);
    }
    let item = profiles::category_item(&row.uscc, source.category, &fields)?;
    Ok(Some(versioned(item, version)))
}

/// `item` as the next version after `stored_version`, with the condition that holds it to it.
fn versioned(mut item: Item, stored_version: Option<u64>) -> (Item, Condition) {
    match stored_version {
        Some(v) => {
            item.version = v + 1;
            (item, Condition::VersionEquals(v))
        }
        None => (item, Condition::NotExists),
    }
}

/// The firm's newest-indicators item with the row's indicator values (and industry) merged in
/// where newer than `stored`, and the condition that `stored` is still what is there; `None`
/// when nothing is newer.
fn indicators_write(row: &LoadedRow, stored: Option<Item>) -> Option<(Item, Condition)> {
    let incoming = indicator_values(row);
    if incoming.is_empty() {
        return None;
    }
    let as_of = Value::String(row.as_of.to_string());
    let version = stored.as_ref().map(|item| item.version);
    let mut attrs = stored.map(|item| item.attrs).unwrap_or_default();
    let mut values = object(&attrs, "values");
    let mut dates = object(&attrs, profiles::INDICATORS_AS_OF);
    let mut changed = false;
    for (id, value) in &incoming {
        let newer = dates
            .get(id)
            .and_then(Value::as_str)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .is_none_or(|d| d < row.as_of);
        if !newer {
            continue;
        }
        if id == profiles::INDUSTRY {
            attrs.insert(id.clone(), value.clone());
        } else {
            values.insert(id.clone(), value.clone());
        }
        dates.insert(id.clone(), as_of.clone());
        changed = true;
    }
    if !changed {
        return None;
    }
    attrs.insert("values".into(), Value::Object(values));
    attrs.insert(profiles::INDICATORS_AS_OF.into(), Value::Object(dates));
    Some(versioned(
        Item::new(profiles::indicators_key(&row.uscc), attrs),
        version,
    ))
}

fn object(attrs: &Map<String, Value>, name: &str) -> Map<String, Value> {
    attrs
        .get(name)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The row's target fields that are catalogue indicators, typed as the indicator declares, and
/// a valid industry code under [`profiles::INDUSTRY`]. A value of the wrong type for its
/// indicator is left out (the built-in catalogue declares none; a unit test checks it).
fn indicator_values(row: &LoadedRow) -> BTreeMap<String, Value> {
    row.values
        .iter()
        .filter_map(|(name, value)| {
            let typed = if name == profiles::INDUSTRY {
                value
                    .as_str()
                    .filter(|s| IndustryCode::parse(s).is_ok())
                    .map(Value::from)
            } else {
                indicator_value(indicators::find(name)?.kind, value)
            };
            Some((name.clone(), typed?))
        })
        .collect()
}

/// What the row gives the snapshot: its [`indicator_values`] and its establishment date
/// (the snapshot builder checks each value's type again).
fn snapshot_values(row: &LoadedRow) -> BTreeMap<String, Value> {
    let mut values = indicator_values(row);
    if let Some(d) = row.values.get(puhui_snapshot::ESTABLISHED_ON) {
        values.insert(puhui_snapshot::ESTABLISHED_ON.to_owned(), d.clone());
    }
    values
}

/// `value` as an indicator of type `kind` stores it: fen and counts as integers, ratios as
/// numbers, booleans, and category labels from the indicator's set.
fn indicator_value(kind: IndicatorType, value: &Value) -> Option<Value> {
    match kind {
        IndicatorType::Fen | IndicatorType::Integer => value.as_i64().map(Value::from),
        IndicatorType::Ratio => value
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        IndicatorType::Boolean => value.as_bool().map(Value::Bool),
        IndicatorType::Category(labels) => value
            .as_str()
            .filter(|s| labels.contains(s))
            .map(Value::from),
    }
}

/// The first pass: the whole file read without writing anything, so a file that turns out
/// unreadable half-way (a truncated last character) is quarantined whole rather than half-loaded.
fn preflight(
    source: &Source,
    name: &str,
    file: File,
) -> Result<(FileFormat, Encoding), FileRejection> {
    let format = FileFormat::from_name(name)
        .ok_or_else(|| FileRejection::UnsupportedFormat(name.to_owned()))?;
    let rows = engine::rows(source, format, file)?;
    let encoding = rows.encoding();
    for row in rows {
        row?;
    }
    Ok((format, encoding))
}

/// One period's indicator inputs of a file: the local spool file and the writer encoding into it.
type PeriodInputs = (tempfile::NamedTempFile, InputWriter<File>);

/// A spool file for a period's inputs and its writer.
fn period_inputs() -> Result<PeriodInputs, Error> {
    let spool = tempfile::NamedTempFile::new()
        .map_err(|e| Error::Internal(format!("no local spool file: {e}")))?;
    let file = spool
        .reopen()
        .map_err(|e| Error::Internal(format!("input spool: {e}")))?;
    let writer = InputWriter::new(file).map_err(|e| Error::Internal(e.to_string()))?;
    Ok((spool, writer))
}

/// Runs `f` over the spooled file opened afresh, on a blocking thread (reading and checking a
/// large file takes seconds: not on the async workers).
async fn blocking<T: Send + 'static>(
    path: &std::path::Path,
    f: impl FnOnce(File) -> std::io::Result<T> + Send + 'static,
) -> Result<T, Error> {
    let path = path.to_owned();
    let spool = |e: std::io::Error| Error::Internal(format!("spool file: {e}"));
    tokio::task::spawn_blocking(move || f(File::open(path)?))
        .await
        .map_err(|e| Error::Internal(format!("spool reader: {e}")))?
        .map_err(spool)
}

fn quarantine_line(row: &QuarantinedRow) -> Result<String, Error> {
    let line = json!({
        "line": row.line,
        "rejected_by": row.rejected_by(),
        "violations": row.violations,
        "values": row.values,
    });
    Ok(format!("{line}\n"))
}

fn stored_fields(uscc: &Uscc, item: &Item) -> Result<BTreeMap<String, ProfileField>, Error> {
    serde_json::from_value(item.attrs.get("fields").cloned().unwrap_or(Value::Null))
        .map_err(|e| Error::Internal(format!("profile of {uscc}, {}: {e}", item.key.sk)))
}

fn report_of(item: &Item) -> Result<IngestReport, Error> {
    serde_json::from_value(item.attrs.get("report").cloned().unwrap_or(Value::Null))
        .map_err(|e| Error::Internal(format!("ingest report {}: {e}", item.key.sk)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn blob_keys_name_source_date_and_file() {
        let p = parse_blob_key("incoming/tax_credit/2026-11-30/grades.csv").unwrap();
        assert_eq!(p.source, "tax_credit");
        assert_eq!(p.date.to_string(), "2026-11-30");
        assert_eq!(p.file, "grades.csv");
        for bad in [
            "tax_credit/2026-11-30/a.csv",
            "incoming/tax_credit/2026-13-01/a.csv",
            "incoming/tax_credit/2026-11-30/",
            "incoming/tax_credit/2026-11-30/a/b.csv",
        ] {
            assert!(parse_blob_key(bad).is_err(), "{bad}");
        }
    }

    /// Every built-in source field aimed at a catalogue indicator has the indicator's type, so
    /// no loaded value is left out of the indicators; the sources feed the expected ones.
    #[test]
    fn indicator_targets_are_typed_as_their_indicators() {
        use puhui_domain::sources::FieldType;
        let mut fed = Vec::new();
        for source in &SourceCatalogue::builtin().sources {
            for field in &source.fields {
                let Some(target) = &field.target else {
                    continue;
                };
                if target == profiles::INDUSTRY {
                    assert_eq!(field.field_type, FieldType::Text);
                    fed.push(target.as_str());
                    continue;
                }
                let Some(indicator) = indicators::find(target) else {
                    continue;
                };
                let expected = match indicator.kind {
                    IndicatorType::Fen | IndicatorType::Integer => FieldType::Integer,
                    IndicatorType::Ratio => FieldType::Decimal,
                    IndicatorType::Boolean => FieldType::Boolean,
                    IndicatorType::Category(_) => FieldType::Text,
                };
                assert_eq!(field.field_type, expected, "{}.{}", source.id, field.name);
                fed.push(target.as_str());
            }
        }
        fed.sort_unstable();
        assert_eq!(
            fed,
            [
                "court_cases_defendant_12m",
                "dishonest_debtor",
                "enforcement_amount",
                "enforcement_cases_active",
                "industry",
                "invoice_sales_yoy",
                "social_insurance_arrears_months",
                "social_insured_headcount",
                "tax_arrears",
                "tax_credit_grade",
                "tax_paid_12m",
                "tax_paid_yoy",
            ]
        );
    }

    #[test]
    fn a_registration_gives_the_snapshot_its_industry_and_establishment_date() {
        let row = LoadedRow {
            line: 2,
            uscc: Uscc::parse("91440300708461136T").unwrap(),
            as_of: NaiveDate::from_ymd_opt(2026, 10, 9).unwrap(),
            values: [
                ("firm_name", json!("宁波甬江科技有限公司")),
                ("industry", json!("C3311")),
                ("established_on", json!("2015-03-02")),
                ("status", json!("存续")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            warnings: Vec::new(),
        };
        let values = snapshot_values(&row);
        assert_eq!(
            values.into_iter().collect::<Vec<_>>(),
            [
                ("established_on".to_owned(), json!("2015-03-02")),
                ("industry".to_owned(), json!("C3311")),
            ]
        );
        // The newest-indicators item keeps the industry only.
        assert_eq!(indicator_values(&row).len(), 1);
        let mut inputs = puhui_snapshot::build::InputRows::new();
        let v = snapshot_values(&row);
        assert!(inputs.push(
            row.uscc.as_str(),
            row.as_of,
            v.iter().map(|(k, v)| (k.as_str(), v))
        ));
    }

    #[test]
    fn indicator_values_are_typed_and_labelled() {
        let grades = indicators::find("tax_credit_grade").unwrap().kind;
        assert_eq!(indicator_value(grades, &json!("A")), Some(json!("A")));
        assert_eq!(indicator_value(grades, &json!("Z")), None);
        assert_eq!(
            indicator_value(IndicatorType::Fen, &json!(1200)),
            Some(json!(1200))
        );
        assert_eq!(indicator_value(IndicatorType::Fen, &json!(1.5)), None);
        assert_eq!(
            indicator_value(IndicatorType::Ratio, &json!(-0.25)),
            Some(json!(-0.25))
        );
        assert_eq!(
            indicator_value(IndicatorType::Boolean, &json!(true)),
            Some(json!(true))
        );
        assert_eq!(indicator_value(IndicatorType::Boolean, &json!("yes")), None);
    }
}
