//! The source layout shows the pipeline: a folder per stage (ingest, state, query, output,
//! check), and a lower stage never uses a higher one, nor the modules on top (replay, sweep,
//! cli, signals). Only the shared leaves (`error`, `clock`, `stderr`, `config`) are open to
//! every stage, and they use no stage. The library leaves the allocator to the program.

use std::fs;
use std::path::Path;

/// The stages in the order data flows through them, then the modules on top.
const ORDER: [&str; 12] = [
    "ingest", "state", "query", "output", "check", "live", "replay", "detector", "sweep", "cli",
    "signals", "command",
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

/// The library's public API: the items `src/lib.rs` re-exports and the modules it does not hide
/// from the documentation. The rest is public only for the project's tests and tools.
fn public_api(lib: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut hidden = false;
    for line in lib.lines().map(str::trim) {
        if let Some(module) = line.strip_prefix("pub mod ") {
            if !hidden {
                names.push(module.trim_end_matches(';').to_string());
            }
        } else if let Some(items) = line.strip_prefix("pub use ") {
            let items = items.trim_end_matches(';');
            let list = match items.split_once('{') {
                Some((_, list)) => list.trim_end_matches('}').to_string(),
                None => items.rsplit("::").next().unwrap().to_string(),
            };
            names.extend(list.split(',').map(|name| name.trim().to_string()));
        }
        hidden = line == "#[doc(hidden)]";
    }
    names.retain(|name| !name.is_empty());
    names
}

/// The first path segments after `anomaly_detect::` in a source text, braces opened.
fn used_from_library(text: &str) -> Vec<String> {
    let mut used = Vec::new();
    for (at, _) in text.match_indices("anomaly_detect::") {
        let rest = &text[at + "anomaly_detect::".len()..];
        let names = match rest.strip_prefix('{') {
            Some(list) => &list[..list.find('}').unwrap()],
            None => rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap(),
        };
        for name in names.split(',') {
            let name: String = name
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                used.push(name);
            }
        }
    }
    used
}

/// The command (`src/main.rs`) and the example of embedding (`examples/`) work with the public
/// API alone: nothing outside the library needs an item hidden from its documentation.
#[test]
fn the_binary_and_the_examples_use_only_the_public_api() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let public = public_api(&fs::read_to_string(root.join("src/lib.rs")).unwrap());
    for expected in ["Detector", "Sink", "Checked", "Fatal", "command"] {
        assert!(public.iter().any(|name| name == expected), "{public:?}");
    }
    assert!(!public.iter().any(|name| name == "ingest"), "{public:?}");
    let mut files = vec![root.join("src/main.rs")];
    rust_files(&root.join("examples"), &mut files);
    let mut wrong = Vec::new();
    let mut seen = 0;
    for file in &files {
        for name in used_from_library(&fs::read_to_string(file).unwrap()) {
            seen += 1;
            if !public.contains(&name) {
                wrong.push(format!("{} uses anomaly_detect::{name}", file.display()));
            }
        }
    }
    assert!(seen >= 3, "the binary and the example use the library");
    assert!(wrong.is_empty(), "hidden items used:\n{}", wrong.join("\n"));
    assert_eq!(
        used_from_library(
            "use anomaly_detect::{Applied, Detector};\nanomaly_detect::command::main"
        ),
        ["Applied", "Detector", "command"]
    );
}
