//! The `anomaly-detect` binary end to end. Output files are compared byte for byte, never
//! white-space blind: the official suite's `diff -wubB` cannot see CRLF or spacing mistakes.

mod common;

use std::fs;

use common::{
    BATCH, Case, OFFICIAL_FLAGGED, OUTPUT, Run, STREAM, befriend, bin, fixture, log, purchase,
    show, unfriend,
};

// ---------------------------------------------------------------------------------------------
// Building logs.

/// `2017-06-13 HH:MM:SS`, `second` seconds after midnight.
fn at(second: u32) -> String {
    format!(
        "2017-06-13 {:02}:{:02}:{:02}",
        second / 3600,
        second / 60 % 60,
        second % 60
    )
}

/// The output line of a flagged purchase: `line` with `, "mean": .., "sd": ..}` and `\n`.
fn flagged(line: &str, mean: &str, sd: &str) -> String {
    let body = line.strip_suffix('}').expect("a line ends with }");
    format!("{body}, \"mean\": \"{mean}\", \"sd\": \"{sd}\"}}\n")
}

/// Asserts that the run made an output file holding exactly `expected`.
fn assert_output(case: &Case, run: &Run, expected: &str) {
    assert_eq!(run.code, Some(0), "the run failed: {}", run.stderr);
    let output = case.output().expect("the output file exists");
    assert_eq!(show(&output), expected);
    assert_eq!(output, expected.as_bytes());
}

/// Asserts the shape of the final summary line (its times vary):
/// `PREFIX T s (batch B s, stream S s)` with two decimals each.
fn assert_summary(line: &str, expected_prefix: &str) {
    let rest = line
        .strip_prefix(expected_prefix)
        .unwrap_or_else(|| panic!("summary {line:?} does not start with {expected_prefix:?}"));
    let seconds = |text: &str| {
        let (whole, frac) = text.split_once('.').expect("seconds with decimals");
        assert!(
            !whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()),
            "{line:?}"
        );
        assert!(
            frac.len() == 2 && frac.bytes().all(|b| b.is_ascii_digit()),
            "{line:?}"
        );
    };
    let (total, phases) = rest
        .split_once(" s (batch ")
        .unwrap_or_else(|| panic!("summary {line:?} lacks the phase times"));
    seconds(total);
    let (batch, stream) = phases
        .strip_suffix(" s)")
        .and_then(|p| p.split_once(" s, stream "))
        .unwrap_or_else(|| panic!("summary {line:?} has malformed phase times"));
    seconds(batch);
    seconds(stream);
}

// ---------------------------------------------------------------------------------------------
// The official example and byte-exact output.

#[test]
fn official_example_byte_for_byte() {
    let case = Case::from_fixture("official");
    let run = case.run(&["--quiet"]);
    // The official expected file lacks a final newline; the program ends every output line
    // with "\n" (documented), so the exact expected bytes are the file plus one "\n".
    let expected = fs::read(fixture("official").join(OUTPUT)).unwrap();
    assert_eq!(
        expected.last(),
        Some(&b'}'),
        "the official file has no final newline"
    );
    let mut expected = expected;
    expected.push(b'\n');
    assert_eq!(expected, format!("{OFFICIAL_FLAGGED}\n").as_bytes());
    assert_output(&case, &run, &show(&expected));
    assert_eq!(run.stderr, "");
    assert_eq!(run.stdout, "");
}

#[test]
fn byte_order_marks_are_ignored() {
    let official = fixture("official");
    let mut batch = b"\xEF\xBB\xBF".to_vec();
    batch.extend(fs::read(official.join(BATCH)).unwrap());
    let mut stream = b"\xEF\xBB\xBF".to_vec();
    stream.extend(fs::read(official.join(STREAM)).unwrap());
    let case = Case::new(batch, stream);
    let run = case.run(&["--quiet"]);
    assert_output(&case, &run, &format!("{OFFICIAL_FLAGGED}\n"));
    assert_eq!(run.stderr, "", "a BOM is not a skipped line");
}

#[test]
fn crlf_input_gives_lf_output_with_the_original_line_bytes() {
    let official = fixture("official");
    let crlf = |name: &str| {
        let text = fs::read_to_string(official.join(name)).unwrap();
        text.replace('\n', "\r\n") + "\r\n"
    };
    let case = Case::new(crlf(BATCH), crlf(STREAM));
    let run = case.run(&["--quiet"]);
    assert_output(&case, &run, &format!("{OFFICIAL_FLAGGED}\n"));
    assert_eq!(run.stderr, "");
}

#[test]
fn extra_keys_and_odd_spacing_are_echoed_verbatim() {
    let batch = fs::read(fixture("official").join(BATCH)).unwrap();
    // Surrounding white space is trimmed, everything inside the line is kept as it was,
    // including the spaces before the final brace and keys named "mean" and "sd".
    let line = "{\"id\" :  2 ,\"event_type\":\"purchase\",\t\"note\": {\"a\": [1, \"}\"]}, \"amount\":1601.83 , \"mean\": \"x\", \"sd\": 0, \"timestamp\":\"2017-06-13 11:33:02\"  }";
    let stream = format!("  \t{line} \t\r\n");
    let case = Case::new(batch, stream);
    let run = case.run(&["--quiet"]);
    let expected = "{\"id\" :  2 ,\"event_type\":\"purchase\",\t\"note\": {\"a\": [1, \"}\"]}, \"amount\":1601.83 , \"mean\": \"x\", \"sd\": 0, \"timestamp\":\"2017-06-13 11:33:02\"  , \"mean\": \"29.10\", \"sd\": \"21.46\"}\n";
    assert_eq!(expected, flagged(line, "29.10", "21.46"));
    assert_output(&case, &run, expected);
}

// ---------------------------------------------------------------------------------------------
// Threads and chunking.

/// A small deterministic generator (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// A dirty log of `events` lines after `first_line` (1-based numbering continues from it):
/// its text and the numbers of its malformed lines.
fn random_log(
    rng: &mut Lcg,
    clock: &mut u32,
    first_line: u64,
    events: usize,
) -> (String, Vec<u64>) {
    let mut text = String::new();
    let mut bad = Vec::new();
    let users = 40;
    for i in 0..events {
        let line_no = first_line + i as u64;
        *clock += rng.below(3) as u32;
        let ts = if rng.below(40) == 0 {
            at(clock.saturating_sub(500))
        } else {
            at(*clock)
        };
        let id = |rng: &mut Lcg| {
            let n = rng.below(users);
            if rng.below(4) == 0 {
                format!("{n}")
            } else {
                format!("\"{n}\"")
            }
        };
        let roll = rng.below(100);
        let line = if roll < 3 {
            bad.push(line_no);
            match rng.below(3) {
                0 => "not json".to_string(),
                1 => format!(r#"{{"event_type":"purchase", "timestamp":"{ts}", "id": "1"}}"#),
                _ => format!(
                    r#"{{"event_type":"purchase", "timestamp":"{ts}", "id": "1", "amount": "5000.001"}}"#
                ),
            }
        } else if roll < 28 {
            let (a, b) = (id(rng), id(rng));
            format!(r#"{{"event_type":"befriend", "timestamp":"{ts}", "id1": {a}, "id2": {b}}}"#)
        } else if roll < 38 {
            let (a, b) = (id(rng), id(rng));
            format!(r#"{{"event_type":"unfriend", "timestamp":"{ts}", "id1": {a}, "id2": {b}}}"#)
        } else {
            let dollars = if rng.below(30) == 0 {
                500 + rng.below(5000)
            } else {
                1 + rng.below(60)
            };
            let cents = rng.below(100);
            let amount = match rng.below(3) {
                0 => format!("{dollars}.{cents:02}"),
                1 => format!("\"{dollars}.{cents:02}\""),
                _ => format!("\"{dollars}\""),
            };
            let buyer = id(rng);
            format!(
                r#"{{"event_type":"purchase", "timestamp":"{ts}", "id": {buyer}, "amount": {amount}}}"#
            )
        };
        let lead = if rng.below(15) == 0 { "  " } else { "" };
        let end = if rng.below(10) == 0 { "\r\n" } else { "\n" };
        text.push_str(&format!("{lead}{line}{end}"));
    }
    (text, bad)
}

#[test]
fn thread_counts_and_chunk_sizes_give_identical_bytes() {
    let mut rng = Lcg(0x5eed);
    let mut clock = 0;
    let (events, batch_bad) = random_log(&mut rng, &mut clock, 2, 2500);
    let batch = format!("{{\"D\":\"2\", \"T\":\"10\"}}\n{events}");
    let (mut stream, stream_bad) = random_log(&mut rng, &mut clock, 1, 2500);
    // The stream's final line has no "\n".
    while stream.ends_with('\n') || stream.ends_with('\r') {
        stream.pop();
    }
    let case = Case::new(batch, stream);

    let mut runs = Vec::new();
    for threads in ["1", "2", "8"] {
        for chunk in [None, Some("61"), Some("4096")] {
            let mut args = vec!["--quiet", "--threads", threads];
            if let Some(bytes) = chunk {
                args.extend(["--chunk-bytes", bytes]);
            }
            let run = case.run(&args).success();
            let output = case.output().expect("an output file");
            runs.push((args.join(" "), output, run.stderr));
        }
    }
    let (_, output, stderr) = &runs[0];
    for (args, other_output, other_stderr) in &runs[1..] {
        assert!(other_output == output, "output differs with {args}");
        assert_eq!(other_stderr, stderr, "stderr differs with {args}");
    }

    // The run is not trivial: purchases are flagged, every line is a complete flagged line.
    let text = show(output);
    assert!(
        text.lines().count() >= 10,
        "only {} flagged",
        text.lines().count()
    );
    assert!(text.ends_with("\"}\n"));
    for line in text.lines() {
        assert!(line.starts_with('{') && !line.contains('\r'), "{line:?}");
        assert!(line.contains(r#", "mean": ""#) && line.contains(r#"", "sd": ""#));
    }
    // The skipped lines are reported with their line numbers, batch first.
    let expected: Vec<String> = batch_bad
        .iter()
        .map(|n| format!("warning: {BATCH}:{n}: skipped: "))
        .chain(
            stream_bad
                .iter()
                .map(|n| format!("warning: {STREAM}:{n}: skipped: ")),
        )
        .collect();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(expected.len() > 10, "the generator made few bad lines");
    assert_eq!(lines.len(), 11, "{stderr}");
    for (line, prefix) in lines[..10].iter().zip(&expected) {
        assert!(line.starts_with(prefix.as_str()), "{line:?} vs {prefix:?}");
    }
    let more = expected.len() - 10;
    let plural = if more == 1 { "line" } else { "lines" };
    assert_eq!(
        lines[10],
        format!("warning: {more} more skipped {plural} not shown")
    );
}

// ---------------------------------------------------------------------------------------------
// Parameters on the command line.

/// 1 - 2 - 3 in a line; 2 spent 100, 10, 10, then 3 spent 20, 20; 1 then buys 50.
fn override_case(params: &str) -> (Case, String) {
    let stream_line = purchase(&at(100), "1", "50.00");
    let batch = log(&[
        params.to_string(),
        befriend(&at(1), "1", "2"),
        befriend(&at(2), "2", "3"),
        purchase(&at(3), "2", "100.00"),
        purchase(&at(4), "2", "10.00"),
        purchase(&at(5), "2", "10.00"),
        purchase(&at(6), "3", "20.00"),
        purchase(&at(7), "3", "20.00"),
    ]);
    (
        Case::new(batch, log(std::slice::from_ref(&stream_line))),
        stream_line,
    )
}

#[test]
fn degree_and_tracked_overrides_change_the_result() {
    let (case, line) = override_case(r#"{"D":"1", "T":"50"}"#);
    // D=1, T=50: baseline {100, 10, 10}: mean 40, sd 42.42..., 50 is not anomalous.
    assert_output(&case, &case.run(&["-q"]), "");
    // T=2: baseline {10, 10}.
    assert_output(
        &case,
        &case.run(&["-q", "-T", "2"]),
        &flagged(&line, "10.00", "0.00"),
    );
    assert_output(
        &case,
        &case.run(&["-q", "--tracked", "2"]),
        &flagged(&line, "10.00", "0.00"),
    );
    // D=2, T=2: 3's purchases are the latest two.
    assert_output(
        &case,
        &case.run(&["-q", "-D", "2", "-T", "2"]),
        &flagged(&line, "20.00", "0.00"),
    );
    // D=2, T=50: {100, 10, 10, 20, 20}: mean 32, sd 34.29, not anomalous.
    assert_output(&case, &case.run(&["-q", "--degree", "2"]), "");

    // And the other way round: the file says D=2, T=2 and the command line lowers D.
    let (case, line) = override_case(r#"{"D":2,"T":2}"#);
    assert_output(&case, &case.run(&["-q"]), &flagged(&line, "20.00", "0.00"));
    assert_output(
        &case,
        &case.run(&["-q", "-D", "1"]),
        &flagged(&line, "10.00", "0.00"),
    );
    assert_output(
        &case,
        &case.run(&["-q", "-D", "4294967295"]),
        &flagged(&line, "20.00", "0.00"),
    );
    // `-D` and `-T` are read as the parameter line's D and T: digits only, leading zeros
    // allowed, and a D beyond any path (here beyond 64 bits) is the whole component.
    for d in ["4294967296", "99999999999999999999999", "02"] {
        assert_output(
            &case,
            &case.run(&["-q", "-D", d]),
            &flagged(&line, "20.00", "0.00"),
        );
    }
    assert_output(
        &case,
        &case.run(&["-q", "-D", "1", "-T", "0002"]),
        &flagged(&line, "10.00", "0.00"),
    );
}

#[test]
fn invalid_overrides_are_refused() {
    let (case, _) = override_case(r#"{"D":"1", "T":"50"}"#);
    for args in [
        &["-T", "1"][..],
        &["-T", "10000001"],
        &["-D", "0"],
        &["-D", "x"],
        // A sign is refused, as on the parameter line.
        &["-D", "+2"],
        &["-T", "+2"],
        &["-D", ""],
        &["--threads", "0"],
    ] {
        case.write(OUTPUT, "previous\n");
        let run = case.run(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.is_empty());
        assert_eq!(case.output().unwrap(), b"previous\n", "{args:?}");
    }
    assert_output(&case, &case.run(&["-q", "-T", "10000000"]), "");
}

#[test]
fn a_list_or_range_in_a_run_points_to_the_sweep() {
    let (case, _) = override_case(r#"{"D":"1", "T":"50"}"#);
    for (args, name) in [(&["-D", "1..4"][..], "D"), (&["-T", "10,50"], "T")] {
        let run = case.run(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        let value = args[1];
        assert!(
            run.stderr.contains(&format!(
                "{name} must be a decimal integer; lists and ranges such as `{value}` are for \
                 `anomaly-detect sweep`"
            )),
            "{}",
            run.stderr
        );
    }
    // A plain bad value gets no such hint.
    let run = case.run(&["-D", "x"]);
    assert!(!run.stderr.contains("sweep"), "{}", run.stderr);
}

#[test]
fn the_parameter_line_is_required_even_with_overrides() {
    let batch = log(&[befriend(&at(1), "1", "2"), purchase(&at(2), "2", "1.00")]);
    let case = Case::new(batch, log(&[purchase(&at(3), "1", "9.00")]));
    case.write(OUTPUT, "previous\n");
    let run = case.run(&["-D", "1", "-T", "2"]);
    assert_fatal(&case, &run, BATCH);
}

// ---------------------------------------------------------------------------------------------
// Fatal errors: exit code 2, one line naming the file, an existing output left as it was.

fn assert_fatal(case: &Case, run: &Run, names: &str) {
    assert_eq!(run.code, Some(2), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "");
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "one line on stderr: {:?}", run.stderr);
    assert!(run.stderr.ends_with('\n'));
    assert!(lines[0].starts_with("Error: "), "{:?}", lines[0]);
    assert!(
        lines[0].contains(names),
        "{:?} does not name {names}",
        lines[0]
    );
    if let Some(output) = case.output() {
        assert_eq!(show(&output), "previous\n", "the old output was changed");
    }
    let leftovers: Vec<String> = case
        .files()
        .into_iter()
        .filter(|f| f.contains(".tmp") || f.starts_with(".flagged"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// The official inputs, with an output file holding "previous\n".
fn official_with_previous_output() -> Case {
    let case = Case::from_fixture("official");
    case.write(OUTPUT, "previous\n");
    case
}

#[test]
fn missing_batch_file() {
    let case = official_with_previous_output();
    let run = Run::of(case.cmd().args(["no_such_batch.json", STREAM, OUTPUT]));
    assert_fatal(&case, &run, "no_such_batch.json");
    assert!(run.stderr.contains("cannot read"), "{}", run.stderr);
}

#[test]
fn missing_stream_file() {
    let case = official_with_previous_output();
    let run = Run::of(case.cmd().args([BATCH, "no_such_stream.json", OUTPUT]));
    assert_fatal(&case, &run, "no_such_stream.json");
}

#[test]
fn missing_batch_file_writes_no_output() {
    let case = Case::from_fixture("official");
    let run = Run::of(case.cmd().args(["no_such_batch.json", STREAM, OUTPUT]));
    assert_fatal(&case, &run, "no_such_batch.json");
    assert_eq!(case.output(), None);
}

#[test]
fn missing_parameter_line() {
    for batch in ["", "\n  \n\r\n"] {
        let case = Case::new(batch, log(&[purchase(&at(3), "1", "9.00")]));
        case.write(OUTPUT, "previous\n");
        let run = case.run(&[]);
        assert_fatal(&case, &run, BATCH);
        assert!(run.stderr.contains("parameter"), "{}", run.stderr);
    }
}

#[test]
fn invalid_parameter_lines() {
    let events = &fs::read_to_string(fixture("official").join(BATCH)).unwrap();
    let events = events.split_once('\n').unwrap().1;
    for params in [
        r#"{"D":"3", "T":"1"}"#,
        r#"{"D":"3", "T":1}"#,
        r#"{"D":"0", "T":"50"}"#,
        r#"{"D":"3", "T":"10000001"}"#,
        r#"{"D":"3", "T":"abc"}"#,
        r#"{"D":"3"}"#,
        r#"{"D":"3", "T":"50""#,
        "[3, 50]",
    ] {
        let case = Case::new(
            format!("{params}\n{events}"),
            fs::read(fixture("official").join(STREAM)).unwrap(),
        );
        case.write(OUTPUT, "previous\n");
        let run = case.run(&[]);
        assert_fatal(&case, &run, BATCH);
    }
}

#[test]
fn a_directory_as_input() {
    let case = official_with_previous_output();
    fs::create_dir(case.path("logs")).unwrap();
    let run = Run::of(case.cmd().args(["logs", STREAM, OUTPUT]));
    assert_fatal(&case, &run, "Error: logs");
    let run = Run::of(case.cmd().args([BATCH, "logs", OUTPUT]));
    assert_fatal(&case, &run, "Error: logs");
}

#[test]
fn a_directory_as_output() {
    let case = Case::from_fixture("official");
    fs::create_dir(case.path("out")).unwrap();
    let run = Run::of(case.cmd().args([BATCH, STREAM, "out"]));
    assert_fatal(&case, &run, "Error: out: ");
    assert!(case.path("out").is_dir());
    assert_eq!(fs::read_dir(case.path("out")).unwrap().count(), 0);
}

#[test]
fn a_missing_output_directory() {
    let case = Case::from_fixture("official");
    let run = Run::of(case.cmd().args([BATCH, STREAM, "no_such_dir/flagged.json"]));
    assert_fatal(&case, &run, "no_such_dir/flagged.json");
    assert!(!case.path("no_such_dir").exists());
}

#[cfg(unix)]
#[test]
fn an_unwritable_output_directory() {
    use std::os::unix::fs::PermissionsExt;

    let case = Case::from_fixture("official");
    let dir = case.path("out");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join(OUTPUT), "previous\n").unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    if fs::write(dir.join("probe"), "").is_ok() {
        // Running with privileges that ignore permissions (root): nothing to test here;
        // `a_missing_output_directory` covers an output that cannot be written.
        fs::remove_file(dir.join("probe")).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        eprintln!("skipped: the output directory is writable despite mode 0555");
        return;
    }
    let output = format!("out/{OUTPUT}");
    let run = Run::of(case.cmd().args([BATCH, STREAM, output.as_str()]));
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    assert_fatal(&case, &run, &output);
    assert_eq!(fs::read(dir.join(OUTPUT)).unwrap(), b"previous\n");
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        1,
        "no temporary file left"
    );
}

#[test]
fn a_read_error_names_the_problem_once() {
    let case = official_with_previous_output();
    let run = Run::of(case.cmd().args(["no_such_batch.json", STREAM, OUTPUT]));
    assert_fatal(&case, &run, "no_such_batch.json");
    assert_eq!(
        run.stderr.matches("(os error 2)").count(),
        1,
        "{:?}",
        run.stderr
    );
    let run = Run::of(case.cmd().args([BATCH, STREAM, "no_such_dir/flagged.json"]));
    assert_fatal(&case, &run, "no_such_dir/flagged.json");
    assert_eq!(
        run.stderr.matches("does not exist").count(),
        1,
        "{:?}",
        run.stderr
    );
    assert!(!run.stderr.contains(".flagged-"), "{:?}", run.stderr);
}

#[cfg(unix)]
#[test]
fn the_output_file_has_ordinary_permissions() {
    use std::os::unix::fs::PermissionsExt;

    let case = Case::from_fixture("official");
    case.run(&["-q"]).success();
    // A file created the ordinary way in the same directory, under the same umask.
    case.write("reference", "");
    let mode = |name: &str| fs::metadata(case.path(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        format!("{:o}", mode(OUTPUT)),
        format!("{:o}", mode("reference"))
    );
}

// ---------------------------------------------------------------------------------------------
// Skipped lines, the summary, --quiet and --strict.

/// D=1, T=2: 1 and 2 are friends, 2 spent 10.00 twice; a dirty batch line and eleven dirty
/// stream lines (that would change the result if they were applied), then 1 buys 50.00.
fn dirty_case() -> (Case, String) {
    let batch = log(&[
        String::new(),
        r#"{"D":"1", "T":"2"}"#.to_string(),
        purchase(&at(1), "2", "1e3"),
        befriend(&at(2), "1", "2"),
        purchase(&at(3), "2", "10.00"),
        purchase(&at(4), "2", "10.00"),
    ]);
    let last = purchase(&at(100), "1", "50.00");
    let mut stream = log(&[
        "not json".to_string(),
        "[1]".to_string(),
        String::new(),
        r#"{"event_type":"refund", "timestamp":"2017-06-13 00:00:10", "id": "2", "amount": "900.00"}"#.to_string(),
        r#"{"event_type":"purchase", "id": "2", "amount": "900.00"}"#.to_string(),
        purchase("2017-02-30 00:00:10", "2", "900.00"),
        purchase(&at(10), "2", "1e3"),
        r#"{"event_type":"purchase", "timestamp":"2017-06-13 00:00:10", "id": 7.0, "amount": "900.00"}"#.to_string(),
        r#"{"event_type":"purchase", "timestamp":"2017-06-13 00:00:10", "id": "2", "id": "2", "amount": "900.00"}"#.to_string(),
    ])
    .into_bytes();
    stream.extend(b"{\"event_type\":\"purchase\", \"timestamp\":\"2017-06-13 00:00:10\", \"id\": \"2\xff\", \"amount\": \"900.00\"}\n");
    stream.extend(log(&[
        r#"{"event_type":"purchase", "timestamp":"2017-06-13 00:00:10", "id": "2", "amount": "900.00""#.to_string(),
        "}".to_string(),
        "\r".to_string(),
        last.clone(),
    ]).into_bytes());
    (Case::new(batch, stream), last)
}

const DIRTY_WARNINGS: [&str; 11] = [
    "warning: batch_log.json:3: skipped: invalid amount \"1e3\" (expected digits with at most 2 decimals, at most 1000000000.00)",
    "warning: stream_log.json:1: skipped: not valid JSON: not json",
    "warning: stream_log.json:2: skipped: not a JSON object",
    "warning: stream_log.json:4: skipped: unknown event_type \"refund\"",
    "warning: stream_log.json:5: skipped: missing field \"timestamp\"",
    "warning: stream_log.json:6: skipped: invalid timestamp \"2017-02-30 00:00:10\" (expected a real \"YYYY-MM-DD HH:MM:SS\")",
    "warning: stream_log.json:7: skipped: invalid amount \"1e3\" (expected digits with at most 2 decimals, at most 1000000000.00)",
    "warning: stream_log.json:8: skipped: invalid user id in \"id\": 7.0 (expected a non-empty string or an integer)",
    "warning: stream_log.json:9: skipped: key \"id\" appears twice",
    "warning: stream_log.json:10: skipped: not valid UTF-8",
    "warning: 2 more skipped lines not shown",
];

const DIRTY_SUMMARY: &str = "batch_log.json: 3 events, stream_log.json: 1 event; 12 lines skipped (1 invalid UTF-8, 3 not JSON, 1 not an object, 1 duplicate key, 1 missing field, 1 unknown event_type, 1 invalid timestamp, 2 invalid amount, 1 invalid id); 1 of 1 stream purchase flagged; ";

#[test]
fn skipped_lines_are_reported_then_counted() {
    let (case, last) = dirty_case();
    let run = case.run(&[]);
    // The bad lines changed nothing: the baseline is still {10.00, 10.00}.
    assert_output(&case, &run, &flagged(&last, "10.00", "0.00"));
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 12, "{}", run.stderr);
    assert_eq!(lines[..11], DIRTY_WARNINGS[..]);
    assert_summary(lines[11], DIRTY_SUMMARY);
}

#[test]
fn quiet_drops_the_summary_but_not_the_warnings() {
    let (case, last) = dirty_case();
    let run = case.run(&["--quiet"]);
    assert_output(&case, &run, &flagged(&last, "10.00", "0.00"));
    assert_eq!(
        run.stderr,
        DIRTY_WARNINGS.map(|l| format!("{l}\n")).concat()
    );
}

#[test]
fn the_summary_line_is_printed_unless_quiet() {
    let case = Case::from_fixture("official");
    let run = case.run(&[]);
    assert_output(&case, &run, &format!("{OFFICIAL_FLAGGED}\n"));
    assert_eq!(run.stdout, "");
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert_summary(
        lines[0],
        "batch_log.json: 6 events, stream_log.json: 1 event; 0 lines skipped; 1 of 1 stream purchase flagged; ",
    );
    for quiet in ["-q", "--quiet"] {
        let run = case.run(&[quiet]);
        assert_output(&case, &run, &format!("{OFFICIAL_FLAGGED}\n"));
        assert_eq!(run.stderr, "");
    }
}

#[test]
fn fewer_than_eleven_skips_have_no_count_line() {
    let batch = fs::read(fixture("official").join(BATCH)).unwrap();
    // A final line without "\n" counts: the bad line 3 is reported.
    let case = Case::new(batch, "\n\n{\"event_type\":\"purchase\"");
    let run = case.run(&["-q"]);
    assert_output(&case, &run, "");
    assert_eq!(
        run.stderr,
        "warning: stream_log.json:3: skipped: not valid JSON: {\"event_type\":\"purchase\"\n"
    );
}

#[test]
fn strict_mode_stops_at_the_first_skipped_line() {
    let (case, _) = dirty_case();
    case.write(OUTPUT, "previous\n");
    let run = case.run(&["--strict"]);
    assert_fatal(&case, &run, "batch_log.json:3");
    assert_eq!(
        run.stderr,
        "Error: batch_log.json:3: skipped line in --strict mode: invalid amount \"1e3\" (expected digits with at most 2 decimals, at most 1000000000.00)\n"
    );

    // A clean batch: the first bad stream line is the fatal one, and no output is written.
    let batch = fs::read(fixture("official").join(BATCH)).unwrap();
    let stream = log(&[
        purchase(&at(10), "2", "1.00"),
        String::new(),
        purchase(&at(11), "2", "1.0.0"),
        "not json".to_string(),
    ]);
    let case = Case::new(batch, stream);
    let run = case.run(&["--strict", "--quiet"]);
    assert_fatal(&case, &run, "stream_log.json:3");
    assert_eq!(
        run.stderr,
        "Error: stream_log.json:3: skipped line in --strict mode: invalid amount \"1.0.0\" (expected digits with at most 2 decimals, at most 1000000000.00)\n"
    );
    assert_eq!(case.output(), None);
}

#[test]
fn strict_mode_on_clean_input_is_a_normal_run() {
    let case = Case::from_fixture("official");
    let run = case.run(&["--strict", "-q"]);
    assert_output(&case, &run, &format!("{OFFICIAL_FLAGGED}\n"));
    assert_eq!(run.stderr, "");
}

// ---------------------------------------------------------------------------------------------
// Help, version, empty input.

#[test]
fn help_and_version() {
    let help = Run::of(bin().arg("--help")).success();
    assert!(
        help.stdout.contains("Usage: anomaly-detect"),
        "{}",
        help.stdout
    );
    for option in ["--threads", "--quiet", "--strict", "-D", "-T"] {
        assert!(help.stdout.contains(option), "--help lacks {option}");
    }
    assert!(
        !help.stdout.contains("--chunk-bytes"),
        "a hidden option is shown"
    );
    let version = Run::of(bin().arg("--version")).success();
    assert_eq!(
        version.stdout,
        format!("anomaly-detect {}\n", env!("CARGO_PKG_VERSION"))
    );
    let usage = Run::of(&mut bin());
    assert_eq!(usage.code, Some(2), "no arguments is a usage error");
}

#[test]
fn an_empty_stream_gives_an_empty_output_file() {
    let batch = fs::read(fixture("official").join(BATCH)).unwrap();
    for stream in ["", "\n\n", "\u{FEFF}", "\u{FEFF}\r\n"] {
        let case = Case::new(&batch, stream);
        assert_eq!(case.output(), None);
        let run = case.run(&["-q"]);
        assert_output(&case, &run, "");
        assert_eq!(run.stderr, "");
    }
    // An existing output is replaced by the empty one.
    let case = Case::new(&batch, "");
    case.write(OUTPUT, "previous\n");
    assert_output(&case, &case.run(&["-q"]), "");
}

#[test]
fn nothing_flagged_replaces_a_previous_output() {
    let case = Case::new(
        fs::read(fixture("official").join(BATCH)).unwrap(),
        log(&[purchase(&at(50000), "2", "30.00")]),
    );
    case.write(OUTPUT, "previous\n");
    assert_output(&case, &case.run(&["-q"]), "");
}

// ---------------------------------------------------------------------------------------------
// Which purchases form the baseline, and exact figures.

#[test]
fn equal_timestamps_the_later_line_is_the_later_purchase() {
    let ts = at(10);
    let batch = log(&[
        r#"{"D":"1", "T":"2"}"#.to_string(),
        befriend(&ts, "1", "2"),
        purchase(&ts, "2", "100.00"),
        purchase(&ts, "2", "100.00"),
    ]);
    let last = purchase(&ts, "1", "50.00");
    let stream = log(&[
        purchase(&ts, "2", "10.00"),
        purchase(&ts, "2", "10.00"),
        last.clone(),
    ]);
    let case = Case::new(batch, stream);
    // The two stream purchases by 2 are later than the batch ones: baseline {10, 10}.
    assert_output(&case, &case.run(&["-q"]), &flagged(&last, "10.00", "0.00"));
}

#[test]
fn latest_means_highest_timestamp_not_input_order() {
    let batch = log(&[
        r#"{"D":"1", "T":"2"}"#.to_string(),
        befriend(&at(1), "1", "2"),
        purchase("2030-01-01 00:00:00", "2", "10.00"),
        purchase("2030-01-01 00:00:01", "2", "10.00"),
        purchase(&at(2), "2", "100.00"),
    ]);
    let last = purchase(&at(3), "1", "50.00");
    let case = Case::new(batch, log(std::slice::from_ref(&last)));
    assert_output(&case, &case.run(&["-q"]), &flagged(&last, "10.00", "0.00"));
}

#[test]
fn the_network_as_it_stands_and_never_the_buyer() {
    let batch = log(&[
        r#"{"D":"1", "T":"50"}"#.to_string(),
        purchase(&at(1), "2", "10.00"),
        purchase(&at(2), "2", "10.00"),
        purchase(&at(3), "3", "1000.00"),
        purchase(&at(4), "3", "1000.00"),
        befriend(&at(5), "1", "3"),
        unfriend(&at(6), "3", "1"),
        purchase(&at(7), "1", "5000.00"),
        befriend(&at(8), "1", "1"),
    ]);
    let first = purchase(&at(11), "1", "50.00");
    let stream = log(&[
        befriend(&at(10), "2", "1"),
        first.clone(),
        befriend(&at(12), "3", "1"),
        purchase(&at(13), "1", "50.00"),
    ]);
    let case = Case::new(batch, stream);
    // 2's purchases count although made before the friendship; 3's only once 3 is a friend
    // again; 1's own purchases never. The second 50.00 sees {10, 10, 1000, 1000}.
    assert_output(&case, &case.run(&["-q"]), &flagged(&first, "10.00", "0.00"));
}

#[test]
fn flagged_purchases_join_the_history() {
    let batch = log(&[
        r#"{"D":"1", "T":"3"}"#.to_string(),
        befriend(&at(1), "1", "2"),
        befriend(&at(1), "3", "2"),
        purchase(&at(2), "2", "10.00"),
        purchase(&at(3), "2", "10.00"),
    ]);
    let by_1 = purchase(&at(10), "1", "50.00");
    let by_3 = purchase(&at(11), "3", "41.00");
    let case = Case::new(
        batch,
        log(&[by_1.clone(), befriend(&at(10), "1", "3"), by_3.clone()]),
    );
    // 1's 50.00 is flagged against {10, 10}; 3 then sees {10, 10, 50}: mean 23.33,
    // sd 18.85, threshold 79.89 > 41, so 41.00 is not flagged; without 1's purchase 3's
    // network would be {10, 10} and 41.00 would be.
    assert_output(&case, &case.run(&["-q"]), &flagged(&by_1, "10.00", "0.00"));
}

#[test]
fn batch_purchases_are_never_flagged() {
    let batch = log(&[
        r#"{"D":"1", "T":"2"}"#.to_string(),
        befriend(&at(1), "1", "2"),
        purchase(&at(2), "2", "10.00"),
        purchase(&at(3), "2", "10.00"),
        purchase(&at(4), "1", "5000.00"),
    ]);
    let case = Case::new(batch, "");
    assert_output(&case, &case.run(&["-q"]), "");
}

#[test]
fn mean_and_sd_are_truncated_exactly() {
    let batch = log(&[
        r#"{"D":"1", "T":"3"}"#.to_string(),
        befriend(&at(1), "1", "2"),
        purchase(&at(2), "2", "3.00"),
        purchase(&at(3), "2", "3"),
        purchase(&at(4), "2", "4.4"),
    ]);
    // Baseline {3.00, 3.00, 4.40}: mean 3.4666..., sd 0.65996...; threshold 5.4465...
    let below = purchase(&at(5), "1", "5.44");
    let above = purchase(&at(5), "1", "5.45");
    let case = Case::new(batch, log(&[below, above.clone()]));
    assert_output(&case, &case.run(&["-q"]), &flagged(&above, "3.46", "0.65"));
}

#[test]
fn amounts_at_the_limit_are_exact() {
    let batch = log(&[
        r#"{"D":"1", "T":"2"}"#.to_string(),
        befriend(&at(1), "1", "2"),
        purchase(&at(2), "2", "999999999.98"),
        purchase(&at(3), "2", "999999999.98"),
    ]);
    let line = purchase(&at(4), "1", "1000000000.00");
    let case = Case::new(batch, log(std::slice::from_ref(&line)));
    assert_output(
        &case,
        &case.run(&["-q"]),
        &flagged(&line, "999999999.98", "0.00"),
    );
}

#[test]
fn integer_and_string_ids_name_the_same_user() {
    let batch = log(&[
        r#"{"D":"1", "T":"2"}"#.to_string(),
        r#"{"event_type":"befriend", "timestamp":"2017-06-13 00:00:01", "id1": 1, "id2": "\u0037"}"#.to_string(),
        r#"{"event_type":"purchase", "timestamp":"2017-06-13 00:00:02", "id": 7, "amount": 10}"#.to_string(),
        purchase(&at(3), "7", "10.00"),
        // "07" is another user, not a friend of 1.
        purchase(&at(4), "07", "1000.00"),
        purchase(&at(5), "07", "1000.00"),
    ]);
    let line =
        r#"{"event_type":"purchase", "timestamp":"2017-06-13 00:00:06", "id": 1, "amount": 50}"#;
    let case = Case::new(batch, format!("{line}\n"));
    assert_output(&case, &case.run(&["-q"]), &flagged(line, "10.00", "0.00"));
}

#[test]
fn integer_ids_of_any_size_end_to_end() {
    let big = "9".repeat(400);
    let batch = log(&[
        r#"{"D":"1", "T":"2"}"#.to_string(),
        format!(
            r#"{{"event_type":"befriend", "timestamp":"2017-06-13 00:00:01", "id1": {big}, "id2": "2"}}"#
        ),
        purchase(&at(2), "2", "10.00"),
        purchase(&at(3), "2", "10.00"),
    ]);
    let line = purchase(&at(4), &big, "50.00");
    let case = Case::new(batch, log(std::slice::from_ref(&line)));
    let run = case.run(&["-q"]);
    assert_eq!(run.stderr, "");
    assert_output(&case, &run, &flagged(&line, "10.00", "0.00"));
}

// ---------------------------------------------------------------------------------------------
// The query benchmark tool.

#[test]
fn query_bench_times_the_query_on_a_replayed_batch() {
    // A chain 1 - 2 - 3 - 4: at D=2 the networks have 2, 3, 3 and 2 members, with more
    // purchases than T = 2, so the queries merge (and query-bench checks the staggered
    // queries against the one-by-one ones).
    let batch = log(&[
        r#"{"D":"2", "T":"2"}"#.to_string(),
        befriend(&at(1), "1", "2"),
        befriend(&at(2), "2", "3"),
        befriend(&at(3), "3", "4"),
        purchase(&at(4), "1", "5.00"),
        purchase(&at(5), "2", "6.00"),
        purchase(&at(6), "3", "7.00"),
        purchase(&at(7), "4", "8.00"),
        purchase(&at(8), "1", "9.00"),
        purchase(&at(9), "3", "10.00"),
    ]);
    let case = Case::new(batch, "");
    let run = assert_cmd::Command::cargo_bin("query-bench")
        .expect("the query-bench binary is built")
        .arg(case.path(BATCH))
        .args(["--queries", "4000", "--rounds", "3"])
        .output()
        .expect("query-bench runs");
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", show(&run.stderr));
    assert!(
        out.contains("D=2, 4 users, 4000 queries x 3 rounds, "),
        "{out}"
    );
    for mode in ["one by one", "staggered", "two threads, core-us"] {
        assert!(out.contains(&format!("  {mode}: median ")), "{out}");
    }
    let members: f64 = out
        .split_once("rounds, ")
        .and_then(|(_, tail)| tail.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no member count in {out}"));
    assert!(
        members > 2.2 && members < 2.8,
        "random buyers over all four users: {out}"
    );
}

#[test]
fn query_bench_on_a_missing_log_exits_2_with_one_line() {
    let run = assert_cmd::Command::cargo_bin("query-bench")
        .expect("the query-bench binary is built")
        .arg("/nonexistent/batch_log.json")
        .output()
        .expect("query-bench runs");
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.starts_with("Error: ") && err.lines().count() == 1,
        "{err}"
    );
}

/// `--state` keeps a live run's checkpoints: a file replay and the sweep refuse it as a usage
/// error (exit 2) before anything is read or written, rather than ignore it silently.
#[test]
fn state_is_refused_outside_live_mode() {
    let case = Case::from_fixture("official");
    case.write(OUTPUT, "previous\n");
    for (args, why) in [
        (
            vec!["--state", "st", BATCH, STREAM, OUTPUT],
            "a file replay starts afresh and replaces its outputs",
        ),
        (
            vec!["sweep", "--state", "st", BATCH, STREAM],
            "a sweep replays files and keeps no state",
        ),
    ] {
        let run = Run::of(case.cmd().args(&args));
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with(&format!(
                "error: --state needs live mode (STREAM `-` or --follow): {why}\n\nUsage:"
            )),
            "{}",
            run.stderr
        );
        assert!(!case.path("st").exists(), "no state directory made");
        assert_eq!(case.output().unwrap(), b"previous\n");
    }
    // The checkpoint intervals are for --state only.
    let run = case.run(&["--follow", "--checkpoint-seconds", "2"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("--state <DIR>"), "{}", run.stderr);
    // Live mode takes it.
    let help = Run::of(case.cmd().arg("--help"));
    assert!(help.stdout.contains("--state <DIR>"), "{}", help.stdout);
    let man = Run::of(case.cmd().args(["--generate", "man"]));
    assert!(
        man.stdout.contains("\\-\\-state"),
        "the man page has a line for it"
    );
}

/// `run.sh` copied below a project without a `log_input/` beside it: refused before anything
/// is built or created, naming what is missing.
#[test]
fn run_sh_without_its_log_input_fails_creating_nothing() {
    let project = tempfile::tempdir().unwrap();
    fs::write(
        project.path().join("Cargo.toml"),
        "not a manifest: never read",
    )
    .unwrap();
    let copy = project.path().join("temp");
    fs::create_dir(&copy).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/run.sh");
    fs::copy(script, copy.join("run.sh")).unwrap();
    fs::create_dir(copy.join("log_input")).unwrap();
    fs::write(
        copy.join("log_input").join(BATCH),
        "{\"D\":\"1\", \"T\":\"2\"}\n",
    )
    .unwrap();
    // Run from another folder: the script works on the folders beside it.
    let run = std::process::Command::new("bash")
        .arg(copy.join("run.sh"))
        .current_dir(project.path())
        .output()
        .expect("bash runs");
    assert_eq!(run.status.code(), Some(2));
    let stderr = show(&run.stderr);
    assert!(
        stderr.starts_with("run.sh: ") && stderr.contains("log_input/stream_log.json is missing"),
        "{stderr}"
    );
    assert!(!copy.join("log_output").exists());
    assert!(!project.path().join("target").exists(), "nothing built");
}
