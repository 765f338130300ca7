#!/usr/bin/env bash
# Builds and runs the product on embedded defaults (no Kafka or PostgreSQL to set up).
# Installs missing system packages first (see ensure-packages.sh). Extra arguments replace the
# default command, e.g. `scripts/run.sh config`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-packages.sh
if [ $# -eq 0 ]; then
  set -- demo
fi
cargo build --release --locked --bin credit-risk
exec target/release/credit-risk "$@"
