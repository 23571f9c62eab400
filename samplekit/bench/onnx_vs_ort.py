"""Rows per second: Puhui's native ONNX evaluation (puhui_engines::onnx) beside ONNX Runtime,
single-threaded, on the same model files and rows (shared/engines/tests/fixtures/onnx), one row
per call and 1000 rows per call.

ORT is timed through its Python API (`InferenceSession.run`, intra/inter op threads = 1), so its
batch-1 figure includes the Python call overhead a Python service pays; Puhui is timed by the
release-built example `onnx_throughput`, which calls `OnnxModel::predict` / `predict_batch`.

Run from the repository root (a throwaway virtualenv outside the repository, see
samplekit/fixtures/onnx/README.md):

    cargo build --release -p puhui-engines --example onnx_throughput
    /tmp/onnxvenv/bin/python samplekit/bench/onnx_vs_ort.py [--seconds 2]
"""

import argparse
import csv
import json
import os
import subprocess
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(ROOT, "shared", "engines", "tests", "fixtures", "onnx")
EXAMPLE = os.path.join(ROOT, "target", "release", "examples", "onnx_throughput")
MODELS = ["lgb50", "lgb200", "xgb50", "xgb200", "lr"]
BATCHES = [1, 1000]


def rows(n):
    with open(os.path.join(FIXTURES, "rows.csv")) as f:
        base = [[np.float32(v) for v in r[1:]] for r in list(csv.reader(f))[1:]]
    return np.array([base[i % len(base)] for i in range(n)], dtype=np.float32)


def ort_rows_per_s(model, batch, seconds):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # the exporters declare label shape [1]; ORT warns on every batch
    sess = ort.InferenceSession(os.path.join(FIXTURES, f"{model}.onnx"), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = rows(batch)
    feed = {name: x}
    end = time.perf_counter() + 0.2
    while time.perf_counter() < end:
        sess.run(None, feed)
    calls = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        sess.run(None, feed)
        calls += 1
    return calls * batch / (time.perf_counter() - start)


def puhui_rows_per_s(model, batch, seconds):
    out = subprocess.run(
        [EXAMPLE, os.path.join(FIXTURES, f"{model}.onnx"), os.path.join(FIXTURES, "rows.csv"), str(batch), str(seconds)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)["rows_per_s"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    if not os.path.exists(EXAMPLE):
        raise SystemExit(f"build it first: cargo build --release -p puhui-engines --example onnx_throughput ({EXAMPLE})")
    print(f"onnxruntime {ort.__version__}, single thread; rows/s (higher is better)")
    print("| model | batch | ONNX Runtime rows/s | Puhui rows/s | Puhui / ORT |")
    print("|---|---:|---:|---:|---:|")
    for model in MODELS:
        for batch in BATCHES:
            o = ort_rows_per_s(model, batch, args.seconds)
            p = puhui_rows_per_s(model, batch, args.seconds)
            print(f"| {model} | {batch} | {o:,.0f} | {p:,.0f} | {p / o:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
