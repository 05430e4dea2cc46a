//! Live mode end to end: the stream read from standard input (`-`) or followed as it grows
//! (`--follow`), flags written and flushed as soon as they are decided, Ctrl-C / SIGTERM as the
//! normal end of a live run, and an interrupted file-mode run as a failure that saves nothing.
//! The binary runs as a child process with pipes; every wait has a time limit, so a failure
//! cannot hang the test, and a child still running when a test fails is killed.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{BATCH, Case, OUTPUT, STREAM, files_in, show};

/// How long a test waits for something the program should do at once.
const TIMEOUT: Duration = Duration::from_secs(10);

fn exe() -> PathBuf {
    assert_cmd::cargo::cargo_bin("anomaly-detect")
}

// ---------------------------------------------------------------------------------------------
// A running child.

/// The binary running in a directory, its stdout read line by line and its stderr collected on
/// threads of their own (so it never blocks on a full pipe). Killed when dropped still running.
struct Live {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<Vec<u8>>,
    stderr: Option<JoinHandle<String>>,
}

/// How a child ended.
#[derive(Debug)]
struct Finished {
    code: Option<i32>,
    /// What stdout held that was not taken with [`Live::next_line`].
    stdout: Vec<u8>,
    stderr: String,
}

impl Live {
    fn spawn(dir: &Path, args: &[&str]) -> Live {
        let mut child = Command::new(exe())
            .current_dir(dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stdin = child.stdin.take();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            loop {
                let mut line = Vec::new();
                match out.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Live {
            child,
            stdin,
            stdout: rx,
            stderr: Some(stderr),
        }
    }

    /// Writes to the child's stdin and flushes.
    fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Writes `bytes` to stdin from a thread, in pieces of varied sizes with short pauses, then
    /// closes stdin.
    fn feed_and_close(&mut self, bytes: Vec<u8>) -> JoinHandle<()> {
        let mut stdin = self.stdin.take().expect("stdin is open");
        thread::spawn(move || {
            let sizes = [1, 7, 100, 4096, 333, 2, 1500];
            let (mut at, mut n) = (0, 0);
            while at < bytes.len() {
                let end = (at + sizes[n % sizes.len()]).min(bytes.len());
                stdin.write_all(&bytes[at..end]).unwrap();
                stdin.flush().unwrap();
                at = end;
                n += 1;
                if n % 25 == 0 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
        })
    }

    /// The next line on stdout, waiting at most [`TIMEOUT`].
    fn next_line(&self) -> String {
        let line = self
            .stdout
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|e| panic!("no output line within {TIMEOUT:?}: {e}"));
        show(&line)
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends a signal (`INT`, `TERM`) with `kill`.
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits at most `limit` for the child to end.
    fn finish(mut self, limit: Duration) -> Finished {
        self.stdin = None;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < limit,
                "the run did not end within {limit:?}"
            );
            thread::sleep(Duration::from_millis(10));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        let stdout = self.stdout.iter().flatten().collect();
        Finished {
            code: status.code(),
            stdout,
            stderr,
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits at most [`TIMEOUT`] for the file at `path` to hold exactly `expected`.
fn wait_for_file(path: &Path, expected: &str) {
    let started = Instant::now();
    loop {
        let now = fs::read(path).unwrap_or_default();
        if now == expected.as_bytes() {
            return;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "{} holds {:?}, expected {expected:?}",
            path.display(),
            show(&now)
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Appends to a file and flushes.
fn append(path: &Path, bytes: &str) {
    let mut file = fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes.as_bytes()).unwrap();
    file.flush().unwrap();
}

/// Asserts that `stderr` is exactly the summary line starting with `prefix` (times vary).
fn assert_only_summary(stderr: &str, prefix: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {stderr}");
    assert!(
        lines[0].starts_with(prefix) && lines[0].ends_with(" s)"),
        "summary {:?} does not start with {prefix:?}",
        lines[0]
    );
}

/// Stderr with the varying times cut off the summary line.
fn without_times(stderr: &str) -> String {
    stderr
        .lines()
        .map(|l| match l.find(" flagged; ") {
            Some(at) => &l[..at + " flagged; ".len()],
            None => l,
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Logs.

fn purchase(second: u32, id: &str, amount: &str) -> String {
    format!(
        r#"{{"event_type":"purchase", "timestamp":"2017-06-13 11:00:{second:02}", "id": "{id}", "amount": "{amount}"}}"#
    )
}

fn befriend(second: u32, a: &str, b: &str) -> String {
    format!(
        r#"{{"event_type":"befriend", "timestamp":"2017-06-13 11:00:{second:02}", "id1": "{a}", "id2": "{b}"}}"#
    )
}

/// The output line of a flagged purchase.
fn flagged(line: &str, mean: &str, sd: &str) -> String {
    let body = line.strip_suffix('}').expect("a line ends with }");
    format!("{body}, \"mean\": \"{mean}\", \"sd\": \"{sd}\"}}\n")
}

/// D = 1, T = 50; 1 and 2 are friends; 2 bought 1.00 twice.
const SMALL_BATCH: &str = concat!(
    "{\"D\":\"1\", \"T\":\"50\"}\n",
    "{\"event_type\":\"befriend\", \"timestamp\":\"2017-06-13 10:00:00\", \"id1\": \"1\", \"id2\": \"2\"}\n",
    "{\"event_type\":\"purchase\", \"timestamp\":\"2017-06-13 10:00:01\", \"id\": \"2\", \"amount\": \"1.00\"}\n",
    "{\"event_type\":\"purchase\", \"timestamp\":\"2017-06-13 10:00:02\", \"id\": \"2\", \"amount\": \"1.00\"}\n",
);

/// Stream lines over [`SMALL_BATCH`]; the third and the fifth are flagged, with the lines
/// they give.
fn small_stream() -> ([String; 5], [String; 2]) {
    let lines = [
        // 1 against {1.00, 1.00}: not flagged.
        purchase(1, "1", "1.00"),
        befriend(2, "1", "3"),
        // 1 against {1.00, 1.00}: flagged.
        purchase(3, "1", "100.00"),
        // 3 against 1's {1.00, 100.00}: mean 50.50, sd 49.50; not flagged.
        purchase(4, "3", "0.50"),
        // 2 against 1's {1.00, 100.00}: flagged.
        purchase(5, "2", "500.00"),
    ];
    let out = [
        flagged(&lines[2], "1.00", "0.00"),
        flagged(&lines[4], "50.50", "49.50"),
    ];
    (lines, out)
}

/// A generated log with dirty lines, CRLF line ends, byte-order marks and a stream whose last
/// line has no line end.
fn dirty_case() -> Case {
    let dir = tempfile::tempdir().unwrap();
    let run = Command::new(assert_cmd::cargo::cargo_bin("gen-log"))
        .args(["--users", "300", "--batch-events", "20000"])
        .args(["--stream-events", "5000", "--dirty-rate", "0.02"])
        .args(["--disorder-rate", "0.01", "--anomaly-rate", "0.05"])
        .args(["--crlf", "--seed", "3", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", show(&run.stderr));
    let with_bom = |name: &str| {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend(fs::read(dir.path().join(name)).unwrap());
        bytes
    };
    let mut stream = with_bom(STREAM);
    while stream.ends_with(b"\n") || stream.ends_with(b"\r") {
        stream.pop();
    }
    Case::new(with_bom(BATCH), stream)
}

fn official_case() -> Case {
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("log_input");
    Case::new(
        fs::read(input.join(BATCH)).unwrap(),
        fs::read(input.join(STREAM)).unwrap(),
    )
}

// ---------------------------------------------------------------------------------------------
// Live output is the file replay's output.

fn assert_live_matches_file_mode(case: &Case) {
    let stream = fs::read(case.path(STREAM)).unwrap();
    for threads in ["1", "2"] {
        let file = case.run(&["--threads", threads]).success();
        let expected = case.output().unwrap();
        assert!(!expected.is_empty(), "the case flags something");
        let file_stderr = without_times(&file.stderr).replace(STREAM, "-");

        fs::remove_file(case.path(OUTPUT)).unwrap();
        let mut live = Live::spawn(case.dir.path(), &[BATCH, "-", OUTPUT, "--threads", threads]);
        live.feed_and_close(stream.clone()).join().unwrap();
        let done = live.finish(TIMEOUT);
        assert_eq!(done.code, Some(0), "{}", done.stderr);
        assert_eq!(
            show(&case.output().unwrap()),
            show(&expected),
            "threads {threads}"
        );
        assert_eq!(case.output().unwrap(), expected);
        assert_eq!(done.stdout, b"");
        assert_eq!(without_times(&done.stderr), file_stderr);

        fs::remove_file(case.path(OUTPUT)).unwrap();
        let mut live = Live::spawn(case.dir.path(), &[BATCH, "-", "-", "--threads", threads]);
        live.feed_and_close(stream.clone()).join().unwrap();
        let done = live.finish(TIMEOUT);
        assert_eq!(done.code, Some(0), "{}", done.stderr);
        assert_eq!(
            show(&done.stdout),
            show(&expected),
            "stdout, threads {threads}"
        );
        assert_eq!(done.stdout, expected);
        assert!(case.output().is_none(), "no output file with OUTPUT -");
        assert_eq!(without_times(&done.stderr), file_stderr);
    }
}

#[test]
fn stdin_gives_the_file_replay_bytes_on_the_official_log() {
    assert_live_matches_file_mode(&official_case());
}

#[test]
fn stdin_gives_the_file_replay_bytes_on_a_dirty_crlf_log() {
    assert_live_matches_file_mode(&dirty_case());
}

// ---------------------------------------------------------------------------------------------
// Flags leave as soon as they are decided.

#[test]
fn a_flag_leaves_before_stdin_is_closed() {
    let (lines, out) = small_stream();
    // A final flagged line without a line end is decided at the end of the input.
    let last = purchase(6, "3", "900.00");
    for config in [
        &["--threads", "1"][..],
        &["--threads", "2"],
        &["--threads", "2", "--window", "100000"],
    ] {
        let case = Case::new(SMALL_BATCH, "");
        let mut args = vec![BATCH, "-", "-"];
        args.extend_from_slice(config);
        let mut live = Live::spawn(case.dir.path(), &args);
        for line in &lines[..3] {
            live.write(format!("{line}\n").as_bytes());
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(live.next_line(), out[0], "{config:?}");
        assert!(live.running(), "still reading stdin");
        for line in &lines[3..] {
            live.write(format!("{line}\n").as_bytes());
        }
        assert_eq!(live.next_line(), out[1], "{config:?}");
        assert!(live.running(), "still reading stdin");
        live.write(last.as_bytes());
        let done = live.finish(TIMEOUT);
        assert_eq!(done.code, Some(0), "{}", done.stderr);
        assert_eq!(show(&done.stdout), flagged(&last, "50.50", "49.50"));
        assert_only_summary(
            &done.stderr,
            "batch_log.json: 3 events, -: 6 events; 0 lines skipped; 3 of 5 stream purchases flagged; ",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// --follow and signals.

#[test]
fn follow_reads_a_growing_file_until_sigterm() {
    let (lines, out) = small_stream();
    let case = Case::new(SMALL_BATCH, format!("{}\n{}\n", lines[0], lines[1]));
    let mut live = Live::spawn(
        case.dir.path(),
        &[BATCH, STREAM, OUTPUT, "--follow", "--threads", "2"],
    );
    live.stdin = None;
    // The output exists (empty) while nothing is flagged.
    wait_for_file(&case.path(OUTPUT), "");
    append(&case.path(STREAM), &format!("{}\n", lines[2]));
    wait_for_file(&case.path(OUTPUT), &out[0]);
    // A line appended in two writes is read whole.
    append(&case.path(STREAM), &format!("{}\n", lines[3]));
    let (head, tail) = lines[4].split_at(40);
    append(&case.path(STREAM), head);
    thread::sleep(Duration::from_millis(150));
    append(&case.path(STREAM), &format!("{tail}\n"));
    let both = format!("{}{}", out[0], out[1]);
    wait_for_file(&case.path(OUTPUT), &both);
    assert!(
        live.running(),
        "--follow keeps reading at the end of the file"
    );
    live.signal("TERM");
    let done = live.finish(TIMEOUT);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(done.stdout, b"");
    assert_only_summary(
        &done.stderr,
        "batch_log.json: 3 events, stream_log.json: 5 events; 0 lines skipped; 2 of 4 stream purchases flagged; ",
    );
    assert_eq!(show(&case.output().unwrap()), both);
}

#[test]
fn a_signal_ends_a_stdin_run_normally_while_stdin_is_open() {
    let (lines, out) = small_stream();
    let both = format!("{}{}", out[0], out[1]);
    for (signal, output) in [("INT", OUTPUT), ("TERM", "-"), ("INT", "-")] {
        let case = Case::new(SMALL_BATCH, "");
        let mut live = Live::spawn(case.dir.path(), &[BATCH, "-", output, "--threads", "2"]);
        for line in &lines {
            live.write(format!("{line}\n").as_bytes());
        }
        if output == "-" {
            assert_eq!(live.next_line() + &live.next_line(), both);
        } else {
            wait_for_file(&case.path(OUTPUT), &both);
        }
        assert!(live.running());
        // Stdin stays open: the signal alone ends the run.
        live.signal(signal);
        let stdin = live.stdin.take();
        let done = live.finish(TIMEOUT);
        drop(stdin);
        assert_eq!(done.code, Some(0), "SIG{signal}: {}", done.stderr);
        assert_eq!(done.stdout, b"");
        assert_only_summary(
            &done.stderr,
            "batch_log.json: 3 events, -: 5 events; 0 lines skipped; 2 of 4 stream purchases flagged; ",
        );
        if output == OUTPUT {
            assert_eq!(show(&case.output().unwrap()), both);
        } else {
            assert!(case.output().is_none());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Live mode appends.

#[test]
fn live_mode_appends_to_existing_outputs() {
    let case = official_case();
    case.run(&["--feed", "feed.json", "--quiet"]).success();
    let flagged_lines = show(&case.output().unwrap());
    let feed_lines = show(&fs::read(case.path("feed.json")).unwrap());
    assert_eq!(flagged_lines.lines().count(), 7);
    assert_eq!(feed_lines.lines().count(), 7);

    case.write(OUTPUT, "previous\n");
    case.write("feed.json", "previous feed\n");
    let mut live = Live::spawn(
        case.dir.path(),
        &[BATCH, "-", OUTPUT, "--feed", "feed.json", "--quiet"],
    );
    live.feed_and_close(fs::read(case.path(STREAM)).unwrap())
        .join()
        .unwrap();
    let done = live.finish(TIMEOUT);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(done.stderr, "");
    assert_eq!(
        show(&case.output().unwrap()),
        format!("previous\n{flagged_lines}")
    );
    assert_eq!(
        show(&fs::read(case.path("feed.json")).unwrap()),
        format!("previous feed\n{feed_lines}")
    );
}

#[test]
fn a_fatal_error_in_live_mode_writes_no_output_file() {
    let case = Case::new("{\"D\":\"0\", \"T\":\"5\"}\n", "");
    // The file replay first, as a control; then stdin and --follow.
    for args in [
        &[BATCH, STREAM, OUTPUT][..],
        &[BATCH, "-", OUTPUT],
        &[BATCH, STREAM, OUTPUT, "--follow"],
    ] {
        let mut live = Live::spawn(case.dir.path(), args);
        live.stdin = None;
        let done = live.finish(TIMEOUT);
        assert_eq!(done.code, Some(2), "{args:?}: {}", done.stderr);
        assert_eq!(
            done.stderr,
            "Error: batch_log.json: parameter D must be at least 1, got 0\n"
        );
        assert_eq!(case.files(), vec![BATCH, STREAM], "{args:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// An interrupted file replay fails.

/// A log big enough that a file replay lasts well beyond the moment it is interrupted.
fn big_case() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let run = Command::new(assert_cmd::cargo::cargo_bin("gen-log"))
        .args(["--users", "20000", "--batch-events", "3000000"])
        .args(["--stream-events", "300000", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", show(&run.stderr));
    fs::write(dir.path().join(OUTPUT), "previous\n").unwrap();
    dir
}

/// Starts a file replay on `dir`, sends `signal` `times` times (20 ms apart) after 300 ms,
/// and checks that it failed soon with 128 + the signal's number, as shells expect, left the
/// previous output alone and no temporary file.
fn assert_interrupted_run_fails(dir: &Path, signal: &str, times: usize) {
    let mut run = Live::spawn(dir, &[BATCH, STREAM, OUTPUT]);
    run.stdin = None;
    thread::sleep(Duration::from_millis(300));
    assert!(run.running(), "the replay lasts longer than 300 ms");
    for i in 0..times {
        if i > 0 {
            // Apart enough not to merge into one pending signal, close enough to come before
            // the end of the run.
            thread::sleep(Duration::from_millis(20));
        }
        run.signal(signal);
    }
    // The whole replay takes several seconds: the interrupt stops it well before its end.
    let done = run.finish(TIMEOUT);
    let expected = match signal {
        "INT" => 130,
        "TERM" => 143,
        other => panic!("no exit status known for SIG{other}"),
    };
    assert_eq!(
        done.code,
        Some(expected),
        "an interrupted file replay fails: {}",
        done.stderr
    );
    assert!(
        done.stderr
            .contains(&format!("Error: {OUTPUT}: interrupted")),
        "{}",
        done.stderr
    );
    assert_eq!(done.stdout, b"");
    assert_eq!(fs::read(dir.join(OUTPUT)).unwrap(), b"previous\n");
    assert_eq!(
        files_in(dir),
        vec![BATCH, OUTPUT, STREAM],
        "no temporary file is left"
    );
}

#[test]
fn an_interrupted_file_replay_fails_and_keeps_the_previous_output() {
    let dir = big_case();
    assert_interrupted_run_fails(dir.path(), "INT", 1);
}

#[test]
fn a_file_replay_stopped_by_sigterm_exits_143_and_keeps_the_previous_output() {
    let dir = big_case();
    assert_interrupted_run_fails(dir.path(), "TERM", 1);
}

#[test]
fn a_second_interrupt_leaves_no_temporary_file() {
    let dir = big_case();
    assert_interrupted_run_fails(dir.path(), "INT", 2);
}

// ---------------------------------------------------------------------------------------------
// --follow across rotations, like `tail -F`.

/// A generated log, the file replay's output, and for each flagged output line the index of
/// its stream line.
fn rotation_case() -> (Case, Vec<String>, Vec<String>, Vec<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let run = Command::new(assert_cmd::cargo::cargo_bin("gen-log"))
        .args(["--users", "300", "--batch-events", "20000"])
        .args([
            "--stream-events",
            "3000",
            "--anomaly-rate",
            "0.05",
            "--seed",
            "5",
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
    case.run(&["--threads", "2"]).success();
    let flagged: Vec<String> = show(&case.output().unwrap())
        .lines()
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(flagged.len() > 30, "the case flags enough lines");
    let stream = show(&fs::read(case.path(STREAM)).unwrap());
    let lines: Vec<String> = stream.lines().map(|l| format!("{l}\n")).collect();
    let mut at = Vec::new();
    for out in &flagged {
        let from = at.last().map_or(0, |&i| i + 1);
        let index = (from..lines.len())
            .find(|&i| out.starts_with(lines[i].trim_end().strip_suffix('}').unwrap()))
            .expect("every flagged line is a stream line");
        at.push(index);
    }
    fs::remove_file(case.path(OUTPUT)).unwrap();
    (case, lines, flagged, at)
}

/// Follows the stream's first part, rotates it with `rotate` (given the lines after that
/// part), and checks that the output is the file replay's, nothing lost or read twice.
fn assert_follow_survives(rotate: impl FnOnce(&Case, &[String]), warning: &str) {
    let (case, lines, flagged, at) = rotation_case();
    let first = flagged.len() / 3;
    let cut = at[first] + 1;
    fs::write(case.path(STREAM), lines[..cut].concat()).unwrap();
    let mut live = Live::spawn(
        case.dir.path(),
        &[BATCH, STREAM, OUTPUT, "--follow", "--threads", "2"],
    );
    live.stdin = None;
    // Everything of the first part has been read once its last line is flagged.
    wait_for_file(&case.path(OUTPUT), &flagged[..=first].concat());
    rotate(&case, &lines[cut..]);
    wait_for_file(&case.path(OUTPUT), &flagged.concat());
    // A little longer: nothing is read twice.
    thread::sleep(Duration::from_millis(200));
    live.signal("TERM");
    let done = live.finish(TIMEOUT);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(show(&case.output().unwrap()), flagged.concat());
    let lines_of: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines_of[0], format!("warning: {STREAM}: {warning}"));
    assert!(
        lines_of[1].starts_with(&format!(
            "batch_log.json: 20000 events, stream_log.json: {} events; 0 lines skipped;",
            lines.len()
        )),
        "every line read once: {}",
        done.stderr
    );
}

#[test]
fn follow_reads_on_after_a_copytruncate_rotation() {
    assert_follow_survives(
        |case, rest| {
            fs::copy(case.path(STREAM), case.path("stream_log.json.1")).unwrap();
            fs::OpenOptions::new()
                .write(true)
                .open(case.path(STREAM))
                .unwrap()
                .set_len(0)
                .unwrap();
            thread::sleep(Duration::from_millis(100));
            // The first write is far shorter than the first part: the file is seen shrunk.
            append(&case.path(STREAM), &rest[..10].concat());
            append(&case.path(STREAM), &rest[10..].concat());
        },
        "truncated; reading it again from its start",
    );
}

#[test]
fn follow_reads_the_old_file_to_its_end_then_the_new_one_after_rename_and_create() {
    assert_follow_survives(
        |case, rest| {
            let old = case.path("stream_log.json.1");
            fs::rename(case.path(STREAM), &old).unwrap();
            // Written to the renamed file before the new one exists: still read.
            append(&old, &rest[..20].concat());
            thread::sleep(Duration::from_millis(100));
            // The last line of the old file has no `\n` yet; it ends at the rotation.
            let (head, tail) = rest[20].split_at(rest[20].len() - 1);
            append(&old, head);
            assert_eq!(tail, "\n");
            fs::write(case.path(STREAM), rest[21..].concat()).unwrap();
        },
        "replaced by a new file; reading the new file from its start",
    );
}

// ---------------------------------------------------------------------------------------------
// Pipes, FIFOs and devices are read as they come, never whole.

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Writes `bytes` into the FIFO at `path` from a thread (opening blocks until a reader comes).
fn feed_fifo(path: PathBuf, bytes: Vec<u8>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut fifo = fs::OpenOptions::new().write(true).open(path).unwrap();
        let _ = fifo.write_all(&bytes);
    })
}

#[test]
fn fifos_as_batch_and_stream_give_the_file_replay() {
    let case = dirty_case();
    for threads in ["1", "2"] {
        let file = case.run(&["--threads", threads, "-q"]).success();
        let expected = case.output().unwrap();
        let (batch, stream) = (case.path("batch.fifo"), case.path("stream.fifo"));
        let _ = fs::remove_file(&batch);
        let _ = fs::remove_file(&stream);
        mkfifo(&batch);
        mkfifo(&stream);
        let feeds = [
            feed_fifo(batch, fs::read(case.path(BATCH)).unwrap()),
            feed_fifo(stream, fs::read(case.path(STREAM)).unwrap()),
        ];
        let mut run = Live::spawn(
            case.dir.path(),
            &[
                "batch.fifo",
                "stream.fifo",
                "out.json",
                "--threads",
                threads,
                "-q",
            ],
        );
        run.stdin = None;
        let done = run.finish(TIMEOUT);
        for feed in feeds {
            feed.join().unwrap();
        }
        assert_eq!(done.code, Some(0), "{}", done.stderr);
        assert!(fs::read(case.path("out.json")).unwrap() == expected);
        let renamed = file
            .stderr
            .replace(BATCH, "batch.fifo")
            .replace(STREAM, "stream.fifo");
        assert_eq!(done.stderr, renamed);
    }
}

/// Peak resident memory of a running process in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/PID/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Runs with a FIFO fed with endless NUL bytes (like `/dev/zero`, without `\n`) as `role`
/// (BATCH or STREAM); once 512 MiB went in, memory is small and Ctrl-C stops the run at once.
fn assert_endless_input_is_read_in_bounded_memory(stream: bool) {
    let case = Case::new(SMALL_BATCH, "");
    case.write(OUTPUT, "previous\n");
    let fifo = case.path("zeros");
    mkfifo(&fifo);
    let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = written.clone();
    let feeder = thread::spawn(move || {
        let mut out = fs::OpenOptions::new().write(true).open(fifo).unwrap();
        let zeros = vec![0u8; 1 << 20];
        while out.write_all(&zeros).is_ok() {
            counter.fetch_add(zeros.len() as u64, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let args = if stream {
        [BATCH, "zeros", OUTPUT]
    } else {
        ["zeros", STREAM, OUTPUT]
    };
    let mut run = Live::spawn(case.dir.path(), &args);
    run.stdin = None;
    let started = Instant::now();
    while written.load(std::sync::atomic::Ordering::SeqCst) < 512 << 20 {
        assert!(run.running(), "the run goes on reading");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "reading is slow"
        );
        thread::sleep(Duration::from_millis(10));
    }
    let peak = peak_rss_kib(run.child.id());
    eprintln!("peak RSS after 512 MiB of NUL bytes: {peak} KiB");
    assert!(peak < 1 << 20, "peak RSS {peak} KiB");
    run.signal("INT");
    let done = run.finish(Duration::from_secs(2));
    assert_eq!(done.code, Some(130), "{}", done.stderr);
    assert_eq!(
        done.stderr,
        "Error: flagged_purchases.json: interrupted: the output was not saved\n"
    );
    assert_eq!(fs::read(case.path(OUTPUT)).unwrap(), b"previous\n");
    feeder.join().unwrap();
}

#[test]
fn an_endless_batch_without_line_ends_is_read_in_bounded_memory_and_stops_on_ctrl_c() {
    assert_endless_input_is_read_in_bounded_memory(false);
}

#[test]
fn an_endless_stream_without_line_ends_is_read_in_bounded_memory_and_stops_on_ctrl_c() {
    assert_endless_input_is_read_in_bounded_memory(true);
}

// ---------------------------------------------------------------------------------------------
// A mapped log that shrinks while it is read.

/// Whether the process maps `path`.
fn maps(pid: u32, path: &Path) -> bool {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    maps.contains(path.to_str().unwrap())
}

#[test]
fn a_batch_truncated_while_it_is_read_is_a_fatal_error_naming_it() {
    let dir = big_case();
    let batch = dir.path().join(BATCH);
    let batch = batch.canonicalize().unwrap();
    let mut outcome = None;
    // Small chunks at one thread: the batch takes seconds. Should a run still end before the
    // truncation, the next try truncates sooner after the batch is mapped.
    for attempt in 0..3 {
        let mut run = Live::spawn(
            dir.path(),
            &[
                BATCH,
                STREAM,
                OUTPUT,
                "--threads",
                "1",
                "--chunk-bytes",
                "4096",
            ],
        );
        run.stdin = None;
        let started = Instant::now();
        while !maps(run.child.id(), &batch) && run.running() {
            assert!(started.elapsed() < TIMEOUT, "the batch is never mapped");
            thread::sleep(Duration::from_millis(1));
        }
        if attempt == 0 {
            thread::sleep(Duration::from_millis(50));
        }
        let still_reading = run.running();
        fs::OpenOptions::new()
            .write(true)
            .open(&batch)
            .unwrap()
            .set_len(1000)
            .unwrap();
        let done = run.finish(TIMEOUT);
        if still_reading && done.code != Some(0) {
            outcome = Some(done);
            break;
        }
        // Ended before the truncation: a fresh batch, and another try.
        let fresh = big_case();
        fs::copy(fresh.path().join(BATCH), &batch).unwrap();
    }
    let done = outcome.expect("a run truncated while reading");
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert_eq!(
        done.stderr,
        "Error: batch_log.json: the file shrank while it was being read (truncated by another program)\n"
    );
    assert_eq!(fs::read(dir.path().join(OUTPUT)).unwrap(), b"previous\n");
    assert_eq!(
        files_in(dir.path()),
        vec![BATCH, OUTPUT, STREAM],
        "no temporary file is left"
    );
}

#[test]
fn stats_of_a_live_run_count_the_stream_bytes_read() {
    let case = Case::from_fixture("official");
    let stream = fs::read(case.path(STREAM)).unwrap();
    case.cmd()
        .args([BATCH, "-", OUTPUT, "-q", "--stats", "stats.json"])
        .write_stdin(stream.clone())
        .assert()
        .success();
    let stats: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(case.path("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["stream"]["bytes"], stream.len() as u64, "{stats}");
}
