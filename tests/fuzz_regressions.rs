//! Inputs kept from fuzzing (`fuzz/`): crashes found and a sample of the corpora, replayed through
//! the same invariants the fuzz targets check. The invariants are `fuzz/src/invariants.rs`,
//! included here with the reference model `tests/model` that `whole_run` compares with, so
//! this test has no fuzzing dependency. Input formats are described there.

#[path = "../fuzz/src/invariants.rs"]
mod invariants;
mod model;

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

/// Runs `check` on every file of `tests/data/fuzz/NAME/` and reports every failing file.
fn replay_all(name: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(name);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    let failed: Vec<String> = files
        .iter()
        .filter(|file| {
            let data = fs::read(file).unwrap();
            catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(failed.is_empty(), "invariants failed on: {failed:#?}");
}

#[test]
fn line_parser_inputs() {
    replay_all("line_parser", invariants::line_parser);
}

#[test]
fn whole_run_inputs() {
    replay_all("whole_run", invariants::whole_run);
}
