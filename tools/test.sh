#!/usr/bin/env bash
# Runs every test: unit, integration, doc and property tests (cargo test), the official-style suite
# in insight_testsuite/ against run.sh, then the spec check (tools/spec_check/check.py: the binary
# against an independent Python model of docs/spec.md on random and edge-case logs; needs
# python3). The insight suite and the spec check run the binary that cargo test built (the dev
# profile, debug assertions on), through run.sh's ANOMALY_DETECT_BINARY: nothing is built twice.
# Exits non-zero if anything fails, and ends with one line `N passed, M failed` counting
# the cargo tests, the insight suite's tests and the spec check's cases. SPEC_CHECK_CASES sets the
# random cases (2000) and SPEC_CHECK_SEED their first seed (1, so that every run checks the same
# cases; any other seed checks others). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v python3 >/dev/null 2>&1; then
  echo "tools/test.sh: python3 (3.9 or later) is required for the spec check, tools/spec_check/;" \
    "install it (e.g. apt-get install python3) and run again" >&2
  exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0
failed=0
closing() { echo "${passed} passed, ${failed} failed"; }

# cargo test: the sum of every test binary's `test result:` line.
set +e
cargo test --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
read -r p f < <(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$log" |
  awk '{p += $1; f += $2} END {print p + 0, f + 0}')
passed=$((passed + p))
failed=$((failed + f))
if [ "$status" -ne 0 ]; then
  [ "$f" -gt 0 ] || failed=$((failed + 1))  # a build failure counts as one
  closing
  exit "$status"
fi

# The binary built for the integration tests, as cargo names it (cargo test with nothing to build
# again lists its artifacts); a plain build when the arguments left it out (`--lib`).
bin_of() {
  python3 -c '
import json, sys
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    message = json.loads(line)
    target = message.get("target") or {}
    if (message.get("reason") == "compiler-artifact" and target.get("name") == "anomaly-detect"
            and "bin" in target.get("kind", []) and not message["profile"]["test"]):
        print(message["executable"])'
}
binary=$(cargo test --locked --no-run --message-format=json-render-diagnostics "$@" 2>/dev/null |
  bin_of | tail -n 1) || binary=""
if [ -z "$binary" ]; then
  binary=$(cargo build --locked --bin anomaly-detect --message-format=json-render-diagnostics |
    bin_of | tail -n 1) || binary=""
fi
if [ -z "$binary" ]; then
  echo "tools/test.sh: cargo build --bin anomaly-detect failed" >&2
  failed=$((failed + 1))
  closing
  exit 1
fi

# The insight suite: `[DATE] X of Y tests passed`.
set +e
(cd insight_testsuite && ANOMALY_DETECT_BINARY="$binary" bash run_tests.sh) 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
read -r p y < <(sed -n 's/.* \([0-9]*\) of \([0-9]*\) tests passed$/\1 \2/p' "$log" | tail -n 1)
passed=$((passed + ${p:-0}))
failed=$((failed + ${y:-1} - ${p:-0}))
if [ "$status" -ne 0 ]; then
  closing
  exit "$status"
fi

# The spec check: `spec check: N cases in S s, M mismatching; ...`.
set +e
python3 tools/spec_check/check.py --bin "$binary" --cases "${SPEC_CHECK_CASES:-2000}" --seed "${SPEC_CHECK_SEED:-1}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
read -r n m < <(sed -n 's/^spec check: \([0-9]*\) cases in .* s, \([0-9]*\) mismatching.*/\1 \2/p' "$log" | tail -n 1)
passed=$((passed + ${n:-0} - ${m:-0}))
failed=$((failed + ${m:-0}))
[ "$status" -eq 0 ] || [ "${m:-0}" -gt 0 ] || failed=$((failed + 1))
closing
exit "$status"
