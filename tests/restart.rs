//! Crash tests of a restartable live run (`--follow --state DIR`): a writer appends a generated
//! stream to a followed file, rotating it both ways (rename + create, copytruncate with the
//! copy kept beside it), while the program is killed with SIGKILL at random moments (some
//! while a checkpoint is being written, some while it is down across a rotation) and started
//! again with the same `--state`. At the end every output (flagged purchases, feed,
//! recommendations) must be byte for byte the file replay's of all the lines: nothing written
//! twice, nothing lost.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{BATCH, Case, OUTPUT, STREAM, show};

const FEED: &str = "feed.json";
const RECOMMEND: &str = "recommend.json";
const STATE: &str = "state";

/// A small random generator (xorshift), seeded per test so a failure can be replayed.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// A generated case with many flags, and the file replay's three outputs.
fn crash_case(seed: u64) -> (Case, Vec<String>, [Vec<u8>; 3]) {
    let dir = tempfile::tempdir().unwrap();
    let run = Command::new(assert_cmd::cargo::cargo_bin("gen-log"))
        .args(["--users", "300", "--batch-events", "20000"])
        .args(["--stream-events", "4000", "--anomaly-rate", "0.05"])
        .args(["--seed", &seed.to_string()])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", show(&run.stderr));
    let case = Case::new(
        fs::read(dir.path().join(BATCH)).unwrap(),
        fs::read(dir.path().join(STREAM)).unwrap(),
    );
    case.run(&["--feed", FEED, "--recommend", RECOMMEND])
        .success();
    let expected = [OUTPUT, FEED, RECOMMEND].map(|name| fs::read(case.path(name)).unwrap());
    let flags = expected[0].iter().filter(|&&b| b == b'\n').count();
    assert!(flags > 60, "many flags: {flags}");
    for name in [OUTPUT, FEED, RECOMMEND] {
        fs::remove_file(case.path(name)).unwrap();
    }
    let stream = show(&fs::read(case.path(STREAM)).unwrap());
    let lines = stream.lines().map(|l| format!("{l}\n")).collect();
    fs::remove_file(case.path(STREAM)).unwrap();
    (case, lines, expected)
}

/// The live run, followed file `live.json`, with every output and frequent checkpoints.
fn start(case: &Case) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("anomaly-detect"))
        .current_dir(case.dir.path())
        .args([BATCH, "live.json", OUTPUT, "--follow", "--quiet"])
        .args(["--feed", FEED, "--recommend", RECOMMEND, "--threads", "2"])
        .args(["--state", STATE, "--checkpoint-seconds", "1"])
        .args(["--checkpoint-events", "40"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

fn kill9(mut child: Child) {
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

/// Kills `child` with SIGKILL; its standard error (piped).
fn kill9_stderr(mut child: Child) -> String {
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let mut stderr = String::new();
    if let Some(err) = child.stderr.as_mut() {
        let _ = std::io::Read::read_to_string(err, &mut stderr);
    }
    stderr
}

/// What a crash test did, kept to explain a failure: every rotation, append, start (with the
/// checkpoint it resumed from), kill and each run's standard error; written to
/// `evidence.txt` in the case's folder, which a failure keeps.
#[derive(Default)]
struct Evidence(Vec<String>);

impl Evidence {
    fn note(&mut self, what: impl Into<String>) {
        self.0.push(what.into());
    }

    /// The checkpoint in `state` as a run starting now finds it.
    fn checkpoint(&mut self, dir: &Path, run: usize) {
        let state = dir.join(STATE);
        let said = match fs::read(state.join("checkpoint")) {
            Err(_) => "no checkpoint".to_string(),
            Ok(bytes) => match anomaly_detect::live::checkpoint::decode(&bytes) {
                Ok(c) => format!(
                    "{:?}; outputs {:?}",
                    c.position,
                    c.outputs.iter().map(|m| m.len).collect::<Vec<_>>()
                ),
                Err(e) => format!("undecodable: {e}"),
            },
        };
        let start = fs::read_to_string(state.join("stream-start")).unwrap_or_default();
        self.note(format!(
            "start run {run} from {said}{}; files: {}",
            if start.is_empty() {
                String::new()
            } else {
                format!("; stream-start {}", start.trim())
            },
            files(dir)
        ));
    }

    /// Writes `evidence.txt` in `dir`, keeps `dir` and returns the text to print.
    fn keep(&self, dir: tempfile::TempDir) -> String {
        let text = self.0.join("\n");
        let path = dir.keep();
        let _ = fs::write(path.join("evidence.txt"), &text);
        format!("{text}\n(kept in {})", path.display())
    }
}

/// The folder's regular files with their inode and length (the followed file and its copies).
fn files(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("live.json"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some(format!(
                "{}(ino {}, {} B)",
                e.file_name().to_string_lossy(),
                meta.ino(),
                meta.len()
            ))
        })
        .collect();
    names.sort();
    names.join(" ")
}

/// The followed file and its rotations: copies get growing numbers (`live.json.1`, ...) and are
/// all kept, so nothing is truly lost.
struct Followed {
    dir: PathBuf,
    rotations: usize,
}

impl Followed {
    fn path(&self) -> PathBuf {
        self.dir.join("live.json")
    }

    fn append(&self, text: &str) {
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path())
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    fn rotate(&mut self, copytruncate: bool) {
        self.rotations += 1;
        let aside = self.dir.join(format!("live.json.{}", self.rotations));
        if copytruncate {
            fs::copy(self.path(), &aside).unwrap();
            fs::OpenOptions::new()
                .write(true)
                .open(self.path())
                .unwrap()
                .set_len(0)
                .unwrap();
        } else {
            fs::rename(self.path(), &aside).unwrap();
            fs::write(self.path(), "").unwrap();
        }
    }
}

/// Waits up to `limit` for a temporary file in the state directory (a checkpoint being
/// written); whether one was seen.
fn checkpoint_in_progress(state: &Path, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(entries) = fs::read_dir(state)
            && entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        {
            return true;
        }
        thread::yield_now();
    }
    false
}

/// Appends the stream in random pieces with `kills` SIGKILLs at random moments, rotations
/// while running and while down, then lets a last run catch up and stop with SIGTERM; every
/// output must be the file replay's.
fn crash_and_resume(seed: u64, kills: usize) {
    let started = Instant::now();
    let (case, lines, expected) = crash_case(seed);
    let mut random = Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut followed = Followed {
        dir: case.dir.path().to_path_buf(),
        rotations: 0,
    };
    let mut evidence = Evidence::default();
    followed.append("");
    let mut next = 0;
    let append_some =
        |followed: &Followed, random: &mut Random, next: &mut usize, evidence: &mut Evidence| {
            let n = 1 + random.below(lines.len() as u64 / kills as u64 / 2) as usize;
            let end = (*next + n).min(lines.len());
            followed.append(&lines[*next..end].concat());
            evidence.note(format!("append lines {}..{end}", *next));
            *next = end;
        };
    let rotate = |followed: &mut Followed, copytruncate: bool, evidence: &mut Evidence| {
        followed.rotate(copytruncate);
        evidence.note(format!(
            "rotate ({}) to live.json.{}",
            if copytruncate {
                "copytruncate"
            } else {
                "rename + create"
            },
            followed.rotations
        ));
    };
    let mut in_checkpoint = 0;
    for kill in 0..kills {
        // Down: sometimes a rotation, and lines written meanwhile.
        if random.below(4) == 0 {
            rotate(&mut followed, random.below(2) == 0, &mut evidence);
        }
        append_some(&followed, &mut random, &mut next, &mut evidence);
        evidence.checkpoint(case.dir.path(), kill);
        let child = start(&case);
        thread::sleep(Duration::from_millis(20 + random.below(150)));
        append_some(&followed, &mut random, &mut next, &mut evidence);
        if random.below(5) == 0 {
            let copytruncate = random.below(2) == 0;
            rotate(&mut followed, copytruncate, &mut evidence);
            if copytruncate {
                // One line, then a pause: the run sees the file shrink before it regrows.
                if next < lines.len() {
                    followed.append(&lines[next]);
                    evidence.note(format!("append line {next}"));
                    next += 1;
                }
                thread::sleep(Duration::from_millis(100));
            }
            append_some(&followed, &mut random, &mut next, &mut evidence);
        }
        let during =
            kill % 3 == 0 && checkpoint_in_progress(&case.path(STATE), Duration::from_millis(1500));
        if during {
            in_checkpoint += 1;
        } else {
            thread::sleep(Duration::from_millis(random.below(200)));
        }
        let stderr = kill9_stderr(child);
        evidence.note(format!(
            "kill run {kill}{}; flagged {} lines; stderr: {}",
            if during {
                " while a checkpoint was written"
            } else {
                ""
            },
            fs::read(case.path(OUTPUT))
                .unwrap_or_default()
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            stderr.trim_end()
        ));
    }
    followed.append(&lines[next..].concat());
    evidence.note(format!("append lines {next}..{}", lines.len()));
    evidence.checkpoint(case.dir.path(), kills);
    let mut last = start(&case);
    let deadline = Instant::now() + Duration::from_secs(30);
    let done =
        || [OUTPUT, FEED, RECOMMEND].map(|name| fs::read(case.path(name)).unwrap_or_default());
    while done()[0].len() < expected[0].len() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300)); // nothing more comes
    let _ = Command::new("kill")
        .args(["-TERM", &last.id().to_string()])
        .status();
    let status = last.wait().unwrap();
    let mut stderr = String::new();
    if let Some(err) = last.stderr.as_mut() {
        let _ = std::io::Read::read_to_string(err, &mut stderr);
    }
    evidence.note(format!(
        "last run stopped: {status}; stderr: {}",
        stderr.trim_end()
    ));
    let outcome = done();
    let mismatch = [OUTPUT, FEED, RECOMMEND]
        .iter()
        .zip(outcome.iter().zip(&expected))
        .find(|(_, (got, want))| got != want);
    if status.code() != Some(0) || mismatch.is_some() {
        let what = match mismatch {
            Some((name, (got, want))) => {
                let (got, want) = (show(got), show(want));
                let first = got
                    .lines()
                    .zip(want.lines())
                    .position(|(g, w)| g != w)
                    .unwrap_or(got.lines().count().min(want.lines().count()));
                format!(
                    "{name}: {} lines, {} expected; first difference at line {}:\n  got  {}\n  want {}",
                    got.lines().count(),
                    want.lines().count(),
                    first + 1,
                    got.lines().nth(first).unwrap_or("(none)"),
                    want.lines().nth(first).unwrap_or("(none)")
                )
            }
            None => format!("the last run ended with {status}"),
        };
        panic!(
            "{what} (seed {seed}, {kills} kills, {in_checkpoint} in a checkpoint)\n{}",
            evidence.keep(case.dir)
        );
    }
    assert!(
        in_checkpoint > 0,
        "some kills while a checkpoint was written"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn outputs_are_exact_after_kills_and_rotations_seed_1() {
    crash_and_resume(1, 25);
}

#[test]
fn outputs_are_exact_after_kills_and_rotations_seed_2() {
    crash_and_resume(2, 25);
}

#[test]
fn outputs_are_exact_after_kills_and_rotations_seed_3() {
    crash_and_resume(3, 25);
}

/// A live run on standard input with `--state`: `cat FILE | anomaly-detect ... -` until the
/// end of `input`, in the case's directory; its status and standard error.
fn stdin_run(case: &Case, input: &str, state: bool) -> (Option<i32>, String) {
    let mut args = vec![
        "--quiet",
        "--feed",
        FEED,
        "--recommend",
        RECOMMEND,
        "--threads",
        "2",
    ];
    if state {
        args.extend(["--state", STATE]);
    }
    run_on_stdin(case, input, &args)
}

/// A live run on standard input, `BATCH - OUTPUT` and `args`, fed `input`: its exit status
/// and standard error.
fn run_on_stdin(case: &Case, input: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("anomaly-detect"))
        .current_dir(case.dir.path())
        .args([BATCH, "-", OUTPUT])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), show(&out.stderr))
}

fn outputs(case: &Case) -> [Vec<u8>; 3] {
    [OUTPUT, FEED, RECOMMEND].map(|name| fs::read(case.path(name)).unwrap_or_default())
}

/// Standard input resumed as the README's `kcat -o` recipe does, with a file standing in for
/// the topic: each run reads `tail -n +K` of it, K one more than `DIR/stdin-lines`, and the
/// outputs end as the file replay's. When `stdin-lines` lags the checkpoint (a run killed
/// between the two), the lines the checkpoint holds beyond it are read and dropped.
#[test]
fn standard_input_resumes_after_the_lines_the_state_directory_names() {
    let (case, lines, expected) = crash_case(11);
    let topic: String = lines.concat();
    case.write("topic.json", &topic);
    let cuts = [0, 700, 701, 1900, 3000, lines.len()];
    for pair in cuts.windows(2) {
        let consumed: usize = fs::read_to_string(case.path(STATE).join("stdin-lines"))
            .map_or(0, |text| text.trim().parse().unwrap());
        assert_eq!(consumed, pair[0], "stdin-lines after {} lines", pair[0]);
        if pair[0] == 1900 {
            // As after a kill between the checkpoint and stdin-lines: 25 lines behind.
            fs::write(case.path(STATE).join("stdin-lines"), "1875\n").unwrap();
        }
        let from: usize = fs::read_to_string(case.path(STATE).join("stdin-lines"))
            .map_or(0, |text| text.trim().parse().unwrap());
        // `tail -n +K topic.json | head -n (cut - from)`: the topic read from line K.
        let tail = Command::new("tail")
            .args(["-n", &format!("+{}", from + 1), "topic.json"])
            .current_dir(case.dir.path())
            .output()
            .unwrap();
        let input = show(&tail.stdout);
        let part: String = input.split_inclusive('\n').take(pair[1] - from).collect();
        let (status, stderr) = stdin_run(&case, &part, true);
        assert_eq!(status, Some(0), "{stderr}");
    }
    assert!(
        outputs(&case) == expected,
        "the outputs are the file replay's"
    );
}

/// `--state` changes no decision: a live run on standard input with it writes what one
/// without it writes, and what the file replay writes.
#[test]
fn a_state_directory_changes_no_decision() {
    let (case, lines, expected) = crash_case(12);
    let all = lines.concat();
    for state in [false, true] {
        let (status, stderr) = stdin_run(&case, &all, state);
        assert_eq!(status, Some(0), "{stderr}");
        assert!(outputs(&case) == expected, "with --state: {state}");
        for name in [OUTPUT, FEED, RECOMMEND] {
            fs::remove_file(case.path(name)).unwrap();
        }
    }
}

/// A first run killed before its first interval passed has written flags: the checkpoint
/// saved before the stream's first line makes the restart resume after them, not write them
/// twice.
#[test]
fn a_first_run_killed_before_its_first_interval_writes_nothing_twice() {
    let (case, lines, expected) = crash_case(13);
    let followed = Followed {
        dir: case.dir.path().to_path_buf(),
        rotations: 0,
    };
    followed.append(&lines[..2000].concat());
    let child = Command::new(assert_cmd::cargo::cargo_bin("anomaly-detect"))
        .current_dir(case.dir.path())
        .args([BATCH, "live.json", OUTPUT, "--follow", "--quiet"])
        .args(["--feed", FEED, "--recommend", RECOMMEND])
        .args(["--state", STATE, "--checkpoint-seconds", "3600"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while outputs(&case)[0].is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(200));
    kill9(child);
    assert!(!outputs(&case)[0].is_empty(), "the first run flagged lines");
    followed.append(&lines[2000..].concat());
    let mut last = start(&case);
    let deadline = Instant::now() + Duration::from_secs(20);
    while outputs(&case)[0].len() < expected[0].len() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-TERM", &last.id().to_string()])
        .status();
    assert_eq!(last.wait().unwrap().code(), Some(0));
    assert!(outputs(&case) == expected, "nothing written twice");
}

/// A first run killed while it replays the batch (before its first checkpoint) has recorded
/// the file it follows (`DIR/stream-start`): the followed file renamed away meanwhile is read
/// to its end by the next run before the new one, nothing lost.
#[test]
fn a_first_run_killed_before_its_first_checkpoint_keeps_the_file_it_started_on() {
    let dir = tempfile::tempdir().unwrap();
    let run = Command::new(assert_cmd::cargo::cargo_bin("gen-log"))
        .args(["--users", "300", "--batch-events", "400000"])
        .args([
            "--stream-events",
            "2000",
            "--anomaly-rate",
            "0.05",
            "--seed",
            "14",
        ])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", show(&run.stderr));
    let case = Case::new(
        fs::read(dir.path().join(BATCH)).unwrap(),
        fs::read(dir.path().join(STREAM)).unwrap(),
    );
    case.run(&[]).success();
    let expected = fs::read(case.path(OUTPUT)).unwrap();
    fs::remove_file(case.path(OUTPUT)).unwrap();
    let stream = show(&fs::read(case.path(STREAM)).unwrap());
    let lines: Vec<String> = stream.lines().map(|l| format!("{l}\n")).collect();
    let followed = Followed {
        dir: case.dir.path().to_path_buf(),
        rotations: 0,
    };
    followed.append(&lines[..500].concat());
    let live = |case: &Case| {
        Command::new(assert_cmd::cargo::cargo_bin("anomaly-detect"))
            .current_dir(case.dir.path())
            .args([
                BATCH,
                "live.json",
                OUTPUT,
                "--follow",
                "--quiet",
                "--state",
                STATE,
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let child = live(&case);
    let state = case.path(STATE);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !state.join("stream-start").exists() && Instant::now() < deadline {
        thread::yield_now();
    }
    kill9(child);
    assert!(
        !state.join("checkpoint").exists(),
        "killed before the first checkpoint (the batch takes longer)"
    );
    let mut followed = followed;
    followed.rotate(false);
    followed.append(&lines[500..].concat());
    let mut last = live(&case);
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::read(case.path(OUTPUT)).unwrap_or_default().len() < expected.len()
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-TERM", &last.id().to_string()])
        .status();
    assert_eq!(last.wait().unwrap().code(), Some(0));
    assert!(fs::read(case.path(OUTPUT)).unwrap() == expected);
    assert!(
        !state.join("stream-start").exists(),
        "removed once a checkpoint is saved"
    );
}

/// A resumed run's summary and `--stats` say that the batch's state came from the checkpoint
/// (the batch log is not read: no events counted for it), not that the batch was empty.
#[test]
fn a_resumed_run_says_its_state_was_restored() {
    let (case, lines, _) = crash_case(14);
    let half = lines.len() / 2;
    for (part, restored) in [(&lines[..half], false), (&lines[half..], true)] {
        let args = ["--state", STATE, "--stats", "stats.json"];
        let (status, stderr) = run_on_stdin(&case, &part.concat(), &args);
        assert_eq!(status, Some(0), "{stderr}");
        let stats = fs::read_to_string(case.path("stats.json")).unwrap();
        let said = format!("{BATCH}: restored from {STATE}, -: {} events", part.len());
        assert_eq!(stderr.contains(&said), restored, "{stderr}");
        assert_eq!(
            stats.contains(&format!("\"restored_from\": \"{STATE}\"")),
            restored,
            "{stats}"
        );
        assert!(stats.contains(&format!("\"file\": \"{BATCH}\"")), "{stats}");
    }
}
