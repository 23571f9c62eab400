//! `samplekit score`: the parity tool for data scientists. Scores a CSV of rows offline with
//! exactly the engines the platform runs, so a model's offline scores can be compared with
//! what Puhui will decide, row by row.
//!
//! Input: a CSV whose optional first column `id` or `row_id` is passed through. Scorecards and
//! logistic models read their variables by column name (other columns are ignored; a variable
//! without a column is missing), each column typed as pandas types it when reading the file;
//! an ONNX model with one input of width N reads exactly the N columns after the id, in model
//! order. Output: one row per input row, in input order — the id, `<variable>_points` for each
//! scorecard variable, `score`, `pd`, `grade`, `reasons` and `unmatched` (the variables whose
//! value matched no bin, `;`-separated).

use std::time::Instant;

use puhui_engines::decision::DecisionPolicy;
use puhui_engines::model::{Model, ModelFormat};
use puhui_engines::scorecard::{Row, Value, pandas_column, python_float_repr};

/// What a run did, for the summary line.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The model's format.
    pub format: ModelFormat,
    /// Rows scored.
    pub rows: usize,
    /// Rows with at least one value that matched no bin.
    pub unmatched_rows: usize,
    /// Model variables the input has no column for (scored as missing).
    pub absent_variables: Vec<String>,
    /// Mean score, when the model gives scores.
    pub mean_score: Option<f64>,
    /// Mean PD, when there are PDs.
    pub mean_pd: Option<f64>,
    /// Seconds spent scoring (parsing excluded).
    pub seconds: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} model: {} rows scored in {:.3} s ({:.0} rows/s); {} with a value that matched no bin",
            self.format,
            self.rows,
            self.seconds,
            self.rows as f64 / self.seconds.max(1e-9),
            self.unmatched_rows
        )?;
        if let Some(s) = self.mean_score {
            write!(f, "; mean score {s:.2}")?;
        }
        if let Some(p) = self.mean_pd {
            write!(f, "; mean PD {p:.4}")?;
        }
        if !self.absent_variables.is_empty() {
            write!(
                f,
                "; no column for {} (scored as missing)",
                self.absent_variables.join(", ")
            )?;
        }
        Ok(())
    }
}

fn number(v: Option<f64>) -> String {
    v.map(python_float_repr).unwrap_or_default()
}

/// Scores `input` (CSV text) with the model file `model` and, when given, a decision policy.
/// Returns the output CSV and the summary.
pub fn score_csv(
    model: &[u8],
    policy: Option<&serde_json::Value>,
    input: &str,
) -> Result<(String, Summary), String> {
    let model = Model::detect(model).map_err(|e| format!("model: {e}"))?;
    let policy = match policy {
        Some(p) => Some(DecisionPolicy::from_json(p).map_err(|errors| {
            let shown: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            format!("policy: {}", shown.join("; "))
        })?),
        None => None,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(input.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| format!("input: {e}"))?
        .iter()
        .map(str::to_owned)
        .collect();
    let records: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("input: {e}"))?;
    let has_id = header.first().is_some_and(|h| h == "id" || h == "row_id");
    let variables: Vec<String> = model.variables().iter().map(|v| v.to_string()).collect();
    let mut rows = vec![Row::new(); records.len()];
    let mut absent = Vec::new();
    if model.format() == ModelFormat::Onnx {
        // Positional: the N columns after the id, in model order.
        let features = &header[usize::from(has_id)..];
        if features.len() != variables.len() {
            return Err(format!(
                "input: the ONNX model reads {} features, the input has {} columns after the id",
                variables.len(),
                features.len()
            ));
        }
        for (r, record) in records.iter().enumerate() {
            for (i, variable) in variables.iter().enumerate() {
                let cell = record.get(i + usize::from(has_id)).unwrap_or("").trim();
                let value = match cell {
                    "" | "nan" | "NaN" | "NA" => Value::Missing,
                    text => Value::Number(text.parse::<f64>().map_err(|_| {
                        format!(
                            "input row {}: column {} is not a number: {text:?}",
                            r + 1,
                            features[i]
                        )
                    })?),
                };
                rows[r].set(variable.clone(), value);
            }
        }
    } else {
        for variable in &variables {
            let Some(c) = header.iter().position(|h| h == variable) else {
                absent.push(variable.clone());
                continue;
            };
            let values = pandas_column(records.iter().map(|r| r.get(c).unwrap_or("")));
            for (row, value) in rows.iter_mut().zip(values) {
                row.set(variable.clone(), value);
            }
        }
    }
    let started = Instant::now();
    let outputs: Vec<_> = rows.iter().map(|r| model.score(r)).collect();
    let decisions: Vec<_> = match &policy {
        Some(p) => outputs
            .iter()
            .map(|o| Some(p.decide(o, &serde_json::Map::new())))
            .collect(),
        None => vec![None; outputs.len()],
    };
    let seconds = started.elapsed().as_secs_f64();

    let per_variable = model.has_score();
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut columns: Vec<String> = Vec::new();
    if has_id {
        columns.push(header[0].clone());
    }
    if per_variable {
        columns.extend(variables.iter().map(|v| format!("{v}_points")));
    }
    columns.extend(["score", "pd", "grade", "reasons", "unmatched"].map(String::from));
    out.write_record(&columns).map_err(|e| e.to_string())?;
    let (mut scores, mut pds, mut unmatched_rows) = (Vec::new(), Vec::new(), 0);
    for ((record, output), decision) in records.iter().zip(&outputs).zip(&decisions) {
        let mut line: Vec<String> = Vec::with_capacity(columns.len());
        if has_id {
            line.push(record.get(0).unwrap_or("").to_owned());
        }
        if per_variable {
            line.extend(output.variables.iter().map(|v| number(v.value)));
        }
        let score = output.score.or(decision.as_ref().and_then(|d| d.score));
        let pd = output.pd.or(decision.as_ref().and_then(|d| d.pd));
        scores.extend(score);
        pds.extend(pd);
        line.push(number(score));
        line.push(number(pd));
        line.push(
            decision
                .as_ref()
                .and_then(|d| d.grade.clone())
                .unwrap_or_default(),
        );
        line.push(match decision {
            Some(d) => d
                .reasons
                .iter()
                .map(|r| r.code.as_str())
                .collect::<Vec<_>>()
                .join(";"),
            // Without a policy: the variables that cost most against their best bin.
            None => output
                .costliest()
                .iter()
                .take(4)
                .map(|v| v.variable.as_str())
                .collect::<Vec<_>>()
                .join(";"),
        });
        let unmatched: Vec<&str> = output.unmatched().collect();
        unmatched_rows += usize::from(!unmatched.is_empty());
        line.push(unmatched.join(";"));
        out.write_record(&line).map_err(|e| e.to_string())?;
    }
    let text = String::from_utf8(out.into_inner().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    Ok((
        text,
        Summary {
            format: model.format(),
            rows: records.len(),
            unmatched_rows,
            absent_variables: absent,
            mean_score: mean(&scores),
            mean_pd: mean(&pds),
            seconds,
        },
    ))
}
