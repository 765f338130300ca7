#!/usr/bin/env bash
# Checks the running API against its OpenAPI document with schemathesis (PyPI): starts
# `credit-risk demo` on embedded infrastructure in a temporary directory, waits for it to go
# live, then sends generated requests (examples, coverage and fuzzing phases) with an admin key
# and fails on any 5xx or any response that the document does not describe.
# Usage: scripts/api-conformance.sh [path/to/credit-risk]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=${1:-${CARGO_TARGET_DIR:-$root/target}/debug/credit-risk}
if [ ! -x "$bin" ]; then
  cargo build --locked --bin credit-risk
fi
bin=$(realpath "$bin")
if ! command -v schemathesis >/dev/null 2>&1; then
  python3 -m pip install --quiet 'schemathesis==4.32.5'
fi
work=$(mktemp -d /tmp/credit-risk-conformance.XXXXXX)
chmod 755 "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Rate limits are tested elsewhere; here every generated request should reach its handler.
(cd "$work" && CREDIT__EDGE__RATE_LIMIT_PER_SEC=0 exec "$bin" demo --bind "127.0.0.1:$port" --applications-per-month 300 \
  --days-per-minute 30 --retrain-every-days 0 >"$work/demo.log" 2>"$work/demo.err") &
pid=$!
cleanup() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 600); do
  grep -q '^Live:' "$work/demo.log" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/demo.log" "$work/demo.err" >&2; exit 1; }
  sleep 1
done
grep -q '^Live:' "$work/demo.log" || { echo "the demo did not go live" >&2; exit 1; }
admin=$(awk '/API keys:/ {print $NF}' "$work/demo.log")
report="$work/report"
mkdir -p "$report"
set +e
schemathesis run "http://127.0.0.1:$port/openapi.json" \
  --header "X-API-Key: $admin" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples 60 \
  --seed 42 \
  --workers 2 \
  --report ndjson --report-dir "$report" 2>&1 | tee "$work/schemathesis.log"
status=${PIPESTATUS[0]}
set -e
cases=$(grep -oE '[0-9]+ generated' "$work/schemathesis.log" | tail -n 1 | grep -oE '[0-9]+' || echo 0)
echo "schemathesis generated $cases test cases"
if [ "$status" -ne 0 ]; then
  exit "$status"
fi
if [ "${cases:-0}" -lt 1000 ]; then
  echo "fewer than 1,000 requests were generated" >&2
  exit 1
fi
