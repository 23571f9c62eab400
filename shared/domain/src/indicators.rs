//! The risk indicators of `DOMAIN.md` as data: id, value type and meaning. Product eligibility
//! conditions and (later) bank risk rules may only name indicators from this catalogue.

use serde::Serialize;

/// The type of an indicator's value, which decides the operators and values a condition may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndicatorType {
    /// Money in fen (an integer).
    Fen,
    /// A ratio such as a year-on-year change (−1 … ∞).
    Ratio,
    /// A count.
    Integer,
    /// Yes or no.
    Boolean,
    /// One of a fixed set of labels.
    Category(&'static [&'static str]),
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Indicator {
    /// Stable id used in conditions.
    pub id: &'static str,
    /// Value type.
    #[serde(skip)]
    pub kind: IndicatorType,
    /// What it measures.
    pub meaning: &'static str,
}

const fn ind(id: &'static str, kind: IndicatorType, meaning: &'static str) -> Indicator {
    Indicator { id, kind, meaning }
}

use IndicatorType::*;

/// Tax credit grades (A ≥ 90 points, B 70–90, M new or no revenue, C 40–70, D < 40).
pub const TAX_GRADES: &[&str] = &["A", "B", "M", "C", "D"];

/// The 27 risk indicators (period = month; changes against the same period a year earlier).
pub const CATALOGUE: &[Indicator] = &[
    ind("tax_paid_12m", Fen, "tax paid, last 12 months"),
    ind("tax_paid_yoy", Ratio, "change of tax paid"),
    ind("invoice_sales_yoy", Ratio, "change of VAT-invoiced sales"),
    ind("tax_credit_grade", Category(TAX_GRADES), "tax credit grade"),
    ind("tax_arrears", Boolean, "unpaid tax outstanding"),
    ind(
        "social_insured_headcount",
        Integer,
        "employees with social insurance",
    ),
    ind(
        "social_insured_change_6m",
        Ratio,
        "headcount change over 6 months",
    ),
    ind(
        "social_insurance_arrears_months",
        Integer,
        "months of social insurance in arrears",
    ),
    ind(
        "housing_fund_headcount",
        Integer,
        "employees with housing fund",
    ),
    ind(
        "housing_fund_arrears_months",
        Integer,
        "months of housing fund in arrears",
    ),
    ind("electricity_yoy", Ratio, "change of electricity use"),
    ind("water_yoy", Ratio, "change of water use"),
    ind("gas_yoy", Ratio, "change of gas use"),
    ind("utility_arrears", Boolean, "unpaid utility bills"),
    ind(
        "court_cases_defendant_12m",
        Integer,
        "new cases as defendant",
    ),
    ind(
        "enforcement_cases_active",
        Integer,
        "active enforcement cases",
    ),
    ind("enforcement_amount", Fen, "amount under enforcement"),
    ind("dishonest_debtor", Boolean, "on the dishonest-debtor list"),
    ind(
        "consumption_restricted",
        Boolean,
        "high-consumption restriction",
    ),
    ind("property_seized", Boolean, "real estate seized or frozen"),
    ind("equity_frozen", Boolean, "equity frozen"),
    ind("penalties_12m", Integer, "administrative penalties"),
    ind(
        "abnormal_operation",
        Boolean,
        "on the abnormal-operation list",
    ),
    ind(
        "serious_violation",
        Boolean,
        "on the serious-violation list",
    ),
    ind(
        "legal_rep_changed_6m",
        Boolean,
        "legal representative changed",
    ),
    ind("capital_reduced_12m", Boolean, "registered capital reduced"),
    ind(
        "environmental_penalty_12m",
        Boolean,
        "environmental penalty",
    ),
];

/// A change indicator the snapshot builder derives from a level indicator: the level now against
/// the level `months` earlier, as a ratio `(now − then) / then`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The change indicator (a ratio).
    pub id: &'static str,
    /// The level indicator it compares.
    pub level: &'static str,
    /// How many months back the base level is taken.
    pub months: u16,
}

/// The change indicators whose level is itself in the catalogue. The others (invoiced sales and
/// utilities) have no level here, so only the delivering department's own figure fills them.
pub const CHANGES: &[Change] = &[
    Change {
        id: "tax_paid_yoy",
        level: "tax_paid_12m",
        months: 12,
    },
    Change {
        id: "social_insured_change_6m",
        level: "social_insured_headcount",
        months: 6,
    },
];

/// Looks an indicator up by id.
pub fn find(id: &str) -> Option<&'static Indicator> {
    CATALOGUE.iter().find(|i| i.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_27_unique_ids() {
        let mut ids: Vec<_> = CATALOGUE.iter().map(|i| i.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 27);
        assert_eq!(find("dishonest_debtor").map(|i| i.kind), Some(Boolean));
        assert!(find("nope").is_none());
    }

    #[test]
    fn changes_pair_a_ratio_with_a_numeric_level() {
        for c in CHANGES {
            assert_eq!(find(c.id).map(|i| i.kind), Some(Ratio), "{}", c.id);
            assert!(
                matches!(find(c.level).map(|i| i.kind), Some(Fen | Integer)),
                "{}",
                c.level
            );
            assert!(c.months > 0);
        }
    }
}
