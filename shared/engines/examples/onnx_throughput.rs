//! Prints, as one JSON object, how many rows per second `OnnxModel` scores for a model file,
//! rows CSV (an `id` column then the features) and batch size; used by
//! `samplekit/bench/onnx_vs_ort.py` to set Puhui beside ONNX Runtime.
//!
//! `cargo run --release -p puhui-engines --example onnx_throughput -- MODEL.onnx ROWS.csv BATCH [SECONDS]`

use std::hint::black_box;
use std::time::{Duration, Instant};

use puhui_engines::onnx::OnnxModel;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: onnx_throughput MODEL.onnx ROWS.csv BATCH [SECONDS]");
        std::process::exit(2);
    }
    let bytes = std::fs::read(&args[1]).expect("model file");
    let model = OnnxModel::from_bytes(&bytes).unwrap_or_else(|e| panic!("{}: {e}", args[1]));
    let batch: usize = args[3].parse().expect("batch size");
    let seconds: f64 = args.get(4).map_or(2.0, |s| s.parse().expect("seconds"));
    let width = model.input_width();
    let text = std::fs::read_to_string(&args[2]).expect("rows file");
    let base: Vec<f32> = text
        .lines()
        .skip(1)
        .flat_map(|l| {
            l.split(',')
                .skip(1)
                .map(|v| v.parse::<f32>().expect("number"))
        })
        .collect();
    let rows: Vec<f32> = base.iter().copied().cycle().take(batch * width).collect();
    let mut out = Vec::with_capacity(batch);
    let run = |out: &mut Vec<_>| {
        out.clear();
        if batch == 1 {
            out.push(model.predict(black_box(&rows)));
        } else {
            model.predict_batch(black_box(&rows), out);
        }
        black_box(&*out);
    };
    // warm up, then time whole calls until the budget is spent
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        run(&mut out);
    }
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        run(&mut out);
        calls += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rows_per_s = (calls as f64 * batch as f64) / elapsed;
    println!(
        "{{\"model\": {:?}, \"batch\": {batch}, \"trees\": {}, \"calls\": {calls}, \"seconds\": {elapsed:.3}, \"rows_per_s\": {rows_per_s:.1}}}",
        args[1],
        model.tree_count()
    );
}
