//! Helpers shared by the integration tests: the binary under test, and runs over a batch and a
//! stream written into a fresh temporary directory. Each test file uses a part of them.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

pub const BATCH: &str = "batch_log.json";
pub const STREAM: &str = "stream_log.json";
pub const OUTPUT: &str = "flagged_purchases.json";

/// The `anomaly-detect` binary of this package.
pub fn bin() -> Command {
    Command::cargo_bin("anomaly-detect").expect("the anomaly-detect binary is built")
}

/// The folder of a fixture under `tests/data/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A temporary directory holding `batch_log.json` and `stream_log.json`.
pub struct Case {
    pub dir: TempDir,
}

impl Case {
    pub fn new(batch: impl AsRef<[u8]>, stream: impl AsRef<[u8]>) -> Case {
        let dir = tempfile::tempdir().expect("a temporary directory");
        fs::write(dir.path().join(BATCH), batch).unwrap();
        fs::write(dir.path().join(STREAM), stream).unwrap();
        Case { dir }
    }

    /// A case with the inputs of the fixture `tests/data/NAME/`.
    pub fn from_fixture(name: &str) -> Case {
        let from = fixture(name);
        Case::new(
            fs::read(from.join(BATCH)).unwrap(),
            fs::read(from.join(STREAM)).unwrap(),
        )
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) {
        fs::write(self.path(name), bytes).unwrap();
    }

    /// The binary, run inside the case's directory (so messages name files as given).
    pub fn cmd(&self) -> Command {
        let mut cmd = bin();
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// `anomaly-detect batch_log.json stream_log.json flagged_purchases.json EXTRA...`.
    pub fn run(&self, extra: &[&str]) -> Run {
        let mut cmd = self.cmd();
        cmd.args([BATCH, STREAM, OUTPUT]).args(extra);
        Run::of(&mut cmd)
    }

    /// The output file's bytes, `None` when it does not exist.
    pub fn output(&self) -> Option<Vec<u8>> {
        fs::read(self.path(OUTPUT)).ok()
    }

    /// Names of the files in the case's directory, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// What one run of the binary gave.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(cmd: &mut Command) -> Run {
        let out = cmd.output().expect("the binary runs");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Asserts exit code 0 and returns self.
    pub fn success(self) -> Run {
        assert_eq!(self.code, Some(0), "the run failed: {}", self.stderr);
        self
    }

    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

/// The official example's expected output line, without its final newline.
pub const OFFICIAL_FLAGGED: &str = r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:02", "id": "2", "amount": "1601.83", "mean": "29.10", "sd": "21.46"}"#;

/// Bytes shown in assertion messages readably.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// Building logs.

pub fn purchase(ts: &str, id: &str, amount: &str) -> String {
    format!(
        r#"{{"event_type":"purchase", "timestamp":"{ts}", "id": "{id}", "amount": "{amount}"}}"#
    )
}

pub fn befriend(ts: &str, a: &str, b: &str) -> String {
    format!(r#"{{"event_type":"befriend", "timestamp":"{ts}", "id1": "{a}", "id2": "{b}"}}"#)
}

pub fn unfriend(ts: &str, a: &str, b: &str) -> String {
    format!(r#"{{"event_type":"unfriend", "timestamp":"{ts}", "id1": "{a}", "id2": "{b}"}}"#)
}

/// Lines joined with `\n` after each.
pub fn log(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Names of the files in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A small deterministic random source (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// A log of `events` lines over `users` users: mostly purchases, some friendship changes, and
/// lines the detector skips or ignores.
pub fn random_lines(rng: &mut Rng, events: usize, users: u64) -> Vec<String> {
    let id = |rng: &mut Rng| rng.below(users).to_string();
    let ts = |i: usize| {
        format!(
            "2017-06-13 {:02}:{:02}:{:02}",
            i / 3600 % 24,
            i / 60 % 60,
            i % 60
        )
    };
    (0..events)
        .map(|i| match rng.below(20) {
            0..=9 => {
                let amount = match rng.below(10) {
                    0 => format!("{}.{:02}", 1000 + rng.below(9000), rng.below(100)),
                    _ => format!("{}.{:02}", 10 + rng.below(90), rng.below(100)),
                };
                purchase(&ts(i), &id(rng), &amount)
            }
            10..=14 => befriend(&ts(i), &id(rng), &id(rng)),
            15..=16 => unfriend(&ts(i), &id(rng), &id(rng)),
            17 => format!(
                r#"{{"event_type":"purchase", "timestamp":"{}", "id": {}, "amount": "{}.5"}}"#,
                ts(i),
                rng.below(users),
                rng.below(5000)
            ),
            18 => [
                "",
                "   ",
                "not json",
                r#"{"event_type":"refund"}"#,
                "{\"id\": \"1\"\r",
            ][rng.below(5) as usize]
                .to_string(),
            _ => purchase(&ts(i), &id(rng), "12.345"),
        })
        .collect()
}

pub fn joined(lines: &[String], crlf: bool) -> String {
    let end = if crlf { "\r\n" } else { "\n" };
    lines.iter().map(|line| format!("{line}{end}")).collect()
}
