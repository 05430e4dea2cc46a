#!/usr/bin/env bash
# Sweep benchmark: on the gen-log log of tools/bench.sh's small scale (100k users, 1M batch and
# 100k stream events, D=2, T=50, 10 friends, seed 1), times `sweep -D 1..3 -T 10,50,100`, one
# normal run at -D 3 -T 100 (alternated, RUNS each) and the 9 separate runs' total; prints the
# medians and the ratio sweep / single (target: at most 2).
# Usage: tools/bench-sweep.sh [RUNS]   (default 3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-3}
cargo build --release --bins >&2
B=target/release/anomaly-detect L=target/sweep-bench
[[ -f $L/stream_log.json ]] || target/release/gen-log --out $L --users 100000 \
    --batch-events 1000000 --stream-events 100000 -D 2 -T 50 --friends 10 --seed 1 >&2
t() { local s; s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc; }
sweep=() single=() nine=()
for ((i = 0; i < runs; i++)); do
    sweep+=("$(t $B sweep -q -D 1..3 -T 10,50,100 $L/batch_log.json $L/stream_log.json)")
    single+=("$(t $B -q -D 3 -T 100 $L/batch_log.json $L/stream_log.json $L/out.json)")
    s=$(date +%s.%N)
    for d in 1 2 3; do for T in 10 50 100; do
        $B -q -D $d -T $T $L/batch_log.json $L/stream_log.json $L/out.json
    done; done
    nine+=("$(echo "$(date +%s.%N) - $s" | bc)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms=$(median "${sweep[@]}") m1=$(median "${single[@]}") m9=$(median "${nine[@]}")
echo "sweep $ms s; single D=3 T=100 $m1 s; 9 separate runs $m9 s; sweep/single $(echo "scale=2; $ms / $m1" | bc)"
