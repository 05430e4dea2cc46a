//! Hostile input through the real binary ("Dirty input" in the spec, issue "Hostile input and
//! failures"). Every dirty line must be skipped with its reason and line number on stderr
//! (`warning: FILE:LINE: skipped: REASON`, the first ten in full, then a count) and leave the
//! state unchanged: the output equals the output of the same logs without the dirty lines.
//! Every bad parameter line is a one-line fatal error, exit code 2, with no output written (an
//! existing one is left as it was). A run killed with SIGKILL leaves the previous output intact,
//! and the next run removes the killed run's temporary file.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anomaly_detect::error::SkipReason;
use common::{BATCH, Case, OFFICIAL_FLAGGED, OUTPUT, Run, STREAM, files_in, fixture, show};

// ---------------------------------------------------------------------------------------------
// The base scenario and the lines of a hostile log.

/// D=1, T=10. Users 1 and 2 are friends; 2 buys 10.00 and 12.00; 3 (not a friend of 1) buys
/// 500.00. Stream: 1 buys 20.00 (baseline {1000, 1200}: N=2, S=2200, N*Q-S*S=40,000, flagged,
/// mean "11.00", sd "1.00") then 13.00 (2*1300-2200=400, 400^2=160,000 <= 360,000: not flagged).
///
/// Dirty lines go between the befriend and the purchases of the batch, and before 1's purchases
/// in the stream. They are built to change the result if they were applied: a purchase of
/// 900.00 by 2 (joins 1's baseline), a befriend 1-3 (brings 3's 500.00 in), an unfriend 1-2
/// (empties the baseline).
const PARAMS: &str = r#"{"D":"1", "T":"10"}"#;

fn purchase(ts: &str, id: &str, amount: &str) -> String {
    format!(
        r#"{{"event_type":"purchase", "timestamp":"2017-06-13 {ts}", "id": "{id}", "amount": "{amount}"}}"#
    )
}

fn befriend(ts: &str, a: &str, b: &str) -> String {
    format!(
        r#"{{"event_type":"befriend", "timestamp":"2017-06-13 {ts}", "id1": "{a}", "id2": "{b}"}}"#
    )
}

/// A purchase at 10:05:00 with `id` and `amount` as raw JSON text and `extra` (raw JSON
/// members, with a leading comma) before the final brace.
fn raw_purchase(id: &str, amount: &str, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"event_type":"purchase", "timestamp":"2017-06-13 10:05:00", "id": {id}, "amount": {amount}{extra}}}"#
    )
    .into_bytes()
}

/// A purchase of 900.00 by 2 with raw bytes as its id and `extra` before the final brace.
fn bytes_purchase(id: &[u8], extra: &[u8]) -> Vec<u8> {
    [
        &br#"{"event_type":"purchase", "timestamp":"2017-06-13 10:05:00", "id": "#[..],
        id,
        br#", "amount": "900.00""#,
        extra,
        b"}",
    ]
    .concat()
}

/// The valid purchase of 900.00 by 2 that most dirty lines are variants of.
fn p900() -> Vec<u8> {
    raw_purchase(r#""2""#, r#""900.00""#, "")
}

/// One line of a hostile log: a line that counts, or a dirty line and the reason it must be
/// skipped for.
#[derive(Clone)]
enum Line {
    Valid(Vec<u8>),
    Dirty(Vec<u8>, String),
}

fn valid(line: impl Into<Vec<u8>>) -> Line {
    Line::Valid(line.into())
}

fn dirty(line: impl Into<Vec<u8>>, reason: impl Into<String>) -> Line {
    let (line, mut reason) = (line.into(), reason.into());
    if reason == NOT_JSON {
        // The warning shows the start of the line, as the parser trims it.
        let kept = |b: &u8| !b" \t\r".contains(b);
        let start = line.iter().position(kept).unwrap_or(line.len());
        let end = line.iter().rposition(kept).map_or(start, |i| i + 1);
        reason = SkipReason::not_json(&line[start..end]).to_string();
    }
    Line::Dirty(line, reason)
}

const NOT_UTF8: &str = "not valid UTF-8";
const NOT_JSON: &str = "not valid JSON";
const NOT_OBJECT: &str = "not a JSON object";

fn twice(key: &str) -> String {
    format!("key \"{key}\" appears twice")
}

fn bad_amount(literal: &str) -> String {
    format!(
        "invalid amount {literal} (expected digits with at most 2 decimals, at most 1000000000.00)"
    )
}

fn bad_id(field: &str, literal: &str) -> String {
    format!("invalid user id in \"{field}\": {literal} (expected a non-empty string or an integer)")
}

fn bad_timestamp(literal: &str) -> String {
    format!("invalid timestamp {literal} (expected a real \"YYYY-MM-DD HH:MM:SS\")")
}

fn bad_event_type(literal: &str) -> String {
    format!("unknown event_type {literal}")
}

/// A log's bytes: each line followed by `\n`, except the last one when `unterminated`.
fn join(lines: &[Line], unterminated: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let (Line::Valid(bytes) | Line::Dirty(bytes, _)) = line;
        out.extend_from_slice(bytes);
        if !(unterminated && i + 1 == lines.len()) {
            out.push(b'\n');
        }
    }
    out
}

/// The same log without its dirty lines (always newline-terminated).
fn clean(lines: &[Line]) -> Vec<u8> {
    let kept: Vec<Line> = lines
        .iter()
        .filter(|l| matches!(l, Line::Valid(_)))
        .cloned()
        .collect();
    join(&kept, false)
}

/// The warnings a run must print for the dirty lines of `batch` then `stream`: the first ten
/// in full, then the count of the others.
fn expected_warnings(batch: &[Line], stream: &[Line]) -> String {
    let mut all = Vec::new();
    for (file, lines) in [(BATCH, batch), (STREAM, stream)] {
        for (i, line) in lines.iter().enumerate() {
            if let Line::Dirty(_, reason) = line {
                all.push(format!("warning: {file}:{}: skipped: {reason}\n", i + 1));
            }
        }
    }
    let mut text: String = all.iter().take(10).cloned().collect();
    if all.len() > 10 {
        let more = all.len() - 10;
        let lines = if more == 1 { "line" } else { "lines" };
        text.push_str(&format!("warning: {more} more skipped {lines} not shown\n"));
    }
    text
}

/// A shortened rendering of bytes for assertion messages (a 10 MB line is not printed whole).
fn brief(bytes: &[u8]) -> String {
    let text = show(&bytes[..bytes.len().min(300)]);
    if bytes.len() > 300 {
        format!("{text}... ({} bytes)", bytes.len())
    } else {
        text
    }
}

/// Runs the dirty logs and their clean versions; asserts the warnings (exactly, with line
/// numbers), that both runs succeed and that the dirty run's output is byte for byte the clean
/// run's, which is `expected`.
fn assert_skipped(batch: &[Line], stream: &[Line], unterminated: bool, expected: &[u8]) -> Run {
    let reference = Case::new(clean(batch), clean(stream));
    let run = reference.run(&["-q"]);
    assert_eq!(run.code, Some(0), "the clean run failed: {}", run.stderr);
    assert_eq!(run.stderr, "", "the clean logs have no dirty line");
    let clean_output = reference.output().expect("the clean run wrote its output");
    assert!(
        clean_output == expected,
        "the clean run gave {}, expected {}",
        brief(&clean_output),
        brief(expected)
    );

    let case = Case::new(join(batch, unterminated), join(stream, unterminated));
    let run = case.run(&["-q"]);
    assert_eq!(run.code, Some(0), "the dirty run failed: {}", run.stderr);
    assert_eq!(run.stderr, expected_warnings(batch, stream));
    let output = case.output().expect("the dirty run wrote its output");
    assert!(
        output == clean_output,
        "a dirty line changed the state: {} instead of {}",
        brief(&output),
        brief(&clean_output)
    );
    assert_eq!(case.files(), [BATCH, OUTPUT, STREAM], "no stray files");
    run
}

/// The base batch with `bad` lines after the befriend (line 3 on).
fn base_batch(bad: &[Line]) -> Vec<Line> {
    let mut lines = vec![valid(PARAMS), valid(befriend("10:00:00", "1", "2"))];
    lines.extend_from_slice(bad);
    lines.extend([
        valid(purchase("10:01:00", "2", "10.00")),
        valid(purchase("10:02:00", "2", "12.00")),
        valid(purchase("10:03:00", "3", "500.00")),
    ]);
    lines
}

/// The base stream with `bad` lines first (line 1 on).
fn base_stream(bad: &[Line]) -> Vec<Line> {
    let mut lines = bad.to_vec();
    lines.extend([
        valid(purchase("11:00:00", "1", "20.00")),
        valid(purchase("11:01:00", "1", "13.00")),
    ]);
    lines
}

/// The output of the base scenario: 1's 20.00, flagged.
fn base_output() -> Vec<u8> {
    flagged(
        purchase("11:00:00", "1", "20.00").as_bytes(),
        "11.00",
        "1.00",
    )
}

/// The output line of a flagged purchase: its final `}` becomes `, "mean": .., "sd": ..}`.
fn flagged(line: &[u8], mean: &str, sd: &str) -> Vec<u8> {
    let mut out = line
        .strip_suffix(b"}")
        .expect("a line ends with }")
        .to_vec();
    out.extend_from_slice(format!(", \"mean\": \"{mean}\", \"sd\": \"{sd}\"}}\n").as_bytes());
    out
}

/// The base scenario with the same dirty lines in the batch and in the stream.
fn assert_skipped_in_both(bad: &[Line]) {
    assert_skipped(&base_batch(bad), &base_stream(bad), false, &base_output());
}

// ---------------------------------------------------------------------------------------------
// Bytes that are not text, or not JSON.

#[test]
fn invalid_utf8_inside_a_string_and_a_lone_ff_byte() {
    assert_skipped_in_both(&[
        dirty(bytes_purchase(b"\"2\"", b", \"note\": \"\xff\""), NOT_UTF8),
        dirty(b"\xff".to_vec(), NOT_UTF8),
        // Invalid UTF-8 inside the id itself: lossy decoding would make it user "2".
        dirty(bytes_purchase(b"\"2\xff\"", b""), NOT_UTF8),
        // An overlong encoding of "/", a UTF-16 surrogate, a cut multi-byte sequence.
        dirty(bytes_purchase(b"\"2\"", b", \"n\": \"\xc0\xaf\""), NOT_UTF8),
        dirty(
            bytes_purchase(b"\"2\"", b", \"n\": \"\xed\xa0\x80\""),
            NOT_UTF8,
        ),
        dirty(bytes_purchase(b"\"2\"", b", \"n\": \"\xe2\x82\""), NOT_UTF8),
    ]);
}

#[test]
fn nul_bytes_inside_a_string_and_between_tokens() {
    let mut after = p900();
    after.push(0);
    assert_skipped_in_both(&[
        // A raw control character inside a string is not JSON (the escape \u0000 would be).
        dirty(bytes_purchase(b"\"2\0\"", b""), NOT_JSON),
        dirty(
            b"{\"event_type\":\"purchase\",\0 \"timestamp\":\"2017-06-13 10:05:00\", \"id\": \"2\", \"amount\": \"900.00\"}".to_vec(),
            NOT_JSON,
        ),
        // NUL is not JSON white space: a NUL after the object is trailing garbage.
        dirty(after, NOT_JSON),
        dirty(b"\0".to_vec(), NOT_JSON),
    ]);
}

#[test]
fn json_that_is_not_an_object() {
    let mut array = b"[".to_vec();
    array.extend(p900());
    array.push(b']');
    assert_skipped_in_both(&[
        dirty(array, NOT_OBJECT),
        dirty(b"[1, 2, 3]".to_vec(), NOT_OBJECT),
        dirty(b"[]".to_vec(), NOT_OBJECT),
        dirty(br#""{\"event_type\":\"purchase\"}""#.to_vec(), NOT_OBJECT),
        dirty(b"42".to_vec(), NOT_OBJECT),
        dirty(b"-0.5e-3".to_vec(), NOT_OBJECT),
        dirty(b"1e400".to_vec(), NOT_OBJECT),
        dirty(
            b"123456789012345678901234567890123456789012345678901234567890".to_vec(),
            NOT_OBJECT,
        ),
        dirty(b"null".to_vec(), NOT_OBJECT),
        dirty(b"true".to_vec(), NOT_OBJECT),
        dirty(b"false".to_vec(), NOT_OBJECT),
        // Two objects on one line, and an object cut short.
        dirty([p900(), p900()].concat(), NOT_JSON),
        dirty(p900()[..40].to_vec(), NOT_JSON),
    ]);
}

#[test]
fn duplicated_keys() {
    assert_skipped_in_both(&[
        dirty(raw_purchase(r#""2""#, r#""900.00""#, r#", "amount": "900.00""#), twice("amount")),
        // The same key once plain and once through an escape.
        dirty(raw_purchase(r#""2""#, r#""900.00""#, r#", "\u0069d": "2""#), twice("id")),
        // Even an unknown key: the line is malformed.
        dirty(raw_purchase(r#""2""#, r#""900.00""#, r#", "note": 1, "note": 1"#), twice("note")),
        dirty(
            br#"{"event_type":"befriend", "event_type":"befriend", "timestamp":"2017-06-13 10:05:00", "id1": "1", "id2": "3"}"#.to_vec(),
            twice("event_type"),
        ),
        dirty(
            br#"{"event_type":"unfriend", "timestamp":"2017-06-13 10:05:00", "timestamp":"2017-06-13 10:05:00", "id1": "1", "id2": "2"}"#.to_vec(),
            twice("timestamp"),
        ),
    ]);
}

#[test]
fn nested_objects_as_values_of_event_keys() {
    assert_skipped_in_both(&[
        dirty(
            raw_purchase(r#"{"id": "2"}"#, r#""900.00""#, ""),
            bad_id("id", r#"{"id": "2"}"#),
        ),
        dirty(
            br#"{"event_type":{"type":"purchase"}, "timestamp":"2017-06-13 10:05:00", "id": "2", "amount": "900.00"}"#.to_vec(),
            bad_event_type(r#"{"type":"purchase"}"#),
        ),
        dirty(
            br#"{"event_type":"purchase", "timestamp":{"date":"2017-06-13", "time":"10:05:00"}, "id": "2", "amount": "900.00"}"#.to_vec(),
            bad_timestamp(r#"{"date":"2017-06-13", "time":"10:05:00"}"#),
        ),
        dirty(
            raw_purchase(r#""2""#, r#"{"dollars": 900}"#, ""),
            bad_amount(r#"{"dollars": 900}"#),
        ),
        dirty(
            br#"{"event_type":"befriend", "timestamp":"2017-06-13 10:05:00", "id1": {"id": "1"}, "id2": "3"}"#.to_vec(),
            bad_id("id1", r#"{"id": "1"}"#),
        ),
        dirty(
            br#"{"event_type":"unfriend", "timestamp":"2017-06-13 10:05:00", "id1": "1", "id2": ["2"]}"#.to_vec(),
            bad_id("id2", r#"["2"]"#),
        ),
    ]);
}

#[test]
fn ids_that_are_not_ids() {
    let long = format!("{{\"a\": \"{}\"}}", "x".repeat(100));
    let shown = format!("{}...", &long[..40]);
    assert_skipped_in_both(&[
        dirty(raw_purchase("{}", r#""900.00""#, ""), bad_id("id", "{}")),
        dirty(raw_purchase(&long, r#""900.00""#, ""), bad_id("id", &shown)),
        dirty(raw_purchase("[]", r#""900.00""#, ""), bad_id("id", "[]")),
        dirty(
            raw_purchase("null", r#""900.00""#, ""),
            bad_id("id", "null"),
        ),
        dirty(
            raw_purchase("true", r#""900.00""#, ""),
            bad_id("id", "true"),
        ),
        dirty(
            raw_purchase(r#""""#, r#""900.00""#, ""),
            bad_id("id", r#""""#),
        ),
        dirty(raw_purchase("2.0", r#""900.00""#, ""), bad_id("id", "2.0")),
        dirty(raw_purchase("2e0", r#""900.00""#, ""), bad_id("id", "2e0")),
        dirty(
            raw_purchase("1e400", r#""900.00""#, ""),
            bad_id("id", "1e400"),
        ),
        // Not JSON at all: a leading zero, a plus sign.
        dirty(raw_purchase("02", r#""900.00""#, ""), NOT_JSON),
        dirty(raw_purchase("+2", r#""900.00""#, ""), NOT_JSON),
    ]);
}

#[test]
fn amounts_that_are_not_money() {
    let huge = "123456789012345678901234567890";
    let quoted_huge = format!("\"{huge}\"");
    let bad: Vec<Line> = [
        "1e3",
        r#""1e3""#,
        "1E3",
        r#""12.345""#,
        "12.345",
        r#""-1""#,
        "-1",
        "-0",
        r#""""#,
        "null",
        "true",
        "16.830",
        r#"".5""#,
        r#""+5""#,
        r#""5.""#,
        r#"" 5.00""#,
        r#""1,000.00""#,
        r#""1000000000.01""#,
        "1000000000.01",
        huge,
        &quoted_huge,
        "1e400",
        "[900]",
    ]
    .iter()
    .map(|a| dirty(raw_purchase(r#""2""#, a, ""), bad_amount(a)))
    .collect();
    assert_skipped_in_both(&bad);
}

#[test]
fn missing_fields_and_unknown_event_types() {
    assert_skipped_in_both(&[
        dirty(b"{}".to_vec(), "missing field \"event_type\""),
        dirty(
            br#"{"timestamp":"2017-06-13 10:05:00", "id": "2", "amount": "900.00"}"#.to_vec(),
            "missing field \"event_type\"",
        ),
        dirty(
            br#"{"event_type":"Purchase", "timestamp":"2017-06-13 10:05:00", "id": "2", "amount": "900.00"}"#.to_vec(),
            bad_event_type(r#""Purchase""#),
        ),
        dirty(
            br#"{"event_type":null, "timestamp":"2017-06-13 10:05:00", "id": "2", "amount": "900.00"}"#.to_vec(),
            bad_event_type("null"),
        ),
        dirty(
            br#"{"event_type":"purchase", "id": "2", "amount": "900.00"}"#.to_vec(),
            "missing field \"timestamp\"",
        ),
        dirty(
            br#"{"event_type":"purchase", "timestamp":"2017-06-13 10:05:00", "amount": "900.00"}"#.to_vec(),
            "missing field \"id\"",
        ),
        dirty(
            br#"{"event_type":"purchase", "timestamp":"2017-06-13 10:05:00", "id": "2"}"#.to_vec(),
            "missing field \"amount\"",
        ),
        dirty(
            br#"{"event_type":"befriend", "timestamp":"2017-06-13 10:05:00", "id1": "1"}"#.to_vec(),
            "missing field \"id2\"",
        ),
        dirty(
            br#"{"event_type":"unfriend", "timestamp":"2017-06-13 10:05:00", "id2": "2"}"#.to_vec(),
            "missing field \"id1\"",
        ),
    ]);
}

#[test]
fn more_than_ten_skips_are_counted_after_the_first_ten() {
    // 23 dirty lines in each file: ten warnings (all from the batch), then "36 more".
    let bad: Vec<Line> = (0..23)
        .map(|i| {
            dirty(
                raw_purchase(r#""2""#, &format!("\"{i}.001\""), ""),
                bad_amount(&format!("\"{i}.001\"")),
            )
        })
        .collect();
    let run = assert_skipped(&base_batch(&bad), &base_stream(&bad), false, &base_output());
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 11);
    assert!(lines[0].starts_with("warning: batch_log.json:3: skipped: invalid amount \"0.001\""));
    assert_eq!(lines[10], "warning: 36 more skipped lines not shown");
}

// ---------------------------------------------------------------------------------------------
// Numbers too large for any integer type.

/// 45 digits: beyond u128 (39 digits), still a finite f64.
const BIG: &str = "123456789012345678901234567890123456789012345";

/// 400 digits: beyond f64 too (simd-json refuses it; the literal text is what counts).
fn huge_id() -> String {
    "9".repeat(400)
}

#[test]
fn integer_ids_too_large_for_any_integer_type_are_taken_by_their_text() {
    let huge = huge_id();
    // BIG (as an integer) and HUGE (as an integer) are friends of 1; 1 buys 10.00 and 12.00.
    // Stream: BIG, written as an integer, buys 20.00; HUGE, written as a string, buys 30.00.
    // Each network is {1} (D=1): baseline {1000, 1200}, both flagged, mean 11.00, sd 1.00.
    // Were the ids rejected, or the integer and string forms different users, nothing would
    // be flagged.
    let batch = [
        valid(PARAMS),
        valid(format!(
            r#"{{"event_type":"befriend", "timestamp":"2017-06-13 10:00:00", "id1": "1", "id2": {BIG}}}"#
        )),
        valid(format!(
            r#"{{"event_type":"befriend", "timestamp":"2017-06-13 10:00:00", "id1": {huge}, "id2": 1}}"#
        )),
        valid(purchase("10:01:00", "1", "10.00")),
        valid(purchase("10:02:00", "1", "12.00")),
    ];
    let big_buys = format!(
        r#"{{"event_type":"purchase", "timestamp":"2017-06-13 11:00:00", "id": {BIG}, "amount": "20.00"}}"#
    );
    let huge_buys = purchase("11:00:01", &huge, "30.00");
    // A string id that differs only by a leading zero is another user: no friends, N=0.
    let other = purchase("11:00:02", &format!("0{BIG}"), "40.00");
    let stream = [
        valid(big_buys.clone()),
        valid(huge_buys.clone()),
        valid(other),
    ];
    let expected = [
        flagged(big_buys.as_bytes(), "11.00", "1.00"),
        flagged(huge_buys.as_bytes(), "11.00", "1.00"),
    ]
    .concat();
    assert_skipped(&batch, &stream, false, &expected);
}

// ---------------------------------------------------------------------------------------------
// Truncated last lines, empty files, a batch of only the parameter line.

#[test]
fn a_valid_last_line_without_newline_counts() {
    // The batch's last line (2's 12.00) and the stream's last line (1's 20.00) lack "\n".
    let batch = base_batch(&[]);
    let stream = [valid(purchase("11:00:00", "1", "20.00"))];
    let case = Case::new(join(&batch, true), join(&stream, true));
    assert_eq!(case.output(), None);
    let run = case.run(&["-q"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stderr, "");
    assert_eq!(show(&case.output().unwrap()), show(&base_output()));
    // Without the batch's last purchase the baseline would differ: it was counted.
    let mut batch = base_batch(&[]);
    batch.truncate(4); // params, befriend, 10.00, 12.00 (3's 500.00 dropped, not in 1's network)
    let case = Case::new(join(&batch, true), join(&stream, true));
    assert_eq!(case.run(&["-q"]).success().stderr, "");
    assert_eq!(show(&case.output().unwrap()), show(&base_output()));
    batch.truncate(3); // now 12.00 is gone: baseline {1000}, N=1, nothing flagged
    let case = Case::new(join(&batch, true), join(&stream, true));
    case.run(&["-q"]).success();
    assert_eq!(show(&case.output().unwrap()), "");
}

#[test]
fn a_truncated_last_line_without_newline_is_skipped() {
    let cut = |line: String| line[..line.len() - 1].to_string();
    let mut batch = base_batch(&[]);
    batch.push(dirty(cut(String::from_utf8(p900()).unwrap()), NOT_JSON));
    let mut stream = base_stream(&[]);
    // Cut inside the amount string; it would be flagged if it were taken as 9000.00.
    let line = purchase("11:02:00", "1", "9000.00");
    stream.push(dirty(&line[..line.len() - 5], NOT_JSON));
    assert_skipped(&batch, &stream, true, &base_output());
}

#[test]
fn an_empty_batch_is_a_fatal_missing_parameter_line() {
    for batch in ["", "\n", "\u{FEFF}", " \t\r\n\r\n"] {
        let case = Case::new(batch, join(&base_stream(&[]), false));
        assert_fatal(
            &case,
            "batch_log.json: missing parameter line: the file has no non-blank line",
        );
    }
}

#[test]
fn an_empty_stream_gives_an_empty_output() {
    for stream in ["", "\n", "\r\n\r\n", "\u{FEFF}"] {
        let case = Case::new(join(&base_batch(&[]), false), stream);
        let run = case.run(&["-q"]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert_eq!(run.stderr, "");
        assert_eq!(case.output().as_deref(), Some(&b""[..]));
        assert_eq!(case.files(), [BATCH, OUTPUT, STREAM]);
    }
}

#[test]
fn a_batch_with_only_the_parameter_line() {
    // The stream builds everything: 1-2 friends, 2 buys 10.00 and 12.00, 1 buys 20.00.
    let stream = [
        valid(befriend("11:00:00", "1", "2")),
        valid(purchase("11:00:01", "2", "10.00")),
        valid(purchase("11:00:02", "2", "12.00")),
        valid(purchase("11:00:03", "1", "20.00")),
    ];
    let expected = flagged(
        purchase("11:00:03", "1", "20.00").as_bytes(),
        "11.00",
        "1.00",
    );
    for batch in [
        PARAMS.to_string(),
        format!("{PARAMS}\n"),
        format!("\n\r\n{PARAMS}\r\n\n  \n"),
        format!("\u{FEFF}{PARAMS}"),
    ] {
        let case = Case::new(&batch, join(&stream, false));
        let run = case.run(&["-q"]);
        assert_eq!(run.code, Some(0), "{batch:?}: {}", run.stderr);
        assert_eq!(run.stderr, "", "{batch:?}");
        assert_eq!(show(&case.output().unwrap()), show(&expected), "{batch:?}");
    }
    // Only the parameter line and an empty stream: an empty output.
    let case = Case::new(PARAMS, "");
    let run = case.run(&["-q"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(case.output().as_deref(), Some(&b""[..]));
}

// ---------------------------------------------------------------------------------------------
// Parameter lines: fatal errors.

/// Asserts a fatal run: exit code 2, exactly `Error: MESSAGE` on stderr, nothing on stdout, the
/// previous output untouched and no temporary file left.
fn assert_fatal(case: &Case, message: &str) {
    case.write(OUTPUT, "previous\n");
    let run = case.run(&[]);
    assert_eq!(run.code, Some(2), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, format!("Error: {message}\n"));
    assert_eq!(show(&case.output().unwrap()), "previous\n");
    assert_eq!(
        case.files(),
        [BATCH, OUTPUT, STREAM],
        "no temporary file left"
    );
    // Without an existing output, none is created.
    fs::remove_file(case.path(OUTPUT)).unwrap();
    let run = case.run(&["-q"]);
    assert_eq!(run.code, Some(2));
    assert_eq!(case.files(), [BATCH, STREAM], "no output file written");
}

/// The base batch with `first` instead of its parameter line.
fn with_params(first: &[u8]) -> Case {
    let mut batch = first.to_vec();
    batch.push(b'\n');
    batch.extend(join(&base_batch(&[])[1..], false));
    Case::new(batch, join(&base_stream(&[]), false))
}

#[test]
fn invalid_parameter_lines_are_fatal() {
    let table: &[(&[u8], &str)] = &[
        (
            br#"{"D":"0", "T":"10"}"#,
            "parameter D must be at least 1, got 0",
        ),
        (
            br#"{"D":0, "T":10}"#,
            "parameter D must be at least 1, got 0",
        ),
        (
            br#"{"D":"1", "T":"1"}"#,
            r#"parameter T must be between 2 and 10000000, got "1""#,
        ),
        (
            br#"{"D":1, "T":1}"#,
            "parameter T must be between 2 and 10000000, got 1",
        ),
        (
            br#"{"D":"1", "T":"0"}"#,
            r#"parameter T must be between 2 and 10000000, got "0""#,
        ),
        (
            br#"{"D":"1", "T":"10000001"}"#,
            r#"parameter T must be between 2 and 10000000, got "10000001""#,
        ),
        (
            br#"{"D":"1", "T":99999999999999999999999999}"#,
            "parameter T must be between 2 and 10000000, got 99999999999999999999999999",
        ),
        (
            br#"{"D":"1", "T":"abc"}"#,
            r#"parameter T must be a decimal integer, got "abc""#,
        ),
        (
            br#"{"D":"1", "T":""}"#,
            r#"parameter T must be a decimal integer, got """#,
        ),
        (
            br#"{"D":"1", "T":"-3"}"#,
            r#"parameter T must be a decimal integer, got "-3""#,
        ),
        (
            br#"{"D":"1", "T":"+10"}"#,
            r#"parameter T must be a decimal integer, got "+10""#,
        ),
        (
            br#"{"D":"1", "T":2.5}"#,
            "parameter T must be a decimal integer, got 2.5",
        ),
        (
            br#"{"D":"1", "T":1e1}"#,
            "parameter T must be a decimal integer, got 1e1",
        ),
        (
            br#"{"D":"1", "T":null}"#,
            "parameter T must be a decimal integer, got null",
        ),
        (
            br#"{"D":{"v":1}, "T":"10"}"#,
            r#"parameter D must be a decimal integer, got {"v":1}"#,
        ),
        (
            br#"{"D":"1"}"#,
            r#"missing parameter line: the first line has no "T": {"D":"1"}"#,
        ),
        (
            br#"{}"#,
            r#"missing parameter line: the first line has no "D": {}"#,
        ),
        (
            br#"[1, 10]"#,
            "the parameter line is not a JSON object: [1, 10]",
        ),
        (
            br#"[{"D":"1", "T":"10"}]"#,
            r#"the parameter line is not a JSON object: [{"D":"1", "T":"10"}]"#,
        ),
        (b"null", "the parameter line is not a JSON object: null"),
        (
            br#""D=1 T=10""#,
            r#"the parameter line is not a JSON object: "D=1 T=10""#,
        ),
        (b"10", "the parameter line is not a JSON object: 10"),
        (
            br#"{"D":"1", "T":"10""#,
            r#"the parameter line is not valid JSON: {"D":"1", "T":"10""#,
        ),
        (
            br#"{"D":"1", "T":"10", "T":"10"}"#,
            r#"invalid parameter line: key "T" appears twice"#,
        ),
        (
            b"{\"D\":\"1\", \"T\":\"10\"}\0",
            "the parameter line is not valid JSON: {\"D\":\"1\", \"T\":\"10\"}\\x00",
        ),
        (
            b"{\"D\":\"1\", \"T\":\"1\xff\"}",
            "the parameter line is not valid UTF-8: {\"D\":\"1\", \"T\":\"1\\xff\"}",
        ),
        (b"\xff", "the parameter line is not valid UTF-8: \\xff"),
    ];
    for (first, problem) in table {
        let case = with_params(first);
        assert_fatal(&case, &format!("batch_log.json: {problem}"));
    }
}

#[test]
fn a_missing_parameter_line_is_fatal() {
    // The first non-blank line is an event: there is no parameter line.
    let mut batch = b"\n  \n".to_vec();
    batch.extend(join(&base_batch(&[])[1..], false));
    let case = Case::new(batch, join(&base_stream(&[]), false));
    assert_fatal(
        &case,
        r#"batch_log.json: missing parameter line: the first line has no "D": {"event_type":"befriend", "timestamp":"2017-06-13 10:00:00",..."#,
    );
    // The parameter line after the first event does not count either.
    let mut lines = base_batch(&[]);
    lines.swap(0, 1);
    let case = Case::new(join(&lines, false), join(&base_stream(&[]), false));
    assert_fatal(
        &case,
        r#"batch_log.json: missing parameter line: the first line has no "D": {"event_type":"befriend", "timestamp":"2017-06-13 10:00:00",..."#,
    );
}

#[test]
fn parameters_at_their_limits_are_accepted() {
    for first in [
        r#"{"D":"1", "T":"10000000"}"#,
        r#"{"D":1, "T":10000000}"#,
        r#"{"D":"99999999999999999999999999", "T":"10"}"#,
        r#"{"T":"010", "D":"01", "note": [1, {"D": 0}]}"#,
    ] {
        let case = with_params(first.as_bytes());
        let run = case.run(&["-q"]);
        assert_eq!(run.code, Some(0), "{first}: {}", run.stderr);
        assert_eq!(run.stderr, "");
        assert_eq!(
            show(&case.output().unwrap()),
            show(&base_output()),
            "{first}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Ten-megabyte lines: accepted or skipped, fast, in bounded memory.

const TEN_MB: usize = 10 * 1024 * 1024;

/// Address-space limit of the runs with 10 MB lines (`ulimit -v`, in KiB): simd-json reserves
/// its tape ahead (24 bytes per structural character, grown by doubling), so a 10 MB line of
/// brackets takes ~700 MiB of address space while touching far less.
const ADDRESS_SPACE_KIB: u64 = 4 << 20;

/// Limit on the peak resident memory of the runs with 10 MB lines, in KiB, checked when GNU
/// `time` is there to measure it.
const PEAK_RSS_KIB: u64 = 512 << 10;

/// Runs the binary in `case` under an address-space limit and, where `/usr/bin/time` exists,
/// measures its peak resident memory; returns the run, its duration and the peak in KiB.
fn run_limited(case: &Case) -> (Run, Duration, Option<u64>) {
    let bin = assert_cmd::cargo::cargo_bin("anomaly-detect");
    let gnu_time = Path::new("/usr/bin/time");
    let measure = gnu_time.is_file();
    let rss_file = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(format!(
        "ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""
    ));
    if measure {
        cmd.arg(gnu_time)
            .args(["-f", "%M", "-o"])
            .arg(rss_file.path())
            .arg(&bin);
    } else {
        cmd.arg(&bin);
    }
    cmd.args([BATCH, STREAM, OUTPUT, "-q", "--threads", "2"])
        .current_dir(case.dir.path());
    let started = Instant::now();
    let run = Run::of(&mut assert_cmd::Command::from_std(cmd));
    let elapsed = started.elapsed();
    let peak = measure.then(|| {
        let text = fs::read_to_string(rss_file.path()).unwrap();
        text.lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no peak RSS in {text:?}"))
    });
    (run, elapsed, peak)
}

/// Asserts a run with 10 MB lines was fast and small.
fn assert_fast_and_small(elapsed: Duration, peak_kib: Option<u64>) {
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    if let Some(peak) = peak_kib {
        eprintln!("peak RSS {peak} KiB in {elapsed:?}");
        assert!(peak < PEAK_RSS_KIB, "peak RSS {peak} KiB");
    }
}

#[test]
fn a_ten_megabyte_valid_line_is_accepted_and_echoed() {
    // 1's 20.00 with a 10 MB extra string key: flagged and echoed byte for byte; a 10 MB
    // purchase by 2 in the batch (a 10 MB key too) joins the history.
    let pad = "x".repeat(TEN_MB);
    let big = format!(
        r#"{{"event_type":"purchase", "timestamp":"2017-06-13 11:00:00", "pad": "{pad}", "id": "1", "amount": "20.00"}}"#
    );
    let mut batch = join(&base_batch(&[]), false);
    batch.extend(
        format!(
            r#"{{"event_type":"purchase", "timestamp":"2017-06-13 10:04:00", "id": "2", "amount": "14.00", "pad": "{pad}"}}"#
        )
        .as_bytes(),
    );
    batch.push(b'\n');
    // A 10 MB integer (far beyond f64) in an extra key: valid JSON, judged by its text.
    let number = format!(
        r#"{{"event_type":"purchase", "timestamp":"2017-06-13 11:00:01", "id": "1", "amount": "25.00", "n": 1{}}}"#,
        "7".repeat(TEN_MB)
    );
    let case = Case::new(batch, format!("{big}\n{number}\n"));
    let (run, elapsed, peak) = run_limited(&case);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stderr, "");
    assert_fast_and_small(elapsed, peak);
    // Baseline {1000, 1200, 1400} (1's own purchases never count): N=3, S=3600, Q=4,400,000,
    // N*Q-S*S = 240,000; mean "12.00", isqrt(240,000) = 489, 489/3 = 163 -> "1.63";
    // 3*2000-3600 = 2400 and 3*2500-3600 = 3900, squared both > 9*240,000 = 2,160,000.
    let output = case.output().unwrap();
    let expected = [
        flagged(big.as_bytes(), "12.00", "1.63"),
        flagged(number.as_bytes(), "12.00", "1.63"),
    ]
    .concat();
    assert!(output == expected, "got {}", brief(&output));
}

#[test]
fn ten_megabyte_garbage_lines_are_skipped() {
    let garbage = |fill: u8| {
        let mut line = b"{\"event_type\":\"purchase\", \"note\": ".to_vec();
        line.resize(TEN_MB, fill);
        line
    };
    // An unterminated string, ten million opening brackets, a number that never ends, and a
    // valid line whose amount is a 10 MB integer.
    let mut digits = raw_purchase(r#""2""#, r#""900.00""#, "");
    digits.truncate(digits.len() - 1);
    digits.extend(b", \"n\": 1");
    digits.resize(TEN_MB, b'7');
    let amount = format!("9{}", "0".repeat(TEN_MB));
    // Five million array elements: the most tape per byte.
    let mut array = b"[1".to_vec();
    while array.len() < TEN_MB {
        array.extend(b",1");
    }
    array.push(b']');
    let bad = [
        dirty(garbage(b'x'), NOT_JSON),
        dirty(garbage(b'['), NOT_JSON),
        dirty(digits, NOT_JSON),
        dirty(array, NOT_OBJECT),
        dirty(
            raw_purchase(r#""2""#, &amount, ""),
            bad_amount(&format!("{}...", &amount[..40])),
        ),
    ];
    let case = Case::new(
        join(&base_batch(&bad), false),
        join(&base_stream(&bad), false),
    );
    let (run, elapsed, peak) = run_limited(&case);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stderr,
        expected_warnings(&base_batch(&bad), &base_stream(&bad))
    );
    assert_fast_and_small(elapsed, peak);
    assert_eq!(show(&case.output().unwrap()), show(&base_output()));
}

// ---------------------------------------------------------------------------------------------
// Deep nesting.

/// A purchase of 20.00 by 1 with an extra key nested `depth` arrays deep.
fn deep_purchase(depth: usize) -> String {
    format!(
        r#"{{"event_type":"purchase", "timestamp":"2017-06-13 11:00:00", "id": "1", "amount": "20.00", "deep": {}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

/// A purchase nested `depth` arrays deep in an extra key is checked and flagged, silently.
fn assert_deep_purchase_flagged(depth: usize) {
    let line = deep_purchase(depth);
    let case = Case::new(join(&base_batch(&[]), false), format!("{line}\n"));
    let run = case.run(&["-q"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stderr, "");
    assert_eq!(
        case.output().unwrap(),
        flagged(line.as_bytes(), "11.00", "1.00")
    );
}

#[test]
fn deeply_nested_extra_values_up_to_the_parser_depth_are_accepted() {
    // The object and 1023 arrays: 1024 levels.
    assert_deep_purchase_flagged(1023);
}

#[test]
fn deeply_nested_extra_values_beyond_the_parser_depth_are_accepted() {
    assert_deep_purchase_flagged(2000);
}

/// The documented limit, 65 536 levels inside an extra key's value, holds exactly and is the
/// same for an event line and for the parameter line: 65 535 and 65 536 are read, 65 537 is
/// `not valid JSON` (a skipped event, a fatal parameter line).
#[test]
fn nesting_in_an_extra_key_is_read_up_to_exactly_65_536_levels_in_events_and_parameters() {
    const LIMIT: usize = 65_536;
    for depth in [LIMIT - 1, LIMIT] {
        assert_deep_purchase_flagged(depth);
    }
    let line = deep_purchase(LIMIT + 1);
    let case = Case::new(join(&base_batch(&[]), false), format!("{line}\n"));
    let run = case.run(&["-q"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stderr,
        format!(
            "warning: stream_log.json:1: skipped: not valid JSON: {}...\n",
            &line[..40]
        )
    );
    assert_eq!(case.output().unwrap(), b"");

    let params = |depth: usize| {
        format!(
            r#"{{"D":"1", "T":"10", "deep": {}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    for depth in [LIMIT - 1, LIMIT] {
        let case = with_params(params(depth).as_bytes());
        let run = case.run(&["-q"]);
        assert_eq!(run.code, Some(0), "depth {depth}: {}", run.stderr);
        assert_eq!(case.output().unwrap(), base_output(), "depth {depth}");
    }
    let case = with_params(params(LIMIT + 1).as_bytes());
    case.write(OUTPUT, "previous\n");
    let run = case.run(&["-q"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "Error: batch_log.json: the parameter line is not valid JSON: {\"D\":\"1\", \"T\":\"10\", \"deep\": [[["
        ),
        "{}",
        run.stderr
    );
    assert_eq!(show(&case.output().unwrap()), "previous\n");
}

// ---------------------------------------------------------------------------------------------
// SIGKILL midway: the previous output stays, and no temporary file outlives the next run.

/// `gen-log`, next to the `anomaly-detect` binary under test.
fn gen_log() -> Option<PathBuf> {
    let bin = assert_cmd::cargo::cargo_bin("anomaly-detect");
    let path = bin
        .parent()?
        .join(format!("gen-log{}", std::env::consts::EXE_SUFFIX));
    path.is_file().then_some(path)
}

#[cfg(unix)]
#[test]
fn a_run_killed_midway_leaves_the_previous_output_and_its_temporary_is_removed_later() {
    let Some(gen_log) = gen_log() else {
        eprintln!(
            "skipped: gen-log is not built next to anomaly-detect (cargo build --release --bins)"
        );
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(&gen_log)
        .arg("--out")
        .arg(logs.path())
        .args(["--users", "20000", "--batch-events", "3000000"])
        .args(["--stream-events", "500000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "gen-log failed");

    let out = tempfile::tempdir().unwrap();
    let output = out.path().join(OUTPUT);
    fs::write(&output, "previous\n").unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("anomaly-detect"))
        .arg(logs.path().join(BATCH))
        .arg(logs.path().join(STREAM))
        .arg(&output)
        .arg("-q")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Let the run work for ~300 ms: its temporary output exists from the start.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before it could be killed: the log is too small"
    );
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Reaping it: until then /proc/PID exists (a zombie) and the process counts as alive.
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by a signal");

    assert_eq!(
        fs::read(&output).unwrap(),
        b"previous\n",
        "the output was touched"
    );
    // Besides the output, nothing where unnamed temporary files exist; at most the killed
    // run's named temporary file `.anomaly-detect-*.tmp` elsewhere.
    let after_kill = files_in(out.path());
    let temporaries: Vec<&String> = after_kill.iter().filter(|n| *n != OUTPUT).collect();
    assert!(temporaries.len() <= 1, "{after_kill:?}");
    for name in &temporaries {
        assert!(
            name.starts_with(".anomaly-detect-") && name.ends_with(".tmp"),
            "unexpected file {name:?} after the kill"
        );
    }
    if temporaries.is_empty() {
        eprintln!("note: the killed run left no temporary file; nothing stale to remove");
    }

    // The next run, on a small log, with its output in the same directory.
    let official = fixture("official");
    let run = Run::of(
        assert_cmd::Command::cargo_bin("anomaly-detect")
            .unwrap()
            .arg(official.join(BATCH))
            .arg(official.join(STREAM))
            .arg(&output)
            .arg("-q"),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stderr, "");
    assert_eq!(
        files_in(out.path()),
        [OUTPUT],
        "the killed run's temporary file is still there"
    );
    assert_eq!(
        show(&fs::read(&output).unwrap()),
        format!("{OFFICIAL_FLAGGED}\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Lines built to cost time or memory, and input bytes in messages.

/// A run that must end well within `limit` (a guard against a hang, not a speed target).
fn run_within(case: &Case, extra: &[&str], limit: Duration) -> Run {
    let mut cmd = case.cmd();
    cmd.args([BATCH, STREAM, OUTPUT]).args(extra).timeout(limit);
    Run::of(&mut cmd)
}

#[test]
fn a_line_of_a_million_keys_is_read_and_its_duplicate_key_found() {
    let keys: String = (0..1_000_000).map(|i| format!(", \"k{i}\": {i}")).collect();
    let line = raw_purchase(r#""1""#, r#""20.00""#, &keys);
    let twice = raw_purchase(r#""1""#, r#""20.00""#, &format!("{keys}, \"k999999\": 0"));
    let mut stream = line.clone();
    stream.push(b'\n');
    stream.extend_from_slice(&twice);
    stream.push(b'\n');
    let case = Case::new(join(&base_batch(&[]), false), stream);
    // Quadratic in its keys, the check ran for more than ten minutes on this line.
    let run = run_within(&case, &["-q"], Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "warning: stream_log.json:2: skipped: key \"k999999\" appears twice\n"
    );
    let mut expected = line[..line.len() - 1].to_vec();
    expected.extend_from_slice(br#", "mean": "11.00", "sd": "1.00"}"#);
    expected.push(b'\n');
    assert!(case.output().unwrap() == expected, "the line is flagged");
}

#[test]
fn a_line_longer_than_the_maximum_is_skipped_as_too_long_and_counted() {
    // 1000 bytes is the limit here (hidden --max-line-bytes); the default is 64 MiB.
    let pad = |len: usize| {
        let line = raw_purchase(r#""2""#, r#""900.00""#, ", \"pad\": \"\"");
        let fill = "x".repeat(len - line.len());
        raw_purchase(r#""2""#, r#""900.00""#, &format!(", \"pad\": \"{fill}\""))
    };
    let at_limit = raw_purchase(
        r#""1""#,
        r#""20.00""#,
        &format!(", \"pad\": \"{}\"", "y".repeat(800)),
    );
    let at_limit = [&at_limit[..], &b" ".repeat(1000 - at_limit.len())].concat();
    assert_eq!(at_limit.len(), 1000);
    let stream = [
        pad(1001),
        b"\n".to_vec(),
        pad(5000),
        b"\n".to_vec(),
        at_limit.clone(),
        b"\n".to_vec(),
        pad(3000), // the last line, without `\n`
    ]
    .concat();
    let batch = [join(&base_batch(&[]), false), pad(2000), b"\n".to_vec()].concat();
    let case = Case::new(batch, stream);
    // Chunks of 1 MiB hold the long lines whole (the parser skips them); chunks of 64 bytes end
    // inside them (each comes as a piece of its own, never parsed), at one thread or two.
    for extra in [
        &[][..],
        &["--chunk-bytes", "64", "--threads", "1"],
        &["--chunk-bytes", "64", "--threads", "2"],
    ] {
        let run = case.run(&[&["--max-line-bytes", "1000"], extra].concat());
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let reason = "skipped: line too long (more than 1000 bytes)";
        let lines = run.stderr_lines();
        assert_eq!(
            lines[..4],
            [
                format!("warning: batch_log.json:6: {reason}"),
                format!("warning: stream_log.json:1: {reason}"),
                format!("warning: stream_log.json:2: {reason}"),
                format!("warning: stream_log.json:4: {reason}"),
            ]
        );
        assert!(
            lines[4].contains("4 lines skipped (4 line too long)"),
            "{}",
            lines[4]
        );
        let trimmed = &at_limit[..at_limit.iter().rposition(|&b| b == b'}').unwrap()];
        let expected = [trimmed, br#", "mean": "11.00", "sd": "1.00"}"#, b"\n"].concat();
        assert_eq!(show(&case.output().unwrap()), show(&expected), "{extra:?}");
    }
}

#[test]
fn a_parameter_line_longer_than_the_maximum_is_fatal() {
    let first = format!(r#"{{"D":"1", "T":"10", "pad": "{}"}}"#, "x".repeat(2000));
    let case = with_params(first.as_bytes());
    case.write(OUTPUT, "previous\n");
    let run = case.run(&["--max-line-bytes", "1000"]);
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        "Error: batch_log.json: the parameter line is too long (more than 1000 bytes)\n"
    );
    assert_eq!(show(&case.output().unwrap()), "previous\n");
}

#[test]
fn a_parameter_line_nested_as_deep_as_an_event_line_is_accepted() {
    for depth in [1100, 60_000] {
        let first = format!(
            r#"{{"D":"1", "T":"10", "deep": {}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let case = with_params(first.as_bytes());
        let run = case.run(&["-q"]);
        assert_eq!(run.code, Some(0), "depth {depth}: {}", run.stderr);
        assert_eq!(case.output().unwrap(), base_output());
    }
}

#[test]
fn input_bytes_are_escaped_in_every_message() {
    // A parameter line with ESC and BEL: fatal, quoted escaped.
    let case = with_params(b"{\"D\":\"1\", \"T\":\"10\"}\x1b[2J\x07");
    let run = case.run(&[]);
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        "Error: batch_log.json: the parameter line is not valid JSON: {\"D\":\"1\", \"T\":\"10\"}\\x1b[2J\\x07\n"
    );
    // Skipped lines: a key with an escaped ESC, C1 controls (CSI) written raw in strings.
    let key = br#"{"event_type":"purchase", "timestamp":"2017-06-13 10:05:00", "id": "2", "amount": "1.00", "a\u001b]0;x\u0007": 1, "a\u001b]0;x\u0007": 2}"#;
    let kind = "{\"event_type\":\"\u{9b}31m\", \"timestamp\":\"2017-06-13 10:05:00\"}";
    let id = "{\"event_type\":\"purchase\", \"timestamp\":\"2017-06-13 10:05:00\", \"id\": [\"\u{9b}2J\"], \"amount\": \"1.00\"}";
    let case = Case::new(
        join(&base_batch(&[]), false),
        [
            &key[..],
            b"\n",
            kind.as_bytes(),
            b"\n",
            id.as_bytes(),
            b"\n",
        ]
        .concat(),
    );
    let run = case.run(&["-q"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stderr_lines(),
        [
            r#"warning: stream_log.json:1: skipped: key "a\x1b]0;x\x07" appears twice"#,
            r#"warning: stream_log.json:2: skipped: unknown event_type "\x9b31m""#,
            r#"warning: stream_log.json:3: skipped: invalid user id in "id": ["\x9b2J"] (expected a non-empty string or an integer)"#,
        ]
    );
    assert!(
        !run.stderr
            .bytes()
            .any(|b| b.is_ascii_control() && b != b'\n'),
        "no control byte reaches the terminal"
    );
    assert!(!run.stderr.contains('\u{9b}'));
}
