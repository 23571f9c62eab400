//! Screening (客户筛选): a bank's customer-acquisition staff find firms by filters over the
//! screening indicators of the newest indicator snapshot, and get back public business identity
//! only — name, USCC, registration area, industry — never a field of class C1–C3.
//!
//! The filters are a small typed schema; each becomes a condition on a catalogue indicator (or
//! on the registration area, read from USCC characters 3–8), and the conditions are evaluated by
//! the columnar rule evaluator the risk scans use, over every shard of the newest snapshot.
//! Matches are sorted by USCC and capped at [`MATCH_CAP`]; pages of at most [`MAX_PAGE`] follow
//! an opaque cursor bound to the snapshot and the filters. Names come from each listed firm's
//! registration profile, for the page only.
//!
//! Every request — served or refused — leaves one audit record (filters hash, counts, response
//! hash) before the answer leaves; an audit that cannot be written fails the request.
//!
//! Not in this slice: industry and years in business (the snapshot has no such columns yet).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use puhui_domain::indicators::{self, IndicatorType, TAX_GRADES};
use puhui_domain::product::{EligibilityCondition, Operator};
use puhui_domain::rules::{RuleCondition, Severity, WatchRule};
use puhui_domain::{
    BankId, DivisionCode, Error, FieldError, Principal, ProfileCategory, Purpose, Role, Uscc,
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
/// digits of the code each keeps (the rest padded with zeros, as the code of that level reads).
const REGION_COLUMNS: [(&str, usize); 3] = [
    ("region_province", 2),
    ("region_city", 4),
    ("region_county", 6),
];

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
    /// Industry code (GB/T 4754), when the registration is on file.
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

/// The filters as one condition tree over snapshot columns, with the indicator columns it reads.
#[derive(Debug, Clone, PartialEq)]
struct Compiled {
    condition: RuleCondition,
    indicators: Vec<String>,
    regions: bool,
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
    let mut indicators = Vec::new();
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
                by_level[level].push(s.to_owned());
            }
            Err(e) => errors.push(FieldError::from(e).under(&format!("filters.regions[{i}]"))),
        }
    }
    let regions: Vec<RuleCondition> = REGION_COLUMNS
        .iter()
        .zip(by_level)
        .filter(|(_, codes)| !codes.is_empty())
        .map(|((column, _), codes)| leaf(column, Operator::In, json!(codes)))
        .collect();
    let has_regions = !regions.is_empty();
    if has_regions {
        all.push(RuleCondition::Any(regions));
    }

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
        indicators.push(TAX_GRADE.to_owned());
    }

    for (field, fact, band) in [
        ("headcount", HEADCOUNT, f.headcount),
        ("tax_paid_12m", TAX_PAID, f.tax_paid_12m),
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
                indicators.push(fact.to_owned());
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
                indicators.push(ind.id.to_owned());
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
    indicators.sort();
    indicators.dedup();
    Ok(Compiled {
        condition: RuleCondition::All(all),
        indicators,
        regions: has_regions,
    })
}

/// The batch with the registration-area columns added, derived from each row's USCC.
fn with_regions(batch: &RecordBatch) -> Result<RecordBatch, Error> {
    let uscc = batch
        .column_by_name(puhui_snapshot::USCC)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| Error::Internal("snapshot batch without a text uscc column".into()))?;
    let schema = batch.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for (name, digits) in REGION_COLUMNS {
        let values: StringArray = uscc
            .iter()
            .map(|u| {
                u.and_then(|u| u.get(2..2 + digits))
                    .map(|p| format!("{p:0<6}"))
            })
            .collect();
        fields.push(Field::new(name, DataType::Utf8, true));
        columns.push(Arc::new(values));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::Internal(format!("region columns: {e}")))
}

/// Every firm of `batches` the filters match, sorted by USCC (invalid codes skipped).
fn matching(c: &Compiled, batches: &[RecordBatch]) -> Result<Vec<Uscc>, Error> {
    let rule = WatchRule {
        id: "screening".into(),
        name: "screening".into(),
        severity: Severity::Info,
        conditions: c.condition.clone(),
        cooldown_periods: 0,
    };
    let compiled = CompiledRules::compile(std::slice::from_ref(&rule));
    let mut out = Vec::new();
    for batch in batches {
        let batch = if c.regions {
            with_regions(batch)?
        } else {
            batch.clone()
        };
        let Some(hits) = compiled.evaluate(&batch).into_iter().next() else {
            continue;
        };
        let uscc = batch
            .column_by_name(puhui_snapshot::USCC)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| Error::Internal("snapshot batch without a text uscc column".into()))?;
        for i in hits.hits.set_indices() {
            if uscc.is_valid(i)
                && let Ok(u) = Uscc::parse_lenient(uscc.value(i))
            {
                out.push(u);
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
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
    firms: Arc<Vec<Uscc>>,
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
        let batches = self
            .snapshots
            .all(manifest, Some(compiled.indicators.clone()))
            .await?;
        // Evaluation is CPU work: off the async workers.
        let mut found = tokio::task::spawn_blocking(move || matching(&compiled, &batches))
            .await
            .map_err(|e| Error::Internal(format!("screening stopped: {e}")))??;
        let capped = found.len() > MATCH_CAP;
        found.truncate(MATCH_CAP);
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
        let start = after.map_or(0, |a| found.partition_point(|u| *u <= a));
        let page: Vec<Uscc> = found.iter().skip(start).take(size).cloned().collect();
        let next_cursor = match page.last() {
            Some(last) if start + page.len() < found.len() => {
                Some(encode_cursor(&period, &filters_hash, last))
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

    /// The firm's public identity: name and industry from its registration (nothing else of
    /// the profile is read into the answer), area from its USCC.
    async fn identity(&self, uscc: Uscc) -> Result<ScreenedFirm, Error> {
        let basic = profiles::category(self.table.as_ref(), &uscc, ProfileCategory::Basic)
            .await?
            .unwrap_or_default();
        let text = |field: &str| {
            basic
                .get(field)
                .and_then(|f| f.value.as_str())
                .map(str::to_owned)
        };
        Ok(ScreenedFirm {
            region: uscc.division().to_owned(),
            name: text("firm_name"),
            industry: text("industry"),
            uscc,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow_array::{BooleanArray, Int64Array};
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
        assert!(c.indicators.iter().all(|i| indicators::find(i).is_some()));
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
            serde_json::from_value::<ScreeningFilters>(json!({"industries": ["C"]})).is_err(),
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
            matching(&c, &[batch(rows)])
                .unwrap()
                .into_iter()
                .map(|u| u.to_string())
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
