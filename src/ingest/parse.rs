//! Parsing log lines with simd-json: event lines into compact [`Event`]s, and the batch log's
//! parameter line. Numbers are judged by their literal text, never by their binary value.

use std::hash::BuildHasher;
use std::ops::Range;

use simd_json::{Buffers, INPUT_PADDING, Node, StaticNode, Tape, fill_tape_padded};

use crate::error::{SkipReason, escaped};
use crate::ingest::event::{Action, Event, IdRef, Timestamp, parse_cents, small_number_digits};
use crate::ingest::input::{Lines, MAX_LINE, trim_line};

mod plain;

/// The hasher shared by parsers and the user-id interner, seeded once per run so that
/// crafted ids cannot force collisions.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdHasher {
    seed: u64,
}

impl IdHasher {
    pub fn random() -> Self {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        IdHasher { seed }
    }
}

impl BuildHasher for IdHasher {
    type Hasher = foldhash::fast::FoldHasher<'static>;

    fn build_hasher(&self) -> Self::Hasher {
        foldhash::fast::FixedState::with_seed(self.seed).build_hasher()
    }
}

pub use crate::config::{MAX_CHUNK_BYTES, MAX_LINE_LIMIT};

/// The most bytes [`LineParser::parse_chunk`] is given at once: a chunk's end is the first
/// `\n` after its target size, within one line (a longer line becomes a piece of its own, never
/// parsed), and a block read from a pipe is a partial line plus one 64 KiB read. Below 4 GiB, so
/// that every offset, length and line index within a chunk fits the `u32`s of an [`Event`],
/// of [`IdRef`] and of [`ParsedChunk`].
pub const MAX_PARSED: usize = MAX_CHUNK_BYTES + MAX_LINE_LIMIT + (1 << 16) + 1;

const _: () = assert!(MAX_PARSED <= u32::MAX as usize);

/// The events of one chunk of a log: what the parser hands to the applier. Its `u32` offsets,
/// lengths and line indices hold because a chunk has at most [`MAX_PARSED`] bytes.
#[derive(Debug, Default)]
pub struct ParsedChunk {
    /// Byte offset of the chunk in the log body, and its length.
    pub offset: usize,
    pub len: usize,
    /// Number of lines in the chunk (a final line without `\n` counts).
    pub lines: u32,
    pub events: Vec<Event>,
    /// Arena holding the bytes of every user id named by `events`.
    pub ids: Vec<u8>,
    /// Skipped lines: chunk-local line index and reason.
    pub skipped: Vec<(u32, SkipReason)>,
}

impl ParsedChunk {
    /// The text of an id of this chunk.
    pub fn id(&self, id: IdRef) -> IdText<'_> {
        match id.number() {
            Some(number) => {
                let (digits, len) = small_number_digits(number);
                IdText::Digits(digits, len)
            }
            None => IdText::Stored(self.stored_id(id)),
        }
    }

    /// The bytes of an id that is not a small number, from the chunk's id arena.
    #[inline]
    pub fn stored_id(&self, id: IdRef) -> &[u8] {
        &self.ids[id.start as usize..(id.start + id.len) as usize]
    }

    /// Makes this the chunk of one line longer than `max_line` at `range`, skipped unread.
    pub fn one_too_long_line(&mut self, range: Range<usize>, max_line: usize) {
        self.clear();
        self.offset = range.start;
        self.len = range.len();
        self.lines = 1;
        self.skipped.push((0, SkipReason::LineTooLong(max_line)));
    }

    fn clear(&mut self) {
        self.lines = 0;
        self.events.clear();
        self.ids.clear();
        self.skipped.clear();
    }
}

/// The text of a parsed id: stored in the chunk's arena, or the digits of a small number.
#[derive(Debug, Clone, Copy)]
pub enum IdText<'a> {
    Stored(&'a [u8]),
    Digits([u8; 8], usize),
}

impl std::ops::Deref for IdText<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            IdText::Stored(bytes) => bytes,
            IdText::Digits(digits, len) => &digits[..*len],
        }
    }
}

/// A reusable line parser: simd-json buffers, tape and a padded copy of the current chunk.
pub struct LineParser {
    buffers: Buffers,
    tape: Tape<'static>,
    scratch: Vec<u8>,
    hasher: IdHasher,
    /// The shapes of the plain lines read lately.
    shapes: plain::Shapes,
    /// Longer lines are skipped as too long, unread.
    max_line: usize,
    /// Called once a huge line's buffers are dropped (see [`Self::set_release_memory`]).
    release_memory: fn(),
}

impl LineParser {
    pub fn new(hasher: IdHasher) -> Self {
        LineParser {
            buffers: fresh_buffers(),
            tape: Tape(Vec::new()),
            scratch: Vec::new(),
            hasher,
            shapes: plain::Shapes::default(),
            max_line: MAX_LINE,
            release_memory: crate::config::keep_memory,
        }
    }

    /// Sets what is called after a line over 1 MiB is parsed and the buffers it grew are
    /// dropped: the program's allocator may hand the freed pages back to the system then (see
    /// [`crate::config::Config::release_memory`]). By default nothing is called.
    pub fn set_release_memory(&mut self, release: fn()) {
        self.release_memory = release;
    }

    /// Sets the longest line parsed (default [`MAX_LINE`], at most [`MAX_LINE_LIMIT`]); longer
    /// ones are skipped unread.
    pub fn set_max_line(&mut self, max_line: usize) {
        self.max_line = max_line.min(MAX_LINE_LIMIT);
    }

    /// Parses the lines of `body[range]` (which starts at a line start) into `out`.
    pub fn parse_chunk(&mut self, body: &[u8], range: Range<usize>, out: &mut ParsedChunk) {
        out.clear();
        // Room for the chunk's events at once: grown by doubling instead, the event lists of
        // the chunks in flight left about 12 MB of freed blocks in the workers' heaps, fresh
        // pages that a virtual machine's host may charge a fault for (docs/performance.md,
        // "How to reproduce", `--memory`). Lines are rarely shorter than 64 bytes; a huge line reserves no more than
        // a usual chunk needs.
        out.events.reserve((range.len() / 64).min(EVENTS_RESERVED));
        out.offset = range.start;
        out.len = range.len();
        // What makes the narrowings to `u32` below exact (see `MAX_PARSED`).
        debug_assert!(
            range.len() <= MAX_PARSED,
            "a chunk of {} bytes",
            range.len()
        );
        let chunk = &body[range];
        let mut members: EventMembers<'_> = [None; 6];
        for (index, line) in Lines::new(chunk).enumerate() {
            out.lines = index as u32 + 1;
            if line.len() > self.max_line {
                out.skipped
                    .push((index as u32, SkipReason::LineTooLong(self.max_line)));
                continue;
            }
            let (start, len) = trim_line(chunk, line);
            if len == 0 {
                continue;
            }
            let raw = &chunk[start..start + len];
            // Plain lines (the usual shape) are read directly; simd-json parses every other
            // line, and decides what is wrong with it.
            let parsed = match self.shapes.members(raw, &mut members) {
                Some(()) => {
                    event_fields(raw, &members).map(|f| f.into_action(&self.hasher, &mut out.ids))
                }
                None => self.parse_json(raw, &mut out.ids),
            };
            match parsed {
                Ok(action) => out.events.push(Event {
                    line: index as u32,
                    start: start as u32,
                    len: len as u32,
                    action,
                }),
                Err(reason) => out.skipped.push((index as u32, reason)),
            }
        }
    }

    /// Parses one line with simd-json, storing its ids in `arena`.
    pub fn parse_json(&mut self, raw: &[u8], arena: &mut Vec<u8>) -> Result<Action, SkipReason> {
        let huge = raw.len() > HUGE_LINE;
        // One huge line at a time across all workers: simd-json's buffers take tens of bytes
        // per structural character, and hostile lines must not multiply that by the workers.
        let _one_at_a_time = huge.then(|| {
            HUGE_LINE_PARSE
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        });
        // simd-json unescapes strings in place: parse a padded copy, never the input itself.
        self.scratch.clear();
        self.scratch.extend_from_slice(raw);
        self.scratch.resize(raw.len() + INPUT_PADDING, b' ');
        let mut parsed = self.parse_copy(raw, arena);
        if matches!(parsed, Err(SkipReason::NotJson(_))) {
            // simd-json refuses numbers beyond f64 (a 400-digit id, `1e400`), which JSON
            // allows; numbers are judged by their literal text anyway, so blank them out
            // in the copy and try once more.
            let copy = &mut self.scratch[..raw.len()];
            copy.copy_from_slice(raw);
            if blank_numbers(copy) {
                parsed = self.parse_copy(raw, arena);
            }
        }
        if huge {
            // simd-json keeps buffers sized for the longest line (tens of bytes per structural
            // character): give back what a huge line took, and its copy.
            self.tape = Tape(Vec::new());
            self.buffers = fresh_buffers();
            self.scratch = Vec::new();
            // The program's allocator may keep the freed pages for a while, and a run of huge
            // lines would stack up: it may hand them back to the system now.
            (self.release_memory)();
        }
        parsed
    }

    /// Parses the copy of `raw` at the start of `scratch`, storing its ids in `arena`.
    fn parse_copy(&mut self, raw: &[u8], arena: &mut Vec<u8>) -> Result<Action, SkipReason> {
        // The tape borrows this line's copy only: take it with a fresh lifetime.
        let mut tape = std::mem::replace(&mut self.tape, Tape(Vec::new())).reset();
        let parsed = parse_event(&mut self.scratch, raw, &mut self.buffers, &mut tape)
            .map(|fields| fields.into_action(&self.hasher, arena));
        self.tape = tape.reset();
        parsed
    }
}

/// Lines longer than this leave no buffers behind them, and are parsed one at a time.
const HUGE_LINE: usize = 1 << 20;

/// Held while a line longer than [`HUGE_LINE`] is parsed.
static HUGE_LINE_PARSE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Deepest nesting accepted inside an extra key's value, the same for an event line and the
/// parameter line: `"x": [[1]]` nests 2 levels; 65 536 levels are read, 65 537 make the line
/// `not valid JSON`. Far beyond any real log, while a line of ten million `[` is refused
/// before its parse stack takes hundreds of megabytes.
pub const MAX_DEPTH: usize = 1 << 16;

/// The parser's depth limit: the line's own object is one level more than its values' nesting.
const PARSER_DEPTH: usize = MAX_DEPTH + 1;

fn fresh_buffers() -> Buffers {
    Buffers::with_max_depth(4096, PARSER_DEPTH)
}

/// The fields of a valid event, borrowing from the parsed line.
enum Fields<'a> {
    Purchase {
        buyer: &'a [u8],
        cents: u64,
        timestamp: Timestamp,
    },
    Befriend(&'a [u8], &'a [u8]),
    Unfriend(&'a [u8], &'a [u8]),
}

impl Fields<'_> {
    fn into_action(self, hasher: &IdHasher, arena: &mut Vec<u8>) -> Action {
        let mut id = |bytes: &[u8]| IdRef::new(bytes, arena, |bytes| hasher.hash_one(bytes));
        match self {
            Fields::Purchase {
                buyer,
                cents,
                timestamp,
            } => Action::Purchase {
                buyer: id(buyer),
                cents,
                timestamp,
            },
            Fields::Befriend(a, b) => Action::Befriend(id(a), id(b)),
            Fields::Unfriend(a, b) => Action::Unfriend(id(a), id(b)),
        }
    }
}

/// A wanted member of the top-level object: its ordinal and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member<'a> {
    pub ordinal: usize,
    pub value: Value<'a>,
}

/// A member's value, as far as event fields care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// A string, unescaped.
    Str(&'a [u8]),
    /// A number, by its literal text.
    Number(&'a [u8]),
    /// `true`, `false`, `null`, an object or an array.
    Other,
}

/// The keys an event line is read for, in the order of [`event_fields`]' members.
pub(crate) const EVENT_KEYS: [&str; 6] = ["event_type", "timestamp", "id", "id1", "id2", "amount"];

/// The wanted members of an event line, in the order of [`EVENT_KEYS`].
pub(crate) type EventMembers<'a> = [Option<Member<'a>>; 6];

/// Parses the JSON at `buf[..raw.len()]` (a copy of `raw` followed by padding).
fn parse_event<'t>(
    buf: &'t mut [u8],
    raw: &'t [u8],
    buffers: &mut Buffers,
    tape: &mut Tape<'t>,
) -> Result<Fields<'t>, SkipReason> {
    if fill_tape_padded(buf, raw.len(), buffers, tape).is_err() {
        return Err(json_error(raw));
    }
    event_fields(raw, &find_members(&tape.0, raw, &EVENT_KEYS)?)
}

/// Validates the members of the event line `raw` into its fields.
fn event_fields<'a>(raw: &'a [u8], members: &EventMembers<'a>) -> Result<Fields<'a>, SkipReason> {
    let &[event_type, timestamp, id, id1, id2, amount] = members;
    let kind = match event_type {
        None => return Err(SkipReason::MissingField("event_type")),
        Some(m) => match m.value {
            // The three names are eight bytes long: compared as words, not by `memcmp`.
            Value::Str(text) => match <[u8; 8]>::try_from(text).map(u64::from_ne_bytes) {
                Ok(word) if word == u64::from_ne_bytes(*b"purchase") => EventKind::Purchase,
                Ok(word) if word == u64::from_ne_bytes(*b"befriend") => EventKind::Befriend,
                Ok(word) if word == u64::from_ne_bytes(*b"unfriend") => EventKind::Unfriend,
                _ => return Err(SkipReason::UnknownEventType(describe(raw, m))),
            },
            _ => return Err(SkipReason::UnknownEventType(describe(raw, m))),
        },
    };
    let timestamp = match timestamp {
        None => return Err(SkipReason::MissingField("timestamp")),
        Some(m) => match m.value {
            Value::Str(s) => Timestamp::parse(s),
            _ => None,
        }
        .ok_or_else(|| SkipReason::InvalidTimestamp(describe(raw, m)))?,
    };
    match kind {
        EventKind::Purchase => {
            let buyer = user_id(raw, id, "id")?;
            let m = amount.ok_or(SkipReason::MissingField("amount"))?;
            let cents = match m.value {
                Value::Str(text) | Value::Number(text) => parse_cents(text),
                Value::Other => None,
            }
            .ok_or_else(|| SkipReason::InvalidAmount(describe(raw, m)))?;
            Ok(Fields::Purchase {
                buyer,
                cents,
                timestamp,
            })
        }
        EventKind::Befriend | EventKind::Unfriend => {
            let a = user_id(raw, id1, "id1")?;
            let b = user_id(raw, id2, "id2")?;
            Ok(if kind == EventKind::Befriend {
                Fields::Befriend(a, b)
            } else {
                Fields::Unfriend(a, b)
            })
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum EventKind {
    Purchase,
    Befriend,
    Unfriend,
}

/// Replaces every valid JSON number outside strings by `0` and spaces, keeping every other
/// byte in place. Returns whether there was any number.
fn blank_numbers(buf: &mut [u8]) -> bool {
    let mut any = false;
    let mut i = 0;
    while i < buf.len() {
        match buf[i] {
            b'"' => i = skip_string(buf, i),
            b'-' | b'0'..=b'9' => {
                let end = i + number_token(&buf[i..]);
                if is_json_number(&buf[i..end]) {
                    buf[i] = b'0';
                    buf[i + 1..end].fill(b' ');
                    any = true;
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    any
}

/// Length of the run of bytes at the start of `text` that can make up a JSON number (the
/// grammar is checked by [`is_json_number`]).
fn number_token(text: &[u8]) -> usize {
    text.iter()
        .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .unwrap_or(text.len())
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
fn is_json_number(text: &[u8]) -> bool {
    let digits = |at: usize| {
        text[at.min(text.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut at = usize::from(text.first() == Some(&b'-'));
    match digits(at) {
        0 => return false,
        n if n > 1 && text[at] == b'0' => return false,
        n => at += n,
    }
    if text.get(at) == Some(&b'.') {
        match digits(at + 1) {
            0 => return false,
            n => at += 1 + n,
        }
    }
    if matches!(text.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(text.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        match digits(at) {
            0 => return false,
            n => at += n,
        }
    }
    at == text.len()
}

/// Why simd-json refused a line: bad UTF-8 is reported as such, anything else as bad JSON.
fn json_error(raw: &[u8]) -> SkipReason {
    if std::str::from_utf8(raw).is_err() {
        SkipReason::InvalidUtf8
    } else {
        SkipReason::not_json(raw)
    }
}

/// Finds the wanted keys among the members of the top-level object of `raw` (parsed into
/// `nodes`), rejecting duplicate keys.
fn find_members<'t, const K: usize>(
    nodes: &[Node<'t>],
    raw: &'t [u8],
    wanted: &[&str; K],
) -> Result<[Option<Member<'t>>; K], SkipReason> {
    let Some(&Node::Object { len, .. }) = nodes.first() else {
        return Err(SkipReason::NotObject);
    };
    let mut found = [None; K];
    // Wanted keys are checked for duplicates by their slot; only the other keys are compared
    // with each other.
    let mut others = OtherKeys::default();
    let mut at = 1;
    for ordinal in 0..len {
        let Node::String(key) = nodes[at] else {
            return Err(SkipReason::not_json(raw));
        };
        match wanted.iter().position(|w| *w == key) {
            Some(slot) => {
                if found[slot].is_some() {
                    return Err(SkipReason::DuplicateKey(key.to_string()));
                }
                let value = match nodes[at + 1] {
                    Node::String(s) => Value::Str(s.as_bytes()),
                    Node::Static(StaticNode::I64(_) | StaticNode::U64(_) | StaticNode::F64(_)) => {
                        Value::Number(member_literal(raw, ordinal))
                    }
                    _ => Value::Other,
                };
                found[slot] = Some(Member { ordinal, value });
            }
            None => {
                if !others.insert(key) {
                    return Err(SkipReason::DuplicateKey(key.to_string()));
                }
            }
        }
        at = skip_value(nodes, at + 1);
    }
    Ok(found)
}

/// Other keys compared one by one before a line's keys go into a hash set.
const FEW_KEYS: usize = 16;

/// The keys of an object other than the wanted ones, for the duplicate check: a few are compared
/// in a small vector (no allocation, the usual line has none); beyond [`FEW_KEYS`] they move
/// into a hash set (SipHash, randomly keyed: crafted keys cannot force collisions), so a line of a
/// million keys costs time linear in its length.
#[derive(Default)]
struct OtherKeys<'a> {
    few: smallvec::SmallVec<[&'a str; FEW_KEYS]>,
    many: Option<std::collections::HashSet<&'a str>>,
}

impl<'a> OtherKeys<'a> {
    /// Adds `key`; false when it was already there.
    fn insert(&mut self, key: &'a str) -> bool {
        if let Some(many) = &mut self.many {
            return many.insert(key);
        }
        if self.few.contains(&key) {
            return false;
        }
        if self.few.len() < FEW_KEYS {
            self.few.push(key);
        } else {
            let mut many: std::collections::HashSet<&str> = self.few.drain(..).collect();
            many.insert(key);
            self.many = Some(many);
        }
        true
    }
}

/// Index of the node after the value that starts at `at`.
fn skip_value(nodes: &[Node<'_>], at: usize) -> usize {
    match nodes[at] {
        Node::Object { count, .. } | Node::Array { count, .. } => at + 1 + count,
        _ => at + 1,
    }
}

/// A user id: a non-empty string (unescaped) or an integer taken by its literal text.
fn user_id<'a>(
    raw: &[u8],
    member: Option<Member<'a>>,
    field: &'static str,
) -> Result<&'a [u8], SkipReason> {
    let m = member.ok_or(SkipReason::MissingField(field))?;
    match m.value {
        Value::Str(s) if !s.is_empty() => Ok(s),
        // JSON already guarantees `-?(0|[1-9][0-9]*)` before any fraction or exponent.
        Value::Number(text) if !text.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) => Ok(text),
        _ => Err(SkipReason::InvalidId {
            field,
            value: describe(raw, m),
        }),
    }
}

/// A short rendering of a member's value for error messages: its literal text, shortened and
/// [`escaped`].
fn describe(raw: &[u8], m: Member<'_>) -> String {
    escaped(member_literal(raw, m.ordinal), 40)
}

/// The literal text of the value of the `ordinal`-th member of the top-level object in `raw`,
/// which simd-json has already validated as a JSON object.
pub fn member_literal(raw: &[u8], ordinal: usize) -> &[u8] {
    let mut at = skip_ws(raw, memchr::memchr(b'{', raw).map_or(raw.len(), |p| p + 1));
    for index in 0..=ordinal {
        at = skip_ws(raw, skip_string(raw, at)); // the key
        at = skip_ws(raw, at + 1); // the ':'
        let end = skip_json_value(raw, at);
        if index == ordinal {
            return &raw[at.min(end)..end];
        }
        at = skip_ws(raw, skip_ws(raw, end) + 1); // the ','
    }
    &[]
}

fn skip_ws(raw: &[u8], mut at: usize) -> usize {
    while at < raw.len() && matches!(raw[at], b' ' | b'\t' | b'\r' | b'\n') {
        at += 1;
    }
    at.min(raw.len())
}

/// Index after the string starting at `at` (which holds its opening quote).
fn skip_string(raw: &[u8], at: usize) -> usize {
    let mut i = at + 1;
    while i < raw.len() {
        match raw[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    raw.len()
}

fn skip_json_value(raw: &[u8], at: usize) -> usize {
    match raw.get(at) {
        Some(b'"') => skip_string(raw, at),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = at;
            while i < raw.len() {
                match raw[i] {
                    b'"' => {
                        i = skip_string(raw, i);
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
            raw.len()
        }
        _ => {
            let mut i = at;
            while i < raw.len() && !matches!(raw[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\r') {
                i += 1;
            }
            i
        }
    }
}

/// The two parameters, as given in the batch log's parameter line.
///
/// ```
/// let params = anomaly_detect::Params { degree: 2, tracked: 50 };
/// let detector = anomaly_detect::Detector::new(params)?;
/// assert_eq!(detector.params(), params);
/// # Ok::<(), anomaly_detect::Fatal>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Degrees of the network (at least 1). Saturated at `u32::MAX`: "the whole component".
    pub degree: u32,
    /// How many of the network's latest purchases form the baseline (2..=10_000_000).
    pub tracked: u32,
}

pub const MAX_TRACKED: u64 = 10_000_000;

/// The most events a chunk's list makes room for before parsing (see
/// [`LineParser::parse_chunk`]): a 1 MiB chunk of 64-byte lines.
const EVENTS_RESERVED: usize = 1 << 14;

/// The value of a parameter's text, by the rule of the parameter line, which `-D` and `-T` on
/// the command line follow too: decimal digits only (no sign, no spaces; leading zeros are
/// fine), saturating at `u64::MAX`; `None` for any other text.
pub fn param_value(text: &[u8]) -> Option<u64> {
    (!text.is_empty() && text.iter().all(u8::is_ascii_digit)).then(|| {
        text.iter().fold(0u64, |acc, &b| {
            acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
        })
    })
}

/// `D` from its value: at least 1; beyond `u32::MAX` hops (more than any network has) it is
/// `u32::MAX`, the whole connected component.
pub fn degree_of(value: u64) -> Option<u32> {
    (value >= 1).then(|| u32::try_from(value).unwrap_or(u32::MAX))
}

/// `T` from its value: `2..=MAX_TRACKED`.
pub fn tracked_of(value: u64) -> Option<u32> {
    (2..=MAX_TRACKED).contains(&value).then_some(value as u32)
}

/// Parses the parameter line `{"D":"3", "T":"50"}`; the error is a readable problem.
pub fn parse_params(raw: &[u8]) -> Result<Params, String> {
    let mut buf = raw.to_vec();
    buf.resize(raw.len() + INPUT_PADDING, b' ');
    let mut buffers = Buffers::with_max_depth(raw.len(), PARSER_DEPTH);
    let mut tape = Tape(Vec::new());
    if fill_tape_padded(&mut buf, raw.len(), &mut buffers, &mut tape).is_err() {
        return Err(format!(
            "the parameter line is {}: {}",
            match json_error(raw) {
                SkipReason::InvalidUtf8 => "not valid UTF-8",
                _ => "not valid JSON",
            },
            excerpt(raw)
        ));
    }
    let [d, t] = find_members(&tape.0, raw, &["D", "T"]).map_err(|reason| match reason {
        SkipReason::NotObject => {
            format!("the parameter line is not a JSON object: {}", excerpt(raw))
        }
        other => format!("invalid parameter line: {other}"),
    })?;
    let param = |m: Option<Member>, name: &str| -> Result<u64, String> {
        let m = m.ok_or_else(|| {
            format!(
                "missing parameter line: the first line has no \"{name}\": {}",
                excerpt(raw)
            )
        })?;
        let text = match m.value {
            Value::Str(text) | Value::Number(text) => text,
            Value::Other => b"",
        };
        param_value(text).ok_or_else(|| {
            format!(
                "parameter {name} must be a decimal integer, got {}",
                describe(raw, m)
            )
        })
    };
    let degree = param(d, "D")?;
    let tracked = param(t, "T")?;
    let degree =
        degree_of(degree).ok_or_else(|| "parameter D must be at least 1, got 0".to_string())?;
    let tracked = tracked_of(tracked).ok_or_else(|| {
        format!(
            "parameter T must be between 2 and {MAX_TRACKED}, got {}",
            describe(raw, t.expect("checked above"))
        )
    })?;
    Ok(Params { degree, tracked })
}

/// The start of a parameter line for error messages, [`escaped`].
fn excerpt(raw: &[u8]) -> String {
    escaped(raw, 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the calls of the release hook (one test uses it).
    static RELEASED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn count_release() {
        RELEASED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The allocator is the program's choice: after a line over 1 MiB the parser calls the hook
    /// it was given (the binary's passes mimalloc's `mi_collect`), and after a usual line it
    /// calls nothing.
    #[test]
    fn a_huge_line_calls_the_release_hook_and_a_usual_one_does_not() {
        let mut parser = LineParser::new(IdHasher::default());
        parser.set_release_memory(count_release);
        let usual = br#"{"event_type":"befriend", "timestamp":"2017-06-13 11:33:01", "id1": "1", "id2": "2", "x": "\u0041"}"#;
        let mut ids = Vec::new();
        assert!(parser.parse_json(usual, &mut ids).is_ok());
        assert_eq!(RELEASED.load(std::sync::atomic::Ordering::Relaxed), 0);
        let mut huge = br#"{"event_type":"befriend", "timestamp":"2017-06-13 11:33:01", "id1": "1", "id2": "2", "x": ""#.to_vec();
        huge.resize(huge.len() + HUGE_LINE, b'a');
        huge.extend_from_slice(b"\"}");
        assert!(parser.parse_json(&huge, &mut ids).is_ok());
        assert_eq!(RELEASED.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn json_number_grammar() {
        for good in [
            "0",
            "-0",
            "7",
            "-7",
            "10",
            "1.5",
            "1e400",
            "1E+3",
            "-2.50e-7",
            "12345678901234567890123",
        ] {
            assert!(is_json_number(good.as_bytes()), "{good}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "+5", "1e", "1e+", "--1", "1.2.3", "1-2", "0x1",
        ] {
            assert!(!is_json_number(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn blanking_keeps_positions_and_strings() {
        let mut line = br#"{"a": 1e400, "b": "12", "c": [-3, 01]}"#.to_vec();
        assert!(blank_numbers(&mut line));
        assert_eq!(&line[..], br#"{"a": 0    , "b": "12", "c": [0 , 01]}"#);
    }
}
