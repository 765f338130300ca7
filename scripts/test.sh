#!/usr/bin/env bash
# Runs every test of the workspace. Installs missing system packages first (see
# ensure-packages.sh). Tests start their own embedded Kafka clusters, and their own private
# PostgreSQL unless TEST_DATABASE_URL names a server to create scratch databases on.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-packages.sh
cargo test --workspace --locked "$@"
