//! Risk rules, evaluated column-wise over Arrow arrays: a rule set is compiled once into a DAG
//! in which identical sub-conditions (leaves and whole subtrees) appear once, each node is
//! evaluated once per batch into one bitmap, and rules combine bitmaps with word-wide AND / OR /
//! NOT. It agrees with the row-wise evaluator ([`crate::rules`]) on every row: a null (or an
//! absent column) makes a leaf false, and every leaf's missing values are counted.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::{BooleanBuffer, Buffer};
use arrow_schema::DataType;
use puhui_domain::product::{EligibilityCondition, Operator};
use puhui_domain::rules::{RuleCondition, WatchRule};
use serde_json::Value;

type NodeId = usize;

#[derive(Debug, Clone)]
enum Node {
    Leaf(EligibilityCondition),
    All(Vec<NodeId>),
    Any(Vec<NodeId>),
    Not(NodeId),
}

/// A rule set compiled for column-wise evaluation.
#[derive(Debug, Clone)]
pub struct CompiledRules {
    nodes: Vec<Node>,
    /// Each rule's id, root node and leaves (with repetition, for missing-value counts).
    rules: Vec<(String, NodeId, Vec<NodeId>)>,
}

/// One rule's result over a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleHits {
    /// The rule.
    pub rule_id: String,
    /// Bit `i` set: the rule fires on row `i`.
    pub hits: BooleanBuffer,
    /// Missing values its leaves met, summed over rows (as [`crate::rules::RowOutcome::missing`]).
    pub missing: u64,
}

impl CompiledRules {
    /// Compiles `rules`, sharing identical sub-conditions.
    pub fn compile(rules: &[WatchRule]) -> Self {
        let mut b = Builder::default();
        let rules = rules
            .iter()
            .map(|r| {
                let root = b.add(&r.conditions);
                let leaves = r
                    .conditions
                    .leaves()
                    .into_iter()
                    .map(|l| b.add(&RuleCondition::Fact(l.clone())))
                    .collect();
                (r.id.clone(), root, leaves)
            })
            .collect();
        CompiledRules {
            nodes: b.nodes,
            rules,
        }
    }

    /// Distinct nodes after sharing (for tests and diagnostics).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Evaluates every rule on a batch whose columns are named by indicator id. Columns not
    /// named by any rule are ignored; a missing column is all-null.
    pub fn evaluate(&self, batch: &RecordBatch) -> Vec<RuleHits> {
        let rows = batch.num_rows();
        let mut bits: Vec<Option<BooleanBuffer>> = vec![None; self.nodes.len()];
        let mut nulls: HashMap<NodeId, u64> = HashMap::new();
        // Nodes are added children first, so one pass in order evaluates each exactly once.
        for (id, node) in self.nodes.iter().enumerate() {
            let get = |bits: &[Option<BooleanBuffer>], n: NodeId| {
                bits[n]
                    .clone()
                    .unwrap_or_else(|| BooleanBuffer::new_unset(rows))
            };
            let value = match node {
                Node::Leaf(leaf) => {
                    let column = batch.column_by_name(&leaf.fact);
                    nulls.insert(
                        id,
                        column.map_or(rows as u64, |c| c.logical_null_count() as u64),
                    );
                    match column {
                        Some(c) => leaf_bits(leaf, c),
                        None => BooleanBuffer::new_unset(rows),
                    }
                }
                Node::All(children) => children
                    .iter()
                    .map(|c| get(&bits, *c))
                    .reduce(|a, b| &a & &b)
                    .unwrap_or_else(|| BooleanBuffer::new_set(rows)),
                Node::Any(children) => children
                    .iter()
                    .map(|c| get(&bits, *c))
                    .reduce(|a, b| &a | &b)
                    .unwrap_or_else(|| BooleanBuffer::new_unset(rows)),
                Node::Not(child) => !&get(&bits, *child),
            };
            bits[id] = Some(value);
        }
        self.rules
            .iter()
            .map(|(rule_id, root, leaves)| RuleHits {
                rule_id: rule_id.clone(),
                hits: bits[*root]
                    .clone()
                    .unwrap_or_else(|| BooleanBuffer::new_unset(rows)),
                missing: leaves
                    .iter()
                    .map(|l| nulls.get(l).copied().unwrap_or(0))
                    .sum(),
            })
            .collect()
    }
}

/// Builds the DAG, giving identical subtrees one node (keyed by their canonical JSON).
#[derive(Default)]
struct Builder {
    nodes: Vec<Node>,
    index: HashMap<String, NodeId>,
}

impl Builder {
    fn add(&mut self, c: &RuleCondition) -> NodeId {
        let key = c.to_value().to_string();
        if let Some(id) = self.index.get(&key) {
            return *id;
        }
        let node = match c {
            RuleCondition::Fact(leaf) => Node::Leaf(leaf.clone()),
            RuleCondition::All(items) => Node::All(items.iter().map(|i| self.add(i)).collect()),
            RuleCondition::Any(items) => Node::Any(items.iter().map(|i| self.add(i)).collect()),
            RuleCondition::Not(inner) => Node::Not(self.add(inner)),
        };
        self.nodes.push(node);
        let id = self.nodes.len() - 1;
        self.index.insert(key, id);
        id
    }
}

/// The leaf's bitmap over a column: the comparison where the value is present, false where null.
/// Each column is downcast once and compared on its raw buffer (no per-row allocation).
fn leaf_bits(leaf: &EligibilityCondition, column: &ArrayRef) -> BooleanBuffer {
    let len = column.len();
    let raw = match column.data_type() {
        DataType::Int64 => integer(leaf, column.as_primitive::<Int64Type>().values(), |x| x),
        DataType::Int32 => integer(leaf, column.as_primitive::<Int32Type>().values(), i64::from),
        DataType::Float64 => float(leaf, column.as_primitive::<Float64Type>().values(), |x| x),
        DataType::Float32 => float(
            leaf,
            column.as_primitive::<Float32Type>().values(),
            f64::from,
        ),
        DataType::Boolean => boolean(leaf, column.as_boolean().values()),
        DataType::Utf8 => {
            let v = column.as_string::<i32>();
            text(leaf, len, |i| v.value(i))
        }
        DataType::LargeUtf8 => {
            let v = column.as_string::<i64>();
            text(leaf, len, |i| v.value(i))
        }
        // Other column types cannot hold catalogue values: no row matches.
        _ => BooleanBuffer::new_unset(len),
    };
    // One word-wide AND with the validity bitmap, only when the column has nulls.
    match column.logical_nulls() {
        Some(valid) if valid.null_count() > 0 => &raw & valid.inner(),
        _ => raw,
    }
}

/// Bit `i` set where `hit(values[i])`, packed 64 values to a word straight from the slice: no
/// bounds checks and no per-bit stores, so the loop stays tight (float comparisons vectorise).
fn bits_where<T: Copy>(values: &[T], hit: impl Fn(T) -> bool) -> BooleanBuffer {
    let pack = |chunk: &[T]| {
        chunk
            .iter()
            .enumerate()
            .fold(0u64, |word, (j, &x)| word | (u64::from(hit(x)) << j))
    };
    let (chunks, rest) = values.as_chunks::<64>();
    let mut words: Vec<u64> = Vec::with_capacity(values.len().div_ceil(64));
    words.extend(chunks.iter().map(|c| pack(c)));
    if !rest.is_empty() {
        words.push(pack(rest));
    }
    BooleanBuffer::new(Buffer::from_vec(words), 0, values.len())
}

/// The values of a numeric leaf as numbers: the scalar, or the numbers of an `in` list.
fn numbers(leaf: &EligibilityCondition) -> (Option<f64>, Vec<f64>) {
    let set = leaf
        .value
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    (leaf.value.as_f64(), set)
}

/// A float column: comparisons on f64, the same arithmetic as the row-wise evaluator.
fn float<T: Copy>(leaf: &EligibilityCondition, v: &[T], f: impl Fn(T) -> f64) -> BooleanBuffer {
    use Operator::*;
    let (target, set) = numbers(leaf);
    match (leaf.operator, target) {
        (LessThan, Some(t)) => bits_where(v, |x| f(x) < t),
        (LessThanInclusive, Some(t)) => bits_where(v, |x| f(x) <= t),
        (GreaterThan, Some(t)) => bits_where(v, |x| f(x) > t),
        (GreaterThanInclusive, Some(t)) => bits_where(v, |x| f(x) >= t),
        (Equal, Some(t)) => bits_where(v, |x| f(x) == t),
        (NotEqual, Some(t)) => bits_where(v, |x| f(x) != t),
        (In, _) => bits_where(v, |x| set.contains(&f(x))),
        (NotIn, _) => bits_where(v, |x| !set.contains(&f(x))),
        (NotEqual, None) => BooleanBuffer::new_set(v.len()),
        // A non-numeric value never equals or orders against a number (row-wise: `2 == "2"`
        // is false).
        (Equal | LessThan | LessThanInclusive | GreaterThan | GreaterThanInclusive, None) => {
            BooleanBuffer::new_unset(v.len())
        }
    }
}

/// An integer column. The row-wise evaluator compares `x as f64` with the target; that
/// conversion is monotone, so each comparison holds on one interval of integers, found once
/// here, and the rows are then compared as integers (no conversion per row).
fn integer<T: Copy>(leaf: &EligibilityCondition, v: &[T], f: impl Fn(T) -> i64) -> BooleanBuffer {
    use Operator::*;
    let (target, set) = numbers(leaf);
    let inside = |lo: Option<i64>, hi: Option<i64>| -> BooleanBuffer {
        match (lo, hi) {
            // One unsigned comparison: below `lo` wraps round to above `hi - lo`.
            (Some(lo), Some(hi)) if lo <= hi => {
                let width = hi.wrapping_sub(lo) as u64;
                bits_where(v, |x| f(x).wrapping_sub(lo) as u64 <= width)
            }
            _ => BooleanBuffer::new_unset(v.len()),
        }
    };
    match (leaf.operator, target) {
        (LessThan, Some(t)) => inside(Some(i64::MIN), last_where(|x| (x as f64) < t)),
        (LessThanInclusive, Some(t)) => inside(Some(i64::MIN), last_where(|x| (x as f64) <= t)),
        (GreaterThan, Some(t)) => inside(first_where(|x| (x as f64) > t), Some(i64::MAX)),
        (GreaterThanInclusive, Some(t)) => inside(first_where(|x| (x as f64) >= t), Some(i64::MAX)),
        (Equal, Some(t)) => inside(
            first_where(|x| (x as f64) >= t),
            last_where(|x| (x as f64) <= t),
        ),
        (NotEqual, Some(t)) => !&inside(
            first_where(|x| (x as f64) >= t),
            last_where(|x| (x as f64) <= t),
        ),
        (In, _) => bits_where(v, |x| set.contains(&(f(x) as f64))),
        (NotIn, _) => bits_where(v, |x| !set.contains(&(f(x) as f64))),
        (NotEqual, None) => BooleanBuffer::new_set(v.len()),
        (Equal | LessThan | LessThanInclusive | GreaterThan | GreaterThanInclusive, None) => {
            BooleanBuffer::new_unset(v.len())
        }
    }
}

/// The least `x` with `p(x)`, for `p` false then true as `x` grows (binary search).
fn first_where(p: impl Fn(i64) -> bool) -> Option<i64> {
    if !p(i64::MAX) {
        return None;
    }
    // Invariant: the answer is in lo..=hi and p(hi) holds.
    let (mut lo, mut hi) = (i64::MIN, i64::MAX);
    while lo < hi {
        // Rounded down (in i128, so it cannot overflow), so that lo <= mid < hi.
        let mid = ((i128::from(lo) + i128::from(hi)) >> 1) as i64;
        if p(mid) { hi = mid } else { lo = mid + 1 }
    }
    Some(lo)
}

/// The greatest `x` with `p(x)`, for `p` true then false as `x` grows.
fn last_where(p: impl Fn(i64) -> bool) -> Option<i64> {
    // The first x where p fails, minus one; p never failing leaves every x.
    match first_where(|x| !p(x)) {
        None => Some(i64::MAX),
        Some(i64::MIN) => None,
        Some(x) => Some(x - 1),
    }
}

/// A boolean column, as whole-word operations on its value bits.
fn boolean(leaf: &EligibilityCondition, values: &BooleanBuffer) -> BooleanBuffer {
    use Operator::*;
    let len = values.len();
    let is = |b: bool| if b { values.clone() } else { !values };
    let member = |want: bool| {
        leaf.value
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x.as_bool() == Some(want)))
    };
    match (leaf.operator, leaf.value.as_bool()) {
        (Equal, Some(b)) => is(b),
        (NotEqual, Some(b)) => is(!b),
        (Equal, None) | (LessThan | LessThanInclusive | GreaterThan | GreaterThanInclusive, _) => {
            BooleanBuffer::new_unset(len)
        }
        (NotEqual, None) => BooleanBuffer::new_set(len),
        (In | NotIn, _) => {
            let hit = match (member(true), member(false)) {
                (true, true) => BooleanBuffer::new_set(len),
                (true, false) => is(true),
                (false, true) => is(false),
                (false, false) => BooleanBuffer::new_unset(len),
            };
            if leaf.operator == In { hit } else { !&hit }
        }
    }
}

/// A text column, compared on borrowed strings; numbers and booleans never equal text.
fn text<'a>(
    leaf: &EligibilityCondition,
    len: usize,
    at: impl Fn(usize) -> &'a str,
) -> BooleanBuffer {
    use Operator::*;
    let set: Vec<&str> = leaf
        .value
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match (leaf.operator, leaf.value.as_str()) {
        (Equal, Some(t)) => BooleanBuffer::collect_bool(len, |i| at(i) == t),
        (NotEqual, Some(t)) => BooleanBuffer::collect_bool(len, |i| at(i) != t),
        (Equal, None) => BooleanBuffer::new_unset(len),
        (NotEqual, None) => BooleanBuffer::new_set(len),
        (In, _) => BooleanBuffer::collect_bool(len, |i| set.contains(&at(i))),
        (NotIn, _) => BooleanBuffer::collect_bool(len, |i| !set.contains(&at(i))),
        // Ordering comparisons apply to numbers only (row-wise: a string never compares).
        (LessThan | LessThanInclusive | GreaterThan | GreaterThanInclusive, _) => {
            BooleanBuffer::new_unset(len)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use arrow_array::{BooleanArray, Float64Array, Int64Array, StringArray};
    use proptest::prelude::*;
    use puhui_domain::indicators::{CATALOGUE, IndicatorType};
    use puhui_domain::rules::{Severity, WatchRule};
    use serde_json::{Map, json};

    use super::*;
    use crate::rules::evaluate_row;

    /// Facts used by the generated rules: one of each type.
    const FACTS: [&str; 6] = [
        "tax_paid_12m",
        "tax_paid_yoy",
        "social_insured_headcount",
        "tax_arrears",
        "tax_credit_grade",
        "dishonest_debtor",
    ];

    fn kind(fact: &str) -> IndicatorType {
        CATALOGUE.iter().find(|i| i.id == fact).unwrap().kind
    }

    /// A random value of the fact's type, or null.
    fn value(fact: &'static str) -> BoxedStrategy<Value> {
        let v: BoxedStrategy<Value> = match kind(fact) {
            IndicatorType::Fen | IndicatorType::Integer => {
                (-5i64..5).prop_map(|n| json!(n * 10)).boxed()
            }
            IndicatorType::Ratio => (-4i64..4).prop_map(|n| json!(n as f64 / 4.0)).boxed(),
            IndicatorType::Boolean => any::<bool>().prop_map(Value::Bool).boxed(),
            IndicatorType::Category(labels) => (0..labels.len())
                .prop_map(move |i| json!(labels[i]))
                .boxed(),
        };
        prop_oneof![1 => Just(Value::Null), 4 => v].boxed()
    }

    fn leaf() -> BoxedStrategy<Value> {
        (0..FACTS.len(), 0usize..8)
            .prop_flat_map(|(f, op)| {
                let fact = FACTS[f];
                let ops: Vec<&str> = match kind(fact) {
                    IndicatorType::Boolean => vec!["equal", "notEqual"],
                    IndicatorType::Category(_) => vec!["equal", "notEqual", "in", "notIn"],
                    _ => vec![
                        "equal",
                        "notEqual",
                        "lessThan",
                        "lessThanInclusive",
                        "greaterThan",
                        "greaterThanInclusive",
                    ],
                };
                let op = ops[op % ops.len()];
                let scalar = value(fact).prop_filter("a value", |v| !v.is_null());
                let val: BoxedStrategy<Value> = if op == "in" || op == "notIn" {
                    proptest::collection::vec(scalar, 1..3)
                        .prop_map(Value::Array)
                        .boxed()
                } else {
                    scalar.boxed()
                };
                val.prop_map(move |v| json!({"fact": fact, "operator": op, "value": v}))
            })
            .boxed()
    }

    fn condition() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 1..4).prop_map(|v| json!({"all": v})),
                proptest::collection::vec(inner.clone(), 1..4).prop_map(|v| json!({"any": v})),
                inner.prop_map(|v| json!({"not": v})),
            ]
        })
    }

    fn row() -> impl Strategy<Value = Map<String, Value>> {
        FACTS
            .iter()
            .map(|f| value(f))
            .collect::<Vec<_>>()
            .prop_map(|values| FACTS.iter().map(|f| f.to_string()).zip(values).collect())
    }

    /// The rows as a batch, one typed column per fact (as a snapshot stores them).
    fn batch(rows: &[Map<String, Value>]) -> RecordBatch {
        let col = |f: &'static str| {
            rows.iter()
                .map(move |r| r.get(f).cloned().unwrap_or(Value::Null))
        };
        let columns: Vec<(&str, ArrayRef)> = FACTS
            .iter()
            .map(|f| {
                let a: ArrayRef = match kind(f) {
                    IndicatorType::Fen | IndicatorType::Integer => {
                        Arc::new(col(f).map(|v| v.as_i64()).collect::<Int64Array>())
                    }
                    IndicatorType::Ratio => {
                        Arc::new(col(f).map(|v| v.as_f64()).collect::<Float64Array>())
                    }
                    IndicatorType::Boolean => {
                        Arc::new(col(f).map(|v| v.as_bool()).collect::<BooleanArray>())
                    }
                    IndicatorType::Category(_) => Arc::new(
                        col(f)
                            .map(|v| v.as_str().map(str::to_owned))
                            .collect::<StringArray>(),
                    ),
                };
                (*f, a)
            })
            .collect();
        RecordBatch::try_from_iter(columns).unwrap()
    }

    fn rule(id: usize, c: &Value) -> WatchRule {
        WatchRule {
            id: format!("r{id}"),
            name: "generated".into(),
            severity: Severity::Info,
            conditions: RuleCondition::parse(c, "c").unwrap(),
            cooldown_periods: 0,
        }
    }

    proptest! {
        #[test]
        fn columnar_agrees_with_row_wise_on_every_row(
            conditions in proptest::collection::vec(condition(), 1..6),
            rows in proptest::collection::vec(row(), 1..80),
        ) {
            let rules: Vec<WatchRule> = conditions.iter().enumerate().map(|(i, c)| rule(i, c)).collect();
            let compiled = CompiledRules::compile(&rules);
            let results = compiled.evaluate(&batch(&rows));
            prop_assert_eq!(results.len(), rules.len());
            for (r, got) in rules.iter().zip(&results) {
                let mut missing = 0u64;
                for (i, row) in rows.iter().enumerate() {
                    let want = evaluate_row(&r.conditions, row);
                    missing += u64::from(want.missing);
                    prop_assert_eq!(got.hits.value(i), want.hit, "rule {} row {}: {:?}", r.id, i, row);
                }
                prop_assert_eq!(got.missing, missing, "missing count of {}", r.id);
            }
        }
    }

    /// Integers are compared as `x as f64` row-wise; the integer intervals must agree with
    /// that exactly, also where f64 cannot hold every integer (beyond 2^53) and at the ends.
    #[test]
    fn integer_comparisons_agree_with_f64_at_the_edges() {
        let p53 = 1i64 << 53;
        let values: Vec<i64> = [
            i64::MIN,
            i64::MIN + 1,
            -p53 - 3,
            -p53 - 1,
            -p53,
            -3,
            -1,
            0,
            1,
            2,
            3,
            p53 - 1,
            p53,
            p53 + 1,
            p53 + 2,
            p53 + 3,
            i64::MAX - 1,
            i64::MAX,
        ]
        .into_iter()
        .chain(-70..70)
        .collect();
        let targets = [
            json!(0),
            json!(2),
            json!(-1),
            json!(0.5),
            json!(-0.5),
            json!(2.5),
            json!(p53),
            json!(p53 + 1),
            json!(p53 as f64 + 2.0),
            json!(-(p53 as f64) - 2.0),
            json!(9.223_372_036_854_776e18),
            json!(-9.223_372_036_854_776e18),
            json!(1e300),
            json!(-1e300),
            json!("2"),
        ];
        use Operator::*;
        for op in [
            Equal,
            NotEqual,
            LessThan,
            LessThanInclusive,
            GreaterThan,
            GreaterThanInclusive,
        ] {
            for t in &targets {
                let leaf = EligibilityCondition {
                    fact: "tax_paid_12m".into(),
                    operator: op,
                    value: t.clone(),
                };
                let got = integer(&leaf, &values, |x| x);
                for (i, x) in values.iter().enumerate() {
                    let want = crate::rules::condition_holds(&leaf, &json!(x));
                    assert_eq!(got.value(i), want, "{x} {op:?} {t}");
                }
            }
        }
    }

    #[test]
    fn shared_sub_conditions_are_compiled_once() {
        let a = json!({"fact": "tax_arrears", "operator": "equal", "value": true});
        let b = json!({"fact": "tax_paid_yoy", "operator": "lessThan", "value": -0.3});
        let rules = [
            rule(0, &json!({"all": [a, b]})),
            rule(1, &json!({"any": [{"all": [a, b]}, {"not": a}]})),
        ];
        // a, b, all(a,b), not(a), any(..), and nothing else.
        assert_eq!(CompiledRules::compile(&rules).node_count(), 5);
    }

    #[test]
    fn an_absent_column_is_all_missing() {
        let rules = [rule(
            0,
            &json!({"not": {"fact": "equity_frozen", "operator": "equal", "value": true}}),
        )];
        let rows = vec![Map::new(), Map::new(), Map::new()];
        let got = &CompiledRules::compile(&rules).evaluate(&batch(&rows))[0];
        assert_eq!(got.hits.count_set_bits(), 3, "not(missing) is true");
        assert_eq!(got.missing, 3);
    }
}
