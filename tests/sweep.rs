//! `anomaly-detect sweep`: every pair of its grid flags exactly what a separate run with that
//! `D` and `T` flags (against the sequential model on random logs and grids, and against the
//! binary's own runs), its table and CSV, and its command line.

mod common;
mod model;

use std::fs;
use std::io;

use anomaly_detect::config::Config;
use anomaly_detect::ingest::chunks::ChunkSource;
use anomaly_detect::ingest::input::LogFile;
use anomaly_detect::output::progress::Progress;
use anomaly_detect::output::report::SkipLog;
use anomaly_detect::output::sink::{Sink, flagged_line};
use anomaly_detect::query::network::Grid;
use anomaly_detect::replay::Replay;
use anomaly_detect::sweep::grid::{GridChecked, GridChecks, Sweep};
use common::{BATCH, Case, STREAM, show};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Random logs.

/// A xorshift64 generator: `below(n)` draws from `0..n`.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A batch log (parameter line `D`, `T`) and a stream log of random events among `users`
/// users: friendships made and ended, purchases with few distinct timestamps (ties, and some
/// going back in time) and a few large amounts, and a few dirty lines.
fn random_logs(seed: u64, users: u64, batch: usize, stream: usize, d: u32, t: u32) -> [String; 2] {
    let mut rng = Rng(seed | 1);
    let event = |rng: &mut Rng, at: usize| -> String {
        let ts = format!("2017-06-13 11:{:02}:{:02}", at / 60 % 60, rng.below(8) * 7);
        let (a, b) = (rng.below(users).to_string(), rng.below(users).to_string());
        match rng.below(100) {
            0..=29 => common::befriend(&ts, &a, &b),
            30..=39 => common::unfriend(&ts, &a, &b),
            40..=41 => "{\"event_type\": \"purchase\", \"oops\"".to_string(),
            _ => {
                let cents = if rng.below(25) == 0 {
                    100_000 + rng.below(900_000)
                } else {
                    1_000 + rng.below(9_000)
                };
                let amount = format!("{}.{:02}", cents / 100, cents % 100);
                common::purchase(&ts, &a, &amount)
            }
        }
    };
    let mut batch_log = format!("{{\"D\":\"{d}\", \"T\":\"{t}\"}}\n");
    for at in 0..batch {
        batch_log.push_str(&event(&mut rng, at));
        batch_log.push('\n');
    }
    let mut stream_log = String::new();
    for at in batch..batch + stream {
        stream_log.push_str(&event(&mut rng, at));
        stream_log.push('\n');
    }
    [batch_log, stream_log]
}

// ---------------------------------------------------------------------------------------------
// The sweep through the library, against the model.

/// Records every pair's flagged lines as a run's OUTPUT holds them.
struct Recorder {
    outputs: Vec<Vec<u8>>,
    checked: usize,
}

impl Sink<Sweep> for Recorder {
    type Error = io::Error;

    fn checked(&mut self, purchase: &GridChecked<'_>) -> io::Result<bool> {
        self.checked += 1;
        for (out, baseline) in self.outputs.iter_mut().zip(purchase.baselines) {
            if baseline.is_anomalous(purchase.cents) {
                flagged_line(out, purchase.line, baseline);
            }
        }
        Ok(true)
    }
}

/// Each pair's flagged lines from one sweep, in grid order (every `T` of the first `D`, ...),
/// and how many stream purchases were checked.
fn sweep(batch: &str, stream: &str, grid: &Grid, config: &Config) -> (Vec<Vec<u8>>, usize) {
    let batch = LogFile::from_bytes(BATCH, batch.as_bytes().to_vec());
    let stream = LogFile::from_bytes(STREAM, stream.as_bytes().to_vec());
    let config = Config {
        degree: grid.degrees.last().copied(),
        tracked: grid.tracked.last().copied(),
        ..config.clone()
    };
    let mut skips = SkipLog::new(Box::new(io::sink()), false);
    let hidden = Progress::hidden();
    let source = ChunkSource::Mapped {
        log: &batch,
        from: 0,
    };
    let mut replay = Replay::batch(source, &config, &mut skips, &hidden).expect("the batch");
    let recorder = Recorder {
        outputs: vec![Vec::new(); grid.pairs()],
        checked: 0,
    };
    let mut checks = GridChecks::new(grid.clone(), &replay.state().history, recorder);
    let source = ChunkSource::Mapped {
        log: &stream,
        from: 0,
    };
    replay
        .stream(source, &mut checks, &mut skips, &hidden)
        .expect("the stream");
    let recorder = checks.into_sink();
    (recorder.outputs, recorder.checked)
}

/// An ascending list without repeats of `values` (at least one).
fn ascending(mut values: Vec<u32>) -> Vec<u32> {
    values.sort_unstable();
    values.dedup();
    values
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    /// For every pair of a random grid, the sweep's flagged lines are those of a separate model
    /// run with that `D` and `T`, at 1, 2 and 8 threads and any window and chunk size, and
    /// with recent purchases kept from the fewest that scans are tried with (they run out and
    /// give way to ranking) to all.
    #[test]
    fn every_pair_flags_what_a_separate_model_run_flags(
        seed in any::<u64>(),
        users in 3u64..40,
        sizes in (20usize..160, 10usize..120),
        degrees in proptest::collection::vec(1u32..5, 1..4),
        tracked in proptest::collection::vec(2u32..14, 1..4),
        window in 1usize..40,
        chunk_bytes in 64usize..4096,
        recent in prop_oneof![Just(Config::default().recent), 8usize..300],
    ) {
        let grid = Grid { degrees: ascending(degrees), tracked: ascending(tracked) };
        let [batch, stream] = random_logs(seed, users, sizes.0, sizes.1, 2, 5);
        let expected: Vec<model::Outcome> = anomaly_detect::sweep::pairs(&grid)
            .map(|(d, t)| {
                model::run(batch.as_bytes(), stream.as_bytes(), Some(d.into()), Some(t.into()))
            })
            .collect();
        for threads in [1, 2, 8] {
            let config = Config { threads, window, chunk_bytes, recent, ..Config::default() };
            let (outputs, checked) = sweep(&batch, &stream, &grid, &config);
            prop_assert_eq!(checked, expected[0].checks.len());
            for (((d, t), got), want) in
                anomaly_detect::sweep::pairs(&grid).zip(&outputs).zip(&expected)
            {
                prop_assert!(
                    *got == want.output,
                    "D={} T={} at {} threads:\nexpected:\n{}\ngot:\n{}",
                    d, t, threads, show(&want.output), show(got)
                );
            }
        }
    }
}

/// The random logs flag purchases, and differently for different pairs: otherwise the property
/// above would compare empty files.
#[test]
fn random_logs_flag_purchases_that_differ_by_pair() {
    let [batch, stream] = random_logs(7, 20, 150, 120, 2, 5);
    let outputs: Vec<Vec<u8>> = [(1, 2), (1, 10), (3, 2), (3, 10)]
        .iter()
        .map(|&(d, t)| model::run(batch.as_bytes(), stream.as_bytes(), Some(d), Some(t)).output)
        .collect();
    assert!(outputs.iter().all(|o| !o.is_empty()), "every pair flags");
    for (i, a) in outputs.iter().enumerate() {
        assert!(!outputs[i + 1..].contains(a), "pairs flag differently");
    }
}

// ---------------------------------------------------------------------------------------------
// The binary.

/// A case holding random logs big enough for windows, networks deeper than 3 and every pair
/// to flag something different.
fn random_case(seed: u64) -> Case {
    let [batch, stream] = random_logs(seed, 60, 1500, 600, 2, 5);
    Case::new(batch, stream)
}

fn pairs_of(degrees: &[u32], tracked: &[u32]) -> Vec<(u32, u32)> {
    degrees
        .iter()
        .flat_map(|&d| tracked.iter().map(move |&t| (d, t)))
        .collect()
}

#[test]
fn outputs_are_byte_identical_to_normal_runs() {
    let bundled = Case::new(
        fs::read(common::fixture("../../log_input/batch_log.json")).unwrap(),
        fs::read(common::fixture("../../log_input/stream_log.json")).unwrap(),
    );
    for (case, threads) in [
        (&bundled, "2"),
        (&random_case(3), "1"),
        (&random_case(4), "2"),
    ] {
        let run = case
            .cmd()
            .args(["sweep", "-D", "1..3,5", "-T", "2,7,50", "--outputs", "each"])
            .args(["--threads", threads, "--window", "13", BATCH, STREAM])
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", show(&run.stderr));
        let mut flagging = 0;
        for (d, t) in pairs_of(&[1, 2, 3, 5], &[2, 7, 50]) {
            let name = format!("flagged_D{d}_T{t}.json");
            let (d, t) = (d.to_string(), t.to_string());
            case.run(&["-D", &d, "-T", &t, "--threads", threads])
                .success();
            let swept = fs::read(case.path("each").join(&name)).unwrap();
            let single = case.output().unwrap();
            assert!(
                swept == single,
                "{name}:\n{}\nvs\n{}",
                show(&swept),
                show(&single)
            );
            flagging += usize::from(!single.is_empty());
        }
        assert!(flagging >= 6, "most pairs flag: {flagging}");
    }
}

/// Sums over a run's `--feed` and `--recommend` lines: flagged purchases, distinct buyers,
/// friends listed, suggestions listed.
fn social_sums(case: &Case, d: u32, t: u32) -> [u64; 4] {
    let (d, t) = (d.to_string(), t.to_string());
    case.run(&[
        "-D",
        &d,
        "-T",
        &t,
        "--feed",
        "feed.json",
        "--recommend",
        "rec.json",
    ])
    .success();
    let lines = |name: &str| -> Vec<serde_json::Value> {
        fs::read_to_string(case.path(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (feed, rec) = (lines("feed.json"), lines("rec.json"));
    let buyers: std::collections::BTreeSet<String> =
        feed.iter().map(|l| l["id"].to_string()).collect();
    let len = |l: &serde_json::Value, key: &str| l[key].as_array().unwrap().len() as u64;
    [
        feed.len() as u64,
        buyers.len() as u64,
        feed.iter().map(|l| len(l, "friends")).sum(),
        rec.iter().map(|l| len(l, "suggest")).sum(),
    ]
}

#[test]
fn csv_rows_agree_with_the_feed_and_recommendations_of_normal_runs() {
    let case = random_case(5);
    let checked = model::run(
        &fs::read(case.path(BATCH)).unwrap(),
        &fs::read(case.path(STREAM)).unwrap(),
        None,
        None,
    )
    .checks
    .len() as u64;
    for threads in ["1", "2"] {
        let run = case
            .cmd()
            .args([
                "sweep",
                "-D",
                "1,2,4",
                "-T",
                "3,20",
                "--csv",
                "-",
                "--threads",
                threads,
            ])
            .args(["--window", "17", BATCH, STREAM])
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", show(&run.stderr));
        let csv = show(&run.stdout);
        let mut rows = csv.lines();
        assert_eq!(
            rows.next(),
            Some(
                "D,T,flagged,share,buyers,feed,recommend,\
                 flagged_per_day,feed_per_day,recommend_per_day"
            )
        );
        let pairs = pairs_of(&[1, 2, 4], &[3, 20]);
        for ((d, t), row) in pairs.iter().zip(rows.by_ref()) {
            let [flagged, buyers, feed, recommend] = social_sums(&case, *d, *t);
            assert!(
                flagged > 0 && feed > 0 && recommend > 0,
                "D={d} T={t} flags"
            );
            let share = (flagged * 2_000_000 + checked) / (2 * checked);
            // The stream spans minutes: no daily rate.
            let expected = format!(
                "{d},{t},{flagged},{}.{:06},{buyers},{feed},{recommend},,,",
                share / 1_000_000,
                share % 1_000_000
            );
            assert_eq!(row, expected, "at {threads} threads");
        }
        assert_eq!(rows.next(), None, "one row per pair");
    }
}

#[test]
fn the_table_has_a_row_per_degree_and_marks_the_batch_pair() {
    let case = Case::from_fixture("official");
    let run = case
        .cmd()
        .args(["sweep", "-D", "1,3", "-T", "2,50", BATCH, STREAM])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", show(&run.stderr));
    assert_eq!(
        show(&run.stdout).split("\n\n").next().unwrap(),
        "Flagged stream purchases (share of the 1 checked) by D and T; \
         * the batch log's own D=3 T=50\n\
         \x20           T=2         T=50\n\
         D=1  1 (100.0%)   1 (100.0%)\n\
         D=3  1 (100.0%)  1 (100.0%)*"
    );
    // The summary line counts the marked pair's flags, as a normal run's would, and names it.
    assert!(
        show(&run.stderr).contains("; D=3 T=50: 1 of 1 stream purchase flagged; "),
        "{}",
        show(&run.stderr)
    );
    // Without the batch log's pair, the summary names the grid's first pair.
    let run = case
        .cmd()
        .args(["sweep", "-D", "1,2", "-T", "2,3", BATCH, STREAM])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", show(&run.stderr));
    assert!(
        show(&run.stderr).contains("; D=1 T=2: 1 of 1 stream purchase flagged; "),
        "{}",
        show(&run.stderr)
    );
}

#[test]
fn default_grid_is_one_to_three_and_five_baseline_sizes_with_the_batch_values() {
    let case = random_case(6);
    // The batch log says D=2, T=5.
    let run = case
        .cmd()
        .args(["sweep", "-q", "--csv", "grid.csv", BATCH, STREAM])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", show(&run.stderr));
    let csv = fs::read_to_string(case.path("grid.csv")).unwrap();
    let pairs: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|row| row.split(',').take(2).collect::<Vec<_>>().join(","))
        .collect();
    let expected: Vec<String> = pairs_of(&[1, 2, 3], &[5, 10, 20, 50, 100, 200])
        .iter()
        .map(|(d, t)| format!("{d},{t}"))
        .collect();
    assert_eq!(pairs, expected);
    let table = show(&run.stdout);
    assert_eq!(
        table.split("\n\n").next().unwrap().lines().count(),
        5,
        "title, header, three rows:\n{table}"
    );
    assert_eq!(
        table.matches('*').count(),
        2,
        "the title and one cell:\n{table}"
    );
}

#[test]
fn bad_lists_are_usage_errors() {
    let case = Case::from_fixture("official");
    for (option, list, problem) in [
        ("-D", "0", "D must be at least 1, got 0"),
        ("-D", "2,0", "D must be at least 1, got 0"),
        ("-D", "3..1", "the range `3..1` is empty"),
        ("-D", "1,,2", "empty item"),
        ("-D", "1..", "D must be a decimal integer"),
        ("-D", "+1", "D must be a decimal integer"),
        ("-T", "1", "T must be between 2 and 10000000, got 1"),
        ("-T", "1,5", "T must be between 2 and 10000000, got 1"),
        (
            "-T",
            "2..10000001",
            "T must be between 2 and 10000000, got 10000001",
        ),
        ("-T", "2..100", "more than 32 values"),
        ("-T", "x", "T must be a decimal integer"),
    ] {
        let run = case
            .cmd()
            .args(["sweep", option, list, BATCH, STREAM])
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{option} {list}");
        let stderr = show(&run.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: invalid value") && first.contains(problem),
            "{option} {list}: {stderr}"
        );
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn a_live_stream_and_unwritable_outputs_are_refused_before_any_work() {
    let case = Case::from_fixture("official");
    case.write("taken", "a file");
    for (args, message) in [
        (
            vec!["sweep", BATCH, "-"],
            "Error: -: a sweep replays STREAM from a file; standard input (live mode) is not \
             supported",
        ),
        (
            vec!["sweep", "--outputs", "taken", BATCH, STREAM],
            "Error: taken: cannot write: --outputs names a file, not a folder",
        ),
        (
            vec!["sweep", "--csv", BATCH, BATCH, STREAM],
            "Error: batch_log.json: --csv is the same file as BATCH (batch_log.json); nothing was written",
        ),
        (
            vec!["sweep", "--csv", "a", "--svg", "./a", BATCH, STREAM],
            "Error: ./a: --svg is the same file as --csv (a); nothing was written",
        ),
        (
            vec!["sweep", "--csv", "-", "--svg", "-", BATCH, STREAM],
            "Error: -: --svg and --csv are both standard output; at most one output may be `-`",
        ),
        (
            vec!["sweep", "--csv", "no/such/dir/a.csv", BATCH, STREAM],
            "Error: no/such/dir/a.csv: cannot write: its directory does not exist",
        ),
        (
            vec!["sweep", "--outputs", "no/sub", BATCH, STREAM],
            "Error: no/sub: cannot write: its directory does not exist",
        ),
    ] {
        let run = case.cmd().args(&args).output().unwrap();
        assert_eq!(run.status.code(), Some(2), "{args:?}");
        let stderr = show(&run.stderr);
        assert_eq!(stderr.trim_end(), message, "{args:?}");
        assert!(run.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(fs::read_to_string(case.path("taken")).unwrap(), "a file");
    assert_eq!(
        common::files_in(case.dir.path()),
        ["batch_log.json", "stream_log.json", "taken"]
    );
}

#[test]
fn the_heat_map_is_an_svg_with_a_cell_per_pair() {
    let case = random_case(8);
    let run = case
        .cmd()
        .args([
            "sweep", "-D", "1..2", "-T", "3,4,5", "--svg", "map.svg", BATCH, STREAM,
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", show(&run.stderr));
    let svg = fs::read_to_string(case.path("map.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for text in [
        "D: degrees of the network",
        "T: purchases in the baseline",
        "5*",
        "2*",
    ] {
        assert!(svg.contains(text), "{text}");
    }
    // The background, then per panel: per cell its fill and its border, the batch log's
    // pair's border, the legend's 20 steps and its frame.
    assert_eq!(
        svg.matches("<rect").count(),
        1 + 2 * (2 * 6 + 1 + 21),
        "{svg}"
    );
}

#[test]
fn a_batch_log_named_sweep_is_given_as_dot_slash_sweep() {
    let case = Case::from_fixture("official");
    fs::copy(case.path(BATCH), case.path("sweep")).unwrap();
    let run = case
        .cmd()
        .args(["./sweep", STREAM, "out.json"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", show(&run.stderr));
    assert_eq!(
        fs::read_to_string(case.path("out.json")).unwrap(),
        format!("{}\n", common::OFFICIAL_FLAGGED)
    );
}

// ---------------------------------------------------------------------------------------------
// Pipes and FIFOs are read as they come, in bounded memory, as in a run.

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Writes `bytes` into the FIFO at `path` from a thread (opening blocks until a reader comes).
fn feed_fifo(path: std::path::PathBuf, bytes: Vec<u8>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::Write;
        let mut fifo = fs::OpenOptions::new().write(true).open(path).unwrap();
        let _ = fifo.write_all(&bytes);
    })
}

#[test]
fn a_sweep_over_fifos_gives_the_sweep_over_files() {
    let case = random_case(5);
    let grid = ["sweep", "-D", "1..3", "-T", "2,7,50", "--threads", "2"];
    let files = case
        .cmd()
        .args(grid)
        .args(["--csv", "grid.csv", "--outputs", "each", BATCH, STREAM])
        .output()
        .unwrap();
    assert!(files.status.success(), "{}", show(&files.stderr));
    let (batch, stream) = (case.path("batch.fifo"), case.path("stream.fifo"));
    mkfifo(&batch);
    mkfifo(&stream);
    let feeds = [
        feed_fifo(batch, fs::read(case.path(BATCH)).unwrap()),
        feed_fifo(stream, fs::read(case.path(STREAM)).unwrap()),
    ];
    let fifos = case
        .cmd()
        .args(grid)
        .args(["--csv", "fifo.csv", "--outputs", "fifo"])
        .args(["batch.fifo", "stream.fifo"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    for feed in feeds {
        feed.join().unwrap();
    }
    assert!(fifos.status.success(), "{}", show(&fifos.stderr));
    assert_eq!(show(&fifos.stdout), show(&files.stdout));
    let renamed = |stderr: &[u8]| {
        show(stderr)
            .replace(BATCH, "batch.fifo")
            .replace(STREAM, "stream.fifo")
    };
    let summary = |text: String| -> String {
        // The times differ.
        text.lines()
            .map(|l| {
                l.split("; ")
                    .filter(|p| !p.ends_with(" s)"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .collect()
    };
    assert_eq!(
        summary(show(&fifos.stderr)),
        summary(renamed(&files.stderr))
    );
    assert_eq!(
        fs::read(case.path("fifo.csv")).unwrap(),
        fs::read(case.path("grid.csv")).unwrap()
    );
    for (d, t) in pairs_of(&[1, 2, 3], &[2, 7, 50]) {
        let name = format!("flagged_D{d}_T{t}.json");
        assert!(
            fs::read(case.path("fifo").join(&name)).unwrap()
                == fs::read(case.path("each").join(&name)).unwrap(),
            "{name}"
        );
    }
}

/// Peak resident memory of a running process in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `sweep b.json <(endless)`: a FIFO fed endless NUL bytes (no `\n`) as BATCH or STREAM is
/// read in bounded memory, and Ctrl-C stops the sweep at once, writing nothing.
#[test]
fn a_sweep_over_an_endless_fifo_is_read_in_bounded_memory_and_stops_on_ctrl_c() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};
    for endless_stream in [true, false] {
        let case = Case::from_fixture("official");
        let fifo = case.path("zeros");
        mkfifo(&fifo);
        let written = Arc::new(AtomicU64::new(0));
        let counter = written.clone();
        let feeder = std::thread::spawn(move || {
            use std::io::Write;
            let mut out = fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let zeros = vec![0u8; 1 << 20];
            while out.write_all(&zeros).is_ok() {
                counter.fetch_add(zeros.len() as u64, Ordering::SeqCst);
            }
        });
        let inputs = if endless_stream {
            [BATCH, "zeros"]
        } else {
            ["zeros", STREAM]
        };
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("anomaly-detect"))
            .current_dir(case.dir.path())
            .args(["sweep", "--csv", "grid.csv"])
            .args(inputs)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while written.load(Ordering::SeqCst) < 512 << 20 {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the sweep goes on reading"
            );
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("reading is slow");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let peak = peak_rss_kib(child.id());
        eprintln!("sweep, peak RSS after 512 MiB of NUL bytes: {peak} KiB");
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let stopped = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if stopped.elapsed() > Duration::from_secs(2) {
                let _ = child.kill();
                panic!("Ctrl-C did not stop the sweep within 2 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = child.wait_with_output().unwrap();
        assert!(peak < 400 << 10, "peak RSS {peak} KiB");
        assert_eq!(out.status.code(), Some(130), "{}", show(&out.stderr));
        assert_eq!(
            show(&out.stderr),
            "Error: interrupted: the output was not saved\n"
        );
        assert!(out.stdout.is_empty());
        assert!(!case.path("grid.csv").exists());
        feeder.join().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Any grid works under the open-file limit.

/// `anomaly-detect sweep ARGS` in the case's folder under `ulimit LIMIT` (`-n 64`: soft and
/// hard; `-Sn 64`: soft only).
fn sweep_limited(case: &Case, limit: &str, args: &[&str]) -> std::process::Output {
    let exe = assert_cmd::cargo::cargo_bin("anomaly-detect");
    std::process::Command::new("bash")
        .current_dir(case.dir.path())
        .arg("-c")
        .arg(format!("ulimit {limit} && exec \"$0\" sweep \"$@\""))
        .arg(exe)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_grid_with_more_pair_files_than_open_files_allowed_is_written_whole() {
    let case = random_case(6);
    // 6 x 6 pairs: 72 descriptors through the output plan, more than 64.
    let grid = [
        "-D",
        "1..6",
        "-T",
        "2..7",
        "--threads",
        "2",
        "--csv",
        "grid.csv",
    ];
    let unlimited = case
        .cmd()
        .args(["sweep"])
        .args(grid)
        .args(["--outputs", "each", BATCH, STREAM])
        .output()
        .unwrap();
    assert!(unlimited.status.success(), "{}", show(&unlimited.stderr));
    let names: Vec<String> = pairs_of(&[1, 2, 3, 4, 5, 6], &[2, 3, 4, 5, 6, 7])
        .iter()
        .map(|(d, t)| format!("flagged_D{d}_T{t}.json"))
        .collect();
    for (limit, folder) in [("-Sn 64", "raised"), ("-n 64", "limited")] {
        fs::create_dir(case.path(folder)).unwrap();
        fs::write(case.path(folder).join(&names[0]), "previous\n").unwrap();
        let mut args = grid.to_vec();
        args.extend(["--outputs", folder, BATCH, STREAM]);
        let run = sweep_limited(&case, limit, &args);
        assert!(
            run.status.success(),
            "ulimit {limit}: {}",
            show(&run.stderr)
        );
        assert_eq!(show(&run.stdout), show(&unlimited.stdout), "ulimit {limit}");
        let mut written = common::files_in(&case.path(folder));
        written.sort();
        let mut expected = names.clone();
        expected.sort();
        assert_eq!(
            written, expected,
            "ulimit {limit}: the pair files, nothing else"
        );
        for name in &names {
            assert!(
                fs::read(case.path(folder).join(name)).unwrap()
                    == fs::read(case.path("each").join(name)).unwrap(),
                "ulimit {limit}: {name}"
            );
        }
    }

    // A sweep that fails (a dirty line under --strict) replaces nothing and leaves nothing.
    let mut args = grid.to_vec();
    args.extend(["--outputs", "limited", "--strict", BATCH, STREAM]);
    fs::write(case.path("limited").join(&names[0]), "previous\n").unwrap();
    let failed = sweep_limited(&case, "-n 64", &args);
    assert_eq!(failed.status.code(), Some(2), "{}", show(&failed.stderr));
    assert_eq!(
        fs::read_to_string(case.path("limited").join(&names[0])).unwrap(),
        "previous\n"
    );
    assert_eq!(common::files_in(&case.path("limited")).len(), names.len());

    // The largest grid a sweep accepts, 32 x 32, under 64 open files.
    let official = Case::from_fixture("official");
    let args = [
        "-D",
        "1..32",
        "-T",
        "2..33",
        "--outputs",
        "all",
        BATCH,
        STREAM,
    ];
    let run = sweep_limited(&official, "-n 64", &args);
    assert!(run.status.success(), "{}", show(&run.stderr));
    let all = common::files_in(&official.path("all"));
    assert_eq!(all.len(), 32 * 32);
    for (d, t) in [("1", "2"), ("3", "33")] {
        official.run(&["-D", d, "-T", t]).success();
        let name = format!("flagged_D{d}_T{t}.json");
        assert_eq!(
            fs::read(official.path("all").join(name)).unwrap(),
            official.output().unwrap()
        );
    }
}

#[test]
fn a_degree_beyond_32_bits_is_named_as_given() {
    let case = Case::from_fixture("official");
    let run = case
        .cmd()
        .args([
            "sweep",
            "-q",
            "-D",
            "1,0099999999999",
            "-T",
            "2",
            "--outputs",
            "out",
            "--csv",
            "grid.csv",
            BATCH,
            STREAM,
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", show(&run.stderr));
    assert_eq!(
        common::files_in(&case.path("out")),
        ["flagged_D1_T2.json", "flagged_D99999999999_T2.json"]
    );
    let csv = fs::read_to_string(case.path("grid.csv")).unwrap();
    assert!(csv.contains("\n99999999999,2,"), "{csv}");
    assert!(
        show(&run.stdout).contains("\nD=99999999999 "),
        "{}",
        show(&run.stdout)
    );
    // The file holds what a run with that D writes.
    let single = case
        .cmd()
        .args([
            "-q",
            "-D",
            "99999999999",
            "-T",
            "2",
            BATCH,
            STREAM,
            "one.json",
        ])
        .output()
        .unwrap();
    assert!(single.status.success(), "{}", show(&single.stderr));
    assert_eq!(
        fs::read(case.path("out/flagged_D99999999999_T2.json")).unwrap(),
        fs::read(case.path("one.json")).unwrap()
    );
    // `4294967295` itself is named by its value.
    let run = case
        .cmd()
        .args([
            "sweep",
            "-q",
            "-D",
            "4294967295",
            "-T",
            "2",
            "--outputs",
            "max",
            BATCH,
            STREAM,
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", show(&run.stderr));
    assert_eq!(
        common::files_in(&case.path("max")),
        ["flagged_D4294967295_T2.json"]
    );
}
