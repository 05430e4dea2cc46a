//! A small, deliberately naive sequential model of docs/spec.md, sharing no code with the program.
//!
//! It is the reference the real pipeline is compared with: every rule of the spec is written
//! out in the most direct way (a `BTreeMap` of friend sets, a plain BFS, a sort of every
//! purchase ever seen, exact `u128` arithmetic), favouring obviousness over speed.
//!
//! Parsing: `serde_json` validates a line and unescapes strings. The literal text of numbers
//! (ids and amounts are judged by their text, never by a binary value) and duplicate keys
//! (which `serde_json::Map` silently merges) come from a tiny scan of the top-level members
//! of the raw line: once `serde_json` has accepted the line as an object, its top-level shape
//! is `{ "key" : value , ... }` and the scan only has to find where each value ends. Every
//! scanned key and value is then decoded again by `serde_json` on its own, so a scanning
//! mistake cannot go unnoticed (the model panics rather than silently disagreeing).
//!
//! Known limits of `serde_json` as a judge of JSON, which the generator stays clear of: it
//! refuses nesting deeper than 128 levels, numbers beyond the `f64` range (`1e400`) and lone
//! surrogate escapes (`"\ud800"`). The program refuses the last two as well but accepts deep
//! nesting; the spec says nothing about any of them.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::Value;

/// The largest amount the spec allows, in cents (`1000000000.00`).
pub const MAX_CENTS: u128 = 100_000_000_000;
/// The spec's limits on `T`.
pub const MAX_T: u128 = 10_000_000;

/// One valid event, as the spec defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Purchase {
        id: String,
        timestamp: String,
        cents: u128,
    },
    Befriend(String, String),
    Unfriend(String, String),
}

/// What the model says about one stream purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// 1-based line number in the stream log.
    pub line_no: u64,
    /// Number of purchases in the baseline.
    pub n: u128,
    /// `floor(S / N)`, `None` when `N == 0`.
    pub mean_cents: Option<u128>,
    /// `floor(isqrt(N*Q - S*S) / N)`, `None` when `N == 0`.
    pub sd_cents: Option<u128>,
    pub cents: u128,
    pub flagged: bool,
}

/// The model's verdict on a whole run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub degree: u128,
    pub tracked: u128,
    /// One entry per valid stream purchase, in stream order.
    pub checks: Vec<Check>,
    /// The trimmed stream line of every check, in the same order.
    pub lines: Vec<Vec<u8>>,
    /// The exact bytes of `flagged_purchases.json`.
    pub output: Vec<u8>,
    /// For every check, how many purchases its network had made before the latest `T` were
    /// taken (to measure that the generator exercises the window).
    pub network_purchases: Vec<usize>,
    /// Number of non-blank lines skipped as malformed (batch events and stream).
    pub skipped: usize,
}

/// A purchase in the history: who, when, where in the input, how much.
#[derive(Debug, Clone)]
struct Past {
    id: String,
    timestamp: String,
    seq: u64,
    cents: u128,
}

/// Runs the model on whole log files. `degree` / `tracked` override the parameter line like
/// the command line does. Panics if the parameter line is missing or invalid (the generator
/// never produces that; fatal errors are not this model's business).
pub fn run(batch: &[u8], stream: &[u8], degree: Option<u128>, tracked: Option<u128>) -> Outcome {
    let batch_lines = lines(batch);
    let stream_lines = lines(stream);

    let header_index = batch_lines
        .iter()
        .position(|l| !l.is_empty())
        .expect("model: batch log has no parameter line");
    let (header_d, header_t) =
        parse_params(batch_lines[header_index]).expect("model: invalid parameter line");
    let d = degree.unwrap_or(header_d);
    let t = tracked.unwrap_or(header_t);

    let mut friends: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut purchases: Vec<Past> = Vec::new();
    let mut skipped = 0;
    let mut seq: u64 = 0;

    for line in &batch_lines[header_index + 1..] {
        seq += 1;
        if line.is_empty() {
            continue;
        }
        match parse_event(line) {
            Some(event) => apply(&mut friends, &mut purchases, event, seq),
            None => skipped += 1,
        }
    }

    let mut checks = Vec::new();
    let mut checked_lines = Vec::new();
    let mut network_purchases = Vec::new();
    let mut output = Vec::new();
    for (index, line) in stream_lines.iter().enumerate() {
        seq += 1;
        if line.is_empty() {
            continue;
        }
        let Some(event) = parse_event(line) else {
            skipped += 1;
            continue;
        };
        if let Event::Purchase { id, cents, .. } = &event {
            let (check, seen) = check(&friends, &purchases, id, *cents, d, t, index as u64 + 1);
            if check.flagged {
                output.extend_from_slice(&line[..line.len() - 1]); // drop the final `}`
                output.extend_from_slice(
                    format!(
                        ", \"mean\": \"{}\", \"sd\": \"{}\"}}\n",
                        dollars(check.mean_cents.unwrap()),
                        dollars(check.sd_cents.unwrap())
                    )
                    .as_bytes(),
                );
            }
            checks.push(check);
            checked_lines.push(line.to_vec());
            network_purchases.push(seen);
        }
        apply(&mut friends, &mut purchases, event, seq);
    }

    Outcome {
        degree: d,
        tracked: t,
        checks,
        lines: checked_lines,
        network_purchases,
        output,
        skipped,
    }
}

/// Cents as dollars truncated to two decimals.
pub fn dollars(cents: u128) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The lines of a file, BOM dropped, split at `\n` (a final line without `\n` counts, the
/// empty remainder after a final `\n` is not a line), each trimmed of space, tab and `\r`.
/// Blank lines are kept (as empty slices) so that line numbers stay right.
pub fn lines(file: &[u8]) -> Vec<&[u8]> {
    let body = file.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(file);
    let mut out: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    if body.is_empty() || body.ends_with(b"\n") {
        out.pop();
    }
    out.into_iter().map(trim).collect()
}

fn trim(mut line: &[u8]) -> &[u8] {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
    while line.first().is_some_and(ws) {
        line = &line[1..];
    }
    while line.last().is_some_and(ws) {
        line = &line[..line.len() - 1];
    }
    line
}

fn apply(
    friends: &mut BTreeMap<String, BTreeSet<String>>,
    purchases: &mut Vec<Past>,
    event: Event,
    seq: u64,
) {
    match event {
        Event::Purchase {
            id,
            timestamp,
            cents,
        } => purchases.push(Past {
            id,
            timestamp,
            seq,
            cents,
        }),
        Event::Befriend(a, b) => {
            if a != b {
                friends.entry(a.clone()).or_default().insert(b.clone());
                friends.entry(b).or_default().insert(a);
            }
        }
        Event::Unfriend(a, b) => {
            if let Some(set) = friends.get_mut(&a) {
                set.remove(&b);
            }
            if let Some(set) = friends.get_mut(&b) {
                set.remove(&a);
            }
        }
    }
}

/// The users at distance 1..=d from `user`, by plain breadth-first search.
pub fn network(
    friends: &BTreeMap<String, BTreeSet<String>>,
    user: &str,
    d: u128,
) -> BTreeSet<String> {
    let mut distance: BTreeMap<String, u128> = BTreeMap::new();
    distance.insert(user.to_string(), 0);
    let mut queue = VecDeque::from([user.to_string()]);
    while let Some(u) = queue.pop_front() {
        let du = distance[&u];
        if du == d {
            continue;
        }
        for v in friends.get(&u).into_iter().flatten() {
            if !distance.contains_key(v) {
                distance.insert(v.clone(), du + 1);
                queue.push_back(v.clone());
            }
        }
    }
    distance.remove(user);
    distance.into_keys().collect()
}

fn check(
    friends: &BTreeMap<String, BTreeSet<String>>,
    purchases: &[Past],
    buyer: &str,
    x: u128,
    d: u128,
    t: u128,
    line_no: u64,
) -> (Check, usize) {
    let members = network(friends, buyer, d);
    let mut seen: Vec<&Past> = purchases
        .iter()
        .filter(|p| members.contains(&p.id))
        .collect();
    let network_purchases = seen.len();
    // Latest first: highest timestamp (the fixed-width format sorts like time), then the one
    // further down the input.
    seen.sort_by(|a, b| (&b.timestamp, b.seq).cmp(&(&a.timestamp, a.seq)));
    seen.truncate(t as usize);

    let n = seen.len() as u128;
    let s: u128 = seen.iter().map(|p| p.cents).sum();
    let q: u128 = seen.iter().map(|p| p.cents * p.cents).sum();
    if n == 0 {
        let check = Check {
            line_no,
            n,
            mean_cents: None,
            sd_cents: None,
            cents: x,
            flagged: false,
        };
        return (check, network_purchases);
    }
    let spread = n * q - s * s; // N^2 times the variance, never negative
    let excess = (n * x) as i128 - s as i128;
    let flagged = n >= 2 && excess > 0 && (excess as u128).pow(2) > 9 * spread;
    let check = Check {
        line_no,
        n,
        mean_cents: Some(s / n),
        sd_cents: Some(spread.isqrt() / n),
        cents: x,
        flagged,
    };
    (check, network_purchases)
}

/// One top-level member of an object line: the unescaped key, the raw text of the value and
/// the value as `serde_json` reads it.
struct Member<'a> {
    key: String,
    raw: &'a str,
    value: Value,
}

/// The members of a line that is a JSON object, in order, duplicates included; `None` when the
/// line is not valid UTF-8, not JSON or not an object.
fn members(line: &[u8]) -> Option<Vec<Member<'_>>> {
    let text = std::str::from_utf8(line).ok()?;
    let whole: Value = serde_json::from_str(text).ok()?;
    let map = whole.as_object()?;

    // serde_json accepted `text` as one object: scan `{ "k" : v , ... }` at the top level.
    let b = text.as_bytes();
    let mut at = skip_ws(b, 0);
    assert_eq!(b[at], b'{');
    at = skip_ws(b, at + 1);
    let mut out = Vec::new();
    while b[at] != b'}' {
        let key_end = string_end(b, at);
        let key: String = serde_json::from_str(&text[at..key_end]).expect("model: key scan");
        at = skip_ws(b, key_end);
        assert_eq!(b[at], b':');
        at = skip_ws(b, at + 1);
        let value_end = value_end(b, at);
        let raw = &text[at..value_end];
        let value: Value = serde_json::from_str(raw).expect("model: value scan");
        out.push(Member { key, raw, value });
        at = skip_ws(b, value_end);
        if b[at] == b',' {
            at = skip_ws(b, at + 1);
        }
    }
    assert_eq!(skip_ws(b, at + 1), b.len());
    // serde_json keeps the last of duplicated keys: the scan must agree with it.
    for (key, value) in map {
        let last = out
            .iter()
            .rev()
            .find(|m| &m.key == key)
            .expect("model scan");
        assert_eq!(&last.value, value, "model: scan disagrees with serde_json");
    }
    Some(out)
}

fn skip_ws(b: &[u8], mut at: usize) -> usize {
    while at < b.len() && matches!(b[at], b' ' | b'\t' | b'\r' | b'\n') {
        at += 1;
    }
    at
}

/// End (exclusive) of the string whose opening quote is at `at`.
fn string_end(b: &[u8], at: usize) -> usize {
    assert_eq!(b[at], b'"');
    let mut i = at + 1;
    loop {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
}

/// End (exclusive) of the value starting at `at`.
fn value_end(b: &[u8], at: usize) -> usize {
    match b[at] {
        b'"' => string_end(b, at),
        b'{' | b'[' => {
            let mut depth = 0;
            let mut i = at;
            loop {
                match b[i] {
                    b'"' => {
                        i = string_end(b, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        // A number or a literal: runs until a delimiter.
        _ => {
            let mut i = at;
            while !matches!(b[i], b',' | b'}' | b' ' | b'\t' | b'\r' | b'\n') {
                i += 1;
            }
            i
        }
    }
}

/// Parses one trimmed, non-blank event line; `None` when the spec says it is skipped.
pub fn parse_event(line: &[u8]) -> Option<Event> {
    let members = members(line)?;
    let mut keys = BTreeSet::new();
    for m in &members {
        if !keys.insert(m.key.as_str()) {
            return None; // the same key twice
        }
    }
    let get = |key: &str| members.iter().find(|m| m.key == key);

    let kind = get("event_type")?.value.as_str()?.to_string();
    let timestamp = get("timestamp")?.value.as_str()?.to_string();
    if !valid_timestamp(&timestamp) {
        return None;
    }
    match kind.as_str() {
        "purchase" => Some(Event::Purchase {
            id: user_id(get("id")?)?,
            timestamp,
            cents: amount(get("amount")?)?,
        }),
        "befriend" => Some(Event::Befriend(
            user_id(get("id1")?)?,
            user_id(get("id2")?)?,
        )),
        "unfriend" => Some(Event::Unfriend(
            user_id(get("id1")?)?,
            user_id(get("id2")?)?,
        )),
        _ => None,
    }
}

/// A user id: a non-empty string (unescaped) or an integer by its literal text.
fn user_id(m: &Member<'_>) -> Option<String> {
    match &m.value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(_) if !m.raw.contains(['.', 'e', 'E']) => Some(m.raw.to_string()),
        _ => None,
    }
}

/// An amount in cents: a string or number whose text is `[0-9]+(\.[0-9]{1,2})?`, at most
/// `1000000000.00`.
fn amount(m: &Member<'_>) -> Option<u128> {
    let text = match &m.value {
        Value::String(s) => s.as_str(),
        Value::Number(_) => m.raw,
        _ => return None,
    };
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) {
        return None;
    }
    if text.contains('.') && !(1..=2).contains(&frac.len()) {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() > 12 {
        return None; // far above the limit, and keeps u128 safe
    }
    let dollars: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().unwrap()
    };
    let cents: u128 = format!("{frac:0<2}").parse().unwrap();
    let total = dollars * 100 + cents;
    (total <= MAX_CENTS).then_some(total)
}

/// `YYYY-MM-DD HH:MM:SS`, a real calendar date and time of day.
pub fn valid_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 19 {
        return false;
    }
    for (i, &c) in b.iter().enumerate() {
        let ok = match i {
            4 | 7 => c == b'-',
            10 => c == b' ',
            13 | 16 => c == b':',
            _ => c.is_ascii_digit(),
        };
        if !ok {
            return false;
        }
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap();
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    let (hour, minute, second) = (num(11..13), num(14..16), num(17..19));
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day) && hour <= 23 && minute <= 59 && second <= 59
}

/// The parameter line: `D` and `T`, JSON strings or integers holding decimal integers.
pub fn parse_params(line: &[u8]) -> Option<(u128, u128)> {
    let members = members(line)?;
    let mut keys = BTreeSet::new();
    for m in &members {
        if !keys.insert(m.key.as_str()) {
            return None;
        }
    }
    let param = |key: &str| -> Option<u128> {
        let m = members.iter().find(|m| m.key == key)?;
        let text = match &m.value {
            Value::String(s) => s.as_str(),
            Value::Number(_) => m.raw,
            _ => return None,
        };
        if text.is_empty() || !text.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some(text.parse::<u128>().unwrap_or(u128::MAX))
    };
    let d = param("D")?;
    let t = param("T")?;
    (d >= 1 && (2..=MAX_T).contains(&t)).then_some((d, t))
}
