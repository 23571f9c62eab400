//! Native evaluation of ONNX credit models: scikit-learn (skl2onnx), LightGBM and XGBoost
//! (onnxmltools) exports of `LinearClassifier`, `LinearRegressor`, `TreeEnsembleClassifier` and
//! `TreeEnsembleRegressor`, with or without the trailing `ZipMap` and the small glue nodes those
//! exporters add (`Identity`, `Cast`, `Mul`/`Add` by a constant, `Sigmoid`, `Normalizer`).
//!
//! The protobuf is decoded with prost into a hand-declared subset of `onnx.proto`; trees are
//! compiled to flat node arrays. Results follow ONNX Runtime's CPU kernels (threshold and sum
//! precision, comparison modes, missing values, base values, post transforms, the binary
//! classifier special cases, the label rule), so probabilities agree with ORT to float
//! rounding. Anything else is refused at load with a typed [`OnnxError`]; no input panics.

mod attrs;
mod linear;
mod post;
pub mod proto;

mod tree;

use std::collections::HashMap;
use std::ops::{Add, AddAssign, Neg, Sub};
use std::sync::Arc;

use prost::Message;

use attrs::{Attrs, tensor_values};
use linear::Linear;
use proto::{DimensionValue, GraphProto, ModelProto, data_type};
use tree::{Ensemble, Output};

/// Why a model file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OnnxError {
    /// The bytes are not a valid ONNX protobuf (truncated, corrupt, not ONNX).
    #[error("not an ONNX model: the protobuf does not decode: {0}")]
    Decode(String),
    /// The model has no graph.
    #[error("the model has no graph")]
    NoGraph,
    /// The graph does not have exactly one (non-constant) input.
    #[error(
        "the graph has {0} inputs; exactly one float tensor input [batch, features] is supported"
    )]
    InputCount(usize),
    /// The input is not a float or double tensor.
    #[error(
        "input {name:?} has element type {elem_type}; only float (1) and double (11) tensors are supported"
    )]
    InputType {
        /// The input's name.
        name: String,
        /// ONNX `TensorProto.DataType` code (0 when it is not a tensor).
        elem_type: i32,
    },
    /// The input's feature count is not a number in its declared shape `[batch, N]`.
    #[error(
        "input {name:?} has no known width: its shape must be [batch, N] with N a positive number"
    )]
    UnknownInputWidth {
        /// The input's name.
        name: String,
    },
    /// An operator this evaluator does not implement.
    #[error("unsupported operator {op_type} (domain {domain:?})")]
    UnsupportedOperator {
        /// The node's `op_type`.
        op_type: String,
        /// The node's domain (`""` is the default ONNX domain).
        domain: String,
    },
    /// Supported operators wired in a way the exporters do not produce.
    #[error("unsupported graph: {0}")]
    UnsupportedGraph(String),
    /// A required attribute is absent.
    #[error("{op}: attribute {name} is missing")]
    MissingAttribute {
        /// The operator.
        op: String,
        /// The attribute.
        name: String,
    },
    /// An attribute list's length does not fit the others.
    #[error("{op}: attribute {name} has {found} values, expected {expected}")]
    AttributeLength {
        /// The operator.
        op: String,
        /// The attribute.
        name: String,
        /// What was expected.
        expected: String,
        /// How many values it has.
        found: usize,
    },
    /// An attribute is given both as a list and as a tensor.
    #[error("{op}: attributes {name} and {other} are both set")]
    ConflictingAttributes {
        /// The operator.
        op: String,
        /// The list attribute.
        name: String,
        /// The tensor attribute.
        other: String,
    },
    /// A tensor attribute or initializer that cannot be read.
    #[error("tensor {name}: {why}")]
    BadTensor {
        /// Which tensor.
        name: String,
        /// Why.
        why: String,
    },
    /// A NaN (or, for weights, infinite) number where a number is needed.
    #[error("{op}: {name}[{index}] is {value}, not a usable number")]
    NonFinite {
        /// The operator.
        op: String,
        /// The attribute.
        name: String,
        /// The position in the list.
        index: usize,
        /// The value, printed.
        value: String,
    },
    /// An enumerated attribute with a value ONNX does not define (post_transform, node mode, ...).
    #[error("{op}: unknown {name} {value:?}")]
    UnknownAttributeValue {
        /// The operator.
        op: String,
        /// The attribute.
        name: String,
        /// The value found.
        value: String,
    },
    /// A defined attribute value this evaluator does not implement.
    #[error("{op}: {name} = {value} is not supported")]
    UnsupportedAttributeValue {
        /// The operator.
        op: String,
        /// The attribute.
        name: String,
        /// The value found.
        value: String,
    },
    /// Two nodes of one tree share an id.
    #[error("tree {tree}: node {node} is listed twice")]
    DuplicateNode {
        /// Tree id.
        tree: i64,
        /// Node id.
        node: i64,
    },
    /// A child or weight that names a node that does not exist.
    #[error("tree {tree}: node {node} points ({branch}) to node {target}, which does not exist")]
    DanglingNode {
        /// Tree id.
        tree: i64,
        /// The pointing node.
        node: i64,
        /// The missing node id.
        target: i64,
        /// `true`, `false` or `weight`.
        branch: String,
    },
    /// A node reached twice from its tree's root: a cycle (or a shared subtree).
    #[error(
        "tree {tree}: node {node} is reached twice from the root (a cycle or a shared subtree)"
    )]
    Cycle {
        /// Tree id.
        tree: i64,
        /// Node id.
        node: i64,
    },
    /// A leaf with no weight.
    #[error("tree {tree}: leaf {node} has no weight")]
    LeafWithoutWeight {
        /// Tree id.
        tree: i64,
        /// Node id.
        node: i64,
    },
    /// A tree's nodes are not listed together.
    #[error("tree {tree}: its nodes are not listed together")]
    TreeNotContiguous {
        /// Tree id.
        tree: i64,
    },
    /// A split on a feature the input does not have.
    #[error("{op}: a node reads feature {feature} but the input has {width} features")]
    FeatureOutOfRange {
        /// The operator.
        op: String,
        /// The feature index.
        feature: i64,
        /// The input width.
        width: usize,
    },
    /// A weight for a class or target that does not exist.
    #[error("{op}: a weight is for class/target {id} but there are {count}")]
    TargetOutOfRange {
        /// The operator.
        op: String,
        /// The class or target id.
        id: i64,
        /// How many there are.
        count: usize,
    },
    /// An ensemble with no nodes.
    #[error("{op}: the ensemble has no trees")]
    EmptyEnsemble {
        /// The operator.
        op: String,
    },
    /// The `feature_names` metadata is not a JSON array of as many strings as features.
    #[error("metadata feature_names: {0}")]
    FeatureNames(String),
}

/// The number type thresholds, weights and sums are kept in: f32, or f64 when the model says
/// so (double tensors or a double input), as in ONNX Runtime.
pub(crate) trait Real:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + AddAssign
    + Sub<Output = Self>
    + Neg<Output = Self>
    + std::fmt::Debug
    + Default
    + Send
    + Sync
    + 'static
{
    fn zero() -> Self;
    fn one() -> Self;
    fn from_f32(v: f32) -> Self;
    fn from_f64(v: f64) -> Self;
    fn to_f32(self) -> f32;
    /// Divides by a tree count (the AVERAGE aggregate).
    fn div_count(self, n: usize) -> Self;
}

impl Real for f32 {
    fn zero() -> Self {
        0.0
    }
    fn one() -> Self {
        1.0
    }
    fn from_f32(v: f32) -> Self {
        v
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn div_count(self, n: usize) -> Self {
        self / n as f32
    }
}

impl Real for f64 {
    fn zero() -> Self {
        0.0
    }
    fn one() -> Self {
        1.0
    }
    fn from_f32(v: f32) -> Self {
        f64::from(v)
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn div_count(self, n: usize) -> Self {
        self / n as f64
    }
}

/// What a model predicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnnxKind {
    /// Class probabilities and a label.
    Classifier {
        /// The class labels in probability order (`classlabels_ints`); for a model with string
        /// labels, the class indices `0..n`, and `names` holds the strings.
        labels: Vec<i64>,
        /// String class labels, when the model has them.
        names: Option<Vec<String>>,
    },
    /// One number.
    Regressor,
}

/// One row's prediction.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The label ONNX Runtime returns (classifiers).
    pub label: Option<i64>,
    /// One probability (or score) per class, in label order (classifiers; empty for regressors).
    pub probabilities: Vec<f32>,
    /// The predicted value (regressors).
    pub value: Option<f32>,
    /// The labels, to look probabilities up by label.
    labels: Option<Arc<[i64]>>,
}

impl Prediction {
    /// The probability of class `label`, if the model has that class.
    pub fn probability_of(&self, label: i64) -> Option<f32> {
        let labels = self.labels.as_ref()?;
        let i = labels.iter().position(|&l| l == label)?;
        self.probabilities.get(i).copied()
    }
}

/// An elementwise step after the model operator (the exporters' glue nodes).
#[derive(Clone, Debug, PartialEq)]
enum Step {
    /// `Mul` by a constant (one value, or one per column).
    Mul(Vec<f32>),
    /// `Add` of a constant.
    Add(Vec<f32>),
    /// `Sigmoid`.
    Sigmoid,
    /// `Normalizer` with norm MAX, L1 or L2.
    Normalize(Norm),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Norm {
    Max,
    L1,
    L2,
}

impl Step {
    fn apply(&self, scores: &mut [f32]) {
        let pick = |c: &[f32], j: usize| if c.len() == 1 { c[0] } else { c[j] };
        match self {
            Step::Mul(c) => scores
                .iter_mut()
                .enumerate()
                .for_each(|(j, v)| *v *= pick(c, j)),
            Step::Add(c) => scores
                .iter_mut()
                .enumerate()
                .for_each(|(j, v)| *v += pick(c, j)),
            Step::Sigmoid => scores
                .iter_mut()
                .for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
            Step::Normalize(norm) => {
                let d = match norm {
                    Norm::Max => scores.iter().copied().fold(f32::MIN, f32::max),
                    Norm::L1 => scores.iter().map(|v| v.abs()).sum(),
                    Norm::L2 => scores.iter().map(|v| v * v).sum::<f32>().sqrt(),
                };
                scores.iter_mut().for_each(|v| *v /= d);
            }
        }
    }
}

/// The model operator.
#[derive(Clone, Debug)]
enum Core {
    Linear(Linear),
    Trees32(Ensemble<f32>),
    Trees64(Ensemble<f64>),
}

/// A loaded ONNX model, ready to score rows. Immutable, so it can be shared across threads.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    width: usize,
    feature_names: Option<Vec<String>>,
    kind: OnnxKind,
    labels: Option<Arc<[i64]>>,
    core: Core,
    steps: Vec<Step>,
}

/// What a graph value is, symbolically, while walking the graph.
#[derive(Clone, Debug)]
enum Sym {
    Input,
    Label,
    Scores(Vec<Step>),
    Const(Vec<f32>),
}

const ML: &str = "ai.onnx.ml";

fn is_default_domain(d: &str) -> bool {
    d.is_empty() || d == "ai.onnx"
}

fn supported(op: &str, domain: &str) -> bool {
    if domain == ML {
        matches!(
            op,
            "LinearClassifier"
                | "LinearRegressor"
                | "TreeEnsembleClassifier"
                | "TreeEnsembleRegressor"
                | "ZipMap"
                | "Normalizer"
        )
    } else {
        is_default_domain(domain) && matches!(op, "Identity" | "Cast" | "Mul" | "Add" | "Sigmoid")
    }
}

impl OnnxModel {
    /// Decodes and compiles a model file, refusing what it cannot evaluate exactly.
    pub fn from_bytes(bytes: &[u8]) -> Result<OnnxModel, OnnxError> {
        let model = ModelProto::decode(bytes).map_err(|e| OnnxError::Decode(e.to_string()))?;
        let graph = model.graph.as_ref().ok_or(OnnxError::NoGraph)?;
        // an unsupported operator anywhere is the first thing to report
        for node in &graph.node {
            if !supported(&node.op_type, &node.domain) {
                return Err(OnnxError::UnsupportedOperator {
                    op_type: node.op_type.clone(),
                    domain: node.domain.clone(),
                });
            }
        }
        let (input, width, double_input) = graph_input(graph)?;
        let (core, kind, steps) = walk(graph, &input, width, double_input)?;
        let feature_names = match model
            .metadata_props
            .iter()
            .find(|p| p.key == "feature_names")
        {
            None => None,
            Some(p) => {
                let names: Vec<String> = serde_json::from_str(&p.value).map_err(|e| {
                    OnnxError::FeatureNames(format!("not a JSON array of strings: {e}"))
                })?;
                if names.len() != width {
                    return Err(OnnxError::FeatureNames(format!(
                        "{} names for {width} features",
                        names.len()
                    )));
                }
                Some(names)
            }
        };
        let labels = match &kind {
            OnnxKind::Classifier { labels, .. } => Some(Arc::from(labels.as_slice())),
            OnnxKind::Regressor => None,
        };
        Ok(OnnxModel {
            width,
            feature_names,
            kind,
            labels,
            core,
            steps,
        })
    }

    /// N, the number of features of the input `[batch, N]`.
    pub fn input_width(&self) -> usize {
        self.width
    }

    /// The feature names from the `feature_names` metadata property (a JSON array), if any.
    pub fn feature_names(&self) -> Option<Vec<String>> {
        self.feature_names.clone()
    }

    /// Classifier (with its labels) or regressor.
    pub fn kind(&self) -> OnnxKind {
        self.kind.clone()
    }

    /// Scores one row of `input_width()` features; NaN is a missing value.
    ///
    /// # Panics
    /// If `row.len() != self.input_width()`.
    pub fn predict(&self, row: &[f32]) -> Prediction {
        assert_eq!(row.len(), self.width, "row width");
        let mut out = Vec::with_capacity(1);
        self.predict_batch(row, &mut out);
        out.pop().expect("one row gives one prediction")
    }

    /// Scores rows stored row-major (`rows.len()` = n × `input_width()`), appending n
    /// predictions to `out` in row order. Trees are evaluated tree by tree over blocks of rows;
    /// each row's result is the same as `predict` gives it.
    ///
    /// # Panics
    /// If `rows.len()` is not a multiple of `input_width()`.
    pub fn predict_batch(&self, rows: &[f32], out: &mut Vec<Prediction>) {
        assert_eq!(
            rows.len() % self.width,
            0,
            "rows length is not a multiple of the width"
        );
        out.reserve(rows.len() / self.width);
        let mut emit = |o: Output| out.push(self.finish(o));
        match &self.core {
            Core::Linear(l) => rows
                .chunks_exact(self.width)
                .for_each(|x| emit(l.eval_row(x))),
            Core::Trees32(e) => e.eval(rows, self.width, &mut emit),
            Core::Trees64(e) => e.eval(rows, self.width, &mut emit),
        }
    }

    fn finish(&self, mut o: Output) -> Prediction {
        for s in &self.steps {
            s.apply(&mut o.scores);
        }
        match self.kind {
            OnnxKind::Classifier { .. } => Prediction {
                label: o.label,
                probabilities: o.scores,
                value: None,
                labels: self.labels.clone(),
            },
            OnnxKind::Regressor => Prediction {
                label: None,
                value: o.scores.first().copied(),
                probabilities: Vec::new(),
                labels: None,
            },
        }
    }

    /// Number of trees (0 for a linear model); for benchmarks and logs.
    pub fn tree_count(&self) -> usize {
        match &self.core {
            Core::Linear(_) => 0,
            Core::Trees32(e) => e.n_trees(),
            Core::Trees64(e) => e.n_trees(),
        }
    }
}

/// The one non-constant input: its name, width and whether it is double.
fn graph_input(graph: &GraphProto) -> Result<(String, usize, bool), OnnxError> {
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|i| !graph.initializer.iter().any(|t| t.name == i.name))
        .collect();
    let [input] = inputs[..] else {
        return Err(OnnxError::InputCount(inputs.len()));
    };
    let name = input.name.clone();
    let tensor = input.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
    let elem_type = tensor.map_or(0, |t| t.elem_type);
    if elem_type != data_type::FLOAT && elem_type != data_type::DOUBLE {
        return Err(OnnxError::InputType { name, elem_type });
    }
    let dims = tensor
        .and_then(|t| t.shape.as_ref())
        .map(|s| &s.dim[..])
        .unwrap_or(&[]);
    let width = match dims {
        [_, d] => match d.value {
            Some(DimensionValue::DimValue(n)) if n > 0 && n <= u32::MAX as i64 => n as usize,
            _ => return Err(OnnxError::UnknownInputWidth { name }),
        },
        _ => return Err(OnnxError::UnknownInputWidth { name }),
    };
    Ok((name, width, elem_type == data_type::DOUBLE))
}

/// Walks the graph from its input, compiling the model operator and the glue after it.
fn walk(
    graph: &GraphProto,
    input: &str,
    width: usize,
    double_input: bool,
) -> Result<(Core, OnnxKind, Vec<Step>), OnnxError> {
    let mut syms: HashMap<&str, Sym> = HashMap::new();
    syms.insert(input, Sym::Input);
    for t in &graph.initializer {
        if t.name == input {
            continue;
        }
        // only float/double constants are used (by Mul/Add); others stay unknown
        if let Ok(v) = tensor_values(t) {
            syms.insert(
                &t.name,
                Sym::Const(v.into_iter().map(|x| x as f32).collect()),
            );
        }
    }
    let mut core: Option<(Core, OnnxKind)> = None;
    let graph_err = |m: String| OnnxError::UnsupportedGraph(m);
    for node in &graph.node {
        let op = node.op_type.as_str();
        let mut ins = Vec::with_capacity(node.input.len());
        for name in &node.input {
            let sym = syms.get(name.as_str()).cloned().ok_or_else(|| {
                graph_err(format!(
                    "{op} reads {name:?}, which is not produced before it"
                ))
            })?;
            ins.push(sym);
        }
        let outs: Vec<Sym> = match op {
            "LinearClassifier"
            | "LinearRegressor"
            | "TreeEnsembleClassifier"
            | "TreeEnsembleRegressor" => {
                if !matches!(ins.as_slice(), [Sym::Input]) {
                    return Err(graph_err(format!("{op} must read the graph input")));
                }
                if core.is_some() {
                    return Err(graph_err("more than one model operator".into()));
                }
                let a = Attrs::of(node);
                let classifier = op.ends_with("Classifier");
                let compiled = if op.starts_with("Linear") {
                    Core::Linear(Linear::compile(&a, width, classifier)?)
                } else {
                    let double = double_input
                        || [
                            "nodes_values",
                            "base_values",
                            "class_weights",
                            "target_weights",
                        ]
                        .iter()
                        .any(|n| a.has_double_tensor(n));
                    if double {
                        Core::Trees64(Ensemble::compile(&a, width, classifier)?)
                    } else {
                        Core::Trees32(Ensemble::compile(&a, width, classifier)?)
                    }
                };
                let kind = if classifier {
                    let strings = a.strings("classlabels_strings")?;
                    if strings.is_empty() {
                        let key = if op.starts_with("Linear") {
                            "classlabels_ints"
                        } else {
                            "classlabels_int64s"
                        };
                        let mut labels = a.ints(key).to_vec();
                        if labels.is_empty() {
                            labels = vec![0, 1];
                        }
                        OnnxKind::Classifier {
                            labels,
                            names: None,
                        }
                    } else {
                        OnnxKind::Classifier {
                            labels: (0..strings.len() as i64).collect(),
                            names: Some(strings),
                        }
                    }
                } else {
                    OnnxKind::Regressor
                };
                core = Some((compiled, kind));
                if classifier {
                    vec![Sym::Label, Sym::Scores(Vec::new())]
                } else {
                    vec![Sym::Scores(Vec::new())]
                }
            }
            "Identity" | "ZipMap" => match ins.as_slice() {
                [s @ Sym::Scores(_)] => vec![s.clone()],
                [s] if op == "Identity" => vec![s.clone()],
                _ => return Err(graph_err(format!("{op} must read the model's scores"))),
            },
            "Cast" => {
                let to = Attrs::of(node).int("to", 0);
                let numeric = [
                    data_type::FLOAT,
                    data_type::DOUBLE,
                    data_type::INT64,
                    data_type::INT32,
                ];
                match ins.as_slice() {
                    [s @ (Sym::Label | Sym::Input)] if numeric.contains(&(to as i32)) => {
                        vec![s.clone()]
                    }
                    [s @ Sym::Scores(_)]
                        if to as i32 == data_type::FLOAT || to as i32 == data_type::DOUBLE =>
                    {
                        vec![s.clone()]
                    }
                    _ => {
                        return Err(graph_err(format!(
                            "Cast to type {to} is not supported here"
                        )));
                    }
                }
            }
            "Mul" | "Add" => {
                let (steps, c) = match ins.as_slice() {
                    [Sym::Scores(s), Sym::Const(c)] | [Sym::Const(c), Sym::Scores(s)] => (s, c),
                    _ => {
                        return Err(graph_err(format!(
                            "{op} must combine the model's scores with a constant"
                        )));
                    }
                };
                let n = scores_len(core.as_ref());
                if !(c.len() == 1 || Some(c.len()) == n) || c.iter().any(|v| !v.is_finite()) {
                    return Err(graph_err(format!(
                        "{op} by a constant of {} values",
                        c.len()
                    )));
                }
                let mut steps = steps.clone();
                steps.push(if op == "Mul" {
                    Step::Mul(c.clone())
                } else {
                    Step::Add(c.clone())
                });
                vec![Sym::Scores(steps)]
            }
            "Sigmoid" | "Normalizer" => {
                let [Sym::Scores(s)] = ins.as_slice() else {
                    return Err(graph_err(format!("{op} must read the model's scores")));
                };
                let step = if op == "Sigmoid" {
                    Step::Sigmoid
                } else {
                    let a = Attrs::of(node);
                    match a.string("norm")?.as_deref() {
                        Some("MAX") => Step::Normalize(Norm::Max),
                        Some("L1") => Step::Normalize(Norm::L1),
                        Some("L2") => Step::Normalize(Norm::L2),
                        other => {
                            return Err(OnnxError::UnknownAttributeValue {
                                op: op.into(),
                                name: "norm".into(),
                                value: other.unwrap_or("").into(),
                            });
                        }
                    }
                };
                let mut steps = s.clone();
                steps.push(step);
                vec![Sym::Scores(steps)]
            }
            other => {
                return Err(OnnxError::UnsupportedOperator {
                    op_type: other.into(),
                    domain: node.domain.clone(),
                });
            }
        };
        if node.output.len() > outs.len() {
            return Err(graph_err(format!("{op} has {} outputs", node.output.len())));
        }
        for (name, sym) in node.output.iter().zip(outs) {
            if !name.is_empty() {
                syms.insert(name, sym);
            }
        }
    }
    let Some((core, kind)) = core else {
        return Err(graph_err("no model operator (LinearClassifier, LinearRegressor, TreeEnsembleClassifier, TreeEnsembleRegressor)".into()));
    };
    // the scores an output is computed from; a label output needs nothing
    let mut steps = None;
    for out in &graph.output {
        match syms.get(out.name.as_str()) {
            Some(Sym::Scores(s)) => {
                if steps.is_none() {
                    steps = Some(s.clone());
                }
            }
            Some(Sym::Label) => {}
            Some(_) => {
                return Err(graph_err(format!(
                    "output {:?} is not computed by the model",
                    out.name
                )));
            }
            None => {
                return Err(graph_err(format!(
                    "output {:?} is not produced by any node",
                    out.name
                )));
            }
        }
    }
    Ok((core, kind, steps.unwrap_or_default()))
}

/// How many scores the model operator writes, when known.
fn scores_len(core: Option<&(Core, OnnxKind)>) -> Option<usize> {
    match core? {
        (_, OnnxKind::Classifier { labels, .. }) => Some(labels.len()),
        (_, OnnxKind::Regressor) => Some(1),
    }
}
