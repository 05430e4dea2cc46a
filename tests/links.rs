//! Every relative link in README.md and docs/ resolves inside the repository: a clone has
//! nothing beside it, so a link that leaves the repository or names a missing file is dead.

use std::fs;
use std::path::{Component, Path, PathBuf};

/// The Markdown files a reader of the repository follows links in.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    for entry in fs::read_dir(root.join("docs")).expect("docs/ exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The targets of the inline links `[text](target)` in `text`, without `#fragment`s.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split_whitespace().next().unwrap_or("");
        targets.push(target.to_string());
        rest = &rest[end..];
    }
    targets
}

/// The path `target` names from the file `from`, normalised (`..` taken off), or `None` when
/// it climbs above `root`.
fn resolve(root: &Path, from: &Path, target: &str) -> Option<PathBuf> {
    let mut path = from
        .parent()
        .unwrap()
        .strip_prefix(root)
        .unwrap()
        .to_path_buf();
    for part in Path::new(target).components() {
        match part {
            Component::ParentDir => {
                if !path.pop() {
                    return None;
                }
            }
            Component::Normal(name) => path.push(name),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(root.join(path))
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves_inside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    let mut dead = Vec::new();
    for file in documents(root) {
        let text = fs::read_to_string(&file).unwrap();
        for target in link_targets(&text) {
            let path = target.split('#').next().unwrap();
            if path.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            match resolve(root, &file, path) {
                Some(resolved) if resolved.exists() => {}
                _ => dead.push(format!("{}: {target}", file.display())),
            }
        }
    }
    assert!(
        checked >= 10,
        "only {checked} relative links found: is the parser broken?"
    );
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

#[test]
fn a_link_out_of_the_repository_or_to_a_missing_file_is_dead() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = root.join("README.md");
    let docs = root.join("docs/design.md");
    assert_eq!(resolve(root, &readme, "../outside/SPEC.md"), None);
    assert_eq!(resolve(root, &docs, "../../x.md"), None);
    assert!(resolve(root, &docs, "spec.md").unwrap().exists());
    assert!(!resolve(root, &docs, "nope.md").unwrap().exists());
    assert_eq!(
        link_targets("see [a](b.md#c) and [d](https://e.org) [f](g \"title\")"),
        ["b.md#c", "https://e.org", "g"]
    );
}
