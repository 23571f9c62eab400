//! Score transforms as ONNX Runtime computes them (`ml_common.h`): in f32, with its formulas,
//! so outputs agree to float rounding.

use super::attrs::Attrs;
use super::{OnnxError, Real};

/// An operator's `post_transform`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    /// Reads the attribute (absent: NONE); an unknown name is refused (ORT would silently
    /// take it as PROBIT).
    pub(crate) fn parse(a: &Attrs<'_>, name: &str) -> Result<Self, OnnxError> {
        Ok(match a.string(name)?.as_deref() {
            None | Some("NONE") => Self::None,
            Some("LOGISTIC") => Self::Logistic,
            Some("SOFTMAX") => Self::Softmax,
            Some("SOFTMAX_ZERO") => Self::SoftmaxZero,
            Some("PROBIT") => Self::Probit,
            Some(other) => {
                return Err(OnnxError::UnknownAttributeValue {
                    op: a.op().into(),
                    name: name.into(),
                    value: other.into(),
                });
            }
        })
    }
}

/// ORT's `ComputeLogistic`: symmetric, so large negative inputs keep their precision.
pub(crate) fn logistic(val: f32) -> f32 {
    let v = 1.0 / (1.0 + (-val.abs()).exp());
    if val < 0.0 { 1.0 - v } else { v }
}

/// ORT's `ErfInv` approximation (Winitzki, a = 0.147), which its PROBIT uses.
fn erf_inv(x: f32) -> f32 {
    let sgn = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sgn * v3.sqrt()
}

/// ORT's `ComputeProbit`.
pub(crate) fn probit(val: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * val - 1.0)
}

/// ORT's `ComputeSoftmax`, in place.
pub(crate) fn softmax(values: &mut [f32]) {
    let mut v_max = -f32::MAX;
    for &v in values.iter() {
        if v > v_max {
            v_max = v;
        }
    }
    let mut sum = 0.0f32;
    for v in values.iter_mut() {
        *v = (*v - v_max).exp();
        sum += *v;
    }
    for v in values.iter_mut() {
        *v /= sum;
    }
}

/// ORT's `ComputeSoftmaxZero`: zero scores stay (nearly) zero.
pub(crate) fn softmax_zero(values: &mut [f32]) {
    let mut v_max = -f32::MAX;
    for &v in values.iter() {
        if v > v_max {
            v_max = v;
        }
    }
    let exp_neg_v_max = (-v_max).exp();
    let mut sum = 0.0f32;
    for v in values.iter_mut() {
        if *v > 0.000_000_1 || *v < -0.000_000_1 {
            *v = (*v - v_max).exp();
            sum += *v;
        } else {
            *v *= exp_neg_v_max;
        }
    }
    for v in values.iter_mut() {
        *v /= sum;
    }
}

/// Applies a transform to two or more scores (ORT's `write_scores`, several-scores case).
pub(crate) fn transform_all(scores: &mut [f32], post: PostTransform) {
    match post {
        PostTransform::None => {}
        PostTransform::Logistic => scores.iter_mut().for_each(|v| *v = logistic(*v)),
        PostTransform::Probit => scores.iter_mut().for_each(|v| *v = probit(*v)),
        PostTransform::Softmax => softmax(scores),
        PostTransform::SoftmaxZero => softmax_zero(scores),
    }
}

/// ORT's `write_scores` for tree ensembles: several scores are transformed; a single score
/// is PROBIT-ed, or widened to two columns as `add_second_class` says (0/1: a probability,
/// `[1 - p, p]` with no transform; 2/3: a margin, `[-m, m]` or their logistic).
pub(crate) fn write_scores<T: Real>(
    vals: &[T],
    post: PostTransform,
    add_second_class: i32,
) -> Vec<f32> {
    if vals.len() >= 2 {
        let mut out: Vec<f32> = vals.iter().map(|v| v.to_f32()).collect();
        transform_all(&mut out, post);
        return out;
    }
    let Some(&s) = vals.first() else {
        return Vec::new();
    };
    if post == PostTransform::Probit {
        return vec![probit(s.to_f32())];
    }
    match add_second_class {
        0 | 1 => vec![(T::one() - s).to_f32(), s.to_f32()],
        2 | 3 => {
            if post == PostTransform::Logistic {
                vec![logistic(-s.to_f32()), logistic(s.to_f32())]
            } else {
                vec![(-s).to_f32(), s.to_f32()]
            }
        }
        _ => vec![s.to_f32()],
    }
}
