#!/usr/bin/env bash
# Side-by-side run of anomaly-detect and four peer implementations of the same challenge: the
# command that reproduces the peers table of README.md (Performance) and docs/performance.md.
#
# Usage: tools/peers.sh [--runs N] [--python-timeout S] WORKDIR
#   --runs N            runs of each program, interleaved round by round (default 3); medians
#   --python-timeout S  the Python peer runs once, after the rounds, killed after S seconds
#                       (default 900; 0 skips it)
#   WORKDIR             receives the peers' clones and builds, the log, every output,
#                       results.tsv (one line per run) and table.md (the table)
#
# Steps:
#   1. clones each peer at its pinned commit (PEERS below) into WORKDIR/peers and checks out the
#      files it builds from (the repositories' sample logs are not needed);
#   2. builds them as their READMEs say: `make` in src/ (C++, g++); `javac` against Gson
#      (ramraj07); the Maven project dvimont/... with `javac` on its src/main/java against
#      json-simple (`mvn install` fetches plugins from Maven Central; the classes are the same)
#      and runs it with `java` instead of `mvn exec:java` (without Maven's own start-up); the
#      Python peer needs no build. No peer code is changed;
#   3. builds anomaly-detect and gen-log (`cargo build --release --bins`) and writes the log:
#        gen-log --out WORKDIR/log --users 100000 --batch-events 1000000 \
#            --stream-events 100000 -D 2 -T 50 --friends 10 --seed 1
#   4. runs anomaly-detect and the three compiled peers --runs times, interleaved, each under GNU
#      time (wall, peak RSS); every program takes the three paths as arguments, so the log is
#      used in place; then the Python peer once, under `timeout`;
#   5. compares each first-run output with anomaly-detect's: the flagged purchases (timestamp,
#      id, amount in cents) as multisets, and for the common ones whether mean and sd are equal,
#      1 cent off (rounding instead of truncating) or further off; a peer's later runs must
#      repeat its first output. Differences are counted in the table, not treated as failures;
#   6. prints table.md: median wall, its ratio to anomaly-detect's, median peak RSS, agreement.
#
# Environment:
#   PEERS_GIT_URL    clone URL template, {owner} and {name} replaced
#                    (default https://github.com/{owner}/{name}); point it at local mirrors,
#                    e.g. PEERS_GIT_URL=/srv/mirror/{owner}+{name}/repo
#   GSON_JAR         Gson jar (default /usr/share/java/gson.jar: Debian libgoogle-gson-java)
#   JSON_SIMPLE_JAR  json-simple jar, 1.x API (default /usr/share/java/json-simple.jar: Debian
#                    libjson-simple-java, whose 2.3 keeps the org.json.simple 1.x classes)
#   PEERS_PYTHON     a Python 3 with pandas < 2 (the peer uses DataFrame.append), numpy and
#                    networkx (default python3); without them the Python peer is listed as not run
# Needs: cargo, git, make, g++, javac, java, python3, /usr/bin/time (GNU time), timeout.
# The peers take 10-100x anomaly-detect's time; the ratios hold on a busy machine better than
# the times do, and the load average is printed at the start and the end.
set -euo pipefail
export LC_ALL=C

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "peers.sh: $*" >&2; exit 1; }

runs=3 py_timeout=900 work=
while (($#)); do
    case $1 in
        --runs) (($# >= 2)) || die "--runs needs a value"; runs=$2; shift 2 ;;
        --python-timeout) (($# >= 2)) || die "--python-timeout needs a value"; py_timeout=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) usage >&2; die "unknown option: $1" ;;
        *) [[ -z $work ]] || die "one WORKDIR only"; work=$1; shift ;;
    esac
done
[[ -n $work ]] || { usage >&2; die "WORKDIR is missing"; }
[[ $work != *[[:space:]]* ]] || die "WORKDIR must not contain spaces"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, not '$runs'"
[[ $py_timeout =~ ^[0-9]+$ ]] || die "--python-timeout must be a number of seconds, not '$py_timeout'"
[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) is missing"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$work"
work=$(cd "$work" && pwd)
default_url='https://github.com/{owner}/{name}'
git_url=${PEERS_GIT_URL:-$default_url}
gson=${GSON_JAR:-/usr/share/java/gson.jar}
json_simple=${JSON_SIMPLE_JAR:-/usr/share/java/json-simple.jar}
python=${PEERS_PYTHON:-python3}

# name | owner/repository | pinned commit | paths checked out
PEERS=(
    "cpp|jinmeiz/detect_anomalous_purchases|08d0b1082db73be155c2a558744b0e821a909f5b|src"
    "ramraj|ramraj07/anomaly_detection_ramraj|22ef9073d954646da7a723f404e4c30733bc9bf2|src"
    "dvimont|dvimont/insight-anomaly-detection|3b9a6b34e2a808c3d84015e546007c1e2b305d83|pom.xml src"
    "python|gustapia06/anomaly_detection|834ec2a949cb7e8995845a3c103c6074a5021d21|src"
)
declare -A LABEL=(
    [ours]="anomaly-detect"
    [cpp]="jinmeiz/detect_anomalous_purchases (C++, RapidJSON)"
    [ramraj]="ramraj07/anomaly_detection_ramraj (Java, Gson)"
    [dvimont]="dvimont/insight-anomaly-detection (Java, json-simple)"
    [python]="gustapia06/anomaly_detection (Python, pandas/networkx)"
)

echo "load at start: $(uptime)"

# 1. Fetch the peers.
mkdir -p "$work/peers"
for p in "${PEERS[@]}"; do
    IFS='|' read -r name slug commit paths <<<"$p"
    dir=$work/peers/$name
    url=${git_url//\{owner\}/${slug%/*}}
    url=${url//\{name\}/${slug#*/}}
    if ! git -C "$dir" cat-file -e "$commit^{commit}" 2>/dev/null; then
        rm -rf "$dir"
        git clone -q --no-checkout "$url" "$dir" || die "cannot clone $url"
    fi
    # shellcheck disable=SC2086 # paths is a list
    git -C "$dir" checkout -q "$commit" -- $paths || die "$slug: cannot check out $commit"
    echo "peer $slug at $commit"
done

# 2. Build them.
make -s -C "$work/peers/cpp/src" >"$work/peers/cpp-build.log" 2>&1 \
    || die "C++ peer: make failed, see $work/peers/cpp-build.log"
[[ -f $gson ]] || die "$gson is missing: install libgoogle-gson-java or set GSON_JAR"
javac -nowarn -cp "$gson" "$work/peers/ramraj/src/AnomalousPurchaseDetector.java" \
    >"$work/peers/ramraj-build.log" 2>&1 || die "ramraj07 peer: javac failed, see $work/peers/ramraj-build.log"
[[ -f $json_simple ]] || die "$json_simple is missing: install libjson-simple-java or set JSON_SIMPLE_JAR"
rm -rf "$work/peers/dvimont/classes"
find "$work/peers/dvimont/src/main/java" -name '*.java' -print0 \
    | xargs -0 javac -nowarn -d "$work/peers/dvimont/classes" -cp "$json_simple" \
        >"$work/peers/dvimont-build.log" 2>&1 || die "dvimont peer: javac failed, see $work/peers/dvimont-build.log"
python_ok=0
if ((py_timeout > 0)) && "$python" -c 'import numpy, networkx, pandas; assert int(pandas.__version__.split(".")[0]) < 2' 2>/dev/null; then
    python_ok=1
fi

# 3. anomaly-detect, gen-log and the log.
(cd "$repo" && cargo build --release --bins --quiet) || die "cargo build failed"
target=$(cd "$repo" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
ours=$target/release/anomaly-detect
gen_args=(--users 100000 --batch-events 1000000 --stream-events 100000 -D 2 -T 50 --friends 10 --seed 1)
"$target/release/gen-log" --out "$work/log" "${gen_args[@]}" >/dev/null
batch=$work/log/batch_log.json stream=$work/log/stream_log.json
echo "log: gen-log --out DIR ${gen_args[*]} ($(($(stat -c %s "$batch") / 1000000)) MB + $(($(stat -c %s "$stream") / 1000000)) MB)"

# 4. Runs. Every program takes BATCH STREAM OUTPUT as arguments.
declare -A CMD=(
    [ours]="$ours"
    [cpp]="$work/peers/cpp/src/anomaly_detection"
    [ramraj]="java -cp $gson:$work/peers/ramraj/src AnomalousPurchaseDetector"
    [dvimont]="java -cp $json_simple:$work/peers/dvimont/classes org.commonvox.insight.anomaly_detector.App"
    # The peer's own src/run_recommendation.sh runs this after a 7 s prompt for the Python
    # command; the "no" on standard input answers the script's question whether to check the
    # package versions. pandas warns twice on every DataFrame.append (once per stream purchase):
    # those warnings are silenced. SIGTERM (not KILL, which `timeout` also sends to itself) lets
    # `timeout` reap the peer, so GNU time sees its peak RSS.
    [python]="timeout -k 30 $py_timeout env PYTHONWARNINGS=ignore::FutureWarning $python $work/peers/python/src/process_data.py"
)
mkdir -p "$work/out"
echo no >"$work/out/answer"
results=$work/results.tsv
printf 'program\trun\twall_s\tpeak_rss_kb\texit\n' >"$results"
timed() { # NAME RUN
    local name=$1 run=$2 out=$work/out/$1.$2.json tf=$work/out/$1.$2.time status=0 wall rss
    rm -f "$out"
    : >"$out"
    # shellcheck disable=SC2086 # the command is split into words on purpose (no spaces in paths)
    /usr/bin/time -f '%e %M' -o "$tf" ${CMD[$name]} "$batch" "$stream" "$out" \
        <"$work/out/answer" >"$work/out/$name.$run.log" 2>&1 || status=$?
    read -r wall rss < <(tail -n 1 "$tf")
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$run" "$wall" "$rss" "$status" >>"$results"
    echo "  $name run $run: $wall s, $((rss / 1024)) MB, exit $status"
    if [[ $name != python ]] && ((status != 0)); then
        die "$name failed (exit $status), see $work/out/$name.$run.log"
    fi
}
for ((r = 1; r <= runs; r++)); do
    echo "round $r of $runs"
    for name in ours cpp ramraj dvimont; do timed "$name" "$r"; done
done
if ((python_ok)); then
    echo "Python peer, once, killed after $py_timeout s"
    timed python 1
fi
echo "load at end: $(uptime)"

# 5-6. Compare and tabulate.
python3 - "$work" "$runs" "$python_ok" "$py_timeout" "$stream" \
    "${LABEL[ours]}" "${LABEL[cpp]}" "${LABEL[ramraj]}" "${LABEL[dvimont]}" "${LABEL[python]}" <<'PY' | tee "$work/table.md"
import json, statistics, sys
from collections import Counter

work, runs, python_ok, py_timeout, stream = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4]), sys.argv[5]
labels = dict(zip(["ours", "cpp", "ramraj", "dvimont", "python"], sys.argv[6:]))

def cents(v):
    return round(float(v) * 100)

def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                rows.append(((o["timestamp"], int(o["id"]), cents(o["amount"])), cents(o["mean"]), cents(o["sd"])))
    return rows

def thousands(n):
    return f"{n:,}".replace(",", " ")

def compare(ours, theirs):
    """Agreement of a peer's flagged purchases with ours, as words for the table."""
    ko, kt = Counter(k for k, _, _ in ours), Counter(k for k, _, _ in theirs)
    missing, extra = sum((ko - kt).values()), sum((kt - ko).values())
    stats = {}
    for k, m, s in ours:
        stats.setdefault(k, []).append((m, s))
    used, exact, cent, far = Counter(), 0, 0, 0
    for k, m, s in theirs:
        if used[k] < len(stats.get(k, [])):
            om, osd = stats[k][used[k]]
            used[k] += 1
            d = max(abs(m - om), abs(s - osd))
            exact, cent, far = exact + (d == 0), cent + (d == 1), far + (d > 1)
    words = []
    if missing == 0 and extra == 0:
        words.append(f"the same {thousands(len(ours))}")
    else:
        words.append(f"{thousands(len(theirs))}: {thousands(missing)} of ours missing, {thousands(extra)} others")
    if cent:
        words.append(f"{thousands(cent)} with mean/sd 1 cent off")
    if far:
        words.append(f"{thousands(far)} with mean/sd further off")
    if not cent and not far:
        words.append("mean/sd equal")
    return "; ".join(words), missing + extra + far == 0

res = {}
with open(f"{work}/results.tsv") as f:
    next(f)
    for line in f:
        name, run, wall, rss, status = line.split("\t")
        res.setdefault(name, []).append((float(wall), int(rss), int(status)))

ours = load(f"{work}/out/ours.1.json")
for name in ["ours", "cpp", "ramraj", "dvimont"]:
    first = open(f"{work}/out/{name}.1.json", "rb").read()
    for r in range(2, runs + 1):
        if open(f"{work}/out/{name}.{r}.json", "rb").read() != first:
            sys.exit(f"peers.sh: {name}: run {r} output differs from run 1")

base = statistics.median(w for w, _, _ in res["ours"])
print(f"{runs} interleaved runs, medians; the Python peer once.\n")
print("| program | wall | x anomaly-detect | peak RSS | flagged purchases against anomaly-detect's |")
print("|---|--:|--:|--:|---|")
for name in ["ours", "cpp", "ramraj", "dvimont"]:
    wall = statistics.median(w for w, _, _ in res[name])
    rss = statistics.median(m for _, m, _ in res[name]) / 1024
    rss_s = f"{rss / 1024:.2f} GB" if rss >= 1024 else f"{rss:.0f} MB"
    if name == "ours":
        agree = f"{thousands(len(ours))} flagged"
    else:
        agree, _ = compare(ours, load(f"{work}/out/{name}.1.json"))
    print(f"| {labels[name]} | {wall:.2f} s | {wall / base:.1f} | {rss_s} | {agree} |")
if not python_ok:
    print(f"| {labels['python']} | not run | | | needs pandas < 2, numpy, networkx (PEERS_PYTHON) |")
else:
    wall, rss, status = res["python"][0]
    theirs = load(f"{work}/out/python.1.json")
    if status == 0:
        agree, _ = compare(ours, theirs)
        print(f"| {labels['python']} | {wall:.0f} s | {wall / base:.0f} | {rss / 1024:.0f} MB | {agree} |")
    else:
        # Killed: how far it got is where its last flagged purchase stands in the stream.
        done, total, last = 0, 0, theirs[-1][0] if theirs else None
        with open(stream) as f:
            for total, line in enumerate(f, 1):
                o = json.loads(line)
                if o.get("event_type") == "purchase" and (o["timestamp"], int(o["id"]), cents(o["amount"])) == last:
                    done = total
        prefix = [k for k, _, _ in ours][: len(theirs)]
        same = prefix == [k for k, _, _ in theirs]
        pace = f", about {thousands(round(py_timeout * total / done))} s at that pace" if done else ""
        print(f"| {labels['python']} | > {py_timeout} s (killed{pace}) | > {py_timeout / base:.0f} | {rss / 1024:.0f} MB "
              f"| {thousands(len(theirs))} flagged by then (stream event {thousands(done)} of {thousands(total)}), "
              f"{'the same as our first ' + thousands(len(theirs)) if same else 'NOT our first ' + thousands(len(theirs))} |")
PY
