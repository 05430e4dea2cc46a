#!/usr/bin/env bash
# Sweep benchmark: on the gen-log log of tools/bench.sh's small scale (100k users, 1M batch and
# 100k stream events, D=2, T=50, 10 friends, seed 1), times the default grid's sweep (D 1,2,3 x
# T 10,20,50,100,200) and one normal run at its largest pair, -D 3 -T 200, in alternated pairs
# (RUNS of each), wall and user CPU; prints the medians and the medians of the pairs' ratios
# sweep / single (target: at most 2). With SEPARATE=1, also the 15 separate runs' total, once.
# Usage: tools/bench-sweep.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-5}
cargo build --release --bins >&2
B=target/release/anomaly-detect L=target/sweep-bench
[[ -f $L/stream_log.json ]] || target/release/gen-log --out $L --users 100000 \
    --batch-events 1000000 --stream-events 100000 -D 2 -T 50 --friends 10 --seed 1 >&2
times=$(mktemp)
trap 'rm -f "$times"' EXIT
# Appends "NAME WALL USER" for one command.
t() { /usr/bin/time -a -o "$times" -f "$1 %e %U" "${@:2}" >/dev/null; }
sweep() { t sweep $B sweep -q $L/batch_log.json $L/stream_log.json; }
single() { t single $B -q -D 3 -T 200 $L/batch_log.json $L/stream_log.json $L/out.json; }
for ((i = 0; i < runs; i++)); do
    if ((i % 2)); then single; sweep; else sweep; single; fi
done
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
awk '
    function median(a, n,   i, j, x) {
        for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    $1 == "sweep" { sw[++s] = $2; su[s] = $3 }
    $1 == "single" { gw[++g] = $2; gu[g] = $3 }
    END {
        for (i = 1; i <= s; i++) { rw[i] = sw[i] / gw[i]; ru[i] = su[i] / gu[i] }
        printf "sweep (default grid): wall %.2f s, user %.2f s (medians of %d)\n", median(sw, s), median(su, s), s
        printf "single -D 3 -T 200:   wall %.2f s, user %.2f s\n", median(gw, g), median(gu, g)
        printf "sweep / single, median of the pairs: wall %.2fx, user %.2fx\n", median(rw, s), median(ru, s)
    }' "$times"
if [[ ${SEPARATE:-0} == 1 ]]; then
    s=$(date +%s.%N)
    for d in 1 2 3; do for T in 10 20 50 100 200; do
        $B -q -D $d -T $T $L/batch_log.json $L/stream_log.json $L/out.json
    done; done
    echo "the 15 separate runs: $(echo "$(date +%s.%N) - $s" | bc) s"
fi
