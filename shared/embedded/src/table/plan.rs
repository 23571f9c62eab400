//! The pure part of a write: validating an operation, evaluating its condition against the
//! stored item, and computing what to write. No SQL here, so it is easy to test and reason about.

use puhui_ports::{Condition, Item, Key, PortError, PortResult, TxOp, Update};
use serde_json::{Map, Number, Value};

/// What an operation writes once its condition holds.
#[derive(Debug)]
pub(crate) enum Write {
    /// Store this item whole.
    Put(Item),
    /// Remove the item with this key.
    Delete(Key),
    /// Write nothing (a check).
    Nothing,
}

/// Evaluates `op` against the stored item. The outer error is an invalid request; the inner
/// `Err` is a failed condition with the reason to report.
pub(crate) fn plan(op: TxOp, current: Option<Item>) -> PortResult<Result<Write, String>> {
    let condition = match &op {
        TxOp::Put { condition, .. }
        | TxOp::Update { condition, .. }
        | TxOp::Delete { condition, .. } => condition.as_ref(),
        TxOp::Check { condition, .. } => Some(condition),
    };
    if let Some(c) = condition
        && let Err(reason) = check(c, current.as_ref())
    {
        return Ok(Err(reason));
    }
    let write = match op {
        TxOp::Put { item, .. } => Write::Put(item),
        TxOp::Update { key, update, .. } => {
            Write::Put(apply_update(current.unwrap_or_else(|| empty(key)), update)?)
        }
        TxOp::Delete { key, .. } => Write::Delete(key),
        TxOp::Check { .. } => Write::Nothing,
    };
    Ok(Ok(write))
}

/// Whether `condition` holds for the stored item; `Err` says why not.
pub(crate) fn check(condition: &Condition, current: Option<&Item>) -> Result<(), String> {
    let holds = match (condition, current) {
        (Condition::NotExists, current) => current.is_none(),
        (Condition::Exists, current) => current.is_some(),
        (Condition::VersionEquals(v), Some(item)) => item.version == *v,
        (Condition::Below { attr, bound }, Some(item)) => {
            item.attrs.get(attr).is_none_or(|v| number_below(v, *bound))
        }
        (Condition::NotExistsOrExpired { now }, Some(item)) => {
            item.expires_at.is_some_and(|at| at <= *now)
        }
        (Condition::NotExistsOrExpired { .. }, None) => true,
        (Condition::VersionEquals(_) | Condition::Below { .. }, None) => false,
    };
    if holds {
        Ok(())
    } else {
        Err(format!(
            "ConditionalCheckFailed: {condition:?} does not hold"
        ))
    }
}

/// `value < bound` for a JSON number; a non-number never compares (like DynamoDB's type mismatch).
/// An absent attribute counts as 0 and is handled by the caller.
fn number_below(value: &Value, bound: i64) -> bool {
    let Value::Number(n) = value else {
        return false;
    };
    if let Some(i) = n.as_i64() {
        i < bound
    } else if n.is_u64() {
        false // above i64::MAX, so above any bound
    } else {
        n.as_f64().is_some_and(|f| f < bound as f64)
    }
}

/// The item an update creates when none is stored: version 0, so the update makes it 1.
fn empty(key: Key) -> Item {
    Item {
        key,
        gsi1: None,
        version: 0,
        expires_at: None,
        attrs: Map::new(),
    }
}

/// Applies an update to a stored (or empty) item and bumps its version.
fn apply_update(mut item: Item, update: Update) -> PortResult<Item> {
    item.attrs.extend(update.set);
    for name in &update.remove {
        item.attrs.remove(name);
    }
    for (name, delta) in update.add {
        let sum = add_number(item.attrs.get(&name), delta).ok_or_else(|| {
            PortError::Invalid(format!(
                "cannot add {delta} to attribute '{name}': not a number or out of range"
            ))
        })?;
        item.attrs.insert(name, Value::Number(sum));
    }
    if let Some(gsi1) = update.gsi1 {
        item.gsi1 = gsi1;
    }
    if let Some(expires_at) = update.expires_at {
        item.expires_at = expires_at;
    }
    item.version = item
        .version
        .checked_add(1)
        .filter(|v| i64::try_from(*v).is_ok())
        .ok_or_else(|| PortError::Invalid("version overflow".into()))?;
    Ok(item)
}

/// `current + delta` (absent counts as 0); `None` for a non-number or an overflow.
fn add_number(current: Option<&Value>, delta: i64) -> Option<Number> {
    let n = match current {
        None => return Some(Number::from(delta)),
        Some(Value::Number(n)) => n,
        Some(_) => return None,
    };
    // Whole numbers add exactly over the union of i64 and u64, as DynamoDB's decimals would.
    if let Some(whole) = n
        .as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
    {
        let sum = whole + i128::from(delta);
        return i64::try_from(sum)
            .ok()
            .map(Number::from)
            .or_else(|| u64::try_from(sum).ok().map(Number::from));
    }
    n.as_f64().and_then(|f| Number::from_f64(f + delta as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn add_handles_every_number_kind() {
        assert_eq!(add_number(None, 3), Some(Number::from(3)));
        assert_eq!(add_number(Some(&json!(-5)), 3), Some(Number::from(-2)));
        assert_eq!(
            add_number(Some(&json!(u64::MAX)), -1),
            Some(Number::from(u64::MAX - 1))
        );
        assert_eq!(
            add_number(Some(&json!(i64::MAX)), 1),
            Some(Number::from(i64::MAX as u64 + 1))
        );
        assert_eq!(add_number(Some(&json!(0.5)), 1), Number::from_f64(1.5));
        assert_eq!(add_number(Some(&json!("7")), 1), None);
        assert_eq!(add_number(Some(&json!(u64::MAX)), 1), None);
    }

    #[test]
    fn below_compares_numbers_only() {
        assert!(number_below(&json!(2), 3));
        assert!(!number_below(&json!(3), 3));
        assert!(number_below(&json!(2.5), 3));
        assert!(!number_below(&json!(u64::MAX), 3));
        assert!(!number_below(&json!("1"), 3));
    }

    #[test]
    fn overlapping_update_paths_are_refused() {
        let update = Update {
            remove: vec!["a".into()],
            add: vec![("a".into(), 1)],
            ..Update::default()
        };
        assert!(matches!(
            puhui_ports::table::check_update(&update),
            Err(PortError::Invalid(_))
        ));
        let update = Update {
            remove: vec!["version".into()],
            ..Update::default()
        };
        assert!(matches!(
            puhui_ports::table::check_update(&update),
            Err(PortError::Invalid(_))
        ));
    }
}
