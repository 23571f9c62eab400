#!/usr/bin/env bash
# Property-based fuzzing of the HTTP API against its own OpenAPI contract (schemathesis): the
# local runner is started on a free port with a fresh data directory and sample data, then every
# operation is fed generated and mutated requests, authenticated and not. Any 5xx fails the run:
# nothing a caller sends may produce a server error.
set -euo pipefail
venv="${PUHUI_VENV:-.venv}"
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
export PUHUI_DEV_KEYS="$work/keys"
PUHUI_ADDR="127.0.0.1:$port" PUHUI_DATA_DIR="$work/data" RUST_LOG=warn target/debug/puhui-local > "$work/runner.log" 2>&1 &
runner=$!
trap 'kill "$runner" 2>/dev/null || true; wait "$runner" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "$base/v1/catalogue" && break
  sleep 0.1
done
target/debug/samplekit seed --url "$base" > /dev/null
token="$(target/debug/samplekit token --bank nbcb --roles product_admin,loan_officer,risk_admin)"
"$venv/bin/schemathesis" run shared/api/openapi.json --url "$base" \
  --header "Authorization: Bearer $token" --checks not_a_server_error \
  --max-examples "${FUZZ_EXAMPLES:-100}" --seed "${FUZZ_SEED:-2026}" --no-color
if grep -q '"internal error"' "$work/runner.log"; then
  echo "the runner logged an internal error:" >&2
  grep '"internal error"' "$work/runner.log" >&2
  exit 1
fi
