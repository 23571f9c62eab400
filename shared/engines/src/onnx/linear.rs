//! `LinearClassifier` / `LinearRegressor` (domain `ai.onnx.ml`) as ONNX Runtime evaluates them
//! (`linearclassifier.cc`, `linearregressor.cc`, `ml_common.h`): scores `x · coefᵀ + intercept`,
//! label by the raw scores, then the post transform.

use super::OnnxError;
use super::attrs::Attrs;
use super::post::{PostTransform, probit, transform_all};
use super::tree::Output;

/// A compiled linear model.
#[derive(Clone, Debug)]
pub(crate) struct Linear {
    /// Row-major `[targets, width]`.
    coefficients: Vec<f32>,
    intercepts: Vec<f32>,
    post: PostTransform,
    /// Classifier labels (class indices for string labels); `None` for a regressor.
    labels: Option<Vec<i64>>,
}

impl Linear {
    /// Compiles a `LinearClassifier` (`classifier`) or `LinearRegressor` node.
    pub(crate) fn compile(
        a: &Attrs<'_>,
        width: usize,
        classifier: bool,
    ) -> Result<Self, OnnxError> {
        let op = a.op();
        let post = PostTransform::parse(a, "post_transform")?;
        let coefficients = a.floats("coefficients").to_vec();
        if coefficients.is_empty() {
            return Err(OnnxError::MissingAttribute {
                op: op.into(),
                name: "coefficients".into(),
            });
        }
        let mut intercepts = a.floats("intercepts").to_vec();
        let labels = if classifier {
            let strings = a.strings("classlabels_strings")?;
            let labels: Vec<i64> = if strings.is_empty() {
                a.ints("classlabels_ints").to_vec()
            } else {
                (0..strings.len() as i64).collect()
            };
            // ORT counts classes by the intercepts
            let n = intercepts.len();
            if n == 0 {
                return Err(OnnxError::MissingAttribute {
                    op: op.into(),
                    name: "intercepts".into(),
                });
            }
            if !(labels.len() == n || (n == 1 && labels.len() == 2)) {
                return Err(OnnxError::AttributeLength {
                    op: op.into(),
                    name: "classlabels_ints".into(),
                    expected: format!("{n} labels (one per intercept)"),
                    found: labels.len(),
                });
            }
            Some(labels)
        } else {
            let targets = a.int("targets", 1);
            if targets != 1 {
                return Err(OnnxError::UnsupportedAttributeValue {
                    op: op.into(),
                    name: "targets".into(),
                    value: targets.to_string(),
                });
            }
            if post != PostTransform::None {
                return Err(OnnxError::UnsupportedAttributeValue {
                    op: op.into(),
                    name: "post_transform".into(),
                    value: format!("{post:?}").to_uppercase(),
                });
            }
            if intercepts.is_empty() {
                intercepts.push(0.0);
            }
            None
        };
        a.expect_len("coefficients", coefficients.len(), intercepts.len() * width)?;
        for (i, v) in coefficients.iter().enumerate() {
            a.finite("coefficients", i, f64::from(*v))?;
        }
        for (i, v) in intercepts.iter().enumerate() {
            a.finite("intercepts", i, f64::from(*v))?;
        }
        Ok(Linear {
            coefficients,
            intercepts,
            post,
            labels,
        })
    }

    /// Scores one row.
    pub(crate) fn eval_row(&self, x: &[f32]) -> Output {
        let width = x.len();
        // ORT sums in f32 with MLAS' SGEMM (FMA, its own order); a double sum rounded once is
        // within an ulp or two of it
        let mut scores: Vec<f32> = self
            .intercepts
            .iter()
            .zip(self.coefficients.chunks_exact(width))
            .map(|(b, c)| {
                let z: f64 = x
                    .iter()
                    .zip(c)
                    .map(|(&xi, &ci)| f64::from(xi) * f64::from(ci))
                    .sum();
                (z + f64::from(*b)) as f32
            })
            .collect();
        let Some(labels) = &self.labels else {
            return Output {
                label: None,
                scores,
            };
        };
        let label = if scores.len() == 1 {
            let (neg, pos) = if labels.len() == 2 {
                (labels[0], labels[1])
            } else {
                (0, 1)
            };
            if scores[0] > 0.0 { pos } else { neg }
        } else {
            let mut best = 0;
            for j in 1..scores.len() {
                if scores[j] > scores[best] {
                    best = j;
                }
            }
            labels[best]
        };
        if scores.len() > 1 {
            transform_all(&mut scores, self.post);
        } else if self.post == PostTransform::Probit {
            scores[0] = probit(scores[0]);
        } else if labels.len() == 2 {
            // ORT widens one score to [1 - s, s] without applying LOGISTIC (batched_update_scores_inplace)
            let s = scores[0];
            scores = vec![1.0 - s, s];
        }
        Output {
            label: Some(label),
            scores,
        }
    }
}
