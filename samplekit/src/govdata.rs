//! Government batch files for the ingest: one CSV per source of the catalogue for a list of
//! firms, with a controlled share of bad rows — each bad row breaking exactly one declared rule,
//! every rule of the source in turn — and the list of those defects, so a test can check each
//! lands under its rule. Also the same file in UTF-8 with BOM and GB18030, and files that cannot
//! be read at all (empty, binary, truncated inside a character, wrong header, Parquet cut short).
//!
//! Values are generated from the catalogue's declaration (types, enumerations, ranges,
//! cross-field orders), so a new source gets sample files without code here.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use puhui_domain::ids::{USCC_ALPHABET, id_number_check_character, uscc_check_character};
use puhui_domain::sources::{Comparison, FieldType, FormatCheck, RuleKind, Severity, Source};

use crate::data::{Rng, uscc};

/// One bad row and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defect {
    /// Line in the file (the header is line 1).
    pub line: u64,
    /// The rule broken.
    pub rule: String,
    /// Its severity: `reject` rows go to quarantine, `warn` rows load with a warning.
    pub severity: Severity,
}

/// A generated batch file.
#[derive(Debug, Clone, PartialEq)]
pub struct GovFile {
    /// Source id.
    pub source: String,
    /// File name (`<source>.csv`).
    pub name: String,
    /// The CSV text.
    pub text: String,
    /// Rows written (header excluded).
    pub rows: usize,
    /// Every bad row, with the rule it breaks.
    pub defects: Vec<Defect>,
    /// Rows expected to load (good and warned ones): firm → column → value as written.
    pub loads: BTreeMap<String, BTreeMap<String, String>>,
}

impl GovFile {
    /// UTF-8 bytes.
    pub fn utf8(&self) -> Vec<u8> {
        self.text.clone().into_bytes()
    }

    /// UTF-8 with a byte-order mark, as spreadsheet exports write it.
    pub fn utf8_bom(&self) -> Vec<u8> {
        let mut out = vec![0xEF, 0xBB, 0xBF];
        out.extend_from_slice(self.text.as_bytes());
        out
    }

    /// GB18030, as many department systems write it.
    pub fn gb18030(&self) -> Vec<u8> {
        encoding_rs::GB18030.encode(&self.text).0.into_owned()
    }

    /// The same rows as Parquet, every column text (empty cells null), one row group: what a
    /// department's data-lake export looks like. A Parquet row's line is its row number, one
    /// less than the CSV line of the same row.
    pub fn parquet(&self) -> Result<Vec<u8>, String> {
        use std::sync::Arc;

        use arrow_array::{ArrayRef, RecordBatch, StringArray};
        use arrow_schema::{DataType, Field, Schema};

        let mut reader = csv::Reader::from_reader(self.text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| e.to_string())?
            .iter()
            .map(str::to_owned)
            .collect();
        let mut columns: Vec<Vec<Option<String>>> = vec![Vec::new(); header.len()];
        for record in reader.records() {
            let record = record.map_err(|e| e.to_string())?;
            for (i, column) in columns.iter_mut().enumerate() {
                column.push(record.get(i).filter(|v| !v.is_empty()).map(str::to_owned));
            }
        }
        let schema = Arc::new(Schema::new(
            header
                .iter()
                .map(|h| Field::new(h, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let arrays: Vec<ArrayRef> = columns
            .into_iter()
            .map(|c| Arc::new(StringArray::from(c)) as ArrayRef)
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None)
            .map_err(|e| e.to_string())?;
        writer.write(&batch).map_err(|e| e.to_string())?;
        writer.close().map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Rows expected in quarantine (defects that reject).
    pub fn rejected(&self) -> impl Iterator<Item = &Defect> {
        self.defects
            .iter()
            .filter(|d| d.severity == Severity::Reject)
    }
}

/// `n` firms' codes (enterprises of Ningbo's districts), deterministic in `seed`.
pub fn firms(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let divisions = ["330203", "330205", "330206", "330211", "330212"];
    (0..n)
        .map(|_| {
            let d = *rng.pick(&divisions);
            uscc(&mut rng, d)
        })
        .collect()
}

/// One file of `source` with a row per firm as of `as_of`; every `bad_every`-th row (the 2nd
/// at the earliest) breaks one rule, taking the source's rules in turn.
pub fn batch(
    source: &Source,
    firms: &[String],
    as_of: NaiveDate,
    bad_every: usize,
    seed: u64,
) -> GovFile {
    let mut rng = Rng::new(seed);
    let bad_every = bad_every.max(2);
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(firms.len());
    let mut defects = Vec::new();
    let mut next_rule = 0;
    for (i, firm) in firms.iter().enumerate() {
        let mut row = good_row(source, firm, as_of, &mut rng);
        if i % bad_every == bad_every - 1 && !source.rules.is_empty() {
            let rule = &source.rules[next_rule % source.rules.len()];
            next_rule += 1;
            let first_key = rows
                .first()
                .and_then(|r| column(source, &source.key_column).map(|k| r[k].clone()));
            if break_rule(source, &rule.kind, &mut row, first_key, &mut rng) {
                defects.push(Defect {
                    line: i as u64 + 2,
                    rule: rule.id.clone(),
                    severity: rule.severity,
                });
            }
        }
        rows.push(row);
    }
    let rejected: std::collections::BTreeSet<u64> = defects
        .iter()
        .filter(|d| d.severity == Severity::Reject)
        .map(|d| d.line)
        .collect();
    let mut loads = BTreeMap::new();
    let key = column(source, &source.key_column).unwrap_or(0);
    for (i, row) in rows.iter().enumerate() {
        if !rejected.contains(&(i as u64 + 2)) {
            let values = source
                .fields
                .iter()
                .zip(row)
                .filter(|(_, v)| !v.is_empty())
                .map(|(f, v)| (f.name.clone(), v.clone()))
                .collect();
            loads.insert(row[key].clone(), values);
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to memory cannot fail; an error would only drop the sample.
    let _ = w.write_record(source.fields.iter().map(|f| f.name.as_str()));
    for row in &rows {
        let _ = w.write_record(row);
    }
    let text = String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default();
    GovFile {
        source: source.id.clone(),
        name: format!("{}.csv", source.id),
        text,
        rows: rows.len(),
        defects,
        loads,
    }
}

/// Files that cannot be read at all, by name, each with the reason expected
/// (`empty`, `binary`, `encoding`, `missing_columns`). The truncated one (cut inside a GB18030
/// character) is only made when the file has non-ASCII text to cut.
pub fn unreadable(file: &GovFile) -> Vec<(String, Vec<u8>, &'static str)> {
    let stem = file.name.trim_end_matches(".csv");
    // Cut GB18030 inside a two-byte character: the text up to its last Chinese character.
    let last_wide = file
        .text
        .char_indices()
        .rfind(|(_, c)| !c.is_ascii())
        .map_or(file.text.len(), |(i, c)| i + c.len_utf8());
    let gb = encoding_rs::GB18030.encode(&file.text[..last_wide]).0;
    let truncated = gb[..gb.len().saturating_sub(1)].to_vec();
    let mut binary = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    binary.extend((0..512u32).map(|i| (i * 31 % 251) as u8));
    let wrong_header = file.text.replacen("uscc", "tyshxydm", 1);
    let mut out = vec![
        (format!("{stem}-empty.csv"), Vec::new(), "empty"),
        (format!("{stem}-binary.csv"), binary, "binary"),
        (format!("{stem}-truncated.csv"), truncated, "encoding"),
        (
            format!("{stem}-wrong-schema.csv"),
            wrong_header.into_bytes(),
            "missing_columns",
        ),
    ];
    if file.text.is_ascii() {
        out.retain(|(_, _, reason)| *reason != "encoding");
    }
    // A Parquet file cut off before its footer (an interrupted upload).
    if let Ok(parquet) = file.parquet() {
        let cut = parquet[..parquet.len() / 2].to_vec();
        out.push((format!("{stem}-truncated.parquet"), cut, "parquet"));
    }
    out
}

/// The profile field firm names are loaded into.
const FIRM_NAME: &str = "firm_name";

/// The name every generated file gives the firm with code `uscc`.
pub fn firm_name(uscc: &str) -> String {
    let seed = uscc.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut rng = Rng::new(seed);
    format!(
        "宁波{}{}{}有限公司",
        rng.pick(&PLACES),
        rng.pick(&GIVEN),
        rng.pick(&TRADES)
    )
}

/// `file` with the firm name of each of `firms`' rows replaced by another firm's name (what a
/// department's stale or mistyped name looks like); rows of other firms are unchanged. Returns
/// the file and the firms whose rows were changed.
pub fn with_other_names(
    source: &Source,
    file: &GovFile,
    firms: &[String],
) -> (GovFile, Vec<String>) {
    let (Some(name), Some(key)) = (
        source
            .fields
            .iter()
            .position(|f| f.target.as_deref() == Some(FIRM_NAME)),
        column(source, &source.key_column),
    ) else {
        return (file.clone(), Vec::new());
    };
    let mut out = file.clone();
    let mut changed = Vec::new();
    let mut r = csv::Reader::from_reader(file.text.as_bytes());
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(source.fields.iter().map(|f| f.name.as_str()));
    for record in r.records().flatten() {
        let mut row: Vec<String> = record.iter().map(str::to_owned).collect();
        if row.len() > name.max(key) && firms.contains(&row[key]) && !row[name].is_empty() {
            row[name] = format!("宁波{}贸易商行", row[key].get(8..12).unwrap_or("某"));
            if let Some(loads) = out.loads.get_mut(&row[key]) {
                loads.insert(source.fields[name].name.clone(), row[name].clone());
            }
            changed.push(row[key].clone());
        }
        let _ = w.write_record(&row);
    }
    out.text = String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default();
    (out, changed)
}

fn column(source: &Source, name: &str) -> Option<usize> {
    source.fields.iter().position(|f| f.name == name)
}

const SURNAMES: [&str; 8] = ["张", "王", "李", "赵", "陈", "欧阳", "刘", "周"];
const GIVEN: [&str; 8] = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇"];
const PLACES: [&str; 5] = ["甬江", "镇海", "北仑", "鄞州", "江北"];
const TRADES: [&str; 5] = ["精密制造", "贸易", "科技", "物流", "食品"];

fn text_value(name: &str, rng: &mut Rng) -> String {
    if name.contains("name") && name.contains("rep") {
        format!("{}{}", rng.pick(&SURNAMES), rng.pick(&GIVEN))
    } else if name.contains("firm_name") {
        format!("宁波{}{}有限公司", rng.pick(&PLACES), rng.pick(&TRADES))
    } else if name.contains("address") {
        format!(
            "浙江省宁波市{}区{}路{}号",
            rng.pick(&PLACES),
            rng.pick(&GIVEN),
            1 + rng.below(300)
        )
    } else if name.contains("industry") {
        format!("C{}", 13 + rng.below(30))
    } else {
        format!("备注{}", rng.below(1000))
    }
}

fn id_number(rng: &mut Rng) -> String {
    let birth = NaiveDate::from_ymd_opt(1960, 1, 1).unwrap_or_default()
        + Duration::days(rng.below(365 * 40) as i64);
    let mut s = format!("330205{}{:03}", birth.format("%Y%m%d"), rng.below(1000));
    s.push(id_number_check_character(s.as_bytes()).unwrap_or('0'));
    s
}

fn good_row(source: &Source, firm: &str, as_of: NaiveDate, rng: &mut Rng) -> Vec<String> {
    let base = NaiveDate::from_ymd_opt(2008, 1, 1).unwrap_or_default();
    let mut row: Vec<String> = source
        .fields
        .iter()
        .map(|f| {
            if f.name == source.key_column {
                return firm.to_owned();
            }
            if f.name == source.as_of_column {
                return as_of.to_string();
            }
            // Every source names a firm alike, so the daily cross-source check finds no
            // mismatch but those planted by `with_other_names`.
            if f.target.as_deref() == Some(FIRM_NAME) {
                return firm_name(firm);
            }
            let rules = source.rules.iter().filter(|r| r.kind.field() == f.name);
            let mut enumeration = None;
            let (mut lo, mut hi) = (None, None);
            for r in rules {
                match &r.kind {
                    RuleKind::Enumeration { values, .. } => enumeration = Some(values.clone()),
                    RuleKind::Range { min, max, .. } if r.severity == Severity::Reject => {
                        (lo, hi) = (*min, *max)
                    }
                    RuleKind::Range { min, max, .. } => {
                        lo = lo.or(*min);
                        hi = hi.or(*max);
                    }
                    _ => {}
                }
            }
            if let Some(values) = enumeration {
                return rng.pick(&values).clone();
            }
            match f.field_type {
                FieldType::Text => text_value(&f.name, rng),
                FieldType::Integer => {
                    let lo = lo.unwrap_or(0.0) as i64;
                    let span = hi.map_or(1_000_000_000, |h| (h as i64 - lo).clamp(1, 1_000_000));
                    (lo + rng.below(span as u64) as i64).to_string()
                }
                FieldType::Decimal => {
                    let lo = lo.unwrap_or(-0.5).max(-0.5);
                    format!("{:.2}", lo + rng.below(250) as f64 / 100.0)
                }
                FieldType::Date => (base + Duration::days(rng.below(5000) as i64)).to_string(),
                FieldType::Boolean => ["true", "false", "是", "否"][rng.below(4) as usize].into(),
                FieldType::Uscc => firm.to_owned(),
                FieldType::IdNumber => id_number(rng),
                FieldType::Phone => format!("13{}{:08}", 5 + rng.below(5), rng.below(100_000_000)),
                FieldType::Division => "330205".into(),
            }
        })
        .collect();
    // Cross-field orders hold in good rows; an optional later date is left out half the time.
    for r in &source.rules {
        if let RuleKind::CrossField { field, other, .. } = &r.kind
            && let (Some(a), Some(b)) = (column(source, field), column(source, other))
        {
            let optional = source.field(field).is_some_and(|f| !f.required);
            if optional && rng.below(2) == 0 {
                row[a].clear();
            } else if let Ok(d) = NaiveDate::parse_from_str(&row[b], "%Y-%m-%d") {
                row[a] = (d + Duration::days(30 + rng.below(900) as i64)).to_string();
            }
        }
    }
    row
}

/// Changes `row` so it breaks exactly `rule`; false when the rule cannot be broken alone.
fn break_rule(
    source: &Source,
    rule: &RuleKind,
    row: &mut [String],
    first_key: Option<String>,
    rng: &mut Rng,
) -> bool {
    let Some(i) = column(source, rule.field()) else {
        return false;
    };
    match rule {
        RuleKind::Completeness { .. } => row[i].clear(),
        RuleKind::Format { format, .. } => {
            row[i] = match format {
                FormatCheck::Uscc => {
                    let mut b = row[i].clone().into_bytes();
                    let last = b.len() - 1;
                    b[last] = if b[last] == b'0' { b'1' } else { b'0' };
                    String::from_utf8(b).unwrap_or_default()
                }
                FormatCheck::UsccOrgCode => {
                    // A code with a good GB 32100 check and a bad organisation-code check.
                    let mut b = row[i].as_bytes()[..16].to_vec();
                    let org = puhui_domain::ids::org_code_check_character(&b[8..16]);
                    b.push(if org == Some('1') { b'2' } else { b'1' });
                    b.push(uscc_check_character(&b).unwrap_or('0') as u8);
                    String::from_utf8(b).unwrap_or_default()
                }
                FormatCheck::IdNumber => {
                    let mut s = id_number(rng);
                    let good = s.pop().unwrap_or('0');
                    s.push(if good == '1' { '2' } else { '1' });
                    s
                }
                FormatCheck::Phone => "12345678901".into(),
                FormatCheck::Date => "2026-02-30".into(),
                FormatCheck::Division => "000000".into(),
            }
        }
        RuleKind::Range { min, max, .. } => {
            row[i] = match (min, max) {
                (Some(lo), _) => format!("{}", *lo as i64 - 5),
                (None, Some(hi)) => format!("{}", *hi as i64 + 5),
                (None, None) => return false,
            }
        }
        RuleKind::Enumeration { .. } => row[i] = "未知".into(),
        RuleKind::Uniqueness { .. } => match first_key {
            Some(k) => row[i] = k,
            None => return false,
        },
        RuleKind::CrossField { must_be, other, .. } => {
            let Some(j) = column(source, other) else {
                return false;
            };
            row[j] = "2020-06-01".into();
            row[i] = match must_be {
                Comparison::After => "2020-06-01".into(),
                Comparison::NotBefore => "2020-05-31".into(),
            };
        }
    }
    // Keep the key in the alphabet (a broken USCC rule aside).
    debug_assert!(row[0].bytes().all(|b| USCC_ALPHABET.contains(&b)) || !row[0].is_empty());
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use puhui_domain::sources::SourceCatalogue;

    #[test]
    fn every_rule_of_every_source_is_broken_once() {
        let firms = firms(200, 1);
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        for source in &SourceCatalogue::builtin().sources {
            let f = batch(source, &firms, as_of, 5, 2);
            assert_eq!(f.rows, 200);
            for r in &source.rules {
                assert!(
                    f.defects.iter().any(|d| d.rule == r.id),
                    "{} never broken",
                    r.id
                );
            }
            assert_eq!(f.gb18030().len() < f.utf8().len(), !f.text.is_ascii());
        }
    }
}
