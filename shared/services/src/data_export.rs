//! Bulk export jobs (批量导出): a bank exports chosen data interfaces of its authorized
//! portfolio (or of a list of firms) to one file per chunk in the blob store, CSV or Parquet,
//! masked exactly as the single-firm API masks them. The job and its chunks are recorded in one
//! transaction with the submit's audit record (chunks go out through the outbox); each chunk is
//! processed by the data-export consumer, which checks each firm's authorization per interface
//! at processing time, audits every firm × interface (allowed or refused) under a deterministic
//! id, writes the part and counts the chunk once: a redelivered chunk rewrites the same part
//! and counts nothing twice. Firm × interface pairs without a live authorization covering the
//! interface and purpose are skipped and listed with the reason.
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! |---|---|---|---|
//! | export job | `EXPORT#<bank>#<job>` | `JOB` | `EXPORTS#<bank>` / `<job>` |
//! | export chunk done (with its skipped pairs) | `EXPORT#<bank>#<job>` | `CHUNK#<index, 5 digits>` | – |
//!
//! Blobs: `exports/<bank>/<job>/input.json` (the firms), `…/part-<index>.csv` or
//! `….parquet` (one row per firm with at least one interface included) and
//! `…/skipped-<index>.csv` (`uscc,interface,reason`).
//!
//! Every firm × interface pair of an export counts against the bank's daily quota of firm data
//! reads, the one single queries count against ([`crate::quota`]): the pairs are reserved in
//! the submit's transaction, so an export that does not fit is refused (429) before anything is
//! read, and one that fits cannot be counted twice. Pairs skipped later are not given back:
//! the quota bounds what a bank may ask for in a day.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use puhui_domain::authorization::{Authorization, Purpose, live};
use puhui_domain::interfaces::{Catalogue, DataInterface, FirmProfile};
use puhui_domain::{BankId, Error, FieldError, Principal, Role, Uscc};
use puhui_engines::masking::{FieldStatus, MaskedView, mask_view};
use puhui_ports::{Condition, Item, Key, KeyRange, Query, TxOp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{AuditLog, AuditOutcome, AuditRecord, AuditedRefusal, sha256_json};
use crate::authorizations::Authorizations;
use crate::data_query::{DAILY_QUOTA, DataQueryConfig, QueryRefusal};
use crate::outbox::{Destination, Envelope};
use crate::paging::all_pages;
use crate::scoring::JobStatus;
use crate::storage::{StoragePorts, chunk_of, count_chunk_once};
use crate::{codec, profiles, quota};

/// The audit action of an export's submission.
pub const ACTION_SUBMIT: &str = "data_export";
/// The audit action of one firm × interface of an export.
pub const ACTION_FIRM: &str = "data_export_firm";
/// The audit action of reading an export job (its progress and result links).
pub const ACTION_VIEW: &str = "data_export_view";
/// Most firms in one export (explicit list or portfolio).
pub const MAX_FIRMS: usize = 10_000;
/// Firms per chunk (one queue message).
pub const CHUNK_FIRMS: usize = 100;
/// How long a result link stays valid.
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);
/// Most skipped pairs listed in a job view (every one is in the skipped files).
pub const MAX_LISTED_SKIPPED: usize = 1_000;
/// Longest interface id kept in an audit record or an error (ids come from the body).
const MAX_ECHOED_ID: usize = 64;

/// The file format of an export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// UTF-8 CSV with a header row.
    #[default]
    Csv,
    /// Apache Parquet, every column a nullable string.
    Parquet,
}

impl ExportFormat {
    fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Parquet => "parquet",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// An export as a bank submits it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// Interface ids (see `GET /v1/interfaces`; at least one; repeats exported once).
    #[schema(min_items = 1)]
    pub interfaces: Vec<String>,
    /// The purpose; only firms whose authorization covers it are exported.
    pub purpose: Purpose,
    /// `csv` (default) or `parquet`.
    #[serde(default)]
    pub format: ExportFormat,
    /// The firms (1–10,000; repeats once). Absent: every firm that gave the bank an
    /// authorization (its portfolio).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>, min_items = 1, max_items = 10_000)]
    pub firms: Option<Vec<Uscc>>,
}

/// An export job and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportJob {
    /// Id (a ULID; also the id of the submission's audit record).
    pub id: String,
    /// The bank.
    #[schema(value_type = String)]
    pub bank_id: BankId,
    /// Who submitted it.
    pub requested_by: String,
    /// The interfaces exported, as `<id>@<version>`.
    pub interfaces: Vec<String>,
    /// Purpose.
    pub purpose: Purpose,
    /// File format.
    pub format: ExportFormat,
    /// Whether the firms are the bank's whole portfolio (no list given).
    pub portfolio: bool,
    /// Firms in the job.
    pub firms: u64,
    /// Chunks in the job.
    pub chunks: u64,
    /// Submitted at.
    pub created_at: DateTime<Utc>,
    /// Chunks finished.
    #[serde(default)]
    pub chunks_done: u64,
    /// Firms with at least one interface exported.
    #[serde(default)]
    pub firms_included: u64,
    /// Firms with no interface exported.
    #[serde(default)]
    pub firms_skipped: u64,
    /// Firm × interface pairs exported.
    #[serde(default)]
    pub pairs_included: u64,
    /// Firm × interface pairs skipped (listed with their reasons).
    #[serde(default)]
    pub pairs_skipped: u64,
    /// Record version.
    #[serde(default)]
    pub version: u64,
}

/// One firm × interface left out of an export, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SkippedPair {
    /// The firm.
    #[schema(value_type = String)]
    pub uscc: Uscc,
    /// The interface id.
    pub interface: String,
    /// The reason code, as in the audit record (`no_authorization`, `expired`, `revoked`,
    /// `out_of_scope`, `purpose_not_covered`, `not_yet_valid`, `no_profile`).
    pub reason: String,
}

/// An export job as its bank sees it: progress, skipped pairs, and once complete the links.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportJobView {
    /// The job.
    pub job: ExportJob,
    /// Status.
    pub status: JobStatus,
    /// Presigned links to the data parts, one per chunk (valid 15 minutes), once complete.
    pub results: Vec<String>,
    /// Presigned links to the skipped lists (`uscc,interface,reason`), one per chunk, once
    /// complete.
    pub skipped_lists: Vec<String>,
    /// Skipped pairs of the chunks done so far (at most 1,000; see `skipped_truncated`).
    pub skipped: Vec<SkippedPair>,
    /// Whether more pairs were skipped than listed here (the skipped lists have every one).
    pub skipped_truncated: bool,
}

/// The queue message: one chunk of one export job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportChunk {
    /// The bank.
    pub bank_id: BankId,
    /// The job.
    pub job_id: String,
    /// Chunk index (0-based).
    pub chunk: u64,
}

/// What one chunk did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportChunkOutcome {
    /// Firm × interface pairs exported.
    pub included: u64,
    /// Pairs skipped.
    pub skipped: u64,
    /// Whether this delivery counted it (false: an earlier one had).
    pub counted: bool,
}

fn job_pk(bank: &BankId, job: &str) -> String {
    format!("EXPORT#{bank}#{job}")
}

fn job_key(bank: &BankId, job: &str) -> Key {
    Key::new(job_pk(bank, job), "JOB")
}

fn chunk_key(bank: &BankId, job: &str, chunk: u64) -> Key {
    Key::new(job_pk(bank, job), format!("CHUNK#{chunk:05}"))
}

fn input_blob(bank: &BankId, job: &str) -> String {
    format!("exports/{bank}/{job}/input.json")
}

/// The data part of one chunk.
pub fn part_blob(bank: &BankId, job: &str, chunk: u64, format: ExportFormat) -> String {
    format!(
        "exports/{bank}/{job}/part-{chunk:05}.{}",
        format.extension()
    )
}

/// The skipped list of one chunk.
pub fn skipped_blob(bank: &BankId, job: &str, chunk: u64) -> String {
    format!("exports/{bank}/{job}/skipped-{chunk:05}.csv")
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored {what} unreadable: {e}"))
}

/// The audit reason code of a refused submission or view.
fn refusal_code(e: &Error) -> &'static str {
    match e {
        Error::Forbidden(_) => "forbidden_role",
        Error::Validation(_) | Error::Malformed { .. } => "invalid_request",
        Error::NotFound(_) => "not_found",
        Error::QuotaExhausted { .. } => "quota_exhausted",
        _ => "error",
    }
}

/// The bank of a caller allowed to export (a bank's `loan_officer` or `risk_admin`).
fn export_bank(who: &Principal) -> Result<&BankId, Error> {
    let bank = who.bank_id.as_ref().ok_or_else(|| {
        Error::Forbidden("exporting firm data needs a token issued for a bank".into())
    })?;
    if who.has(Role::LoanOfficer) || who.has(Role::RiskAdmin) {
        Ok(bank)
    } else {
        Err(Error::Forbidden(
            "exporting firm data needs the loan_officer or risk_admin role".into(),
        ))
    }
}

/// The column names of an export over `interfaces`: `uscc`, then per interface its
/// `<interface>:status` (`included` or `skipped`), `:reason` and `:authorization_id`, and each
/// field's `<interface>.<field>` (the masked value), `.source` and `.as_of`. The two separators
/// keep the export's own columns apart from fields of the same name (a firm's `status`).
pub fn columns(interfaces: &[&DataInterface]) -> Vec<String> {
    let mut cols = vec!["uscc".to_owned()];
    for i in interfaces {
        for c in ["status", "reason", "authorization_id"] {
            cols.push(format!("{}:{c}", i.id));
        }
        for f in &i.fields {
            cols.push(format!("{}.{}", i.id, f.field));
            cols.push(format!("{}.{}.source", i.id, f.field));
            cols.push(format!("{}.{}.as_of", i.id, f.field));
        }
    }
    cols
}

/// One interface's cells of a firm's row: exported (with the authorization relied on and the
/// masked view) or skipped with the reason.
enum Cells<'a> {
    Included(&'a Authorization, &'a MaskedView),
    Skipped(&'a str),
}

/// Appends one interface's cells (in [`columns`] order) to `row`. A field's value is its
/// masked value when present (strings as they are, anything else as JSON), empty otherwise.
fn push_cells(row: &mut Vec<Option<String>>, iface: &DataInterface, cells: Cells<'_>) {
    match cells {
        Cells::Skipped(reason) => {
            row.push(Some("skipped".into()));
            row.push(Some(reason.to_owned()));
            row.push(None);
            row.extend(std::iter::repeat_n(None, iface.fields.len() * 3));
        }
        Cells::Included(a, view) => {
            row.push(Some("included".into()));
            row.push(None);
            row.push(Some(a.id.to_string()));
            for f in &view.fields {
                let value = match (&f.status, &f.value) {
                    (FieldStatus::Present, Some(Value::String(s))) => Some(s.clone()),
                    (FieldStatus::Present, Some(v)) => Some(v.to_string()),
                    _ => None,
                };
                row.push(value);
                row.push(f.source.clone());
                row.push(f.as_of.map(|d| d.to_string()));
            }
        }
    }
}

/// The rows as CSV with a header (quoted where needed, by the csv writer).
pub fn to_csv(columns: &[String], rows: &[Vec<Option<String>>]) -> Result<Vec<u8>, Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| Error::Internal(format!("export CSV not written: {e}"));
    w.write_record(columns).map_err(fail)?;
    for row in rows {
        w.write_record(row.iter().map(|c| c.as_deref().unwrap_or("")))
            .map_err(fail)?;
    }
    w.into_inner()
        .map_err(|e| Error::Internal(format!("export CSV not written: {e}")))
}

/// The rows as a Parquet file, every column a nullable UTF-8 string.
pub fn to_parquet(columns: &[String], rows: &[Vec<Option<String>>]) -> Result<Vec<u8>, Error> {
    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;

    let fail =
        |e: &dyn std::fmt::Display| Error::Internal(format!("export Parquet not written: {e}"));
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = (0..columns.len())
        .map(|i| {
            Arc::new(
                rows.iter()
                    .map(|r| r.get(i).cloned().flatten())
                    .collect::<StringArray>(),
            ) as ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| fail(&e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut w = ArrowWriter::try_new(Vec::new(), schema, Some(props)).map_err(|e| fail(&e))?;
    w.write(&batch).map_err(|e| fail(&e))?;
    w.into_inner().map_err(|e| fail(&e))
}

/// What one firm of a chunk gave: its row (when any interface was exported) and its skips.
struct FirmResult {
    row: Option<Vec<Option<String>>>,
    included: u64,
    skipped: Vec<SkippedPair>,
}

/// The bulk-export use cases.
pub struct DataExportService {
    ports: StoragePorts,
    quotas: DataQueryConfig,
    catalogue: &'static Catalogue,
}

impl DataExportService {
    /// The use cases over the ports (the outbox must reach [`Destination::DataExports`]), with
    /// the banks' daily quotas the submitted pairs count against.
    pub fn new(ports: StoragePorts, quotas: DataQueryConfig) -> Self {
        DataExportService {
            ports,
            quotas,
            catalogue: Catalogue::builtin(),
        }
    }

    fn audit(&self) -> AuditLog {
        AuditLog::new(self.ports.table.clone())
    }

    fn authorizations(&self) -> Authorizations {
        Authorizations::new(self.ports.table.clone(), self.ports.clock.clone())
    }

    /// Checks and records an export, audited whatever the outcome: an accepted job is recorded
    /// with its audit record and its chunks in one transaction; a refused one leaves a refused
    /// record. A caller without a bank has no tenant to audit under and is refused first.
    pub async fn submit(&self, who: &Principal, req: ExportRequest) -> Result<ExportJob, Error> {
        let bank = who.bank_id.clone().ok_or_else(|| {
            Error::Forbidden("exporting firm data needs a token issued for a bank".into())
        })?;
        let id = self.ports.ids.ulid().to_string();
        let requested: Vec<String> = req
            .interfaces
            .iter()
            .take(16)
            .map(|i| i.chars().take(MAX_ECHOED_ID).collect())
            .collect();
        let mut record = AuditRecord {
            id: id.clone(),
            at: self.ports.clock.now(),
            bank_id: bank.clone(),
            user: who.subject.clone(),
            action: ACTION_SUBMIT.into(),
            uscc: None,
            purpose: Some(req.purpose),
            authorization_id: None,
            subject: Some(requested.join(",")),
            inputs_sha256: None,
            outcome: AuditOutcome::Allowed,
            result: None,
            response_sha256: None,
        };
        match self.submit_inner(who, &bank, req, &id, &mut record).await {
            Ok(job) => Ok(job),
            Err(e) => {
                record.outcome = AuditOutcome::Refused {
                    reason: refusal_code(&e).into(),
                };
                record.result = None;
                record.response_sha256 = None;
                self.audit().append(&record).await?;
                Err(e)
            }
        }
    }

    async fn submit_inner(
        &self,
        who: &Principal,
        bank: &BankId,
        req: ExportRequest,
        id: &str,
        record: &mut AuditRecord,
    ) -> Result<ExportJob, Error> {
        export_bank(who)?;
        let interfaces = self.resolve(&req.interfaces)?;
        record.subject = Some(interfaces.join(","));
        let portfolio = req.firms.is_none();
        let firms = match req.firms {
            Some(list) => {
                if list.is_empty() || list.len() > MAX_FIRMS {
                    return Err(Error::Validation(vec![FieldError::new(
                        "firms",
                        "out_of_range",
                        format!("1–{MAX_FIRMS} firms, got {}", list.len()),
                    )]));
                }
                let mut seen = HashSet::new();
                list.into_iter()
                    .filter(|f| seen.insert(f.clone()))
                    .collect()
            }
            None => self.portfolio(bank).await?,
        };
        let chunks = firms.len().div_ceil(CHUNK_FIRMS) as u64;
        let job = ExportJob {
            id: id.to_owned(),
            bank_id: bank.clone(),
            requested_by: who.subject.clone(),
            interfaces,
            purpose: req.purpose,
            format: req.format,
            portfolio,
            firms: firms.len() as u64,
            chunks,
            created_at: record.at,
            chunks_done: 0,
            firms_included: 0,
            firms_skipped: 0,
            pairs_included: 0,
            pairs_skipped: 0,
            version: 1,
        };
        record.inputs_sha256 = Some(sha256_json(&firms));
        record.result = Some(json!({
            "firms": job.firms, "chunks": chunks, "format": job.format, "portfolio": portfolio,
        }));
        record.response_sha256 = Some(sha256_json(&job));
        let input = serde_json::to_vec(&firms).map_err(|e| Error::Internal(e.to_string()))?;
        self.ports
            .blobs
            .put(&input_blob(bank, id), input, "application/json")
            .await?;
        let mut item = codec::to_item(job_key(bank, id), &job)?;
        item.gsi1 = Some(Key::new(format!("EXPORTS#{bank}"), id.to_owned()));
        let messages = (0..chunks)
            .map(|chunk| {
                Envelope::json(
                    Destination::DataExports,
                    &ExportChunk {
                        bank_id: bank.clone(),
                        job_id: id.to_owned(),
                        chunk,
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ops = [
            TxOp::Put {
                item,
                condition: Some(Condition::NotExists),
            },
            AuditLog::append_op(record)?,
        ];
        let pairs = job.firms * job.interfaces.len() as u64;
        let outbox = &self.ports.outbox;
        let limit = self.quotas.quota_of(bank);
        let counted = quota::take(
            self.ports.table.as_ref(),
            bank,
            limit,
            pairs,
            record.at,
            |count| {
                let mut all = vec![count];
                all.extend(ops.iter().cloned());
                outbox.commit(all, messages.clone())
            },
        )
        .await?;
        if counted.is_err() {
            // Refused before anything was recorded: no job will read the input. (After a fault
            // the commit may still have landed, so the input is kept then.)
            if let Err(e) = self.ports.blobs.delete(&input_blob(bank, id)).await {
                tracing::warn!(bank = %bank, job = %id, error = %e, "refused export's input not removed");
            }
        }
        counted.map_err(|q| Error::QuotaExhausted {
            quota: DAILY_QUOTA,
            detail: format!(
                "the export's {pairs} firm × interface reads do not fit in what is left of the \
                 bank's daily quota of {}; it resets at midnight Beijing time",
                q.limit
            ),
            retry_after_secs: q.retry_after_secs,
        })?;
        tracing::info!(bank = %bank, job = %id, firms = job.firms, chunks, "export job submitted");
        Ok(job)
    }

    /// The requested interfaces as `<id>@<version>`, each once, in the order asked; unknown
    /// ids are named by their position.
    fn resolve(&self, requested: &[String]) -> Result<Vec<String>, Error> {
        if requested.is_empty() {
            return Err(Error::Validation(vec![FieldError::new(
                "interfaces",
                "empty",
                "name at least one interface",
            )]));
        }
        let mut errors = Vec::new();
        let mut out = Vec::new();
        for (n, id) in requested.iter().enumerate() {
            match self.catalogue.get(id) {
                Some(i) => {
                    let tagged = format!("{}@{}", i.id, i.version);
                    if !out.contains(&tagged) {
                        out.push(tagged);
                    }
                }
                None => errors.push(FieldError::new(
                    format!("interfaces[{n}]"),
                    "unknown_interface",
                    format!(
                        "no data interface {}",
                        id.chars().take(MAX_ECHOED_ID).collect::<String>()
                    ),
                )),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(Error::Validation(errors))
        }
    }

    /// The firms that gave the bank an authorization (live or not: each is checked when its
    /// chunk is processed), in USCC order.
    async fn portfolio(&self, bank: &BankId) -> Result<Vec<Uscc>, Error> {
        let items = all_pages(
            self.ports.table.as_ref(),
            Query::partition(format!("AUTHZ_BANK#{bank}")).on_gsi1(),
        )
        .await?;
        let mut firms = BTreeSet::new();
        for item in items {
            let a: Authorization = codec::from_item(item)?;
            firms.insert(a.uscc);
        }
        if firms.is_empty() {
            return Err(Error::Validation(vec![FieldError::new(
                "firms",
                "empty",
                "no firm has authorized this bank: there is nothing to export",
            )]));
        }
        if firms.len() > MAX_FIRMS {
            return Err(Error::Validation(vec![FieldError::new(
                "firms",
                "out_of_range",
                format!(
                    "the portfolio has {} firms, more than {MAX_FIRMS}: list the firms instead",
                    firms.len()
                ),
            )]));
        }
        Ok(firms.into_iter().collect())
    }

    /// The caller's job with its progress, audited (another bank's job does not exist for it).
    pub async fn view(&self, who: &Principal, id: &str) -> Result<ExportJobView, Error> {
        let bank = who.bank_id.clone().ok_or_else(|| {
            Error::Forbidden("reading an export needs a token issued for a bank".into())
        })?;
        let mut record = AuditRecord {
            id: self.ports.ids.ulid().to_string(),
            at: self.ports.clock.now(),
            bank_id: bank.clone(),
            user: who.subject.clone(),
            action: ACTION_VIEW.into(),
            uscc: None,
            purpose: None,
            authorization_id: None,
            subject: Some(id.chars().take(MAX_ECHOED_ID).collect()),
            inputs_sha256: None,
            outcome: AuditOutcome::Allowed,
            result: None,
            response_sha256: None,
        };
        let answer = self.view_inner(who, &bank, id).await;
        match &answer {
            Ok(view) => {
                record.purpose = Some(view.job.purpose);
                record.result = Some(json!({"status": view.status, "links": view.results.len()}));
                record.response_sha256 = Some(sha256_json(view));
            }
            Err(e) => {
                record.outcome = AuditOutcome::Refused {
                    reason: refusal_code(e).into(),
                }
            }
        }
        self.audit().append(&record).await?;
        answer
    }

    async fn view_inner(
        &self,
        who: &Principal,
        bank: &BankId,
        id: &str,
    ) -> Result<ExportJobView, Error> {
        export_bank(who)?;
        let job = self.job(bank, id).await?;
        let markers = all_pages(
            self.ports.table.as_ref(),
            Query {
                range: KeyRange::Prefix("CHUNK#".into()),
                ..Query::partition(job_pk(bank, id))
            },
        )
        .await?;
        let mut skipped = Vec::new();
        let mut skipped_truncated = false;
        for m in markers {
            let listed: Vec<SkippedPair> = m
                .attrs
                .get("skipped")
                .cloned()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| corrupt("export chunk", e))?
                .unwrap_or_default();
            for pair in listed {
                if skipped.len() < MAX_LISTED_SKIPPED {
                    skipped.push(pair);
                } else {
                    skipped_truncated = true;
                }
            }
        }
        let status = if job.chunks_done >= job.chunks {
            JobStatus::Completed
        } else {
            JobStatus::Running
        };
        let (mut results, mut skipped_lists) = (Vec::new(), Vec::new());
        if status == JobStatus::Completed {
            for chunk in 0..job.chunks {
                let blobs = &self.ports.blobs;
                let part = part_blob(bank, id, chunk, job.format);
                results.push(blobs.presign_get(&part, LINK_TTL).await?.url);
                let list = skipped_blob(bank, id, chunk);
                skipped_lists.push(blobs.presign_get(&list, LINK_TTL).await?.url);
            }
        }
        Ok(ExportJobView {
            job,
            status,
            results,
            skipped_lists,
            skipped,
            skipped_truncated,
        })
    }

    async fn job(&self, bank: &BankId, id: &str) -> Result<ExportJob, Error> {
        let not_found = || {
            Error::NotFound(format!(
                "export job {}",
                id.chars().take(MAX_ECHOED_ID).collect::<String>()
            ))
        };
        if ulid::Ulid::from_string(id).is_err() {
            return Err(not_found());
        }
        match self.ports.table.get(&job_key(bank, id)).await? {
            Some(item) => codec::from_item(item),
            None => Err(not_found()),
        }
    }

    /// Exports one chunk (the queue consumer). Idempotent: a chunk whose marker exists is done;
    /// otherwise (a delivery that failed midway, or one racing another) audit records have
    /// deterministic ids (an earlier delivery's stay), the parts are rewritten whole, and the
    /// counts move in the same transaction as the chunk's marker, so once per chunk.
    pub async fn process(&self, msg: &ExportChunk) -> Result<ExportChunkOutcome, Error> {
        let job = self.job(&msg.bank_id, &msg.job_id).await?;
        if msg.chunk >= job.chunks {
            return Err(Error::Internal(format!(
                "export job {} has {} chunks, not {}",
                job.id, job.chunks, msg.chunk
            )));
        }
        // A chunk already counted wrote its part before its marker: a redelivery changes
        // nothing (not even the part, whose authorizations may have changed since).
        let marker_key = chunk_key(&job.bank_id, &job.id, msg.chunk);
        if self.ports.table.get(&marker_key).await?.is_some() {
            return Ok(ExportChunkOutcome::default());
        }
        let interfaces = job
            .interfaces
            .iter()
            .map(|tagged| {
                let id = tagged.split_once('@').map_or(tagged.as_str(), |(id, _)| id);
                self.catalogue
                    .get(id)
                    .ok_or_else(|| corrupt("export job interface", tagged))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let input = self
            .ports
            .blobs
            .get(&input_blob(&job.bank_id, &job.id))
            .await?
            .ok_or_else(|| corrupt("export input", &job.id))?;
        let firms: Vec<Uscc> =
            serde_json::from_slice(&input).map_err(|e| corrupt("export input", e))?;
        let slice = chunk_of(&firms, msg.chunk, CHUNK_FIRMS);
        let now = self.ports.clock.now();
        let results = join_all(
            slice
                .iter()
                .map(|uscc| self.firm(&job, &interfaces, uscc, now)),
        )
        .await;
        let mut rows = Vec::new();
        let mut skipped = Vec::new();
        let mut outcome = ExportChunkOutcome::default();
        let (mut firms_included, mut firms_skipped) = (0i64, 0i64);
        for r in results {
            let r = r?;
            outcome.included += r.included;
            outcome.skipped += r.skipped.len() as u64;
            match r.row {
                Some(row) => {
                    firms_included += 1;
                    rows.push(row);
                }
                None => firms_skipped += 1,
            }
            skipped.extend(r.skipped);
        }
        let cols = columns(&interfaces);
        let data = match job.format {
            ExportFormat::Csv => to_csv(&cols, &rows)?,
            ExportFormat::Parquet => to_parquet(&cols, &rows)?,
        };
        self.ports
            .blobs
            .put(
                &part_blob(&job.bank_id, &job.id, msg.chunk, job.format),
                data,
                job.format.content_type(),
            )
            .await?;
        let skipped_rows: Vec<Vec<Option<String>>> = skipped
            .iter()
            .map(|s| {
                vec![
                    Some(s.uscc.to_string()),
                    Some(s.interface.clone()),
                    Some(s.reason.clone()),
                ]
            })
            .collect();
        let skipped_cols = ["uscc", "interface", "reason"].map(str::to_owned);
        self.ports
            .blobs
            .put(
                &skipped_blob(&job.bank_id, &job.id, msg.chunk),
                to_csv(&skipped_cols, &skipped_rows)?,
                ExportFormat::Csv.content_type(),
            )
            .await?;
        let marker = serde_json::Map::from_iter([
            ("included".into(), json!(outcome.included)),
            (
                "skipped".into(),
                serde_json::to_value(&skipped).map_err(|e| Error::Internal(e.to_string()))?,
            ),
        ]);
        let add = vec![
            ("chunks_done".into(), 1),
            ("firms_included".into(), firms_included),
            ("firms_skipped".into(), firms_skipped),
            ("pairs_included".into(), outcome.included as i64),
            ("pairs_skipped".into(), outcome.skipped as i64),
        ];
        let marker = Item::new(marker_key, marker);
        let job_key = job_key(&job.bank_id, &job.id);
        outcome.counted = count_chunk_once(self.ports.table.as_ref(), marker, job_key, add).await?;
        Ok(outcome)
    }

    /// One firm of a chunk: each interface checked against the firm's authorizations now,
    /// masked when allowed, audited either way.
    async fn firm(
        &self,
        job: &ExportJob,
        interfaces: &[&DataInterface],
        uscc: &Uscc,
        now: DateTime<Utc>,
    ) -> Result<FirmResult, Error> {
        let held = self.authorizations().held(uscc, &job.bank_id).await?;
        let mut profile: Option<FirmProfile> = None;
        let mut row = vec![Some(uscc.to_string())];
        let mut result = FirmResult {
            row: None,
            included: 0,
            skipped: Vec::new(),
        };
        for iface in interfaces {
            let mut record = AuditRecord {
                id: format!("{}.{uscc}.{}", job.id, iface.id),
                at: now,
                bank_id: job.bank_id.clone(),
                user: job.requested_by.clone(),
                action: ACTION_FIRM.into(),
                uscc: Some(uscc.clone()),
                purpose: Some(job.purpose),
                authorization_id: None,
                subject: Some(format!("{}@{}", iface.id, iface.version)),
                inputs_sha256: None,
                outcome: AuditOutcome::Allowed,
                result: Some(json!({"export": job.id})),
                response_sha256: None,
            };
            let refusal = match live(&held, &iface.id, job.purpose, now) {
                Err(r) => Some(QueryRefusal::from(r)),
                Ok(a) => {
                    record.authorization_id = Some(a.id);
                    if profile.is_none() {
                        profile = Some(profiles::profile(self.ports.table.as_ref(), uscc).await?);
                    }
                    let firm = profile.as_ref().map(|p| (p, iface.categories()));
                    match firm {
                        Some((p, wanted)) if p.keys().any(|c| wanted.contains(c)) => {
                            let view = mask_view(iface, p);
                            record.response_sha256 = Some(sha256_json(&view));
                            push_cells(&mut row, iface, Cells::Included(a, &view));
                            result.included += 1;
                            None
                        }
                        _ => Some(QueryRefusal::NoProfile(uscc.clone())),
                    }
                }
            };
            if let Some(r) = refusal {
                let reason = r.code();
                record.outcome = AuditOutcome::Refused {
                    reason: reason.into(),
                };
                push_cells(&mut row, iface, Cells::Skipped(reason));
                result.skipped.push(SkippedPair {
                    uscc: uscc.clone(),
                    interface: iface.id.clone(),
                    reason: reason.into(),
                });
            }
            self.audit().append(&record).await?;
        }
        if result.included > 0 {
            result.row = Some(row);
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue_interfaces() -> Vec<&'static DataInterface> {
        Catalogue::builtin().interfaces.iter().collect()
    }

    #[test]
    fn columns_are_unique_and_match_the_cells_of_a_row() {
        let ifaces = catalogue_interfaces();
        let cols = columns(&ifaces);
        let unique: HashSet<&String> = cols.iter().collect();
        assert_eq!(unique.len(), cols.len(), "duplicate column in {cols:?}");
        let mut row = vec![Some("X".to_owned())];
        for i in &ifaces {
            push_cells(&mut row, i, Cells::Skipped("expired"));
        }
        assert_eq!(row.len(), cols.len());
        let profile = FirmProfile::new();
        let view = mask_view(ifaces[0], &profile);
        let a: Authorization = serde_json::from_value(json!({
            "id": ulid::Ulid::nil().to_string(), "uscc": "91350100M000100Y43",
            "bank_id": "nbcb", "scope": [], "purposes": [],
            "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2027-01-01T00:00:00Z",
            "evidence": {"consented_by": "x", "method": "counter", "text_version": "v", "at": "2026-01-01T00:00:00Z"}
        }))
        .expect("authorization");
        let mut one = Vec::new();
        push_cells(&mut one, ifaces[0], Cells::Included(&a, &view));
        assert_eq!(one.len(), 3 + 3 * ifaces[0].fields.len());
        assert_eq!(one[0].as_deref(), Some("included"));
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_parquet_reads_back() {
        let cols = vec!["uscc".to_owned(), "a.name".to_owned()];
        let rows = vec![
            vec![
                Some("X1".to_owned()),
                Some("张*, \"quoted\"\nline".to_owned()),
            ],
            vec![Some("X2".to_owned()), None],
        ];
        let csv_bytes = to_csv(&cols, &rows).expect("csv");
        let mut r = csv::Reader::from_reader(csv_bytes.as_slice());
        let back: Vec<csv::StringRecord> = r.records().map(|x| x.expect("record")).collect();
        assert_eq!(back.len(), 2);
        assert_eq!(&back[0][1], "张*, \"quoted\"\nline");
        assert_eq!(&back[1][1], "");

        let pq = to_parquet(&cols, &rows).expect("parquet");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(pq),
        )
        .expect("reader")
        .build()
        .expect("build");
        let batches: Vec<_> = reader.map(|b| b.expect("batch")).collect();
        let batch = &batches[0];
        assert_eq!(batch.num_rows(), 2);
        let names = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .expect("strings");
        assert_eq!(names.value(0), "张*, \"quoted\"\nline");
        assert!(arrow_array::Array::is_null(names, 1));
    }

    #[test]
    fn refusals_are_coded_for_the_audit() {
        assert_eq!(
            refusal_code(&Error::Forbidden("x".into())),
            "forbidden_role"
        );
        assert_eq!(refusal_code(&Error::Validation(vec![])), "invalid_request");
        assert_eq!(refusal_code(&Error::NotFound("x".into())), "not_found");
        assert_eq!(refusal_code(&Error::Internal("x".into())), "error");
    }

    #[test]
    fn only_a_banks_data_roles_export() {
        let mut who = Principal {
            subject: "u".into(),
            bank_id: Some(BankId::parse("nbcb").expect("bank")),
            roles: vec![Role::LoanOfficer],
        };
        assert!(export_bank(&who).is_ok());
        who.roles = vec![Role::RiskAdmin];
        assert!(export_bank(&who).is_ok());
        who.roles = vec![Role::ProductAdmin];
        assert!(matches!(export_bank(&who), Err(Error::Forbidden(_))));
        who.roles = vec![Role::PlatformAdmin];
        who.bank_id = None;
        assert!(matches!(export_bank(&who), Err(Error::Forbidden(_))));
    }
}
