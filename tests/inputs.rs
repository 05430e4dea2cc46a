//! Inputs that must not hurt a run: a regular file that cannot be mapped is read instead, and
//! the SIGBUS guard of mapped logs takes only its own faults, passes every other SIGBUS on as
//! it was meant, and lets no byte that a log lost reach an output.
//!
//! The guard is per process (one handler, a fixed set of slots), so the tests that install
//! handlers of their own or fill the slots run again in a child process of their own
//! ([`in_child`]).

mod common;

use std::fs;
use std::io::{self, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anomaly_detect::ingest::input::{BatchSource, NO_MAP_VAR};
use anomaly_detect::output::report::SkipLog;
use anomaly_detect::{
    Checked, Fatal, Sink, config::Config, ingest::input::LogFile, replay::replay,
};
use common::{BATCH, Case, OUTPUT, STREAM, befriend, log, purchase, show};

/// How long a test waits for something the program should do at once.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Set in the environment of a test run again in a process of its own.
const CHILD: &str = "ANOMALY_DETECT_INPUTS_CHILD";

/// Runs the test `name` of this file again in a child process with [`CHILD`] set, and
/// asserts that it passed there.
fn in_child(name: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} in a process of its own: {:?} (signal {:?})\n{}{}",
        out.status,
        out.status.signal(),
        show(&out.stdout),
        show(&out.stderr)
    );
}

fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// A batch where 1's network (2) bought 10.00 and 12.00: 20.00 by 1 is flagged (mean 11.00,
/// sd 1.00), and a stream of `flagged` such purchases after one by 9, who has no network.
fn logs(flagged: usize) -> (String, String) {
    let batch = log(&[
        r#"{"D":"1", "T":"10"}"#.to_string(),
        befriend("2017-06-13 10:00:00", "1", "2"),
        purchase("2017-06-13 10:01:00", "2", "10.00"),
        purchase("2017-06-13 10:02:00", "2", "12.00"),
    ]);
    let mut stream = vec![purchase("2017-06-13 11:00:00", "9", "10.00")];
    stream.extend((0..flagged).map(|i| {
        purchase(
            &format!("2017-06-13 11:{:02}:{:02}", 1 + i / 60, i % 60),
            "1",
            "20.00",
        )
    }));
    (batch, log(&stream))
}

fn exe() -> PathBuf {
    assert_cmd::cargo::cargo_bin("anomaly-detect")
}

/// Whether the process maps `path`.
fn maps(pid: u32, path: &Path) -> bool {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    maps.contains(path.to_str().unwrap())
}

/// Whether the process has `path` open.
fn holds(pid: u32, path: &Path) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == path))
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Waits at most [`TIMEOUT`] for the child to end.
fn wait(child: &mut std::process::Child) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run did not end within {TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// A regular file that cannot be mapped is read as it comes.

/// The summary line without its times.
fn without_times(stderr: &str) -> String {
    stderr
        .lines()
        .map(|line| {
            line.split("; ")
                .filter(|p| !p.ends_with(" s)"))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_regular_file_that_cannot_be_mapped_is_read_in_blocks_with_the_same_result() {
    let (batch, stream) = logs(3);
    let case = Case::new(batch, format!("{stream}{{\"bad\n"));
    let mapped = case.run(&[]).success();
    let expected = case.output().unwrap();
    assert_eq!(expected.iter().filter(|&&b| b == b'\n').count(), 3);
    let sweep_args = ["sweep", "-D", "1,2", "-T", "2,10", BATCH, STREAM];
    let swept = case.cmd().args(sweep_args).output().unwrap();
    assert!(swept.status.success(), "{}", show(&swept.stderr));
    for threads in ["1", "2"] {
        fs::remove_file(case.path(OUTPUT)).unwrap();
        let mut cmd = case.cmd();
        cmd.env(NO_MAP_VAR, "1")
            .args([BATCH, STREAM, OUTPUT, "--threads", threads]);
        let unmapped = common::Run::of(&mut cmd).success();
        assert_eq!(case.output().unwrap(), expected, "threads {threads}");
        assert_eq!(
            without_times(&unmapped.stderr),
            without_times(&mapped.stderr)
        );
        let unmapped = case
            .cmd()
            .env(NO_MAP_VAR, "1")
            .args(sweep_args)
            .output()
            .unwrap();
        assert!(unmapped.status.success(), "{}", show(&unmapped.stderr));
        assert_eq!(show(&unmapped.stdout), show(&swept.stdout));
    }

    // Not mapped, not refused: read while the run lasts (STREAM is a FIFO held open here).
    let fifo = case.path("stream.fifo");
    mkfifo(&fifo);
    let batch = case.path(BATCH).canonicalize().unwrap();
    for no_map in [false, true] {
        let mut cmd = Command::new(exe());
        cmd.current_dir(case.dir.path())
            .args([BATCH, "stream.fifo", OUTPUT, "--threads", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if no_map {
            cmd.env(NO_MAP_VAR, "1");
        }
        let mut child = cmd.spawn().unwrap();
        // The child holds BATCH open and waits for a writer on STREAM.
        let started = Instant::now();
        while !holds(child.id(), &batch) {
            assert!(started.elapsed() < TIMEOUT, "BATCH is never opened");
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(maps(child.id(), &batch), !no_map, "no_map {no_map}");
        drop(fs::OpenOptions::new().write(true).open(&fifo).unwrap());
        assert!(wait(&mut child).success());
    }
}

/// A file larger than the address space the process may use cannot be mapped (`ENOMEM`):
/// it is read instead, to its end (here a hole of zeros, one line too long to keep).
#[test]
fn a_regular_file_too_large_to_map_is_read_not_refused() {
    const LIMIT: u64 = 512 << 20;
    let (batch, stream) = logs(3);
    let case = Case::new(batch, &stream);
    let run_limited = |stream: &str| {
        let mut cmd = Command::new(exe());
        cmd.current_dir(case.dir.path()).args([
            BATCH,
            stream,
            OUTPUT,
            "-q",
            "--threads",
            "2",
            "--max-line-bytes",
            "1000",
        ]);
        // SAFETY: setrlimit is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: LIMIT,
                    rlim_max: LIMIT,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.output().unwrap()
    };
    let plain = run_limited(STREAM);
    if !plain.status.success() {
        eprintln!(
            "skipped: the program does not run within {LIMIT} bytes of address space here: {}",
            show(&plain.stderr)
        );
        return;
    }
    let expected = case.output().unwrap();
    let big = case.path("big.json");
    fs::write(&big, &stream).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(2 * LIMIT)
        .unwrap();
    fs::remove_file(case.path(OUTPUT)).unwrap();
    let out = run_limited("big.json");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out.stderr));
    assert_eq!(
        show(&out.stderr),
        "warning: big.json:5: skipped: line too long (more than 1000 bytes)\n"
    );
    assert_eq!(case.output().unwrap(), expected);
}

// ---------------------------------------------------------------------------------------------
// No byte a mapped log lost reaches an output.

/// Records the lines of flagged purchases; at its first call truncates `path` to `cut` bytes
/// (after every line was parsed, before the later ones are copied).
struct Truncating {
    path: PathBuf,
    cut: Option<u64>,
    lines: Vec<Vec<u8>>,
}

impl Sink for Truncating {
    type Error = io::Error;

    fn checked(&mut self, purchase: &Checked<'_>) -> io::Result<bool> {
        if let Some(cut) = self.cut.take() {
            fs::OpenOptions::new()
                .write(true)
                .open(&self.path)?
                .set_len(cut)?;
        }
        if purchase.is_flagged() {
            self.lines.push(purchase.line().to_vec());
        }
        Ok(true)
    }
}

#[test]
fn a_mapped_line_that_turns_to_zeros_never_reaches_an_output() {
    // Within one page the lost bytes read as zeros without any fault; over several, the rest
    // faults and the guard maps zeros.
    for flagged in [5, 100] {
        for (threads, window) in [(1, 1), (2, 1), (2, 7)] {
            let dir = tempfile::tempdir().unwrap();
            let (batch, stream) = logs(flagged);
            let (batch_path, stream_path) = (dir.path().join(BATCH), dir.path().join(STREAM));
            fs::write(&batch_path, batch).unwrap();
            fs::write(&stream_path, &stream).unwrap();
            let batch = LogFile::open(&batch_path).unwrap();
            let stream = LogFile::open(&stream_path).unwrap();
            let config = Config {
                threads,
                window,
                ..Config::default()
            };
            let mut sink = Truncating {
                path: stream_path.clone(),
                cut: Some(50),
                lines: Vec::new(),
            };
            let mut skips = SkipLog::new(Box::new(io::sink()), false);
            let result = replay(&batch, &stream, &config, &mut sink, &mut skips);
            let case = format!("{flagged} lines, {threads} threads, window {window}");
            for line in &sink.lines {
                assert!(
                    !line.contains(&0),
                    "{case}: a zeroed line was echoed: {line:?}"
                );
            }
            if threads > 1 && flagged < window {
                // Every line was copied before the first check was handed over (one window):
                // the run read the whole file intact, and succeeds.
                assert!(result.is_ok(), "{case}");
                assert_eq!(sink.lines.len(), flagged, "{case}");
                continue;
            }
            let error = result
                .err()
                .unwrap_or_else(|| panic!("{case}: the run succeeded"));
            assert!(matches!(error, Fatal::Shrank { .. }), "{case}: {error}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The SIGBUS guard takes its own faults only.

/// A SIGBUS sent by a process has its default action, ending the process: it neither passes
/// unnoticed nor leaves the guard disarmed for a real fault later.
#[test]
fn kill_bus_ends_the_run_as_the_signal_s_default_action() {
    let (batch, stream) = logs(3);
    let case = Case::new(batch, stream);
    case.write(OUTPUT, "previous\n");
    let fifo = case.path("stream.fifo");
    mkfifo(&fifo);
    let mut cmd = Command::new(exe());
    cmd.current_dir(case.dir.path())
        .args([BATCH, "stream.fifo", OUTPUT])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; no core file is written.
    unsafe {
        cmd.pre_exec(|| {
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // Opened once the child opened its end: BATCH is mapped and the guard is in place.
    let mut writer = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    thread::sleep(Duration::from_millis(50));
    // SAFETY: kill has no memory effects.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGBUS) }, 0);
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(3) {
        thread::sleep(Duration::from_millis(10));
    }
    let _ = writer.write_all(purchase("2017-06-13 12:00:00", "1", "20.00").as_bytes());
    drop(writer);
    let status = wait(&mut child);
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status:?}");
    assert_eq!(fs::read(case.path(OUTPUT)).unwrap(), b"previous\n");
}

static CHAINED: AtomicBool = AtomicBool::new(false);

/// A handler of the program's own (Rust installs one for stack overflows): records the call,
/// and puts a zero page under the fault so that the access goes on.
extern "C" fn own_handler(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    CHAINED.store(true, Ordering::SeqCst);
    // SAFETY: the kernel's siginfo; mmap is async-signal-safe.
    unsafe {
        let address = (*info).si_addr() as usize & !(page() - 1);
        libc::mmap(
            address as *mut libc::c_void,
            page(),
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        );
    }
}

#[test]
fn a_fault_outside_every_log_map_goes_to_the_handler_that_was_there() {
    if !is_child() {
        return in_child("a_fault_outside_every_log_map_goes_to_the_handler_that_was_there");
    }
    // SAFETY: installs a handler that does async-signal-safe work only.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = own_handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()),
            0
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (batch, _) = logs(1);
    fs::write(dir.path().join(BATCH), batch).unwrap();
    // The guard is installed with the first log mapped.
    let log = LogFile::open(&dir.path().join(BATCH)).unwrap();
    // Another map, not a log's, whose file shrinks under it.
    let other = dir.path().join("other");
    fs::write(&other, vec![b'x'; 3 * page()]).unwrap();
    let file = fs::File::open(&other).unwrap();
    // SAFETY: read-only; the fault it raises is the point of the test.
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&other)
        .unwrap()
        .set_len(0)
        .unwrap();
    // SAFETY: in the map; the fault goes to `own_handler`, which maps a zero page there.
    let byte = unsafe { std::ptr::read_volatile(map.as_ptr().add(page() + 1)) };
    assert_eq!(byte, 0);
    assert!(CHAINED.load(Ordering::SeqCst), "the saved handler ran");
    assert!(log.check_size().is_ok(), "the log itself is intact");
}

/// The `errno` of this thread.
fn errno() -> &'static mut i32 {
    // SAFETY: the calling thread's errno.
    unsafe { &mut *libc::__errno_location() }
}

/// A fault inside a log's map at an offset the file still holds is a read error (the kernel
/// raises SIGBUS with `BUS_ADRERR` for an I/O error as for a truncation): `cannot read`, not
/// `the file shrank`. The fault is sent to this thread with `rt_tgsigqueueinfo`, as the
/// kernel sends it.
#[test]
fn a_fault_inside_a_log_the_file_still_holds_is_a_read_error() {
    if !is_child() {
        return in_child("a_fault_inside_a_log_the_file_still_holds_is_a_read_error");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STREAM);
    let (_, stream) = logs(100);
    assert!(stream.len() > 2 * page());
    fs::write(&path, &stream).unwrap();
    let log = LogFile::open(&path).unwrap();
    assert!(log.check_size().is_ok());
    let address = log.body().as_ptr() as usize + page() + 10;
    // siginfo_t: signo, errno, code, then (at 16) the fault address.
    let mut info = [0u64; 16];
    // SAFETY: writes inside the 128-byte buffer.
    unsafe {
        let words = info.as_mut_ptr() as *mut i32;
        *words = libc::SIGBUS;
        *words.add(2) = libc::BUS_ADRERR;
        *(info.as_mut_ptr().add(2) as *mut usize) = address;
    }
    *errno() = 1234;
    // SAFETY: a signal to this very thread; the guard handles it.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            libc::getpid(),
            libc::gettid(),
            libc::SIGBUS,
            info.as_ptr(),
        )
    };
    assert_eq!(sent, 0, "{}", io::Error::last_os_error());
    assert_eq!(*errno(), 1234, "the handler keeps errno");
    let error = log.check_size().expect_err("the map is damaged");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: cannot read: Input/output error (os error 5)",
            path.display()
        )
    );
    let body = log.body();
    assert_eq!(&body[..page()], &stream.as_bytes()[..page()]);
    assert!(
        body[page()..].iter().all(|&b| b == 0),
        "zeros from the fault on"
    );
}

/// With every slot of the guard taken, a log is read, never mapped without a watch.
#[test]
fn a_log_that_cannot_be_watched_is_read_not_mapped() {
    if !is_child() {
        return in_child("a_log_that_cannot_be_watched_is_read_not_mapped");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(BATCH);
    fs::write(&path, logs(3).0).unwrap();
    let mut held = Vec::new();
    while let Ok(BatchSource::File(log)) = BatchSource::open(&path) {
        held.push(log);
        assert!(held.len() <= 64, "more maps than the guard watches");
    }
    assert_eq!(held.len(), 64);
    let log = LogFile::open(&path).unwrap();
    assert_eq!(log.body(), fs::read(&path).unwrap());
}

// ---------------------------------------------------------------------------------------------
// A followed file whose file system has no real sizes.

/// `--follow` on a procfs file (it says it holds 0 bytes, and holds text) reads it to its end
/// once, like a FIFO, and ends: followed by size, it looked truncated at every poll and its
/// lines were replayed hundreds of times a second. The file is the command line of a child
/// process of this test, which holds the stream's lines; nothing else of /proc is read.
#[test]
fn a_followed_procfs_file_is_read_once_to_its_end() {
    let (batch, stream) = logs(5);
    // `; true`: the shell stays, with its arguments (a shell may exec a lone last command).
    let mut holder = Command::new("sh")
        .args(["-c", "sleep 30; true", "holder", &format!("\n{stream}")])
        .spawn()
        .unwrap();
    let cmdline = PathBuf::from(format!("/proc/{}/cmdline", holder.id()));
    // The child's command line is the shell's once it has started.
    let started = Instant::now();
    let held = loop {
        let held = fs::read(&cmdline).unwrap();
        if held.windows(6).any(|w| w == b"holder") || started.elapsed() > TIMEOUT {
            break held;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let case = Case::new(&batch, held);
    let expected = common::bin()
        .current_dir(case.dir.path())
        .args([BATCH, STREAM, "-"])
        .output()
        .unwrap();
    assert!(expected.status.success());
    assert_eq!(
        show(&expected.stdout).lines().count(),
        5,
        "{}",
        show(&expected.stderr)
    );
    assert_eq!(
        show(&expected.stdout).lines().count(),
        5,
        "{}",
        show(&expected.stdout)
    );
    let mut run = Command::new(exe())
        .current_dir(case.dir.path())
        .args([BATCH, cmdline.to_str().unwrap(), OUTPUT, "--follow"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait(&mut run);
    let _ = holder.kill();
    let _ = holder.wait();
    let mut stderr = String::new();
    io::Read::read_to_string(&mut run.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(!stderr.contains("truncated"), "{stderr}");
    assert_eq!(show(&case.output().unwrap()), show(&expected.stdout));
}
