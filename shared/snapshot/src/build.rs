//! Building a period's snapshot from its indicator inputs: pure (batches in, batches out).
//!
//! **Inputs** are what ingest appends for every loaded file: rows of [`input_schema`] — the
//! firm, the row's as-of date and the indicator values (and registration industry and
//! establishment date) the row carried (others null), typed as the snapshot stores them. A row
//! belongs to the period (month) of its as-of date.
//!
//! **The rule** for each firm × value column (indicator or registration column) of the
//! period's snapshot:
//! 1. the period's input value with the newest as-of date (on equal dates the first input in
//!    the order given wins, so a fixed input order gives a fixed result);
//! 2. for a change indicator with a level in the catalogue ([`CHANGES`]) and no input value:
//!    `(level now − level then) / level then`, the level now being this snapshot's value and
//!    the level then the firm's value in the snapshot `months` earlier; not computable when the
//!    base snapshot, the firm's base level or its level now is missing, or the base is zero;
//! 3. otherwise the previous snapshot's value, carried forward (null if none).
//!
//! Every firm of the previous snapshot stays (carried forward), every firm with an input joins;
//! the output has exactly [`schema`], sorted by USCC, cut into shards of [`SHARD_ROWS`] rows in
//! batches of [`ROW_GROUP_ROWS`].

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray, new_null_array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use puhui_domain::IndustryCode;
use puhui_domain::indicators::{CHANGES, IndicatorType};

use crate::{
    ColumnKind, READ_BATCH_ROWS, ROW_GROUP_ROWS, Result, SnapshotError, USCC, ValueColumn,
    column_type, schema, value_columns,
};

/// The as-of column of the inputs.
pub const AS_OF: &str = "as_of";
/// Rows per shard of a built snapshot (1.38 M firms make 6 shards: few enough tasks per scan,
/// small enough for a worker to read one whole).
pub const SHARD_ROWS: usize = 4 * ROW_GROUP_ROWS;

/// The schema of indicator inputs: `uscc`, `as_of` (a date), then every value column (catalogue
/// indicators, then registration columns) as [`schema`] types it.
pub fn input_schema() -> SchemaRef {
    let snapshot = schema();
    let mut fields = vec![
        Field::new(USCC, DataType::Utf8, false),
        Field::new(AS_OF, DataType::Date32, false),
    ];
    fields.extend(snapshot.fields().iter().skip(1).map(|f| f.as_ref().clone()));
    Arc::new(Schema::new(fields))
}

/// Days since 1970-01-01, Arrow's `Date32`.
fn days(d: NaiveDate) -> i32 {
    // 719,163 is the common-era day number of 1970-01-01.
    chrono::Datelike::num_days_from_ce(&d) - 719_163
}

/// Collects input rows into batches of [`input_schema`].
#[derive(Debug)]
pub struct InputRows {
    uscc: Vec<String>,
    as_of: Vec<i32>,
    /// Value column position ([`value_columns`]) → value per row (`None` when the row does
    /// not carry it).
    values: Vec<Vec<Option<serde_json::Value>>>,
}

impl Default for InputRows {
    fn default() -> Self {
        Self::new()
    }
}

impl InputRows {
    /// No rows yet.
    pub fn new() -> Self {
        InputRows {
            uscc: Vec::new(),
            as_of: Vec::new(),
            values: vec![Vec::new(); value_columns().count()],
        }
    }

    /// Rows collected.
    pub fn len(&self) -> usize {
        self.uscc.len()
    }

    /// True when no row was collected.
    pub fn is_empty(&self) -> bool {
        self.uscc.is_empty()
    }

    /// Adds a row of the firm as of `as_of`: the values named by a value column (a catalogue
    /// indicator's id, `industry`, `established_on`) and of its type are kept (others are
    /// skipped). False, adding nothing, when the row carries none.
    pub fn push<'a>(
        &mut self,
        uscc: &str,
        as_of: NaiveDate,
        values: impl IntoIterator<Item = (&'a str, &'a serde_json::Value)>,
    ) -> bool {
        let mut row: Vec<Option<serde_json::Value>> = vec![None; self.values.len()];
        let mut any = false;
        for (id, v) in values {
            if let Some((c, col)) = value_columns().enumerate().find(|(_, c)| c.name == id)
                && typed(col.kind, v)
            {
                row[c] = Some(v.clone());
                any = true;
            }
        }
        if any {
            self.uscc.push(uscc.to_owned());
            self.as_of.push(days(as_of));
            for (col, v) in self.values.iter_mut().zip(row) {
                col.push(v);
            }
        }
        any
    }

    /// The rows as one batch of [`input_schema`].
    pub fn finish(self) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(self.uscc)),
            Arc::new(arrow_array::Date32Array::from(self.as_of)),
        ];
        for (c, col) in value_columns().zip(self.values) {
            let a: ArrayRef = match c.kind {
                ColumnKind::Indicator(IndicatorType::Fen | IndicatorType::Integer) => Arc::new(
                    col.iter()
                        .map(|v| v.as_ref().and_then(serde_json::Value::as_i64))
                        .collect::<arrow_array::Int64Array>(),
                ),
                ColumnKind::Indicator(IndicatorType::Ratio) => Arc::new(
                    col.iter()
                        .map(|v| v.as_ref().and_then(serde_json::Value::as_f64))
                        .collect::<Float64Array>(),
                ),
                ColumnKind::Indicator(IndicatorType::Boolean) => Arc::new(
                    col.iter()
                        .map(|v| v.as_ref().and_then(serde_json::Value::as_bool))
                        .collect::<arrow_array::BooleanArray>(),
                ),
                ColumnKind::Indicator(IndicatorType::Category(_)) | ColumnKind::Industry => {
                    Arc::new(
                        col.iter()
                            .map(|v| v.as_ref().and_then(serde_json::Value::as_str))
                            .collect::<StringArray>(),
                    )
                }
                ColumnKind::Date => Arc::new(
                    col.iter()
                        .map(|v| v.as_ref().and_then(date_of).map(days))
                        .collect::<arrow_array::Date32Array>(),
                ),
            };
            columns.push(a);
        }
        RecordBatch::try_new(input_schema(), columns)
            .map_err(|e| SnapshotError::Schema(e.to_string()))
    }
}

/// Whether `v` is a value a column of `kind` holds.
fn typed(kind: ColumnKind, v: &serde_json::Value) -> bool {
    match kind {
        ColumnKind::Indicator(IndicatorType::Fen | IndicatorType::Integer) => v.as_i64().is_some(),
        ColumnKind::Indicator(IndicatorType::Ratio) => v.as_f64().is_some(),
        ColumnKind::Indicator(IndicatorType::Boolean) => v.is_boolean(),
        ColumnKind::Indicator(IndicatorType::Category(labels)) => {
            v.as_str().is_some_and(|s| labels.contains(&s))
        }
        ColumnKind::Industry => v.as_str().is_some_and(|s| IndustryCode::parse(s).is_ok()),
        ColumnKind::Date => date_of(v).is_some(),
    }
}

/// A `YYYY-MM-DD` date, as ingest types a date field.
fn date_of(v: &serde_json::Value) -> Option<NaiveDate> {
    v.as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

/// Rows an [`InputWriter`] collects before it encodes them.
pub const INPUT_BATCH_ROWS: usize = 64 * 1024;

/// Writes input rows as Parquet (as [`write_input_bytes`] does) into `out` a batch of
/// [`INPUT_BATCH_ROWS`] at a time, so a file of any length holds one batch in memory, not its
/// rows.
pub struct InputWriter<W: std::io::Write + Send> {
    rows: InputRows,
    writer: ArrowWriter<W>,
    written: u64,
}

impl<W: std::io::Write + Send> InputWriter<W> {
    /// A writer into `out`.
    pub fn new(out: W) -> Result<Self> {
        let writer = ArrowWriter::try_new(out, input_schema(), Some(input_properties()))
            .map_err(input_err)?;
        Ok(InputWriter {
            rows: InputRows::new(),
            writer,
            written: 0,
        })
    }

    /// Adds a row as [`InputRows::push`] does, encoding the batch once it is full.
    pub fn push<'a>(
        &mut self,
        uscc: &str,
        as_of: NaiveDate,
        values: impl IntoIterator<Item = (&'a str, &'a serde_json::Value)>,
    ) -> Result<bool> {
        if !self.rows.push(uscc, as_of, values) {
            return Ok(false);
        }
        self.written += 1;
        if self.rows.len() >= INPUT_BATCH_ROWS {
            self.flush()?;
        }
        Ok(true)
    }

    /// Rows added so far.
    pub fn rows(&self) -> u64 {
        self.written
    }

    fn flush(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.rows).finish()?;
        self.writer.write(&batch).map_err(input_err)
    }

    /// Encodes what is left, closes the file and hands back `out`.
    pub fn finish(mut self) -> Result<W> {
        if !self.rows.is_empty() {
            self.flush()?;
        }
        self.writer.into_inner().map_err(input_err)
    }
}

/// How input objects are encoded: Snappy, row groups of [`ROW_GROUP_ROWS`].
fn input_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_size(ROW_GROUP_ROWS)
        .build()
}

fn input_err(source: parquet::errors::ParquetError) -> SnapshotError {
    SnapshotError::Parquet {
        path: "indicator inputs".into(),
        source,
    }
}

/// Encodes input batches (of [`input_schema`]) as one Snappy-compressed Parquet object.
pub fn write_input_bytes(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let s = input_schema();
    for b in batches {
        if b.schema().fields() != s.fields() {
            return Err(SnapshotError::Schema(
                "input batch does not have the input schema".into(),
            ));
        }
    }
    let mut w = ArrowWriter::try_new(Vec::new(), s, Some(input_properties())).map_err(input_err)?;
    for b in batches {
        w.write(b).map_err(input_err)?;
    }
    w.into_inner().map_err(input_err)
}

/// Decodes an input object written by [`write_input_bytes`]; `name` (its key) labels errors.
/// Anything but [`input_schema`] — or its prefix `uscc`, `as_of` and a subset of its value
/// columns, as an object written before the registration columns existed — is refused. Value
/// columns that hold no value in the file (by the footer's null counts) are left out of the
/// batches: one source feeds a few indicators, and decoding the others would allocate a
/// full-width column of nulls each.
pub fn read_input_bytes(bytes: Bytes, name: &str) -> Result<Vec<RecordBatch>> {
    let err = |source| SnapshotError::Parquet {
        path: name.into(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(
        bytes,
        ArrowReaderOptions::new().with_skip_arrow_metadata(true),
    )
    .map_err(err)?;
    if !fits_input_schema(reader.schema()) {
        return Err(SnapshotError::Schema(format!(
            "{name} does not have the indicator input schema"
        )));
    }
    let groups = reader.metadata().row_groups();
    let has_values = |leaf: usize| {
        groups.iter().any(|g| {
            let c = g.column(leaf);
            // Without a null count the column is read.
            c.statistics()
                .and_then(|s| s.null_count_opt())
                .is_none_or(|nulls| i64::try_from(nulls).unwrap_or(i64::MAX) < g.num_rows())
        })
    };
    // `uscc` and `as_of` always; the input schema is flat, so leaves are its columns.
    let wanted: Vec<usize> = (0..reader.schema().fields().len())
        .filter(|&i| i < 2 || has_values(i))
        .collect();
    let mask = parquet::arrow::ProjectionMask::leaves(reader.parquet_schema(), wanted);
    reader
        .with_projection(mask)
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .map_err(err)?
        .map(|b| b.map_err(|e| err(e.into())))
        .collect()
}

/// Whether `s` is the input schema or a part of it: `uscc` and `as_of` first, then only input
/// columns, each typed as there.
fn fits_input_schema(s: &Schema) -> bool {
    let want = input_schema();
    s.fields().len() >= 2
        && s.field(0) == want.field(0)
        && s.field(1) == want.field(1)
        && s.fields().iter().all(|f| {
            want.field_with_name(f.name())
                .is_ok_and(|w| w == f.as_ref())
        })
}

/// A snapshot some months before the one built, for change indicators' base levels.
#[derive(Debug, Clone)]
pub struct Base {
    /// Months before the period built.
    pub months: u16,
    /// Its rows: `uscc` and at least the level columns wanted (others are ignored).
    pub batches: Vec<RecordBatch>,
}

/// What [`build`] produced.
#[derive(Debug, Clone)]
pub struct Built {
    /// Shards (each a list of batches of [`schema`]), in USCC order across shards.
    pub shards: Vec<Vec<RecordBatch>>,
    /// Firms in the snapshot.
    pub firms: usize,
    /// Firm × indicator values taken from this period's inputs.
    pub from_inputs: u64,
    /// Change values computed from levels.
    pub computed: u64,
}

/// Builds the period's snapshot from the previous snapshot (`previous`, batches of [`schema`]
/// or a subset of its columns), the period's `inputs` (batches of [`input_schema`] or a subset
/// of its indicator columns, in a fixed order) and the `bases` for change indicators, by the
/// rule of the module documentation.
pub fn build(previous: &[RecordBatch], inputs: &[RecordBatch], bases: &[Base]) -> Result<Built> {
    let out_schema = schema();
    for b in inputs {
        if !fits_input_schema(b.schema_ref()) {
            return Err(SnapshotError::Schema(
                "input batch does not have the input schema".into(),
            ));
        }
    }
    // Firm ids in first-seen order; `order` puts them in USCC order at the end.
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut keys: Vec<&str> = Vec::new();
    let prev_codes = previous
        .iter()
        .map(|b| uscc_of(b, "previous snapshot"))
        .collect::<Result<Vec<_>>>()?;
    let input_codes = inputs
        .iter()
        .map(|b| uscc_of(b, "inputs"))
        .collect::<Result<Vec<_>>>()?;
    let prev_rows = row_ids(&prev_codes, &mut ids, &mut keys);
    let input_rows = row_ids(&input_codes, &mut ids, &mut keys);
    let n = keys.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_unstable_by_key(|&id| keys[id as usize]);

    let input_dates: Vec<&[i32]> = inputs
        .iter()
        .map(|b| b.column(1).as_primitive::<Date32Type>().values().as_ref())
        .collect();

    let all_columns: Vec<ValueColumn> = value_columns().collect();
    let mut columns: Vec<Option<ArrayRef>> = vec![None; all_columns.len()];
    let mut from_inputs = 0u64;
    let mut computed = 0u64;
    // Levels first, so a change can read its level's values.
    let (changes, levels): (Vec<usize>, Vec<usize>) =
        (0..all_columns.len()).partition(|&c| CHANGES.iter().any(|x| x.id == all_columns[c].name));
    for c in levels.into_iter().chain(changes) {
        let ind = &all_columns[c];
        let kind = column_type(ind.kind);
        // Candidate sources: previous batches' columns, input batches' columns, then a null.
        let mut sources: Vec<ArrayRef> = Vec::with_capacity(previous.len() + inputs.len() + 2);
        let null_source = 0u32;
        sources.push(new_null_array(&kind, 1));
        // Firm id → (source, row) of its value; starts at the null.
        let mut pick: Vec<(usize, usize)> = vec![(null_source as usize, 0); n];
        for (b, rows) in previous.iter().zip(&prev_rows) {
            let Some(col) = b.column_by_name(ind.name) else {
                continue;
            };
            if col.data_type() != &kind {
                return Err(SnapshotError::WrongType {
                    path: "previous snapshot".into(),
                    column: ind.name.to_owned(),
                    expected: kind.to_string(),
                    found: col.data_type().to_string(),
                });
            }
            let s = sources.len();
            sources.push(col.clone());
            for (r, &id) in rows.iter().enumerate() {
                if col.is_valid(r) {
                    pick[id as usize] = (s, r);
                }
            }
        }
        let mut newest: Vec<i32> = vec![i32::MIN; n];
        for ((b, rows), dates) in inputs.iter().zip(&input_rows).zip(&input_dates) {
            let Some(col) = b.column_by_name(ind.name) else {
                continue;
            };
            if col.null_count() == col.len() {
                continue;
            }
            let s = sources.len();
            sources.push(col.clone());
            for (r, (&id, &d)) in rows.iter().zip(dates.iter()).enumerate() {
                if col.is_valid(r) && d > newest[id as usize] {
                    newest[id as usize] = d;
                    pick[id as usize] = (s, r);
                }
            }
        }
        from_inputs += newest.iter().filter(|&&d| d != i32::MIN).count() as u64;
        if let Some(change) = CHANGES.iter().find(|x| x.id == ind.name)
            && let Some(base) = bases.iter().find(|b| b.months == change.months)
            && let Some(level_pos) = all_columns.iter().position(|c| c.name == change.level)
            && let Some(level) = &columns[level_pos]
        {
            let then = base_levels(base, change.level, &ids, n)?;
            let now = level.as_primitive::<Int64Type>();
            let mut values = Vec::new();
            let s = sources.len();
            for (p, &id) in order.iter().enumerate() {
                let id = id as usize;
                if newest[id] != i32::MIN || now.is_null(p) {
                    continue;
                }
                if let Some(base) = then[id].filter(|&b| b != 0) {
                    // In floating point: a difference of two large amounts cannot overflow.
                    let ratio = (now.value(p) as f64 - base as f64) / base as f64;
                    pick[id] = (s, values.len());
                    values.push(ratio);
                }
            }
            computed += values.len() as u64;
            sources.push(Arc::new(Float64Array::from(values)));
        }
        let refs: Vec<&dyn Array> = sources.iter().map(|a| a.as_ref()).collect();
        let indices: Vec<(usize, usize)> = order.iter().map(|&id| pick[id as usize]).collect();
        let column = arrow_select::interleave::interleave(&refs, &indices)
            .map_err(|e| SnapshotError::Schema(format!("{}: {e}", ind.name)))?;
        columns[c] = Some(column);
    }

    let uscc: ArrayRef = Arc::new(StringArray::from_iter_values(
        order.iter().map(|&id| keys[id as usize]),
    ));
    let mut all = vec![uscc];
    all.extend(columns.into_iter().flatten());
    let whole =
        RecordBatch::try_new(out_schema, all).map_err(|e| SnapshotError::Schema(e.to_string()))?;
    let shards = (0..n)
        .step_by(SHARD_ROWS)
        .map(|start| {
            let end = (start + SHARD_ROWS).min(n);
            (start..end)
                .step_by(ROW_GROUP_ROWS)
                .map(|from| whole.slice(from, ROW_GROUP_ROWS.min(end - from)))
                .collect()
        })
        .collect();
    Ok(Built {
        shards,
        firms: n,
        from_inputs,
        computed,
    })
}

/// Each row's firm id, assigning new firms the next id.
fn row_ids<'a>(
    codes: &[&'a StringArray],
    ids: &mut HashMap<&'a str, u32>,
    keys: &mut Vec<&'a str>,
) -> Vec<Vec<u32>> {
    codes
        .iter()
        .map(|a| {
            a.iter()
                .map(|code| {
                    // `uscc_of` refused nulls.
                    let code = code.unwrap_or_default();
                    *ids.entry(code).or_insert_with(|| {
                        keys.push(code);
                        (keys.len() - 1) as u32
                    })
                })
                .collect()
        })
        .collect()
}

/// The `uscc` column of a batch, which must be text without nulls.
fn uscc_of<'a>(b: &'a RecordBatch, what: &str) -> Result<&'a StringArray> {
    let col = b
        .column_by_name(USCC)
        .ok_or_else(|| SnapshotError::NoUscc { path: what.into() })?;
    let codes = col
        .as_string_opt::<i32>()
        .ok_or_else(|| SnapshotError::WrongType {
            path: what.into(),
            column: USCC.to_owned(),
            expected: "text".into(),
            found: col.data_type().to_string(),
        })?;
    if codes.null_count() > 0 {
        return Err(SnapshotError::Schema(format!("{what}: a row has no uscc")));
    }
    Ok(codes)
}

/// Firm id → its `level` in the base snapshot (firms not in this snapshot are ignored).
fn base_levels(
    base: &Base,
    level: &str,
    ids: &HashMap<&str, u32>,
    n: usize,
) -> Result<Vec<Option<i64>>> {
    let mut out = vec![None; n];
    for b in &base.batches {
        let Some(col) = b.column_by_name(level) else {
            continue;
        };
        let values =
            col.as_primitive_opt::<Int64Type>()
                .ok_or_else(|| SnapshotError::WrongType {
                    path: format!("snapshot {} months back", base.months).into(),
                    column: level.to_owned(),
                    expected: "Int64".into(),
                    found: col.data_type().to_string(),
                })?;
        for (code, v) in uscc_of(b, "base snapshot")?.iter().zip(values.iter()) {
            if let (Some(code), Some(v)) = (code, v)
                && let Some(&id) = ids.get(code)
            {
                out[id as usize] = Some(v);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use arrow_array::BooleanArray;
    use puhui_domain::indicators::CATALOGUE;
    use serde_json::json;

    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// A test row: firm, as-of date, (indicator, value) pairs.
    type Row<'a> = (&'a str, &'a str, &'a [(&'a str, serde_json::Value)]);

    /// One input batch from rows.
    fn inputs(rows: &[Row]) -> RecordBatch {
        let mut r = InputRows::new();
        for (firm, as_of, values) in rows {
            r.push(firm, date(as_of), values.iter().map(|(k, v)| (*k, v)));
        }
        r.finish().unwrap()
    }

    fn all(built: &Built) -> Vec<RecordBatch> {
        built.shards.iter().flatten().cloned().collect()
    }

    /// The value of `indicator` for `firm` as JSON (null when missing), from built batches.
    fn value(batches: &[RecordBatch], firm: &str, indicator: &str) -> serde_json::Value {
        batches
            .iter()
            .flat_map(crate::rows_as_json)
            .find(|(code, _)| code == firm)
            .map(|(_, values)| values.get(indicator).cloned().unwrap_or_default())
            .unwrap_or_else(|| panic!("{firm} not in the snapshot"))
    }

    fn codes(batches: &[RecordBatch]) -> Vec<String> {
        batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_string::<i32>()
                    .iter()
                    .map(|c| c.unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn newest_input_wins_and_the_first_wins_a_tie() {
        let a = inputs(&[
            ("F2", "2026-10-31", &[("tax_paid_12m", json!(100))]),
            ("F1", "2026-10-15", &[("tax_credit_grade", json!("B"))]),
        ]);
        let b = inputs(&[
            ("F2", "2026-10-01", &[("tax_paid_12m", json!(50))]),
            ("F1", "2026-10-20", &[("tax_credit_grade", json!("A"))]),
            ("F1", "2026-10-20", &[("tax_credit_grade", json!("C"))]),
            (
                "F3",
                "2026-10-05",
                &[
                    ("dishonest_debtor", json!(true)),
                    ("tax_paid_yoy", json!(0.25)),
                ],
            ),
        ]);
        let built = build(&[], &[a, b], &[]).unwrap();
        let out = all(&built);
        assert_eq!(codes(&out), ["F1", "F2", "F3"]);
        assert_eq!(value(&out, "F2", "tax_paid_12m"), json!(100));
        assert_eq!(value(&out, "F1", "tax_credit_grade"), json!("A"));
        assert_eq!(value(&out, "F3", "dishonest_debtor"), json!(true));
        assert_eq!(value(&out, "F3", "tax_paid_yoy"), json!(0.25));
        assert_eq!(value(&out, "F3", "tax_paid_12m"), json!(null));
        assert_eq!(built.from_inputs, 4);
        assert_eq!(out[0].schema(), schema());
    }

    #[test]
    fn previous_values_carry_forward_unless_replaced() {
        let first = build(
            &[],
            &[inputs(&[
                (
                    "F1",
                    "2026-09-30",
                    &[("tax_paid_12m", json!(7)), ("tax_arrears", json!(true))],
                ),
                ("F9", "2026-09-30", &[("penalties_12m", json!(2))]),
            ])],
            &[],
        )
        .unwrap();
        let prev = all(&first);
        let next = build(
            &prev,
            &[inputs(&[(
                "F1",
                "2026-10-31",
                &[("tax_arrears", json!(false))],
            )])],
            &[],
        )
        .unwrap();
        let out = all(&next);
        assert_eq!(codes(&out), ["F1", "F9"]);
        assert_eq!(value(&out, "F1", "tax_paid_12m"), json!(7));
        assert_eq!(value(&out, "F1", "tax_arrears"), json!(false));
        assert_eq!(value(&out, "F9", "penalties_12m"), json!(2));
        // No input at all: the previous snapshot again.
        let same = build(&prev, &[], &[]).unwrap();
        assert_eq!(all(&same), prev);
    }

    #[test]
    fn registration_columns_take_the_newest_and_carry_forward() {
        let first = all(&build(
            &[],
            &[inputs(&[
                (
                    "F1",
                    "2026-09-03",
                    &[
                        ("industry", json!("C3311")),
                        ("established_on", json!("2015-03-02")),
                    ],
                ),
                ("F2", "2026-09-03", &[("industry", json!("F5123"))]),
            ])],
            &[],
        )
        .unwrap());
        let built = build(
            &first,
            &[inputs(&[
                // A newer registration of F1 changes its industry; an older one does not.
                ("F1", "2026-10-20", &[("industry", json!("C3432"))]),
                ("F1", "2026-10-02", &[("industry", json!("M7320"))]),
                // Not a GB/T 4754 code, not a date: not an input.
                (
                    "F2",
                    "2026-10-31",
                    &[
                        ("industry", json!("manufacturing")),
                        ("established_on", json!("2015-02-30")),
                    ],
                ),
                (
                    "F3",
                    "2026-10-05",
                    &[("established_on", json!("1998-12-31"))],
                ),
            ])],
            &[],
        )
        .unwrap();
        let out = all(&built);
        assert_eq!(codes(&out), ["F1", "F2", "F3"]);
        assert_eq!(value(&out, "F1", "industry"), json!("C3432"));
        assert_eq!(value(&out, "F1", "established_on"), json!("2015-03-02"));
        assert_eq!(value(&out, "F2", "industry"), json!("F5123"));
        assert_eq!(value(&out, "F2", "established_on"), json!(null));
        assert_eq!(value(&out, "F3", "established_on"), json!("1998-12-31"));
        assert_eq!(value(&out, "F3", "industry"), json!(null));
        assert_eq!(out[0].schema(), schema());
        assert_eq!(
            out[0]
                .schema()
                .field_with_name(crate::ESTABLISHED_ON)
                .unwrap()
                .data_type(),
            &DataType::Date32
        );
    }

    #[test]
    fn inputs_written_before_the_registration_columns_still_read() {
        let b = inputs(&[("F1", "2026-10-31", &[("tax_paid_12m", json!(5))])]);
        // The version-1 input schema: everything up to the last indicator.
        let old = b
            .project(&(0..CATALOGUE.len() + 2).collect::<Vec<_>>())
            .unwrap();
        let mut w = ArrowWriter::try_new(Vec::new(), old.schema(), None).unwrap();
        w.write(&old).unwrap();
        let read = read_input_bytes(w.into_inner().unwrap().into(), "old").unwrap();
        let out = all(&build(&[], &read, &[]).unwrap());
        assert_eq!(value(&out, "F1", "tax_paid_12m"), json!(5));
        assert_eq!(value(&out, "F1", "industry"), json!(null));
    }

    #[test]
    fn changes_come_from_levels_then_carry_and_never_divide_by_zero() {
        let base = all(&build(
            &[],
            &[inputs(&[
                ("A", "2025-10-31", &[("tax_paid_12m", json!(200))]),
                ("B", "2025-10-31", &[("tax_paid_12m", json!(0))]),
                ("C", "2025-10-31", &[("tax_paid_12m", json!(100))]),
                ("D", "2025-10-31", &[("tax_paid_12m", json!(100))]),
            ])],
            &[],
        )
        .unwrap());
        let prev = all(&build(
            &[],
            &[inputs(&[
                ("B", "2026-09-30", &[("tax_paid_yoy", json!(0.5))]),
                ("E", "2026-09-30", &[("tax_paid_yoy", json!(0.9))]),
            ])],
            &[],
        )
        .unwrap());
        let built = build(
            &prev,
            &[inputs(&[
                ("A", "2026-10-31", &[("tax_paid_12m", json!(250))]),
                ("B", "2026-10-31", &[("tax_paid_12m", json!(40))]),
                // Delivered by the department: its figure wins over the computed one.
                (
                    "C",
                    "2026-10-31",
                    &[("tax_paid_12m", json!(300)), ("tax_paid_yoy", json!(0.1))],
                ),
                ("D", "2026-10-31", &[("penalties_12m", json!(1))]),
                ("E", "2026-10-31", &[("tax_paid_12m", json!(10))]),
            ])],
            &[Base {
                months: 12,
                batches: base,
            }],
        )
        .unwrap();
        let out = all(&built);
        assert_eq!(value(&out, "A", "tax_paid_yoy"), json!(0.25));
        // Base zero: not computable, last month's carried.
        assert_eq!(value(&out, "B", "tax_paid_yoy"), json!(0.5));
        assert_eq!(value(&out, "C", "tax_paid_yoy"), json!(0.1));
        // Level now missing: nothing computed, nothing to carry.
        assert_eq!(value(&out, "D", "tax_paid_yoy"), json!(null));
        assert_eq!(value(&out, "D", "tax_paid_12m"), json!(null));
        // No base level for the firm: carried forward.
        assert_eq!(value(&out, "E", "tax_paid_yoy"), json!(0.9));
        assert_eq!(built.computed, 1);
        // A six-month change without a six-month base is not computed.
        assert_eq!(value(&out, "A", "social_insured_change_6m"), json!(null));
    }

    #[test]
    fn output_is_sorted_sharded_and_read_back_by_the_scan_reader() {
        let n = SHARD_ROWS + 10;
        let mut r = InputRows::new();
        let ids: Vec<String> = (0..n).rev().map(|i| format!("F{i:08}")).collect();
        let v = json!(1);
        for id in &ids {
            r.push(id, date("2026-10-31"), [("penalties_12m", &v)]);
        }
        let built = build(&[], &[r.finish().unwrap()], &[]).unwrap();
        assert_eq!(built.firms, n);
        assert_eq!(built.shards.len(), 2);
        assert_eq!(built.shards[0].len(), SHARD_ROWS / ROW_GROUP_ROWS);
        let got = codes(&all(&built));
        let mut want = ids.clone();
        want.sort();
        assert_eq!(got, want);

        let dir = std::env::temp_dir().join(format!("puhui-build-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let mut w = crate::Writer::create(&dir, "2026-10").unwrap();
        for s in &built.shards {
            w.write_shard(s).unwrap();
        }
        let m = w.finish().unwrap();
        assert_eq!(m.total_rows, n as u64);
        let bytes = std::fs::read(dir.join(&m.shards[1].path)).unwrap();
        let read = crate::read_shard_bytes(bytes.into(), "s", None).unwrap();
        assert_eq!(read[0].num_rows(), 10);
        assert_eq!(read[0].schema().fields(), schema().fields());
        assert_eq!(value(&read, &want[n - 1], "penalties_12m"), json!(1));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_streaming_writer_encodes_what_one_batch_would() {
        let n = INPUT_BATCH_ROWS + 1_234;
        let firms: Vec<String> = (0..n).map(|i| format!("F{i:07}")).collect();
        let value = |i: usize| json!(i as i64 * 10);
        let mut whole = InputRows::new();
        let mut w = InputWriter::new(Vec::new()).unwrap();
        for (i, f) in firms.iter().enumerate() {
            let v = value(i);
            whole.push(f, date("2026-10-31"), [("tax_paid_12m", &v)]);
            assert!(
                w.push(f, date("2026-10-31"), [("tax_paid_12m", &v)])
                    .unwrap()
            );
        }
        let skipped = json!("not a number");
        assert!(
            !w.push("F9", date("2026-10-31"), [("tax_paid_12m", &skipped)])
                .unwrap()
        );
        assert_eq!(w.rows(), n as u64);
        let streamed = read_input_bytes(w.finish().unwrap().into(), "s").unwrap();
        let at_once = read_input_bytes(
            write_input_bytes(&[whole.finish().unwrap()])
                .unwrap()
                .into(),
            "w",
        )
        .unwrap();
        let concat =
            |b: &[RecordBatch]| arrow_select::concat::concat_batches(&b[0].schema(), b).unwrap();
        assert_eq!(concat(&streamed), concat(&at_once));
    }

    #[test]
    fn inputs_round_trip_and_other_files_are_refused() {
        let b = inputs(&[(
            "F1",
            "2026-10-31",
            &[
                ("tax_credit_grade", json!("A")),
                ("tax_credit_year", json!(2025)),
                ("dishonest_debtor", json!(true)),
            ],
        )]);
        let bytes = write_input_bytes(std::slice::from_ref(&b)).unwrap();
        let read = read_input_bytes(bytes.into(), "k").unwrap();
        // Columns without a value in the file are not decoded.
        let s = input_schema();
        let keep: Vec<usize> = ["uscc", "as_of", "tax_credit_grade", "dishonest_debtor"]
            .iter()
            .map(|c| s.index_of(c).unwrap())
            .collect();
        assert_eq!(read, vec![b.project(&keep).unwrap()]);
        // …and the snapshot built from them is the one built from every column.
        let full = build(&[], std::slice::from_ref(&b), &[]).unwrap();
        let projected = build(&[], &read, &[]).unwrap();
        assert_eq!(all(&projected), all(&full));
        let wrong_type = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new(USCC, DataType::Utf8, false),
                Field::new(AS_OF, DataType::Date32, false),
                Field::new("dishonest_debtor", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(StringArray::from(vec!["F1"])),
                Arc::new(arrow_array::Date32Array::from(vec![1])),
                Arc::new(StringArray::from(vec![Some("yes")])),
            ],
        )
        .unwrap();
        assert!(build(&[], &[wrong_type], &[]).is_err());
        assert!(read_input_bytes(Bytes::from_static(b"nope"), "k").is_err());
        // A label outside the catalogue's set, a non-indicator field: not an input.
        let mut r = InputRows::new();
        let bad = json!("Z");
        assert!(!r.push("F1", date("2026-10-31"), [("tax_credit_grade", &bad)]));
        assert!(r.is_empty());
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::Boolean, false)])),
            vec![Arc::new(BooleanArray::from(vec![true]))],
        )
        .unwrap();
        assert!(write_input_bytes(std::slice::from_ref(&other)).is_err());
        assert!(build(&[], &[other], &[]).is_err());
    }
}
