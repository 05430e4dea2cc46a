//! The conventions users expect of a command-line tool: help with examples and exit statuses,
//! shell completions and a man page from `--generate`, exit statuses as documented.

mod common;

use common::bin;

fn stdout_of(args: &[&str]) -> String {
    let out = bin().args(args).output().expect("the binary runs");
    assert!(out.status.success(), "{args:?}: {:?}", out.status);
    assert!(
        out.stderr.is_empty(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn help_ends_with_examples_and_the_exit_statuses() {
    for flag in ["-h", "--help"] {
        let help = stdout_of(&[flag]);
        let examples = help.find("Examples:").expect("an Examples section");
        let status = help.find("Exit status:").expect("an Exit status section");
        assert!(examples < status, "examples come first");
        for line in [
            "anomaly-detect batch_log.json stream_log.json flagged.json",
            "130",
            "143",
        ] {
            assert!(help[examples..].contains(line), "{flag} lacks {line:?}");
        }
    }
}

#[test]
fn generate_prints_each_completion_script_and_the_man_page() {
    for (kind, marker) in [
        ("complete-bash", "complete -F"),
        ("complete-zsh", "#compdef anomaly-detect"),
        ("complete-fish", "complete -c anomaly-detect"),
        ("complete-powershell", "Register-ArgumentCompleter"),
        ("man", ".TH anomaly-detect 1"),
    ] {
        let text = stdout_of(&["--generate", kind]);
        assert!(text.contains(marker), "{kind} lacks {marker:?}");
        // Every option is known to the completions and the man page.
        for option in ["--degree", "--follow", "--feed", "--recommend", "--stats"] {
            let option = if kind == "man" {
                option.replace('-', "\\-")
            } else if kind == "complete-fish" {
                option.trim_start_matches('-').to_string()
            } else {
                option.to_string()
            };
            assert!(text.contains(&option), "{kind} lacks {option}");
        }
    }
}

#[test]
fn the_man_page_holds_the_sweep_and_keeps_the_examples_as_lines() {
    let page = stdout_of(&["--generate", "man"]);
    assert!(page.contains(".SH \"SWEEP\""), "a section for the sweep");
    for option in ["\\-\\-csv", "\\-\\-svg", "\\-\\-outputs"] {
        assert!(page.contains(option), "the sweep's {option}");
    }
    assert!(!page.contains("sweep(1)"), "no page of its own to point at");
    let examples = page
        .find(".SH EXAMPLES\n.nf\n")
        .expect("examples, not refilled");
    assert!(page[examples..].contains(".fi\n"));
}

#[test]
fn generate_stands_alone_and_refuses_unknown_kinds() {
    for args in [
        &["--generate", "complete-bash", "batch.json"][..],
        &["--generate", "complete-tcsh"],
        &["--generate"],
    ] {
        let out = bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn missing_arguments_are_a_usage_error_with_status_2() {
    let out = bin().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("<BATCH>") && err.contains("Usage:"), "{err}");
}
