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
        // Each example: what it does, indented 2, then its commands, indented 4.
        for line in help[examples..status].lines().skip(1) {
            let indent = line.len() - line.trim_start().len();
            assert!(
                line.is_empty() || indent == 2 || indent == 4,
                "{flag}: an example line indented {indent}: {line:?}"
            );
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
    assert!(page.contains(".SH SWEEP\n"), "a section for the sweep");
    for option in ["\\-\\-csv", "\\-\\-svg", "\\-\\-outputs"] {
        assert!(page.contains(option), "the sweep's {option}");
    }
    assert!(!page.contains("sweep(1)"), "no page of its own to point at");
    let examples = page.find(".SH EXAMPLES\n").expect("examples");
    let commands = page[examples..]
        .find(".nf\n")
        .expect("commands not refilled");
    assert!(page[examples + commands..].contains(".fi\n"));
}

#[test]
fn the_man_page_has_the_sections_of_a_man_page_in_order() {
    let page = stdout_of(&["--generate", "man"]);
    let sections: Vec<&str> = page
        .lines()
        .filter_map(|line| line.strip_prefix(".SH "))
        .map(|name| name.trim_matches('"'))
        .collect();
    assert_eq!(
        sections,
        [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "SWEEP",
            "EXAMPLES",
            "EXIT STATUS",
            "VERSION"
        ]
    );
    // No heading of the help's text inside a section.
    for heading in ["Examples:", "Exit status:"] {
        assert!(!page.contains(heading), "{heading:?} in the page");
    }
    // Every exit status is an entry of EXIT STATUS.
    let statuses = &page[page.find(".SH \"EXIT STATUS\"").unwrap()..];
    for status in ["0", "2", "130", "143"] {
        assert!(
            statuses.contains(&format!(".TP\n{status}\n")),
            "status {status}"
        );
    }
}

/// README.md's "Exit status" table: status and meaning, without the code marks.
fn readme_exit_statuses() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let table = &readme[readme.find("## Exit status").expect("the section")..];
    table
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (cells.len() == 4 && cells[1].parse::<u8>().is_ok())
                .then(|| (cells[1].to_string(), cells[2].replace('`', "")))
        })
        .collect()
}

#[test]
fn help_and_man_page_state_the_readme_exit_statuses() {
    let statuses = readme_exit_statuses();
    assert_eq!(statuses.len(), 4, "{statuses:?}");
    let help = stdout_of(&["--help"]);
    let help = &help[help.find("Exit status:\n").expect("the section")..];
    // The help's entries, each with its wrapped lines joined.
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in help.lines().skip(1) {
        match line.strip_prefix("  ").map(|l| l.split_once(' ')) {
            Some(Some((status, meaning))) if !status.is_empty() => {
                entries.push((status.to_string(), meaning.trim().to_string()));
            }
            _ => {
                let last = entries.last_mut().expect("an entry first");
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        }
    }
    assert_eq!(entries, statuses);
    let page = stdout_of(&["--generate", "man"]);
    for (status, meaning) in &statuses {
        let entry = format!(".TP\n{status}\n{}\n", meaning.replace('-', "\\-"));
        assert!(page.contains(&entry), "the man page lacks {entry:?}");
    }
}

#[test]
fn help_shows_the_arguments_as_the_usage_does_and_the_ranges() {
    let help = stdout_of(&["--help"]);
    for argument in ["<BATCH>", "<STREAM>", "<OUTPUT>"] {
        assert!(
            help.contains(&format!("\n  {argument}\n")),
            "{argument} in Arguments"
        );
    }
    assert!(!help.contains("[BATCH]"), "{help}");
    assert!(help.contains("-T, --tracked <T>"), "{help}");
    assert!(help.contains("T (2..=10000000)"), "{help}");
    let sweep = stdout_of(&["sweep", "--help"]);
    assert!(sweep.contains("each 2..=10000000"), "{sweep}");
    for help in [&help, &sweep] {
        assert!(help.contains("Worker threads, 1..=1024"), "{help}");
    }
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

#[test]
fn bash_completion_offers_the_sweep_options_after_sweep() {
    let script = stdout_of(&["--generate", "complete-bash"]);
    let function = script
        .lines()
        .find_map(|line| line.strip_suffix("() {"))
        .expect("the script defines its completion function");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("complete.bash");
    std::fs::write(&path, &script).unwrap();
    // What bash sets before it calls the function for `anomaly-detect sweep --<TAB>`.
    let offered = |words: &str, current: &str| {
        let run = format!(
            "source \"$1\"; COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); \
             COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; \
             {function} anomaly-detect {current} x; echo \"${{COMPREPLY[*]}}\""
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &run, "bash"])
            .arg(&path)
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let sweep = offered("anomaly-detect sweep --", "--");
    let words: Vec<&str> = sweep.split_whitespace().collect();
    assert!(words.contains(&"--csv"), "after sweep: {sweep:?}");
    assert!(!words.contains(&"--follow"), "after sweep: {sweep:?}");
    let run = offered("anomaly-detect --", "--");
    let words: Vec<&str> = run.split_whitespace().collect();
    assert!(words.contains(&"--follow"), "a run: {run:?}");
    assert!(!words.contains(&"--csv"), "a run: {run:?}");
}

#[test]
fn completions_offer_no_hidden_option() {
    for kind in [
        "complete-bash",
        "complete-zsh",
        "complete-fish",
        "complete-powershell",
    ] {
        let script = stdout_of(&["--generate", kind]);
        for hidden in [
            "checkpoint-seconds",
            "checkpoint-events",
            "chunk-bytes",
            "max-line-bytes",
            "window",
        ] {
            assert!(!script.contains(hidden), "{kind} offers --{hidden}");
        }
        // `--state` is offered to a run, which takes it, not to the sweep, which refuses it
        // (its help there begins "Refused"; bash lists the sweep's options on one line).
        assert!(script.contains("state"), "{kind} lacks a run's --state");
        assert!(
            !script.contains("Refused"),
            "{kind} offers the sweep's --state"
        );
        let sweep = script
            .lines()
            .find(|line| line.contains("opts=") && line.contains("--csv"));
        assert_eq!(kind == "complete-bash", sweep.is_some(), "{kind}");
        assert!(
            !sweep.unwrap_or_default().contains("--state"),
            "{kind}: {sweep:?}"
        );
    }
}
