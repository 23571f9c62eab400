//! Loan products in the shared "product supermarket": what a bank offers, to whom, and when.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use validator::Validate;

use crate::error::{Error, FieldError, Findings};
use crate::ids::{BankId, ProductId};
use crate::indicators::{self, IndicatorType};
use crate::money::{Bp, Fen};
use crate::region::{DivisionCode, IndustryCode};

/// Kind of loan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductType {
    /// Unsecured credit loan (信用贷).
    Credit,
    /// Secured by real estate (抵押贷).
    Mortgage,
    /// Backed by a guarantor or guarantee fund (担保贷).
    Guaranteed,
}

/// Where a product is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    /// Being prepared; visible to its bank only.
    Draft,
    /// In the public catalogue while inside its validity window.
    Listed,
    /// Withdrawn from the catalogue; may be listed again.
    Delisted,
}

impl ProductStatus {
    /// Checks a status change; listing and delisting are the only moves.
    pub fn transition(self, to: ProductStatus) -> Result<ProductStatus, Error> {
        use ProductStatus::*;
        match (self, to) {
            (Draft | Delisted, Listed) | (Listed, Delisted) => Ok(to),
            _ => Err(Error::Conflict(
                format!("a {self:?} product cannot become {to:?}").to_lowercase(),
            )),
        }
    }
}

/// An inclusive range `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Range<T> {
    /// Lower bound (inclusive).
    pub min: T,
    /// Upper bound (inclusive).
    pub max: T,
}

impl<T: PartialOrd + Copy> Range<T> {
    /// True if `v` lies within the range.
    pub fn contains(&self, v: T) -> bool {
        self.min <= v && v <= self.max
    }

    fn check(&self, field: &str, floor: T, ceiling: T, unit: &str, f: &mut Findings)
    where
        T: std::fmt::Display,
    {
        if self.min < floor || self.min > ceiling {
            f.push(FieldError::new(
                format!("{field}.min"),
                "out_of_range",
                format!("must be {floor}–{ceiling} {unit}"),
            ));
        }
        if self.max < floor || self.max > ceiling {
            f.push(FieldError::new(
                format!("{field}.max"),
                "out_of_range",
                format!("must be {floor}–{ceiling} {unit}"),
            ));
        }
        if self.min > self.max {
            f.push(FieldError::new(
                format!("{field}.max"),
                "range_inverted",
                "max must not be below min",
            ));
        }
    }
}

/// Comparison operators, named as in the json-rules-engine library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Operator {
    Equal,
    NotEqual,
    LessThan,
    LessThanInclusive,
    GreaterThan,
    GreaterThanInclusive,
    In,
    NotIn,
}

/// A condition on one of the firm's indicators that an applicant must meet
/// (stored now; evaluated by the matching engine of the financing flow).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EligibilityCondition {
    /// Indicator id from the catalogue.
    pub fact: String,
    /// How the indicator is compared.
    pub operator: Operator,
    /// What it is compared with.
    pub value: Value,
}

impl EligibilityCondition {
    /// Checks fact, operator and value type against the indicator catalogue.
    pub fn validate(&self) -> Result<(), FieldError> {
        use Operator::*;
        let Some(ind) = indicators::find(&self.fact) else {
            return Err(FieldError::new(
                "fact",
                "unknown_indicator",
                format!("'{}' is not in the indicator catalogue", self.fact),
            ));
        };
        let numeric = matches!(
            ind.kind,
            IndicatorType::Fen | IndicatorType::Integer | IndicatorType::Ratio
        );
        let op_ok = match self.operator {
            Equal | NotEqual => true,
            LessThan | LessThanInclusive | GreaterThan | GreaterThanInclusive => numeric,
            In | NotIn => matches!(ind.kind, IndicatorType::Category(_)),
        };
        if !op_ok {
            return Err(FieldError::new(
                "operator",
                "operator_not_allowed",
                format!("{:?} does not apply to {}", self.operator, self.fact),
            ));
        }
        let scalar_ok = |v: &Value| match ind.kind {
            IndicatorType::Fen | IndicatorType::Integer => v.is_i64(),
            IndicatorType::Ratio => v.is_number(),
            IndicatorType::Boolean => v.is_boolean(),
            IndicatorType::Category(labels) => v.as_str().is_some_and(|s| labels.contains(&s)),
        };
        let value_ok = match self.operator {
            In | NotIn => self
                .value
                .as_array()
                .is_some_and(|a| !a.is_empty() && a.iter().all(scalar_ok)),
            _ => scalar_ok(&self.value),
        };
        if !value_ok {
            return Err(FieldError::new(
                "value",
                "wrong_type",
                format!(
                    "value does not fit indicator {} ({:?})",
                    self.fact, ind.kind
                ),
            ));
        }
        Ok(())
    }
}

/// What a bank sends to create or replace a product: everything but identity and lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductDraft {
    /// Display name.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    pub name: String,
    /// Short description for applicants.
    #[serde(default)]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    pub description: String,
    /// Kind of loan.
    pub product_type: ProductType,
    /// Loan amount range.
    pub amount: Range<Fen>,
    /// Term range in months.
    pub term_months: Range<u16>,
    /// Annual interest rate range.
    pub annual_rate_bp: Range<Bp>,
    /// Areas served; empty means everywhere the platform operates.
    #[serde(default)]
    #[validate(length(max = 200, message = "at most 200 regions"))]
    pub regions: Vec<DivisionCode>,
    /// Industries served; empty means all.
    #[serde(default)]
    #[validate(length(max = 200, message = "at most 200 industries"))]
    pub industries: Vec<IndustryCode>,
    /// Conditions on the firm's indicators.
    #[serde(default)]
    #[validate(length(max = 50, message = "at most 50 conditions"))]
    pub conditions: Vec<EligibilityCondition>,
    /// First business date (Shanghai) on which the product may appear in the catalogue.
    pub valid_from: NaiveDate,
    /// Last business date in the catalogue; none means open-ended.
    #[serde(default)]
    pub valid_to: Option<NaiveDate>,
}

/// Largest amount a product may offer: ¥100 million.
pub const MAX_AMOUNT: Fen = Fen::yuan(100_000_000);
/// Longest term: 30 years.
pub const MAX_TERM_MONTHS: u16 = 360;
/// Highest annual rate accepted: 36 %.
pub const MAX_RATE: Bp = Bp(3600);

impl ProductDraft {
    /// Every rule the draft breaks, reported together.
    pub fn check(&self) -> Result<(), Error> {
        let mut f = Findings::default();
        if let Err(errors) = self.validate() {
            for e in crate::error::from_validator(&errors) {
                f.push(e);
            }
        }
        if self.name.trim().is_empty() && !self.name.is_empty() {
            f.push(FieldError::new("name", "blank", "must not be blank"));
        }
        self.amount
            .check("amount", Fen(1), MAX_AMOUNT, "fen", &mut f);
        self.term_months
            .check("term_months", 1, MAX_TERM_MONTHS, "months", &mut f);
        self.annual_rate_bp
            .check("annual_rate_bp", Bp(1), MAX_RATE, "bp", &mut f);
        if let Some(to) = self.valid_to
            && to < self.valid_from
        {
            f.push(FieldError::new(
                "valid_to",
                "range_inverted",
                "must not be before valid_from",
            ));
        }
        for (i, c) in self.conditions.iter().enumerate() {
            f.check::<(), _>(&format!("conditions[{i}]"), c.validate());
        }
        dup_check("regions", &self.regions, &mut f);
        dup_check("industries", &self.industries, &mut f);
        f.finish()
    }
}

fn dup_check<T: PartialEq + std::fmt::Display>(field: &str, items: &[T], f: &mut Findings) {
    for (i, item) in items.iter().enumerate() {
        if items[..i].contains(item) {
            f.push(FieldError::new(
                format!("{field}[{i}]"),
                "duplicate",
                format!("{item} is listed twice"),
            ));
        }
    }
}

/// A loan product as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Product {
    /// Id (ULID).
    pub id: ProductId,
    /// Owning bank (tenant).
    pub bank_id: BankId,
    /// The bank-maintained terms.
    #[serde(flatten)]
    pub terms: ProductDraft,
    /// Lifecycle status.
    pub status: ProductStatus,
    /// Optimistic-concurrency version, starting at 1 and bumped by every change.
    pub version: u64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl Product {
    /// True if the product is listed and `today` (a Shanghai business date) is inside its window.
    pub fn in_catalogue(&self, today: NaiveDate) -> bool {
        self.status == ProductStatus::Listed
            && self.terms.valid_from <= today
            && self.terms.valid_to.is_none_or(|to| today <= to)
    }

    /// True if the product serves a firm located in `region` (no regions means everywhere).
    pub fn serves_region(&self, region: &DivisionCode) -> bool {
        self.terms.regions.is_empty() || self.terms.regions.iter().any(|r| r.covers(region))
    }

    /// True if the product serves `industry` (no industries means all).
    pub fn serves_industry(&self, industry: &IndustryCode) -> bool {
        self.terms.industries.is_empty() || self.terms.industries.iter().any(|i| i.covers(industry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn draft_json() -> Value {
        json!({
            "name": "Tax-credit loan", "product_type": "credit",
            "amount": {"min": 1_000_000, "max": 300_000_000},
            "term_months": {"min": 1, "max": 36},
            "annual_rate_bp": {"min": 345, "max": 900},
            "regions": ["330200"], "industries": ["C"],
            "conditions": [{"fact": "tax_credit_grade", "operator": "in", "value": ["A", "B"]}],
            "valid_from": "2026-01-01", "valid_to": "2026-12-31"
        })
    }

    fn draft() -> ProductDraft {
        serde_json::from_value(draft_json()).unwrap()
    }

    #[test]
    fn a_good_draft_passes() {
        assert!(draft().check().is_ok());
    }

    #[test]
    fn every_broken_rule_is_reported_with_its_field() {
        let mut d = draft();
        d.name = String::new();
        d.amount = Range {
            min: Fen(500),
            max: Fen(100),
        };
        d.term_months.max = 400;
        d.valid_to = NaiveDate::from_ymd_opt(2025, 1, 1);
        d.conditions.push(EligibilityCondition {
            fact: "dishonest_debtor".into(),
            operator: Operator::GreaterThan,
            value: json!(1),
        });
        d.conditions.push(EligibilityCondition {
            fact: "nope".into(),
            operator: Operator::Equal,
            value: json!(1),
        });
        d.conditions.push(EligibilityCondition {
            fact: "tax_paid_12m".into(),
            operator: Operator::GreaterThan,
            value: json!("x"),
        });
        d.regions.push(DivisionCode::parse("330200").unwrap());
        let Err(Error::Validation(errors)) = d.check() else {
            panic!("expected validation errors")
        };
        let fields: Vec<_> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        for expected in [
            ("name", "length"),
            ("amount.max", "range_inverted"),
            ("term_months.max", "out_of_range"),
            ("valid_to", "range_inverted"),
            ("conditions[1].operator", "operator_not_allowed"),
            ("conditions[2].fact", "unknown_indicator"),
            ("conditions[3].value", "wrong_type"),
            ("regions[1]", "duplicate"),
        ] {
            assert!(
                fields.contains(&expected),
                "{expected:?} missing from {fields:?}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = draft_json();
        v["colour"] = json!("red");
        assert!(serde_json::from_value::<ProductDraft>(v).is_err());
    }

    #[test]
    fn catalogue_window_and_coverage() {
        let now = Utc::now();
        let mut p = Product {
            id: ProductId(ulid::Ulid::nil()),
            bank_id: BankId::parse("nbcb").unwrap(),
            terms: draft(),
            status: ProductStatus::Draft,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(!p.in_catalogue(day("2026-06-01")), "draft");
        p.status = ProductStatus::Listed;
        assert!(p.in_catalogue(day("2026-06-01")));
        assert!(p.in_catalogue(day("2026-12-31")), "last day inclusive");
        assert!(!p.in_catalogue(day("2027-01-01")), "expired");
        assert!(!p.in_catalogue(day("2025-12-31")), "not yet valid");
        assert!(p.serves_region(&DivisionCode::parse("330203").unwrap()));
        assert!(!p.serves_region(&DivisionCode::parse("330100").unwrap()));
        assert!(p.serves_industry(&IndustryCode::parse("C1311").unwrap()));
        let round: Product = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(round, p);
    }

    #[test]
    fn status_moves() {
        use ProductStatus::*;
        assert_eq!(Draft.transition(Listed).unwrap(), Listed);
        assert_eq!(Listed.transition(Delisted).unwrap(), Delisted);
        assert_eq!(Delisted.transition(Listed).unwrap(), Listed);
        assert!(Listed.transition(Listed).is_err());
        assert!(Draft.transition(Delisted).is_err());
    }
}
