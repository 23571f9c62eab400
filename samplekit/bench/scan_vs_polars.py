#!/usr/bin/env python3
"""Backtest speed: `samplekit scan` against Polars and DuckDB on the same snapshot and rules.

Generates (or takes) a synthetic indicator snapshot and a set of random selective rules, then
counts each rule's hits three ways on the same Parquet files, with the same number of threads:
our columnar evaluator (`samplekit scan --counts`, timed as a whole process, reading included),
Polars (lazy scan of the Parquet files, one boolean expression per rule, summed) and DuckDB
(`count_if` per rule over `read_parquet`). It checks that all three agree on every rule's count
and prints the median times and the ratio.

Each json-rules-engine condition is translated for the peers with the evaluator's semantics:
a leaf on a missing (null) value is false, and `not` of such a leaf is true. In Polars a leaf is
`col.is_not_null() & (comparison)`; in SQL `COALESCE(comparison, FALSE)` — without it, SQL's
three-valued logic would make `NOT (x < 1)` null (not counted) where the rule counts it.

Polars and DuckDB are not project dependencies; install them into a throwaway venv outside the
repository:
    python3 -m venv /tmp/benchvenv && /tmp/benchvenv/bin/pip install polars duckdb
    cargo build --release -p puhui-samplekit
    /tmp/benchvenv/bin/python samplekit/bench/scan_vs_polars.py --firms 1380000
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--firms", type=int, default=1_380_000)
    p.add_argument("--rules", type=int, default=100, help="number of random rules")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5, help="timed runs per engine (median reported)")
    p.add_argument("--workdir", default="/tmp/puhui-bench-scan")
    p.add_argument("--snapshot", help="an existing snapshot folder (skips generation)")
    p.add_argument("--rules-file", help="an existing rules.json (skips generation)")
    p.add_argument("--samplekit", default="target/release/samplekit")
    return p.parse_args()


ARGS = parse_args()
# Both peers read their thread count at import / connect time.
os.environ["POLARS_MAX_THREADS"] = str(ARGS.threads)
import duckdb  # noqa: E402
import polars as pl  # noqa: E402


# ---- Polars -----------------------------------------------------------------------------
def pl_leaf(leaf):
    c = pl.col(leaf["fact"])
    op, v = leaf["operator"], leaf["value"]
    cmp = {
        "equal": lambda: c == pl.lit(v),
        "notEqual": lambda: c != pl.lit(v),
        "lessThan": lambda: c < v,
        "lessThanInclusive": lambda: c <= v,
        "greaterThan": lambda: c > v,
        "greaterThanInclusive": lambda: c >= v,
        "in": lambda: c.is_in(v),
        "notIn": lambda: ~c.is_in(v),
    }[op]()
    # Missing → false (Kleene: false & null = false), whatever is_in does with nulls.
    return (c.is_not_null() & cmp).fill_null(False)


def pl_cond(cond):
    if "all" in cond:
        exprs = [pl_cond(c) for c in cond["all"]]
        out = exprs[0]
        for e in exprs[1:]:
            out = out & e
        return out
    if "any" in cond:
        exprs = [pl_cond(c) for c in cond["any"]]
        out = exprs[0]
        for e in exprs[1:]:
            out = out | e
        return out
    if "not" in cond:
        return ~pl_cond(cond["not"])
    return pl_leaf(cond)


def polars_counts(glob, rules):
    exprs = [pl_cond(r["conditions"]).sum().alias(r["id"]) for r in rules]
    row = pl.scan_parquet(glob).select(exprs).collect().row(0, named=True)
    return {k: int(v) for k, v in row.items()}


def polars_read_only(glob):
    return pl.read_parquet(glob).height


# ---- DuckDB -----------------------------------------------------------------------------
def sql_lit(v):
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    if isinstance(v, float):
        return f"CAST({v!r} AS DOUBLE)"
    return str(int(v))


def sql_cond(cond):
    if "all" in cond:
        return "(" + " AND ".join(sql_cond(c) for c in cond["all"]) + ")"
    if "any" in cond:
        return "(" + " OR ".join(sql_cond(c) for c in cond["any"]) + ")"
    if "not" in cond:
        return "(NOT " + sql_cond(cond["not"]) + ")"
    col = '"' + cond["fact"] + '"'
    op, v = cond["operator"], cond["value"]
    ops = {"equal": "=", "notEqual": "<>", "lessThan": "<", "lessThanInclusive": "<=",
           "greaterThan": ">", "greaterThanInclusive": ">="}
    if op in ops:
        cmp = f"{col} {ops[op]} {sql_lit(v)}"
    else:
        items = ", ".join(sql_lit(x) for x in v)
        cmp = f"{col} {'IN' if op == 'in' else 'NOT IN'} ({items})"
    # Missing → false, so that NOT of it is true (plain SQL would give NULL).
    return f"COALESCE({cmp}, FALSE)"


def duckdb_counts(glob, rules):
    con = duckdb.connect()
    con.execute(f"SET threads = {ARGS.threads}")
    cols = ", ".join(f'count_if({sql_cond(r["conditions"])}) AS "{r["id"]}"' for r in rules)
    cur = con.execute(f"SELECT {cols} FROM read_parquet('{glob}')")
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    con.close()
    return {n: int(v) for n, v in zip(names, row)}


# ---- ours ----------------------------------------------------------------------------------
def ours_counts(samplekit, rules_file, snapshot, counts_file):
    subprocess.run(
        [samplekit, "scan", "--rules", rules_file, "--snapshot", snapshot,
         "--counts", counts_file, "--threads", str(ARGS.threads)],
        check=True, stdout=subprocess.DEVNULL,
    )
    return {k: int(v) for k, v in json.loads(Path(counts_file).read_text()).items()}


def timed(fn, runs):
    times, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), result


def main():
    work = Path(ARGS.workdir)
    work.mkdir(parents=True, exist_ok=True)
    sk = ARGS.samplekit
    snapshot = ARGS.snapshot or str(work / f"snapshot-{ARGS.firms}-{ARGS.seed}")
    if not ARGS.snapshot and not (Path(snapshot) / "manifest.json").exists():
        print(f"generating {ARGS.firms} firms into {snapshot} …", flush=True)
        subprocess.run([sk, "snapshot", "--firms", str(ARGS.firms), "--seed", str(ARGS.seed),
                        "--shards", str(ARGS.shards), "--out", snapshot], check=True)
    rules_file = ARGS.rules_file or str(work / f"rules-{ARGS.rules}-{ARGS.seed}.json")
    if not ARGS.rules_file:
        subprocess.run([sk, "rules", "--count", str(ARGS.rules), "--seed", str(ARGS.seed),
                        "--out", rules_file], check=True)
    rules = json.loads(Path(rules_file).read_text())
    glob = str(Path(snapshot) / "*.parquet")
    counts_file = str(work / "counts.json")

    print(f"{len(rules)} rules over {snapshot}, {ARGS.threads} threads, median of {ARGS.runs} runs")
    # One untimed run each so the files are in the page cache for everyone.
    ours_counts(sk, rules_file, snapshot, counts_file)
    polars_read_only(glob)

    ours = timed(lambda: ours_counts(sk, rules_file, snapshot, counts_file), ARGS.runs)
    pol = timed(lambda: polars_counts(glob, rules), ARGS.runs)
    pol_read = timed(lambda: polars_read_only(glob), ARGS.runs)
    duck = timed(lambda: duckdb_counts(glob, rules), max(1, min(ARGS.runs, 3)))

    ids = [r["id"] for r in rules]
    bad = [(i, ours[2].get(i), pol[2].get(i), duck[2].get(i)) for i in ids
           if not (ours[2].get(i) == pol[2].get(i) == duck[2].get(i))]
    total_hits = sum(ours[2].values())
    print(f"total hits over all rules: {total_hits:,}; rules with no hit: "
          f"{sum(1 for v in ours[2].values() if v == 0)}")
    print(f"{'engine':<34}{'median s':>10}{'min s':>10}")
    print(f"{'samplekit scan (whole process)':<34}{ours[0]:>10.3f}{ours[1]:>10.3f}")
    print(f"{'Polars ' + pl.__version__:<34}{pol[0]:>10.3f}{pol[1]:>10.3f}")
    print(f"{'  Polars read_parquet alone':<34}{pol_read[0]:>10.3f}{pol_read[1]:>10.3f}")
    print(f"{'DuckDB ' + duckdb.__version__:<34}{duck[0]:>10.3f}{duck[1]:>10.3f}")
    print(f"Polars / samplekit = {pol[0] / ours[0]:.2f}x; DuckDB / samplekit = {duck[0] / ours[0]:.2f}x")
    if bad:
        print(f"DISAGREEMENT on {len(bad)} rules (id, ours, polars, duckdb):", file=sys.stderr)
        for b in bad[:20]:
            print("  ", b, file=sys.stderr)
        sys.exit(1)
    print(f"all three agree on all {len(ids)} counts")


if __name__ == "__main__":
    main()
