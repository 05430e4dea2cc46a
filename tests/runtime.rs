//! The run against a hostile environment rather than hostile input: a standard error that
//! cannot be written (a full disk, a closed pipe), a reader that stops reading the output, a
//! closed standard input, file names holding escape sequences, a limit on threads. In every
//! case no panic reaches the user, a fatal problem is one `Error:` line and exit 2, and a
//! signal ends the run within a second.
//!
//! Full disks are small tmpfs mounted inside a temporary folder (skipped where mounting is
//! not permitted); thread limits need root, to run the child as an unused user (skipped
//! otherwise). Every child has a time limit and is killed when a test fails.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{BATCH, Case, OFFICIAL_FLAGGED, OUTPUT, Run, STREAM, files_in, fixture, show};

/// How long a test waits for something the program should do at once.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How long a stopped run may take to end once signalled: the program gives up a blocked
/// write within about half a second; the rest is slack for a loaded machine.
const STOP_LIMIT: Duration = Duration::from_secs(3);

fn exe() -> PathBuf {
    assert_cmd::cargo::cargo_bin("anomaly-detect")
}

/// The binary, run inside the case's directory, as a plain [`Command`].
fn std_cmd(case: &Case) -> Command {
    let mut cmd = Command::new(exe());
    cmd.current_dir(case.dir.path());
    cmd
}

/// The official batch log's bytes.
fn official_batch() -> Vec<u8> {
    fs::read(fixture("official").join(BATCH)).unwrap()
}

/// The official stream line (flagged against the official batch), `\n`-ended.
fn flagged_purchase() -> String {
    let stream = show(&fs::read(fixture("official").join(STREAM)).unwrap());
    format!("{}\n", stream.trim_end())
}

/// A case whose stream is the official flagged purchase `n` times: `n` flagged lines.
fn many_flags(n: usize) -> Case {
    Case::new(official_batch(), flagged_purchase().repeat(n))
}

/// `n` output lines of [`many_flags`].
fn flagged_lines(n: usize) -> String {
    format!("{OFFICIAL_FLAGGED}\n").repeat(n)
}

/// A pipe whose reading end is closed: a write to it fails with `EPIPE` (the runtime ignores
/// SIGPIPE), as `2>&1 | true` does once `true` has exited.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

/// A child process killed when dropped still running.
struct Running(Child);

impl Running {
    fn spawn(cmd: &mut Command) -> Running {
        Running(cmd.spawn().expect("the binary starts"))
    }

    fn id(&self) -> i32 {
        self.0.id() as i32
    }

    /// Sends `signal` to the child.
    fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory effects; the pid is this test's own child.
        assert_eq!(unsafe { libc::kill(self.id(), signal) }, 0);
    }

    /// The child's status once it ends, `None` if it still runs after `limit`.
    fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            if started.elapsed() > limit {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stderr of an ended child whose stderr was piped.
    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut err) = self.0.stderr.take() {
            std::io::Read::read_to_string(&mut err, &mut text).unwrap();
        }
        text
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
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
            "{} holds {} lines, expected {}",
            path.display(),
            show(&now).lines().count(),
            expected.lines().count()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// A full disk, made inside a temporary folder.

/// A small tmpfs mounted in a temporary folder and filled up: any write to a file on it fails
/// with `ENOSPC`. Unmounted when dropped.
struct FullDisk {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl FullDisk {
    /// `None` (the test then skips that part, saying so) where mounting is not permitted.
    fn new() -> Option<FullDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("full");
        fs::create_dir(&mount).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0777", "tmpfs"])
            .arg(&mount)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            eprintln!("skipped: mounting a tmpfs is not permitted here");
            return None;
        }
        let disk = FullDisk { mount, _dir: dir };
        let mut filler = fs::File::create(disk.mount.join("filler")).unwrap();
        while filler.write_all(&[b'x'; 4096]).is_ok() {}
        Some(disk)
    }

    /// A new, empty file on the full disk, open for writing.
    fn file(&self, name: &str) -> fs::File {
        fs::File::create(self.mount.join(name)).unwrap()
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

/// The unwritable standard errors: a closed pipe, and where one can be mounted, a file on a
/// full disk.
fn unwritable_stderrs(disk: &Option<FullDisk>) -> Vec<(&'static str, Stdio)> {
    let mut sinks = vec![("a closed pipe", closed_pipe())];
    if let Some(disk) = disk {
        sinks.push(("a full disk", disk.file("stderr").into()));
    }
    sinks
}

// ---------------------------------------------------------------------------------------------
// Row 1: standard error cannot be written.

#[test]
fn an_unwritable_stderr_changes_nothing_in_a_file_run() {
    let disk = FullDisk::new();
    for (what, stderr) in unwritable_stderrs(&disk) {
        // A skipped line's warning and the summary cannot be shown; the run succeeds.
        let case = Case::new(
            official_batch(),
            format!("not json\n{}", flagged_purchase()),
        );
        case.write(OUTPUT, "previous\n");
        let status = std_cmd(&case)
            .args([BATCH, STREAM, OUTPUT])
            .stderr(stderr)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(0), "stderr {what}");
        assert_eq!(show(&case.output().unwrap()), flagged_lines(1), "{what}");
    }
    for (what, stderr) in unwritable_stderrs(&disk) {
        // A bad parameter line is still a fatal error, exit 2, old output kept.
        let case = Case::new("{\"D\":\"x\", \"T\":\"2\"}\n", flagged_purchase());
        case.write(OUTPUT, "previous\n");
        let status = std_cmd(&case)
            .args([BATCH, STREAM, OUTPUT])
            .stderr(stderr)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(2), "stderr {what}");
        assert_eq!(show(&case.output().unwrap()), "previous\n", "{what}");
        assert_eq!(files_in(case.dir.path()), [BATCH, OUTPUT, STREAM]);
    }
}

/// Follows `stream` (holding 10 flagged purchases) with `stderr`, truncates it as
/// copytruncate does, appends 20 more, and stops the run with SIGTERM once all 30 flags are
/// out. Returns the exit status and what stderr got, when piped.
fn follow_through_a_truncation(case: &Case, stream: &str, stderr: Stdio) -> (ExitStatus, String) {
    case.write(stream, flagged_purchase().repeat(10));
    let mut run = Running::spawn(
        Command::new(exe())
            .current_dir(case.dir.path())
            .args([Path::new(BATCH), Path::new(stream), Path::new(OUTPUT)])
            .args(["--follow", "--threads", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr),
    );
    wait_for_file(&case.path(OUTPUT), &flagged_lines(10));
    fs::OpenOptions::new()
        .write(true)
        .open(case.path(stream))
        .unwrap()
        .set_len(0)
        .unwrap();
    // Seen shrunk (polled every 20 ms) before it grows again.
    thread::sleep(Duration::from_millis(200));
    case.write(stream, flagged_purchase().repeat(20));
    wait_for_file(&case.path(OUTPUT), &flagged_lines(30));
    assert!(run.wait_for(Duration::ZERO).is_none(), "a live run goes on");
    run.signal(libc::SIGTERM);
    let status = run.wait_for(TIMEOUT).expect("the run ends on SIGTERM");
    (status, run.stderr())
}

#[test]
fn an_unwritable_stderr_does_not_stop_a_followed_run_at_a_rotation() {
    let disk = FullDisk::new();
    for (what, stderr) in unwritable_stderrs(&disk) {
        let case = Case::new(official_batch(), "");
        let (status, _) = follow_through_a_truncation(&case, STREAM, stderr);
        assert_eq!(status.code(), Some(0), "stderr {what}");
        assert_eq!(show(&case.output().unwrap()), flagged_lines(30), "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// Row 7: a signal while a write is blocked on a reader that stopped reading.

/// Asserts that `run`, blocked writing, ends within [`STOP_LIMIT`] of `signal` with 128 + its
/// number and an `Error:` line naming `output`. Returns how long it took.
fn assert_stops_while_blocked(mut run: Running, signal: i32, output: &str) -> Duration {
    // The output is far larger than a pipe holds: by now the run waits for its reader.
    thread::sleep(Duration::from_millis(1500));
    assert!(
        run.wait_for(Duration::ZERO).is_none(),
        "the run is blocked writing"
    );
    let signalled = Instant::now();
    run.signal(signal);
    let status = run.wait_for(STOP_LIMIT);
    let took = signalled.elapsed();
    let status = status.unwrap_or_else(|| panic!("still running {STOP_LIMIT:?} after the signal"));
    assert_eq!(status.code(), Some(128 + signal), "{}", run.stderr());
    let stderr = run.stderr();
    assert_eq!(
        stderr,
        format!(
            "Error: {output}: cannot write: stopped by a signal while its reader was not \
             reading: the output is incomplete\n"
        )
    );
    took
}

#[test]
fn a_signal_stops_a_file_run_blocked_on_standard_output() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let case = many_flags(3000);
        case.write("stats.json", "previous\n");
        // Standard output is a pipe that nobody reads (its reading end stays open).
        let (reader, writer) = std::io::pipe().unwrap();
        let run = Running::spawn(
            std_cmd(&case)
                .args([BATCH, STREAM, "-", "--stats", "stats.json"])
                .stdout(writer)
                .stderr(Stdio::piped()),
        );
        let took = assert_stops_while_blocked(run, signal, "-");
        drop(reader);
        eprintln!("stopped {took:?} after signal {signal}");
        assert_eq!(
            show(&fs::read(case.path("stats.json")).unwrap()),
            "previous\n",
            "nothing is committed"
        );
        assert_eq!(files_in(case.dir.path()), [BATCH, "stats.json", STREAM]);
    }
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) {
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
}

/// Opens the FIFO at `path` for reading without waiting for a writer; the reader never reads.
fn idle_reader(path: &Path) -> fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap()
}

#[test]
fn a_signal_stops_a_live_run_blocked_on_a_fifo() {
    // The FIFO's name holds escape sequences: the message shows them escaped.
    let fifo = "out\x1b]0;title\x07.fifo";
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let case = Case::new(official_batch(), "");
        mkfifo(&case.path(fifo));
        let reader = idle_reader(&case.path(fifo));
        let mut cmd = std_cmd(&case);
        cmd.args([BATCH, "-", fifo])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped());
        let mut run = Running::spawn(&mut cmd);
        // Standard input stays open (until the run ends): the live run goes on until the
        // signal. Fed from a thread, which the blocked run may stop reading from.
        let mut stdin = run.0.stdin.take().unwrap();
        let feeder = thread::spawn(move || {
            let _ = stdin.write_all(flagged_purchase().repeat(3000).as_bytes());
            stdin
        });
        let took = assert_stops_while_blocked(run, signal, r"out\x1b]0;title\x07.fifo");
        eprintln!("stopped {took:?} after signal {signal}");
        drop((feeder.join().unwrap(), reader));
    }
}

// ---------------------------------------------------------------------------------------------
// Row 9: file names holding escape sequences or a newline.

/// A batch name that sets the terminal's title (OSC) and rings its bell.
const EVIL_BATCH: &str = "b\x1b]0;pwned\x07.json";
/// A stream name that colours the terminal and breaks the line.
const EVIL_STREAM: &str = "s\x1b[31m\n.json";
/// An output name that clears the screen.
const EVIL_OUTPUT: &str = "o\x07\x1b[2J\u{9b}.json";

/// How the names show in messages.
const SHOWN_BATCH: &str = r"b\x1b]0;pwned\x07.json";
const SHOWN_STREAM: &str = r"s\x1b[31m\x0a.json";
const SHOWN_OUTPUT: &str = r"o\x07\x1b[2J\x9b.json";

/// Asserts that `stderr` holds exactly `lines` lines and no control character but their
/// ends (C0, DEL and C1: nothing a terminal would act on).
fn assert_inert(stderr: &str, lines: usize) {
    assert!(
        !stderr.chars().any(|c| c.is_control() && c != '\n'),
        "a raw control character reaches the terminal: {stderr:?}"
    );
    assert_eq!(stderr.lines().count(), lines, "{stderr:?}");
}

/// A case with the official logs under the evil names, and a skipped line in each.
fn evil_case() -> Case {
    let case = Case::new("", "");
    case.write(
        EVIL_BATCH,
        [&official_batch()[..], b"\nnot json\n"].concat(),
    );
    case.write(EVIL_STREAM, format!("[]\n{}", flagged_purchase()));
    case
}

fn run_in(case: &Case, args: &[&str]) -> Run {
    Run::of(case.cmd().args(args))
}

#[test]
fn file_names_are_escaped_in_warnings_and_the_summary() {
    let case = evil_case();
    let run = run_in(&case, &[EVIL_BATCH, EVIL_STREAM, EVIL_OUTPUT]).success();
    assert_inert(&run.stderr, 3);
    let lines = run.stderr_lines();
    assert_eq!(
        lines[0],
        format!("warning: {SHOWN_BATCH}:8: skipped: not valid JSON: not json")
    );
    assert_eq!(
        lines[1],
        format!("warning: {SHOWN_STREAM}:1: skipped: not a JSON object")
    );
    assert!(
        lines[2].starts_with(&format!(
            "{SHOWN_BATCH}: 6 events, {SHOWN_STREAM}: 1 event;"
        )),
        "{}",
        lines[2]
    );
    assert_eq!(
        show(&fs::read(case.path(EVIL_OUTPUT)).unwrap()),
        flagged_lines(1)
    );
}

#[test]
fn file_names_are_escaped_in_error_lines() {
    let case = evil_case();
    case.write("bad\x1b[5m\n.json", "{\"D\":\"x\"}\n");
    let missing = "nope\x1b]0;x\x07\n.json";
    let cases: [(&[&str], String); 5] = [
        (
            &[missing, EVIL_STREAM, EVIL_OUTPUT],
            r"nope\x1b]0;x\x07\x0a.json: cannot read: No such file".into(),
        ),
        (
            &["bad\x1b[5m\n.json", EVIL_STREAM, EVIL_OUTPUT],
            r"bad\x1b[5m\x0a.json: ".into(),
        ),
        (
            &[EVIL_BATCH, EVIL_STREAM, EVIL_BATCH],
            format!("{SHOWN_BATCH}: OUTPUT is the same file as BATCH ({SHOWN_BATCH})"),
        ),
        (
            &[EVIL_BATCH, EVIL_STREAM, "no\x1b[1mdir\n/x.json"],
            r"no\x1b[1mdir\x0a/x.json: cannot write: its directory does not exist".into(),
        ),
        (
            &[EVIL_BATCH, EVIL_STREAM, EVIL_OUTPUT, "--strict"],
            format!("{SHOWN_BATCH}:8: skipped line in --strict mode: not valid JSON: not json"),
        ),
    ];
    for (args, message) in cases {
        let run = run_in(&case, args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert_inert(&run.stderr, 1);
        assert!(
            run.stderr.starts_with(&format!("Error: {message}")),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn file_names_are_escaped_in_live_warnings() {
    // A torn last line of a live output is cut back with a warning naming the output.
    let case = Case::new(official_batch(), "");
    case.write(EVIL_OUTPUT, format!("{OFFICIAL_FLAGGED}\n{{\"event_"));
    let run = Run::of(
        case.cmd()
            .args([BATCH, "-", EVIL_OUTPUT])
            .write_stdin(flagged_purchase()),
    )
    .success();
    assert_inert(&run.stderr, 2);
    assert!(
        run.stderr
            .starts_with(&format!("warning: {SHOWN_OUTPUT}: its last line")),
        "{}",
        run.stderr
    );
    // A followed stream truncated: the warning names it.
    let case = Case::new(official_batch(), "");
    let (status, stderr) = follow_through_a_truncation(&case, EVIL_STREAM, Stdio::piped());
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_inert(&stderr, 2);
    assert_eq!(
        stderr.lines().next().unwrap(),
        format!("warning: {SHOWN_STREAM}: truncated; reading it again from its start")
    );
}

// ---------------------------------------------------------------------------------------------
// Row 10: `--generate` to a full disk or a closed pipe.

/// Runs the program with `args` and standard output a closed pipe, then (where a small tmpfs
/// can be mounted) a file on a full disk: each must exit 2 with one line naming `-`.
fn assert_unwritable_stdout_is_one_error_line(args: &[&str]) {
    let disk = FullDisk::new();
    let mut outs = vec![("a closed pipe", closed_pipe())];
    if let Some(disk) = &disk {
        outs.push(("a full disk", disk.file(&args.join("_")).into()));
    }
    for (what, stdout) in outs {
        let out = Command::new(exe())
            .args(args)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = show(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} to {what}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?} to {what}: {stderr}");
        assert!(
            stderr.starts_with("Error: -: cannot write: "),
            "{args:?} to {what}: {stderr}"
        );
    }
}

#[test]
fn generate_to_an_unwritable_standard_output_is_one_error_line() {
    for kind in ["complete-bash", "complete-zsh", "man"] {
        assert_unwritable_stdout_is_one_error_line(&["--generate", kind]);
    }
}

/// `--help` and `--version` to an unwritable standard output: exit 2 and one line naming `-`,
/// not a success that wrote nothing.
#[test]
fn help_and_version_to_an_unwritable_standard_output_are_one_error_line() {
    for flag in ["--help", "--version", "-h"] {
        assert_unwritable_stdout_is_one_error_line(&[flag]);
    }
}

/// A usage error quotes the arguments as given: their control bytes are shown escaped, like
/// file names in every other message, never sent raw (an OSC sequence would set the
/// terminal's title) nor silently dropped.
#[test]
fn usage_errors_show_the_arguments_control_bytes_escaped() {
    let title = "d\u{1b}]0;PWNED\u{7}e";
    for args in [vec!["a", "b", "c", title], vec!["-D", title, "a", "b", "c"]] {
        let out = Command::new(exe())
            .args(&args)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = show(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("d\\x1b]0;PWNED\\x07e"),
            "{args:?}: {stderr}"
        );
        assert!(
            !out.stderr.iter().any(|&b| b < 0x20 && b != b'\n'),
            "{args:?}: {stderr}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Row 11: a closed standard input.

#[test]
fn a_closed_standard_input_is_an_error() {
    let case = many_flags(1);
    case.write(OUTPUT, "previous\n");
    // `/dev/stdin` is only named: the program refuses it before opening anything.
    for args in [
        [BATCH, "-", OUTPUT],
        [BATCH, "/dev/stdin", OUTPUT],
        ["/dev/stdin", STREAM, OUTPUT],
    ] {
        let mut cmd = std_cmd(&case);
        cmd.args(args).stderr(Stdio::piped());
        // SAFETY: close is async-signal-safe; the child starts with standard input closed,
        // as after `<&-`.
        unsafe {
            cmd.pre_exec(|| {
                libc::close(0);
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        let stderr = show(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let name = args.iter().find(|a| a.contains("stdin") || **a == "-");
        assert_eq!(
            stderr,
            format!(
                "Error: {}: cannot read: standard input is closed\n",
                name.unwrap()
            )
        );
        assert_eq!(show(&case.output().unwrap()), "previous\n");
    }
}

// ---------------------------------------------------------------------------------------------
// Row 14: threads that cannot be started.

/// Runs the binary in `case` as an unused user whose processes and threads are limited to
/// `nproc`; `None` (the test then skips, saying so) unless run as root.
fn run_with_thread_limit(case: &Case, args: &[&str], nproc: u64) -> Option<Run> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: limiting another user's threads needs root");
        return None;
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(case.dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    // A user with no other process: the limit counts this run's threads alone.
    let uid = 2_000_000_000 + std::process::id() % 100_000;
    let mut cmd = std_cmd(case);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setrlimit, setgroups, setgid and setuid are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: nproc,
                rlim_max: nproc,
            };
            if libc::setrlimit(libc::RLIMIT_NPROC, &limit) != 0
                || libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(uid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().ok()?;
    Some(Run {
        code: out.status.code(),
        stdout: show(&out.stdout),
        stderr: show(&out.stderr),
    })
}

#[test]
fn worker_threads_that_cannot_start_are_reported_as_such() {
    let case = many_flags(1);
    case.write(OUTPUT, "previous\n");
    // `ulimit -u 8`: the main thread and the signal thread start, 64 workers cannot.
    let Some(run) = run_with_thread_limit(&case, &["--threads", "64", BATCH, STREAM, OUTPUT], 8)
    else {
        return;
    };
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("Error: cannot start 64 worker threads: Resource temporarily unavailable")
            && run.stderr.contains("ulimit -u"),
        "{}",
        run.stderr
    );
    assert_eq!(show(&case.output().unwrap()), "previous\n");
    // `ulimit -u 4`: the two workers start, the thread that cuts the batch into chunks cannot.
    let args = ["--threads", "2", BATCH, STREAM, OUTPUT];
    let run = run_with_thread_limit(&case, &args, 4).expect("root, as above");
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!(
            "Error: cannot start the thread that cuts {BATCH} into chunks: Resource temporarily \
             unavailable"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(show(&case.output().unwrap()), "previous\n");
}

#[test]
fn a_reading_thread_that_cannot_start_is_reported_naming_its_file() {
    let case = many_flags(1);
    case.write(OUTPUT, "previous\n");
    // The batch comes through a FIFO, read by a thread of its own.
    let fifo = case.path("batch.fifo");
    mkfifo(&fifo);
    let batch = official_batch();
    let feeder = thread::spawn(move || {
        let mut writer = fs::OpenOptions::new().write(true).open(fifo).unwrap();
        let _ = writer.write_all(&batch);
    });
    // `ulimit -u 2`: the main thread and the signal thread start, the reader cannot.
    let args = ["--threads", "1", "batch.fifo", STREAM, OUTPUT];
    let Some(run) = run_with_thread_limit(&case, &args, 2) else {
        // The feeder waits for a reader: give it one.
        drop(fs::File::open(case.path("batch.fifo")));
        feeder.join().unwrap();
        return;
    };
    feeder.join().unwrap();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "Error: cannot start the thread that reads batch.fifo: Resource temporarily unavailable"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(show(&case.output().unwrap()), "previous\n");
}

// ---------------------------------------------------------------------------------------------
// No message is printed with a macro that panics.

#[test]
fn no_source_prints_with_a_panicking_macro() {
    fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 20, "the sources are found");
    let mut found = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if ["print!(", "println!(", "eprint!(", "eprintln!("]
                .iter()
                .any(|call| code.contains(call))
            {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "print!/eprintln! panic when the stream cannot be written; use crate::stderr::line:\n{}",
        found.join("\n")
    );
}
