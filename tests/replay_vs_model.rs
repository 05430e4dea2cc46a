//! The real pipeline against the naive model of `tests/model`: random dirty logs with small
//! user pools (overlapping networks, heavy friendship churn), few timestamps (ties, out of
//! order), mixed id and amount spellings, and every thread count and chunk size.

mod model;

use std::io;

use anomaly_detect::config::DEFAULT_WINDOW;
use anomaly_detect::ingest::chunks::ChunkSource;
use anomaly_detect::output::progress::Progress;
use anomaly_detect::output::report::SkipLog;
use anomaly_detect::output::social::{SocialLines, SocialList};
use anomaly_detect::replay::Replay;
use anomaly_detect::state::recent::RecentPurchases;
use anomaly_detect::state::snapshot;
use anomaly_detect::{
    Checked, Sink, config::Config, ingest::input::LogFile, output::sink::FlaggedLines,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

// ---------------------------------------------------------------------------------------------
// The pipeline side.

/// Records every check the pipeline makes and forwards it to the real output writer.
struct Recorder {
    checks: Vec<model::Check>,
    lines: Vec<Vec<u8>>,
    out: FlaggedLines<Vec<u8>>,
}

impl Sink for Recorder {
    type Error = io::Error;

    fn checked(&mut self, p: &Checked<'_>) -> io::Result<bool> {
        let n = u128::from(p.baseline().n);
        self.checks.push(model::Check {
            line_no: p.line_no(),
            n,
            mean_cents: (n > 0).then(|| p.baseline().mean_cents()),
            sd_cents: (n > 0).then(|| p.baseline().sd_cents()),
            cents: u128::from(p.cents()),
            flagged: p.is_flagged(),
        });
        self.lines.push(p.line().to_vec());
        self.out.checked(p)
    }
}

struct Actual {
    checks: Vec<model::Check>,
    lines: Vec<Vec<u8>>,
    output: Vec<u8>,
    skipped: u64,
}

fn run_pipeline(batch: &[u8], stream: &[u8], config: &Config) -> Actual {
    let batch = LogFile::from_bytes("batch_log.json", batch.to_vec());
    let stream = LogFile::from_bytes("stream_log.json", stream.to_vec());
    let mut sink = Recorder {
        checks: Vec::new(),
        lines: Vec::new(),
        out: FlaggedLines::new(Vec::new()),
    };
    let mut skips = SkipLog::new(Box::new(io::sink()), false);
    anomaly_detect::replay::replay(&batch, &stream, config, &mut sink, &mut skips)
        .expect("the replay failed");
    Actual {
        checks: sink.checks,
        lines: sink.lines,
        output: sink.out.into_inner(),
        skipped: skips.total(),
    }
}

/// Runs both and returns a description of the first difference, if any.
fn compare(case: &Case) -> Result<model::Outcome, String> {
    let expected = model::run(
        &case.batch,
        &case.stream,
        case.config.degree.map(u128::from),
        case.config.tracked.map(u128::from),
    );
    let actual = run_pipeline(&case.batch, &case.stream, &case.config);
    let mismatch = |what: String| Err(format!("{what}\nconfig: {:?}", case.config));
    for (i, (e, a)) in expected.checks.iter().zip(&actual.checks).enumerate() {
        if e != a || expected.lines[i] != actual.lines[i] {
            return mismatch(format!(
                "stream purchase #{i} (line {}): expected {e:?}, got {a:?}\n  line: {}",
                e.line_no,
                String::from_utf8_lossy(&expected.lines[i])
            ));
        }
    }
    if expected.checks.len() != actual.checks.len() {
        return mismatch(format!(
            "expected {} checked stream purchases, got {}",
            expected.checks.len(),
            actual.checks.len()
        ));
    }
    if expected.output != actual.output {
        return mismatch(format!(
            "output differs:\nexpected:\n{}\ngot:\n{}",
            String::from_utf8_lossy(&expected.output),
            String::from_utf8_lossy(&actual.output)
        ));
    }
    if expected.skipped as u64 != actual.skipped {
        return mismatch(format!(
            "expected {} skipped lines, got {}",
            expected.skipped, actual.skipped
        ));
    }
    Ok(expected)
}

// ---------------------------------------------------------------------------------------------
// The generator.

/// The user universe: a case uses a prefix of it. `"7"` (also spelled `7` and `"\u0037"`)
/// and `"07"` are different users; numeric ids may be written as JSON integers.
const USERS: [&str; 14] = [
    "1",
    "7",
    "07",
    "2",
    "-3",
    "3",
    "ab",
    "123456789012345678901234567890",
    "4",
    "é",
    "5",
    "-0",
    "6",
    "q\"\\/",
];

/// Few timestamps, so ties are common; not in order.
const TIMES: [&str; 6] = [
    "2017-06-13 11:33:01",
    "2017-06-13 11:33:02",
    "2017-06-13 11:33:00",
    "2016-02-29 23:59:59",
    "2017-06-14 00:00:00",
    "2017-06-12 23:59:59",
];

const BAD_TIMES: [&str; 16] = [
    r#""2017-02-30 10:00:00""#,
    r#""2017-02-29 10:00:00""#,
    r#""1900-02-29 00:00:00""#,
    r#""2017-06-13 11:33:60""#,
    r#""2017-06-13 24:00:00""#,
    r#""2017-06-13 11:60:00""#,
    r#""2017-13-01 00:00:00""#,
    r#""2017-00-10 00:00:00""#,
    r#""2017-06-00 00:00:00""#,
    r#""2017-06-13T11:33:01""#,
    r#""2017-6-13 11:33:01""#,
    r#""2017-06-13 11:33:01 ""#,
    r#""""#,
    "1497353581",
    "null",
    r#"["2017-06-13 11:33:01"]"#,
];

const BAD_AMOUNTS: [&str; 24] = [
    r#""1e3""#,
    r#""12.345""#,
    r#""-1""#,
    r#"".5""#,
    r#""+5""#,
    r#""""#,
    "16.830",
    "1e3",
    "1.5E2",
    "-1",
    "-0",
    r#""1,000""#,
    "null",
    "true",
    "[5]",
    r#""1000000000.01""#,
    "1000000000.01",
    r#""5.""#,
    r#"" 5""#,
    r#""5 ""#,
    r#""99999999999999999999999""#,
    "99999999999999999999999",
    r#""0x10""#,
    r#"{"amount": "5"}"#,
];

const BAD_IDS: [&str; 10] = [
    "null", r#""""#, "7.0", "{}", "true", "1e2", "[1]", "-0.0", "7E0", "1.5",
];

/// Extra members that must be ignored; some look like the real keys from inside.
const EXTRAS: [&str; 8] = [
    r#""note": "a \"}\" , {\"id\": 1} b""#,
    r#""meta": {"id": 5, "amount": [1, "]", {"x": "}"}], "event_type": "unfriend"}"#,
    r#""mean": "1.00""#,
    r#""n": -1.5e3"#,
    r#""z": null"#,
    r#""ID": "9""#,
    r#""clé": "\u00e9\n""#,
    r#""sd": 0"#,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Purchase,
    Befriend,
    Unfriend,
    Dirty,
    Blank,
}

/// One line before rendering: the event, plus random bits that choose its spelling.
#[derive(Debug, Clone)]
struct LineSpec {
    kind: Kind,
    a: usize,
    b: usize,
    time: usize,
    cents: u64,
    /// Bits choosing key order, spacing, id / amount spellings, extras, padding, CRLF.
    style: u32,
    /// Which corruption a dirty line gets, and a choice inside it.
    dirt: (u8, u8),
    /// A befriend line below the case's `unfriend_bias` becomes an unfriend line.
    flip: u8,
}

fn kind(purchase: u32) -> impl Strategy<Value = Kind> {
    prop_oneof![
        purchase => Just(Kind::Purchase),
        25 => Just(Kind::Befriend),
        15 => Just(Kind::Unfriend),
        10 => Just(Kind::Dirty),
        6 => Just(Kind::Blank),
    ]
}

fn cents() -> impl Strategy<Value = u64> {
    prop_oneof![
        60 => 1_000u64..6_000,
        8 => (10u64..60).prop_map(|d| d * 100),
        8 => Just(2_500u64),
        16 => 10_000u64..1_000_000,
        2 => 0u64..10,
        1 => Just(100_000_000_000u64),
    ]
}

fn line(purchase: u32) -> impl Strategy<Value = LineSpec> {
    (
        kind(purchase),
        0..USERS.len(),
        0..USERS.len(),
        0..TIMES.len(),
        cents(),
        any::<u32>(),
        (any::<u8>(), any::<u8>()),
        any::<u8>(),
    )
        .prop_map(|(kind, a, b, time, cents, style, dirt, flip)| LineSpec {
            kind,
            a,
            b,
            time,
            cents,
            style,
            dirt,
            flip,
        })
}

#[derive(Debug, Clone)]
struct Spec {
    users: usize,
    degree: u32,
    tracked: u32,
    /// Bits for the parameter line's spelling, BOMs, leading blank lines, final newlines.
    header_style: u32,
    /// How many befriend lines turn into unfriend lines (of 256): sparse or dense graphs.
    unfriend_bias: u8,
    /// Amounts from a small arithmetic progression instead (10.00, 20.00, ... 90.00), so
    /// that purchases exactly at `mean + 3 sd` (never flagged) happen.
    palette: bool,
    batch: Vec<LineSpec>,
    stream: Vec<LineSpec>,
    threads: usize,
    chunk_bytes: usize,
    window: usize,
    override_degree: Option<u32>,
    override_tracked: Option<u32>,
}

fn spec() -> impl Strategy<Value = Spec> {
    let head = (
        3usize..=12,
        prop_oneof![9 => 1u32..=4, 1 => Just(1000u32)],
        prop_oneof![4 => 2u32..=10, 4 => 11u32..=60, 1 => 61u32..=400],
        (any::<u32>(), 0u8..=200, prop::bool::weighted(0.25)),
        prop_oneof![Just(1usize), Just(2), Just(8)],
        prop_oneof![1 => 1usize..64, 1 => Just(1usize << 20)],
        prop_oneof![
            1 => Just(1usize),
            2 => 2usize..40,
            1 => Just(anomaly_detect::config::DEFAULT_WINDOW)
        ],
        (
            prop_oneof![9 => Just(None), 1 => (1u32..=4).prop_map(Some)],
            prop_oneof![9 => Just(None), 1 => (2u32..=60).prop_map(Some)],
        ),
    );
    let body = (
        prop::collection::vec(line(45), 0..300),
        prop::collection::vec(line(90), 20..200),
    );
    (head, body).prop_map(
        |(
            (
                users,
                degree,
                tracked,
                (header_style, unfriend_bias, palette),
                threads,
                chunk_bytes,
                window,
                (od, ot),
            ),
            (batch, stream),
        )| Spec {
            users,
            degree,
            tracked,
            header_style,
            unfriend_bias,
            palette,
            batch,
            stream,
            threads,
            chunk_bytes,
            window,
            override_degree: od,
            override_tracked: ot,
        },
    )
}

/// A rendered case: the two files and the configuration.
#[derive(Clone)]
struct Case {
    batch: Vec<u8>,
    stream: Vec<u8>,
    config: Config,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "config: {:?}", self.config)?;
        writeln!(f, "--- batch_log.json ---")?;
        writeln!(f, "{}", String::from_utf8_lossy(&self.batch).escape_debug())?;
        writeln!(f, "--- stream_log.json ---")?;
        write!(
            f,
            "{}",
            String::from_utf8_lossy(&self.stream).escape_debug()
        )
    }
}

/// Takes `n` bits off the style word.
struct Bits(u32);

impl Bits {
    fn take(&mut self, n: u32) -> u32 {
        let v = self.0 & ((1 << n) - 1);
        self.0 >>= n;
        v
    }
}

fn is_integer_text(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|c| c.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// A JSON string with its first character written as a `\u` escape.
fn escaped_first(s: &str) -> String {
    let mut chars = s.chars();
    let first = chars.next().unwrap();
    let rest = serde_json::to_string(chars.as_str()).unwrap();
    format!("\"\\u{:04x}{}", first as u32, &rest[1..])
}

fn render_id(user: &str, style: u32) -> String {
    match style {
        0 | 1 if is_integer_text(user) => user.to_string(),
        2 => escaped_first(user),
        _ => serde_json::to_string(user).unwrap(),
    }
}

fn render_amount(cents: u64, style: u32) -> String {
    let (d, c) = (cents / 100, cents % 100);
    let minimal = if c == 0 {
        format!("{d}")
    } else if c.is_multiple_of(10) {
        format!("{d}.{}", c / 10)
    } else {
        format!("{d}.{c:02}")
    };
    match style {
        0 | 1 => format!("\"{d}.{c:02}\""),
        2 => format!("\"{minimal}\""),
        3 => format!("\"00{minimal}\""),
        4 => minimal,
        5 => format!("{d}.{c:02}"),
        6 => escaped_first(&minimal),
        _ => format!("\"0{d}.{c:02}\""),
    }
}

fn render_time(time: &str, style: u32) -> String {
    if style == 0 {
        format!("\"{}\\u0020{}\"", &time[..10], &time[11..]) // an escaped space: same text
    } else {
        format!("\"{time}\"")
    }
}

/// Joins members into an object with one of several spacings.
fn object(members: &[(String, String)], spacing: u32) -> String {
    let (open, colon, comma, close) = match spacing {
        0 => ("{", ":", ",", "}"),
        1 => ("{", ": ", ", ", "}"),
        2 => ("{ ", " : ", " , ", " }"),
        _ => ("{\t", ":\t", ",\t ", "\t}"),
    };
    let body: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{k}{colon}{v}"))
        .collect();
    format!("{open}{}{close}", body.join(comma))
}

fn key(name: &str, escape: bool) -> String {
    if escape {
        escaped_first(name)
    } else {
        format!("\"{name}\"")
    }
}

/// Renders one line, without its line ending.
fn render_line(spec: &LineSpec, case: &Spec, out: &mut Vec<u8>) {
    let mut bits = Bits(spec.style);
    let user = |i: usize| USERS[i % case.users];
    if spec.kind == Kind::Blank {
        out.extend_from_slice([&b""[..], b" ", b"\t \t", b"\r"][bits.take(2) as usize]);
        return;
    }
    let dirty = spec.kind == Kind::Dirty;
    let (dirt, choice) = (spec.dirt.0 % 17, usize::from(spec.dirt.1));
    // A dirty line corrupts a purchase or a friendship event.
    let event = match spec.kind {
        Kind::Dirty if dirt == 9 || spec.a.is_multiple_of(2) => Kind::Purchase,
        Kind::Dirty if spec.b.is_multiple_of(2) => Kind::Unfriend,
        Kind::Dirty => Kind::Befriend,
        Kind::Befriend if spec.flip < case.unfriend_bias => Kind::Unfriend,
        other => other,
    };
    let cents = if case.palette {
        1000 * (1 + spec.cents % 9)
    } else {
        spec.cents
    };
    let mut members: Vec<(String, String)> = Vec::new();
    let key_escape = bits.take(3) == 0;
    let kind_text = match event {
        Kind::Purchase => "purchase",
        Kind::Befriend => "befriend",
        _ => "unfriend",
    };
    members.push((key("event_type", key_escape), format!("\"{kind_text}\"")));
    members.push((
        key("timestamp", false),
        render_time(TIMES[spec.time], bits.take(4)),
    ));
    if event == Kind::Purchase {
        members.push((key("id", key_escape), render_id(user(spec.a), bits.take(3))));
        members.push((key("amount", false), render_amount(cents, bits.take(3))));
    } else {
        members.push((key("id1", false), render_id(user(spec.a), bits.take(3))));
        members.push((
            key("id2", key_escape),
            render_id(user(spec.b), bits.take(3)),
        ));
    }
    // Key order: a rotation, maybe reversed.
    let rotation = bits.take(2) as usize % members.len();
    members.rotate_left(rotation);
    if bits.take(1) == 1 {
        members.reverse();
    }
    // Extra members.
    if bits.take(2) == 0 {
        let extra = EXTRAS[bits.take(3) as usize];
        let (k, v) = extra.split_once(": ").unwrap();
        let at = bits.take(3) as usize % (members.len() + 1);
        members.insert(at, (k.to_string(), v.to_string()));
    }
    let spacing = bits.take(2);
    let pad = bits.take(2);

    let mut text = None;
    if dirty {
        let find = |members: &[(String, String)], name: &str| {
            members
                .iter()
                .position(|(k, _)| serde_json::from_str::<String>(k).unwrap() == name)
                .unwrap()
        };
        match dirt {
            0 => text = Some(["not json", "{", "}", "{}", "null", "\"x\""][choice % 6].to_string()),
            1 => {
                let mut t = object(&members, spacing);
                t.pop(); // truncated
                text = Some(t);
            }
            2 => {
                let t = object(&members, spacing);
                text = Some(format!("{},}}", &t[..t.len() - 1])); // trailing comma
            }
            3 => {
                let tail = [" x", "{}", " }", ","][choice % 4];
                text = Some(format!("{}{tail}", object(&members, spacing)));
            }
            4 => text = Some(format!("[{}]", object(&members, spacing))),
            5 => {
                let i = find(&members, "event_type");
                members[i].1 =
                    [r#""refund""#, r#""Purchase""#, "5", "null", r#""""#][choice % 5].to_string();
            }
            6 => {
                let required: &[&str] = if event == Kind::Purchase {
                    &["event_type", "timestamp", "id", "amount"]
                } else {
                    &["event_type", "timestamp", "id1", "id2"]
                };
                let i = find(&members, required[choice % 4]);
                members.remove(i);
            }
            7 => {
                let i = choice % members.len();
                let (k, v) = members[i].clone();
                let name: String = serde_json::from_str(&k).unwrap();
                let k = if (choice / 16).is_multiple_of(2) {
                    k
                } else {
                    escaped_first(&name)
                };
                members.insert((choice / 32) % (members.len() + 1), (k, v));
            }
            8 => {
                let i = find(&members, "timestamp");
                members[i].1 = BAD_TIMES[choice % BAD_TIMES.len()].to_string();
            }
            9 => {
                let i = find(&members, "amount");
                members[i].1 = BAD_AMOUNTS[choice % BAD_AMOUNTS.len()].to_string();
            }
            10 => {
                let name = match event {
                    Kind::Purchase => "id",
                    _ if choice.is_multiple_of(2) => "id1",
                    _ => "id2",
                };
                let i = find(&members, name);
                members[i].1 = BAD_IDS[choice % BAD_IDS.len()].to_string();
            }
            // Raw bytes that JSON forbids inside a string: invalid UTF-8, control characters.
            11 | 12 => {
                let bad: &[u8] = [&b"\xff"[..], b"\xc3", b"\x01", b"\x1f", b"\t", b"\x00"]
                    [(choice + usize::from(dirt == 12) * 2) % 6];
                let t = object(&members, spacing);
                let mut bytes = t.as_bytes()[..t.len() - 1].to_vec();
                bytes.extend_from_slice(b", \"x\": \"a");
                bytes.extend_from_slice(bad);
                bytes.extend_from_slice(b"b\"}");
                out.extend_from_slice(&bytes);
                return;
            }
            13 => text = Some(object(&members, spacing).replace('"', "'")),
            14 => {
                out.extend_from_slice(b"\xEF\xBB\xBF"); // a byte-order mark not at the start
                out.extend_from_slice(object(&members, spacing).as_bytes());
                return;
            }
            15 => {
                let t = object(&members, spacing);
                text = Some(format!("{}, \"x\": \"\\q\"}}", &t[..t.len() - 1])); // bad escape
            }
            _ => {
                // The id spelled `07` as a JSON number: not JSON.
                let name = if event == Kind::Purchase { "id" } else { "id1" };
                let i = find(&members, name);
                members[i].1 = "07".to_string();
            }
        }
    }
    let text = text.unwrap_or_else(|| object(&members, spacing));
    let (lead, trail) = [("", ""), (" ", ""), ("\t ", "  "), ("", " \t")][pad as usize];
    out.extend_from_slice(lead.as_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(trail.as_bytes());
}

fn render_file(spec: &Spec, lines: &[LineSpec], head: &[u8], bits: &mut Bits) -> Vec<u8> {
    let mut out = Vec::new();
    if bits.take(2) == 0 {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    out.extend_from_slice(head);
    for (i, line) in lines.iter().enumerate() {
        if i > 0 || !head.is_empty() {
            // The line ending of the previous line.
            out.extend_from_slice(if line.style >> 29 == 0 {
                b"\r\n"
            } else {
                b"\n"
            });
        }
        render_line(line, spec, &mut out);
    }
    if bits.take(1) == 0 {
        out.push(b'\n');
    }
    out
}

fn render(spec: &Spec) -> Case {
    let mut bits = Bits(spec.header_style);
    let number = |v: u32, bits: &mut Bits| {
        if bits.take(1) == 0 {
            v.to_string()
        } else {
            format!("\"{v}\"")
        }
    };
    let d = number(spec.degree, &mut bits);
    let t = number(spec.tracked, &mut bits);
    let mut head = String::new();
    for _ in 0..bits.take(2) {
        head.push_str([" \n", "\n", "\t\r\n"][bits.take(2) as usize % 3]);
    }
    head.push_str(&match bits.take(2) {
        0 => format!("{{\"D\":{d}, \"T\":{t}}}"),
        1 => format!("{{ \"T\" : {t} , \"D\" : {d} }}"),
        2 => format!("{{\"D\":{d},\"T\":{t}}}\r"),
        _ => format!("  {{\"T\": {t}, \"D\": {d}}}"),
    });
    let batch = render_file(spec, &spec.batch, head.as_bytes(), &mut bits);
    let stream = render_file(spec, &spec.stream, b"", &mut bits);
    Case {
        batch,
        stream,
        config: Config {
            degree: spec.override_degree,
            tracked: spec.override_tracked,
            threads: spec.threads,
            chunk_bytes: spec.chunk_bytes,
            window: spec.window,
            // Half the cases keep as few recent purchases as scans of large networks are tried
            // with, so that scans run out and give way to ranking.
            recent: if spec.unfriend_bias.is_multiple_of(2) {
                8 * spec.override_tracked.unwrap_or(spec.tracked) as usize
            } else {
                RecentPurchases::KEEP
            },
            // The feed/recommendation lists are computed for flagged purchases in half the
            // cases: they must not change any decision.
            social: spec.chunk_bytes % 2 == 1,
            stop: None,
            max_line: anomaly_detect::ingest::input::MAX_LINE,
            release_memory: anomaly_detect::config::keep_memory,
        },
    }
}

fn cases() -> impl Strategy<Value = Case> {
    spec().prop_map(|s| render(&s))
}

// ---------------------------------------------------------------------------------------------
// The tests.

proptest! {
    // PROPTEST_CASES=100000 for a long soak.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1024),
        ..ProptestConfig::default()
    })]

    #[test]
    fn pipeline_matches_the_model(case in cases()) {
        if let Err(difference) = compare(&case) {
            prop_assert!(false, "{}", difference);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Snapshots: a replay saved part way through the stream, restored into a fresh state and fed
// the rest of the stream, decides as one that never stopped.

/// Every decision of a replay: the checks, the flagged lines, the feed and recommendations.
struct Decisions {
    checks: Recorder,
    feed: SocialLines<Vec<u8>>,
    recommend: SocialLines<Vec<u8>>,
}

impl Decisions {
    fn new() -> Self {
        Decisions {
            checks: Recorder {
                checks: Vec::new(),
                lines: Vec::new(),
                out: FlaggedLines::new(Vec::new()),
            },
            feed: SocialLines::new(Vec::new(), SocialList::Feed),
            recommend: SocialLines::new(Vec::new(), SocialList::Recommend),
        }
    }

    /// The checks, the lines checked, the flagged output, the feed and the recommendations.
    fn all(self) -> (Vec<model::Check>, Vec<Vec<u8>>, [Vec<u8>; 3]) {
        let outputs = [
            self.checks.out.into_inner(),
            self.feed.into_inner(),
            self.recommend.into_inner(),
        ];
        (self.checks.checks, self.checks.lines, outputs)
    }
}

impl Sink for Decisions {
    type Error = io::Error;

    fn checked(&mut self, p: &Checked<'_>) -> io::Result<bool> {
        self.checks.checked(p)?;
        self.feed.checked(p)?;
        self.recommend.checked(p)
    }
}

/// The stream cut after its `cut`-th line end (counted modulo the line ends, plus one for
/// a cut before the first line), or a later one: a rest that started with a byte-order mark
/// would read a line the whole stream skips (a mark is dropped only at a file's start).
fn cut_stream(stream: &[u8], cut: usize) -> (Vec<u8>, Vec<u8>) {
    let ends: Vec<usize> = std::iter::once(0)
        .chain(memchr::memchr_iter(b'\n', stream).map(|at| at + 1))
        .collect();
    let at = ends[cut % ends.len()..]
        .iter()
        .copied()
        .find(|&at| at == 0 || !stream[at..].starts_with(b"\xEF\xBB\xBF"))
        .unwrap_or(stream.len());
    (stream[..at].to_vec(), stream[at..].to_vec())
}

/// Replays the batch and `first` at `config`, and returns the snapshot then saved.
fn snapshot_after(batch: &[u8], first: &[u8], config: &Config, sink: &mut Decisions) -> Vec<u8> {
    let batch = LogFile::from_bytes("batch_log.json", batch.to_vec());
    let first = LogFile::from_bytes("stream_log.json", first.to_vec());
    let mut skips = SkipLog::new(Box::new(io::sink()), false);
    let hidden = Progress::hidden();
    let mapped = |log| ChunkSource::Mapped { log, from: 0 };
    let mut replay = Replay::batch(mapped(&batch), config, &mut skips, &hidden).expect("the batch");
    let mut checks = replay.single_check(sink);
    replay
        .stream(mapped(&first), &mut checks, &mut skips, &hidden)
        .expect("the stream's first part");
    let mut saved = Vec::new();
    replay.save(&mut saved).expect("saved");
    saved
}

/// Restores `saved` at `config` and replays `rest` from there; returns the snapshot the
/// restored replay saves at once, before the rest.
fn replay_restored(saved: &[u8], rest: &[u8], config: &Config, sink: &mut Decisions) -> Vec<u8> {
    let rest = LogFile::from_bytes("stream_log.json", rest.to_vec());
    let mut skips = SkipLog::new(Box::new(io::sink()), false);
    let restored = snapshot::restore(&mut &saved[..]).expect("restored");
    let mut replay = Replay::from_snapshot(restored, config).expect("a restored replay");
    let mut again = Vec::new();
    replay.save(&mut again).expect("saved again");
    let mut checks = replay.single_check(sink);
    replay
        .stream(
            ChunkSource::Mapped {
                log: &rest,
                from: 0,
            },
            &mut checks,
            &mut skips,
            &Progress::hidden(),
        )
        .expect("the stream's rest");
    again
}

/// Cuts the case's stream after line end `cut`; replays the first part at 1, 2 and 8 threads,
/// saving a snapshot after it; restores it and replays the rest at 1, 2 and 8 threads. Every
/// decision equals one uninterrupted replay's, and every snapshot holds the same bytes.
fn compare_restarted(case: &Case, cut: usize) -> Result<(), String> {
    let config = Config {
        social: true,
        ..case.config.clone()
    };
    let mut whole = Decisions::new();
    let mut skips = SkipLog::new(Box::new(io::sink()), false);
    anomaly_detect::replay::replay(
        &LogFile::from_bytes("batch_log.json", case.batch.clone()),
        &LogFile::from_bytes("stream_log.json", case.stream.clone()),
        &config,
        &mut whole,
        &mut skips,
    )
    .map_err(|e| e.to_string())?;
    let expected = whole.all();
    let (first, rest) = cut_stream(&case.stream, cut);
    let mut saved: Option<Vec<u8>> = None;
    for threads in [1, 2, 8] {
        let at = Config {
            threads,
            ..config.clone()
        };
        let mut before = Decisions::new();
        let snapshot = snapshot_after(&case.batch, &first, &at, &mut before);
        match &saved {
            Some(saved) if *saved != snapshot => {
                return Err(format!("the snapshot at {threads} threads differs"));
            }
            _ => saved = Some(snapshot),
        }
        let saved = saved.as_deref().expect("saved");
        let mut after = Decisions::new();
        let again = replay_restored(saved, &rest, &at, &mut after);
        if again != saved {
            return Err(format!(
                "a restored state saves other bytes ({threads} threads)"
            ));
        }
        let (mut checks, mut lines, mut outputs) = before.all();
        let (more_checks, more_lines, more_outputs) = after.all();
        checks.extend(more_checks);
        lines.extend(more_lines);
        for (output, more) in outputs.iter_mut().zip(more_outputs) {
            output.extend(more);
        }
        for (i, (e, a)) in expected.0.iter().zip(&checks).enumerate() {
            if e != a {
                return Err(format!(
                    "{threads} threads, check #{i}: expected {e:?}, got {a:?}"
                ));
            }
        }
        if expected.0.len() != checks.len() || expected.1 != lines {
            return Err(format!("{threads} threads: other checks"));
        }
        for (name, e, a) in [
            ("flagged", &expected.2[0], &outputs[0]),
            ("feed", &expected.2[1], &outputs[1]),
            ("recommend", &expected.2[2], &outputs[2]),
        ] {
            if e != a {
                return Err(format!(
                    "{threads} threads, {name} differs:\nexpected:\n{}\ngot:\n{}",
                    String::from_utf8_lossy(e),
                    String::from_utf8_lossy(a)
                ));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_replay_restored_from_a_snapshot_decides_as_one_that_never_stopped(
        case in cases(),
        cut in any::<usize>(),
    ) {
        if let Err(difference) = compare_restarted(&case, cut) {
            prop_assert!(false, "{}", difference);
        }
    }
}

/// The comparison means something only if the generated logs flag purchases, fill baselines
/// beyond `T`, and contain dirty lines: measured on a fixed sample of the same generator.
#[test]
fn generated_logs_flag_purchases_and_fill_the_window() {
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = cases();
    let total = 200;
    let (mut with_flags, mut checks, mut flagged, mut full, mut skipped) = (0, 0, 0, 0, 0);
    let mut sizes = [0usize; 4]; // N = 0, N = 1, 2 <= N < T, N = T
    for _ in 0..total {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let outcome = compare(&case).unwrap_or_else(|d| panic!("{d}\n{case:?}"));
        let n_flagged = outcome.checks.iter().filter(|c| c.flagged).count();
        with_flags += usize::from(n_flagged > 0);
        flagged += n_flagged;
        checks += outcome.checks.len();
        full += outcome
            .network_purchases
            .iter()
            .filter(|&&n| n as u128 > outcome.tracked)
            .count();
        skipped += outcome.skipped;
        for c in &outcome.checks {
            sizes[match c.n {
                0 => 0,
                1 => 1,
                n if n < outcome.tracked => 2,
                _ => 3,
            }] += 1;
        }
    }
    eprintln!(
        "{with_flags}/{total} cases flag something; {flagged}/{checks} stream purchases \
         flagged; {full} checks had more than T network purchases; {skipped} lines skipped; \
         baselines with N = 0, 1, 2..T-1, T: {sizes:?}"
    );
    assert!(
        with_flags * 2 > total,
        "only {with_flags}/{total} cases flag"
    );
    assert!(full * 10 > checks, "windows rarely full: {full}/{checks}");
    assert!(skipped > total * 5, "too few dirty lines: {skipped}");
    // N = 1 is naturally rare (a network with exactly one purchase); the others are common.
    assert!(sizes[1] > 0, "no baseline of one purchase: {sizes:?}");
    assert!(
        [sizes[0], sizes[2], sizes[3]]
            .iter()
            .all(|&k| k * 20 > checks),
        "some baseline sizes are rare: {sizes:?}"
    );
}

// The official example (insight_testsuite/tests/test_1), through both.
const TEST_1_BATCH: &str = r#"{"D":"3", "T":"50"}
{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "1", "amount": "16.83"}
{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "1", "amount": "59.28"}
{"event_type":"befriend", "timestamp":"2017-06-13 11:33:01", "id1": "1", "id2": "2"}
{"event_type":"befriend", "timestamp":"2017-06-13 11:33:01", "id1": "3", "id2": "1"}
{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "1", "amount": "11.20"}
{"event_type":"unfriend", "timestamp":"2017-06-13 11:33:01", "id1": "1", "id2": "3"}"#;
const TEST_1_STREAM: &str = r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:02", "id": "2", "amount": "1601.83"}"#;
const TEST_1_FLAGGED: &str = r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:02", "id": "2", "amount": "1601.83", "mean": "29.10", "sd": "21.46"}"#;

fn fixed_case(batch: &str, stream: &str, threads: usize, chunk_bytes: usize) -> Case {
    Case {
        batch: batch.as_bytes().to_vec(),
        stream: stream.as_bytes().to_vec(),
        config: Config {
            degree: None,
            tracked: None,
            threads,
            chunk_bytes,
            window: 1,
            recent: RecentPurchases::KEEP,
            social: false,
            stop: None,
            max_line: anomaly_detect::ingest::input::MAX_LINE,
            release_memory: anomaly_detect::config::keep_memory,
        },
    }
}

#[test]
fn official_example_through_both() {
    for (threads, chunk_bytes) in [(1, 1 << 20), (1, 1), (8, 7)] {
        let case = fixed_case(TEST_1_BATCH, TEST_1_STREAM, threads, chunk_bytes);
        let outcome = compare(&case).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(outcome.output, format!("{TEST_1_FLAGGED}\n").into_bytes());
        assert_eq!(outcome.checks.len(), 1);
        assert_eq!(outcome.checks[0].n, 3);
        assert_eq!(
            (outcome.checks[0].mean_cents, outcome.checks[0].sd_cents),
            (Some(2910), Some(2146))
        );
    }
}

#[test]
fn official_example_with_crlf_bom_and_dirt() {
    let batch = format!(
        "\u{feff}\r\n  \n{}\r\n",
        TEST_1_BATCH
            .replace('\n', "\r\n\nnot json\r\n")
            .replace("\"11.20\"", "11.2")
            .replace("\"1\"", "1")
    );
    let stream = format!(
        "\u{feff}{{\"event_type\":\"purchase\", \"timestamp\":\"2017-06-13 11:33:02\", \"id\": \"2\", \"id\": \"2\", \"amount\": \"1601.83\"}}\n\t{TEST_1_STREAM} \r\n"
    );
    for (threads, chunk_bytes) in [(1, 1 << 20), (2, 3), (8, 1)] {
        let case = fixed_case(&batch, &stream, threads, chunk_bytes);
        let outcome = compare(&case).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(outcome.output, format!("{TEST_1_FLAGGED}\n").into_bytes());
        assert_eq!(outcome.checks.len(), 1);
        assert_eq!(outcome.checks[0].line_no, 2);
    }
}

/// Model self-checks on spec examples, so that a wrong model cannot agree with a wrong program.
#[test]
fn model_follows_the_spec_examples() {
    let purchase = |id: &str, amount: &str| {
        format!(
            r#"{{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": {id}, "amount": {amount}}}"#
        )
    };
    let cents = |amount: &str| match model::parse_event(purchase("\"1\"", amount).as_bytes()) {
        Some(model::Event::Purchase { cents, .. }) => Some(cents),
        _ => None,
    };
    assert_eq!(cents(r#""16.8""#), Some(1680));
    assert_eq!(cents(r#""16""#), Some(1600));
    assert_eq!(cents("16.83"), Some(1683));
    assert_eq!(cents(r#""007.50""#), Some(750));
    assert_eq!(cents(r#""1000000000.00""#), Some(100_000_000_000));
    for bad in [
        r#""1e3""#,
        r#""12.345""#,
        r#""-1""#,
        r#"".5""#,
        r#""+5""#,
        r#""""#,
        "16.830",
        r#""1000000000.01""#,
    ] {
        assert_eq!(cents(bad), None, "{bad}");
    }
    let id = |id: &str| match model::parse_event(purchase(id, "1").as_bytes()) {
        Some(model::Event::Purchase { id, .. }) => Some(id),
        _ => None,
    };
    assert_eq!(id(r#""7""#).as_deref(), Some("7"));
    assert_eq!(id("7").as_deref(), Some("7"));
    assert_eq!(id(r#""\u0037""#).as_deref(), Some("7"));
    assert_eq!(id("-7").as_deref(), Some("-7"));
    assert_eq!(id(r#""07""#).as_deref(), Some("07"));
    assert_eq!(
        id("123456789012345678901234567890").as_deref(),
        Some("123456789012345678901234567890")
    );
    for bad in ["7.0", r#""""#, "null", "{}"] {
        assert_eq!(id(bad), None, "{bad}");
    }
    let dup = r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "1", "\u0069d": "1", "amount": "1"}"#;
    assert_eq!(model::parse_event(dup.as_bytes()), None);
    assert!(model::valid_timestamp("2016-02-29 23:59:59"));
    assert!(!model::valid_timestamp("2017-02-29 23:59:59"));
    assert!(!model::valid_timestamp("2017-02-30 00:00:00"));
    assert!(!model::valid_timestamp("2017-06-13 11:33:60"));
    assert_eq!(
        model::lines(b"\xEF\xBB\xBF a\r\n\n\tb \r"),
        vec![&b"a"[..], b"", b"b"]
    );
}

/// The bundled example (`log_input/`, made by `gen-log`) through the model and the pipeline at
/// several thread counts and window sizes: its flagged purchases are the model's.
#[test]
fn bundled_example_through_both() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/log_input");
    let batch = std::fs::read(format!("{dir}/batch_log.json")).expect("log_input/batch_log.json");
    let stream =
        std::fs::read(format!("{dir}/stream_log.json")).expect("log_input/stream_log.json");
    for (threads, window) in [(1, 1), (2, 1), (2, 7), (8, 64), (2, DEFAULT_WINDOW)] {
        let case = Case {
            batch: batch.clone(),
            stream: stream.clone(),
            config: Config {
                degree: None,
                tracked: None,
                threads,
                chunk_bytes: 4096,
                window,
                recent: RecentPurchases::KEEP,
                social: threads == 2,
                stop: None,
                max_line: anomaly_detect::ingest::input::MAX_LINE,
                release_memory: anomaly_detect::config::keep_memory,
            },
        };
        let outcome = compare(&case).unwrap_or_else(|d| panic!("{d}"));
        let flagged = outcome.checks.iter().filter(|c| c.flagged).count();
        assert!(
            flagged >= 3,
            "the example should flag a few purchases, got {flagged}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Celebrities: users whose friend lists grow past the graph's index threshold and shrink back
// below the point where the index is dropped, in the batch and in the stream's windows.

/// A celebrity-shaped case from `seed`: two hubs (`"h1"`, and `"h2"` written as `"\u0068\u0032"`)
/// befriend ordinary users (`"1"`..) by the hundred and lose them again, in turn, while ordinary
/// users and the hubs buy; the stream keeps churning the hubs (unfriend storms inside windows)
/// between the checks. Also returns, per hub, the most friends it had and the fewest it had
/// after it had more than `INDEX_ABOVE`.
fn celebrity_case(
    seed: u64,
    threads: usize,
    window: usize,
    chunk_bytes: usize,
) -> (Case, [(usize, usize); 2]) {
    use anomaly_detect::state::graph::INDEX_ABOVE;
    let mut x = seed | 1;
    let mut below = move |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let users = INDEX_ABOVE + 100 + below(100);
    let hubs = ["\"h1\"", "\"\\u0068\\u0032\""];
    let mut friends: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    let mut extremes = [(0, usize::MAX); 2];
    let time = |below: &mut dyn FnMut(usize) -> usize| TIMES[below(TIMES.len())];
    let line = |kind: &str, ts: &str, ids: String| {
        format!(r#"{{"event_type":"{kind}", "timestamp":"{ts}", {ids}}}"#)
    };
    let pair = |a: &str, b: &str| format!(r#""id1": {a}, "id2": {b}"#);
    let amount = |below: &mut dyn FnMut(usize) -> usize| match below(40) {
        0 => format!("{}.00", 1_000 + below(9_000)),
        _ => format!("{}.{:02}", 10 + below(50), below(100)),
    };
    // One event: `grow` (which hub grows, or shrinks with `false`), `stream` for more checks.
    let mut event =
        |hub: usize, grow: bool, stream: bool, below: &mut dyn FnMut(usize) -> usize| {
            let ts = time(below);
            let roll = below(100);
            let buys = if stream { 40 } else { 10 };
            if roll < buys {
                let buyer = match below(20) {
                    0 => hubs[below(2)].to_string(),
                    1..=9 if !friends[hub].is_empty() => {
                        format!("\"{}\"", friends[hub][below(friends[hub].len())])
                    }
                    _ => format!("\"{}\"", 1 + below(users)),
                };
                return line(
                    "purchase",
                    ts,
                    format!(r#""id": {buyer}, "amount": "{}""#, amount(below)),
                );
            }
            if roll < buys + 6 {
                let (a, b) = (1 + below(users), 1 + below(users));
                let kind = ["befriend", "unfriend"][below(2)];
                return line(kind, ts, pair(&format!("\"{a}\""), &format!("{b}")));
            }
            let list = &mut friends[hub];
            let befriend = grow == (below(10) < 9) || list.is_empty();
            let (kind, friend) = if befriend {
                // Mostly a user who is not a friend yet: the list grows by one.
                let mut f = 1 + below(users);
                for _ in 0..8 {
                    if !list.contains(&f) {
                        break;
                    }
                    f = 1 + below(users);
                }
                if !list.contains(&f) {
                    list.push(f);
                }
                ("befriend", f)
            } else {
                let at = below(list.len());
                ("unfriend", list.swap_remove(at))
            };
            let (most, fewest) = &mut extremes[hub];
            *most = (*most).max(list.len());
            if *most > INDEX_ABOVE {
                *fewest = (*fewest).min(list.len());
            }
            let (hub, friend) = (hubs[hub], friend.to_string());
            match below(2) {
                0 => line(kind, ts, pair(hub, &format!("\"{friend}\""))),
                _ => line(kind, ts, pair(&friend, hub)),
            }
        };
    let (d, t) = (1 + below(3), 2 + below(12));
    let mut batch = vec![format!(r#"{{"D":"{d}", "T":"{t}"}}"#)];
    // Grow h1, grow h2, shrink h1, grow h1 again: each phase some 380 hub changes.
    for (hub, grow) in [(0, true), (1, true), (0, false), (0, true)] {
        for _ in 0..450 {
            batch.push(event(hub, grow, false, &mut below));
        }
    }
    // The stream shrinks h1 and h2 then grows h2, with checks all along.
    let mut stream = Vec::new();
    for (hub, grow) in [(0, false), (1, false), (1, true)] {
        for _ in 0..800 {
            stream.push(event(hub, grow, true, &mut below));
        }
    }
    let case = Case {
        batch: (batch.join("\n") + "\n").into_bytes(),
        stream: (stream.join("\n") + "\n").into_bytes(),
        config: Config {
            degree: None,
            tracked: None,
            threads,
            chunk_bytes,
            window,
            recent: RecentPurchases::KEEP,
            social: seed.is_multiple_of(2),
            stop: None,
            max_line: anomaly_detect::ingest::input::MAX_LINE,
            release_memory: anomaly_detect::config::keep_memory,
        },
    };
    (case, extremes)
}

/// The celebrity cases mean something only if both hubs cross the index threshold both ways.
#[test]
fn celebrity_cases_cross_the_index_threshold_both_ways() {
    use anomaly_detect::state::graph::{INDEX_ABOVE, UNINDEX_BELOW};
    for seed in 1..=16 {
        let (_, extremes) = celebrity_case(seed, 1, 1, 4096);
        for (hub, (most, fewest)) in extremes.into_iter().enumerate() {
            assert!(
                most > INDEX_ABOVE,
                "seed {seed}, hub {hub}: at most {most} friends"
            );
            assert!(
                fewest < UNINDEX_BELOW,
                "seed {seed}, hub {hub}: at least {fewest}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse::<u32>().ok())
            .map_or(24, |n| (n / 40).max(1)),
        ..ProptestConfig::default()
    })]

    #[test]
    fn celebrities_through_the_pipeline_match_the_model(
        seed in any::<u64>(),
        threads in prop_oneof![Just(1usize), Just(2), Just(8)],
        window in prop_oneof![Just(1usize), 2usize..300, Just(DEFAULT_WINDOW)],
        chunk_bytes in prop_oneof![Just(4096usize), Just(1usize << 20)],
    ) {
        let (case, _) = celebrity_case(seed, threads, window, chunk_bytes);
        if let Err(difference) = compare(&case) {
            prop_assert!(false, "{}", difference);
        }
    }
}
