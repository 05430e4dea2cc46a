#!/usr/bin/env bash
# Flags anomalous purchases of the log_input/ beside this script into the log_output/ beside it,
# whatever the working folder. A copy of it works anywhere below the project: it walks up to the
# project's Cargo.toml and builds (or reuses) the release binary there. Extra arguments go to
# anomaly-detect (e.g. --threads 1). On a failure found here, nothing is created.
# ANOMALY_DETECT_BINARY, when set, names the program to run instead, built by the caller
# (tools/test.sh runs the insight suite with the binary `cargo test` built).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

for log in batch_log.json stream_log.json; do
  if [ ! -e "./log_input/$log" ]; then
    echo "run.sh: $here/log_input/$log is missing (run.sh reads the log_input/ folder beside it)" >&2
    exit 2
  fi
done

project="$here"
while [ ! -f "$project/Cargo.toml" ]; do
  if [ "$project" = "/" ]; then
    echo "run.sh: no Cargo.toml found above $here" >&2
    exit 2
  fi
  project="$(dirname "$project")"
done

export PATH="$HOME/.cargo/bin:$PATH"
binary="$project/target/release/anomaly-detect"
if [ -n "${ANOMALY_DETECT_BINARY:-}" ]; then
  binary="$ANOMALY_DETECT_BINARY"
  if [ ! -x "$binary" ]; then
    echo "run.sh: ANOMALY_DETECT_BINARY=$binary is not an executable file" >&2
    exit 2
  fi
elif command -v cargo >/dev/null 2>&1; then
  if [ ! -x "$binary" ]; then
    echo "run.sh: building anomaly-detect in $project/target/release (once; about 2 minutes)" >&2
  elif [ -n "$(find "$project/src" "$project/Cargo.toml" "$project/Cargo.lock" -newer "$binary" -print -quit)" ]; then
    echo "run.sh: the sources changed since the last build; rebuilding anomaly-detect (up to 2 minutes)" >&2
  fi
  # cargo rebuilds only when the sources changed since the last build, with Cargo.lock's versions.
  cargo build --release --locked --quiet --bin anomaly-detect --manifest-path "$project/Cargo.toml" >&2
elif [ ! -x "$binary" ]; then
  echo "run.sh: cargo is not installed and $binary is missing" >&2
  exit 2
fi

mkdir -p ./log_output
exec "$binary" ./log_input/batch_log.json ./log_input/stream_log.json ./log_output/flagged_purchases.json "$@"
