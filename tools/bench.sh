#!/usr/bin/env bash
# Whole-process benchmark of anomaly-detect: the one command that reproduces the figures in docs/performance.md.
#
# What it measures, for each log size (generator settings fixed by the issue: 100k users, 10 friends
# on average, D=2, T=50, seed 1):
#   1. bare-parse of the batch log (JSON parsing only, no model) on all cores and on 1 core, using
#      bare-parse's own median of --runs runs; this is the floor the batch phase is compared with
#      (goal: batch phase within 1.5x of the bare parse);
#   2. anomaly-detect as a whole process at --threads 1 and --threads 2, --runs runs each
#      (interleaved), recording wall time (measured here) and the batch / stream phase times from
#      its --stats file; medians are reported. Each run comes right after a bare-parse run of
#      its own (--runs 1, same thread count), and "batch phase / bare parse" is the median of
#      these paired ratios: on a machine whose speed drifts within minutes, a ratio to a bare
#      parse timed at the start would measure the drift as well;
#   3. peak RSS ("Maximum resident set size" of /usr/bin/time -v; every run is wrapped and the
#      highest value per thread count is reported);
#   4. the same runs with the -D/-T overrides D=3,T=50 and D=1,T=2 on the same files;
#   5. the CPU time of all threads in each phase (anomaly-detect --stats) and in the bare parse:
#      a phase's CPU time over its wall time is how many cores it kept busy, and the batch's CPU
#      time over the bare parse's is how much work the state adds to parsing; and the part of
#      each phase's CPU time spent in the kernel (mostly handing out fresh memory).
# The memory every anomaly-detect run starts with (--memory): a virtual machine that gives its
# free memory back to the host (virtio-balloon free page reporting, as on Firecracker) makes the
# first touch of each fresh page cost a fault on the host too, about 6 ms per MB instead of a
# fraction of one; a process that starts within a second or two of another one freeing memory
# gets pages the host still backs. The batch's state is ~200 MB of fresh memory, the bare parse
# needs little, so this moves the batch / bare parse ratio by up to a second of batch time.
#   --memory warm  right before each anomaly-detect run, 1 GiB is written and freed (dd): the run
#                  finds memory the host backs, as on bare metal (default; a best effort: the
#                  "batch system CPU" column shows how warm the runs were);
#   --memory cold  each anomaly-detect run waits 6 s first (its paired bare parse then runs):
#                  the host has taken the free memory back, as on a first run after idle time.
# The outputs of every run of a configuration must be byte-identical to its first --threads 1
# output (cmp); the script stops with an error if they are not.
# It ends with markdown tables (paste them into docs/performance.md): input size, batch events/s and MB/s,
# batch phase / bare parse (wall and CPU time), cores busy, stream events/s at 1 and 2 threads,
# 2-thread speedup, peak RSS and RSS / input size.
#
# Usage: tools/bench.sh [--scale small|full] [--scaling] [--runs N] [--memory warm|cold] [--dir DIR]
#   --scale full   10M batch + 1M stream events (default)
#   --scale small  1M batch + 100k stream events (a quick check: 1.5 min with --runs 3 on 2 cores)
#   --scaling      also 1M, 10M and 50M batch events (stream = batch / 10) to show growth; the 50M
#                  logs take ~4.7 GB: a size is skipped, with a message, when the disk holding DIR
#                  has less than 240 bytes per batch event free (12 GB for 50M)
#   --runs N       anomaly-detect runs per configuration and thread count, and bare-parse runs (5)
#   --memory M     warm (default) or cold: the memory each anomaly-detect run starts with (above)
#   --dir DIR      where the generated logs go (target/bench-logs); logs are reused when the
#                  `settings` stamp next to them matches the generator settings, gen_log.rs and
#                  the file sizes
# Needs: cargo, python3, /usr/bin/time (GNU time). Raw per-run figures are kept in DIR/results.tsv.
# Run it on an otherwise idle machine: every figure is a wall-clock time.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "bench.sh: $*" >&2; exit 1; }

scale=full scaling=0 runs=5 memory=warm dir=target/bench-logs
while (($#)); do
    case $1 in
        --scale) (($# >= 2)) || die "--scale needs a value"; scale=$2; shift 2 ;;
        --scale=*) scale=${1#*=}; shift ;;
        --scaling) scaling=1; shift ;;
        --runs) (($# >= 2)) || die "--runs needs a value"; runs=$2; shift 2 ;;
        --runs=*) runs=${1#*=}; shift ;;
        --memory) (($# >= 2)) || die "--memory needs a value"; memory=$2; shift 2 ;;
        --memory=*) memory=${1#*=}; shift ;;
        --dir) (($# >= 2)) || die "--dir needs a value"; dir=$2; shift 2 ;;
        --dir=*) dir=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, not '$runs'"
[[ $memory == warm || $memory == cold ]] || die "--memory must be warm or cold, not '$memory'"
case $scale in
    small) sizes=(1000000) ;;
    full) sizes=(10000000) ;;
    *) die "--scale must be small or full, not '$scale'" ;;
esac
if ((scaling)); then
    sizes=($(printf '%s\n' "${sizes[@]}" 1000000 10000000 50000000 | sort -nu))
fi
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is needed for the peak RSS"
command -v python3 >/dev/null || die "python3 is needed for the medians and tables"

# Fixed generator settings (from the issue).
USERS=100000 FRIENDS=10 GEN_D=2 GEN_T=50 SEED=1
# Configurations: name, then anomaly-detect's extra arguments. "file" uses the D and T of the log.
configs=("D=2 T=50 (file)|" "D=3 T=50|-D 3 -T 50" "D=1 T=2|-D 1 -T 2")
THREADS=(1 2)
NPROC=$(nproc)
load=$(cut -d' ' -f1 /proc/loadavg)

echo "== cargo build --release --bins" >&2
cargo build --release --bins
BIN=target/release

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
outdir="$dir/out"
mkdir -p "$outdir"
rm -f "$outdir"/*.txt
results="$dir/results.tsv"
printf 'kind\tsize\tconfig\tthreads\trun\twall_s\tbatch_s\tstream_s\trss_kb\tbatch_events\tstream_events\tflagged\tbatch_bytes\tstream_bytes\tbatch_cpu_s\tstream_cpu_s\tbatch_sys_s\tstream_sys_s\n' >"$results"
gen_hash=$(sha256sum tools/gen_log.rs | cut -d' ' -f1)

label() { # 1000000 -> 1M, 100000 -> 100k
    local n=$1
    if ((n % 1000000 == 0)); then echo "$((n / 1000000))M"
    elif ((n % 1000 == 0)); then echo "$((n / 1000))k"
    else echo "$n"; fi
}

# Prints the stamp the logs in $1 would have (fails if a log is missing).
stamp_for() {
    local d=$1 b=$2 s=$3
    echo "gen-log --users $USERS --batch-events $b --stream-events $s -D $GEN_D -T $GEN_T --friends $FRIENDS --seed $SEED"
    echo "tools/gen_log.rs sha256 $gen_hash"
    echo "batch_log.json bytes $(stat -c %s "$d/batch_log.json")"
    echo "stream_log.json bytes $(stat -c %s "$d/stream_log.json")"
}

# Memory the host backs, right before an anomaly-detect run (--memory warm): 1 GiB (a quarter of the
# available memory on small machines) written and freed.
warm_mb=$(awk '/^MemAvailable:/ { mb = int($2 / 1024 / 4); print (mb < 1024 ? mb : 1024) }' /proc/meminfo)
warm_memory() {
    [[ $memory == warm ]] || return 0
    dd if=/dev/zero of=/dev/null bs="${warm_mb:-1024}M" count=1 status=none
}

# The values of a key of a --stats file, in order (a number or null each): stat_values KEY FILE.
stat_values() { grep -o "\"$1\": [0-9.a-z]*" "$2" | cut -d' ' -f2; }

# Runs anomaly-detect once and appends a row to results.tsv.
#   run_one SIZE CONFIG_NAME THREADS RUN_NO BATCH STREAM EXTRA_ARGS
run_one() {
    local size=$1 cname=$2 threads=$3 run=$4 batch=$5 stream=$6 extra=$7
    local out="$outdir/run.txt" err="$outdir/stderr.txt" tv="$outdir/time.txt" st="$outdir/stats.json"
    local t0 t1
    warm_memory
    t0=$EPOCHREALTIME
    # shellcheck disable=SC2086 # $extra is a list of options
    if ! /usr/bin/time -v -o "$tv" "$BIN/anomaly-detect" "$batch" "$stream" "$out" --threads "$threads" \
        --stats "$st" $extra 2>"$err"; then
        cat "$err" >&2
        die "anomaly-detect failed ($size, $cname, --threads $threads)"
    fi
    t1=$EPOCHREALTIME
    local summary wall rss
    summary=$(grep -E 'stream purchases? flagged; .*\(batch [0-9.]+ s, stream [0-9.]+ s\)$' "$err" | tail -n 1) ||
        { cat "$err" >&2; die "no summary line from anomaly-detect"; }
    local re_events=': ([0-9]+) events?, .*: ([0-9]+) events?; '
    local re_flagged=' ([0-9]+) of [0-9]+ stream purchases? flagged; '
    [[ $summary =~ $re_events ]] || die "cannot parse: $summary"
    local bev=${BASH_REMATCH[1]} sev=${BASH_REMATCH[2]}
    [[ $summary =~ $re_flagged ]] || die "cannot parse: $summary"
    local flagged=${BASH_REMATCH[1]}
    rss=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): \([0-9]*\)$/\1/p' "$tv")
    [[ -n $rss ]] || die "no 'Maximum resident set size' in /usr/bin/time -v output"
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
    # The phases' CPU time (all threads) and its system part, batch first: N or null.
    local cpus syss secs bs ss
    mapfile -t cpus < <(stat_values cpu_seconds "$st")
    ((${#cpus[@]} == 2)) || die "no cpu_seconds for both phases in $st"
    mapfile -t syss < <(stat_values system_seconds "$st")
    ((${#syss[@]} == 2)) || die "no system_seconds for both phases in $st"
    # The phases' wall times to the millisecond (the summary line rounds to 10 ms): batch, stream, all.
    mapfile -t secs < <(stat_values seconds "$st")
    ((${#secs[@]} == 3)) || die "no seconds for both phases in $st"
    bs=${secs[0]} ss=${secs[1]}
    printf 'run\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$cname" "$threads" "$run" \
        "$wall" "$bs" "$ss" "$rss" "$bev" "$sev" "$flagged" "$batch_bytes" "$stream_bytes" "${cpus[0]}" "${cpus[1]}" \
        "${syss[0]}" "${syss[1]}" >>"$results"
    printf '  %-16s --threads %s run %d/%d: wall %6.2f s, batch %5.2f s (system %s s), stream %5.2f s, peak RSS %5.0f MB, %s flagged\n' \
        "$cname" "$threads" "$run" "$runs" "$wall" "$bs" "${syss[0]}" "$ss" "$(awk -v k="$rss" 'BEGIN{print k*1024/1e6}')" "$flagged" >&2
    # Every output of a configuration must equal its first --threads 1 output.
    local ref="$outdir/$size-${cname%% (*}-ref.txt"
    ref=${ref// /_}
    if [[ $threads == 1 && $run == 1 ]]; then
        mv "$out" "$ref"
    elif ! cmp "$ref" "$out" >&2; then
        local bad="${ref%-ref.txt}-threads$threads-run$run.txt"
        mv "$out" "$bad"
        die "OUTPUT MISMATCH ($size, $cname): --threads $threads run $run differs from --threads 1 run 1; see $ref and $bad"
    fi
}

for b in "${sizes[@]}"; do
    s=$((b / 10))
    size="$(label "$b")+$(label "$s")"
    d="$dir/batch$(label "$b")-stream$(label "$s")"
    echo "== $size events: logs in $d" >&2
    mkdir -p "$d"
    want="$(stamp_for "$d" "$b" "$s" 2>/dev/null || true)"
    if [[ -f $d/settings && -n $want && "$(cat "$d/settings")" == "$want" ]]; then
        echo "  reusing the logs (settings stamp matches)" >&2
    else
        need=$((b * 240))
        avail=$(df -PB1 "$d" | awk 'NR == 2 { print $4 }')
        # Files already there (from other settings) will be overwritten: count them as free.
        old=$(du -sB1 "$d" | cut -f1)
        if ((avail + old < need)); then
            echo "  SKIPPING $size: $(((avail + old) / 1000000000)) GB free on the disk of $d, $((need / 1000000000)) GB wanted" >&2
            continue
        fi
        rm -f "$d/settings"
        "$BIN/gen-log" --out "$d" --users "$USERS" --batch-events "$b" --stream-events "$s" \
            -D "$GEN_D" -T "$GEN_T" --friends "$FRIENDS" --seed "$SEED" >&2
        stamp_for "$d" "$b" "$s" >"$d/settings"
    fi
    batch="$d/batch_log.json" stream="$d/stream_log.json"
    batch_bytes=$(stat -c %s "$batch") stream_bytes=$(stat -c %s "$stream")
    cat "$batch" "$stream" >/dev/null # warm the page cache: every figure is for cached input

    for t in "$NPROC" 1; do
        line=$("$BIN/bare-parse" "$batch" --threads "$t" --runs "$runs")
        echo "  $line" >&2
        re_bare=' in ([0-9.]+) s .*; CPU time ([0-9.]+ s|unknown)$'
        [[ $line =~ $re_bare ]] || die "cannot parse bare-parse output: $line"
        printf 'bare\t%s\t-\t%s\t-\t%s\t-\t-\t-\t-\t-\t-\t%s\t%s\t%s\t-\t-\t-\n' "$size" "$t" "${BASH_REMATCH[1]}" \
            "$batch_bytes" "$stream_bytes" "${BASH_REMATCH[2]% s}" >>"$results"
    done

    for c in "${configs[@]}"; do
        cname=${c%%|*} extra=${c#*|}
        for ((r = 1; r <= runs; r++)); do
            for t in "${THREADS[@]}"; do
                # Cold: the host takes the free memory back while this waits (the bare parse
                # needs little of it).
                [[ $memory == cold ]] && sleep 6
                line=$("$BIN/bare-parse" "$batch" --threads "$t" --runs 1)
                [[ $line =~ $re_bare ]] || die "cannot parse bare-parse output: $line"
                printf 'pair\t%s\t%s\t%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t%s\t%s\t%s\t-\t-\t-\n' "$size" "$cname" "$t" "$r" \
                    "${BASH_REMATCH[1]}" "$batch_bytes" "$stream_bytes" "${BASH_REMATCH[2]% s}" >>"$results"
                run_one "$size" "$cname" "$t" "$r" "$batch" "$stream" "$extra"
            done
        done
    done
done
rm -f "$outdir/stderr.txt" "$outdir/time.txt" "$outdir/stats.json"

rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git status --porcelain --untracked-files=no 2>/dev/null) ]] || rev="$rev + uncommitted changes"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
python3 - "$results" "$runs" "$NPROC" "$rev" "${cpu:-unknown CPU}" "$load" "$memory" <<'PY'
import csv, statistics, sys
from collections import defaultdict

path, runs, nproc, rev, cpu, load, memory = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4],
                                             sys.argv[5], sys.argv[6], sys.argv[7])
rows = list(csv.DictReader(open(path), delimiter="\t"))
if not rows:
    sys.exit("bench.sh: no results (every size skipped?)")
med = statistics.median
MB = 1e6

def num(x):
    """A figure of results.tsv, or None where it is unknown ('-', 'null', 'unknown')."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return None

bare = {(r["size"], int(r["threads"])): float(r["wall_s"]) for r in rows if r["kind"] == "bare"}
bare_cpu = {(r["size"], int(r["threads"])): num(r["batch_cpu_s"]) for r in rows if r["kind"] == "bare"}
# The bare parse timed just before each run: (size, config, threads, run) -> seconds, CPU seconds.
paired = {(r["size"], r["config"], int(r["threads"]), r["run"]): float(r["wall_s"])
          for r in rows if r["kind"] == "pair"}
paired_cpu = {(r["size"], r["config"], int(r["threads"]), r["run"]): num(r["batch_cpu_s"])
              for r in rows if r["kind"] == "pair"}
runs_by = defaultdict(list)  # (size, config, threads) -> rows
sizes, configs = [], []
for r in rows:
    if r["kind"] != "run":
        continue
    runs_by[(r["size"], r["config"], int(r["threads"]))].append(r)
    if r["size"] not in sizes:
        sizes.append(r["size"])
    if r["config"] not in configs:
        configs.append(r["config"])
sizes_bytes = {r["size"]: (int(r["batch_bytes"]), int(r["stream_bytes"])) for r in rows}

def rate(n, secs):
    if secs <= 0:
        return "inf"
    x = n / secs
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.1f} k"

def mbps(n, secs):
    return "inf" if secs <= 0 else f"{n / secs / MB:.0f}"


def table(header, body):
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i < 2 else "--:" for i in range(len(header))) + "|")
    for line in body:
        print("| " + " | ".join(line) + " |")

print()
print("## anomaly-detect whole-process benchmark (tools/bench.sh)")
print()
print(f"{cpu}, {nproc} cores (load average {load} at the start); commit {rev}; medians of {runs} runs; input in the page cache; "
      f"memory {memory} (--memory); MB = 10^6 bytes; generated logs: 100k users, 10 friends on average, D=2, T=50, seed 1.")
print()

print("### Bare parse of the batch log (bare-parse, JSON parsing only)")
print()
body = []
for s in sizes:
    bb, sb = sizes_bytes[s]
    line = [s, f"{bb / MB:.1f}"]
    for t in (1, nproc):
        secs = bare.get((s, t))
        line += [f"{secs:.3f}", mbps(bb, secs)] if secs else ["-", "-"]
    cpu = bare_cpu.get((s, nproc))
    line.append(f"{cpu:.3f}" if cpu is not None else "-")
    body.append(line)
table(["events (batch+stream)", "batch MB", "1 core s", "1 core MB/s", f"{nproc} cores s", f"{nproc} cores MB/s",
       f"{nproc} cores CPU s"], body)
print()

print("### Medians per run (seconds)")
print()
body = []
for s in sizes:
    for c in configs:
        for t in (1, 2):
            rs = runs_by.get((s, c, t))
            if not rs:
                continue
            def cpu(key):
                xs = [num(r[key]) for r in rs]
                return f"{med(xs):.2f}" if None not in xs else "-"
            body.append([s, c, str(t), f"{med(float(r['wall_s']) for r in rs):.3f}",
                         f"{med(float(r['batch_s']) for r in rs):.2f}", f"{med(float(r['stream_s']) for r in rs):.2f}",
                         cpu("batch_cpu_s"), cpu("batch_sys_s"), cpu("stream_cpu_s"),
                         f"{max(int(r['rss_kb']) for r in rs) * 1024 / MB:.0f}", rs[0]["flagged"]])
table(["events (batch+stream)", "config", "threads", "wall", "batch phase", "stream phase", "batch CPU",
       "batch system CPU", "stream CPU", "peak RSS MB", "flagged"], body)
print()

print("### Derived figures (cells with two values: --threads 1 / --threads 2)")
print()
body = []
for s in sizes:
    bb, sb = sizes_bytes[s]
    inp = bb + sb
    for c in configs:
        r1, r2 = runs_by.get((s, c, 1)), runs_by.get((s, c, 2))
        if not r1 or not r2:
            continue
        bev, sev = int(r1[0]["batch_events"]), int(r1[0]["stream_events"])
        b1, b2 = (med(float(r["batch_s"]) for r in x) for x in (r1, r2))
        s1, s2 = (med(float(r["stream_s"]) for r in x) for x in (r1, r2))
        w1, w2 = (med(float(r["wall_s"]) for r in x) for x in (r1, r2))
        m1, m2 = (max(int(r["rss_kb"]) for r in x) * 1024 for x in (r1, r2))
        def paired_ratio(x):
            """Median over the runs of batch phase / the bare parse timed just before it."""
            ratios = [float(r["batch_s"]) / paired[(s, c, int(r["threads"]), r["run"])]
                      for r in x if (s, c, int(r["threads"]), r["run"]) in paired]
            return f"{med(ratios):.2f}{' (!)' if med(ratios) > 1.5 else ''}" if ratios else "n/a"
        def paired_cpu_ratio(x):
            """Median over the runs of the batch phase's CPU time / the paired bare parse's."""
            ratios = []
            for r in x:
                key = (s, c, int(r["threads"]), r["run"])
                batch_cpu, bare = num(r["batch_cpu_s"]), paired_cpu.get(key)
                if batch_cpu is not None and bare:
                    ratios.append(batch_cpu / bare)
            return f"{med(ratios):.2f}" if ratios else "n/a"
        def busy(x, phase):
            """Median over the runs of the phase's CPU time / its wall time: cores kept busy."""
            shares = [num(r[phase + "_cpu_s"]) / float(r[phase + "_s"]) for r in x
                      if num(r[phase + "_cpu_s"]) is not None and float(r[phase + "_s"]) > 0]
            return f"{med(shares):.2f}" if shares else "n/a"
        body.append([
            s, c, f"{inp / MB:.0f}",
            f"{rate(bev, b1)} / {rate(bev, b2)}",
            f"{mbps(bb, b1)} / {mbps(bb, b2)}",
            f"{paired_ratio(r1)} / {paired_ratio(r2)}",
            f"{paired_cpu_ratio(r2)}",
            f"{busy(r1, 'batch')} / {busy(r2, 'batch')}",
            rate(sev, s1), rate(sev, s2),
            f"{busy(r1, 'stream')} / {busy(r2, 'stream')}",
            f"{s1 / s2:.2f}x" if s2 > 0 else "n/a",
            f"{w1 / w2:.2f}x",
            f"{m1 / MB:.0f} / {m2 / MB:.0f}",
            f"{m1 / inp:.2f} / {m2 / inp:.2f}",
        ])
table(["events (batch+stream)", "config", "input MB", "batch events/s", "batch MB/s",
       f"batch phase / bare parse (1 / {nproc} cores)", f"batch CPU / bare parse CPU ({nproc} cores)",
       "batch cores busy", "stream events/s, 1 thread", "stream events/s, 2 threads", "stream cores busy",
       "stream speedup 2 vs 1", "wall speedup 2 vs 1", "peak RSS MB", "RSS / input"], body)
print()
print("Input MB = batch + stream log. Batch figures use the batch log's events and bytes over the batch phase "
      "(parameters included); stream events/s = stream log events over the stream phase (all after the batch "
      "phase, output included). Phase times come from anomaly-detect --stats (1 ms resolution); wall "
      "time is the whole process. Batch phase / bare parse is the median, over the runs, of each run's batch phase over the "
      "bare parse run just before it. (!) marks a batch phase more than 1.5x the bare parse (the goal). "
      "CPU times are of all threads (user and system, from anomaly-detect --stats and bare-parse); batch CPU / bare "
      "parse CPU is paired the same way; cores busy is a phase's CPU time over its wall time (2.00 = both cores "
      "all the time). Batch system CPU is the part of its CPU time spent in the kernel, mostly handing out fresh memory "
      "(see --memory in tools/bench.sh).")
PY
echo "raw per-run figures: $results" >&2
