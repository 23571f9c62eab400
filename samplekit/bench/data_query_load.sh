#!/usr/bin/env bash
# Data-query speed (issue 7): the single-firm query
#   GET /v1/firms/{uscc}/interfaces/{interface}?purpose=pre_loan
# on the release local runner, under an open-loop constant-rate load from `samplekit load`
# over loopback. Target: p99 under 5 ms at 1,000 requests/s for 60 s.
#
#   samplekit/bench/data_query_load.sh            # RPS=1000 SECONDS_=60 INTERFACE=basic_registration
#
# Builds the runner and samplekit in release, starts the runner on a temporary data dir with a
# high daily quota, seeds the firm's authorization and profile straight into the runner's
# SQLite table, mints a loan_officer token, runs the load and stops the runner.
set -euo pipefail

RPS="${RPS:-1000}"
SECONDS_="${SECONDS_:-60}"
INTERFACE="${INTERFACE:-basic_registration}"
USCC="${USCC:-91350100M000100Y43}"
BANK="${BANK:-nbcb}"

cd "$(dirname "$0")/../.."
cargo build --release -p puhui-runner -p puhui-samplekit

work="$(mktemp -d -t puhui-dq-load.XXXXXX)"
runner_pid=""
cleanup() {
    if [[ -n "$runner_pid" ]]; then kill "$runner_pid" 2>/dev/null || true; wait "$runner_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

export PUHUI_DEV_KEYS="$work/dev-keys"
# Minting first creates the development keys the runner then verifies against.
TOKEN="$(target/release/samplekit token --bank "$BANK" --roles loan_officer --ttl 7200)"

PUHUI_ADDR=127.0.0.1:0 \
PUHUI_DATA_DIR="$work/data" \
PUHUI_DATA_QUERY_DAILY_QUOTA=100000000 \
    target/release/puhui-local >"$work/runner.out" 2>"$work/runner.err" &
runner_pid=$!

base=""
for _ in $(seq 1 300); do
    base="$(sed -n 's/^PUHUI_READY //p' "$work/runner.out" | head -n1)"
    [[ -n "$base" ]] && break
    kill -0 "$runner_pid" 2>/dev/null || { cat "$work/runner.err" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$base" ]] || { echo "runner did not come up" >&2; exit 1; }
echo "runner (release) at $base, data $work/data"

target/release/samplekit load \
    --seed-data-dir "$work/data" --seed-uscc "$USCC" --seed-bank "$BANK" \
    --url "$base/v1/firms/$USCC/interfaces/$INTERFACE?purpose=pre_loan" \
    --token "$TOKEN" --rps "$RPS" --seconds "$SECONDS_"

echo "runner log lines: $(wc -l <"$work/runner.out") stdout, $(wc -l <"$work/runner.err") stderr"
ls -l "$work/data" | sed -n '/puhui.db/p'
