#!/usr/bin/env bash
# Fills fuzz/corpus/{line_parser,whole_run} with seeds from the official test and the project's
# own insight_testsuite tests. Run from anywhere; existing corpus files are kept.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
lp="$here/corpus/line_parser"
wr="$here/corpus/whole_run"
mkdir -p "$lp" "$wr"
tests=("$root"/insight_testsuite/tests/*/)
for dir in "${tests[@]}"; do
    name=$(basename "$dir")
    batch="$dir/log_input/batch_log.json"
    stream="$dir/log_input/stream_log.json"
    [ -f "$batch" ] && [ -f "$stream" ] || continue
    # line_parser: each log as one chunk, and its first few lines one by one.
    cp "$batch" "$lp/$name-batch"
    cp "$stream" "$lp/$name-stream"
    i=0
    while IFS= read -r line && [ $i -lt 4 ]; do
        printf '%s\n' "$line" > "$lp/$name-line$i"
        i=$((i + 1))
    done < "$batch"
    # whole_run: FLAGS BATCH \0 STREAM. 0x08: chunks of 16 bytes; 0x19: chunks of 256 and a
    # prepended parameter line (the batch's own first line then is an event line to skip).
    { printf '\x08'; cat "$batch"; printf '\x00'; cat "$stream"; } > "$wr/$name"
    { printf '\x19'; cat "$batch"; printf '\x00'; cat "$stream"; } > "$wr/$name-params"
done
echo "seeded $(ls "$lp" | wc -l) line_parser and $(ls "$wr" | wc -l) whole_run inputs"
