//! Logistic regression on WOE features, as data scientists fit it (toad's `Combiner` bins,
//! toad's `WOETransformer`, scikit-learn's `LogisticRegression`) and export it in the JSON
//! below; the probability of default is reproduced as sklearn's `predict_proba(X)[:, 1]`
//! computes it (read from scikit-learn 1.9 / numpy 2.4 / toad 0.1.7; the fixtures in
//! `tests/fixtures/logistic` were made with them, see `samplekit/fixtures/logistic`, whose
//! script is also the reference exporter). Rows are the scorecardpy module's [`Row`] and
//! [`Value`].
//!
//! # The file
//! ```json
//! {
//!   "kind": "logistic_woe",
//!   "target": "bad",
//!   "intercept": -1.7674062039577807,
//!   "features": {
//!     "age": {"coef": 1.0445042947364678,
//!             "woe": {"[-inf ~ 29.0)": 0.603970236060499, "[29.0 ~ 34.0)": 0.2494, …,
//!                     "[63.0 ~ inf)": -0.98659, "nan": 0.745843983949816}},
//!     "city": {"coef": 1.0793452120206326,
//!              "woe": {"nan,cd,xa": -0.30726, "gz,sz,wh": -0.04833, "bj,sh": 0.34431}}
//!   }
//! }
//! ```
//! - `kind` is `logistic_woe`; `target` names what the model predicts (PD is the probability
//!   of `target` = 1); `intercept` is `model.intercept_[0]`.
//! - `features`, in the order of the model's columns (`coef_[0][i]` is the `i`-th feature's
//!   `coef`): per feature its `woe`, bin label → WOE, in the combiner's bin order. The labels
//!   are toad's (`Combiner.format_bins`, as in toad's `ScoreCard.export`): intervals
//!   `[-inf ~ 24.0)` chained to `inf` and an optional last `nan`, or categorical groups joined
//!   with `,` and `else`. They are parsed and binned exactly as [`crate::toad`] does (its
//!   module doc says how toad puts a value into a bin, missing values included), with the WOE
//!   in place of the points.
//! - Numbers are written as Python's `json.dump` writes floats (`repr`), and read here as
//!   Python reads them: the exact doubles of the fitted model.
//! - Keys other than these four at the top and `coef` / `woe` in a feature are refused, as
//!   are repeated keys.
//!
//! # The score
//! `z = (coef₁·woe₁ + coef₂·woe₂ + …) + intercept`, the products added left to right in file
//! order, then `pd = 1 / (1 + exp(-z))` (scipy's `expit`). This is bit for bit what sklearn
//! gives for the row scored alone (a one-row frame). Scoring a whole frame, sklearn hands the
//! dot products to BLAS, which adds a row's products in an order that depends on the row's
//! place in the frame (OpenBLAS on x86: rows in blocks of four use a vectorised order, the
//! rest a plain loop), so the same row's `z` can differ by an ulp between frames and its PD by
//! about 1e-16; the fixtures hold both and the PD is within 1e-12 of either.
//!
//! # A value that matches no bin
//! (An unseen category of a variable without an `else` group, text in a numeric variable.)
//! It gets the variable's **lowest WOE**, as toad's `WOETransformer.transform` does by default
//! (`default='min'`: toad's combiner gives such a value bin -1, which has no WOE), and is
//! flagged: [`FeatureContribution::unmatched`], [`LogisticResult::any_unmatched`]. Mind that
//! with toad's WOE (ln of bad share over good share) and a positive coefficient the lowest WOE
//! is the *least* risky bin: the reproduced PD is the data scientist's, but a caller deciding
//! credit should treat a flagged row as not scored.
//!
//! # Refused models
//! [`LogisticModel::from_json`] refuses, naming the line and the field or variable: bad JSON,
//! a missing, unknown or repeated field, a `kind` other than `logistic_woe`, a `target` that is
//! not text, an `intercept`, `coef` or WOE that is not a finite number, no features, and every
//! bin problem [`crate::toad::ToadCard::from_json`] refuses (gaps, overlaps, a category in two
//! groups, …).

use serde::Serialize;
use thiserror::Error;

use crate::scorecard::{Row, Value};
use crate::toad::{
    Parser, RawBin, RawVariable, ToadBinProblem, ToadCardError, ToadVariable, build_variable,
    line_of,
};

/// The `kind` of a logistic-on-WOE model file.
pub const KIND: &str = "logistic_woe";

/// Why a model was refused. Every message names the line and the field or variable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LogisticModelError {
    /// The bytes are not UTF-8.
    #[error("the model is not UTF-8 text: invalid byte at line {line}, byte offset {offset}")]
    NotUtf8 { line: u64, offset: usize },
    /// Malformed JSON.
    #[error("line {line}, column {column}: {message}")]
    Json {
        line: u64,
        column: u64,
        message: String,
    },
    /// A field that is missing, unknown or holds the wrong thing.
    #[error("line {line}: field `{field}`: {problem}")]
    Field {
        line: u64,
        field: String,
        problem: String,
    },
    /// A problem with a feature's bins.
    #[error("line {line}: feature `{variable}`: {problem}")]
    Bins {
        line: u64,
        variable: String,
        problem: Box<ToadBinProblem>,
    },
}

impl From<ToadCardError> for LogisticModelError {
    fn from(e: ToadCardError) -> Self {
        match e {
            ToadCardError::NotUtf8 { line, offset } => LogisticModelError::NotUtf8 { line, offset },
            ToadCardError::Json {
                line,
                column,
                message,
            } => LogisticModelError::Json {
                line,
                column,
                message,
            },
            ToadCardError::Variable {
                line,
                variable,
                problem,
            } => LogisticModelError::Bins {
                line,
                variable,
                problem,
            },
            ToadCardError::NoVariables => LogisticModelError::Field {
                line: 1,
                field: "features".to_owned(),
                problem: "no features".to_owned(),
            },
        }
    }
}

/// One feature: its bins with their WOE (as a toad variable whose points are the WOE) and its
/// coefficient.
#[derive(Debug, Clone)]
pub struct Feature {
    bins: ToadVariable,
    coef: f64,
}

impl Feature {
    /// The feature's name (the variable of the row it reads).
    pub fn name(&self) -> &str {
        self.bins.name()
    }

    /// Its coefficient.
    pub fn coef(&self) -> f64 {
        self.coef
    }

    /// Its bins; [`crate::toad::ToadBin::points`] is the bin's WOE.
    pub fn bins(&self) -> &ToadVariable {
        &self.bins
    }

    /// The WOE of `value`'s bin; `None` when it matches no bin.
    pub fn woe_of(&self, value: &Value) -> Option<f64> {
        self.bins.bin_of(value).map(|b| b.points())
    }

    /// The WOE a value that matches no bin gets: the lowest (toad's default).
    pub fn unmatched_woe(&self) -> f64 {
        self.bins.unmatched_points()
    }
}

/// What one feature adds to one row's `z`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureContribution<'a> {
    /// The feature.
    pub variable: &'a str,
    /// The bin the value fell into; `None` when it matched no bin.
    pub bin: Option<&'a str>,
    /// The WOE used: the bin's, or the feature's lowest when unmatched.
    pub woe: f64,
    /// `coef * woe`, the term added to `z` (for reason codes).
    pub contribution: f64,
    /// The value matched no bin.
    pub unmatched: bool,
}

/// One row's probability of default.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogisticResult<'a> {
    /// `1 / (1 + exp(-z))`: sklearn's `predict_proba(X)[:, 1]`.
    pub pd: f64,
    /// The log-odds: the contributions added in feature order, then the intercept.
    pub z: f64,
    /// Per feature, in model order.
    pub per_feature: Vec<FeatureContribution<'a>>,
}

impl LogisticResult<'_> {
    /// Whether any feature's value matched no bin.
    pub fn any_unmatched(&self) -> bool {
        self.per_feature.iter().any(|f| f.unmatched)
    }
}

/// A parsed logistic-on-WOE model.
#[derive(Debug, Clone)]
pub struct LogisticModel {
    target: String,
    intercept: f64,
    features: Vec<Feature>,
}

impl LogisticModel {
    /// Parses a model file. See the module doc.
    pub fn from_json(text: &str) -> Result<LogisticModel, LogisticModelError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        read(text)
    }

    /// [`LogisticModel::from_json`] on bytes, refusing what is not UTF-8.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<LogisticModel, LogisticModelError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => LogisticModel::from_json(text),
            Err(e) => {
                let offset = e.valid_up_to();
                let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u64;
                Err(LogisticModelError::NotUtf8 { line, offset })
            }
        }
    }

    /// What the model predicts (PD is the probability of `target` = 1).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The intercept.
    pub fn intercept(&self) -> f64 {
        self.intercept
    }

    /// The features, in model order.
    pub fn features(&self) -> &[Feature] {
        &self.features
    }

    /// The feature named `name`.
    pub fn feature(&self, name: &str) -> Option<&Feature> {
        self.features.iter().find(|f| f.name() == name)
    }

    /// Scores one row as sklearn's `predict_proba` scores it alone. A feature absent from the
    /// row is missing.
    pub fn score(&self, row: &Row) -> LogisticResult<'_> {
        let per_feature: Vec<FeatureContribution<'_>> = self
            .features
            .iter()
            .map(|f| {
                let bin = f.bins.bin_of(row.get(f.name()).unwrap_or(&Value::Missing));
                let woe = bin.map_or(f.unmatched_woe(), |b| b.points());
                FeatureContribution {
                    variable: f.name(),
                    bin: bin.map(|b| b.label()),
                    woe,
                    contribution: f.coef * woe,
                    unmatched: bin.is_none(),
                }
            })
            .collect();
        let dot = per_feature.iter().fold(0.0, |acc, f| acc + f.contribution);
        let z = dot + self.intercept;
        LogisticResult {
            pd: expit(z),
            z,
            per_feature,
        }
    }

    /// Scores rows, each alone ([`LogisticModel::score`] per row).
    pub fn score_batch(&self, rows: &[Row]) -> Vec<LogisticResult<'_>> {
        rows.iter().map(|r| self.score(r)).collect()
    }
}

/// scipy's `expit` for doubles: `1 / (1 + exp(-x))`.
pub fn expit(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn field_error(text: &str, offset: usize, field: &str, problem: String) -> LogisticModelError {
    LogisticModelError::Field {
        line: line_of(text, offset),
        field: field.to_owned(),
        problem,
    }
}

/// A finite number at the parser's position, for `field`.
fn finite(
    p: &mut Parser<'_>,
    text: &str,
    offset: usize,
    field: &str,
) -> Result<f64, LogisticModelError> {
    match p.number() {
        Some((_, v)) if v.is_finite() => Ok(v),
        Some((t, _)) => Err(field_error(
            text,
            offset,
            field,
            format!("`{t}` is not finite"),
        )),
        None => Err(field_error(
            text,
            offset,
            field,
            format!("expected a number, found {}", p.found()),
        )),
    }
}

fn read(text: &str) -> Result<LogisticModel, LogisticModelError> {
    let mut p = Parser::new(text);
    let mut kind_seen = false;
    let mut target = None;
    let mut intercept = None;
    let mut features: Option<(usize, Vec<Feature>)> = None;
    // the closures return our errors inside the parser's; smuggled out through this slot
    let mut failure: Option<LogisticModelError> = None;
    let smuggle = |failure: &mut Option<LogisticModelError>, e: LogisticModelError| {
        *failure = Some(e);
        ToadCardError::NoVariables
    };
    let top = p.object("a model: a JSON object", |p, key, offset| {
        let result = (|| match key {
            "kind" => {
                let kind = text_value(p, text, offset, "kind")?;
                if kind != KIND {
                    return Err(field_error(
                        text,
                        offset,
                        "kind",
                        format!("`{kind}` is not `{KIND}`"),
                    ));
                }
                kind_seen = true;
                Ok(())
            }
            "target" => {
                target = Some(text_value(p, text, offset, "target")?);
                Ok(())
            }
            "intercept" => {
                intercept = Some(finite(p, text, offset, "intercept")?);
                Ok(())
            }
            "features" => {
                features = Some((offset, read_features(p, text)?));
                Ok(())
            }
            other => Err(field_error(
                text,
                offset,
                other,
                "unknown field; a model has `kind`, `target`, `intercept` and `features`"
                    .to_owned(),
            )),
        })();
        result.map_err(|e| smuggle(&mut failure, e))
    });
    if let Err(e) = top {
        return Err(failure.take().unwrap_or_else(|| e.into()));
    }
    p.ws();
    if p.peek().is_some() {
        let found = p.found();
        return Err(p
            .error(format!("unexpected {found} after the model"))
            .into());
    }
    let missing = |field: &str| field_error(text, 0, field, "missing".to_owned());
    if !kind_seen {
        return Err(missing("kind"));
    }
    let target = target.ok_or_else(|| missing("target"))?;
    let intercept = intercept.ok_or_else(|| missing("intercept"))?;
    let (offset, features) = features.ok_or_else(|| missing("features"))?;
    if features.is_empty() {
        return Err(field_error(
            text,
            offset,
            "features",
            "no features".to_owned(),
        ));
    }
    Ok(LogisticModel {
        target,
        intercept,
        features,
    })
}

/// A JSON string value for `field`.
fn text_value(
    p: &mut Parser<'_>,
    text: &str,
    offset: usize,
    field: &str,
) -> Result<String, LogisticModelError> {
    if p.peek() != Some(b'"') {
        return Err(field_error(
            text,
            offset,
            field,
            format!("expected text, found {}", p.found()),
        ));
    }
    Ok(p.string()?)
}

/// `{"variable": {"coef": c, "woe": {label: woe, …}}, …}`.
fn read_features(p: &mut Parser<'_>, text: &str) -> Result<Vec<Feature>, LogisticModelError> {
    let mut failure: Option<LogisticModelError> = None;
    let parsed = p.object("`features`: an object of features", |p, name, offset| {
        let result = read_feature(p, text, name, offset);
        result.map_err(|e| {
            failure = Some(e);
            ToadCardError::NoVariables
        })
    });
    match parsed {
        Ok(features) => Ok(features),
        Err(e) => Err(failure.take().unwrap_or_else(|| e.into())),
    }
}

fn read_feature(
    p: &mut Parser<'_>,
    text: &str,
    name: &str,
    name_offset: usize,
) -> Result<Feature, LogisticModelError> {
    let mut coef = None;
    let mut woe: Option<Vec<RawBin>> = None;
    let mut failure: Option<LogisticModelError> = None;
    let field = |key: &str| format!("features.{name}.{key}");
    let parsed = p.object(
        &format!("feature `{name}` as an object with `coef` and `woe`"),
        |p, key, offset| {
            let result = (|| match key {
                "coef" => {
                    coef = Some(finite(p, text, offset, &field("coef"))?);
                    Ok(())
                }
                "woe" => {
                    let bins = p.object(
                        &format!("the WOE of `{name}`'s bins as an object"),
                        |p, label, offset| {
                            let (woe_text, woe) = p.number().ok_or_else(|| {
                                p.error(format!(
                                    "feature `{name}`, bin `{label}`: expected its WOE as a number, found {}",
                                    p.found()
                                ))
                            })?;
                            Ok(RawBin {
                                label: label.to_owned(),
                                points_text: woe_text,
                                points: woe,
                                offset,
                            })
                        },
                    )?;
                    woe = Some(bins);
                    Ok(())
                }
                other => Err(field_error(
                    text,
                    offset,
                    &field(other),
                    "unknown field; a feature has `coef` and `woe`".to_owned(),
                )),
            })();
            result.map_err(|e| {
                failure = Some(e);
                ToadCardError::NoVariables
            })
        },
    );
    if let Err(e) = parsed {
        return Err(failure.take().unwrap_or_else(|| e.into()));
    }
    let missing = |key: &str| field_error(text, name_offset, &field(key), "missing".to_owned());
    let coef = coef.ok_or_else(|| missing("coef"))?;
    let bins = woe.ok_or_else(|| missing("woe"))?;
    if let Some(b) = bins.iter().find(|b| !b.points.is_finite()) {
        return Err(field_error(
            text,
            b.offset,
            &field("woe"),
            format!("bin `{}`: WOE `{}` is not finite", b.label, b.points_text),
        ));
    }
    let bins = build_variable(
        text,
        RawVariable {
            name: name.to_owned(),
            offset: name_offset,
            bins,
        },
    )?;
    Ok(Feature { bins, coef })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expit_is_scipys() {
        assert_eq!(expit(0.0), 0.5);
        assert_eq!(expit(f64::INFINITY), 1.0);
        assert_eq!(expit(f64::NEG_INFINITY), 0.0);
        assert_eq!(expit(-800.0), 0.0);
    }
}
