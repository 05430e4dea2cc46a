#!/usr/bin/env bash
# Runs every test: unit, integration and property tests (cargo test), the official-style suite in
# insight_testsuite/ against run.sh, then the spec check (tools/spec_check/check.py: the release
# binary against an independent Python model of docs/spec.md on random and edge-case logs; needs
# python3). Exits non-zero if anything fails. SPEC_CHECK_CASES sets the random cases (2000) and
# SPEC_CHECK_SEED their first seed (1, so that every run checks the same cases; any other seed
# checks others).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v python3 >/dev/null 2>&1; then
  echo "tools/test.sh: python3 (3.9 or later) is required for the spec check, tools/spec_check/;" \
    "install it (e.g. apt-get install python3) and run again" >&2
  exit 1
fi
cargo test --locked "$@"
cargo build --release --locked --bin anomaly-detect
(cd insight_testsuite && bash run_tests.sh)
python3 tools/spec_check/check.py --cases "${SPEC_CHECK_CASES:-2000}" --seed "${SPEC_CHECK_SEED:-1}"
