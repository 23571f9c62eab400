//! Indicator snapshots: one per period (month), columnar Parquet split into shards, listed by a
//! manifest. This crate holds the one definition of the snapshot schema ([`schema`]): `uscc`
//! (text, never null), then one nullable column per catalogue indicator, named by its id —
//! money and counts as `Int64`, ratios as `Float64`, yes/no as `Boolean`, categories as `Utf8`
//! — then the registration columns screening filters on ([`REGISTRATION_COLUMNS`]): `industry`
//! (GB/T 4754 code, `Utf8`) and `established_on` (`Date32`). Those two are not indicators: risk
//! rules and product conditions cannot name them.
//!
//! The [`Writer`] writes shards and the manifest. The reader ([`Snapshot::open`]) accepts any
//! Parquet file (or folder of them) with a `uscc` column and any subset of known columns,
//! so banks can backtest on data exported from elsewhere: extra columns are ignored, a column
//! of the wrong type is an error naming it, and a malformed file is an error, never a panic.

pub mod build;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{ChunkReader, Length};
use puhui_domain::indicators::{CATALOGUE, IndicatorType};
use serde::{Deserialize, Serialize};

/// Version of the snapshot schema written into every manifest (2: the registration columns).
pub const SCHEMA_VERSION: u32 = 2;
/// Oldest manifest version still read. A version-1 snapshot is version 2 without the
/// registration columns, and a missing column reads as all-missing; accepting it lets the first
/// build after an upgrade carry the indicators of the last old snapshot forward.
pub const OLDEST_READABLE_VERSION: u32 = 1;
/// The firm's industry column (GB/T 4754 code, from its registration).
pub const INDUSTRY: &str = "industry";
/// The firm's establishment date column (from its registration).
pub const ESTABLISHED_ON: &str = "established_on";
/// The firm's code column.
pub const USCC: &str = "uscc";
/// The manifest's file name inside a snapshot folder.
pub const MANIFEST: &str = "manifest.json";
/// Rows per Parquet row group written (also the unit of parallel reading).
pub const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Rows per batch when reading.
pub const READ_BATCH_ROWS: usize = 64 * 1024;

/// Why a snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid Parquet, or a page in it is corrupt.
    #[error("{path}: not a readable Parquet snapshot: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    /// The file has no `uscc` column.
    #[error("{path}: no `uscc` column")]
    NoUscc { path: PathBuf },
    /// A known column holds values of a type it cannot hold.
    #[error("{path}: column `{column}` is {found}, expected {expected}")]
    WrongType {
        path: PathBuf,
        column: String,
        expected: String,
        found: String,
    },
    /// A batch handed to the writer does not have the snapshot schema.
    #[error("batch does not have the snapshot schema: {0}")]
    Schema(String),
    /// The manifest is missing, unreadable or does not match the shards.
    #[error("{path}: {detail}")]
    Manifest { path: PathBuf, detail: String },
    /// The path holds no Parquet files.
    #[error("{path}: no Parquet files")]
    Empty { path: PathBuf },
}

/// Result of a snapshot operation.
pub type Result<T> = std::result::Result<T, SnapshotError>;

/// The Arrow type an indicator of `kind` is stored as.
pub fn data_type(kind: IndicatorType) -> DataType {
    match kind {
        IndicatorType::Fen | IndicatorType::Integer => DataType::Int64,
        IndicatorType::Ratio => DataType::Float64,
        IndicatorType::Boolean => DataType::Boolean,
        IndicatorType::Category(_) => DataType::Utf8,
    }
}

/// What a value column of the snapshot (any column but `uscc`) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A catalogue indicator of this type.
    Indicator(IndicatorType),
    /// A GB/T 4754 industry code, as text.
    Industry,
    /// A calendar date.
    Date,
}

/// One value column of the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueColumn {
    /// Column name (an indicator's id, or a registration field's name).
    pub name: &'static str,
    /// What it holds.
    pub kind: ColumnKind,
}

/// The registration columns, after the indicators: carried like indicators (newest as-of wins,
/// carried forward), read by screening.
pub const REGISTRATION_COLUMNS: &[ValueColumn] = &[
    ValueColumn {
        name: INDUSTRY,
        kind: ColumnKind::Industry,
    },
    ValueColumn {
        name: ESTABLISHED_ON,
        kind: ColumnKind::Date,
    },
];

/// Every value column in schema order: the catalogue indicators, then [`REGISTRATION_COLUMNS`].
pub fn value_columns() -> impl Iterator<Item = ValueColumn> + Clone {
    CATALOGUE
        .iter()
        .map(|i| ValueColumn {
            name: i.id,
            kind: ColumnKind::Indicator(i.kind),
        })
        .chain(REGISTRATION_COLUMNS.iter().copied())
}

/// The Arrow type a value column of `kind` is stored as.
pub fn column_type(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::Indicator(k) => data_type(k),
        ColumnKind::Industry => DataType::Utf8,
        ColumnKind::Date => DataType::Date32,
    }
}

/// The snapshot schema: `uscc`, then every value column ([`value_columns`]) in order.
pub fn schema() -> SchemaRef {
    let mut fields = vec![Field::new(USCC, DataType::Utf8, false)];
    fields.extend(value_columns().map(|c| Field::new(c.name, column_type(c.kind), true)));
    Arc::new(Schema::new(fields))
}

/// One shard as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// File name relative to the snapshot folder.
    pub path: String,
    /// Firms in the shard.
    pub rows: u64,
}

/// What a snapshot folder holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// The month, `YYYY-MM`.
    pub period: String,
    /// The shards, in order.
    pub shards: Vec<ShardEntry>,
    /// Sum of the shards' rows.
    pub total_rows: u64,
    /// True when the writer saw every row in strictly increasing USCC order, across shards in
    /// manifest order (as the builder writes them): a reader after the first firms by USCC may
    /// stop at the shard where it has enough. Absent (false) in version-1 manifests.
    #[serde(default)]
    pub sorted_by_uscc: bool,
}

impl Manifest {
    /// Reads `dir/manifest.json`.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let bytes = std::fs::read(&path).map_err(|source| SnapshotError::Io {
            path: path.clone(),
            source,
        })?;
        parse_manifest(&bytes, &path.to_string_lossy())
    }
}

/// `YYYY-MM` with a month 01–12.
pub fn valid_period(p: &str) -> bool {
    puhui_domain::risk::Period::parse(p).is_ok()
}

/// Writes a snapshot folder: shards `part-00000.parquet`, … then `manifest.json`.
#[derive(Debug)]
pub struct Writer {
    dir: PathBuf,
    period: String,
    shards: Vec<ShardEntry>,
    schema: SchemaRef,
    /// The last USCC written, while every row so far came in strictly increasing order.
    order: Order,
}

/// What the writer knows of the rows' USCC order so far.
#[derive(Debug)]
enum Order {
    /// Strictly increasing; the last code written, if any.
    Sorted(Option<String>),
    /// Some row came out of order (or repeated a code).
    Unsorted,
}

impl Writer {
    /// Starts a snapshot of `period` (`YYYY-MM`) in `dir` (created if absent).
    pub fn create(dir: &Path, period: &str) -> Result<Writer> {
        if !valid_period(period) {
            return Err(SnapshotError::Manifest {
                path: dir.to_path_buf(),
                detail: format!("period {period:?} is not YYYY-MM"),
            });
        }
        std::fs::create_dir_all(dir).map_err(|source| SnapshotError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Writer {
            dir: dir.to_path_buf(),
            period: period.to_owned(),
            shards: Vec::new(),
            schema: schema(),
            order: Order::Sorted(None),
        })
    }

    /// Writes one shard from batches that have exactly the snapshot schema.
    pub fn write_shard(&mut self, batches: &[RecordBatch]) -> Result<&ShardEntry> {
        let name = format!("part-{:05}.parquet", self.shards.len());
        let path = self.dir.join(&name);
        let rows = write_parquet(&path, &self.schema, batches)?;
        for b in batches {
            self.follow_order(b);
        }
        self.shards.push(ShardEntry { path: name, rows });
        Ok(&self.shards[self.shards.len() - 1])
    }

    /// Notes whether `b`'s codes continue the strictly increasing order (one comparison a row).
    fn follow_order(&mut self, b: &RecordBatch) {
        use arrow_array::cast::AsArray;
        let Order::Sorted(last) = &self.order else {
            return;
        };
        // The schema check made `uscc` the first column, text, never null.
        let codes = b.column(0).as_string::<i32>();
        let mut previous = last.as_deref();
        let mut sorted = true;
        for code in codes.iter().flatten() {
            if previous.is_some_and(|p| p >= code) {
                sorted = false;
                break;
            }
            previous = Some(code);
        }
        let last = previous.map(str::to_owned);
        self.order = if sorted {
            Order::Sorted(last)
        } else {
            Order::Unsorted
        };
    }

    /// Writes the manifest and returns it.
    pub fn finish(self) -> Result<Manifest> {
        let manifest = Manifest {
            schema_version: SCHEMA_VERSION,
            period: self.period,
            total_rows: self.shards.iter().map(|s| s.rows).sum(),
            shards: self.shards,
            sorted_by_uscc: matches!(self.order, Order::Sorted(_)),
        };
        let path = self.dir.join(MANIFEST);
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| SnapshotError::Manifest {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let mut json = json;
        json.push(b'\n');
        std::fs::write(&path, json).map_err(|source| SnapshotError::Io { path, source })?;
        Ok(manifest)
    }
}

/// Writes `batches` (each with schema `schema`) to one Snappy-compressed Parquet file.
fn write_parquet(path: &Path, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<u64> {
    for b in batches {
        if b.schema().fields() != schema.fields() {
            return Err(SnapshotError::Schema(format!(
                "expected [{}], got [{}]",
                describe(schema),
                describe(&b.schema())
            )));
        }
    }
    let parquet_err = |source| SnapshotError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(|source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_size(ROW_GROUP_ROWS)
        .build();
    let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(parquet_err)?;
    let mut rows = 0u64;
    for b in batches {
        w.write(b).map_err(parquet_err)?;
        rows += b.num_rows() as u64;
    }
    w.close().map_err(parquet_err)?;
    Ok(rows)
}

fn describe(s: &Schema) -> String {
    s.fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a column read from Parquet can hold the values of a column of `kind` (the types
/// the columnar evaluator and screening read), and what it should be when it cannot.
fn accepts(kind: ColumnKind, t: &DataType) -> std::result::Result<(), &'static str> {
    use IndicatorType::*;
    let (ok, expected) = match kind {
        ColumnKind::Indicator(Fen | Integer | Ratio) => (
            matches!(
                t,
                DataType::Int64 | DataType::Int32 | DataType::Float64 | DataType::Float32
            ),
            "a number (Int32/Int64/Float32/Float64)",
        ),
        ColumnKind::Indicator(Boolean) => (*t == DataType::Boolean, "boolean"),
        ColumnKind::Indicator(Category(_)) | ColumnKind::Industry => {
            (matches!(t, DataType::Utf8 | DataType::LargeUtf8), "text")
        }
        ColumnKind::Date => (*t == DataType::Date32, "a date (Date32)"),
    };
    if ok { Ok(()) } else { Err(expected) }
}

/// One row group of one file: the unit of (parallel) reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The Parquet file.
    pub path: PathBuf,
    /// Row group index within it.
    pub row_group: usize,
    /// Rows in it.
    pub rows: u64,
}

/// A checked snapshot: its files, their row groups and the columns that will be read.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Row groups in file order.
    pub parts: Vec<Part>,
    /// The manifest, when the path is a folder that has one.
    pub manifest: Option<Manifest>,
    /// Value columns present (in every file), in schema order: indicators, then registration.
    pub columns: Vec<String>,
    /// Each file's parsed footer, so reading a part does not parse it again.
    footers: Vec<(PathBuf, ArrowReaderMetadata)>,
}

impl Snapshot {
    /// Opens a Parquet file or a folder of them (with or without a manifest) and checks every
    /// file's schema and footer; reading values happens in [`Snapshot::read`].
    pub fn open(path: &Path) -> Result<Snapshot> {
        let meta = std::fs::metadata(path).map_err(|source| SnapshotError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let (files, manifest) = if meta.is_dir() {
            if path.join(MANIFEST).exists() {
                let m = Manifest::load(path)?;
                let files = m.shards.iter().map(|s| path.join(&s.path)).collect();
                (files, Some(m))
            } else {
                let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                    .map_err(|source| SnapshotError::Io {
                        path: path.to_path_buf(),
                        source,
                    })?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
                    .collect();
                files.sort();
                (files, None)
            }
        } else {
            (vec![path.to_path_buf()], None)
        };
        if files.is_empty() {
            return Err(SnapshotError::Empty {
                path: path.to_path_buf(),
            });
        }
        let mut parts = Vec::new();
        let mut columns: Option<Vec<String>> = None;
        let mut footers = Vec::with_capacity(files.len());
        for (i, file) in files.iter().enumerate() {
            let footer = footer(file)?;
            let present = check_columns(file, footer.schema())?;
            // Columns absent from any file are treated as absent everywhere (all missing).
            columns = Some(match columns {
                None => present,
                Some(prev) => prev.into_iter().filter(|c| present.contains(c)).collect(),
            });
            let md = footer.metadata().clone();
            let rows: u64 = md.row_groups().iter().map(|g| g.num_rows() as u64).sum();
            if let Some(m) = &manifest
                && m.shards[i].rows != rows
            {
                return Err(SnapshotError::Manifest {
                    path: path.join(MANIFEST),
                    detail: format!(
                        "shard {} has {rows} rows, the manifest says {}",
                        m.shards[i].path, m.shards[i].rows
                    ),
                });
            }
            parts.extend(md.row_groups().iter().enumerate().map(|(g, rg)| Part {
                path: file.clone(),
                row_group: g,
                rows: rg.num_rows() as u64,
            }));
            footers.push((file.clone(), footer));
        }
        Ok(Snapshot {
            parts,
            manifest,
            columns: columns.unwrap_or_default(),
            footers,
        })
    }

    /// Rows over all parts.
    pub fn rows(&self) -> u64 {
        self.parts.iter().map(|p| p.rows).sum()
    }

    /// Reads one part: `uscc` and the known value columns, other columns skipped.
    pub fn read(&self, part: &Part) -> Result<Vec<RecordBatch>> {
        self.read_columns(part, &self.columns, true)
    }

    /// Reads one part with only the named value columns (those present), and `uscc` if
    /// asked: a scan that only counts decodes only what its rules look at.
    pub fn read_columns(
        &self,
        part: &Part,
        columns: &[String],
        uscc: bool,
    ) -> Result<Vec<RecordBatch>> {
        let footer = match self.footers.iter().find(|(p, _)| *p == part.path) {
            Some((_, f)) => f.clone(),
            None => footer(&part.path)?,
        };
        let mask = projection(footer.parquet_schema(), uscc, &self.columns, Some(columns));
        let parquet_err = |source| SnapshotError::Parquet {
            path: part.path.clone(),
            source,
        };
        let window = Window::read(&part.path, &footer, part.row_group, &mask)?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(window, footer)
            .with_projection(mask)
            .with_row_groups(vec![part.row_group])
            .with_batch_size(READ_BATCH_ROWS)
            .build()
            .map_err(parquet_err)?;
        reader
            .map(|b| {
                b.map_err(|e| SnapshotError::Parquet {
                    path: part.path.clone(),
                    source: e.into(),
                })
            })
            .collect()
    }

    /// Every batch of every part, in order.
    pub fn read_all(&self) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for p in &self.parts {
            out.extend(self.read(p)?);
        }
        Ok(out)
    }
}

/// The footer of `path`, with Parquet's own types (an embedded Arrow schema asking for
/// dictionaries or string views is ignored, so every writer's strings read as `Utf8`).
fn footer(path: &Path) -> Result<ArrowReaderMetadata> {
    let file = File::open(path).map_err(|source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    ArrowReaderMetadata::load(
        &file,
        ArrowReaderOptions::new().with_skip_arrow_metadata(true),
    )
    .map_err(|source| SnapshotError::Parquet {
        path: path.to_path_buf(),
        source,
    })
}

/// The wanted column chunks of one row group, read with one call and served from memory at
/// their file offsets: reading a `File` directly opens, seeks and reads it once or twice per
/// page.
struct Window {
    start: u64,
    bytes: Bytes,
}

impl Window {
    fn read(
        path: &Path,
        footer: &ArrowReaderMetadata,
        row_group: usize,
        mask: &ProjectionMask,
    ) -> Result<Window> {
        let io = |source| SnapshotError::Io {
            path: path.to_path_buf(),
            source,
        };
        // From the first wanted chunk to the end of the last (chunks in between come along).
        let (mut start, mut end) = (u64::MAX, 0);
        if let Some(rg) = footer.metadata().row_groups().get(row_group) {
            for (leaf, chunk) in rg.columns().iter().enumerate() {
                if mask.leaf_included(leaf) {
                    let (from, len) = chunk.byte_range();
                    start = start.min(from);
                    end = end.max(from.saturating_add(len));
                }
            }
        }
        if start >= end {
            return Ok(Window {
                start: 0,
                bytes: Bytes::new(),
            });
        }
        let mut file = File::open(path).map_err(io)?;
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut buf = Vec::with_capacity(usize::try_from(end - start).unwrap_or(0));
        file.take(end - start).read_to_end(&mut buf).map_err(io)?;
        Ok(Window {
            start,
            bytes: buf.into(),
        })
    }

    fn offset(&self, at: u64) -> parquet::errors::Result<u64> {
        at.checked_sub(self.start).ok_or_else(|| {
            parquet::errors::ParquetError::EOF(format!("offset {at} before the bytes read"))
        })
    }
}

impl Length for Window {
    fn len(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl ChunkReader for Window {
    type T = <Bytes as ChunkReader>::T;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        self.bytes.get_read(self.offset(start)?)
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.bytes.get_bytes(self.offset(start)?, length)
    }
}

/// Checks `uscc` and the types of the known value columns; returns the value columns present.
fn check_columns(path: &Path, schema: &Schema) -> Result<Vec<String>> {
    let wrong = |column: &str, expected: &str, found: &DataType| SnapshotError::WrongType {
        path: path.to_path_buf(),
        column: column.to_owned(),
        expected: expected.to_owned(),
        found: found.to_string(),
    };
    let uscc = schema
        .field_with_name(USCC)
        .map_err(|_| SnapshotError::NoUscc {
            path: path.to_path_buf(),
        })?;
    if !matches!(uscc.data_type(), DataType::Utf8 | DataType::LargeUtf8) {
        return Err(wrong(USCC, "text", uscc.data_type()));
    }
    let mut present = Vec::new();
    for c in value_columns() {
        if let Ok(f) = schema.field_with_name(c.name) {
            accepts(c.kind, f.data_type())
                .map_err(|expected| wrong(c.name, expected, f.data_type()))?;
            present.push(c.name.to_owned());
        }
    }
    Ok(present)
}

/// The columns to decode: `uscc` if asked, and the value columns `present` in the file that are
/// among `columns` (all of them when `None`).
fn projection(
    schema: &parquet::schema::types::SchemaDescriptor,
    uscc: bool,
    present: &[String],
    columns: Option<&[String]>,
) -> ProjectionMask {
    let wanted: Vec<usize> = schema
        .root_schema()
        .get_fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            (uscc && f.name() == USCC)
                || (present.iter().any(|c| c == f.name())
                    && columns.is_none_or(|cs| cs.iter().any(|c| c == f.name())))
        })
        .map(|(i, _)| i)
        .collect();
    ProjectionMask::roots(schema, wanted)
}

/// Reads a whole shard held in memory (as fetched from the blob store): `uscc` and the known
/// value columns present — only those in `columns` when given, so a scan decodes only what
/// its rules read — with the same checks as [`Snapshot::open`]. `name` (the blob key) labels
/// errors, so a malformed shard fails naming itself.
pub fn read_shard_bytes(
    bytes: bytes::Bytes,
    name: &str,
    columns: Option<&[String]>,
) -> Result<Vec<RecordBatch>> {
    let path = PathBuf::from(name);
    let parquet_err = |source| SnapshotError::Parquet {
        path: path.clone(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(
        bytes,
        ArrowReaderOptions::new().with_skip_arrow_metadata(true),
    )
    .map_err(parquet_err)?;
    let present = check_columns(&path, builder.schema())?;
    let mask = projection(builder.parquet_schema(), true, &present, columns);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .map_err(parquet_err)?;
    reader
        .map(|b| {
            b.map_err(|e| SnapshotError::Parquet {
                path: path.clone(),
                source: e.into(),
            })
        })
        .collect()
}

/// Each row of a snapshot batch as its firm and its values as JSON — numbers, booleans, labels
/// and dates (`YYYY-MM-DD`), nulls left out — so tests and tools compare snapshots by value.
/// Columns of other types are left out too.
pub fn rows_as_json(b: &RecordBatch) -> Vec<(String, serde_json::Map<String, serde_json::Value>)> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Float64Type, Int64Type};
    use serde_json::Value;
    let Some(codes) = b
        .column_by_name(USCC)
        .and_then(|c| c.as_string_opt::<i32>())
    else {
        return Vec::new();
    };
    (0..b.num_rows())
        .map(|r| {
            let mut values = serde_json::Map::new();
            for (field, col) in b.schema().fields().iter().zip(b.columns()) {
                if field.name() == USCC || col.is_null(r) {
                    continue;
                }
                let v = match col.data_type() {
                    DataType::Int64 => Value::from(col.as_primitive::<Int64Type>().value(r)),
                    DataType::Float64 => Value::from(col.as_primitive::<Float64Type>().value(r)),
                    DataType::Boolean => Value::from(col.as_boolean().value(r)),
                    DataType::Utf8 => Value::from(col.as_string::<i32>().value(r)),
                    DataType::Date32 => match col.as_primitive::<Date32Type>().value_as_date(r) {
                        Some(d) => Value::from(d.to_string()),
                        None => continue,
                    },
                    _ => continue,
                };
                values.insert(field.name().clone(), v);
            }
            (codes.value(r).to_owned(), values)
        })
        .collect()
}

/// The manifest in `bytes` (as fetched from the blob store), checked: schema version readable
/// ([`OLDEST_READABLE_VERSION`] to [`SCHEMA_VERSION`]), period valid, rows adding up.
pub fn parse_manifest(bytes: &[u8], name: &str) -> Result<Manifest> {
    let bad = |detail: String| SnapshotError::Manifest {
        path: PathBuf::from(name),
        detail,
    };
    let m: Manifest =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not a manifest: {e}")))?;
    if !(OLDEST_READABLE_VERSION..=SCHEMA_VERSION).contains(&m.schema_version) {
        return Err(bad(format!(
            "schema version {} (this reader knows {OLDEST_READABLE_VERSION}–{SCHEMA_VERSION})",
            m.schema_version
        )));
    }
    if !valid_period(&m.period) {
        return Err(bad(format!("period {} is not YYYY-MM", m.period)));
    }
    if m.shards.iter().map(|s| s.rows).sum::<u64>() != m.total_rows {
        return Err(bad("shard rows do not add up to total_rows".into()));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use arrow_array::{
        Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
    };

    use super::*;

    fn tmp(name: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "puhui-snapshot-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A full-schema batch of `n` rows: every column filled, every third value null.
    fn batch(n: usize, offset: usize) -> RecordBatch {
        let s = schema();
        let columns: Vec<ArrayRef> = s
            .fields()
            .iter()
            .enumerate()
            .map(|(c, f)| {
                let null = |i: usize| (i + c).is_multiple_of(3);
                let a: ArrayRef = match f.data_type() {
                    DataType::Utf8 if f.name() == USCC => Arc::new(StringArray::from_iter_values(
                        (0..n).map(|i| format!("FIRM{:06}", i + offset)),
                    )),
                    DataType::Utf8 => Arc::new(
                        (0..n)
                            .map(|i| (!null(i)).then_some(["A", "B", "C"][i % 3]))
                            .collect::<StringArray>(),
                    ),
                    DataType::Int64 => Arc::new(
                        (0..n)
                            .map(|i| (!null(i)).then_some((i * 1000 + c) as i64))
                            .collect::<Int64Array>(),
                    ),
                    DataType::Float64 => Arc::new(
                        (0..n)
                            .map(|i| (!null(i)).then_some(i as f64 / 7.0 - 1.0))
                            .collect::<Float64Array>(),
                    ),
                    DataType::Boolean => Arc::new(
                        (0..n)
                            .map(|i| (!null(i)).then_some(i.is_multiple_of(2)))
                            .collect::<BooleanArray>(),
                    ),
                    DataType::Date32 => Arc::new(
                        (0..n)
                            .map(|i| (!null(i)).then_some(10_000 + i as i32))
                            .collect::<Date32Array>(),
                    ),
                    other => panic!("unexpected type {other}"),
                };
                a
            })
            .collect();
        RecordBatch::try_new(s, columns).unwrap()
    }

    fn write_raw(path: &Path, batch: &RecordBatch) {
        let mut w =
            ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
        w.write(batch).unwrap();
        w.close().unwrap();
    }

    #[test]
    fn schema_has_uscc_then_every_indicator_typed_by_kind_then_registration() {
        let s = schema();
        assert_eq!(s.fields().len(), CATALOGUE.len() + 3);
        assert_eq!(s.field(0).name(), USCC);
        assert!(!s.field(0).is_nullable());
        let f = |n: &str| s.field_with_name(n).unwrap().clone();
        assert_eq!(f("tax_paid_12m").data_type(), &DataType::Int64);
        assert_eq!(f("social_insured_headcount").data_type(), &DataType::Int64);
        assert_eq!(f("tax_paid_yoy").data_type(), &DataType::Float64);
        assert_eq!(f("dishonest_debtor").data_type(), &DataType::Boolean);
        assert_eq!(f("tax_credit_grade").data_type(), &DataType::Utf8);
        assert_eq!(s.field(CATALOGUE.len() + 1).name(), INDUSTRY);
        assert_eq!(f(INDUSTRY).data_type(), &DataType::Utf8);
        assert_eq!(f(ESTABLISHED_ON).data_type(), &DataType::Date32);
        assert!(s.fields().iter().skip(1).all(|f| f.is_nullable()));
    }

    #[test]
    fn round_trip_through_shards_and_manifest() {
        let dir = tmp("roundtrip");
        let written = [batch(1000, 0), batch(70_000, 1000), batch(5, 71_000)];
        let mut w = Writer::create(&dir, "2026-10").unwrap();
        w.write_shard(&written[..2]).unwrap();
        w.write_shard(&written[2..]).unwrap();
        let m = w.finish().unwrap();
        assert_eq!(m.schema_version, SCHEMA_VERSION);
        assert_eq!(m.period, "2026-10");
        assert_eq!(m.total_rows, 71_005);
        assert!(m.sorted_by_uscc, "codes increase across batches and shards");
        assert_eq!(
            m.shards,
            vec![
                ShardEntry {
                    path: "part-00000.parquet".into(),
                    rows: 71_000
                },
                ShardEntry {
                    path: "part-00001.parquet".into(),
                    rows: 5
                },
            ]
        );
        assert_eq!(Manifest::load(&dir).unwrap(), m);

        let snap = Snapshot::open(&dir).unwrap();
        assert_eq!(snap.manifest.as_ref(), Some(&m));
        assert_eq!(snap.rows(), 71_005);
        assert_eq!(
            snap.columns.len(),
            CATALOGUE.len() + REGISTRATION_COLUMNS.len()
        );
        // 71,000 rows in 64 Ki row groups: two groups, then the small shard.
        assert_eq!(snap.parts.len(), 3);
        let read = concat_batches(&snap.read_all().unwrap());
        let want = concat_batches(&written);
        assert_eq!(read.schema().fields(), schema().fields());
        assert_eq!(read, want);

        // A single shard file reads on its own too.
        let one = Snapshot::open(&dir.join("part-00001.parquet")).unwrap();
        assert_eq!(one.read_all().unwrap(), vec![written[2].clone()]);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Concatenates batches column by column, so differently split batches compare equal.
    fn concat_batches(batches: &[RecordBatch]) -> RecordBatch {
        let s = batches[0].schema();
        let columns = (0..s.fields().len())
            .map(|c| {
                let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
                concat(&parts)
            })
            .collect();
        RecordBatch::try_new(s, columns).unwrap()
    }

    fn concat(parts: &[&dyn Array]) -> ArrayRef {
        arrow_select::concat::concat(parts).unwrap()
    }

    #[test]
    fn foreign_parquet_with_a_subset_and_extra_columns_is_read() {
        let dir = tmp("foreign");
        let file = dir.join("export.parquet");
        let b = RecordBatch::try_from_iter([
            (
                "uscc",
                Arc::new(StringArray::from(vec!["X1", "X2"])) as ArrayRef,
            ),
            (
                "branch_note",
                Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
            ),
            (
                "tax_arrears",
                Arc::new(BooleanArray::from(vec![Some(true), None])) as ArrayRef,
            ),
            // Counts exported as 32-bit integers are fine.
            (
                "penalties_12m",
                Arc::new(arrow_array::Int32Array::from(vec![3, 0])) as ArrayRef,
            ),
        ])
        .unwrap();
        write_raw(&file, &b);
        // The folder (no manifest) and the file itself both open.
        for path in [&dir, &file] {
            let snap = Snapshot::open(path).unwrap();
            assert!(snap.manifest.is_none());
            assert_eq!(snap.columns, vec!["tax_arrears", "penalties_12m"]);
            let got = snap.read_all().unwrap();
            assert_eq!(got.len(), 1);
            let names: Vec<&str> = got[0]
                .schema_ref()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            assert_eq!(names, vec!["uscc", "tax_arrears", "penalties_12m"]);
            assert_eq!(got[0].num_rows(), 2);
            assert_eq!(got[0].column(1).null_count(), 1);
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn read_columns_decodes_only_what_is_asked() {
        let dir = tmp("project");
        let mut w = Writer::create(&dir, "2026-10").unwrap();
        w.write_shard(&[batch(50, 0)]).unwrap();
        w.finish().unwrap();
        let snap = Snapshot::open(&dir).unwrap();
        let cols = ["tax_arrears".to_owned(), "not_an_indicator".to_owned()];
        let got = snap.read_columns(&snap.parts[0], &cols, false).unwrap();
        let names: Vec<&str> = got[0]
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, vec!["tax_arrears"]);
        assert_eq!(
            got[0].column(0),
            batch(50, 0).column_by_name("tax_arrears").unwrap()
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_column_of_the_wrong_type_is_refused_by_name() {
        let dir = tmp("wrongtype");
        let file = dir.join("bad.parquet");
        let b = RecordBatch::try_from_iter([
            ("uscc", Arc::new(StringArray::from(vec!["X1"])) as ArrayRef),
            (
                "dishonest_debtor",
                Arc::new(Int64Array::from(vec![1])) as ArrayRef,
            ),
        ])
        .unwrap();
        write_raw(&file, &b);
        match Snapshot::open(&file) {
            Err(SnapshotError::WrongType {
                column, expected, ..
            }) => {
                assert_eq!(column, "dishonest_debtor");
                assert_eq!(expected, "boolean");
            }
            other => panic!("expected WrongType, got {other:?}"),
        }
        let msg = Snapshot::open(&file).unwrap_err().to_string();
        assert!(
            msg.contains("dishonest_debtor") && msg.contains("Int64"),
            "{msg}"
        );
        // A registration date written as text is refused by name too.
        let b = RecordBatch::try_from_iter([
            ("uscc", Arc::new(StringArray::from(vec!["X1"])) as ArrayRef),
            (
                ESTABLISHED_ON,
                Arc::new(StringArray::from(vec!["2015-03-02"])) as ArrayRef,
            ),
        ])
        .unwrap();
        write_raw(&file, &b);
        match Snapshot::open(&file) {
            Err(SnapshotError::WrongType {
                column, expected, ..
            }) => assert_eq!(
                (column.as_str(), expected.as_str()),
                (ESTABLISHED_ON, "a date (Date32)")
            ),
            other => panic!("expected WrongType, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn missing_uscc_is_refused() {
        let dir = tmp("nouscc");
        let file = dir.join("x.parquet");
        let b = RecordBatch::try_from_iter([(
            "tax_arrears",
            Arc::new(BooleanArray::from(vec![true])) as ArrayRef,
        )])
        .unwrap();
        write_raw(&file, &b);
        assert!(matches!(
            Snapshot::open(&file),
            Err(SnapshotError::NoUscc { .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn garbage_and_truncated_files_are_errors_not_panics() {
        let dir = tmp("garbage");
        let garbage = dir.join("garbage.parquet");
        std::fs::write(&garbage, b"this is not parquet at all, just some bytes").unwrap();
        let e = Snapshot::open(&garbage).unwrap_err();
        assert!(matches!(e, SnapshotError::Parquet { .. }), "{e:?}");
        assert!(e.to_string().contains("garbage.parquet"), "{e}");

        // A real shard cut in half: the footer is gone.
        let good = dir.join("good.parquet");
        write_raw(&good, &batch(2000, 0));
        let bytes = std::fs::read(&good).unwrap();
        let cut = dir.join("cut.parquet");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(
            Snapshot::open(&cut),
            Err(SnapshotError::Parquet { .. })
        ));

        // Footer intact, data pages overwritten: opening works, reading fails visibly.
        let mut smashed = bytes.clone();
        let mid = smashed.len() / 3;
        for b in &mut smashed[8..mid] {
            *b = 0xAB;
        }
        let smashed_path = dir.join("smashed.parquet");
        std::fs::write(&smashed_path, &smashed).unwrap();
        let outcome = Snapshot::open(&smashed_path).and_then(|s| s.read_all());
        assert!(outcome.is_err(), "corrupt pages must not read as data");

        // An empty folder and a missing path.
        let empty = tmp("empty");
        assert!(matches!(
            Snapshot::open(&empty),
            Err(SnapshotError::Empty { .. })
        ));
        assert!(matches!(
            Snapshot::open(&dir.join("nope")),
            Err(SnapshotError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::remove_dir_all(&empty).ok();
    }

    #[test]
    fn manifest_disagreeing_with_a_shard_is_refused() {
        let dir = tmp("manifest");
        let mut w = Writer::create(&dir, "2026-10").unwrap();
        w.write_shard(&[batch(10, 0)]).unwrap();
        let mut m = w.finish().unwrap();
        m.shards[0].rows = 11;
        m.total_rows = 11;
        std::fs::write(dir.join(MANIFEST), serde_json::to_vec(&m).unwrap()).unwrap();
        let e = Snapshot::open(&dir).unwrap_err();
        assert!(e.to_string().contains("manifest says 11"), "{e}");
        std::fs::write(dir.join(MANIFEST), b"{").unwrap();
        assert!(matches!(
            Snapshot::open(&dir),
            Err(SnapshotError::Manifest { .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_manifest_says_whether_rows_came_sorted_by_uscc() {
        let dir = tmp("order");
        let mut w = Writer::create(&dir, "2026-10").unwrap();
        w.write_shard(&[batch(10, 100)]).unwrap();
        // The next shard starts below the last code of the first.
        w.write_shard(&[batch(10, 105)]).unwrap();
        assert!(!w.finish().unwrap().sorted_by_uscc);
        let mut w = Writer::create(&dir, "2026-10").unwrap();
        w.write_shard(&[batch(10, 100)]).unwrap();
        w.write_shard(&[batch(10, 110), batch(1, 120)]).unwrap();
        assert!(w.finish().unwrap().sorted_by_uscc);
        // A version-1 manifest has no flag: not known to be sorted.
        let v1 = br#"{"schema_version":1,"period":"2026-10","shards":[],"total_rows":0}"#;
        assert!(!parse_manifest(v1, "m").unwrap().sorted_by_uscc);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn writer_refuses_other_schemas_and_bad_periods() {
        let dir = tmp("writer");
        assert!(Writer::create(&dir, "2026-13").is_err());
        assert!(Writer::create(&dir, "202610").is_err());
        let mut w = Writer::create(&dir, "2026-01").unwrap();
        let b = RecordBatch::try_from_iter([(
            "uscc",
            Arc::new(StringArray::from(vec!["X"])) as ArrayRef,
        )])
        .unwrap();
        assert!(matches!(w.write_shard(&[b]), Err(SnapshotError::Schema(_))));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn shards_and_manifests_read_from_memory_as_from_files() {
        let dir = tmp("bytes");
        let mut w = Writer::create(&dir, "2026-10").unwrap();
        w.write_shard(&[batch(10, 0)]).unwrap();
        let m = w.finish().unwrap();
        let from_file = Snapshot::open(&dir).unwrap().read_all().unwrap();
        let shard = std::fs::read(dir.join(&m.shards[0].path)).unwrap();
        let from_bytes =
            read_shard_bytes(shard.clone().into(), "snapshots/2026-10/a", None).unwrap();
        assert_eq!(from_bytes, from_file);
        let wanted = ["tax_arrears".to_owned(), "not_an_indicator".to_owned()];
        let projected =
            read_shard_bytes(shard.clone().into(), "snapshots/2026-10/a", Some(&wanted)).unwrap();
        let names: Vec<String> = projected[0]
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, [USCC, "tax_arrears"]);
        let manifest = std::fs::read(dir.join(MANIFEST)).unwrap();
        assert_eq!(parse_manifest(&manifest, "m").unwrap(), m);

        let e = read_shard_bytes(
            shard[..shard.len() / 2].to_vec().into(),
            "snapshots/x",
            None,
        )
        .unwrap_err();
        assert!(matches!(e, SnapshotError::Parquet { .. }), "{e}");
        assert!(e.to_string().contains("snapshots/x"), "{e}");
        let mut later = m.clone();
        later.schema_version = SCHEMA_VERSION + 1;
        let e = parse_manifest(&serde_json::to_vec(&later).unwrap(), "m").unwrap_err();
        assert!(e.to_string().contains("schema version"), "{e}");
        later.schema_version = 0;
        assert!(parse_manifest(&serde_json::to_vec(&later).unwrap(), "m").is_err());
        // A version-1 manifest (no registration columns yet) still reads.
        later.schema_version = 1;
        assert_eq!(
            parse_manifest(&serde_json::to_vec(&later).unwrap(), "m").unwrap(),
            later
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
