//! Screening (客户筛选): a bank's customer-acquisition staff find firms by filters over the
//! screening indicators of the newest indicator snapshot, and get back public business identity
//! only — name, USCC, registration area, industry — never a field of class C1–C3.
//!
//! The filters are a small typed schema; each becomes a condition on a snapshot column — a
//! catalogue indicator, or a column derived per batch: the registration area (read from USCC
//! characters 3–8) at each GB/T 2260 level, the industry code (the snapshot's `industry`) cut to
//! each GB/T 4754 level, and the whole years in business (from `established_on`) — and the
//! conditions are evaluated by the columnar rule evaluator the risk scans use, over the shards of
//! the newest snapshot.
//! Matches are sorted by USCC and capped at [`MATCH_CAP`] (on a snapshot whose manifest says it
//! is sorted by USCC, as the builder writes it, shards are read in order only until more than
//! [`MATCH_CAP`] firms matched); pages of at most [`MAX_PAGE`] follow
//! an opaque cursor bound to the snapshot and the filters. Names come from each listed firm's
//! registration profile, for the page only; the industry is the snapshot's, the value the
//! filter saw.
//!
//! **Years in business** are counted to the last day of the snapshot's month (its as-of date),
//! not to the day of the request: the snapshot's values are as of then, and every page of a
//! screening — and a screening repeated next week on the same snapshot — selects the same firms.
//!
//! Every request — served or refused — leaves one audit record (filters hash, counts, response
//! hash) before the answer leaves; an audit that cannot be written fails the request.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::Date32Type;
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Datelike, NaiveDate};
use puhui_domain::indicators::{self, IndicatorType, TAX_GRADES};
use puhui_domain::product::{EligibilityCondition, Operator};
use puhui_domain::risk::Period;
use puhui_domain::rules::{RuleCondition, Severity, WatchRule};
use puhui_domain::{
    BankId, DivisionCode, Error, FieldError, IndustryCode, Principal, ProfileCategory, Purpose,
    Role, Uscc,
};
use puhui_engines::columnar::CompiledRules;
use puhui_ports::{BlobStore, Clock, IdGenerator, Table};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{AuditLog, AuditOutcome, AuditRecord, AuditedRefusal, sha256_json};
use crate::profiles;
use crate::risk::SnapshotStore;

/// The audit action of a screening.
pub const ACTION: &str = "screening";
/// Most firms one screening yields, over all its pages (customer acquisition, not export).
pub const MATCH_CAP: usize = 1_000;
/// Largest page.
pub const MAX_PAGE: u32 = 50;
/// Page size when none is asked for.
pub const DEFAULT_PAGE: u32 = 20;
/// Most values one list filter takes.
const MAX_VALUES: usize = 50;

/// Headcount: employees with social insurance.
const HEADCOUNT: &str = "social_insured_headcount";
/// Tax credit grade.
const TAX_GRADE: &str = "tax_credit_grade";
/// Tax paid over the last 12 months, in fen.
const TAX_PAID: &str = "tax_paid_12m";
/// Columns derived from the USCC's registration division, at each level of GB/T 2260, with the
/// digits of the code each keeps (`33`, `3302`, `330203`).
const REGION_COLUMNS: [(&str, usize); 3] = [
    ("region_province", 2),
    ("region_city", 4),
    ("region_county", 6),
];
/// Columns derived from the firm's industry code, at each level of GB/T 4754 (section letter,
/// 2-digit division, 3-digit group, 4-digit class), with the characters of the code each keeps.
/// A firm whose code stops above a level (`C34`) has no value at the levels below it.
const INDUSTRY_COLUMNS: [(&str, usize); 4] = [
    ("industry_section", 1),
    ("industry_division", 3),
    ("industry_group", 4),
    ("industry_class", 5),
];
/// Column derived from `established_on`: whole years in business at the snapshot's as-of date.
const YEARS: &str = "years_in_business";

/// A closed range of counts or amounts; either end may be left open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Band {
    /// Lowest value (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Highest value (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

/// What the firms must satisfy: every filter given (each list: any of its values). A firm whose
/// value is unknown does not match a filter on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScreeningFilters {
    /// Registration areas (GB/T 2260 codes; a province or city covers its counties), from the
    /// USCC's registration division.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Tax credit grades (`A`, `B`, `M`, `C`, `D`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tax_credit_grades: Vec<String>,
    /// Headcount band: employees with social insurance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headcount: Option<Band>,
    /// Tax paid over the last 12 months, in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_paid_12m: Option<Band>,
    /// Industries (GB/T 4754-2017 codes): a section letter (`C`) or a division, group or class
    /// (`C13`, `C131`, `C1311`), each covering every class beneath it; from the registration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!(["C13", "F"]))]
    pub industries: Vec<String>,
    /// Whole years in business, from the registration's establishment date to the last day of
    /// the snapshot's month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub years_in_business: Option<Band>,
    /// Yes/no indicators the firm must be known to be clear of (`dishonest_debtor`,
    /// `abnormal_operation`, `tax_arrears` …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clear_of: Vec<String>,
}

/// A screening request: the filters and the page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScreeningRequest {
    /// The filters (at least one).
    pub filters: ScreeningFilters,
    /// Page size (1–50, default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`, with the same filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// One firm found: public business identity only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScreenedFirm {
    /// The firm's unified social credit code.
    #[schema(value_type = String)]
    pub uscc: Uscc,
    /// Registered name, when the registration is on file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Registration division (GB/T 2260), from the USCC.
    pub region: String,
    /// Industry code (GB/T 4754), from the snapshot screened, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<String>,
}

/// One page of a screening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScreeningPage {
    /// The audit record of this request.
    pub audit_id: String,
    /// The snapshot screened (`YYYY-MM`).
    pub period: String,
    /// The firms of this page, by USCC.
    pub items: Vec<ScreenedFirm>,
    /// Firms matched, at most [`MATCH_CAP`].
    pub total: u64,
    /// True when more firms matched than [`MATCH_CAP`]: only the first by USCC are listed.
    pub capped: bool,
    /// Cursor of the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Why a screening is refused (each with its audit reason code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScreeningRefusal {
    /// The caller lacks `loan_officer`.
    #[error("screening needs the loan_officer role")]
    Role,
    /// A filter, the page size or the cursor is invalid.
    #[error("invalid screening request")]
    Invalid(Vec<FieldError>),
    /// No indicator snapshot is published yet.
    #[error("no indicator snapshot has been published yet; screening starts with the first")]
    NoSnapshot,
}

impl AuditedRefusal for ScreeningRefusal {
    fn code(&self) -> &'static str {
        match self {
            ScreeningRefusal::Role => "forbidden_role",
            ScreeningRefusal::Invalid(_) => "invalid_request",
            ScreeningRefusal::NoSnapshot => "no_snapshot",
        }
    }
}

impl From<ScreeningRefusal> for Error {
    fn from(r: ScreeningRefusal) -> Error {
        match r {
            ScreeningRefusal::Role => Error::Forbidden(r.to_string()),
            ScreeningRefusal::Invalid(errors) => Error::Validation(errors),
            ScreeningRefusal::NoSnapshot => Error::Conflict(r.to_string()),
        }
    }
}

/// The filters as one condition tree over snapshot columns (stored and derived), with the
/// snapshot columns it reads and the derived columns it needs.
#[derive(Debug, Clone, PartialEq)]
struct Compiled {
    condition: RuleCondition,
    /// Stored value columns read (besides `uscc`, and `industry`, which the answer shows).
    columns: Vec<String>,
    /// Registration-area levels filtered on (positions in [`REGION_COLUMNS`]).
    region_levels: Vec<usize>,
    /// Industry levels filtered on (positions in [`INDUSTRY_COLUMNS`]).
    industry_levels: Vec<usize>,
    years: bool,
}

/// For codes filed by level (a column per level), one condition that any level's codes hold,
/// added to `all`; returns the levels that have codes.
fn any_level(
    columns: &[(&str, usize)],
    codes: &[Vec<String>],
    all: &mut Vec<RuleCondition>,
) -> Vec<usize> {
    let levels: Vec<usize> = (0..columns.len())
        .filter(|&l| !codes[l].is_empty())
        .collect();
    if !levels.is_empty() {
        all.push(RuleCondition::Any(
            levels
                .iter()
                .map(|&l| leaf(columns[l].0, Operator::In, json!(codes[l])))
                .collect(),
        ));
    }
    levels
}

fn leaf(fact: &str, operator: Operator, value: Value) -> RuleCondition {
    RuleCondition::Fact(EligibilityCondition {
        fact: fact.into(),
        operator,
        value,
    })
}

/// Checks the filters, reporting every problem under `filters.…`, and compiles them.
fn compile(f: &ScreeningFilters) -> Result<Compiled, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut all = Vec::new();
    let mut columns = Vec::new();
    let too_many = |field: &str| {
        FieldError::new(
            format!("filters.{field}"),
            "too_many",
            format!("at most {MAX_VALUES} values"),
        )
    };

    let mut by_level: [Vec<String>; 3] = Default::default();
    if f.regions.len() > MAX_VALUES {
        errors.push(too_many("regions"));
    }
    for (i, r) in f.regions.iter().enumerate() {
        match DivisionCode::parse(r) {
            Ok(code) => {
                let s = code.as_str();
                let level = if s.ends_with("0000") {
                    0
                } else if s.ends_with("00") {
                    1
                } else {
                    2
                };
                // The derived column holds the level's leading digits only.
                by_level[level].push(s[..REGION_COLUMNS[level].1].to_owned());
            }
            Err(e) => errors.push(FieldError::from(e).under(&format!("filters.regions[{i}]"))),
        }
    }
    let region_levels = any_level(&REGION_COLUMNS, &by_level, &mut all);

    if f.tax_credit_grades.len() > MAX_VALUES {
        errors.push(too_many("tax_credit_grades"));
    }
    for (i, g) in f.tax_credit_grades.iter().enumerate() {
        if !TAX_GRADES.contains(&g.as_str()) {
            errors.push(FieldError::new(
                format!("filters.tax_credit_grades[{i}]"),
                "unknown_grade",
                format!("a tax credit grade is one of {}", TAX_GRADES.join(", ")),
            ));
        }
    }
    if !f.tax_credit_grades.is_empty() {
        all.push(leaf(TAX_GRADE, Operator::In, json!(f.tax_credit_grades)));
        columns.push(TAX_GRADE.to_owned());
    }

    // Industries by level: a code matches the firms whose code, cut to its length, is it.
    let mut by_length: [Vec<String>; INDUSTRY_COLUMNS.len()] = Default::default();
    if f.industries.len() > MAX_VALUES {
        errors.push(too_many("industries"));
    }
    for (i, code) in f.industries.iter().enumerate() {
        match IndustryCode::parse(code) {
            Ok(code) => {
                let len = code.as_str().len();
                if let Some(level) = INDUSTRY_COLUMNS.iter().position(|(_, n)| *n == len) {
                    by_length[level].push(code.as_str().to_owned());
                }
            }
            Err(e) => errors.push(FieldError::from(e).under(&format!("filters.industries[{i}]"))),
        }
    }
    let industry_levels = any_level(&INDUSTRY_COLUMNS, &by_length, &mut all);

    let mut years = false;
    for (field, fact, stored, band) in [
        ("headcount", HEADCOUNT, HEADCOUNT, f.headcount),
        ("tax_paid_12m", TAX_PAID, TAX_PAID, f.tax_paid_12m),
        (
            "years_in_business",
            YEARS,
            puhui_snapshot::ESTABLISHED_ON,
            f.years_in_business,
        ),
    ] {
        let Some(band) = band else { continue };
        let path = format!("filters.{field}");
        match (band.min, band.max) {
            (None, None) => errors.push(FieldError::new(path, "required", "give min, max or both")),
            (Some(lo), Some(hi)) if lo > hi => errors.push(FieldError::new(
                format!("{path}.min"),
                "range_inverted",
                "min is above max",
            )),
            _ if band.min.is_some_and(|v| v < 0) || band.max.is_some_and(|v| v < 0) => errors.push(
                FieldError::new(path, "out_of_range", "must not be negative"),
            ),
            (min, max) => {
                if let Some(lo) = min {
                    all.push(leaf(fact, Operator::GreaterThanInclusive, json!(lo)));
                }
                if let Some(hi) = max {
                    all.push(leaf(fact, Operator::LessThanInclusive, json!(hi)));
                }
                columns.push(stored.to_owned());
                years |= fact == YEARS;
            }
        }
    }

    if f.clear_of.len() > MAX_VALUES {
        errors.push(too_many("clear_of"));
    }
    for (i, id) in f.clear_of.iter().enumerate() {
        match indicators::find(id) {
            Some(ind) if ind.kind == IndicatorType::Boolean => {
                all.push(leaf(ind.id, Operator::Equal, json!(false)));
                columns.push(ind.id.to_owned());
            }
            _ => errors.push(FieldError::new(
                format!("filters.clear_of[{i}]"),
                "not_a_flag",
                format!("'{id}' is not a yes/no indicator of the catalogue"),
            )),
        }
    }

    if all.is_empty() && errors.is_empty() {
        errors.push(FieldError::new(
            "filters",
            "required",
            "give at least one filter",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    columns.sort();
    columns.dedup();
    Ok(Compiled {
        condition: RuleCondition::All(all),
        columns,
        region_levels,
        industry_levels,
        years,
    })
}

/// The batch with the derived columns `c` needs added: registration areas from each row's USCC,
/// industry levels from `industry`, years in business at `as_of` from `established_on`.
fn with_derived(c: &Compiled, batch: &RecordBatch, as_of: NaiveDate) -> Result<RecordBatch, Error> {
    if c.region_levels.is_empty() && c.industry_levels.is_empty() && !c.years {
        return Ok(batch.clone());
    }
    let schema = batch.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    let mut add = |name: &str, column: ArrayRef| {
        fields.push(Field::new(name, column.data_type().clone(), true));
        columns.push(column);
    };
    if !c.region_levels.is_empty() {
        let uscc = text_column(batch, puhui_snapshot::USCC)?
            .ok_or_else(|| Error::Internal("snapshot batch without a uscc column".into()))?;
        for &level in &c.region_levels {
            let (name, digits) = REGION_COLUMNS[level];
            // The code's leading digits, unpadded (the condition holds them so): no allocation
            // per row.
            let values: StringArray = uscc.iter().map(|u| u?.get(2..2 + digits)).collect();
            add(name, Arc::new(values));
        }
    }
    if !c.industry_levels.is_empty() {
        let industry = text_column(batch, puhui_snapshot::INDUSTRY)?;
        for &level in &c.industry_levels {
            let (name, len) = INDUSTRY_COLUMNS[level];
            let values: StringArray = match industry {
                Some(codes) => codes.iter().map(|i| i?.get(..len)).collect(),
                None => std::iter::repeat_n(None::<&str>, batch.num_rows()).collect(),
            };
            add(name, Arc::new(values));
        }
    }
    if c.years {
        let values: Int64Array = match batch.column_by_name(puhui_snapshot::ESTABLISHED_ON) {
            Some(col) => {
                let dates = col.as_primitive_opt::<Date32Type>().ok_or_else(|| {
                    Error::Internal("snapshot column established_on is not a date".into())
                })?;
                (0..dates.len())
                    .map(|i| dates.value_as_date(i).filter(|_| dates.is_valid(i)))
                    .map(|d| d.map(|d| whole_years(d, as_of)))
                    .collect()
            }
            None => std::iter::repeat_n(None::<i64>, batch.num_rows()).collect(),
        };
        add(YEARS, Arc::new(values));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::Internal(format!("derived screening columns: {e}")))
}

/// The text column `name` of a snapshot batch (`None` when absent).
fn text_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<Option<&'a StringArray>, Error> {
    batch
        .column_by_name(name)
        .map(|c| {
            c.as_string_opt::<i32>()
                .ok_or_else(|| Error::Internal(format!("snapshot column {name} is not text")))
        })
        .transpose()
}

/// Whole years from `from` to `to`: the anniversaries passed (a firm established on 29 February
/// has its anniversary on 1 March in other years).
fn whole_years(from: NaiveDate, to: NaiveDate) -> i64 {
    let years = i64::from(to.year() - from.year());
    if (to.month(), to.day()) < (from.month(), from.day()) {
        years - 1
    } else {
        years
    }
}

/// One firm a screening found: its code and the snapshot's industry code for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Found {
    uscc: Uscc,
    industry: Option<String>,
}

/// Collects the first `keep` firms by USCC that the filters match, batch after batch, and
/// whether more matched. At most about twice `keep` are held at any time, so a broad filter
/// over a region does not collect every firm of it.
struct Collector {
    compiled: Compiled,
    rules: CompiledRules,
    as_of: NaiveDate,
    keep: usize,
    found: Vec<Found>,
    more: bool,
}

impl Collector {
    fn new(compiled: Compiled, as_of: NaiveDate, keep: usize) -> Self {
        let rule = WatchRule {
            id: "screening".into(),
            name: "screening".into(),
            severity: Severity::Info,
            conditions: compiled.condition.clone(),
            cooldown_periods: 0,
        };
        Collector {
            rules: CompiledRules::compile(std::slice::from_ref(&rule)),
            compiled,
            as_of,
            keep,
            found: Vec::new(),
            more: false,
        }
    }

    /// Adds the matching firms of `batch` (invalid codes skipped).
    fn add(&mut self, batch: &RecordBatch) -> Result<(), Error> {
        let batch = with_derived(&self.compiled, batch, self.as_of)?;
        let Some(hits) = self.rules.evaluate(&batch).into_iter().next() else {
            return Ok(());
        };
        let uscc = text_column(&batch, puhui_snapshot::USCC)?
            .ok_or_else(|| Error::Internal("snapshot batch without a uscc column".into()))?;
        let industry = text_column(&batch, puhui_snapshot::INDUSTRY)?;
        for i in hits.hits.set_indices() {
            if uscc.is_valid(i)
                && let Ok(u) = Uscc::parse_lenient(uscc.value(i))
            {
                self.found.push(Found {
                    uscc: u,
                    industry: industry
                        .filter(|a| a.is_valid(i))
                        .map(|a| a.value(i).to_owned()),
                });
            }
        }
        if self.found.len() > 2 * self.keep.max(1_024) {
            self.trim();
        }
        Ok(())
    }

    /// Sorts by USCC, drops repeats and keeps the first `keep`, noting whether any went.
    fn trim(&mut self) {
        self.found.sort_unstable();
        self.found.dedup_by(|a, b| a.uscc == b.uscc);
        if self.found.len() > self.keep {
            self.more = true;
            self.found.truncate(self.keep);
        }
    }

    /// True once more than `keep` matched: on a snapshot sorted by USCC no later row can
    /// enter the first `keep`.
    fn full(&mut self) -> bool {
        self.trim();
        self.more
    }

    /// The first `keep` matches by USCC, and whether more matched.
    fn finish(mut self) -> (Vec<Found>, bool) {
        self.trim();
        (self.found, self.more)
    }
}

/// The first `keep` firms by USCC that the filters match in `batches`, and whether more
/// matched.
#[cfg(test)]
fn matching(
    c: &Compiled,
    batches: &[RecordBatch],
    as_of: NaiveDate,
    keep: usize,
) -> Result<(Vec<Found>, bool), Error> {
    let mut collector = Collector::new(c.clone(), as_of, keep);
    for b in batches {
        collector.add(b)?;
    }
    Ok(collector.finish())
}

/// A cursor names the snapshot, the filters (by hash) and the last USCC served.
fn encode_cursor(period: &str, filters: &str, after: &Uscc) -> String {
    URL_SAFE_NO_PAD.encode(format!("s1|{period}|{filters}|{after}"))
}

fn decode_cursor(cursor: &str, period: &str, filters: &str) -> Option<Uscc> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let mut parts = text.split('|');
    let ok =
        parts.next() == Some("s1") && parts.next() == Some(period) && parts.next() == Some(filters);
    let after = Uscc::parse_lenient(parts.next()?).ok()?;
    (ok && parts.next().is_none()).then_some(after)
}

fn page_size(limit: Option<u32>) -> Result<usize, FieldError> {
    match limit {
        None => Ok(DEFAULT_PAGE as usize),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n as usize),
        Some(_) => Err(FieldError::new(
            "limit",
            "out_of_range",
            format!("must be 1–{MAX_PAGE}"),
        )),
    }
}

/// The screening use case.
pub struct ScreeningService {
    table: Arc<dyn Table>,
    snapshots: SnapshotStore,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    recent: Mutex<VecDeque<(String, Matches)>>,
}

/// The capped, sorted matches of one screening over one snapshot.
#[derive(Debug, Clone)]
struct Matches {
    firms: Arc<Vec<Found>>,
    capped: bool,
}

/// Screenings whose matches a warm instance keeps, so the next pages of a screening do not
/// read and evaluate the snapshot again (each at most [`MATCH_CAP`] codes).
const RECENT: usize = 16;

impl ScreeningService {
    /// The service over the table (profiles, audit) and the blob store (snapshots).
    pub fn new(
        table: Arc<dyn Table>,
        blobs: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        ScreeningService {
            table,
            snapshots: SnapshotStore::new(blobs),
            clock,
            ids,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// The matches of `compiled` over the snapshot of `manifest`: remembered from an earlier
    /// page of the same screening (same filters, same manifest) or evaluated now.
    async fn matches(
        &self,
        manifest: &puhui_snapshot::Manifest,
        filters_hash: &str,
        compiled: Compiled,
    ) -> Result<Matches, Error> {
        let key = format!("{}|{filters_hash}", sha256_json(manifest));
        let remembered = self
            .recent
            .lock()
            .ok()
            .and_then(|r| r.iter().find(|(k, _)| *k == key).map(|(_, m)| m.clone()));
        if let Some(m) = remembered {
            return Ok(m);
        }
        let period = Period::parse(&manifest.period).map_err(|e| Error::Internal(e.message))?;
        // The filter's columns, and the industry the answer shows.
        let mut columns = compiled.columns.clone();
        columns.push(puhui_snapshot::INDUSTRY.to_owned());
        let mut collector = Collector::new(compiled, period.last_day(), MATCH_CAP);
        // Shard by shard: a snapshot sorted by USCC (the builder's) is read only until more
        // than MATCH_CAP firms matched, since no later shard's firm can come before them.
        for shard in &manifest.shards {
            let batches = self
                .snapshots
                .shard(period, &shard.path, Some(columns.clone()))
                .await?;
            // Evaluation is CPU work: off the async workers.
            let (back, full) = tokio::task::spawn_blocking(move || {
                for b in &batches {
                    collector.add(b)?;
                }
                let full = collector.full();
                Ok::<_, Error>((collector, full))
            })
            .await
            .map_err(|e| Error::Internal(format!("screening stopped: {e}")))??;
            collector = back;
            if full && manifest.sorted_by_uscc {
                break;
            }
        }
        let (found, capped) = collector.finish();
        let m = Matches {
            firms: Arc::new(found),
            capped,
        };
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() >= RECENT {
                recent.pop_front();
            }
            recent.push_back((key, m.clone()));
        }
        Ok(m)
    }

    /// One page of the firms the filters match, for the caller's bank, audited whatever the
    /// outcome. A caller without a bank has no tenant to audit under and is refused first.
    pub async fn screen(
        &self,
        who: &Principal,
        request: ScreeningRequest,
    ) -> Result<ScreeningPage, Error> {
        let bank = who
            .bank_id
            .clone()
            .ok_or_else(|| Error::Forbidden("screening needs a token issued for a bank".into()))?;
        let mut record = AuditRecord {
            id: self.ids.ulid().to_string(),
            at: self.clock.now(),
            bank_id: bank.clone(),
            user: who.subject.clone(),
            action: ACTION.into(),
            uscc: None,
            purpose: Some(Purpose::Marketing),
            authorization_id: None,
            subject: None,
            inputs_sha256: Some(sha256_json(&request.filters)),
            outcome: AuditOutcome::Allowed,
            result: None,
            response_sha256: None,
        };
        let result = self.screen_inner(who, &bank, &request, &mut record).await;
        let answer = record.conclude(result);
        AuditLog::new(self.table.clone()).append(&record).await?;
        answer
    }

    async fn screen_inner(
        &self,
        who: &Principal,
        bank: &BankId,
        request: &ScreeningRequest,
        record: &mut AuditRecord,
    ) -> Result<Result<ScreeningPage, ScreeningRefusal>, Error> {
        if !who.has(Role::LoanOfficer) {
            return Ok(Err(ScreeningRefusal::Role));
        }
        let mut errors = Vec::new();
        let size = page_size(request.limit).map_err(|e| errors.push(e)).ok();
        let compiled = compile(&request.filters).map_err(|e| errors.extend(e)).ok();
        let (Some(size), Some(compiled)) = (size, compiled) else {
            return Ok(Err(ScreeningRefusal::Invalid(errors)));
        };
        let Some(manifest) = self.snapshots.latest().await? else {
            return Ok(Err(ScreeningRefusal::NoSnapshot));
        };
        let period = manifest.period.clone();
        record.subject = Some(format!("snapshot@{period}"));
        let filters_hash = record.inputs_sha256.clone().unwrap_or_default();
        let after = match &request.cursor {
            None => None,
            Some(c) => match decode_cursor(c, &period, &filters_hash) {
                Some(after) => Some(after),
                None => {
                    return Ok(Err(ScreeningRefusal::Invalid(vec![FieldError::new(
                        "cursor",
                        "invalid_cursor",
                        "not a cursor of this screening (the filters or the snapshot changed); start again without one",
                    )])));
                }
            },
        };
        let Matches {
            firms: found,
            capped,
        } = self.matches(&manifest, &filters_hash, compiled).await?;
        let start = after.map_or(0, |a| found.partition_point(|f| f.uscc <= a));
        let page: Vec<Found> = found.iter().skip(start).take(size).cloned().collect();
        let next_cursor = match page.last() {
            Some(last) if start + page.len() < found.len() => {
                Some(encode_cursor(&period, &filters_hash, &last.uscc))
            }
            _ => None,
        };
        let items =
            futures::future::try_join_all(page.into_iter().map(|u| self.identity(u))).await?;
        record.result = Some(json!({
            "returned": items.len(),
            "total": found.len(),
            "capped": capped,
        }));
        tracing::info!(bank = %bank, %period, total = found.len(), capped, "screening served");
        Ok(Ok(ScreeningPage {
            audit_id: record.id.clone(),
            period,
            items,
            total: found.len() as u64,
            capped,
            next_cursor,
        }))
    }

    /// The firm's public identity: name from its registration (nothing else of the profile is
    /// read into the answer), industry from the snapshot screened, area from its USCC.
    async fn identity(&self, found: Found) -> Result<ScreenedFirm, Error> {
        let basic = profiles::category(self.table.as_ref(), &found.uscc, ProfileCategory::Basic)
            .await?
            .unwrap_or_default();
        let name = basic
            .get("firm_name")
            .and_then(|f| f.value.as_str())
            .map(str::to_owned);
        Ok(ScreenedFirm {
            region: found.uscc.division().to_owned(),
            name,
            industry: found.industry,
            uscc: found.uscc,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow_array::{BooleanArray, Date32Array};
    use arrow_schema::DataType;
    use puhui_domain::interfaces::{Catalogue, Sensitivity};

    fn filters(v: Value) -> ScreeningFilters {
        serde_json::from_value(v).unwrap()
    }

    fn fields_of(r: Result<Compiled, Vec<FieldError>>) -> Vec<(String, String)> {
        r.unwrap_err()
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect()
    }

    #[test]
    fn every_indicator_screened_on_is_in_the_catalogue() {
        for id in [HEADCOUNT, TAX_GRADE, TAX_PAID] {
            assert!(indicators::find(id).is_some(), "{id}");
        }
        let c = compile(&filters(json!({
            "tax_credit_grades": ["A"], "headcount": {"min": 1},
            "tax_paid_12m": {"max": 5}, "clear_of": ["dishonest_debtor"]
        })))
        .unwrap();
        assert!(c.columns.iter().all(|i| indicators::find(i).is_some()));
        // Each leaf on a catalogue indicator passes the catalogue's own type check.
        for l in c.condition.leaves() {
            if indicators::find(&l.fact).is_some() {
                l.validate().unwrap();
            }
        }
    }

    #[test]
    fn bad_filters_are_reported_each_with_its_path() {
        let got = fields_of(compile(&filters(json!({
            "regions": ["330203", "33020x"],
            "tax_credit_grades": ["A", "AA"],
            "headcount": {"min": 10, "max": 5},
            "tax_paid_12m": {},
            "clear_of": ["dishonest_debtor", "tax_paid_12m", "nope"]
        }))));
        assert_eq!(
            got,
            [
                ("filters.regions[1]", "invalid_format"),
                ("filters.tax_credit_grades[1]", "unknown_grade"),
                ("filters.headcount.min", "range_inverted"),
                ("filters.tax_paid_12m", "required"),
                ("filters.clear_of[1]", "not_a_flag"),
                ("filters.clear_of[2]", "not_a_flag"),
            ]
            .map(|(f, c)| (f.to_owned(), c.to_owned()))
        );
        assert_eq!(
            fields_of(compile(&ScreeningFilters::default())),
            [("filters".to_owned(), "required".to_owned())]
        );
        assert!(
            serde_json::from_value::<ScreeningFilters>(json!({"revenue": {"min": 1}})).is_err(),
            "an unknown filter is refused, not ignored"
        );
    }

    /// A test row: USCC, tax credit grade, headcount, dishonest debtor.
    type Row<'a> = (&'a str, Option<&'a str>, Option<i64>, Option<bool>);

    fn batch(rows: &[Row]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("uscc", DataType::Utf8, false),
            Field::new(TAX_GRADE, DataType::Utf8, true),
            Field::new(HEADCOUNT, DataType::Int64, true),
            Field::new("dishonest_debtor", DataType::Boolean, true),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
            Arc::new(BooleanArray::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )),
        ];
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    #[test]
    fn filters_select_by_area_grade_band_and_flags_sorted_by_uscc() {
        // Valid USCCs registered in three areas (check characters computed, not typed).
        let code = |division: &str, n: u32| {
            use puhui_domain::ids::{org_code_check_character, uscc_check_character};
            let body = format!("MA{n:06}");
            let org = org_code_check_character(body.as_bytes()).unwrap();
            let first17 = format!("91{division}{body}{org}");
            let c = uscc_check_character(first17.as_bytes()).unwrap();
            let u = format!("{first17}{c}");
            assert!(Uscc::parse(&u).is_ok(), "{u}");
            u
        };
        let (a, b, c, d, e) = (
            code("330203", 1),
            code("330212", 2),
            code("330106", 3),
            code("320102", 4),
            code("330203", 5),
        );
        let rows = [
            (e.as_str(), Some("A"), Some(12), Some(false)),
            (a.as_str(), Some("A"), Some(30), Some(false)),
            (b.as_str(), Some("B"), Some(8), Some(false)),
            (c.as_str(), Some("A"), Some(50), Some(false)),
            (d.as_str(), Some("A"), Some(20), Some(false)),
        ];
        let run = |f: Value, rows: &[Row]| {
            let c = compile(&filters(f)).unwrap();
            let (found, more) =
                matching(&c, &[batch(rows)], date("2026-10-31"), MATCH_CAP).unwrap();
            assert!(!more);
            found
                .into_iter()
                .map(|f| f.uscc.to_string())
                .collect::<Vec<_>>()
        };
        let mut ningbo = vec![a.clone(), b.clone(), e.clone()];
        ningbo.sort();
        assert_eq!(run(json!({"regions": ["330200"]}), &rows), ningbo);
        let mut zhejiang = vec![a.clone(), b.clone(), c.clone(), e.clone()];
        zhejiang.sort();
        assert_eq!(run(json!({"regions": ["330000"]}), &rows), zhejiang);
        let mut two = vec![a.clone(), d.clone(), e.clone()];
        two.sort();
        assert_eq!(run(json!({"regions": ["330203", "320000"]}), &rows), two);
        assert_eq!(
            run(
                json!({"regions": ["330200"], "tax_credit_grades": ["A"], "headcount": {"min": 10, "max": 30}}),
                &rows
            ),
            {
                let mut v = vec![a.clone(), e.clone()];
                v.sort();
                v
            }
        );
        // Unknown values never match; a known "yes" excludes.
        let unknown = [
            (a.as_str(), None, None, None),
            (b.as_str(), Some("A"), Some(5), Some(true)),
            (c.as_str(), Some("A"), Some(5), Some(false)),
        ];
        assert_eq!(
            run(json!({"clear_of": ["dishonest_debtor"]}), &unknown),
            std::slice::from_ref(&c)
        );
        assert_eq!(run(json!({"headcount": {"max": 100}}), &unknown), {
            let mut v = vec![b.clone(), c.clone()];
            v.sort();
            v
        });
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// A valid USCC of Ningbo's Haishu district, number `n`.
    fn firm(n: u32) -> String {
        use puhui_domain::ids::{org_code_check_character, uscc_check_character};
        let body = format!("MA{n:06}");
        let org = org_code_check_character(body.as_bytes()).unwrap();
        let first17 = format!("91330203{body}{org}");
        let c = uscc_check_character(first17.as_bytes()).unwrap();
        format!("{first17}{c}")
    }

    /// A batch of firms `0..` with these industries and establishment dates.
    fn registrations(rows: &[(Option<&str>, Option<&str>)]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("uscc", DataType::Utf8, false),
            Field::new(puhui_snapshot::INDUSTRY, DataType::Utf8, true),
            Field::new(puhui_snapshot::ESTABLISHED_ON, DataType::Date32, true),
        ]);
        let days = |d: &str| (date(d) - date("1970-01-01")).num_days() as i32;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                (0..rows.len()).map(|i| firm(i as u32)),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(Date32Array::from(
                rows.iter().map(|r| r.1.map(days)).collect::<Vec<_>>(),
            )),
        ];
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    /// The indices (firm numbers) the filters select in `batch`, as of `as_of`.
    fn selected(f: Value, batch: &RecordBatch, as_of: &str) -> Vec<usize> {
        let c = compile(&filters(f)).unwrap();
        let (found, _) = matching(&c, std::slice::from_ref(batch), date(as_of), MATCH_CAP).unwrap();
        let mut got: Vec<usize> = found
            .iter()
            .map(|f| {
                (0..batch.num_rows())
                    .find(|&i| firm(i as u32) == f.uscc.as_str())
                    .unwrap()
            })
            .collect();
        got.sort_unstable();
        got
    }

    #[test]
    fn industries_match_their_code_and_every_class_beneath_it() {
        let b = registrations(&[
            (Some("C1311"), None), // 0: grain milling
            (Some("C1320"), None), // 1: feed
            (Some("C3311"), None), // 2: metal structures
            (Some("C13"), None),   // 3: known to the division only
            (Some("F5123"), None), // 4: wholesale
            (None, None),          // 5: unknown
            (Some("C"), None),     // 6: known to the section only
        ]);
        let at = "2026-10-31";
        assert_eq!(
            selected(json!({"industries": ["C"]}), &b, at),
            [0, 1, 2, 3, 6]
        );
        assert_eq!(selected(json!({"industries": ["C13"]}), &b, at), [0, 1, 3]);
        assert_eq!(selected(json!({"industries": ["C131"]}), &b, at), [0]);
        assert_eq!(
            selected(json!({"industries": ["C1311", "F"]}), &b, at),
            [0, 4]
        );
        // Not a prefix of the text: C1 is no code, C3 no division; a section is not C13's.
        assert_eq!(
            selected(json!({"industries": ["C33", "F51"]}), &b, at),
            [2, 4]
        );
        assert!(selected(json!({"industries": ["A"]}), &b, at).is_empty());
        // The answer carries the snapshot's industry.
        let c = compile(&filters(json!({"industries": ["F"]}))).unwrap();
        let (found, _) = matching(&c, std::slice::from_ref(&b), date(at), 10).unwrap();
        assert_eq!(found[0].industry.as_deref(), Some("F5123"));
    }

    #[test]
    fn years_in_business_are_whole_years_at_the_snapshot_date() {
        let b = registrations(&[
            (None, Some("2016-10-31")), // 0: ten years on the day
            (None, Some("2016-11-01")), // 1: ten years tomorrow: nine
            (None, Some("2026-01-15")), // 2: under one year
            (None, Some("1995-06-30")), // 3: 31 years
            (None, None),               // 4: unknown
            (None, Some("2024-02-29")), // 5: leap day: 2 years at 2026-10-31
        ]);
        let at = "2026-10-31";
        assert_eq!(
            selected(json!({"years_in_business": {"min": 10}}), &b, at),
            [0, 3]
        );
        assert_eq!(
            selected(json!({"years_in_business": {"max": 9}}), &b, at),
            [1, 2, 5]
        );
        assert_eq!(
            selected(json!({"years_in_business": {"min": 0, "max": 0}}), &b, at),
            [2]
        );
        assert_eq!(
            selected(json!({"years_in_business": {"min": 2, "max": 10}}), &b, at),
            [0, 1, 5]
        );
        // Another snapshot month, other years: a day later firm 1 has its tenth anniversary.
        assert_eq!(
            selected(json!({"years_in_business": {"min": 10}}), &b, "2026-11-30"),
            [0, 1, 3]
        );
        assert_eq!(whole_years(date("2024-02-29"), date("2025-02-28")), 0);
        assert_eq!(whole_years(date("2024-02-29"), date("2025-03-01")), 1);
        assert_eq!(whole_years(date("2024-02-29"), date("2028-02-29")), 4);
    }

    #[test]
    fn new_filters_combine_and_read_only_their_columns() {
        let b = registrations(&[
            (Some("C1311"), Some("2010-05-01")),
            (Some("C1311"), Some("2025-05-01")),
            (Some("F5123"), Some("2010-05-01")),
        ]);
        let f =
            json!({"industries": ["C13"], "years_in_business": {"min": 3}, "regions": ["330200"]});
        assert_eq!(selected(f.clone(), &b, "2026-10-31"), [0]);
        let c = compile(&filters(f)).unwrap();
        assert_eq!(c.columns, [puhui_snapshot::ESTABLISHED_ON]);
        assert_eq!(c.industry_levels, [1]);
        assert!(c.years);
        assert_eq!(c.region_levels, [1]);
        // A snapshot without the registration columns (version 1): nothing matches, no error.
        let old = b.project(&[0]).unwrap();
        let (found, _) = matching(&c, &[old], date("2026-10-31"), 10).unwrap();
        assert!(found.is_empty());
    }

    #[test]
    fn bad_industries_and_years_are_reported_each_with_its_path() {
        let many: Vec<String> = (0..51).map(|_| "C".to_owned()).collect();
        let got = fields_of(compile(&filters(json!({
            "industries": ["C13", "c13", "C1", "Z", "C131111", ""],
            "years_in_business": {"min": 5, "max": 2},
        }))));
        assert_eq!(
            got,
            [
                ("filters.industries[1]", "invalid_format"),
                ("filters.industries[2]", "invalid_format"),
                ("filters.industries[3]", "invalid_format"),
                ("filters.industries[4]", "invalid_format"),
                ("filters.industries[5]", "invalid_format"),
                ("filters.years_in_business.min", "range_inverted"),
            ]
            .map(|(f, c)| (f.to_owned(), c.to_owned()))
        );
        let got = fields_of(compile(&filters(json!({
            "industries": many,
            "years_in_business": {},
        }))));
        assert_eq!(
            got,
            [
                ("filters.industries", "too_many"),
                ("filters.years_in_business", "required"),
            ]
            .map(|(f, c)| (f.to_owned(), c.to_owned()))
        );
        assert_eq!(
            fields_of(compile(&filters(json!({"years_in_business": {"min": -1}})))),
            [(
                "filters.years_in_business".to_owned(),
                "out_of_range".to_owned()
            )]
        );
        assert!(
            serde_json::from_value::<ScreeningFilters>(json!({"years_in_business": {"min": 1.5}}))
                .is_err(),
            "whole years only"
        );
    }

    #[test]
    fn a_broad_screening_keeps_only_the_first_firms() {
        let rows: Vec<(Option<&str>, Option<&str>)> = vec![(Some("C1311"), None); 3_000];
        let b = registrations(&rows);
        let c = compile(&filters(json!({"industries": ["C"]}))).unwrap();
        // Shuffled across batches: the first by USCC whatever the order read.
        let batches = [b.slice(2_000, 1_000), b.slice(0, 2_000)];
        let (found, more) = matching(&c, &batches, date("2026-10-31"), 1_000).unwrap();
        assert!(more);
        let mut want: Vec<String> = (0..3_000).map(firm).collect();
        want.sort();
        let got: Vec<String> = found.iter().map(|f| f.uscc.to_string()).collect();
        assert_eq!(got, want[..1_000]);
        let (all, more) = matching(&c, &batches, date("2026-10-31"), 3_000).unwrap();
        assert!(!more && all.len() == 3_000);
    }

    #[test]
    fn cursors_are_bound_to_snapshot_and_filters() {
        let u = Uscc::parse("91350100M000100Y43").unwrap();
        let c = encode_cursor("2026-11", "abc", &u);
        assert_eq!(decode_cursor(&c, "2026-11", "abc"), Some(u));
        assert_eq!(decode_cursor(&c, "2026-12", "abc"), None);
        assert_eq!(decode_cursor(&c, "2026-11", "abd"), None);
        assert_eq!(decode_cursor("not a cursor", "2026-11", "abc"), None);
        assert!(page_size(Some(51)).is_err() && page_size(Some(0)).is_err());
        assert_eq!(page_size(None).unwrap(), 20);
    }

    #[test]
    fn identity_fields_are_public_registration_fields() {
        let basic = Catalogue::builtin().get("basic_registration").unwrap();
        for field in ["firm_name", "industry"] {
            let def = basic.fields.iter().find(|f| f.field == field).unwrap();
            assert_eq!(def.sensitivity, Sensitivity::Public, "{field}");
        }
    }
}
