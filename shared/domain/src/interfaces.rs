//! Data interfaces (数据接口): named, versioned views over a firm's profile. Each lists its fields
//! (profile category + field name), each field's sensitivity class and how it may leave the
//! platform — shown, masked for display, banded into ranges, or model-only (never returned).
//!
//! The catalogue is data (`interfaces.json`, embedded), checked on load: a C2 field is never
//! shown, a C3 field is only ever a model input, masked fields name their mask and banded ones
//! their band edges. Profiles are stored one item per category (see `puhui_services::profiles`);
//! each field carries its value, the department it came from and its as-of date.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Interface id: basic registration.
pub const BASIC_REGISTRATION: &str = "basic_registration";
/// Interface id: property.
pub const PROPERTY_SUMMARY: &str = "property_summary";
/// Interface id: tax summary.
pub const TAX_SUMMARY: &str = "tax_summary";
/// Interface id: social insurance and housing fund.
pub const SOCIAL_INSURANCE_SUMMARY: &str = "social_insurance_summary";
/// Interface id: utilities trend.
pub const UTILITIES_TREND: &str = "utilities_trend";
/// Interface id: litigation and penalties.
pub const LITIGATION_AND_PENALTIES: &str = "litigation_and_penalties";

/// The built-in catalogue's source.
const CATALOGUE_JSON: &str = include_str!("interfaces.json");

/// The seven profile categories (Ningbo's).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ProfileCategory {
    /// 基本信息: registration.
    Basic,
    /// 财产信息: real estate, vehicles, equity, IP.
    Property,
    /// 财务信息: tax-derived revenue and profit.
    Financial,
    /// 经营信息: tax paid, social insurance, utilities, invoices.
    Operating,
    /// 正面信息: honours, qualifications, high-tech status.
    Positive,
    /// 负面信息: judgments, enforcement, penalties, arrears.
    Negative,
    /// 信用评价: tax credit grade, public credit ratings.
    Credit,
}

impl ProfileCategory {
    /// Every category, in the order above.
    pub const ALL: [ProfileCategory; 7] = [
        ProfileCategory::Basic,
        ProfileCategory::Property,
        ProfileCategory::Financial,
        ProfileCategory::Operating,
        ProfileCategory::Positive,
        ProfileCategory::Negative,
        ProfileCategory::Credit,
    ];

    /// The name used in keys and JSON (`basic`, `property`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileCategory::Basic => "basic",
            ProfileCategory::Property => "property",
            ProfileCategory::Financial => "financial",
            ProfileCategory::Operating => "operating",
            ProfileCategory::Positive => "positive",
            ProfileCategory::Negative => "negative",
            ProfileCategory::Credit => "credit",
        }
    }
}

impl std::fmt::Display for ProfileCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sensitivity class (JR/T 0171-2020 for personal financial information; `public` for public
/// business information such as registrations and court records).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Public business information.
    Public,
    /// C1: internal business data.
    C1,
    /// C2: identifying and account data (ID numbers, phones, accounts, property).
    C2,
    /// C3: authentication data (passwords, keys, biometrics).
    C3,
}

/// How a masked value is masked for display (rules in DOMAIN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaskKind {
    /// Surname only: `张*`, `欧阳**`.
    PersonName,
    /// First and last character: `1****************X`.
    IdNumber,
    /// `138****5678`.
    Phone,
    /// Down to the district (county) level.
    Address,
    /// First 6 and last 4 digits.
    BankAccount,
    /// First letter and the domain.
    Email,
}

/// What may leave the platform of one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Treatment {
    /// Returned as stored.
    Shown,
    /// Returned masked for display.
    Masked(MaskKind),
    /// An exact amount returned as the range it falls in.
    Banded(Bands),
    /// Never returned; usable only as a model input.
    ModelOnly,
}

/// Band edges, strictly ascending: `[e0, e1, …]` makes the ranges `< e0`, `[e0, e1)`, …, `≥ eN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bands {
    /// The edges.
    pub edges: Vec<i64>,
    /// Unit of the amount (`fen`, `kWh`, `points`).
    pub unit: Option<String>,
}

/// The name of a field's treatment, as written in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleName {
    /// Returned as stored.
    Shown,
    /// Masked for display (`kind` says how).
    Masked,
    /// As a range (`edges`).
    Banded,
    /// Never returned.
    ModelOnly,
}

impl Treatment {
    /// Its name.
    pub fn name(&self) -> RuleName {
        match self {
            Treatment::Shown => RuleName::Shown,
            Treatment::Masked(_) => RuleName::Masked,
            Treatment::Banded(_) => RuleName::Banded,
            Treatment::ModelOnly => RuleName::ModelOnly,
        }
    }
}

/// One field of an interface, as the catalogue spells it (flat, so the JSON stays readable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Profile category.
    pub category: ProfileCategory,
    /// Field name within the category.
    pub field: String,
    /// Sensitivity class.
    pub sensitivity: Sensitivity,
    /// Treatment.
    pub rule: RuleName,
    /// For `masked`: how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MaskKind>,
    /// For `banded`: the band edges, strictly ascending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edges: Option<Vec<i64>>,
    /// For `banded`: the amount's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// One field of an interface, checked: its treatment carries what it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FieldSpec", into = "FieldSpec")]
pub struct InterfaceField {
    /// Profile category.
    pub category: ProfileCategory,
    /// Field name within the category.
    pub field: String,
    /// Sensitivity class.
    pub sensitivity: Sensitivity,
    /// What may leave the platform.
    pub treatment: Treatment,
}

impl TryFrom<FieldSpec> for InterfaceField {
    type Error = String;

    fn try_from(s: FieldSpec) -> Result<Self, String> {
        let treatment = match (s.rule, s.kind, s.edges, s.unit) {
            (RuleName::Shown, None, None, None) => Treatment::Shown,
            (RuleName::ModelOnly, None, None, None) => Treatment::ModelOnly,
            (RuleName::Masked, Some(kind), None, None) => Treatment::Masked(kind),
            (RuleName::Masked, None, _, _) => return Err("a masked field names its kind".into()),
            (RuleName::Banded, None, Some(edges), unit) => {
                if edges.is_empty() || edges.windows(2).any(|w| w[0] >= w[1]) {
                    return Err("band edges must be non-empty and strictly ascending".into());
                }
                Treatment::Banded(Bands { edges, unit })
            }
            (RuleName::Banded, _, None, _) => {
                return Err("a banded field lists its band edges".into());
            }
            (rule, ..) => {
                return Err(format!(
                    "`kind` belongs to masked fields and `edges`/`unit` to banded ones, not {}",
                    serde_json::to_value(rule).unwrap_or(Value::Null)
                ));
            }
        };
        // Classification decides the least a field must be protected by.
        match (s.sensitivity, &treatment) {
            (Sensitivity::C3, t) if *t != Treatment::ModelOnly => {
                return Err("C3 (authentication) data is only ever a model input".into());
            }
            (Sensitivity::C2, Treatment::Shown) => {
                return Err("C2 (personal identifying or account) data is never shown raw".into());
            }
            _ => {}
        }
        if s.field.is_empty()
            || !s
                .field
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(format!("field name {:?} must be snake_case", s.field));
        }
        Ok(InterfaceField {
            category: s.category,
            field: s.field,
            sensitivity: s.sensitivity,
            treatment,
        })
    }
}

impl From<InterfaceField> for FieldSpec {
    fn from(f: InterfaceField) -> FieldSpec {
        let (rule, kind, edges, unit) = match f.treatment {
            Treatment::Shown => (RuleName::Shown, None, None, None),
            Treatment::ModelOnly => (RuleName::ModelOnly, None, None, None),
            Treatment::Masked(k) => (RuleName::Masked, Some(k), None, None),
            Treatment::Banded(b) => (RuleName::Banded, None, Some(b.edges), b.unit),
        };
        FieldSpec {
            category: f.category,
            field: f.field,
            sensitivity: f.sensitivity,
            rule,
            kind,
            edges,
            unit,
        }
    }
}

/// A named, versioned view over a firm's profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataInterface {
    /// Id (what authorizations list in their scope).
    pub id: String,
    /// Version: raised whenever fields or treatments change.
    pub version: u32,
    /// Title.
    pub title: String,
    /// What it is for.
    pub description: String,
    /// Its fields, in the order returned.
    #[schema(value_type = Vec<FieldSpec>)]
    pub fields: Vec<InterfaceField>,
}

impl DataInterface {
    /// The profile categories its fields read.
    pub fn categories(&self) -> BTreeSet<ProfileCategory> {
        self.fields.iter().map(|f| f.category).collect()
    }
}

/// Why a catalogue is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// Not JSON of the catalogue's shape (includes a field's own inconsistency).
    #[error("catalogue is not valid: {0}")]
    Malformed(String),
    /// Two interfaces with one id.
    #[error("interface {0} is listed twice")]
    DuplicateInterface(String),
    /// One field listed twice in an interface.
    #[error("interface {interface} lists {category}.{field} twice")]
    DuplicateField {
        /// The interface.
        interface: String,
        /// Category.
        category: ProfileCategory,
        /// Field.
        field: String,
    },
    /// An interface with a bad id, version 0 or no fields.
    #[error(
        "interface {0}: ids are snake_case, versions start at 1, and every interface has fields"
    )]
    BadInterface(String),
}

/// The data-interface catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// Every interface.
    pub interfaces: Vec<DataInterface>,
}

static BUILTIN: LazyLock<Catalogue> = LazyLock::new(|| {
    // The embedded file is a constant of this build, checked by the unit test below; a build
    // that cannot read it must not serve anything.
    #[allow(clippy::expect_used)]
    Catalogue::parse(CATALOGUE_JSON).expect("the embedded interface catalogue is valid")
});

impl Catalogue {
    /// Parses and checks a catalogue.
    pub fn parse(json: &str) -> Result<Catalogue, CatalogueError> {
        let c: Catalogue =
            serde_json::from_str(json).map_err(|e| CatalogueError::Malformed(e.to_string()))?;
        let mut ids = BTreeSet::new();
        for i in &c.interfaces {
            let snake = !i.id.is_empty()
                && i.id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !snake || i.version == 0 || i.fields.is_empty() {
                return Err(CatalogueError::BadInterface(i.id.clone()));
            }
            if !ids.insert(i.id.as_str()) {
                return Err(CatalogueError::DuplicateInterface(i.id.clone()));
            }
            let mut seen = BTreeSet::new();
            for f in &i.fields {
                if !seen.insert((f.category, f.field.as_str())) {
                    return Err(CatalogueError::DuplicateField {
                        interface: i.id.clone(),
                        category: f.category,
                        field: f.field.clone(),
                    });
                }
            }
        }
        Ok(c)
    }

    /// The catalogue built into this release.
    pub fn builtin() -> &'static Catalogue {
        &BUILTIN
    }

    /// One interface by id.
    pub fn get(&self, id: &str) -> Option<&DataInterface> {
        self.interfaces.iter().find(|i| i.id == id)
    }
}

/// One stored profile field: its value, the department it came from and its as-of date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileField {
    /// The value as the ingest stored it (raw: personal data included).
    pub value: Value,
    /// The source department (`market_regulation`, `tax`, `hrss`, `courts`, …).
    pub source: String,
    /// The date the source's data is as of.
    pub as_of: NaiveDate,
}

/// A firm's profile: each category's fields by name (categories the ingest has not written are
/// absent).
pub type FirmProfile = BTreeMap<ProfileCategory, BTreeMap<String, ProfileField>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorization::{CLAIM_SCOPE, CREDIT_EVALUATION};

    #[test]
    fn builtin_catalogue_is_valid_and_covers_the_claim_scope() {
        let c = Catalogue::parse(CATALOGUE_JSON).expect("valid");
        for id in [
            BASIC_REGISTRATION,
            PROPERTY_SUMMARY,
            TAX_SUMMARY,
            SOCIAL_INSURANCE_SUMMARY,
            UTILITIES_TREND,
            LITIGATION_AND_PENALTIES,
            CREDIT_EVALUATION,
        ] {
            assert!(c.get(id).is_some(), "{id} missing");
        }
        for id in CLAIM_SCOPE {
            assert!(c.get(id).is_some(), "claim scope names unknown {id}");
        }
        // Every category is read by some interface.
        let read: BTreeSet<_> = c.interfaces.iter().flat_map(|i| i.categories()).collect();
        assert_eq!(read.len(), ProfileCategory::ALL.len());
        // Round trip through the flat spelling.
        let again = serde_json::to_string(&c).expect("serializes");
        assert_eq!(Catalogue::parse(&again).expect("reparses"), c);
    }

    fn one(field: &str) -> Result<Catalogue, CatalogueError> {
        Catalogue::parse(&format!(
            r#"{{"interfaces":[{{"id":"x","version":1,"title":"t","description":"d","fields":[{field}]}}]}}"#
        ))
    }

    #[test]
    fn inconsistent_fields_are_refused() {
        let refused = [
            r#"{"category":"basic","field":"id","sensitivity":"c2","rule":"shown"}"#,
            r#"{"category":"basic","field":"pw","sensitivity":"c3","rule":"masked","kind":"phone"}"#,
            r#"{"category":"basic","field":"n","sensitivity":"c2","rule":"masked"}"#,
            r#"{"category":"basic","field":"n","sensitivity":"c1","rule":"banded"}"#,
            r#"{"category":"basic","field":"n","sensitivity":"c1","rule":"banded","edges":[5,5]}"#,
            r#"{"category":"basic","field":"n","sensitivity":"c1","rule":"shown","edges":[1]}"#,
            r#"{"category":"basic","field":"n","sensitivity":"c1","rule":"shown","colour":1}"#,
            r#"{"category":"basic","field":"Name","sensitivity":"c1","rule":"shown"}"#,
            r#"{"category":"nope","field":"n","sensitivity":"c1","rule":"shown"}"#,
        ];
        for f in refused {
            assert!(
                matches!(one(f), Err(CatalogueError::Malformed(_))),
                "{f} accepted"
            );
        }
        let twice = r#"{"category":"basic","field":"n","sensitivity":"c1","rule":"shown"},
                       {"category":"basic","field":"n","sensitivity":"c1","rule":"model_only"}"#;
        assert!(matches!(
            one(twice),
            Err(CatalogueError::DuplicateField { .. })
        ));
        let c = one(r#"{"category":"basic","field":"pw","sensitivity":"c3","rule":"model_only"}"#)
            .expect("C3 as model input only is fine");
        assert_eq!(c.interfaces[0].fields[0].treatment, Treatment::ModelOnly);
    }
}
