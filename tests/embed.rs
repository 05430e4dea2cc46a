//! `examples/embed.rs`, which uses only the library's public API one line at a time, prints
//! exactly what the command writes to OUTPUT: on random logs (with skipped lines, blank lines,
//! CRLF endings, ids as strings and numbers, unfriends) and on every case of the insight suite.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{BATCH, Case, OUTPUT, Rng, STREAM, joined, random_lines};

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

#[test]
fn the_example_reports_a_problem_in_one_line_with_status_2() {
    let case = Case::new("{\"D\":\"1\", \"T\":\"2\"}\n", "");
    let missing = case.path("missing.json");
    let shown = missing.display().to_string();
    for (args, message) in [
        (vec![], "usage: embed BATCH STREAM\n".to_string()),
        (
            vec![missing.clone(), case.path(STREAM)],
            format!("Error: {shown}: "),
        ),
        (
            vec![case.path(BATCH), missing.clone()],
            format!("Error: {shown}: cannot read: "),
        ),
    ] {
        let run = Command::new(example()).args(&args).output().unwrap();
        assert_eq!(run.status.code(), Some(2), "{args:?}");
        assert!(run.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8(run.stderr).unwrap();
        assert!(stderr.starts_with(&message), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains('{') && !stderr.contains('"'), "{stderr}");
    }
}
