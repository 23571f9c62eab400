//! Rows per second of the model engines. ONNX cases: 50- and 200-tree LightGBM and XGBoost
//! ensembles and a logistic regression, one row at a time and in batches of 1000, on the ORT
//! parity fixtures (`tests/fixtures/onnx`). Add a model by adding a `bench_*` function to
//! `criterion_group!`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use puhui_engines::onnx::OnnxModel;

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

criterion_group!(benches, bench_onnx);
criterion_main!(benches);
