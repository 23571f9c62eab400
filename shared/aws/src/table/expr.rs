//! Condition and update expressions with placeholders for every name and value, so attribute
//! names never clash with DynamoDB's reserved words or contain unsafe characters.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use puhui_ports::{Condition, PortResult, Update};

use super::codec::{number, to_attribute_value};

/// Names and values of one request's expressions, with their placeholders.
#[derive(Debug, Default)]
pub(crate) struct Expr {
    /// Attribute name -> placeholder (`#n0`).
    names: HashMap<String, String>,
    /// Placeholder (`:v0`) -> value.
    values: HashMap<String, AttributeValue>,
}

/// The placeholder maps a request takes; `None` when empty (DynamoDB refuses empty maps).
pub(crate) type Parts = (
    Option<HashMap<String, String>>,
    Option<HashMap<String, AttributeValue>>,
);

impl Expr {
    /// The placeholder of an attribute name (one per name).
    pub(crate) fn name(&mut self, name: &str) -> String {
        let next = format!("#n{}", self.names.len());
        self.names.entry(name.to_owned()).or_insert(next).clone()
    }

    /// A new placeholder for a value.
    pub(crate) fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// `ExpressionAttributeNames` and `ExpressionAttributeValues`.
    pub(crate) fn into_parts(self) -> Parts {
        let names: HashMap<String, String> =
            self.names.into_iter().map(|(name, p)| (p, name)).collect();
        (
            (!names.is_empty()).then_some(names),
            (!self.values.is_empty()).then_some(self.values),
        )
    }
}

/// The ConditionExpression of a port condition.
pub(crate) fn condition_expression(e: &mut Expr, condition: &Condition) -> String {
    match condition {
        Condition::NotExists => format!("attribute_not_exists({})", e.name("pk")),
        Condition::Exists => format!("attribute_exists({})", e.name("pk")),
        Condition::VersionEquals(v) => {
            format!("{} = {}", e.name("version"), e.value(number(*v)))
        }
        Condition::Below { attr, bound } => {
            let (pk, a, b) = (e.name("pk"), e.name(attr), e.value(number(*bound)));
            format!("attribute_exists({pk}) AND (attribute_not_exists({a}) OR {a} < {b})")
        }
        Condition::NotExistsOrExpired { now } => {
            let (pk, ttl, now) = (e.name("pk"), e.name("ttl"), e.value(number(*now)));
            format!("attribute_not_exists({pk}) OR (attribute_exists({ttl}) AND {ttl} <= {now})")
        }
    }
}

/// The UpdateExpression of a port update (validated by the caller): SET, REMOVE, and ADD for the
/// counters and the version (ADD treats an absent attribute as 0, so a created item gets 1).
pub(crate) fn update_expression(e: &mut Expr, update: &Update) -> PortResult<String> {
    let mut set = Vec::new();
    let mut remove = Vec::new();
    let mut add = Vec::new();
    for (name, value) in &update.set {
        let v = to_attribute_value(name, value)?;
        set.push(format!("{} = {}", e.name(name), e.value(v)));
    }
    for name in &update.remove {
        remove.push(e.name(name));
    }
    match &update.gsi1 {
        Some(Some(k)) => {
            set.push(format!(
                "{} = {}",
                e.name("gsi1pk"),
                e.value(AttributeValue::S(k.pk.clone()))
            ));
            set.push(format!(
                "{} = {}",
                e.name("gsi1sk"),
                e.value(AttributeValue::S(k.sk.clone()))
            ));
        }
        Some(None) => {
            remove.push(e.name("gsi1pk"));
            remove.push(e.name("gsi1sk"));
        }
        None => {}
    }
    match update.expires_at {
        Some(Some(at)) => set.push(format!("{} = {}", e.name("ttl"), e.value(number(at)))),
        Some(None) => remove.push(e.name("ttl")),
        None => {}
    }
    add.push(format!("{} {}", e.name("version"), e.value(number(1))));
    for (name, delta) in &update.add {
        add.push(format!("{} {}", e.name(name), e.value(number(*delta))));
    }
    let mut clauses = Vec::new();
    if !set.is_empty() {
        clauses.push(format!("SET {}", set.join(", ")));
    }
    if !remove.is_empty() {
        clauses.push(format!("REMOVE {}", remove.join(", ")));
    }
    clauses.push(format!("ADD {}", add.join(", ")));
    Ok(clauses.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_name_and_value_is_a_placeholder() {
        let mut e = Expr::default();
        let update = Update {
            set: json!({"name": "x"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            remove: vec!["old".into()],
            add: vec![("count".into(), 2)],
            gsi1: Some(None),
            expires_at: Some(Some(10)),
        };
        let u = update_expression(&mut e, &update).unwrap_or_default();
        let c = condition_expression(
            &mut e,
            &Condition::Below {
                attr: "count".into(),
                bound: 3,
            },
        );
        assert_eq!(
            u,
            "SET #n0 = :v0, #n4 = :v1 REMOVE #n1, #n2, #n3 ADD #n5 :v2, #n6 :v3"
        );
        assert_eq!(
            c,
            "attribute_exists(#n7) AND (attribute_not_exists(#n6) OR #n6 < :v4)"
        );
        let (names, values) = e.into_parts();
        let names = names.unwrap_or_default();
        assert_eq!(names.len(), 8);
        assert_eq!(names["#n6"], "count");
        assert_eq!(values.unwrap_or_default().len(), 5);
    }

    #[test]
    fn no_condition_means_no_maps() {
        assert_eq!(Expr::default().into_parts(), (None, None));
    }
}
