//! The outputs against an unlucky operator and a hostile user (issue "Nothing is ever
//! destroyed, round two", output rows): live outputs opened `O_APPEND` whether or not they
//! existed (two runs on one file, a copytruncate), an output that is standard input's file,
//! an output linked to an input while the batch is read, a torn tail cut only when it is this
//! program's, a bind-mounted output, and the commit order (in `output::outputs::tests`).
//! Everything happens inside temporary folders; bind mounts are made there and always undone.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{BATCH, Case, OFFICIAL_FLAGGED, OUTPUT, Run, STREAM, show};

const TIMEOUT: Duration = Duration::from_secs(10);

fn exe() -> PathBuf {
    assert_cmd::cargo::cargo_bin("anomaly-detect")
}

fn official_input(name: &str) -> Vec<u8> {
    fs::read(common::fixture("official").join(name)).unwrap()
}

/// A purchase by user 2 of the official case: flagged (mean 29.10, sd 21.46) at any amount
/// from 94 up, whatever came before in the stream.
fn purchase(amount: &str) -> String {
    format!(
        r#"{{"event_type":"purchase", "timestamp":"2017-06-13 11:33:02", "id": "2", "amount": "{amount}"}}"#
    )
}

/// The output line of [`purchase`].
fn flagged(amount: &str) -> String {
    let line = purchase(amount);
    format!(
        "{}, \"mean\": \"29.10\", \"sd\": \"21.46\"}}\n",
        line.strip_suffix('}').unwrap()
    )
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

/// A run of the binary in `dir` with its stdin a pipe (live mode with STREAM `-`), stdout
/// and stderr collected. Killed when dropped still running.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Option<JoinHandle<String>>,
}

impl Running {
    fn spawn(dir: &Path, args: &[&str]) -> Running {
        let mut child = Command::new(exe())
            .current_dir(dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stdin = child.stdin.take();
        let mut err = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Running {
            child,
            stdin,
            stderr: Some(stderr),
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin (the end of a live stream) and waits for the exit: (code, stderr).
    fn finish(mut self) -> (Option<i32>, String) {
        self.stdin = None;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > TIMEOUT {
                // A live run that goes on: stopped the normal way, its end checked by the caller.
                let _ = Command::new("kill")
                    .args(["-TERM", &self.child.id().to_string()])
                    .status();
                break self.child.wait().unwrap();
            }
            thread::sleep(Duration::from_millis(10));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        (status.code(), stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits at most [`TIMEOUT`] for `ready` to hold of the file at `path` (its bytes).
fn wait_for(path: &Path, what: &str, ready: impl Fn(&[u8]) -> bool) {
    let started = Instant::now();
    loop {
        if let Ok(now) = fs::read(path)
            && ready(&now)
        {
            return;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "{} never {what}: it holds {:?}",
            path.display(),
            fs::read(path).map(|b| show(&b))
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn wait_for_content(path: &Path, expected: &str) {
    wait_for(path, &format!("held {expected:?}"), |now| {
        now == expected.as_bytes()
    });
}

// ---------------------------------------------------------------------------------------------
// Row 2: a live output that did not exist is appended to (`O_APPEND`) like an existing one.

#[test]
fn two_live_runs_on_an_output_the_first_created_keep_every_line() {
    let case = Case::from_fixture("official");
    let out = case.path(OUTPUT);
    let args = [BATCH, "-", OUTPUT, "-q"];
    let mut first = Running::spawn(case.dir.path(), &args);
    // Created once the first run has read its batch.
    wait_for(&out, "was created", |_| true);
    let mut second = Running::spawn(case.dir.path(), &args);
    // The second run has read its batch too once its torn-tail check passed: give it a line.
    let mut expected = String::new();
    for (n, amount) in [
        "1601.01", "1601.02", "1601.03", "1601.04", "1601.05", "1601.06",
    ]
    .iter()
    .enumerate()
    {
        if n % 2 == 0 {
            first.send(&purchase(amount));
        } else {
            second.send(&purchase(amount));
        }
        expected.push_str(&flagged(amount));
        wait_for_content(&out, &expected);
    }
    let (code, stderr) = first.finish();
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    let (code, stderr) = second.finish();
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    assert_eq!(show(&fs::read(&out).unwrap()), expected);
}

#[test]
fn a_copytruncate_of_a_new_live_output_leaves_no_hole_of_zeros() {
    let case = Case::from_fixture("official");
    let out = case.path(OUTPUT);
    let mut run = Running::spawn(case.dir.path(), &[BATCH, "-", OUTPUT, "-q"]);
    run.send(&purchase("1601.01"));
    wait_for_content(&out, &flagged("1601.01"));
    // logrotate's copytruncate: the content copied away, the file cut to nothing.
    fs::copy(&out, case.path("flagged.1")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&out)
        .unwrap()
        .set_len(0)
        .unwrap();
    run.send(&purchase("1601.02"));
    wait_for(&out, "got its next line", |now| !now.is_empty());
    let (code, stderr) = run.finish();
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    assert_eq!(show(&fs::read(&out).unwrap()), flagged("1601.02"));
    assert_eq!(
        show(&fs::read(case.path("flagged.1")).unwrap()),
        flagged("1601.01")
    );
}

// ---------------------------------------------------------------------------------------------
// Row 3: standard input's file named as an output.

/// Runs `args` in the case's folder with stdin read from `stdin` and stdout appended to
/// `stdout` (or a pipe).
fn run_redirected(case: &Case, args: &[&str], stdin: &str, stdout: Option<&str>) -> Run {
    let mut cmd = Command::new(exe());
    cmd.current_dir(case.dir.path())
        .args(args)
        .stdin(fs::File::open(case.path(stdin)).unwrap())
        .stderr(Stdio::piped());
    match stdout {
        Some(name) => {
            let file = fs::OpenOptions::new()
                .append(true)
                .open(case.path(name))
                .unwrap();
            cmd.stdout(file);
        }
        None => {
            cmd.stdout(Stdio::piped());
        }
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code(),
        stdout: show(&out.stdout),
        stderr: show(&out.stderr),
    }
}

#[test]
fn standard_input_named_as_an_output_is_refused_whichever_way_it_is_named() {
    let case = Case::from_fixture("official");
    fs::hard_link(case.path(STREAM), case.path("hard_link.json")).unwrap();
    std::os::unix::fs::symlink(STREAM, case.path("sym_link.json")).unwrap();
    let stream = official_input(STREAM);
    for (args, stdout) in [
        (vec![BATCH, "-", STREAM, "-q"], None),
        (vec![BATCH, "-", "./hard_link.json", "-q"], None),
        (vec![BATCH, "-", "sym_link.json", "-q"], None),
        (vec![BATCH, "-", "/dev/stdin", "-q"], None),
        (vec![BATCH, "-", OUTPUT, "-q", "--feed", STREAM], None),
        (vec![BATCH, "-", OUTPUT, "-q", "--recommend", STREAM], None),
        // Standard output appended to the file standard input reads.
        (vec![BATCH, "-", "-", "-q"], Some(STREAM)),
    ] {
        let run = run_redirected(&case, &args, STREAM, stdout);
        assert_refused(&run, &["the same file as STREAM (-, standard input)"]);
        assert_eq!(fs::read(case.path(STREAM)).unwrap(), stream, "{args:?}");
        assert!(!case.path(OUTPUT).exists(), "{args:?}");
    }
    // Standard input from another file: allowed.
    case.write("other.json", &stream);
    let run = run_redirected(&case, &[BATCH, "-", OUTPUT, "-q"], "other.json", None).success();
    assert_eq!(run.stderr, "");
    assert_eq!(
        show(&fs::read(case.path(OUTPUT)).unwrap()),
        format!("{OFFICIAL_FLAGGED}\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Row 4: OUTPUT linked to STREAM while the batch is read.

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn an_output_linked_to_the_stream_while_the_batch_is_read_is_refused() {
    for (link, follow) in [("hard", true), ("sym", true), ("hard", false)] {
        let case = Case::from_fixture("official");
        let stream = format!("{}\n", show(&official_input(STREAM)));
        case.write(STREAM, &stream);
        let batch_fifo = case.path("batch.fifo");
        mkfifo(&batch_fifo);
        // The batch comes through a FIFO, so the run is still reading it when the link is made.
        let args = if follow {
            vec!["batch.fifo", "--follow", STREAM, OUTPUT, "-q"]
        } else {
            vec!["batch.fifo", "-", OUTPUT, "-q"]
        };
        let mut cmd = Command::new(exe());
        cmd.current_dir(case.dir.path())
            .args(&args)
            .stdin(fs::File::open(case.path(STREAM)).unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut batch = fs::OpenOptions::new()
            .write(true)
            .open(&batch_fifo)
            .unwrap();
        batch.write_all(b"{\"D\":\"3\", \"T\":\"50\"}\n").unwrap();
        thread::sleep(Duration::from_millis(100));
        if link == "hard" {
            fs::hard_link(case.path(STREAM), case.path(OUTPUT)).unwrap();
        } else {
            std::os::unix::fs::symlink(STREAM, case.path(OUTPUT)).unwrap();
        }
        let rest = show(&official_input(BATCH));
        let rest = rest.split_once('\n').unwrap().1;
        batch.write_all(rest.as_bytes()).unwrap();
        drop(batch);
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() && started.elapsed() < TIMEOUT {
            thread::sleep(Duration::from_millis(10));
        }
        if child.try_wait().unwrap().is_none() {
            // Still following: it took the stream for its output.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let out = child.wait_with_output().unwrap();
        let run = Run {
            code: out.status.code(),
            stdout: String::new(),
            stderr: show(&out.stderr),
        };
        assert_eq!(
            show(&fs::read(case.path(STREAM)).unwrap()),
            stream,
            "{link} link, follow {follow}: the stream changed"
        );
        assert_refused(&run, &[OUTPUT, "OUTPUT is the same file as STREAM"]);
    }
}

// ---------------------------------------------------------------------------------------------
// Row 5: a torn tail is cut only when it is one; any other file is refused, untouched.

#[test]
fn a_live_output_that_is_not_this_programs_is_refused_untouched() {
    let mut document = String::from("{\"items\": [");
    while document.len() < 688_900 {
        document.push_str("{\"n\": 1234567}, ");
    }
    document.push_str("{\"n\": 0}]}");
    let pretty = "{\n  \"a\": [\n    1\n  ]\n}".to_string();
    let notes = "shopping list\nmilk\neggs, and remember the".to_string();
    let flag = format!("{OFFICIAL_FLAGGED}\n");
    for (name, content) in [
        ("document.json", document),
        ("pretty.json", pretty),
        ("notes.txt", notes),
        // A torn-looking line after a line this program does not write.
        ("mixed.json", format!("notes\n{}", &OFFICIAL_FLAGGED[..40])),
        // Zeros at the end (a crash on some file systems): not a line it writes.
        ("zeros.json", format!("{flag}\0\0\0\0")),
    ] {
        for (stream, extra) in [(official_input(STREAM), None), (Vec::new(), None)]
            .into_iter()
            .chain([(official_input(STREAM), Some("--feed"))])
        {
            let case = Case::from_fixture("official");
            case.write(name, &content);
            let mut args = vec![BATCH, "-", OUTPUT, "-q"];
            match extra {
                Some(role) => args.extend([role, name]),
                None => args[2] = name,
            }
            let run = Run::of(case.cmd().args(&args).write_stdin(stream));
            assert_refused(&run, &[name, "not an output of this program", "untouched"]);
            assert_eq!(show(&fs::read(case.path(name)).unwrap()), content, "{name}");
            let mut left = vec![BATCH.to_string(), name.to_string(), STREAM.to_string()];
            left.sort();
            assert_eq!(case.files(), left, "{name}: nothing created");
        }
    }
}

#[test]
fn a_torn_line_is_cut_and_its_bytes_kept_beside_the_output() {
    let case = Case::from_fixture("official");
    let flag = format!("{OFFICIAL_FLAGGED}\n");
    let feed_line = "{\"id\": \"2\", \"timestamp\": \"2017-06-13 11:33:02\", \"amount\": \"1601.83\", \"friends\": [\"1\"]}\n";
    case.write(OUTPUT, format!("{flag}{}", &OFFICIAL_FLAGGED[..50]));
    case.write("feed.json", format!("{feed_line}{{\"id\": \"2\", \"times"));
    let run = Run::of(
        case.cmd()
            .args([BATCH, "-", OUTPUT, "-q", "--feed", "feed.json"])
            .write_stdin(official_input(STREAM)),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stderr_lines(),
        [
            format!(
                "warning: {OUTPUT}: its last line had no end of line (a run stopped while \
                 writing it): 50 bytes removed, kept in {OUTPUT}.torn"
            ),
            "warning: feed.json: its last line had no end of line (a run stopped while \
             writing it): 18 bytes removed, kept in feed.json.torn"
                .to_string(),
        ]
    );
    assert_eq!(show(&case.output().unwrap()), flag.repeat(2));
    assert_eq!(
        show(&fs::read(case.path(&format!("{OUTPUT}.torn"))).unwrap()),
        &OFFICIAL_FLAGGED[..50]
    );
    assert_eq!(
        show(&fs::read(case.path("feed.json")).unwrap()),
        feed_line.repeat(2)
    );
    assert_eq!(
        show(&fs::read(case.path("feed.json.torn")).unwrap()),
        "{\"id\": \"2\", \"times"
    );
}

// ---------------------------------------------------------------------------------------------
// Row 6: a bind-mounted output is refused before anything is read.

/// A file bind-mounted over another inside a temporary folder, unmounted when dropped.
struct BindMount {
    target: PathBuf,
}

impl BindMount {
    /// `None` when mounting is not permitted here (no CAP_SYS_ADMIN): the test skips.
    fn new(source: &Path, target: &Path) -> Option<BindMount> {
        let out = Command::new("mount")
            .arg("--bind")
            .arg(source)
            .arg(target)
            .stderr(Stdio::piped())
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!("skipped: cannot bind-mount: {}", show(&out.stderr).trim());
            return None;
        }
        Some(BindMount {
            target: target.to_path_buf(),
        })
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.target).status();
    }
}

#[test]
fn a_bind_mounted_output_is_refused_before_anything_is_read() {
    let case = Case::from_fixture("official");
    let outside = tempfile::tempdir().unwrap();
    for name in [OUTPUT, "stats.json"] {
        case.write(name, "previous\n");
        fs::write(outside.path().join(name), "mounted\n").unwrap();
    }
    let Some(_output) = BindMount::new(&outside.path().join(OUTPUT), &case.path(OUTPUT)) else {
        return;
    };
    let Some(_stats) = BindMount::new(&outside.path().join("stats.json"), &case.path("stats.json"))
    else {
        return;
    };
    std::os::unix::fs::symlink(OUTPUT, case.path("link.json")).unwrap();
    // BATCH is a FIFO nobody writes: a run that read it would wait; refused at once instead.
    mkfifo(&case.path("batch.fifo"));
    for (args, name) in [
        (vec!["batch.fifo", STREAM, OUTPUT, "-q"], OUTPUT),
        (vec!["batch.fifo", STREAM, "link.json", "-q"], "link.json"),
        (
            vec![
                "batch.fifo",
                STREAM,
                "other.json",
                "-q",
                "--stats",
                "stats.json",
            ],
            "stats.json",
        ),
        // Live mode appends to OUTPUT in place, but replaces --stats.
        (
            vec![
                "batch.fifo",
                "-",
                "other.json",
                "-q",
                "--stats",
                "stats.json",
            ],
            "stats.json",
        ),
    ] {
        let started = Instant::now();
        let run = Run::of(case.cmd().args(&args).timeout(TIMEOUT));
        assert_refused(&run, &[name, "mount point"]);
        assert!(started.elapsed() < TIMEOUT);
        for mounted in [OUTPUT, "stats.json"] {
            assert_eq!(show(&fs::read(case.path(mounted)).unwrap()), "mounted\n");
        }
        assert!(!case.path("other.json").exists());
    }
    // A bind-mounted live OUTPUT is appended to in place.
    let run = Run::of(
        case.cmd()
            .args([BATCH, "-", OUTPUT, "-q"])
            .write_stdin(official_input(STREAM)),
    );
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""));
    let expected = format!("mounted\n{OFFICIAL_FLAGGED}\n");
    assert_eq!(show(&fs::read(case.path(OUTPUT)).unwrap()), expected);
    assert_eq!(
        show(&fs::read(outside.path().join(OUTPUT)).unwrap()),
        expected
    );
}
