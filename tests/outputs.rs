//! The outputs end to end (issue "Nothing is ever destroyed", rows 1-8, 16, 17 and the
//! disk-full message): no output may name an input or another output; special files are
//! written through and symbolic links followed; an output keeps its mode and owner; a failed run
//! leaves every old output as it was; another run's temporary file is never taken for a stale
//! one; a live output never ends in a torn line; `--stats -` and a closed standard output.
//! Special files are made inside temporary folders (`mknod` as root, `mkfifo`), never the
//! machine's own `/dev` entries.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{BATCH, Case, OFFICIAL_FLAGGED, OUTPUT, Run, STREAM, files_in, show};

const TIMEOUT: Duration = Duration::from_secs(20);

fn expected() -> String {
    format!("{OFFICIAL_FLAGGED}\n")
}

/// The official case, with "previous\n" in the output.
fn official() -> Case {
    let case = Case::from_fixture("official");
    case.write(OUTPUT, "previous\n");
    case
}

/// Exit 2, one line `Error: ...` holding every one of `names`.
fn assert_refused(run: &Run, names: &[&str]) {
    assert_eq!(run.code, Some(2), "stderr: {}", run.stderr);
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "one line: {:?}", run.stderr);
    assert!(lines[0].starts_with("Error: "), "{:?}", lines[0]);
    for name in names {
        assert!(
            lines[0].contains(name),
            "{:?} does not name {name}",
            lines[0]
        );
    }
}

/// The case's files are exactly `names` (no temporary file, nothing new).
fn assert_files(case: &Case, names: &[&str]) {
    let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    names.sort();
    assert_eq!(case.files(), names);
}

fn official_input(name: &str) -> Vec<u8> {
    fs::read(common::fixture("official").join(name)).unwrap()
}

/// The inputs and the output hold what they held before the run.
fn assert_untouched(case: &Case) {
    assert_eq!(fs::read(case.path(BATCH)).unwrap(), official_input(BATCH));
    assert_eq!(fs::read(case.path(STREAM)).unwrap(), official_input(STREAM));
    assert_eq!(show(&case.output().unwrap()), "previous\n");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

// ---------------------------------------------------------------------------------------------
// Row 1: an output naming an input.

#[test]
fn an_output_naming_an_input_is_refused_before_anything_is_written() {
    let case = official();
    fs::hard_link(case.path(BATCH), case.path("batch_hard_link.json")).unwrap();
    std::os::unix::fs::symlink(STREAM, case.path("stream_link.json")).unwrap();
    let all = [
        BATCH,
        STREAM,
        OUTPUT,
        "batch_hard_link.json",
        "stream_link.json",
    ];
    for (args, names) in [
        (vec![BATCH, STREAM, BATCH], ["OUTPUT", "BATCH", BATCH]),
        (
            vec![BATCH, STREAM, "./stream_log.json"],
            ["OUTPUT", "STREAM", STREAM],
        ),
        (
            vec![BATCH, STREAM, OUTPUT, "--feed", STREAM],
            ["--feed", "STREAM", STREAM],
        ),
        (
            vec![BATCH, STREAM, OUTPUT, "--recommend", BATCH],
            ["--recommend", "BATCH", BATCH],
        ),
        (
            vec![BATCH, STREAM, OUTPUT, "--stats", BATCH],
            ["--stats", "BATCH", BATCH],
        ),
        (
            vec![BATCH, STREAM, "batch_hard_link.json"],
            ["BATCH", "batch_hard_link.json", BATCH],
        ),
        (
            vec![BATCH, STREAM, "stream_link.json"],
            ["STREAM", "stream_link.json", STREAM],
        ),
        (vec![BATCH, "-", BATCH], ["OUTPUT", "BATCH", BATCH]),
    ] {
        let run = Run::of(case.cmd().args(&args));
        assert_refused(&run, &names);
        assert_untouched(&case);
        assert_eq!(
            fs::read(case.path("batch_hard_link.json")).unwrap(),
            official_input(BATCH)
        );
        assert_files(&case, &all);
    }
}

#[test]
fn standard_output_appended_to_an_input_is_refused() {
    let case = official();
    for (args, names) in [
        (vec![BATCH, STREAM, "-"], ["-: OUTPUT", "BATCH", BATCH]),
        (
            vec![BATCH, STREAM, OUTPUT, "--stats", "-"],
            ["-: --stats", "STREAM", STREAM],
        ),
    ] {
        let target = if args.len() == 3 { BATCH } else { STREAM };
        // As `anomaly-detect ... - >> batch_log.json` hands it over.
        let out = fs::OpenOptions::new()
            .append(true)
            .open(case.path(target))
            .unwrap();
        let done = Command::new(assert_cmd::cargo::cargo_bin("anomaly-detect"))
            .current_dir(case.dir.path())
            .args(&args)
            .stdout(out)
            .output()
            .unwrap();
        let run = Run {
            code: done.status.code(),
            stdout: String::new(),
            stderr: show(&done.stderr),
        };
        assert_refused(&run, &names);
        assert_untouched(&case);
    }
}

// ---------------------------------------------------------------------------------------------
// Row 2: outputs naming each other.

#[test]
fn outputs_naming_each_other_are_refused() {
    let case = official();
    fs::create_dir(case.path("sub")).unwrap();
    std::os::unix::fs::symlink("sub", case.path("sub_link")).unwrap();
    let all = [BATCH, STREAM, OUTPUT, "sub", "sub_link"];
    for (extra, names) in [
        (vec!["--feed", OUTPUT], ["--feed", "OUTPUT"]),
        (
            vec!["--stats", "./flagged_purchases.json"],
            ["--stats", "OUTPUT"],
        ),
        (
            vec!["--feed", "x.json", "--recommend", "x.json"],
            ["--recommend", "--feed"],
        ),
        (
            vec!["--feed", "x.json", "--recommend", "./x.json"],
            ["--recommend", "--feed"],
        ),
        (
            vec!["--feed", "sub/x.json", "--stats", "sub_link/x.json"],
            ["--stats", "--feed"],
        ),
    ] {
        let run = Run::of(case.cmd().args([BATCH, STREAM, OUTPUT]).args(&extra));
        assert_refused(&run, &names);
        assert_untouched(&case);
        assert_files(&case, &all);
        assert_eq!(fs::read_dir(case.path("sub")).unwrap().count(), 0);
    }
    let run = Run::of(case.cmd().args([BATCH, STREAM, "-", "--stats", "-"]));
    assert_refused(&run, &["-", "--stats", "OUTPUT", "standard output"]);
    assert_eq!(run.stdout, "");
}

// ---------------------------------------------------------------------------------------------
// Row 3: special files are written through.

/// A reader of the FIFO at `path` on a thread: what it read, within [`TIMEOUT`].
fn read_fifo(path: &Path) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        fs::File::open(&path)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        let _ = tx.send(bytes);
    });
    rx
}

#[test]
fn a_fifo_output_is_written_through_and_stays_a_fifo() {
    let case = Case::from_fixture("official");
    for (output, extra) in [
        ("out.fifo", &[][..]),
        ("stats.fifo", &["--stats", "stats.fifo"][..]),
    ] {
        let fifo = case.path(output);
        let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success(), "mkfifo");
        let received = read_fifo(&fifo);
        let target = if extra.is_empty() { output } else { OUTPUT };
        let run = Run::of(case.cmd().args([BATCH, STREAM, target, "-q"]).args(extra));
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let bytes = received
            .recv_timeout(TIMEOUT)
            .expect("the FIFO's reader got the output");
        if extra.is_empty() {
            assert_eq!(show(&bytes), expected());
        } else {
            let stats: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(stats["flagged"], 1);
        }
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    }
}

#[test]
fn a_character_device_output_is_written_through_and_stays_a_device() {
    if !is_root() {
        eprintln!("skipped: mknod of a character device needs root");
        return;
    }
    let case = official();
    let node = case.path("null");
    // The numbers of /dev/null, in the test's own folder.
    let made = Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(made.success(), "mknod");
    fs::set_permissions(&node, fs::Permissions::from_mode(0o600)).unwrap();
    for args in [
        vec![BATCH, STREAM, "null", "-q"],
        vec![
            BATCH,
            STREAM,
            OUTPUT,
            "-q",
            "--feed",
            "null",
            "--recommend",
            "null",
        ],
        vec![BATCH, "-", "null", "-q"],
    ] {
        let run = Run::of(case.cmd().args(&args).write_stdin(official_input(STREAM)));
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
        let meta = fs::symlink_metadata(&node).unwrap();
        assert!(meta.file_type().is_char_device(), "{args:?}: replaced");
        assert_eq!(meta.rdev(), libc::makedev(1, 3));
        assert_eq!(meta.mode() & 0o777, 0o600, "{args:?}: mode changed");
    }
    assert_eq!(show(&case.output().unwrap()), expected());
    assert_files(&case, &[BATCH, STREAM, OUTPUT, "null"]);
}

#[test]
fn an_inherited_pipe_named_dev_fd_n_is_written_through() {
    let case = Case::from_fixture("official");
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors owned here.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let raw = write_end.as_raw_fd();
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("anomaly-detect"));
    cmd.current_dir(case.dir.path())
        .args([BATCH, STREAM, "/dev/fd/7", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: dup2 is async-signal-safe; the child gets the pipe's write end as fd 7, as a
    // shell's `>(cmd)` hands it over.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 7) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(write_end);
    let mut got = Vec::new();
    fs::File::from(read_end).read_to_end(&mut got).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out.stderr));
    assert_eq!(show(&got), expected());
    assert_files(&case, &[BATCH, STREAM]);
}

// ---------------------------------------------------------------------------------------------
// Row 4: a symbolic link is followed and stays.

#[test]
fn a_symlink_output_replaces_its_target_and_stays_a_link() {
    let case = Case::from_fixture("official");
    fs::create_dir(case.path("real")).unwrap();
    fs::write(case.path("real/flagged.json"), "previous\n").unwrap();
    std::os::unix::fs::symlink("real/flagged.json", case.path("link.json")).unwrap();
    std::os::unix::fs::symlink("real/new.json", case.path("dangling.json")).unwrap();
    for link in ["link.json", "dangling.json"] {
        Run::of(case.cmd().args([BATCH, STREAM, link, "-q"])).success();
        assert!(
            fs::symlink_metadata(case.path(link))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
    assert_eq!(
        show(&fs::read(case.path("real/flagged.json")).unwrap()),
        expected()
    );
    assert_eq!(
        show(&fs::read(case.path("real/new.json")).unwrap()),
        expected()
    );
    assert_eq!(files_in(&case.path("real")), ["flagged.json", "new.json"]);
}

// ---------------------------------------------------------------------------------------------
// Row 5: a failed run leaves every old output as it was.

#[test]
fn a_failed_run_keeps_every_old_output() {
    let case = official();
    for name in ["feed.json", "recommend.json", "stats.json"] {
        case.write(name, "previous\n");
    }
    fs::create_dir(case.path("a_dir")).unwrap();
    let outputs = ["--feed", "feed.json", "--recommend", "recommend.json"];
    let keeps_all = |case: &Case, run: &Run, names: &[&str]| {
        assert_refused(run, names);
        for name in [OUTPUT, "feed.json", "recommend.json", "stats.json"] {
            assert_eq!(
                show(&fs::read(case.path(name)).unwrap()),
                "previous\n",
                "{name}"
            );
        }
        assert_files(
            case,
            &[
                BATCH,
                STREAM,
                OUTPUT,
                "a_dir",
                "feed.json",
                "recommend.json",
                "stats.json",
            ],
        );
    };
    for stats in ["no_dir/stats.json", "a_dir"] {
        let run = Run::of(
            case.cmd()
                .args([BATCH, STREAM, OUTPUT, "--stats", stats])
                .args(outputs),
        );
        keeps_all(&case, &run, &[stats]);
    }
    // A fatal problem found late: a skipped stream line under --strict.
    case.write(
        STREAM,
        format!("{}not json\n", show(&official_input(STREAM))),
    );
    let run = Run::of(
        case.cmd()
            .args([BATCH, STREAM, OUTPUT, "--strict", "--stats", "stats.json"])
            .args(outputs),
    );
    keeps_all(&case, &run, &[STREAM]);
    // A bad parameter line.
    case.write(STREAM, official_input(STREAM));
    case.write(BATCH, "{\"D\":\"0\", \"T\":\"50\"}\n");
    let run = Run::of(
        case.cmd()
            .args([BATCH, STREAM, OUTPUT, "--stats", "stats.json"])
            .args(outputs),
    );
    keeps_all(&case, &run, &[BATCH]);
}

#[test]
fn a_successful_run_replaces_every_output_together() {
    let case = official();
    let run = case.run(&[
        "-q",
        "--feed",
        "feed.json",
        "--recommend",
        "rec.json",
        "--stats",
        "stats.json",
    ]);
    run.success();
    assert_eq!(show(&case.output().unwrap()), expected());
    for name in ["feed.json", "rec.json", "stats.json"] {
        assert!(!fs::read(case.path(name)).unwrap().is_empty(), "{name}");
    }
    assert_files(
        &case,
        &[BATCH, STREAM, OUTPUT, "feed.json", "rec.json", "stats.json"],
    );
}

// ---------------------------------------------------------------------------------------------
// Row 6: an existing output keeps its mode and owner.

#[test]
fn an_existing_output_keeps_its_mode_and_owner() {
    let case = official();
    fs::set_permissions(case.path(OUTPUT), fs::Permissions::from_mode(0o666)).unwrap();
    case.write("stats.json", "previous\n");
    fs::set_permissions(case.path("stats.json"), fs::Permissions::from_mode(0o640)).unwrap();
    let owner = is_root().then(|| {
        std::os::unix::fs::chown(case.path(OUTPUT), Some(4321), Some(4322)).unwrap();
        (4321, 4322)
    });
    case.run(&["-q", "--stats", "stats.json"]).success();
    let meta = fs::metadata(case.path(OUTPUT)).unwrap();
    assert_eq!(format!("{:o}", meta.mode() & 0o7777), "666");
    let stats = fs::metadata(case.path("stats.json")).unwrap();
    assert_eq!(format!("{:o}", stats.mode() & 0o7777), "640");
    if let Some((uid, gid)) = owner {
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "the owner changed");
    } else {
        eprintln!("note: not root, the owner part is not checked");
    }
    assert_eq!(show(&case.output().unwrap()), expected());
}

// ---------------------------------------------------------------------------------------------
// Row 7: another run's temporary file is never taken for a stale one.

/// A file created and locked (`flock`) as a running writer holds its temporary file.
fn locked_file(path: &Path) -> fs::File {
    let file = fs::File::create(path).unwrap();
    // SAFETY: the descriptor is open.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
    file
}

#[test]
fn a_live_temporary_of_another_run_survives_and_a_stale_one_goes() {
    let case = official();
    // A process id that does not exist here, as a run in another PID namespace has.
    let foreign_pid = (1_000_000..4_000_000)
        .step_by(7919)
        .find(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        .unwrap();
    let old_style = format!(".flagged-{foreign_pid}-AbC123.tmp");
    let live = ".anomaly-detect-0123456789ab.tmp";
    let stale = ".anomaly-detect-ba9876543210.tmp";
    let _held = (
        locked_file(&case.path(&old_style)),
        locked_file(&case.path(live)),
    );
    case.write(stale, "left by a run killed by SIGKILL\n");
    case.run(&["-q"]).success();
    assert_eq!(show(&case.output().unwrap()), expected());
    let files = case.files();
    assert!(
        files.contains(&old_style),
        "another run's temporary was removed: {files:?}"
    );
    assert!(
        files.contains(&live.to_string()),
        "another run's temporary was removed: {files:?}"
    );
    assert!(
        !files.contains(&stale.to_string()),
        "the stale temporary is still there"
    );
}

// ---------------------------------------------------------------------------------------------
// Row 8 and the disk-full message: write errors name the file; a live output never ends torn.

/// The official batch and `n` copies of its flagged stream purchase (each one is flagged).
fn many_flags(n: usize) -> Case {
    let line = show(&official_input(STREAM));
    let case = Case::from_fixture("official");
    case.write(STREAM, format!("{}\n", line.trim_end()).repeat(n));
    case
}

/// Runs the binary in `dir` with files limited to `limit` bytes (`RLIMIT_FSIZE`, SIGXFSZ
/// ignored: a write past the limit fails with EFBIG, as on a full disk), `stdin` fed.
fn run_limited(dir: &Path, args: &[&str], limit: u64, stdin: Vec<u8>) -> Run {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("anomaly-detect"));
    cmd.current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit and signal are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let rlimit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &rlimit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for piece in stdin.chunks(4096) {
            if input.write_all(piece).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < TIMEOUT, "the run did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
    feeder.join().unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code(),
        stdout: show(&out.stdout),
        stderr: show(&out.stderr),
    }
}

#[test]
fn a_full_disk_in_file_mode_names_the_file_and_keeps_the_old_output() {
    let case = many_flags(2000);
    case.write(OUTPUT, "previous\n");
    let run = run_limited(
        case.dir.path(),
        &[BATCH, STREAM, OUTPUT, "-q"],
        50_001,
        Vec::new(),
    );
    assert_refused(&run, &[&format!("{OUTPUT}: cannot write: File too large")]);
    assert_eq!(show(&case.output().unwrap()), "previous\n");
    assert_files(&case, &[BATCH, STREAM, OUTPUT]);
}

#[test]
fn a_full_disk_in_live_mode_leaves_only_whole_lines() {
    let case = many_flags(1);
    let stream = format!("{}\n", show(&official_input(STREAM)).trim_end()).repeat(2000);
    let limit = 50_001;
    let run = run_limited(
        case.dir.path(),
        &[BATCH, "-", OUTPUT, "-q"],
        limit,
        stream.into_bytes(),
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let output = show(&case.output().unwrap());
    assert!(
        output.ends_with('\n'),
        "torn: {:?}",
        &output[output.len().saturating_sub(40)..]
    );
    assert_refused(&run, &[&format!("{OUTPUT}: cannot write: File too large")]);
    assert!((output.len() as u64) < limit);
    assert!(output.len() > 10_000, "{} bytes written", output.len());
    assert!(output.lines().all(|line| line == OFFICIAL_FLAGGED));
}

#[test]
fn a_live_run_repairs_a_torn_last_line_and_says_so() {
    let case = Case::from_fixture("official");
    let torn = format!("{OFFICIAL_FLAGGED}\n{{\"event_");
    case.write(OUTPUT, &torn);
    let run = Run::of(
        case.cmd()
            .args([BATCH, "-", OUTPUT, "-q"])
            .write_stdin(official_input(STREAM)),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let warnings = run.stderr_lines();
    assert_eq!(warnings.len(), 1, "{:?}", run.stderr);
    assert!(
        warnings[0].starts_with("warning: ") && warnings[0].contains(OUTPUT),
        "{warnings:?}"
    );
    assert_eq!(show(&case.output().unwrap()), expected().repeat(2));
    // A whole last line is left alone, without a warning.
    let run = Run::of(
        case.cmd()
            .args([BATCH, "-", OUTPUT, "-q"])
            .write_stdin(official_input(STREAM)),
    );
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""));
    assert_eq!(show(&case.output().unwrap()), expected().repeat(3));
}

// ---------------------------------------------------------------------------------------------
// Rows 16 and 17: `--stats -`, and a closed standard output.

#[test]
fn stats_dash_writes_to_standard_output() {
    let case = Case::from_fixture("official");
    let run = case.run(&["-q", "--stats", "-"]).success();
    let stats: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(stats["flagged"], 1);
    assert_files(&case, &[BATCH, STREAM, OUTPUT]);
}

#[test]
fn a_closed_standard_output_is_an_error() {
    let case = official();
    for args in [
        vec![BATCH, STREAM, "-", "-q"],
        vec![BATCH, STREAM, OUTPUT, "-q", "--stats", "-"],
        vec!["--generate", "man"],
        vec!["sweep", "-q", BATCH, STREAM],
        vec!["sweep", "-q", "--csv", "-", BATCH, STREAM],
    ] {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("anomaly-detect"));
        cmd.current_dir(case.dir.path())
            .args(&args)
            .stderr(Stdio::piped());
        // SAFETY: close is async-signal-safe; the child starts with standard output closed,
        // as after `>&-`.
        unsafe {
            cmd.pre_exec(|| {
                libc::close(1);
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        let run = Run {
            code: out.status.code(),
            stdout: String::new(),
            stderr: show(&out.stderr),
        };
        assert_refused(&run, &["-: ", "standard output is closed"]);
        assert_untouched(&case);
    }
}
