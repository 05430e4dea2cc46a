#!/usr/bin/env bash
# Runs every test: unit, integration and property tests (cargo test), then the official-style
# suite in insight_testsuite/ against run.sh. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo test --locked "$@"
cargo build --release --locked --bin anomaly-detect
(cd insight_testsuite && bash run_tests.sh)
