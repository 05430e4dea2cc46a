//! Invariants checked on arbitrary input, shared by the fuzz targets (`fuzz/fuzz_targets/`)
//! and the regression test that replays saved inputs (`tests/fuzz_regressions.rs`).
//!
//! - [`line_parser`]: the input is one chunk of a log. Its first byte also picks a split point.
//! - [`whole_run`]: the input is `FLAGS BATCH \0 STREAM` (no `\0`: all of it is the stream);
//!   see [`whole_run`] for the flags.

use std::io::{self, Write};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use anomaly_detect::config::Config;
use anomaly_detect::error::SkipClass;
use anomaly_detect::ingest::event::{Action, IdRef, MAX_CENTS, NOT_SMALL, small_number};
use anomaly_detect::ingest::input::LogFile;
use anomaly_detect::ingest::parse::{IdHasher, LineParser, MAX_TRACKED, ParsedChunk, parse_params};
use anomaly_detect::output::report::SkipLog;
use anomaly_detect::output::sink::FlaggedLines;
use anomaly_detect::replay::replay;
use anomaly_detect::{Baseline, Checked, Sink};

/// Start of every line of `chunk` (split at `\n`; a final line without `\n` counts) and the
/// span of the line trimmed of JSON white space (space, tab, `\r`).
fn trimmed_lines(chunk: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < chunk.len() {
        let end = chunk[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(chunk.len(), |p| at + p);
        let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
        let line = &chunk[at..end];
        out.push(match line.iter().position(|b| !ws(b)) {
            None => end..end,
            Some(first) => {
                let last = line.iter().rposition(|b| !ws(b)).unwrap_or(first);
                at + first..at + last + 1
            }
        });
        at = end + 1;
    }
    out
}

/// One event with its ids resolved, comparable across chunks.
#[derive(Debug, PartialEq, Eq)]
struct Resolved {
    line: u32,
    start: u32,
    len: u32,
    kind: u8,
    ids: Vec<Vec<u8>>,
    cents: u64,
    timestamp: u64,
}

/// Checks the bookkeeping of `parsed`, the result of parsing `body[range]`, and returns its
/// events with resolved ids and its skipped lines.
fn check_chunk(
    body: &[u8],
    range: Range<usize>,
    parsed: &ParsedChunk,
) -> (Vec<Resolved>, Vec<(u32, anomaly_detect::SkipReason)>) {
    let chunk = &body[range.clone()];
    let lines = trimmed_lines(chunk);
    assert_eq!(parsed.offset, range.start, "chunk offset");
    assert_eq!(parsed.lines as usize, lines.len(), "line count");
    let blank = lines.iter().filter(|l| l.is_empty()).count();
    assert_eq!(
        parsed.events.len() + parsed.skipped.len() + blank,
        lines.len(),
        "events + skipped + blank lines = lines"
    );
    let mut seen = vec![false; lines.len()];
    let mut mark = |line: u32| {
        let line = line as usize;
        assert!(line < lines.len(), "line index {line} out of range");
        assert!(!lines[line].is_empty(), "blank line {line} reported");
        assert!(!seen[line], "line {line} reported twice");
        seen[line] = true;
    };
    for pair in parsed.skipped.windows(2) {
        assert!(pair[0].0 < pair[1].0, "skipped line indices not increasing");
    }
    for &(line, _) in &parsed.skipped {
        mark(line);
    }
    for pair in parsed.events.windows(2) {
        assert!(
            pair[0].line < pair[1].line,
            "event line indices not increasing"
        );
    }
    let id = |r: IdRef| -> Vec<u8> {
        let end = r.start as usize + r.len as usize;
        assert!(end <= parsed.ids.len(), "id outside the arena");
        let text = parsed.id(r);
        let bytes: &[u8] = &text;
        assert!(!bytes.is_empty(), "empty id");
        let number = small_number(bytes);
        assert_eq!(
            r.number(),
            (number != NOT_SMALL).then_some(number),
            "id number"
        );
        bytes.to_vec()
    };
    let mut events = Vec::new();
    for event in &parsed.events {
        mark(event.line);
        let span = event.start as usize..event.start as usize + event.len as usize;
        assert!(span.end <= chunk.len(), "event span outside the chunk");
        assert_eq!(
            span, lines[event.line as usize],
            "event span is not the trimmed line"
        );
        let (kind, ids, cents, timestamp) = match event.action {
            Action::Purchase {
                buyer,
                cents,
                timestamp,
            } => {
                assert!(cents <= MAX_CENTS, "amount above the limit");
                (0, vec![id(buyer)], cents, timestamp.0)
            }
            Action::Befriend(a, b) => (1, vec![id(a), id(b)], 0, 0),
            Action::Unfriend(a, b) => (2, vec![id(a), id(b)], 0, 0),
        };
        events.push(Resolved {
            line: event.line,
            start: event.start,
            len: event.len,
            kind,
            ids,
            cents,
            timestamp,
        });
    }
    (events, parsed.skipped.clone())
}

/// A parser and the chunk it fills, both reused as the pipeline reuses them.
struct Parser(LineParser, ParsedChunk);

impl Parser {
    /// Parses `body[range]` and checks it.
    fn parse(
        &mut self,
        body: &[u8],
        range: Range<usize>,
    ) -> (Vec<Resolved>, Vec<(u32, anomaly_detect::SkipReason)>, u32) {
        self.0.parse_chunk(body, range.clone(), &mut self.1);
        let (events, skipped) = check_chunk(body, range, &self.1);
        (events, skipped, self.1.lines)
    }
}

/// `data` is a chunk. Parsed whole, then cut in two at a line start picked by its first byte:
/// the halves together must give what the whole gave. Also parses the tail from an arbitrary
/// byte (a chunk of its own) and the first line as a parameter line.
pub fn line_parser(data: &[u8]) {
    let mut parser = Parser(LineParser::new(IdHasher::default()), ParsedChunk::default());
    let whole = parser.parse(data, 0..data.len());
    // The parser's reused buffers must not leak into the next chunk.
    let again = parser.parse(data, 0..data.len());
    assert_eq!(whole, again, "parsing twice with one parser differs");

    let raw_split = data
        .first()
        .map_or(0, |&b| usize::from(b) * data.len() / 256);
    parser.parse(data, raw_split..data.len());
    let split = if raw_split == 0 || data[raw_split - 1] == b'\n' {
        raw_split
    } else {
        data[raw_split..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |p| raw_split + p + 1)
    };
    let (mut events, mut skipped, head_lines) = parser.parse(data, 0..split);
    let (tail_events, tail_skipped, tail_lines) = parser.parse(data, split..data.len());
    events.extend(tail_events.into_iter().map(|e| Resolved {
        line: e.line + head_lines,
        start: e.start + split as u32,
        ..e
    }));
    skipped.extend(
        tail_skipped
            .into_iter()
            .map(|(line, reason)| (line + head_lines, reason)),
    );
    assert_eq!(head_lines + tail_lines, whole.2, "split line count");
    assert_eq!(
        events, whole.0,
        "split events differ from the whole chunk's"
    );
    assert_eq!(
        skipped, whole.1,
        "split skips differ from the whole chunk's"
    );

    if let Some(first) = trimmed_lines(data).first() {
        let end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
        for line in [&data[first.clone()], &data[..end]] {
            if let Ok(params) = parse_params(line) {
                assert!(params.degree >= 1, "accepted D = 0");
                assert!(
                    (2..=MAX_TRACKED).contains(&u64::from(params.tracked)),
                    "accepted T = {}",
                    params.tracked
                );
            }
        }
    }
}

/// Parameter lines that [`whole_run`] may put before the batch.
pub const PARAMS: [&[u8]; 4] = [
    br#"{"D":"1", "T":"2"}"#,
    br#"{"D":2,"T":3}"#,
    br#"{"D":"3", "T":"50"}"#,
    br#" {"T":"2", "D":"99999999999999999999"}"#,
];

/// A writer into a shared buffer, for the skip messages.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One checked stream purchase.
#[derive(Debug, PartialEq, Eq)]
struct Check {
    line_no: u64,
    line: Vec<u8>,
    cents: u64,
    baseline: Baseline,
    flagged: bool,
}

/// Every check the replay made, and the output file's bytes.
struct Recorder<'a> {
    stream: &'a [u8],
    lines: Vec<Range<usize>>,
    checks: Vec<Check>,
    out: FlaggedLines<Vec<u8>>,
}

impl Sink for Recorder<'_> {
    type Error = io::Error;

    fn checked(&mut self, p: &Checked<'_>) -> io::Result<bool> {
        let index = usize::try_from(p.line_no()).unwrap() - 1;
        assert_eq!(
            p.line(),
            &self.stream[self.lines[index].clone()],
            "checked line is not the trimmed stream line {}",
            p.line_no()
        );
        assert!(
            p.line().starts_with(b"{") && p.line().ends_with(b"}"),
            "checked line is not an object"
        );
        if let Some(last) = self.checks.last() {
            assert!(last.line_no < p.line_no(), "checks out of stream order");
        }
        assert_eq!(
            p.is_flagged(),
            p.baseline().is_anomalous(p.cents()),
            "flag decision"
        );
        self.checks.push(Check {
            line_no: p.line_no(),
            line: p.line().to_vec(),
            cents: p.cents(),
            baseline: p.baseline(),
            flagged: p.is_flagged(),
        });
        self.out.checked(p)
    }
}

/// What one configuration produced: the checks, output bytes, skip messages and the summary's
/// flagged count, skip counts, users and friendships.
type Outcome = (Vec<Check>, Vec<u8>, Vec<u8>, Summary);
type Summary = (u64, Vec<(SkipClass, u64)>, usize, usize);

fn run(batch: &[u8], stream: &[u8], config: &Config) -> Result<Outcome, String> {
    let batch = LogFile::from_bytes("batch_log.json", batch.to_vec());
    let stream = LogFile::from_bytes("stream_log.json", stream.to_vec());
    let messages = Shared::default();
    let mut skips = SkipLog::new(Box::new(messages.clone()), false);
    let mut sink = Recorder {
        stream: stream.body(),
        lines: trimmed_lines(stream.body()),
        checks: Vec::new(),
        out: FlaggedLines::new(Vec::new()),
    };
    let summary =
        replay(&batch, &stream, config, &mut sink, &mut skips).map_err(|e| e.to_string())?;
    skips.finish();
    let skipped: u64 = summary.skipped.iter().map(|(_, n)| n).sum();
    assert_eq!(skipped, skips.total(), "skip counts");
    let output = sink.out.into_inner();
    let output_lines = output.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(output_lines, summary.flagged, "flagged count");
    let flagged = sink.checks.iter().filter(|c| c.flagged).count() as u64;
    assert_eq!(flagged, summary.flagged, "flagged checks");
    let messages = std::mem::take(&mut *messages.0.lock().unwrap());
    let summary = (
        summary.flagged,
        summary.skipped,
        summary.users,
        summary.friendships,
    );
    Ok((sink.checks, output, messages, summary))
}

/// `data` is `FLAGS BATCH \0 STREAM`, or `FLAGS STREAM` when it holds no `\0`. FLAGS bit 0:
/// put a valid parameter line before the batch, bits 1-2 pick it from [`PARAMS`]; bits 3-4
/// pick the small chunk size; bit 5 overrides `D` with 2, bit 6 overrides `T` with 3.
/// Replays at one thread with big chunks, then at one and two threads with small chunks and
/// windows of 1 and 8192: every run must give the same checks, output, skip messages and
/// summary, or all must fail with the same fatal error.
pub fn whole_run(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (batch_part, stream) = match rest.iter().position(|&b| b == 0) {
        Some(p) => (&rest[..p], &rest[p + 1..]),
        None => (&rest[..0], rest),
    };
    let mut batch = Vec::new();
    if flags & 1 != 0 {
        batch.extend_from_slice(PARAMS[usize::from(flags >> 1 & 3)]);
        batch.push(b'\n');
    }
    batch.extend_from_slice(batch_part);
    let small = [1, 16, 64, 256][usize::from(flags >> 3 & 3)];
    let base = Config {
        degree: (flags & 0x20 != 0).then_some(2),
        tracked: (flags & 0x40 != 0).then_some(3),
        threads: 1,
        chunk_bytes: 1 << 20,
        window: 8192,
        ..Config::default()
    };
    let reference = run(&batch, stream, &base);
    against_model(&batch, stream, &base, &reference);
    for (threads, window) in [(1, 1), (2, 1), (2, 8192)] {
        let config = Config {
            threads,
            window,
            chunk_bytes: small,
            ..base.clone()
        };
        let got = run(&batch, stream, &config);
        match (&reference, &got) {
            (Ok(want), Ok(got)) => {
                assert_eq!(want.0, got.0, "checks differ at {config:?}");
                assert_eq!(want.1, got.1, "output differs at {config:?}");
                assert_eq!(want.2, got.2, "skip messages differ at {config:?}");
                assert_eq!(want.3, got.3, "summary differs at {config:?}");
            }
            (Err(want), Err(got)) => assert_eq!(want, got, "fatal errors differ at {config:?}"),
            _ => panic!(
                "one thread with big chunks gave {:?}, {config:?} gave {:?}",
                reference.as_ref().map(|_| "Ok"),
                got.as_ref().map(|_| "Ok")
            ),
        }
    }
}

/// Whether the naive model (`tests/model`, `serde_json` underneath) can judge these logs: it
/// refuses numbers beyond the `f64` range (`1e400`, 400 digits) and nesting deeper than 128,
/// which the program accepts. Scans number-like runs and brackets, strings included
/// (rejecting too much only costs an oracle check).
fn model_can_judge(logs: &[&[u8]]) -> bool {
    logs.iter().all(|log| {
        let mut depth = 0usize;
        let mut deepest = 0;
        for &b in log.iter() {
            match b {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth = depth.saturating_sub(1),
                b'\n' => depth = 0,
                _ => {}
            }
            deepest = deepest.max(depth);
        }
        let huge = log
            .split(|b| !matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'))
            .filter_map(|run| std::str::from_utf8(run).ok())
            .any(|run| run.parse::<f64>().is_ok_and(f64::is_infinite));
        deepest < 120 && !huge
    })
}

/// Compares the run at `config` with the naive model: same checks (line, amount, baseline
/// size, mean, sd, decision), same checked lines, same output bytes, same skipped count; a
/// fatal error exactly when the model finds no valid parameter line.
fn against_model(batch: &[u8], stream: &[u8], config: &Config, got: &Result<Outcome, String>) {
    use crate::model;
    if !model_can_judge(&[batch, stream]) {
        return;
    }
    let header = model::lines(batch).into_iter().find(|l| !l.is_empty());
    let params = header.and_then(model::parse_params);
    let got = match (params, got) {
        (None, Err(_)) => return,
        (Some(_), Ok(got)) => got,
        (params, got) => panic!(
            "the model reads the parameters as {params:?}, the program gives {:?}",
            got.as_ref().map(|_| "Ok")
        ),
    };
    let want = model::run(
        batch,
        stream,
        config.degree.map(u128::from),
        config.tracked.map(u128::from),
    );
    let checks: Vec<_> = got
        .0
        .iter()
        .map(|c| {
            let b = &c.baseline;
            (
                (c.line_no, u128::from(b.n), u128::from(c.cents), c.flagged),
                (b.n > 0).then(|| (b.mean_cents(), b.sd_cents())),
                c.line.clone(),
            )
        })
        .collect();
    let expected: Vec<_> = want
        .checks
        .iter()
        .zip(&want.lines)
        .map(|(c, line)| {
            (
                (c.line_no, c.n, c.cents, c.flagged),
                c.mean_cents.zip(c.sd_cents),
                line.clone(),
            )
        })
        .collect();
    assert_eq!(checks, expected, "checks differ from the model's");
    assert_eq!(got.1, want.output, "output differs from the model's");
    assert_eq!(
        got.3.1.iter().map(|(_, n)| n).sum::<u64>(),
        want.skipped as u64,
        "skipped count differs from the model's"
    );
}
