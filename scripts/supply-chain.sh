#!/usr/bin/env bash
# Supply-chain checks with cargo-deny and the policy in deny.toml: licences, banned crates and
# sources always; RustSec advisories against the advisory database, fetched from GitHub, or
# from the git checkout named by ADVISORY_DB when set (for machines without GitHub access).
# cargo-deny is installed into the build cache on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="${CARGO_TOOLS_DIR:-/var/cache/credit-risk-ci/tools}"
if ! command -v cargo-deny >/dev/null 2>&1 && [ ! -x "$tools/bin/cargo-deny" ]; then
  echo "Installing cargo-deny into $tools (once)…"
  cargo install --quiet --locked --root "$tools" cargo-deny@0.20.2
fi
export PATH="$PATH:$tools/bin"

cargo deny check licenses bans sources

if [ -n "${ADVISORY_DB:-}" ]; then
  # cargo-deny keeps the default database under its db-path by a hash of the database's URL.
  dbs=$(mktemp -d)
  trap 'rm -rf "$dbs"' EXIT
  git clone -q "$ADVISORY_DB" "$dbs/advisory-db-3157b0e258782691"
  echo "Advisories from $ADVISORY_DB (as of $(git -C "$dbs/advisory-db-3157b0e258782691" log -1 --format=%cs))"
  sed "s|^\[advisories\]|[advisories]\ndb-path = \"$dbs\"|" deny.toml >"$dbs/deny.toml"
  cargo deny --offline --config "$dbs/deny.toml" check advisories
elif git ls-remote -q https://github.com/RustSec/advisory-db HEAD >/dev/null 2>&1; then
  cargo deny check advisories
else
  echo "ADVISORIES NOT CHECKED: github.com (the RustSec advisory database) is unreachable from" \
    "this machine; set ADVISORY_DB to a checkout of github.com/RustSec/advisory-db." >&2
fi
