//! The source layout shows the pipeline: a folder per stage (ingest, state, query, output,
//! check), and a lower stage never uses a higher one, nor the modules on top (replay, sweep,
//! cli, signals). Only the shared leaves (`error`, `clock`, `stderr`, `config`) are open to
//! every stage, and they use no stage. The library leaves the allocator to the program.

use std::fs;
use std::path::Path;

/// The stages in the order data flows through them, then the modules on top.
const ORDER: [&str; 11] = [
    "ingest", "state", "query", "output", "check", "live", "replay", "sweep", "cli", "signals",
    "command",
];

/// How many of [`ORDER`] are stages, each a folder under `src/`.
const STAGES: usize = 5;

/// The shared leaves, one file each under `src/`.
const LEAVES: [&str; 4] = ["error", "clock", "stderr", "config"];

/// The `crate::X` paths of a source text that name a stage or a module on top.
fn used_modules(text: &str) -> Vec<&'static str> {
    ORDER
        .iter()
        .copied()
        .filter(|module| {
            let path = format!("crate::{module}");
            text.match_indices(&path).any(|(at, _)| {
                // `crate::ingest` but not `crate::ingestion`.
                !text[at + path.len()..].starts_with(|c: char| c == '_' || c.is_alphanumeric())
            })
        })
        .collect()
}

fn rank(module: &str) -> usize {
    ORDER
        .iter()
        .position(|m| *m == module)
        .expect("a known module")
}

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn no_stage_uses_a_higher_one() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for stage in &ORDER[..STAGES] {
        let mut files = Vec::new();
        rust_files(&src.join(stage), &mut files);
        assert!(!files.is_empty(), "src/{stage}/ holds the stage's files");
        for file in files {
            let text = fs::read_to_string(&file).unwrap();
            for used in used_modules(&text) {
                if rank(used) > rank(stage) {
                    wrong.push(format!("{} uses crate::{used}", file.display()));
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} files found");
    assert!(
        wrong.is_empty(),
        "lower stages use higher ones:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_shared_leaves_use_no_stage() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    for leaf in LEAVES {
        let file = src.join(format!("{leaf}.rs"));
        let text = fs::read_to_string(&file).unwrap();
        for used in used_modules(&text) {
            wrong.push(format!("{} uses crate::{used}", file.display()));
        }
    }
    assert!(wrong.is_empty(), "leaves use stages:\n{}", wrong.join("\n"));
}

/// The allocator is the program's choice: only `src/main.rs` (the binary) uses mimalloc's
/// crates; the library calls the hook it is given (`Config::release_memory`).
#[test]
fn only_the_binary_names_the_allocator() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let naming: Vec<String> = files
        .iter()
        .filter(|file| !file.ends_with("main.rs"))
        .filter(|file| {
            let text = fs::read_to_string(file).unwrap();
            text.contains("libmimalloc_sys") || text.contains("mimalloc::")
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        naming.is_empty(),
        "library files use the allocator: {naming:?}"
    );
}

#[test]
fn the_check_sees_a_path_to_a_higher_stage() {
    assert_eq!(used_modules("use crate::replay::Replay;"), ["replay"]);
    assert_eq!(used_modules("crate::query::network::Social"), ["query"]);
    assert!(used_modules("crate::ingestion; crate::error::Fatal").is_empty());
}
