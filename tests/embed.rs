//! `examples/embed.rs`, which uses only the library's public API one line at a time, prints
//! exactly what the command writes to OUTPUT: on random logs (with skipped lines, blank lines,
//! CRLF endings, ids as strings and numbers, unfriends) and on every case of the insight suite.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{BATCH, Case, OUTPUT, STREAM, befriend, purchase, unfriend};

/// The example's binary, built by `cargo test` with the tests (or built here when a single
/// test target was asked for).
fn example() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let path = deps
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/embed");
    if !path.exists() {
        let built = Command::new(env!("CARGO"))
            .args(["build", "--example", "embed"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(built.success(), "the example builds");
    }
    path
}

/// The command's OUTPUT and the example's standard output for one case, at `threads`.
fn both(case: &Case, threads: &str) -> (Vec<u8>, Vec<u8>) {
    case.run(&["--threads", threads, "--quiet"]).success();
    let expected = case.output().unwrap();
    let embedded = Command::new(example())
        .args([case.path(BATCH), case.path(STREAM)])
        .output()
        .expect("the example runs");
    assert!(embedded.status.success(), "{:?}", embedded);
    (expected, embedded.stdout)
}

/// A small deterministic random source (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// A log of `events` lines over `users` users: mostly purchases, some friendship changes, and
/// lines the detector skips or ignores.
fn random_lines(rng: &mut Rng, events: usize, users: u64) -> Vec<String> {
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

fn joined(lines: &[String], crlf: bool) -> String {
    let end = if crlf { "\r\n" } else { "\n" };
    lines.iter().map(|line| format!("{line}{end}")).collect()
}

#[test]
fn the_example_prints_what_the_command_writes_on_random_logs() {
    let mut flagged = 0;
    for seed in 1..=24u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let users = 3 + rng.below(40);
        let degree = 1 + rng.below(3);
        let tracked = 2 + rng.below(6);
        let batch = random_lines(&mut rng, 300, users);
        let stream = random_lines(&mut rng, 400, users);
        let crlf = seed % 4 == 0;
        let params = format!(r#"{{"D":"{degree}", "T":"{tracked}"}}"#);
        let case = Case::new(
            format!("{params}\n{}", joined(&batch, crlf)),
            joined(&stream, crlf),
        );
        let threads = ["1", "2", "8"][seed as usize % 3];
        let (expected, embedded) = both(&case, threads);
        assert_eq!(
            String::from_utf8_lossy(&embedded),
            String::from_utf8_lossy(&expected),
            "seed {seed}"
        );
        flagged += expected.iter().filter(|&&b| b == b'\n').count();
    }
    assert!(flagged > 50, "the random logs flag purchases ({flagged})");
}

#[test]
fn the_example_prints_what_the_command_writes_on_the_insight_suite() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("insight_testsuite/tests");
    let mut cases = 0;
    for entry in fs::read_dir(&suite).unwrap() {
        let input = entry.unwrap().path().join("log_input");
        let case = Case::new(
            fs::read(input.join(BATCH)).unwrap(),
            fs::read(input.join(STREAM)).unwrap(),
        );
        let (expected, embedded) = both(&case, "2");
        assert_eq!(
            String::from_utf8_lossy(&embedded),
            String::from_utf8_lossy(&expected),
            "{}",
            input.display()
        );
        cases += 1;
    }
    assert!(cases >= 10, "the suite has its cases ({cases})");
    let _ = OUTPUT;
}
