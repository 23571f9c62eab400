//! Banks' risk rules: conditions in the shape of the json-rules-engine library (`all` / `any` /
//! `not` over leaves `{fact, operator, value}`), where facts are catalogue indicators.
//!
//! Conditions arrive as JSON and are parsed by hand rather than by serde's untagged enums, so
//! every problem — unknown key, empty `all`, unknown fact, operator not valid for the fact's type,
//! value of the wrong type, nesting too deep — is reported with its exact path
//! (`rules[2].conditions.all[0].any[1].operator`), all at once.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use validator::Validate;

use crate::error::{Error, FieldError, Findings};
use crate::product::{EligibilityCondition, Operator};

/// Deepest nesting of `all` / `any` / `not` accepted (a leaf at depth 8 is refused).
pub const MAX_DEPTH: usize = 8;
/// Most leaves in one rule.
pub const MAX_LEAVES: usize = 64;
/// Most rules in one rule set.
pub const MAX_RULES: usize = 200;

/// A condition tree over indicators.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleCondition {
    /// Every sub-condition holds.
    All(Vec<RuleCondition>),
    /// At least one sub-condition holds.
    Any(Vec<RuleCondition>),
    /// The sub-condition does not hold.
    Not(Box<RuleCondition>),
    /// One indicator compared with a value.
    Fact(EligibilityCondition),
}

impl RuleCondition {
    /// Parses and checks a condition; `path` prefixes every error's field.
    pub fn parse(v: &Value, path: &str) -> Result<RuleCondition, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut leaves = 0;
        let parsed = parse_node(v, path, 0, &mut leaves, &mut errors);
        if leaves > MAX_LEAVES {
            errors.push(FieldError::new(
                path,
                "too_many_conditions",
                format!("at most {MAX_LEAVES} leaf conditions per rule, got {leaves}"),
            ));
        }
        match parsed {
            Some(c) if errors.is_empty() => Ok(c),
            _ => Err(errors),
        }
    }

    /// The condition as json-rules-engine writes it.
    pub fn to_value(&self) -> Value {
        match self {
            RuleCondition::All(v) => {
                serde_json::json!({"all": v.iter().map(Self::to_value).collect::<Vec<_>>()})
            }
            RuleCondition::Any(v) => {
                serde_json::json!({"any": v.iter().map(Self::to_value).collect::<Vec<_>>()})
            }
            RuleCondition::Not(c) => serde_json::json!({"not": c.to_value()}),
            RuleCondition::Fact(leaf) => serde_json::to_value(leaf).unwrap_or(Value::Null),
        }
    }

    /// Every leaf, in document order.
    pub fn leaves(&self) -> Vec<&EligibilityCondition> {
        let mut out = Vec::new();
        self.collect_leaves(&mut out);
        out
    }

    fn collect_leaves<'a>(&'a self, out: &mut Vec<&'a EligibilityCondition>) {
        match self {
            RuleCondition::All(v) | RuleCondition::Any(v) => {
                v.iter().for_each(|c| c.collect_leaves(out))
            }
            RuleCondition::Not(c) => c.collect_leaves(out),
            RuleCondition::Fact(leaf) => out.push(leaf),
        }
    }
}

fn parse_node(
    v: &Value,
    path: &str,
    depth: usize,
    leaves: &mut usize,
    errors: &mut Vec<FieldError>,
) -> Option<RuleCondition> {
    if depth >= MAX_DEPTH {
        errors.push(FieldError::new(
            path,
            "too_deep",
            format!("conditions may nest at most {MAX_DEPTH} levels"),
        ));
        return None;
    }
    let Some(obj) = v.as_object() else {
        errors.push(FieldError::new(
            path,
            "wrong_type",
            "a condition is an object: {all}, {any}, {not} or {fact, operator, value}",
        ));
        return None;
    };
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    match keys.as_slice() {
        ["all"] | ["any"] => {
            let key = keys[0];
            let here = format!("{path}.{key}");
            let Some(items) = obj[key].as_array() else {
                errors.push(FieldError::new(&here, "wrong_type", "must be an array"));
                return None;
            };
            if items.is_empty() {
                errors.push(FieldError::new(
                    &here,
                    "empty",
                    format!("`{key}` needs at least one condition"),
                ));
                return None;
            }
            let parsed: Vec<Option<RuleCondition>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    parse_node(item, &format!("{here}[{i}]"), depth + 1, leaves, errors)
                })
                .collect();
            let all: Option<Vec<RuleCondition>> = parsed.into_iter().collect();
            all.map(|v| {
                if key == "all" {
                    RuleCondition::All(v)
                } else {
                    RuleCondition::Any(v)
                }
            })
        }
        ["not"] => parse_node(
            &obj["not"],
            &format!("{path}.not"),
            depth + 1,
            leaves,
            errors,
        )
        .map(|c| RuleCondition::Not(Box::new(c))),
        _ if obj.contains_key("fact") => {
            *leaves += 1;
            parse_leaf(obj, path, errors).map(RuleCondition::Fact)
        }
        _ => {
            errors.push(FieldError::new(
                path,
                "unknown_condition",
                format!(
                    "expected exactly one of all, any, not, or a leaf with fact, operator and value; got keys [{}]",
                    keys.join(", ")
                ),
            ));
            None
        }
    }
}

fn parse_leaf(
    obj: &Map<String, Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<EligibilityCondition> {
    for key in obj.keys() {
        if !["fact", "operator", "value"].contains(&key.as_str()) {
            errors.push(FieldError::new(
                format!("{path}.{key}"),
                "unknown_field",
                "a leaf has only fact, operator and value",
            ));
        }
    }
    let fact = match obj.get("fact").and_then(Value::as_str) {
        Some(f) => f.to_owned(),
        None => {
            errors.push(FieldError::new(
                format!("{path}.fact"),
                "wrong_type",
                "must be an indicator id (a string)",
            ));
            return None;
        }
    };
    let operator = match obj.get("operator") {
        None => {
            errors.push(FieldError::new(
                format!("{path}.operator"),
                "required",
                "is required",
            ));
            return None;
        }
        Some(op) => match serde_json::from_value::<Operator>(op.clone()) {
            Ok(op) => op,
            Err(_) => {
                errors.push(FieldError::new(
                    format!("{path}.operator"),
                    "unknown_operator",
                    "one of equal, notEqual, lessThan, lessThanInclusive, greaterThan, greaterThanInclusive, in, notIn",
                ));
                return None;
            }
        },
    };
    let Some(value) = obj.get("value").cloned() else {
        errors.push(FieldError::new(
            format!("{path}.value"),
            "required",
            "is required",
        ));
        return None;
    };
    let leaf = EligibilityCondition {
        fact,
        operator,
        value,
    };
    match leaf.validate() {
        Ok(()) => Some(leaf),
        Err(e) => {
            errors.push(e.under(path));
            None
        }
    }
}

/// How bad a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look.
    Info,
    /// Act soon.
    Warning,
    /// Act now.
    Critical,
}

/// A rule as a bank writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchRuleDraft {
    /// Stable id within the bank's rule set (1–64 of letters, digits, `-`, `_`).
    #[validate(length(min = 1, max = 64, message = "must be 1–64 characters"))]
    pub id: String,
    /// What it watches for.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    pub name: String,
    /// How bad a hit is.
    pub severity: Severity,
    /// The condition (json-rules-engine shape).
    #[schema(value_type = Object)]
    pub conditions: Value,
    /// Do not alert the same firm again within this many periods.
    #[serde(default)]
    #[validate(range(max = 24, message = "at most 24 periods"))]
    pub cooldown_periods: Option<u16>,
}

/// A checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchRule {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Severity.
    pub severity: Severity,
    /// The parsed condition.
    pub conditions: RuleCondition,
    /// Cool-down in periods (0: none).
    pub cooldown_periods: u16,
}

/// Checks a whole rule set, reporting every problem with its path; returns the parsed rules.
pub fn check_rule_set(drafts: &[WatchRuleDraft]) -> Result<Vec<WatchRule>, Error> {
    let mut f = Findings::default();
    if drafts.is_empty() || drafts.len() > MAX_RULES {
        f.push(FieldError::new(
            "rules",
            "out_of_range",
            format!("a rule set has 1–{MAX_RULES} rules"),
        ));
    }
    let mut rules = Vec::with_capacity(drafts.len());
    for (i, d) in drafts.iter().enumerate() {
        let here = format!("rules[{i}]");
        if let Err(errors) = d.validate() {
            crate::error::from_validator(&errors)
                .into_iter()
                .for_each(|e| f.push(e.under(&here)));
        }
        if !d
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            f.push(FieldError::new(
                format!("{here}.id"),
                "invalid_character",
                "letters, digits, '-' and '_' only",
            ));
        }
        if drafts[..i].iter().any(|o| o.id == d.id) {
            f.push(FieldError::new(
                format!("{here}.id"),
                "duplicate",
                format!("rule id {} is used twice", d.id),
            ));
        }
        match RuleCondition::parse(&d.conditions, &format!("{here}.conditions")) {
            Ok(conditions) => rules.push(WatchRule {
                id: d.id.clone(),
                name: d.name.clone(),
                severity: d.severity,
                conditions,
                cooldown_periods: d.cooldown_periods.unwrap_or(0),
            }),
            Err(errors) => errors.into_iter().for_each(|e| f.push(e)),
        }
    }
    f.finish().map(|()| rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Vec<(String, String)> {
        match RuleCondition::parse(&v, "c") {
            Ok(_) => vec![],
            Err(e) => e.into_iter().map(|e| (e.field, e.code)).collect(),
        }
    }

    #[test]
    fn a_good_condition_parses_and_round_trips() {
        let v = json!({"all": [
            {"fact": "tax_paid_yoy", "operator": "lessThan", "value": -0.3},
            {"any": [{"fact": "tax_arrears", "operator": "equal", "value": true},
                     {"not": {"fact": "tax_credit_grade", "operator": "in", "value": ["A", "B"]}}]}
        ]});
        let c = RuleCondition::parse(&v, "c").unwrap();
        assert_eq!(c.leaves().len(), 3);
        assert_eq!(c.to_value(), v);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let got = fields(json!({"all": [
            {"fact": "nope", "operator": "equal", "value": 1},
            {"any": []},
            {"fact": "tax_arrears", "operator": "greaterThan", "value": 1},
            {"fact": "tax_paid_12m", "operator": "lessThan", "value": "x"},
            {"fact": "tax_paid_12m", "operator": "between", "value": 1},
            {"all": [{"fact": "tax_arrears", "operator": "equal", "value": true}], "any": []},
            {"fact": "tax_arrears", "operator": "equal", "value": true, "path": "$.x"}
        ]}));
        for want in [
            ("c.all[0].fact", "unknown_indicator"),
            ("c.all[1].any", "empty"),
            ("c.all[2].operator", "operator_not_allowed"),
            ("c.all[3].value", "wrong_type"),
            ("c.all[4].operator", "unknown_operator"),
            ("c.all[5]", "unknown_condition"),
            ("c.all[6].path", "unknown_field"),
        ] {
            assert!(
                got.contains(&(want.0.to_owned(), want.1.to_owned())),
                "{want:?} missing from {got:?}"
            );
        }
    }

    #[test]
    fn nesting_is_limited() {
        let mut v = json!({"fact": "tax_arrears", "operator": "equal", "value": true});
        for _ in 0..MAX_DEPTH - 1 {
            v = json!({"not": v});
        }
        assert!(
            RuleCondition::parse(&v, "c").is_ok(),
            "depth {MAX_DEPTH} is fine"
        );
        let deeper = json!({"not": v});
        assert!(fields(deeper).iter().any(|(_, code)| code == "too_deep"));
    }

    #[test]
    fn rule_sets_check_ids_and_report_paths() {
        let rule = |id: &str, cond: Value| WatchRuleDraft {
            id: id.into(),
            name: "r".into(),
            severity: Severity::Warning,
            conditions: cond,
            cooldown_periods: None,
        };
        let leaf = json!({"fact": "tax_arrears", "operator": "equal", "value": true});
        assert_eq!(
            check_rule_set(&[rule("r1", leaf.clone())]).unwrap().len(),
            1
        );
        let Err(Error::Validation(errors)) = check_rule_set(&[
            rule("r1", leaf.clone()),
            rule(
                "r1",
                json!({"any": [{"fact": "x", "operator": "equal", "value": 1}]}),
            ),
            rule("bad id", leaf),
        ]) else {
            panic!("expected validation errors")
        };
        let got: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        assert!(got.contains(&("rules[1].id", "duplicate")), "{got:?}");
        assert!(
            got.contains(&("rules[1].conditions.any[0].fact", "unknown_indicator")),
            "{got:?}"
        );
        assert!(
            got.contains(&("rules[2].id", "invalid_character")),
            "{got:?}"
        );
        assert!(check_rule_set(&[]).is_err());
    }
}
