//! The line parser and the parameter-line parser, through the public API: every class of
//! malformed line with the exact `SkipReason`, every accepted form of id and amount, and the
//! line bookkeeping (indices, spans, blank lines, CRLF, a final line without `\n`).

use anomaly_detect::SkipReason;
use anomaly_detect::ingest::event::{Action, Timestamp};
use anomaly_detect::ingest::parse::{IdHasher, LineParser, Params, ParsedChunk, parse_params};

const TS: &str = "2017-06-13 11:33:01";

/// Parses the whole of `body` as one chunk.
fn parse(body: &[u8]) -> ParsedChunk {
    let mut parser = LineParser::new(IdHasher::default());
    let mut chunk = ParsedChunk::default();
    parser.parse_chunk(body, 0..body.len(), &mut chunk);
    chunk
}

/// Parses a single line that must be skipped, and returns why.
fn reason(line: &[u8]) -> SkipReason {
    let chunk = parse(line);
    assert!(
        chunk.events.is_empty(),
        "accepted: {}",
        String::from_utf8_lossy(line)
    );
    assert_eq!(chunk.lines, 1);
    assert_eq!(chunk.skipped.len(), 1, "{}", String::from_utf8_lossy(line));
    assert_eq!(chunk.skipped[0].0, 0);
    chunk.skipped[0].1.clone()
}

/// A purchase line with the given JSON literals for `id` and `amount`.
fn purchase_line(id: &str, amount: &str) -> String {
    format!(r#"{{"event_type":"purchase", "timestamp":"{TS}", "id": {id}, "amount": {amount}}}"#)
}

/// Parses a single purchase line: the buyer's id bytes and the amount in cents, or the reason.
fn purchase(line: &str) -> Result<(Vec<u8>, u64), SkipReason> {
    let chunk = parse(line.as_bytes());
    assert_eq!(chunk.lines, 1);
    match (chunk.events.as_slice(), chunk.skipped.as_slice()) {
        ([event], []) => match event.action {
            Action::Purchase {
                buyer,
                cents,
                timestamp,
            } => {
                assert_eq!(timestamp, Timestamp::parse(TS.as_bytes()).unwrap());
                Ok((chunk.id(buyer).to_vec(), cents))
            }
            other => panic!("not a purchase: {other:?}"),
        },
        ([], [(0, reason)]) => Err(reason.clone()),
        _ => panic!("unexpected parse of {line}: {chunk:?}"),
    }
}

fn amount(literal: &str) -> Result<u64, SkipReason> {
    purchase(&purchase_line(r#""1""#, literal)).map(|(_, cents)| cents)
}

fn buyer(literal: &str) -> Result<Vec<u8>, SkipReason> {
    purchase(&purchase_line(literal, r#""1.00""#)).map(|(id, _)| id)
}

fn bad_amount(shown: &str) -> Result<u64, SkipReason> {
    Err(SkipReason::InvalidAmount(shown.to_string()))
}

fn bad_id(field: &'static str, shown: &str) -> SkipReason {
    SkipReason::InvalidId {
        field,
        value: shown.to_string(),
    }
}

// ---------------------------------------------------------------- lines that are not events

#[test]
fn not_json() {
    for line in [
        &b"hello"[..],
        br#"{"event_type":"purchase""#,
        br#"{'event_type':'purchase'}"#,
        br#"{"a":1} x"#,
        br#"{"a":1}{"b":2}"#,
        br#"{"a":1,}"#,
        br#"{"a" 1}"#,
        // Raw control characters in strings, bad escapes and bad numbers are not JSON.
        b"{\"event_type\":\"purchase\", \"id\": \"1\tx\"}",
        b"{\"event_type\":\"purchase\", \"id\": \"1\x01\"}",
        br#"{"x": "\x"}"#,
        br#"{"x": "\ud800"}"#,
        br#"{"x": 01}"#,
        br#"{"x": 1.}"#,
        br#"{"x": -}"#,
        br#"{"x": NaN}"#,
        br#"{"x": tru}"#,
    ] {
        assert_eq!(
            reason(line),
            SkipReason::not_json(line),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn not_an_object() {
    for line in [
        &b"[1, 2, 3]"[..],
        br#"[{"event_type":"purchase"}]"#,
        br#""purchase""#,
        b"42",
        b"-3.5",
        b"null",
        b"true",
    ] {
        assert_eq!(
            reason(line),
            SkipReason::NotObject,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn invalid_utf8() {
    let mut line = purchase_line(r#""1""#, r#""1.00""#).into_bytes();
    // A lone continuation byte inside the id string, then a truncated two-byte sequence.
    let at = line.windows(3).position(|w| w == b"\"1\"").unwrap() + 1;
    line[at] = 0x80;
    assert_eq!(reason(&line), SkipReason::InvalidUtf8);
    assert_eq!(
        reason(b"{\"event_type\":\"purchase\xc3\"}"),
        SkipReason::InvalidUtf8
    );
    assert_eq!(reason(b"\xff\xfe"), SkipReason::InvalidUtf8);
}

#[test]
fn duplicate_keys() {
    let line = format!(
        r#"{{"event_type":"purchase", "event_type":"purchase", "timestamp":"{TS}", "id": "1", "amount": "1.00"}}"#
    );
    assert_eq!(
        reason(line.as_bytes()),
        SkipReason::DuplicateKey("event_type".into())
    );
    // Two identical keys that the program does not know are still a malformed line.
    let line = format!(
        r#"{{"x": 1, "event_type":"purchase", "timestamp":"{TS}", "id": "1", "amount": "1.00", "x": 2}}"#
    );
    assert_eq!(
        reason(line.as_bytes()),
        SkipReason::DuplicateKey("x".into())
    );
    // Keys are compared after unescaping: "\u0069d" is "id".
    let line = format!(
        r#"{{"event_type":"purchase", "timestamp":"{TS}", "id": "1", "\u0069d": "2", "amount": "1.00"}}"#
    );
    assert_eq!(
        reason(line.as_bytes()),
        SkipReason::DuplicateKey("id".into())
    );
    // Keys of nested objects are not the line's keys.
    let line = format!(
        r#"{{"event_type":"purchase", "timestamp":"{TS}", "id": "1", "amount": "1.00", "meta": {{"id": 2, "amount": 3}}}}"#
    );
    assert_eq!(purchase(&line), Ok((b"1".to_vec(), 100)));
}

#[test]
fn missing_fields() {
    let cases: [(String, &str); 7] = [
        (
            format!(r#"{{"timestamp":"{TS}", "id": "1", "amount": "1.00"}}"#),
            "event_type",
        ),
        (
            r#"{"event_type":"purchase", "id": "1", "amount": "1.00"}"#.to_string(),
            "timestamp",
        ),
        (
            format!(r#"{{"event_type":"purchase", "timestamp":"{TS}", "amount": "1.00"}}"#),
            "id",
        ),
        (
            format!(r#"{{"event_type":"purchase", "timestamp":"{TS}", "id": "1"}}"#),
            "amount",
        ),
        (
            format!(r#"{{"event_type":"befriend", "timestamp":"{TS}", "id2": "2"}}"#),
            "id1",
        ),
        (
            format!(r#"{{"event_type":"unfriend", "timestamp":"{TS}", "id1": "1"}}"#),
            "id2",
        ),
        // A befriend's "id" is not an "id1".
        (
            format!(r#"{{"event_type":"befriend", "timestamp":"{TS}", "id": "1", "id2": "2"}}"#),
            "id1",
        ),
    ];
    for (line, field) in cases {
        assert_eq!(
            reason(line.as_bytes()),
            SkipReason::MissingField(field),
            "{line}"
        );
    }
    assert_eq!(
        reason(b"{}"),
        SkipReason::MissingField("event_type"),
        "empty object"
    );
}

#[test]
fn unknown_event_type() {
    let line = |kind: &str| {
        format!(r#"{{"event_type":{kind}, "timestamp":"{TS}", "id": "1", "amount": "1.00"}}"#)
    };
    assert_eq!(
        reason(line(r#""refund""#).as_bytes()),
        SkipReason::UnknownEventType(r#""refund""#.into())
    );
    assert_eq!(
        reason(line(r#""Purchase""#).as_bytes()),
        SkipReason::UnknownEventType(r#""Purchase""#.into())
    );
    // Not a string at all.
    assert_eq!(
        reason(line("5").as_bytes()),
        SkipReason::UnknownEventType("5".into())
    );
    assert_eq!(
        reason(line("null").as_bytes()),
        SkipReason::UnknownEventType("null".into())
    );
    assert_eq!(
        reason(line(r#"["purchase"]"#).as_bytes()),
        SkipReason::UnknownEventType(r#"["purchase"]"#.into())
    );
}

#[test]
fn invalid_timestamps() {
    let line = |ts: &str| {
        format!(r#"{{"event_type":"purchase", "timestamp":{ts}, "id": "1", "amount": "1.00"}}"#)
    };
    for ts in [
        r#""2017-02-30 11:33:01""#,
        r#""2017-06-13 11:33:60""#,
        r#""2017-02-29 00:00:00""#,
        r#""2017-06-13 24:00:00""#,
        r#""2017-06-13T11:33:01""#,
        r#""2017-06-13 11:33:01 ""#,
        r#""""#,
        "20170613113301",
        "null",
    ] {
        assert_eq!(
            reason(line(ts).as_bytes()),
            SkipReason::InvalidTimestamp(ts.into()),
            "{ts}"
        );
    }
    // A befriend needs a valid timestamp too.
    let befriend =
        r#"{"event_type":"befriend", "timestamp":"2017-02-30 00:00:00", "id1": "1", "id2": "2"}"#;
    assert_eq!(
        reason(befriend.as_bytes()),
        SkipReason::InvalidTimestamp(r#""2017-02-30 00:00:00""#.into())
    );
    // Leap days that exist are fine.
    let ok = r#"{"event_type":"purchase", "timestamp":"2016-02-29 23:59:59", "id": "1", "amount": "1.00"}"#;
    assert_eq!(parse(ok.as_bytes()).events.len(), 1);
}

// ---------------------------------------------------------------- amounts

#[test]
fn valid_amounts_are_exact_cents() {
    assert_eq!(amount(r#""16.83""#), Ok(1683));
    assert_eq!(amount(r#""16.8""#), Ok(1680));
    assert_eq!(amount(r#""16""#), Ok(1600));
    assert_eq!(amount(r#""007.50""#), Ok(750));
    assert_eq!(amount(r#""29.10""#), Ok(2910));
    assert_eq!(amount(r#""0""#), Ok(0));
    // JSON numbers, judged by their literal text.
    assert_eq!(amount("16.83"), Ok(1683));
    assert_eq!(amount("29.10"), Ok(2910));
    assert_eq!(amount("16"), Ok(1600));
    assert_eq!(amount("0.07"), Ok(7));
}

#[test]
fn invalid_amounts() {
    assert_eq!(amount(r#""1e3""#), bad_amount(r#""1e3""#));
    assert_eq!(amount(r#""12.345""#), bad_amount(r#""12.345""#));
    assert_eq!(amount(r#""-1""#), bad_amount(r#""-1""#));
    assert_eq!(amount(r#"".5""#), bad_amount(r#"".5""#));
    assert_eq!(amount(r#""+5""#), bad_amount(r#""+5""#));
    assert_eq!(amount(r#""""#), bad_amount(r#""""#));
    assert_eq!(amount(r#""5.""#), bad_amount(r#""5.""#));
    assert_eq!(amount(r#"" 5""#), bad_amount(r#"" 5""#));
    assert_eq!(amount(r#""1,50""#), bad_amount(r#""1,50""#));
    // JSON numbers: the literal text decides, never the floating-point value.
    assert_eq!(amount("16.830"), bad_amount("16.830"));
    assert_eq!(amount("1e3"), bad_amount("1e3"));
    assert_eq!(amount("1E3"), bad_amount("1E3"));
    assert_eq!(amount("-1"), bad_amount("-1"));
    assert_eq!(amount("-0"), bad_amount("-0"));
    assert_eq!(amount("1.5e1"), bad_amount("1.5e1"));
    // Not a string or a number.
    assert_eq!(amount("null"), bad_amount("null"));
    assert_eq!(amount("true"), bad_amount("true"));
    assert_eq!(amount("{}"), bad_amount("{}"));
    assert_eq!(amount(r#"{"v": "1.00"}"#), bad_amount(r#"{"v": "1.00"}"#));
    assert_eq!(amount(r#"["1.00"]"#), bad_amount(r#"["1.00"]"#));
}

#[test]
fn amount_limit() {
    assert_eq!(amount(r#""1000000000.00""#), Ok(100_000_000_000));
    assert_eq!(amount(r#""1000000000""#), Ok(100_000_000_000));
    assert_eq!(amount("1000000000.00"), Ok(100_000_000_000));
    assert_eq!(amount(r#""0001000000000.0""#), Ok(100_000_000_000));
    assert_eq!(
        amount(r#""1000000000.01""#),
        bad_amount(r#""1000000000.01""#)
    );
    assert_eq!(amount("1000000000.01"), bad_amount("1000000000.01"));
    assert_eq!(amount(r#""1000000001""#), bad_amount(r#""1000000001""#));
    assert_eq!(
        amount("123456789012345678901234567890"),
        bad_amount("123456789012345678901234567890")
    );
}

// ---------------------------------------------------------------- user ids

#[test]
fn ids_string_and_integer_name_the_same_user() {
    assert_eq!(buyer(r#""7""#), Ok(b"7".to_vec()));
    assert_eq!(buyer("7"), Ok(b"7".to_vec()));
    assert_eq!(buyer(r#""07""#), Ok(b"07".to_vec()));
    assert_eq!(buyer("-7"), Ok(b"-7".to_vec()));
    assert_eq!(buyer("0"), Ok(b"0".to_vec()));
    assert_eq!(buyer(r#""\u0037""#), Ok(b"7".to_vec()));
    assert_eq!(buyer(r#""a\"b""#), Ok(b"a\"b".to_vec()));
    assert_eq!(buyer(r#""caf\u00e9""#), Ok("café".as_bytes().to_vec()));
    assert_eq!(
        buyer("123456789012345678901234567890"),
        Ok(b"123456789012345678901234567890".to_vec())
    );
    assert_eq!(
        buyer("-123456789012345678901234567890"),
        Ok(b"-123456789012345678901234567890".to_vec())
    );
    assert_eq!(
        buyer("18446744073709551616"),
        Ok(b"18446744073709551616".to_vec())
    );
}

#[test]
fn integer_ids_of_any_size() {
    // The spec: "a JSON integer of any size taken by its literal text". Up to 308 digits
    // the id is accepted; from 309 digits (beyond f64::MAX) the line is skipped as NotJson.
    let big = "9".repeat(400);
    assert_eq!(buyer(&big), Ok(big.clone().into_bytes()));
    let negative = format!("-{big}");
    assert_eq!(buyer(&negative), Ok(negative.clone().into_bytes()));
    let befriend = format!(
        r#"{{"event_type":"befriend", "timestamp":"{TS}", "id1": 1{}, "id2": "2"}}"#,
        "0".repeat(309)
    );
    let chunk = parse(befriend.as_bytes());
    assert_eq!(chunk.skipped, vec![]);
    match chunk.events.as_slice() {
        [event] => match event.action {
            Action::Befriend(a, _) => {
                assert_eq!(&*chunk.id(a), format!("1{}", "0".repeat(309)).as_bytes())
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn integer_ids_up_to_308_digits() {
    let big = "9".repeat(308);
    assert_eq!(buyer(&big), Ok(big.clone().into_bytes()));
}

#[test]
fn huge_numbers_in_unknown_keys_are_ignored() {
    let line = format!(
        r#"{{"event_type":"purchase", "timestamp":"{TS}", "id": "1", "amount": "1.00", "x": 1e400}}"#
    );
    assert_eq!(purchase(&line), Ok((b"1".to_vec(), 100)));
}

#[test]
fn ids_hash_by_their_bytes() {
    // A small number and one beyond the direct table, each as a JSON string and an integer.
    let body = [
        purchase_line("7", "1"),
        purchase_line(r#""7""#, "1"),
        purchase_line("12345678901", "1"),
        purchase_line(r#""12345678901""#, "1"),
        purchase_line(r#""012345678901""#, "1"),
    ]
    .join("\n");
    let chunk = parse(body.as_bytes());
    let keys: Vec<_> = chunk
        .events
        .iter()
        .map(|e| match e.action {
            Action::Purchase { buyer, .. } => (buyer.number(), buyer.hash()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(keys.len(), 5);
    assert_eq!(keys[0], (Some(7), None));
    assert_eq!(keys[0], keys[1]);
    assert_eq!(keys[2].0, None);
    assert!(keys[2].1.is_some());
    assert_eq!(keys[2], keys[3]);
    assert_ne!(keys[3], keys[4]);
}

#[test]
fn invalid_ids() {
    for (literal, shown) in [
        ("7.0", "7.0"),
        ("7e0", "7e0"),
        ("1E2", "1E2"),
        (r#""""#, r#""""#),
        ("null", "null"),
        ("{}", "{}"),
        (r#"{"id": "7"}"#, r#"{"id": "7"}"#),
        ("[]", "[]"),
        ("true", "true"),
        ("false", "false"),
    ] {
        assert_eq!(buyer(literal), Err(bad_id("id", shown)), "{literal}");
    }
    let befriend =
        format!(r#"{{"event_type":"befriend", "timestamp":"{TS}", "id1": 1.5, "id2": "2"}}"#);
    assert_eq!(reason(befriend.as_bytes()), bad_id("id1", "1.5"));
    let unfriend =
        format!(r#"{{"event_type":"unfriend", "timestamp":"{TS}", "id1": "1", "id2": ""}}"#);
    assert_eq!(reason(unfriend.as_bytes()), bad_id("id2", r#""""#));
}

#[test]
fn befriend_and_unfriend() {
    let body = format!(
        "{}\n{}\n",
        r#"{"event_type":"befriend", "timestamp":"2017-06-13 11:33:01", "id1": "1", "id2": 2}"#,
        r#"{"id2": "\u0033", "id1": -4, "timestamp":"2017-06-13 11:33:01", "event_type":"unfriend"}"#,
    );
    let chunk = parse(body.as_bytes());
    assert!(chunk.skipped.is_empty(), "{:?}", chunk.skipped);
    assert_eq!(chunk.events.len(), 2);
    match chunk.events[0].action {
        Action::Befriend(a, b) => {
            assert_eq!(&*chunk.id(a), b"1");
            assert_eq!(&*chunk.id(b), b"2");
        }
        other => panic!("{other:?}"),
    }
    match chunk.events[1].action {
        Action::Unfriend(a, b) => {
            assert_eq!(&*chunk.id(a), b"-4");
            assert_eq!(&*chunk.id(b), b"3");
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- layout of a line

#[test]
fn extra_keys_any_order_and_odd_white_space() {
    let line = "{ \"note\" : {\"a\": [1, \"}]\", {\"b\": null}]}, \"k\\\"ey\":2.5e3 ,\t\"amount\"\t:\t16.83 ,\"id\":7,\r\"timestamp\"  :\"2017-06-13 11:33:01\",\"event_type\": \"purchase\" ,\"z\":true }";
    assert_eq!(purchase(line), Ok((b"7".to_vec(), 1683)));
    // An amount given as a JSON number after a nested value holding braces and quotes.
    let line = format!(
        r#"{{"x": {{"y": "}}\"", "z": [{{}}]}}, "id": 12, "amount": 0.5, "event_type": "purchase", "timestamp": "{TS}"}}"#
    );
    assert_eq!(purchase(&line), Ok((b"12".to_vec(), 50)));
    // The amount is the last member, with no white space before the closing brace.
    let line = format!(r#"{{"id":"3","event_type":"purchase","timestamp":"{TS}","amount":10}}"#);
    assert_eq!(purchase(&line), Ok((b"3".to_vec(), 1000)));
}

#[test]
fn the_event_span_is_the_trimmed_line() {
    let line = purchase_line(r#""1""#, r#""1.00""#);
    let body = format!(" \t{line} \t\r\n\t{line}\r\n{line}");
    let chunk = parse(body.as_bytes());
    assert_eq!(chunk.lines, 3);
    assert!(chunk.skipped.is_empty());
    assert_eq!(chunk.events.len(), 3);
    let spans: Vec<(u32, u32, u32)> = chunk
        .events
        .iter()
        .map(|e| (e.line, e.start, e.len))
        .collect();
    let len = line.len() as u32;
    let second = (2 + line.len() + 4 + 1) as u32;
    let third = second + len + 2;
    assert_eq!(spans, vec![(0, 2, len), (1, second, len), (2, third, len)]);
    for e in &chunk.events {
        let start = e.start as usize;
        assert_eq!(
            &body.as_bytes()[start..start + e.len as usize],
            line.as_bytes()
        );
    }
}

#[test]
fn spans_are_relative_to_the_chunk() {
    let first = purchase_line(r#""1""#, r#""1.00""#);
    let second = purchase_line(r#""2""#, r#""2.00""#);
    let body = format!("{first}\n  {second}\n");
    let from = first.len() + 1;
    let mut parser = LineParser::new(IdHasher::default());
    let mut chunk = ParsedChunk::default();
    parser.parse_chunk(body.as_bytes(), from..body.len(), &mut chunk);
    assert_eq!(chunk.offset, from);
    assert_eq!(chunk.lines, 1);
    assert_eq!(chunk.events.len(), 1);
    let e = chunk.events[0];
    assert_eq!((e.line, e.start, e.len), (0, 2, second.len() as u32));
    let start = chunk.offset + e.start as usize;
    assert_eq!(
        &body.as_bytes()[start..start + e.len as usize],
        second.as_bytes()
    );
    // The parser is reusable: a second chunk replaces the first one's contents.
    parser.parse_chunk(body.as_bytes(), 0..from, &mut chunk);
    assert_eq!((chunk.offset, chunk.lines, chunk.events.len()), (0, 1, 1));
    match chunk.events[0].action {
        Action::Purchase { buyer, cents, .. } => {
            assert_eq!((&*chunk.id(buyer), cents), (&b"1"[..], 100));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn crlf_is_trimmed() {
    let line = purchase_line(r#""5""#, r#""5.00""#);
    let body = format!("{line}\r\n{line}\r\n");
    let chunk = parse(body.as_bytes());
    assert_eq!(chunk.lines, 2);
    assert!(chunk.skipped.is_empty(), "{:?}", chunk.skipped);
    assert_eq!(chunk.events.len(), 2);
    assert_eq!(chunk.events[1].start as usize, line.len() + 2);
    for e in &chunk.events {
        assert_eq!(e.len as usize, line.len());
        assert_eq!(body.as_bytes()[(e.start + e.len) as usize - 1], b'}');
    }
}

#[test]
fn blank_lines_are_skipped_without_a_reason() {
    let line = purchase_line(r#""5""#, r#""5.00""#);
    let body = format!("\n   \n\t\r\n\r\n{line}\n\n");
    let chunk = parse(body.as_bytes());
    assert_eq!(chunk.lines, 6);
    assert!(chunk.skipped.is_empty(), "{:?}", chunk.skipped);
    assert_eq!(chunk.events.len(), 1);
    assert_eq!(chunk.events[0].line, 4);

    let only_blank = parse(b"\n \r\n\t");
    assert_eq!(only_blank.lines, 3);
    assert!(only_blank.events.is_empty() && only_blank.skipped.is_empty());

    let empty = parse(b"");
    assert_eq!(empty.lines, 0);
    assert!(empty.events.is_empty() && empty.skipped.is_empty());
}

#[test]
fn a_final_line_without_newline_counts() {
    let line = purchase_line(r#""5""#, r#""5.00""#);
    let body = format!("{line}\n{line}");
    let chunk = parse(body.as_bytes());
    assert_eq!(chunk.lines, 2);
    assert_eq!(chunk.events.len(), 2);
    assert_eq!(chunk.events[1].line, 1);
    assert_eq!(chunk.events[1].start as usize, line.len() + 1);
    assert_eq!(chunk.events[1].len as usize, line.len());

    let body = format!("{line}\nnot json");
    let chunk = parse(body.as_bytes());
    assert_eq!(chunk.lines, 2);
    assert_eq!(chunk.skipped, vec![(1, SkipReason::not_json(b"not json"))]);
}

#[test]
fn line_indices_of_events_and_skips() {
    let good = purchase_line(r#""u1""#, r#""1.00""#);
    let body = format!(
        "{good}\nbad\n\n[1]\n{good}\r\n   \n{}\n{good}\n{}",
        r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "1"}"#,
        purchase_line(r#""1""#, r#""1e3""#),
    );
    let chunk = parse(body.as_bytes());
    assert_eq!(chunk.lines, 9);
    let lines: Vec<u32> = chunk.events.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![0, 4, 7]);
    assert_eq!(
        chunk.skipped,
        vec![
            (1, SkipReason::not_json(b"bad")),
            (3, SkipReason::NotObject),
            (6, SkipReason::MissingField("amount")),
            (8, SkipReason::InvalidAmount(r#""1e3""#.into())),
        ]
    );
    // The id arena holds exactly the ids of the events, in order; small numbers are kept by
    // value only.
    assert_eq!(chunk.ids, b"u1u1u1");
    let chunk = parse(format!("{}\n{good}", purchase_line(r#""17""#, r#""1.00""#)).as_bytes());
    assert_eq!(chunk.ids, b"u1");
    match chunk.events[0].action {
        Action::Purchase { buyer, .. } => assert_eq!(&*chunk.id(buyer), b"17"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_skipped_line_does_not_disturb_its_neighbours() {
    // The line before and after a bad one parse exactly as they would alone.
    let body = format!(
        "{}\n{{\"event_type\":\"purchase\", \"id\": \"\\u00\n{}\n",
        purchase_line(r#""a""#, "1.25"),
        purchase_line(r#""b""#, r#""2.50""#)
    );
    let chunk = parse(body.as_bytes());
    assert_eq!(
        chunk.skipped,
        vec![(
            1,
            SkipReason::not_json(br#"{"event_type":"purchase", "id": "\u00"#)
        )]
    );
    let got: Vec<(Vec<u8>, u64)> = chunk
        .events
        .iter()
        .map(|e| match e.action {
            Action::Purchase { buyer, cents, .. } => (chunk.id(buyer).to_vec(), cents),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, vec![(b"a".to_vec(), 125), (b"b".to_vec(), 250)]);
}

// ---------------------------------------------------------------- the parameter line

fn params(degree: u32, tracked: u32) -> Result<Params, String> {
    Ok(Params { degree, tracked })
}

/// The error of a parameter line, which must mention every one of `words`.
fn params_error(line: &str, words: &[&str]) {
    let error = parse_params(line.as_bytes()).expect_err(line);
    for word in words {
        assert!(error.contains(word), "{line}: {error:?} lacks {word:?}");
    }
}

#[test]
fn parameters_as_strings_or_integers() {
    assert_eq!(parse_params(br#"{"D":"3", "T":"50"}"#), params(3, 50));
    assert_eq!(parse_params(br#"{"D":3,"T":50}"#), params(3, 50));
    assert_eq!(parse_params(br#"{"T":"2", "D":1}"#), params(1, 2));
    assert_eq!(
        parse_params(br#" { "D" : "03" , "T" : 10000000 } "#),
        params(3, 10_000_000)
    );
    assert_eq!(
        parse_params(br#"{"D":"1", "T":"2", "comment": "extra keys are fine"}"#),
        params(1, 2)
    );
}

#[test]
fn a_huge_degree_saturates() {
    assert_eq!(
        parse_params(br#"{"D":"99999999999999999999999999", "T":"50"}"#),
        params(u32::MAX, 50)
    );
    assert_eq!(
        parse_params(br#"{"D":4294967296, "T":"50"}"#),
        params(u32::MAX, 50)
    );
    assert_eq!(
        parse_params(br#"{"D":4294967295, "T":"50"}"#),
        params(u32::MAX, 50)
    );
}

#[test]
fn invalid_parameters() {
    params_error(r#"{"D":0, "T":50}"#, &["D", "at least 1"]);
    params_error(r#"{"D":"0", "T":50}"#, &["D", "at least 1"]);
    params_error(r#"{"D":3, "T":1}"#, &["T", "1"]);
    params_error(r#"{"D":3, "T":"0"}"#, &["T", "0"]);
    params_error(r#"{"D":3, "T":10000001}"#, &["T", "10000001"]);
    params_error(
        r#"{"D":3, "T":"99999999999999999999999"}"#,
        &["T", "99999999999999999999999"],
    );
    params_error(r#"{"D":3, "T":"abc"}"#, &["T", "abc"]);
    params_error(r#"{"D":3, "T":-5}"#, &["T", "-5"]);
    params_error(r#"{"D":3, "T":"-5"}"#, &["T", "-5"]);
    params_error(r#"{"D":3, "T":2.5}"#, &["T", "2.5"]);
    params_error(r#"{"D":3, "T":5e1}"#, &["T", "5e1"]);
    params_error(r#"{"D":3, "T":""}"#, &["T"]);
    params_error(r#"{"D":3, "T":" 5"}"#, &["T"]);
    params_error(r#"{"D":3, "T":null}"#, &["T", "null"]);
    params_error(r#"{"D":-1, "T":5}"#, &["D", "-1"]);
    params_error(r#"{"D":"1.5", "T":5}"#, &["D", "1.5"]);
}

#[test]
fn missing_or_malformed_parameter_line() {
    params_error(r#"{"T":"50"}"#, &["D"]);
    params_error(r#"{"D":"3"}"#, &["T"]);
    params_error("{}", &["D"]);
    params_error(r#"{"D":"3", "T":"50""#, &["not valid JSON"]);
    params_error("D=3 T=50", &["not valid JSON"]);
    params_error(r#"["D", 3, "T", 50]"#, &["not a JSON object"]);
    params_error(r#"{"D":"3", "T":"50", "T":"40"}"#, &["\"T\"", "twice"]);
    params_error(
        r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "1", "amount": "16.83"}"#,
        &["D"],
    );
    let error = parse_params(b"{\"D\":\"3\xff\", \"T\":\"50\"}").unwrap_err();
    assert!(error.contains("UTF-8"), "{error}");
}

#[test]
fn a_line_that_is_not_json_is_shown_by_its_start() {
    assert_eq!(
        reason(br#"{"a":1} x"#).to_string(),
        r#"not valid JSON: {"a":1} x"#
    );
    let long = r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": 1,}"#;
    assert_eq!(
        reason(long.as_bytes()).to_string(),
        format!("not valid JSON: {}...", &long[..40])
    );
    // Control bytes never reach the terminal raw.
    assert_eq!(
        reason(b"{\"a\":\x1b[2J}").to_string(),
        "not valid JSON: {\"a\":\\x1b[2J}"
    );
}
