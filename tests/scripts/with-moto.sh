#!/usr/bin/env bash
# Runs a command with a local AWS-API server (moto, serialized) on a free loopback port, exported as
# PUHUI_TEST_AWS_ENDPOINT, and stops the server afterwards whatever the command's outcome.
#   tests/scripts/with-moto.sh cargo test -p puhui-aws
set -euo pipefail
venv="${PUHUI_VENV:-.venv}"
mkdir -p target
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# One request at a time: moto does not isolate concurrent requests (see moto_serialized.py).
"$venv/bin/python" "$(dirname "$0")/moto_serialized.py" 127.0.0.1 "$port" > target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
ready=
deadline=$((SECONDS + 20))
while (( SECONDS < deadline )); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
    ready=1
    break
  fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then
    echo "the moto server exited; see target/moto.log" >&2
    exit 1
  fi
  sleep 0.2
done
if [[ -z "$ready" ]]; then
  echo "the moto server did not answer on 127.0.0.1:$port within 20 s; see target/moto.log" >&2
  exit 1
fi
export PUHUI_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
set +e
"$@"
status=$?
set -e
exit "$status"
