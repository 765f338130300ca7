#!/usr/bin/env bash
# The book's SQL is checked against its schema when it compiles: each query's
# description is kept in book/.sqlx, which builds read (no database needed).
# This script rebuilds that data from the migrations; with --check it fails instead when the
# committed data differs (a query or a migration changed without it).
# Needs a PostgreSQL server to create a scratch database on: TEST_DATABASE_URL, as the tests
# use (e.g. postgres://postgres@127.0.0.1:5432/postgres).
# Usage: scripts/sqlx-prepare.sh [--check]
set -euo pipefail
cd "$(dirname "$0")/.."
check=false
if [ "${1:-}" = "--check" ]; then
  check=true
fi
server=${TEST_DATABASE_URL:-}
if [ -z "$server" ]; then
  echo "Set TEST_DATABASE_URL to a PostgreSQL server where a scratch database may be created." >&2
  exit 2
fi
db="sqlx_prepare_$$"
out=$(mktemp -d /tmp/credit-risk-sqlx.XXXXXX)
cleanup() {
  psql "$server" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap cleanup EXIT
psql "$server" -qc "CREATE DATABASE $db"
url="${server%/*}/$db"
for migration in book/migrations/*.sql; do
  psql "$url" -q -v ON_ERROR_STOP=1 -f "$migration" >/dev/null
done
# Expand the query macros again, online, saving each query's description.
touch book/src/lib.rs
SQLX_OFFLINE=false DATABASE_URL="$url" SQLX_OFFLINE_DIR="$out" \
  cargo check --locked --quiet -p book
if $check; then
  if ! diff -r book/.sqlx "$out" >/dev/null; then
    diff -r book/.sqlx "$out" | head -n 40 >&2 || true
    echo "book/.sqlx is out of date: run scripts/sqlx-prepare.sh and commit it." >&2
    exit 1
  fi
  echo "book/.sqlx matches the queries and the migrations."
else
  rm -rf book/.sqlx
  mkdir -p book/.sqlx
  cp "$out"/query-*.json book/.sqlx/
  echo "Wrote $(ls book/.sqlx | wc -l) query descriptions to book/.sqlx."
fi
