//! The source catalogue (数据源目录): every government department's batch file Puhui ingests,
//! declared as data (`sources.json`, embedded) — its department, the profile category it feeds,
//! the firm key column (USCC), the as-of column, each field's type, unit, sensitivity class and
//! target profile field, the expected update interval, and its row-level data-quality rules.
//!
//! Row-level rules (completeness, format, range, enumeration, uniqueness within a file,
//! cross-field) are checked by the ingest engine on every row; each has a severity: `reject`
//! quarantines the row, `warn` loads it and reports. Cross-source consistency and freshness rules
//! need stored data from other files and days: they are declared here too, as each source's
//! `daily_rules`, and checked by the daily data-quality job over what was already loaded — so
//! they can only `warn`.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::interfaces::{ProfileCategory, Sensitivity};

/// The built-in catalogue's source.
const SOURCES_JSON: &str = include_str!("sources.json");

/// Rule id prefix the engine uses for checks every source gets without declaring them.
pub const BUILTIN_PREFIX: &str = "builtin.";
/// Built-in rule: the row does not have the header's shape (wrong column count, not an object).
pub const RULE_SHAPE: &str = "builtin.shape";
/// Built-in rule: a value is not of its field's declared type and no declared rule said so.
pub const RULE_TYPE: &str = "builtin.type";

/// A field's type: how the raw text of a cell becomes a typed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Free text, trimmed.
    Text,
    /// A whole number (money in fen, counts).
    Integer,
    /// A decimal number (ratios).
    Decimal,
    /// A calendar date, `YYYY-MM-DD` or `YYYYMMDD`.
    Date,
    /// `true`/`false`, `1`/`0`, `Y`/`N`, `是`/`否`.
    Boolean,
    /// A unified social credit code (GB 32100 check; the organisation-code check is a rule).
    Uscc,
    /// A resident ID number (GB 11643 check and a real birth date).
    IdNumber,
    /// A mobile number (stored bare).
    Phone,
    /// A GB/T 2260 administrative division code.
    Division,
}

/// One column of a source's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceField {
    /// Column name in the file (CSV header, NDJSON key).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Unit of a number (`fen`, `persons`, `months`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Sensitivity class (quarantine masks C2 and C3 values).
    pub sensitivity: Sensitivity,
    /// The profile field it is stored as; `None` for columns that only key or date the row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Whether a value is required (the catalogue declares a completeness rule for each).
    #[serde(default)]
    pub required: bool,
}

/// What a failed rule does to the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Quarantine the row.
    Reject,
    /// Load the row and report.
    Warn,
}

/// A format a format rule checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatCheck {
    /// GB 32100 alphabet and check character.
    Uscc,
    /// The GB 11714 organisation-code check (position 17); registries hold a few codes failing it.
    UsccOrgCode,
    /// GB 11643 check character and birth date.
    IdNumber,
    /// Mobile number.
    Phone,
    /// A real calendar date.
    Date,
    /// A province, city or county code.
    Division,
}

/// Which way a cross-field rule compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// `field` strictly after (greater than) `other`.
    After,
    /// `field` on or after `other`.
    NotBefore,
}

/// What a rule checks. Every kind but completeness passes an empty value (absence is
/// completeness' business alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleKind {
    /// The field has a value.
    Completeness {
        /// The field.
        field: String,
    },
    /// The value has the format.
    Format {
        /// The field.
        field: String,
        /// The format.
        format: FormatCheck,
    },
    /// The number lies within the bounds (inclusive).
    Range {
        /// The field.
        field: String,
        /// Lower bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// Upper bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// The value is one of these.
    Enumeration {
        /// The field.
        field: String,
        /// The allowed values.
        values: Vec<String>,
    },
    /// No two rows of one file share the value (the first occurrence is the one kept).
    Uniqueness {
        /// The field.
        field: String,
    },
    /// `field` compares with `other` as declared (dates or numbers; checked when both are present).
    CrossField {
        /// The field.
        field: String,
        /// The comparison.
        must_be: Comparison,
        /// The field compared with.
        other: String,
    },
}

impl RuleKind {
    /// The field the rule is about (reported with a failure).
    pub fn field(&self) -> &str {
        match self {
            RuleKind::Completeness { field }
            | RuleKind::Format { field, .. }
            | RuleKind::Range { field, .. }
            | RuleKind::Enumeration { field, .. }
            | RuleKind::Uniqueness { field }
            | RuleKind::CrossField { field, .. } => field,
        }
    }

    /// The kind's name (`completeness`, `format`, …).
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Completeness { .. } => "completeness",
            RuleKind::Format { .. } => "format",
            RuleKind::Range { .. } => "range",
            RuleKind::Enumeration { .. } => "enumeration",
            RuleKind::Uniqueness { .. } => "uniqueness",
            RuleKind::CrossField { .. } => "cross_field",
        }
    }
}

/// One data-quality rule of a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityRule {
    /// Unique id across the catalogue (`<source>.<field>.<what>`), what reports count under.
    pub id: String,
    /// What a failure does.
    pub severity: Severity,
    /// What it checks.
    #[serde(flatten)]
    pub kind: RuleKind,
}

/// What a daily rule checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DailyRuleKind {
    /// The source delivered a file that loaded within its `update_interval_days`.
    Freshness,
    /// A firm name a row of this source carries matches the one the registration source holds
    /// for the firm (cross-source consistency).
    NameMatchesRegistration {
        /// The column carrying the name (a text field with a target: what a loaded row keeps).
        field: String,
        /// The registration source.
        registration_source: String,
        /// Its column carrying the registered name.
        registration_field: String,
    },
}

impl DailyRuleKind {
    /// The kind's name (`freshness`, `name_matches_registration`).
    pub fn name(&self) -> &'static str {
        match self {
            DailyRuleKind::Freshness => "freshness",
            DailyRuleKind::NameMatchesRegistration { .. } => "name_matches_registration",
        }
    }
}

/// When a daily rule's failures have jumped: at least `ratio` times the previous day's (any
/// number counts as a jump from none) and at least `min_failures`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JumpThreshold {
    /// Today's failures over the previous day's.
    pub ratio: f64,
    /// Fewest failures that can alert (small counts jump by chance).
    pub min_failures: u64,
}

impl Default for JumpThreshold {
    fn default() -> Self {
        JumpThreshold {
            ratio: 2.0,
            min_failures: 10,
        }
    }
}

/// One rule over stored data of a source, checked daily.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyRule {
    /// Unique id across the catalogue (`<source>.<what>`), what the daily report counts under.
    pub id: String,
    /// Always `warn`: the rows were loaded before the job ran.
    pub severity: Severity,
    /// When its failures raise a platform alert (the catalogue's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<JumpThreshold>,
    /// What it checks.
    #[serde(flatten)]
    pub kind: DailyRuleKind,
}

/// A declared file encoding; `auto` detects a UTF-8 BOM, valid UTF-8, or else GB18030.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeclaredEncoding {
    /// Detect.
    #[default]
    Auto,
    /// UTF-8 (a BOM is skipped).
    Utf8,
    /// GB18030 (a superset of GBK and GB2312).
    Gb18030,
}

/// One government data source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Id, the `<source>` segment of `incoming/<source>/<date>/<file>`.
    pub id: String,
    /// Department (stored as each profile field's `source`).
    pub department: String,
    /// Title.
    pub title: String,
    /// The profile category its fields are stored in.
    pub category: ProfileCategory,
    /// The firm key column (type `uscc`).
    pub key_column: String,
    /// The column giving the date the row's data is as of (type `date`).
    pub as_of_column: String,
    /// The file's encoding.
    #[serde(default)]
    pub encoding: DeclaredEncoding,
    /// Days between expected deliveries (the freshness rule of the daily job reads it).
    pub update_interval_days: u32,
    /// Its columns.
    pub fields: Vec<SourceField>,
    /// Its row-level data-quality rules.
    pub rules: Vec<QualityRule>,
    /// Its rules over stored data, checked by the daily data-quality job.
    #[serde(default)]
    pub daily_rules: Vec<DailyRule>,
}

impl Source {
    /// A column by name.
    pub fn field(&self, name: &str) -> Option<&SourceField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Why a source catalogue is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceCatalogueError {
    /// Not JSON of the catalogue's shape.
    #[error("source catalogue is not valid: {0}")]
    Malformed(String),
    /// Two sources with one id, or two rules with one id.
    #[error("{0} is declared twice")]
    Duplicate(String),
    /// A source or rule that contradicts itself.
    #[error("source {source_id}: {reason}")]
    Inconsistent {
        /// The source.
        source_id: String,
        /// What is wrong.
        reason: String,
    },
}

/// The source catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceCatalogue {
    /// Every source.
    pub sources: Vec<Source>,
    /// When a daily rule's failures raise a platform alert, unless the rule says otherwise.
    #[serde(default)]
    pub alert: JumpThreshold,
}

static BUILTIN: LazyLock<SourceCatalogue> = LazyLock::new(|| {
    // The embedded file is a constant of this build, checked by the unit test below.
    #[allow(clippy::expect_used)]
    SourceCatalogue::parse(SOURCES_JSON).expect("the embedded source catalogue is valid")
});

fn snake(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl SourceCatalogue {
    /// Parses and checks a catalogue: ids unique, key and as-of columns of the right types, every
    /// rule naming a declared field, every required field with a completeness rule, and a format
    /// rule on a field's own type rejecting (a value that does not type cannot be loaded).
    pub fn parse(json: &str) -> Result<SourceCatalogue, SourceCatalogueError> {
        let c: SourceCatalogue = serde_json::from_str(json)
            .map_err(|e| SourceCatalogueError::Malformed(e.to_string()))?;
        let mut ids = BTreeSet::new();
        let mut rule_ids = BTreeSet::new();
        for s in &c.sources {
            let bad = |reason: String| SourceCatalogueError::Inconsistent {
                source_id: s.id.clone(),
                reason,
            };
            if !snake(&s.id) || !ids.insert(s.id.as_str()) {
                return Err(SourceCatalogueError::Duplicate(format!("source {}", s.id)));
            }
            let mut names = BTreeSet::new();
            for f in &s.fields {
                if f.name.is_empty() || !names.insert(f.name.as_str()) {
                    return Err(bad(format!("column {:?} is empty or repeated", f.name)));
                }
                if f.target.as_deref().is_some_and(|t| !snake(t)) {
                    return Err(bad(format!("target of {} must be snake_case", f.name)));
                }
            }
            match s.field(&s.key_column) {
                Some(f) if f.field_type == FieldType::Uscc && f.required => {}
                _ => return Err(bad("the key column must be a required uscc field".into())),
            }
            match s.field(&s.as_of_column) {
                Some(f) if f.field_type == FieldType::Date && f.required => {}
                _ => return Err(bad("the as-of column must be a required date field".into())),
            }
            for r in &s.rules {
                if !r.id.starts_with(&format!("{}.", s.id)) || !rule_ids.insert(r.id.as_str()) {
                    return Err(SourceCatalogueError::Duplicate(format!(
                        "rule {} (rule ids start with their source's id)",
                        r.id
                    )));
                }
                let Some(field) = s.field(r.kind.field()) else {
                    return Err(bad(format!("rule {} names no declared field", r.id)));
                };
                match &r.kind {
                    RuleKind::CrossField { other, .. } if s.field(other).is_none() => {
                        return Err(bad(format!(
                            "rule {} compares with no declared field",
                            r.id
                        )));
                    }
                    RuleKind::Format { format, .. }
                        if format_is_type(*format, field.field_type)
                            && r.severity == Severity::Warn =>
                    {
                        return Err(bad(format!(
                            "rule {}: a value failing its own type cannot load, so it rejects",
                            r.id
                        )));
                    }
                    RuleKind::Range { min, max, .. }
                        if min.zip(*max).is_some_and(|(lo, hi)| lo > hi) =>
                    {
                        return Err(bad(format!("rule {}: min above max", r.id)));
                    }
                    _ => {}
                }
            }
            check_daily_rules(&c, s, &mut rule_ids)?;
            for f in s.fields.iter().filter(|f| f.required) {
                let declared = s.rules.iter().any(|r| {
                    r.severity == Severity::Reject
                        && matches!(&r.kind, RuleKind::Completeness { field } if *field == f.name)
                });
                if !declared {
                    return Err(bad(format!(
                        "required field {} has no rejecting completeness rule",
                        f.name
                    )));
                }
            }
        }
        check_threshold("the catalogue's alert", &c.alert)
            .map_err(SourceCatalogueError::Malformed)?;
        Ok(c)
    }

    /// The catalogue built into this release.
    pub fn builtin() -> &'static SourceCatalogue {
        &BUILTIN
    }

    /// One source by id.
    pub fn get(&self, id: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.id == id)
    }
}

/// A threshold that can be met: a ratio of at least 1 (below it, no change would be a jump).
fn check_threshold(what: &str, t: &JumpThreshold) -> Result<(), String> {
    if t.ratio.is_finite() && t.ratio >= 1.0 {
        Ok(())
    } else {
        Err(format!("{what}: ratio must be a number of at least 1"))
    }
}

/// Daily rules: ids unique and prefixed, `warn` only, one freshness rule at most, and a name
/// check naming a text field of its own with a target and a registration source's field with one.
fn check_daily_rules<'c>(
    c: &SourceCatalogue,
    s: &'c Source,
    rule_ids: &mut BTreeSet<&'c str>,
) -> Result<(), SourceCatalogueError> {
    let bad = |reason: String| SourceCatalogueError::Inconsistent {
        source_id: s.id.clone(),
        reason,
    };
    let mut freshness = 0;
    for r in &s.daily_rules {
        if !r.id.starts_with(&format!("{}.", s.id)) || !rule_ids.insert(r.id.as_str()) {
            return Err(SourceCatalogueError::Duplicate(format!(
                "rule {} (rule ids start with their source's id)",
                r.id
            )));
        }
        if r.severity != Severity::Warn {
            return Err(bad(format!(
                "daily rule {} runs over loaded rows, so it can only warn",
                r.id
            )));
        }
        if let Some(t) = &r.alert {
            check_threshold(&r.id, t).map_err(bad)?;
        }
        match &r.kind {
            DailyRuleKind::Freshness => freshness += 1,
            DailyRuleKind::NameMatchesRegistration {
                field,
                registration_source,
                registration_field,
            } => {
                let stored_text = |src: &Source, name: &str| {
                    src.field(name)
                        .is_some_and(|f| f.field_type == FieldType::Text && f.target.is_some())
                };
                if !stored_text(s, field) {
                    return Err(bad(format!(
                        "rule {}: {field} must be a text field with a target",
                        r.id
                    )));
                }
                let registered = c
                    .get(registration_source)
                    .filter(|reg| reg.id != s.id && stored_text(reg, registration_field));
                if registered.is_none() {
                    return Err(bad(format!(
                        "rule {}: {registration_source}.{registration_field} must be another \
                         source's text field with a target",
                        r.id
                    )));
                }
            }
        }
    }
    if freshness > 1 || (freshness == 1 && s.update_interval_days == 0) {
        return Err(bad(
            "one freshness rule at most, and only with an update interval".into(),
        ));
    }
    Ok(())
}

/// True when the format check is exactly what typing the field checks.
fn format_is_type(format: FormatCheck, t: FieldType) -> bool {
    matches!(
        (format, t),
        (FormatCheck::Uscc, FieldType::Uscc)
            | (FormatCheck::IdNumber, FieldType::IdNumber)
            | (FormatCheck::Phone, FieldType::Phone)
            | (FormatCheck::Date, FieldType::Date)
            | (FormatCheck::Division, FieldType::Division)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn builtin_catalogue_is_valid_and_covers_every_rule_kind() {
        let c = SourceCatalogue::builtin();
        for id in [
            "market_regulation_registration",
            "tax_operating",
            "tax_credit",
            "social_insurance",
            "courts_negative",
        ] {
            assert!(c.get(id).is_some(), "{id}");
        }
        let kinds: BTreeSet<&str> = c
            .sources
            .iter()
            .flat_map(|s| s.rules.iter().map(|r| r.kind.name()))
            .collect();
        assert_eq!(kinds.len(), 6, "{kinds:?}");
    }

    #[test]
    fn inconsistent_catalogues_are_refused() {
        let mut c = SourceCatalogue::builtin().clone();
        c.sources[0]
            .rules
            .retain(|r| r.kind.name() != "completeness");
        let json = serde_json::to_string(&c).unwrap();
        assert!(matches!(
            SourceCatalogue::parse(&json),
            Err(SourceCatalogueError::Inconsistent { .. })
        ));
        let mut c = SourceCatalogue::builtin().clone();
        let dup = c.sources[0].clone();
        c.sources.push(dup);
        let json = serde_json::to_string(&c).unwrap();
        assert!(matches!(
            SourceCatalogue::parse(&json),
            Err(SourceCatalogueError::Duplicate(_))
        ));
        assert!(matches!(
            SourceCatalogue::parse("{}"),
            Err(SourceCatalogueError::Malformed(_))
        ));
    }

    #[test]
    fn daily_rules_are_declared_and_checked() {
        let c = SourceCatalogue::builtin();
        for s in &c.sources {
            let kinds: Vec<&str> = s.daily_rules.iter().map(|r| r.kind.name()).collect();
            assert!(kinds.contains(&"freshness"), "{}", s.id);
        }
        let named: Vec<&str> = c
            .sources
            .iter()
            .filter(|s| {
                s.daily_rules
                    .iter()
                    .any(|r| r.kind.name() == "name_matches_registration")
            })
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(named, ["tax_credit", "courts_negative"]);
        let refused = |edit: &dyn Fn(&mut SourceCatalogue)| {
            let mut c = SourceCatalogue::builtin().clone();
            edit(&mut c);
            SourceCatalogue::parse(&serde_json::to_string(&c).unwrap()).is_err()
        };
        let credit = |c: &mut SourceCatalogue| -> usize {
            c.sources.iter().position(|s| s.id == "tax_credit").unwrap()
        };
        assert!(refused(&|c| {
            let i = credit(c);
            c.sources[i].daily_rules[0].severity = Severity::Reject;
        }));
        assert!(refused(&|c| {
            let i = credit(c);
            let again = c.sources[i].daily_rules[0].clone();
            c.sources[i].daily_rules.push(again);
        }));
        assert!(refused(&|c| {
            let i = credit(c);
            c.sources[i].daily_rules[1].kind = DailyRuleKind::NameMatchesRegistration {
                field: "taxpayer_name".into(),
                registration_source: "tax_credit".into(),
                registration_field: "taxpayer_name".into(),
            };
        }));
        assert!(refused(&|c| {
            let i = credit(c);
            c.sources[i].daily_rules[1].kind = DailyRuleKind::NameMatchesRegistration {
                field: "tax_credit_grade_missing".into(),
                registration_source: "market_regulation_registration".into(),
                registration_field: "firm_name".into(),
            };
        }));
        assert!(refused(&|c| c.alert.ratio = 0.5));
        assert!(!refused(&|_| {}));
    }
}
