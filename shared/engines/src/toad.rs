//! Credit scorecards as toad exports them (`ScoreCard.export()`, written with `json.dump`),
//! scored exactly as toad's `ScoreCard().load(card).predict(X)` scores them (read from toad
//! 0.1.7 under pandas 2.3 / numpy 2.4; the fixtures in `tests/fixtures/toad` were made with it,
//! see `samplekit/fixtures/toad`). Rows and the result are the scorecardpy module's [`Row`],
//! [`Value`] and [`ScoreResult`]; the bin semantics differ too much for one card type.
//!
//! # The file
//! A JSON object: variable → object of bin label → points, both in toad's order (which this
//! parser keeps: bin order and variable order both change scores). toad rounds the points to
//! 2 decimals on export, so the exported card scores up to a few hundredths away from the
//! in-memory card it came from; the file is what is reproduced here.
//! - **Numeric variable**: its *first* label is an interval `[-inf ~ 24.0)` (toad decides the
//!   kind from the first label alone). Then intervals `[a ~ b)` chained up to `[c ~ inf)` and
//!   optionally a last `nan` bin. Bounds are Python numbers (`24.0`, `9` for integer splits,
//!   `-2314.18`); toad reads only the upper bounds. Bounds in exponent form (`1e-05`), which
//!   toad writes but its own loader cannot read back, are accepted as the numbers they are.
//! - **Categorical variable**: every label is a group of categories joined with `,` (toad
//!   splits on every comma, so a category holding a comma cannot be matched — not even by
//!   toad), or `else`. The category `nan` is the missing value.
//!
//! # How toad puts a value into a bin (`Combiner.transform_`)
//! - Numeric: `np.digitize(x, upper_bounds)`, so bins are closed on the left, `[a, b)`;
//!   -inf falls in the first bin and +inf in the last interval. A missing value goes to the
//!   `nan` bin when there is one; otherwise toad **fills it with -1** and bins -1 (usually the
//!   first bin) — a matched bin, not flagged. Integers are compared as floats. Text in a
//!   numeric variable makes toad raise on the whole frame; here it matches no bin.
//! - Categorical: toad turns the column into text (`astype(str)`), so a missing value is the
//!   category `nan` (as is the text `nan`); `""`, `" "`, `None` (the text) and unseen
//!   categories are only what they are. A category found in a group gets that group; any
//!   other value gets the `else` bin when there is one, else it matches no bin. A number
//!   ([`Value::Number`], [`Value::Integer`]: a float or int column) never equals a category.
//! - A value that matches no bin scores the variable's **lowest points** (`predict`'s
//!   `default='min'`) and is flagged: its [`VariablePoints`] has `bin: None`,
//!   `points: Some(lowest)`, `unmatched: true`.
//!
//! # The total
//! No base points: toad spreads the base score over the variables' points. The total is
//! `0 + p1 + p2 + …`, added left to right in card order, as `bin_to_score` does, so totals are
//! bit-identical to toad's; [`ScoreResult::basepoints`] is 0.
//!
//! # Not reproduced
//! What comes from the dtype of a whole pandas column rather than from a value: a categorical
//! variable whose column pandas made float (all missing, e.g. a one-row frame with a missing
//! value) misses the `nan` group in toad, while [`Value::Missing`] here always finds it.
//! A variable absent from the [`Row`] is missing (toad raises `KeyError`). `predict`'s other
//! `default`s (`max`, a number).
//!
//! # Refused cards
//! [`ToadCard::from_json`] refuses, naming the line and variable: bad JSON (also a repeated
//! key, which Python would silently overwrite), a card or variable that is not an object or
//! has no entries, points that are not a finite number, a numeric variable whose labels are
//! not intervals chained from -inf to inf (gaps, overlaps, reversed bounds) plus an optional
//! last `nan`, an interval in a categorical variable, and a category in two groups.

use std::collections::HashMap;

use serde::Serialize;
use thiserror::Error;

use crate::scorecard::{Row, ScoreResult, Value, VariablePoints, python_float_repr};

/// The label of the bin of missing values of a numeric variable, and the missing category.
pub const NAN_LABEL: &str = "nan";
/// The label of the bin of every category no other group names.
pub const ELSE_LABEL: &str = "else";
/// What toad fills missing numbers with when the variable has no `nan` bin.
pub const MISSING_FILL: f64 = -1.0;

/// Why a toad card was refused. Every message names the line and, past the top level, the
/// variable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ToadCardError {
    /// The bytes are not UTF-8.
    #[error("the toad card is not UTF-8 text: invalid byte at line {line}, byte offset {offset}")]
    NotUtf8 { line: u64, offset: usize },
    /// Malformed JSON, or JSON that is not a toad card.
    #[error("line {line}, column {column}: {message}")]
    Json {
        line: u64,
        column: u64,
        message: String,
    },
    /// A card without variables.
    #[error("the toad card has no variables")]
    NoVariables,
    /// A problem with one variable or one of its bins.
    #[error("line {line}: variable `{variable}`: {problem}")]
    Variable {
        line: u64,
        variable: String,
        problem: Box<ToadBinProblem>,
    },
}

/// What is wrong with a variable or one of its bins ([`ToadCardError::Variable`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ToadBinProblem {
    /// A variable without bins.
    #[error("it has no bins")]
    NoBins,
    /// Points that are NaN or an infinity.
    #[error("bin `{bin}`: points `{points}` are not finite")]
    NonFinitePoints { bin: String, points: String },
    /// A label in a numeric variable that is neither an interval nor `nan`.
    #[error(
        "bin `{bin}` is not an interval `[lo ~ hi)` nor `nan` ({reason}); the first bin makes the variable numeric"
    )]
    NotInterval { bin: String, reason: String },
    /// The first interval does not start at -inf.
    #[error(
        "the first bin `{bin}` starts at {start}, not -inf; toad would put every value below {end} in it"
    )]
    FirstNotFromNegInf {
        bin: String,
        start: String,
        end: String,
    },
    /// An interval whose upper bound is not above its lower bound.
    #[error("bin `{bin}` is empty: its upper bound is not above its lower bound")]
    EmptyInterval { bin: String },
    /// An interval that does not start where the one before it ends.
    #[error(
        "bin `{bin}` starts at {start} but the bin before it, `{other}` (line {other_line}), ends at {end}; intervals must follow each other without a gap or overlap"
    )]
    Unchained {
        bin: String,
        start: String,
        other: String,
        other_line: u64,
        end: String,
    },
    /// The last interval does not end at inf.
    #[error("the last interval `{bin}` ends at {end}, not inf")]
    OpenEnd { bin: String, end: String },
    /// `nan` before the last bin of a numeric variable.
    #[error("bin `nan` must be the last bin of a numeric variable (toad appends it last)")]
    NanNotLast,
    /// An interval in a variable whose first label is a category.
    #[error(
        "bin `{bin}` is an interval, but the first bin `{first}` is not: toad would read the variable as categorical and `{bin}` as category names"
    )]
    IntervalInCategorical { bin: String, first: String },
    /// A category in two groups (or twice in one).
    #[error(
        "category `{category}` is in bin `{bin}` and already in bin `{other}` (line {other_line}); a value can be in only one bin"
    )]
    DuplicateCategory {
        category: String,
        bin: String,
        other: String,
        other_line: u64,
    },
}

/// One bin of a toad variable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToadBin {
    label: String,
    points: f64,
    line: u64,
}

impl ToadBin {
    /// The bin as the card writes it (`[24.0 ~ 30.0)`, `nan,sz`, `else`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Its points.
    pub fn points(&self) -> f64 {
        self.points
    }

    /// Its line in the card file.
    pub fn line(&self) -> u64 {
        self.line
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Numeric {
        /// The upper bounds but the last (inf), increasing: `np.digitize`'s bins.
        splits: Vec<f64>,
        nan_bin: Option<usize>,
    },
    Categorical {
        /// Category → index of its bin.
        categories: HashMap<String, usize>,
        else_bin: Option<usize>,
    },
}

/// One variable of a toad card and its bins.
#[derive(Debug, Clone)]
pub struct ToadVariable {
    name: String,
    bins: Vec<ToadBin>,
    kind: Kind,
    lowest_points: f64,
    best_points: f64,
}

impl ToadVariable {
    /// The variable's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its bins, in card order.
    pub fn bins(&self) -> &[ToadBin] {
        &self.bins
    }

    /// Whether it is numeric (interval bins).
    pub fn is_numeric(&self) -> bool {
        matches!(self.kind, Kind::Numeric { .. })
    }

    /// The points of a value that matches no bin: the lowest of its bins (toad's default).
    pub fn unmatched_points(&self) -> f64 {
        self.lowest_points
    }

    /// The most points any of its bins gives (the reference for reason codes).
    pub fn best_points(&self) -> f64 {
        self.best_points
    }

    /// The bin `value` falls into, as toad decides; `None` when it matches no bin.
    pub fn bin_of(&self, value: &Value) -> Option<&ToadBin> {
        self.locate(value).map(|i| &self.bins[i])
    }

    fn locate(&self, value: &Value) -> Option<usize> {
        match &self.kind {
            Kind::Numeric { splits, nan_bin } => {
                let digitize = |x: f64| Some(splits.partition_point(|&s| s <= x));
                match value {
                    Value::Missing => nan_bin.or_else(|| digitize(MISSING_FILL)),
                    Value::Number(x) if x.is_nan() => nan_bin.or_else(|| digitize(MISSING_FILL)),
                    Value::Number(x) => digitize(*x),
                    Value::Integer(i) => digitize(*i as f64),
                    // toad raises on a text column for a numeric variable
                    Value::Text(_) => None,
                }
            }
            Kind::Categorical {
                categories,
                else_bin,
            } => {
                let found = match value {
                    // astype(str) makes NaN the text `nan`
                    Value::Missing => categories.get(NAN_LABEL),
                    Value::Text(s) => categories.get(s.as_str()),
                    // a float or int column is never equal to text categories
                    Value::Number(_) | Value::Integer(_) => None,
                };
                found.copied().or(*else_bin)
            }
        }
    }
}

/// A parsed toad scorecard.
#[derive(Debug, Clone)]
pub struct ToadCard {
    variables: Vec<ToadVariable>,
}

impl ToadCard {
    /// Parses a card as toad's `ScoreCard.export(to_json=…)` writes it. See the module doc.
    pub fn from_json(text: &str) -> Result<ToadCard, ToadCardError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let raw = Parser::new(text).card()?;
        build(text, raw)
    }

    /// [`ToadCard::from_json`] on bytes, refusing what is not UTF-8.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<ToadCard, ToadCardError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => ToadCard::from_json(text),
            Err(e) => {
                let offset = e.valid_up_to();
                let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u64;
                Err(ToadCardError::NotUtf8 { line, offset })
            }
        }
    }

    /// The variables, in card order.
    pub fn variables(&self) -> &[ToadVariable] {
        &self.variables
    }

    /// The variable named `name`.
    pub fn variable(&self, name: &str) -> Option<&ToadVariable> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// Scores one row exactly as toad's `predict(X, return_sub=True)` scores it.
    pub fn score(&self, row: &Row) -> ScoreResult<'_> {
        let per_variable: Vec<VariablePoints<'_>> = self
            .variables
            .iter()
            .map(|var| {
                let bin = var
                    .locate(row.get(&var.name).unwrap_or(&Value::Missing))
                    .map(|i| &var.bins[i]);
                VariablePoints {
                    variable: &var.name,
                    bin: bin.map(|b| b.label.as_str()),
                    points: Some(bin.map_or(var.lowest_points, |b| b.points)),
                    unmatched: bin.is_none(),
                }
            })
            .collect();
        // `score = 0; score += s_map[b]` per variable, in card order
        let total = per_variable
            .iter()
            .fold(0.0, |acc, p| acc + p.points.unwrap_or(0.0));
        ScoreResult {
            total,
            basepoints: 0.0,
            per_variable,
        }
    }

    /// Scores rows; toad adds each row's points alone, so this is [`ToadCard::score`] per row.
    pub fn score_batch(&self, rows: &[Row]) -> Vec<ScoreResult<'_>> {
        rows.iter().map(|r| self.score(r)).collect()
    }
}

/// A bin as read from the JSON: label, points text and value, byte offset of the label.
pub(crate) struct RawBin {
    pub(crate) label: String,
    pub(crate) points_text: String,
    pub(crate) points: f64,
    pub(crate) offset: usize,
}

pub(crate) struct RawVariable {
    pub(crate) name: String,
    pub(crate) offset: usize,
    pub(crate) bins: Vec<RawBin>,
}

pub(crate) fn line_of(text: &str, offset: usize) -> u64 {
    1 + text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
}

fn build(text: &str, raw: Vec<RawVariable>) -> Result<ToadCard, ToadCardError> {
    if raw.is_empty() {
        return Err(ToadCardError::NoVariables);
    }
    let variables = raw
        .into_iter()
        .map(|v| build_variable(text, v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ToadCard { variables })
}

pub(crate) fn build_variable(text: &str, raw: RawVariable) -> Result<ToadVariable, ToadCardError> {
    let fail = |offset: usize, problem: ToadBinProblem| ToadCardError::Variable {
        line: line_of(text, offset),
        variable: raw.name.clone(),
        problem: Box::new(problem),
    };
    let Some(first) = raw.bins.first() else {
        return Err(fail(raw.offset, ToadBinProblem::NoBins));
    };
    for b in &raw.bins {
        if !b.points.is_finite() {
            return Err(fail(
                b.offset,
                ToadBinProblem::NonFinitePoints {
                    bin: b.label.clone(),
                    points: b.points_text.clone(),
                },
            ));
        }
    }
    let kind = if parse_interval(&first.label).is_ok() {
        let mut splits = Vec::new();
        let mut nan_bin = None;
        let mut previous: Option<(&RawBin, f64)> = None;
        for (i, b) in raw.bins.iter().enumerate() {
            if b.label == NAN_LABEL {
                if i + 1 != raw.bins.len() {
                    return Err(fail(b.offset, ToadBinProblem::NanNotLast));
                }
                nan_bin = Some(i);
                continue;
            }
            let (lo, hi) = parse_interval(&b.label).map_err(|reason| {
                let bin = b.label.clone();
                fail(b.offset, ToadBinProblem::NotInterval { bin, reason })
            })?;
            if lo >= hi {
                let bin = b.label.clone();
                return Err(fail(b.offset, ToadBinProblem::EmptyInterval { bin }));
            }
            match previous {
                None if lo != f64::NEG_INFINITY => {
                    return Err(fail(
                        b.offset,
                        ToadBinProblem::FirstNotFromNegInf {
                            bin: b.label.clone(),
                            start: python_float_repr(lo),
                            end: python_float_repr(hi),
                        },
                    ));
                }
                Some((other, end)) if lo != end => {
                    return Err(fail(
                        b.offset,
                        ToadBinProblem::Unchained {
                            bin: b.label.clone(),
                            start: python_float_repr(lo),
                            other: other.label.clone(),
                            other_line: line_of(text, other.offset),
                            end: python_float_repr(end),
                        },
                    ));
                }
                _ => {}
            }
            if hi != f64::INFINITY {
                splits.push(hi);
            }
            previous = Some((b, hi));
        }
        if let Some((last, end)) = previous
            && end != f64::INFINITY
        {
            return Err(fail(
                last.offset,
                ToadBinProblem::OpenEnd {
                    bin: last.label.clone(),
                    end: python_float_repr(end),
                },
            ));
        }
        Kind::Numeric { splits, nan_bin }
    } else {
        let mut categories: HashMap<String, usize> = HashMap::new();
        let mut else_bin = None;
        for (i, b) in raw.bins.iter().enumerate() {
            if b.label == ELSE_LABEL {
                else_bin = Some(i);
                continue;
            }
            if parse_interval(&b.label).is_ok() {
                return Err(fail(
                    b.offset,
                    ToadBinProblem::IntervalInCategorical {
                        bin: b.label.clone(),
                        first: first.label.clone(),
                    },
                ));
            }
            for category in b.label.split(',') {
                if let Some(&other) = categories.get(category) {
                    let other = &raw.bins[other];
                    return Err(fail(
                        b.offset,
                        ToadBinProblem::DuplicateCategory {
                            category: category.to_owned(),
                            bin: b.label.clone(),
                            other: other.label.clone(),
                            other_line: line_of(text, other.offset),
                        },
                    ));
                }
                categories.insert(category.to_owned(), i);
            }
        }
        Kind::Categorical {
            categories,
            else_bin,
        }
    };
    let points = raw.bins.iter().map(|b| b.points);
    let lowest_points = points.clone().fold(f64::INFINITY, f64::min);
    let best_points = points.fold(f64::NEG_INFINITY, f64::max);
    Ok(ToadVariable {
        name: raw.name,
        bins: raw
            .bins
            .into_iter()
            .map(|b| ToadBin {
                line: line_of(text, b.offset),
                label: b.label,
                points: b.points,
            })
            .collect(),
        kind,
        lowest_points,
        best_points,
    })
}

/// `[lo ~ hi)` as toad's pattern reads it: `lo` is `-inf` or a number, `hi` is `inf` or a
/// number, the separator `~` or `-` with optional whitespace around it. Numbers are
/// `-?\d+(\.\d+)?`, plus an exponent (which toad writes but cannot read back).
fn parse_interval(label: &str) -> Result<(f64, f64), String> {
    let inner = label
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(')'))
        .ok_or_else(|| "it does not start with `[` and end with `)`".to_owned())?;
    let (lo, rest) = if let Some(rest) = inner.strip_prefix("-inf") {
        (f64::NEG_INFINITY, rest)
    } else {
        number(inner).ok_or_else(|| "its lower bound is not a number or -inf".to_owned())?
    };
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix(['~', '-'])
        .ok_or_else(|| "no `~` between its bounds".to_owned())?
        .trim_start();
    let hi = if rest == "inf" {
        f64::INFINITY
    } else {
        match number(rest) {
            Some((hi, "")) => hi,
            _ => return Err("its upper bound is not a number or inf".to_owned()),
        }
    };
    Ok((lo, hi))
}

/// A leading `-?\d+(\.\d+)?([eE][+-]?\d+)?` and what follows it.
fn number(s: &str) -> Option<(f64, &str)> {
    let b = s.as_bytes();
    let digits = |mut i: usize| {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        (i > start).then_some(i)
    };
    let mut i = usize::from(b.first() == Some(&b'-'));
    i = digits(i)?;
    if b.get(i) == Some(&b'.')
        && let Some(j) = digits(i + 1)
    {
        i = j;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if let Some(k) = digits(j) {
            i = k;
        }
    }
    Some((s[..i].parse().ok()?, &s[i..]))
}

/// A JSON reader for toad cards: an object of objects of numbers. Not serde_json, because
/// the order of keys changes scores (serde_json's `Value` sorts them unless a workspace-wide
/// feature is on) and because points must be parsed exactly as Python parses them (serde_json
/// rounds some long decimals differently unless another workspace-wide feature is on).
/// The logistic module reads its models with it too.
pub(crate) struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Parser { text, pos: 0 }
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> ToadCardError {
        let before = &self.text[..self.pos.min(self.text.len())];
        let line = 1 + before.matches('\n').count() as u64;
        let column = 1 + before
            .rsplit('\n')
            .next()
            .map_or(0, |l| l.chars().count() as u64);
        ToadCardError::Json {
            line,
            column,
            message: message.into(),
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    pub(crate) fn found(&self) -> String {
        match self.text[self.pos..].chars().next() {
            None => "the end of the file".to_owned(),
            Some(c) => format!("`{c}`"),
        }
    }

    pub(crate) fn expect(&mut self, c: u8, what: &str) -> Result<(), ToadCardError> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected {what}, found {}", self.found())))
        }
    }

    /// `{ "k": item, … }` with `item` read by `f`; refuses repeated keys.
    pub(crate) fn object<T>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&mut Self, &str, usize) -> Result<T, ToadCardError>,
    ) -> Result<Vec<T>, ToadCardError> {
        self.expect(b'{', what)?;
        let mut seen: HashMap<String, u64> = HashMap::new();
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(items);
        }
        loop {
            self.ws();
            let offset = self.pos;
            let key = self.string()?;
            let line = line_of(self.text, offset);
            if let Some(first) = seen.insert(key.clone(), line) {
                self.pos = offset;
                return Err(self.error(format!(
                    "key `{key}` repeated (first on line {first}); Python would keep only the last"
                )));
            }
            self.expect(b':', "`:`")?;
            self.ws();
            items.push(f(self, &key, offset)?);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => {
                    return Err(self.error(format!("expected `,` or `}}`, found {}", self.found())));
                }
            }
        }
    }

    fn card(mut self) -> Result<Vec<RawVariable>, ToadCardError> {
        let variables = self.object(
            "a toad card: a JSON object of variables",
            |p, name, offset| {
                let bins = p.object(
                    &format!("the bins of `{name}` as an object"),
                    |p, label, offset| {
                        let (points_text, points) = p.points(name, label)?;
                        Ok(RawBin {
                            label: label.to_owned(),
                            points_text,
                            points,
                            offset,
                        })
                    },
                )?;
                Ok(RawVariable {
                    name: name.to_owned(),
                    offset,
                    bins,
                })
            },
        )?;
        self.ws();
        if self.pos < self.text.len() {
            return Err(self.error(format!("unexpected {} after the card", self.found())));
        }
        Ok(variables)
    }

    /// A JSON number, or Python's `NaN` / `Infinity` / `-Infinity` (refused later, by name).
    fn points(&mut self, variable: &str, bin: &str) -> Result<(String, f64), ToadCardError> {
        self.number().ok_or_else(|| {
            self.error(format!(
                "variable `{variable}`, bin `{bin}`: expected its points as a number, found {}",
                self.found()
            ))
        })
    }

    /// A JSON number as its text and the double Python's `float()` reads from it (correctly
    /// rounded), or Python's `NaN` / `Infinity` / `-Infinity`; `None`, not moving, if there
    /// is none here.
    pub(crate) fn number(&mut self) -> Option<(String, f64)> {
        let rest = &self.text[self.pos..];
        for (token, value) in [
            ("NaN", f64::NAN),
            ("Infinity", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
        ] {
            if rest.starts_with(token) {
                self.pos += token.len();
                return Some((token.to_owned(), value));
            }
        }
        let b = rest.as_bytes();
        let mut i = usize::from(b.first() == Some(&b'-'));
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_ok = i > int_start && !(b[int_start] == b'0' && i - int_start > 1);
        let mut ok = int_ok;
        if ok && b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = start;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            ok = i > start;
        }
        if ok && matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            ok = i > start;
        }
        match (ok, rest[..i].parse::<f64>()) {
            (true, Ok(v)) => {
                self.pos += i;
                Some((rest[..i].to_owned(), v))
            }
            _ => None,
        }
    }

    /// A JSON string, as Python's `json.load` reads it (strict: no raw control characters).
    pub(crate) fn string(&mut self) -> Result<String, ToadCardError> {
        if self.peek() != Some(b'"') {
            return Err(self.error(format!("expected a quoted key, found {}", self.found())));
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.text[self.pos..].chars().next() else {
                return Err(self.error("unterminated string"));
            };
            match c {
                '"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                '\\' => {
                    self.pos += 1;
                    let esc = self
                        .peek()
                        .ok_or_else(|| self.error("unterminated string"))?;
                    self.pos += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi)
                                && self.text[self.pos..].starts_with("\\u")
                            {
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.error("unpaired surrogate in \\u escape"));
                                }
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                            } else {
                                char::from_u32(hi)
                            };
                            out.push(
                                c.ok_or_else(|| self.error("unpaired surrogate in \\u escape"))?,
                            );
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.error(format!("invalid escape \\{}", self.found())));
                        }
                    }
                }
                c if (c as u32) < 0x20 => {
                    return Err(self.error("control character inside a string"));
                }
                c => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, ToadCardError> {
        let digits = self.text.get(self.pos..self.pos + 4).unwrap_or("");
        if digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            self.pos += 4;
            u32::from_str_radix(digits, 16).map_err(|_| self.error("bad \\u escape"))
        } else {
            Err(self.error("bad \\u escape: expected 4 hex digits"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_as_toad_reads_them() {
        assert_eq!(
            parse_interval("[-inf ~ 24.0)"),
            Ok((f64::NEG_INFINITY, 24.0))
        );
        assert_eq!(parse_interval("[9 ~ 15)"), Ok((9.0, 15.0)));
        assert_eq!(
            parse_interval("[-2314.18 ~ -17.78)"),
            Ok((-2314.18, -17.78))
        );
        assert_eq!(parse_interval("[1e-05~inf)"), Ok((1e-5, f64::INFINITY)));
        assert_eq!(parse_interval("[-inf--5.5)"), Ok((f64::NEG_INFINITY, -5.5)));
        for bad in [
            "nan",
            "[1 ~ 2]",
            "[a ~ 2)",
            "[1 ~ 2)x",
            "[inf ~ 2)",
            "[1 ~ -inf)",
            "[1 2)",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn strings_and_numbers() {
        let card = ToadCard::from_json(
            "{\"a\\u00e9\\ud83d\\ude00\": {\"[-inf ~ 1)\": -1.5e2, \"[1 ~ inf)\": 0}}",
        )
        .expect("card");
        let v = &card.variables()[0];
        assert_eq!(v.name(), "a\u{e9}\u{1f600}");
        assert_eq!(v.bins()[0].points(), -150.0);
        for bad in [
            "{\"a\": {\"x\": 01}}",
            "{\"a\": {\"x\": 1.}}",
            "{\"a\": {\"x\": .5}}",
        ] {
            assert!(ToadCard::from_json(bad).is_err(), "{bad}");
        }
    }
}
