//! The feature catalogue: what a model may read from a firm's profile, and how a profile value
//! becomes a model input (pure: the caller reads the profile).

use std::collections::BTreeMap;

use crate::scorecard::{Row, Value};
use puhui_domain::indicators;
use serde_json::{Map, Value as Json};

/// Profile fields besides the indicators that models may read.
pub const FEATURES: &[&str] = &["industry"];

/// Whether `id` names a catalogue feature (an indicator id, or one of [`FEATURES`]).
pub fn feature_exists(id: &str) -> bool {
    indicators::find(id).is_some() || FEATURES.contains(&id)
}

/// A model's input row from the firm's profile: each variable reads its mapped feature (by
/// default the variable's own name). Absent and null values are missing, and the model's own
/// missing semantics apply; booleans are 0/1 integers; money stays in fen, as stored.
pub fn row_from_profile(
    variables: &[String],
    map: &BTreeMap<String, String>,
    industry: Option<&str>,
    values: &Map<String, Json>,
) -> Row {
    let mut row = Row::new();
    for variable in variables {
        let feature = map.get(variable).unwrap_or(variable);
        let value = if feature == "industry" {
            industry.map_or(Value::Missing, Value::from)
        } else {
            match values.get(feature) {
                None | Some(Json::Null) => Value::Missing,
                Some(Json::Bool(b)) => Value::Integer(i64::from(*b)),
                Some(Json::Number(n)) => match n.as_i64() {
                    Some(i) => Value::Integer(i),
                    None => n.as_f64().map_or(Value::Missing, Value::Number),
                },
                Some(Json::String(s)) => Value::Text(s.clone()),
                Some(_) => Value::Missing,
            }
        };
        row.set(variable.clone(), value);
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn profile_values_become_typed_inputs_through_the_map() {
        let values = json!({"tax_paid_12m": 1_200_000, "tax_paid_yoy": -0.25,
            "dishonest_debtor": true, "tax_credit_grade": "B", "water_yoy": null});
        let values = values.as_object().expect("object");
        let map = BTreeMap::from([("tax".to_string(), "tax_paid_12m".to_string())]);
        let vars: Vec<String> = [
            "tax",
            "tax_paid_yoy",
            "dishonest_debtor",
            "tax_credit_grade",
            "water_yoy",
            "gas_yoy",
            "industry",
        ]
        .map(String::from)
        .to_vec();
        let row = row_from_profile(&vars, &map, Some("C13"), values);
        assert_eq!(row.get("tax"), Some(&Value::Integer(1_200_000)));
        assert_eq!(row.get("tax_paid_yoy"), Some(&Value::Number(-0.25)));
        assert_eq!(row.get("dishonest_debtor"), Some(&Value::Integer(1)));
        assert_eq!(row.get("tax_credit_grade"), Some(&Value::Text("B".into())));
        assert_eq!(row.get("water_yoy"), Some(&Value::Missing));
        assert_eq!(row.get("gas_yoy"), Some(&Value::Missing));
        assert_eq!(row.get("industry"), Some(&Value::Text("C13".into())));
        assert!(feature_exists("industry") && feature_exists("gas_yoy") && !feature_exists("gas"));
    }
}
