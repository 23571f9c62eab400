//! `TreeEnsembleClassifier` / `TreeEnsembleRegressor` (domain `ai.onnx.ml`) compiled to one flat
//! node array per ensemble and evaluated the way ONNX Runtime's CPU kernel does
//! (`tree_ensemble_common.h`, `tree_ensemble_aggregator.h`, `ml_common.h`): the same threshold
//! precision, comparisons, missing-value rule, summation order (tree by tree, in the order the
//! trees are listed) and the same finalisation, quirks included, so probabilities agree to float
//! rounding.

use std::collections::HashMap;

use super::attrs::Attrs;
use super::post::{PostTransform, write_scores};
use super::{OnnxError, Real};

/// Node flag: a leaf (ORT's `NODE_MODE::LEAF`).
const LEAF: u8 = 1;
/// Comparison modes, ORT's numbering.
const LEQ: u8 = 2;
const LT: u8 = 4;
const GTE: u8 = 6;
const GT: u8 = 8;
const EQ: u8 = 10;
const NEQ: u8 = 12;
/// Not a mode: the branch nodes do not all share one, each node's own is read.
const MIXED: u8 = 0;
const MODE_MASK: u8 = 0x0f;
/// Node flag: a missing (NaN) feature value takes the true branch.
const MISSING_TRUE: u8 = 16;

/// Rows evaluated together in a batch: tree by tree over a block keeps a tree's nodes in cache
/// (ORT uses the same block size).
const BLOCK: usize = 128;

/// One compiled node. Trees are laid out in pre-order with the true child right after its
/// parent, so only the false child's index is stored. A leaf keeps its first weight in
/// `threshold`, its weight count in `feature` and its first weight's index in `right`.
#[derive(Clone, Copy, Debug)]
struct Node<T> {
    threshold: T,
    feature: u32,
    right: u32,
    flags: u8,
}

/// What the ensemble's scores mean.
#[derive(Clone, Debug)]
enum Target {
    /// `TreeEnsembleRegressor` with one target.
    Regressor { average: bool },
    /// `TreeEnsembleClassifier`.
    Classifier {
        /// Labels ORT returns: `classlabels_int64s`, or the class indices for string labels.
        labels: Vec<i64>,
        /// Two classes but weights for one class id only (LightGBM, XGBoost, random forests).
        binary_case: bool,
        /// No negative class weight (then the one column is a probability, not a margin).
        all_positive: bool,
    },
}

/// A compiled tree ensemble with thresholds, weights and sums in `T` (f32, or f64 when the
/// model stores double tensors).
#[derive(Clone, Debug)]
pub(crate) struct Ensemble<T> {
    nodes: Vec<Node<T>>,
    roots: Vec<u32>,
    weight_class: Vec<u32>,
    weight_value: Vec<T>,
    /// The mode of every branch node when they share one, else `MIXED`.
    same_mode: u8,
    has_missing: bool,
    n_outputs: usize,
    base_values: Vec<T>,
    post: PostTransform,
    target: Target,
}

/// A score with ORT's "was anything added" flag, which decides several outputs.
#[derive(Clone, Copy, Debug, Default)]
struct Score<T> {
    score: T,
    has: bool,
}

impl<T: Real> Score<T> {
    fn val(self) -> T {
        if self.has { self.score } else { T::zero() }
    }
}

/// The evaluator's output for one row.
pub(crate) struct Output {
    pub label: Option<i64>,
    pub scores: Vec<f32>,
}

impl<T: Real> Ensemble<T> {
    /// Compiles a `TreeEnsembleClassifier` (`classifier`) or `TreeEnsembleRegressor` node.
    pub(crate) fn compile(
        a: &Attrs<'_>,
        width: usize,
        classifier: bool,
    ) -> Result<Self, OnnxError> {
        let op = a.op();
        let post = PostTransform::parse(a, "post_transform")?;
        let (prefix, target, n_outputs) = if classifier {
            let ints = a.ints("classlabels_int64s");
            let strings = a.strings("classlabels_strings")?;
            let labels: Vec<i64> = if strings.is_empty() {
                ints.to_vec()
            } else {
                (0..strings.len() as i64).collect()
            };
            if labels.len() < 2 {
                return Err(OnnxError::AttributeLength {
                    op: op.into(),
                    name: "classlabels_int64s".into(),
                    expected: "at least 2 class labels".into(),
                    found: labels.len(),
                });
            }
            let class_ids = a.ints("class_ids");
            let weights = a.values_or_tensor("class_weights")?;
            let mut distinct: Vec<i64> = class_ids.to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            let n = labels.len();
            let target = Target::Classifier {
                labels,
                binary_case: n == 2 && distinct.len() == 1,
                all_positive: weights.iter().all(|w| w.is_nan() || *w >= 0.0),
            };
            ("class_", target, n)
        } else {
            let n_targets = a.int("n_targets", 0);
            if n_targets != 1 {
                return Err(OnnxError::UnsupportedAttributeValue {
                    op: op.into(),
                    name: "n_targets".into(),
                    value: n_targets.to_string(),
                });
            }
            let average = match a.string("aggregate_function")?.as_deref() {
                None | Some("SUM") => false,
                Some("AVERAGE") => true,
                Some(v @ ("MIN" | "MAX")) => {
                    return Err(OnnxError::UnsupportedAttributeValue {
                        op: op.into(),
                        name: "aggregate_function".into(),
                        value: v.into(),
                    });
                }
                Some(v) => {
                    return Err(OnnxError::UnknownAttributeValue {
                        op: op.into(),
                        name: "aggregate_function".into(),
                        value: v.into(),
                    });
                }
            };
            ("target_", Target::Regressor { average }, 1)
        };

        // node attributes: all the same length
        let treeids = a.ints("nodes_treeids");
        let nodeids = a.ints("nodes_nodeids");
        let featureids = a.ints("nodes_featureids");
        let modes = a.strings("nodes_modes")?;
        let trues = a.ints("nodes_truenodeids");
        let falses = a.ints("nodes_falsenodeids");
        let values = a.values_or_tensor("nodes_values")?;
        let missing = a.ints("nodes_missing_value_tracks_true");
        let n = treeids.len();
        if n == 0 {
            return Err(OnnxError::EmptyEnsemble { op: op.into() });
        }
        for (name, len) in [
            ("nodes_nodeids", nodeids.len()),
            ("nodes_featureids", featureids.len()),
            ("nodes_modes", modes.len()),
            ("nodes_truenodeids", trues.len()),
            ("nodes_falsenodeids", falses.len()),
            ("nodes_values", values.len()),
        ] {
            a.expect_len(name, len, n)?;
        }
        if !missing.is_empty() {
            a.expect_len("nodes_missing_value_tracks_true", missing.len(), n)?;
        }
        let target_ids = a.ints(&format!("{prefix}ids"));
        let target_nodeids = a.ints(&format!("{prefix}nodeids"));
        let target_treeids = a.ints(&format!("{prefix}treeids"));
        let target_weights = a.values_or_tensor(&format!("{prefix}weights"))?;
        let m = target_ids.len();
        a.expect_len(&format!("{prefix}nodeids"), target_nodeids.len(), m)?;
        a.expect_len(&format!("{prefix}treeids"), target_treeids.len(), m)?;
        a.expect_len(&format!("{prefix}weights"), target_weights.len(), m)?;
        let base_values = a.values_or_tensor("base_values")?;
        for (i, v) in base_values.iter().enumerate() {
            a.finite("base_values", i, *v)?;
        }

        // parse node modes and check branch nodes
        let mut flags = Vec::with_capacity(n);
        let mut same_mode: Option<u8> = None;
        let mut mixed = false;
        for i in 0..n {
            let mode = match modes[i].as_str() {
                "LEAF" => LEAF,
                "BRANCH_LEQ" => LEQ,
                "BRANCH_LT" => LT,
                "BRANCH_GTE" => GTE,
                "BRANCH_GT" => GT,
                "BRANCH_EQ" => EQ,
                "BRANCH_NEQ" => NEQ,
                other => {
                    return Err(OnnxError::UnknownAttributeValue {
                        op: op.into(),
                        name: "nodes_modes".into(),
                        value: other.into(),
                    });
                }
            };
            if mode != LEAF {
                match same_mode {
                    None => same_mode = Some(mode),
                    Some(s) if s != mode => mixed = true,
                    Some(_) => {}
                }
                if featureids[i] < 0 || featureids[i] as u64 >= width as u64 {
                    return Err(OnnxError::FeatureOutOfRange {
                        op: op.into(),
                        feature: featureids[i],
                        width,
                    });
                }
                // a NaN threshold makes every comparison false: a broken export
                a.finite_or_inf("nodes_values", i, values[i])?;
            }
            let mut f = mode;
            if missing.get(i) == Some(&1) {
                f |= MISSING_TRUE;
            }
            flags.push(f);
        }
        let same_mode = if mixed {
            MIXED
        } else {
            same_mode.unwrap_or(LEQ)
        };
        let has_missing = missing.iter().any(|&m| m != 0);

        let mut index: HashMap<(i64, i64), usize> = HashMap::with_capacity(n);
        for i in 0..n {
            if index.insert((treeids[i], nodeids[i]), i).is_some() {
                return Err(OnnxError::DuplicateNode {
                    tree: treeids[i],
                    node: nodeids[i],
                });
            }
        }

        // leaf weights, grouped per node in the order listed (ORT sorts them stably by node)
        let mut leaf_weights: Vec<Vec<(u32, T)>> = vec![Vec::new(); n];
        for k in 0..m {
            let key = (target_treeids[k], target_nodeids[k]);
            let Some(&i) = index.get(&key) else {
                return Err(OnnxError::DanglingNode {
                    tree: key.0,
                    node: key.1,
                    target: key.1,
                    branch: "weight".into(),
                });
            };
            if flags[i] & MODE_MASK != LEAF {
                // ORT ignores weights on branch nodes (old onnxmltools wrote some)
                continue;
            }
            let id = target_ids[k];
            if id < 0 || id as u64 >= n_outputs as u64 {
                return Err(OnnxError::TargetOutOfRange {
                    op: op.into(),
                    id,
                    count: n_outputs,
                });
            }
            a.finite(&format!("{prefix}weights"), k, target_weights[k])?;
            leaf_weights[i].push((id as u32, T::from_f64(target_weights[k])));
        }

        // trees: each run of one tree id, rooted at its first node
        let mut roots_src = Vec::new();
        let mut seen_trees = std::collections::HashSet::new();
        for i in 0..n {
            if i == 0 || treeids[i] != treeids[i - 1] {
                if !seen_trees.insert(treeids[i]) {
                    return Err(OnnxError::TreeNotContiguous { tree: treeids[i] });
                }
                roots_src.push(i);
            }
        }

        let mut nodes: Vec<Node<T>> = Vec::with_capacity(n);
        let mut weight_class = Vec::new();
        let mut weight_value = Vec::new();
        let mut roots = Vec::with_capacity(roots_src.len());
        let mut visited = vec![false; n];
        let mut stack: Vec<(usize, Option<usize>)> = Vec::new();
        for &root in &roots_src {
            roots.push(nodes.len() as u32);
            stack.push((root, None));
            while let Some((src, patch)) = stack.pop() {
                let (tree, node) = (treeids[src], nodeids[src]);
                if visited[src] {
                    return Err(OnnxError::Cycle { tree, node });
                }
                visited[src] = true;
                let at = nodes.len();
                if let Some(p) = patch {
                    nodes[p].right = at as u32;
                }
                if flags[src] & MODE_MASK == LEAF {
                    let w = &leaf_weights[src];
                    let Some(&(_, first)) = w.first() else {
                        return Err(OnnxError::LeafWithoutWeight { tree, node });
                    };
                    nodes.push(Node {
                        threshold: first,
                        feature: w.len() as u32,
                        right: weight_class.len() as u32,
                        flags: flags[src],
                    });
                    for &(c, v) in w {
                        weight_class.push(c);
                        weight_value.push(v);
                    }
                    continue;
                }
                let child = |id: i64, branch: &str| {
                    index
                        .get(&(tree, id))
                        .copied()
                        .ok_or_else(|| OnnxError::DanglingNode {
                            tree,
                            node,
                            target: id,
                            branch: branch.into(),
                        })
                };
                let t = child(trues[src], "true")?;
                let f = child(falses[src], "false")?;
                nodes.push(Node {
                    threshold: T::from_f64(values[src]),
                    feature: featureids[src] as u32,
                    right: 0,
                    flags: flags[src],
                });
                // the false child is patched in when it is placed; the true one comes next
                stack.push((f, Some(at)));
                stack.push((t, None));
            }
        }

        Ok(Ensemble {
            nodes,
            roots,
            weight_class,
            weight_value,
            same_mode,
            has_missing,
            n_outputs,
            base_values: base_values.iter().map(|&v| T::from_f64(v)).collect(),
            post,
            target,
        })
    }

    /// Number of trees.
    pub(crate) fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// Scores rows (`rows.len()` a multiple of `width`), calling `emit` with each row's
    /// output in order.
    pub(crate) fn eval(&self, rows: &[f32], width: usize, emit: &mut dyn FnMut(Output)) {
        macro_rules! run {
            ($mode:expr) => {
                if self.has_missing {
                    self.eval_blocks::<{ $mode }, true>(rows, width, emit)
                } else {
                    self.eval_blocks::<{ $mode }, false>(rows, width, emit)
                }
            };
        }
        match self.same_mode {
            LEQ => run!(LEQ),
            LT => run!(LT),
            GTE => run!(GTE),
            GT => run!(GT),
            EQ => run!(EQ),
            NEQ => run!(NEQ),
            _ => run!(MIXED),
        }
    }

    /// The leaf a row reaches from `root`.
    #[inline(always)]
    fn leaf<const MODE: u8, const MISSING: bool>(&self, root: u32, x: &[f32]) -> &Node<T> {
        let nodes = &self.nodes[..];
        let mut i = root as usize;
        loop {
            let n = &nodes[i];
            if n.flags & LEAF != 0 {
                return n;
            }
            let v = x[n.feature as usize];
            let t = T::from_f32(v);
            let mode = if MODE == MIXED {
                n.flags & MODE_MASK
            } else {
                MODE
            };
            let mut go_true = match mode {
                LEQ => t <= n.threshold,
                LT => t < n.threshold,
                GTE => t >= n.threshold,
                GT => t > n.threshold,
                EQ => t == n.threshold,
                _ => t != n.threshold,
            };
            if MISSING {
                go_true |= n.flags & MISSING_TRUE != 0 && v.is_nan();
            }
            i = if go_true { i + 1 } else { n.right as usize };
        }
    }

    fn eval_blocks<const MODE: u8, const MISSING: bool>(
        &self,
        rows: &[f32],
        width: usize,
        emit: &mut dyn FnMut(Output),
    ) {
        let n_rows = rows.len() / width;
        let k = self.n_outputs;
        let single = matches!(self.target, Target::Regressor { .. });
        let mut sums: Vec<T> = Vec::new();
        let mut scores: Vec<Score<T>> = Vec::new();
        let mut start = 0;
        while start < n_rows {
            let end = (start + BLOCK).min(n_rows);
            let block = &rows[start * width..end * width];
            let b = end - start;
            if single {
                // one output: ORT sums each leaf's first weight, without a "has score" flag
                sums.clear();
                sums.resize(b, T::zero());
                for &root in &self.roots {
                    for (r, x) in block.chunks_exact(width).enumerate() {
                        sums[r] += self.leaf::<MODE, MISSING>(root, x).threshold;
                    }
                }
                for &s in &sums {
                    emit(self.finish_single(s));
                }
            } else {
                scores.clear();
                scores.resize(b * k, Score::default());
                for &root in &self.roots {
                    for (r, x) in block.chunks_exact(width).enumerate() {
                        let leaf = self.leaf::<MODE, MISSING>(root, x);
                        let row = &mut scores[r * k..(r + 1) * k];
                        let first = leaf.right as usize;
                        for w in first..first + leaf.feature as usize {
                            let s = &mut row[self.weight_class[w] as usize];
                            s.score += self.weight_value[w];
                            s.has = true;
                        }
                    }
                }
                for r in 0..b {
                    emit(self.finish_classes(&scores[r * k..(r + 1) * k]));
                }
            }
            start = end;
        }
    }

    /// ORT's `TreeAggregatorSum/Average::FinalizeScores1`: base value, then PROBIT only (any
    /// other post_transform is ignored by ORT for one target, and so here).
    fn finish_single(&self, mut s: T) -> Output {
        let origin = if self.base_values.len() == 1 {
            self.base_values[0]
        } else {
            T::zero()
        };
        if let Target::Regressor { average: true } = self.target {
            s = s.div_count(self.roots.len());
        }
        s += origin;
        let v = if self.post == PostTransform::Probit {
            super::post::probit(s.to_f32())
        } else {
            s.to_f32()
        };
        Output {
            label: None,
            scores: vec![v],
        }
    }

    /// ORT's `TreeAggregatorClassifier::FinalizeScores` (the N-output path every classifier
    /// takes) and `write_scores`.
    fn finish_classes(&self, row: &[Score<T>]) -> Output {
        let Target::Classifier {
            labels,
            binary_case,
            all_positive,
        } = &self.target
        else {
            unreachable!("finish_classes is only called for classifiers")
        };
        let mut p: Vec<Score<T>> = row.to_vec();
        let base = &self.base_values;
        let mut add_second = -1;
        let label;
        if self.n_outputs > 2 {
            for (k, b) in base.iter().enumerate().take(p.len()) {
                if p[k].has {
                    p[k].score += *b;
                } else {
                    p[k] = Score {
                        score: *b,
                        has: true,
                    };
                }
            }
            let mut best: Option<(usize, T)> = None;
            for (k, s) in p.iter().enumerate() {
                if s.has && best.is_none_or(|(_, w)| s.score > w) {
                    best = Some((k, s.score));
                }
            }
            label = labels[best.map_or(0, |(k, _)| k)];
        } else {
            if base.len() == 2 {
                if p[1].has {
                    // ORT uses class 0's sum here (it assumes both base values are equal)
                    p[1].score = base[1] + p[0].score;
                    p[0].score = -p[1].score;
                    p[1].has = true;
                } else {
                    p[1].score += base[1];
                    p[0].score += base[0];
                }
            } else if base.len() == 1 {
                p[0].score += base[0];
                if !p[1].has {
                    p.pop();
                }
            } else if base.is_empty() {
                add_second = 3;
                if !p[1].has {
                    p.pop();
                }
            }
            // _set_score_binary
            let pos = if p.len() == 2 && p[1].has {
                p[1].score
            } else if p[0].has {
                p[0].score
            } else {
                T::zero()
            };
            label = if *binary_case {
                if *all_positive {
                    if pos > T::from_f32(0.5) {
                        add_second = 0;
                        labels[1]
                    } else {
                        add_second = 1;
                        labels[0]
                    }
                } else if pos > T::zero() {
                    add_second = 2;
                    labels[1]
                } else {
                    add_second = 3;
                    labels[0]
                }
            } else if pos > T::zero() {
                // ORT answers 1/0 here, not the class labels
                1
            } else {
                0
            };
        }
        let vals: Vec<T> = p.iter().map(|s| s.val()).collect();
        let mut scores = write_scores(&vals, self.post, add_second);
        // ORT's output has one column per class even when it wrote fewer
        scores.resize(self.n_outputs, 0.0);
        Output {
            label: Some(label),
            scores,
        }
    }
}
