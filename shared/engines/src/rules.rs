//! Risk rules, evaluated row-wise: one firm's indicator values against a rule's condition tree.
//! A leaf whose indicator is missing (absent or null) is false, as json-rules-engine treats an
//! undefined fact; so `not` over such a leaf is true. The columnar evaluator (risk scans) must
//! agree with this one on every row.

use puhui_domain::product::{EligibilityCondition, Operator};
use puhui_domain::rules::RuleCondition;
use serde_json::{Map, Value};

/// The outcome of one rule on one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowOutcome {
    /// True if the rule fires.
    pub hit: bool,
    /// How many of the rule's leaves met a missing value in this row (reported per rule).
    pub missing: u32,
}

/// Evaluates `c` on a row of indicator values.
pub fn evaluate(c: &RuleCondition, row: &Map<String, Value>) -> bool {
    match c {
        RuleCondition::All(items) => items.iter().all(|c| evaluate(c, row)),
        RuleCondition::Any(items) => items.iter().any(|c| evaluate(c, row)),
        RuleCondition::Not(inner) => !evaluate(inner, row),
        RuleCondition::Fact(leaf) => match row.get(&leaf.fact) {
            None | Some(Value::Null) => false,
            Some(v) => condition_holds(leaf, v),
        },
    }
}

/// Evaluates `c` and counts its leaves whose value is missing in the row (every leaf counts,
/// whether or not evaluation would have short-circuited past it, so the count does not depend
/// on evaluation order).
pub fn evaluate_row(c: &RuleCondition, row: &Map<String, Value>) -> RowOutcome {
    let missing = c
        .leaves()
        .iter()
        .filter(|l| row.get(&l.fact).is_none_or(Value::is_null))
        .count() as u32;
    RowOutcome {
        hit: evaluate(c, row),
        missing,
    }
}

/// True if the indicator value satisfies the condition. A value of the wrong type fails.
pub fn condition_holds(c: &EligibilityCondition, v: &Value) -> bool {
    use Operator::*;
    let num = |x: &Value| x.as_f64();
    match c.operator {
        Equal => values_equal(v, &c.value),
        NotEqual => !values_equal(v, &c.value),
        LessThan | LessThanInclusive | GreaterThan | GreaterThanInclusive => {
            let (Some(a), Some(b)) = (num(v), num(&c.value)) else {
                return false;
            };
            match c.operator {
                LessThan => a < b,
                LessThanInclusive => a <= b,
                GreaterThan => a > b,
                _ => a >= b,
            }
        }
        In | NotIn => {
            let listed = c
                .value
                .as_array()
                .is_some_and(|l| l.iter().any(|x| values_equal(v, x)));
            listed == (c.operator == In)
        }
    }
}

/// Equality that treats `2` and `2.0` alike (stored numbers may come back either way).
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn cond(v: Value) -> RuleCondition {
        RuleCondition::parse(&v, "c").unwrap()
    }

    fn row(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn trees_combine_leaves() {
        let c = cond(json!({"all": [
            {"fact": "tax_paid_yoy", "operator": "lessThan", "value": -0.3},
            {"any": [{"fact": "tax_arrears", "operator": "equal", "value": true},
                     {"not": {"fact": "tax_credit_grade", "operator": "in", "value": ["A", "B"]}}]}
        ]}));
        assert!(evaluate(
            &c,
            &row(json!({"tax_paid_yoy": -0.5, "tax_arrears": true, "tax_credit_grade": "A"}))
        ));
        assert!(evaluate(
            &c,
            &row(json!({"tax_paid_yoy": -0.5, "tax_arrears": false, "tax_credit_grade": "C"}))
        ));
        assert!(!evaluate(
            &c,
            &row(json!({"tax_paid_yoy": -0.5, "tax_arrears": false, "tax_credit_grade": "B"}))
        ));
        assert!(!evaluate(
            &c,
            &row(json!({"tax_paid_yoy": -0.1, "tax_arrears": true}))
        ));
    }

    #[test]
    fn missing_values_make_leaves_false_and_are_counted() {
        let c = cond(json!({"any": [
            {"fact": "tax_arrears", "operator": "equal", "value": true},
            {"not": {"fact": "utility_arrears", "operator": "equal", "value": true}}
        ]}));
        let r = evaluate_row(&c, &row(json!({"tax_arrears": null})));
        assert_eq!(
            r,
            RowOutcome {
                hit: true,
                missing: 2
            },
            "not(missing) is true"
        );
        let r = evaluate_row(
            &c,
            &row(json!({"tax_arrears": false, "utility_arrears": true})),
        );
        assert_eq!(
            r,
            RowOutcome {
                hit: false,
                missing: 0
            }
        );
        let leaf = cond(json!({"fact": "tax_paid_12m", "operator": "notEqual", "value": 0}));
        assert!(
            !evaluate(&leaf, &row(json!({}))),
            "notEqual on a missing value is still false"
        );
    }

    #[test]
    fn numbers_compare_across_integer_and_float() {
        let c = cond(
            json!({"fact": "social_insured_headcount", "operator": "lessThanInclusive", "value": 5}),
        );
        assert!(evaluate(&c, &row(json!({"social_insured_headcount": 5.0}))));
        assert!(!evaluate(&c, &row(json!({"social_insured_headcount": 6}))));
        assert!(
            !evaluate(&c, &row(json!({"social_insured_headcount": "5"}))),
            "wrong type is false"
        );
    }
}
