//! Plain event lines, read without a JSON parser: a flat object of known keys whose values are
//! strings of printable ASCII without escapes, or numbers. That is what logs are made of, and
//! such a line means exactly what simd-json would make of it; every other line (escapes,
//! non-ASCII text, unknown or repeated keys, nested values, anything malformed) is left to
//! simd-json, which also says what is wrong with it.
//!
//! One pass over the line, 16 bytes at a time, finds its quotes and rules out the bytes a plain
//! line never holds (`\`, non-ASCII, control characters: a tab or `\r` is white space between
//! tokens but invalid inside a string, so simd-json sorts those lines out); the members are then
//! read from quote to quote. A log's lines mostly share a few shapes (the same keys in the same
//! order with the same spacing): a parser remembers them, and a line of a known shape is read by
//! comparing the bytes between its values with the shape's ([`Shapes`]).

use super::{EVENT_KEYS, EventMembers, Member, Value, is_json_number, number_token};

/// Longest line read as plain; longer ones (and lines under 16 bytes, which are no events)
/// go to simd-json.
const MAX_PLAIN: usize = 256;

/// Reads the wanted members of `raw` (a trimmed line) into `found` and returns `Some` when it is
/// a plain event line; `None` (and `found` in any state) when it is not. (Parsers read lines
/// through [`Shapes::members`], which gives the same.)
#[cfg(test)]
pub(crate) fn members<'a>(raw: &'a [u8], found: &mut EventMembers<'a>) -> Option<()> {
    let mut quotes = Quotes([0; MAX_PLAIN / 64]);
    if !quotes.find(raw) {
        return None;
    }
    walk(raw, &quotes, found)
}

/// Reads the members of a line whose quotes are known (see [`Quotes::find`]) by walking it from
/// token to token: `Some` when it is a plain event line.
#[inline]
fn walk<'a>(raw: &'a [u8], quotes: &Quotes, found: &mut EventMembers<'a>) -> Option<()> {
    *found = [None; 6];
    if raw.first() != Some(&b'{') || raw.last() != Some(&b'}') {
        return None;
    }
    let mut at = skip_ws(raw, 1);
    for ordinal in 0.. {
        let (key, end) = quotes.string(raw, at)?;
        let slot = slot(key)?;
        if found[slot].is_some() {
            return None; // a repeated key: simd-json's path reports it
        }
        at = skip_ws(raw, end);
        if *raw.get(at)? != b':' {
            return None;
        }
        at = skip_ws(raw, at + 1);
        let value = match *raw.get(at)? {
            b'"' => {
                let (text, end) = quotes.string(raw, at)?;
                at = end;
                Value::Str(text)
            }
            b'-' | b'0'..=b'9' => {
                // The line ends with `}`, so the number ends before it.
                let len = number_token(&raw[at..]);
                let text = &raw[at..at + len];
                if !is_json_number(text) {
                    return None;
                }
                at += len;
                Value::Number(text)
            }
            _ => return None,
        };
        found[slot] = Some(Member { ordinal, value });
        at = skip_ws(raw, at);
        match *raw.get(at)? {
            b',' => at = skip_ws(raw, at + 1),
            b'}' if at + 1 == raw.len() => return Some(()),
            _ => return None,
        }
    }
    None
}

/// How many line shapes a parser remembers: one per event type is the usual need.
const SHAPES: usize = 4;

/// After this many lines in a row that fit no remembered shape, a parser learns only every
/// [`RELEARN`]-th line's shape: a log without a prevailing shape does not pay for learning.
const RELEARN: u32 = 64;

/// The shapes of plain lines read lately, so that a line of the same shape is read by comparing
/// bytes rather than by walking its tokens: what makes a log's lines alike is everything but
/// their values.
///
/// A shape is the skeleton of a plain line whose values are all strings: its first bytes up to
/// the opening quote of its second value (its first value included, in practice the event
/// type), then for each further value the bytes from its closing quote to the next value's
/// opening quote, or to the line's end. A line fits a shape when it starts with the shape's first
/// bytes and each of its values is followed (at the value's next quote) by the shape's bytes.
/// Such a line is plain and has the members of the line the shape was learned from, with its
/// own values: the walk ([`walk`]) decides from the bytes between values only (keys, white
/// space, separators), and a value ends at its next quote in both.
pub(crate) struct Shapes(Box<Known>);

/// What [`Shapes`] keeps, in one heap block: the shapes, and the quote marks of the line being
/// read (reused from line to line).
struct Known {
    quotes: Quotes,
    shapes: [Shape; SHAPES],
    /// How many shapes are known.
    len: usize,
    /// The slot the next shape learned goes to, once all are taken.
    next: usize,
    /// Lines in a row that fitted no shape.
    misses: u32,
}

impl Default for Shapes {
    fn default() -> Self {
        Shapes(Box::new(Known {
            quotes: Quotes([0; MAX_PLAIN / 64]),
            shapes: std::array::from_fn(|_| Shape::EMPTY),
            len: 0,
            next: 0,
            misses: 0,
        }))
    }
}

impl Shapes {
    /// Reads the wanted members of `raw` (a trimmed line) into `found` and returns `Some` when
    /// it is a plain event line: through a remembered shape when the line fits one, otherwise by
    /// walking it, and then the line's shape is remembered. `None` (and `found` in any state)
    /// when it is not plain.
    #[inline]
    pub(crate) fn members<'a>(
        &mut self,
        raw: &'a [u8],
        found: &mut EventMembers<'a>,
    ) -> Option<()> {
        let known = &mut *self.0;
        if !known.quotes.find(raw) {
            return None;
        }
        for shape in &known.shapes[..known.len] {
            if shape.read(raw, &known.quotes, found).is_some() {
                known.misses = 0;
                return Some(());
            }
        }
        walk(raw, &known.quotes, found)?;
        known.misses = known.misses.saturating_add(1);
        if known.misses <= RELEARN || known.misses.is_multiple_of(RELEARN) {
            known.learn(raw, found);
        }
        Some(())
    }

    /// Whether a remembered shape reads `raw`.
    #[cfg(test)]
    fn fits(&mut self, raw: &[u8]) -> bool {
        let known = &mut *self.0;
        known.quotes.find(raw)
            && known.shapes[..known.len]
                .iter()
                .any(|shape| shape.read(raw, &known.quotes, &mut [None; 6]).is_some())
    }
}

impl Known {
    /// Remembers the shape of `raw`, a plain line with these members, when its values are all
    /// strings.
    #[cold]
    fn learn(&mut self, raw: &[u8], found: &EventMembers<'_>) {
        let mut values = [(0, 0, 0); 6];
        let mut count = 0;
        for (slot, member) in found.iter().enumerate() {
            let Some(member) = member else { continue };
            let Value::Str(text) = member.value else {
                return;
            };
            // A value's text is a slice of `raw`.
            let start = text.as_ptr() as usize - raw.as_ptr() as usize;
            values[member.ordinal] = (slot, start, start + text.len());
            count += 1;
        }
        let values = &values[..count];
        let head_end = values.get(1).map_or(raw.len(), |&(_, start, _)| start);
        let mut shape = Shape {
            head: head_end,
            first: values[0],
            count,
            ..Shape::EMPTY
        };
        shape.text[..head_end].copy_from_slice(&raw[..head_end]);
        let mut at = head_end;
        for (i, &(slot, _, end)) in values.iter().enumerate().skip(1) {
            let next = values.get(i + 1).map_or(raw.len(), |&(_, start, _)| start);
            shape.text[at..at + next - end].copy_from_slice(&raw[end..next]);
            at += next - end;
            shape.rest[i - 1] = (slot, at);
        }
        if self.len < SHAPES {
            self.shapes[self.len] = shape;
            self.len += 1;
        } else {
            self.shapes[self.next] = shape;
            self.next = (self.next + 1) % SHAPES;
        }
    }
}

/// One remembered shape (see [`Shapes`]).
struct Shape {
    /// The first bytes, then the bytes after each further value, back to back.
    text: [u8; MAX_PLAIN],
    /// Where the first bytes end in `text`.
    head: usize,
    /// The first value: its member slot, and where it starts and ends in the first bytes.
    first: (usize, usize, usize),
    /// Each further value: its member slot, and where the bytes after it end in `text`.
    rest: [(usize, usize); 5],
    /// How many values.
    count: usize,
}

impl Shape {
    const EMPTY: Shape = Shape {
        text: [0; MAX_PLAIN],
        head: 0,
        first: (0, 0, 0),
        rest: [(0, 0); 5],
        count: 0,
    };

    /// Reads the members of `raw` when it fits this shape.
    #[inline]
    fn read<'a>(&self, raw: &'a [u8], quotes: &Quotes, found: &mut EventMembers<'a>) -> Option<()> {
        if !same(raw.get(..self.head)?, &self.text[..self.head]) {
            return None;
        }
        *found = [None; 6];
        let (slot, start, end) = self.first;
        found[slot] = Some(Member {
            ordinal: 0,
            value: Value::Str(&raw[start..end]),
        });
        let (mut at, mut from) = (self.head, self.head);
        for (ordinal, &(slot, to)) in self.rest[..self.count - 1].iter().enumerate() {
            let end = quotes.next(at)?;
            if !same(raw.get(end..end + to - from)?, &self.text[from..to]) {
                return None;
            }
            found[slot] = Some(Member {
                ordinal: ordinal + 1,
                value: Value::Str(&raw[at..end]),
            });
            at = end + to - from;
            from = to;
        }
        (at == raw.len()).then_some(())
    }
}

/// Whether two byte strings of the same length are equal: word by word, the last word
/// overlapping, since the strings compared here are a few dozen bytes at most.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let len = a.len();
    if len < 8 {
        // Short strings (a line's closing `"}`): a call to `memcmp` would cost more.
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let mut at = 0;
    while at + 8 < len {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, len - 8) == word(b, len - 8)
}

/// Where a line's quotes are, one bit per byte.
struct Quotes([u64; MAX_PLAIN / 64]);

impl Quotes {
    /// Sets `self` to the quotes of `raw`; false when it is too short or too long, or holds a
    /// byte no plain line holds. Each word is written once, from a register: a word built up in
    /// memory and then read back would stall the reads on store forwarding.
    #[inline]
    fn find(&mut self, raw: &[u8]) -> bool {
        let len = raw.len();
        if !(16..=MAX_PLAIN).contains(&len) {
            return false;
        }
        let mut odd = 0u16;
        let mut word = 0u64;
        let mut at = 0;
        // Blocks of 16 bytes read straight from the line (no copy: a copy's stores would stall
        // the loads), the last one ending with the line and shifted into place.
        while at < len {
            let start = at.min(len - 16);
            let bytes: &[u8; 16] = raw[start..start + 16].try_into().expect("16 bytes");
            let (quote, bad) = classify(bytes);
            let shift = at - start;
            word |= u64::from(quote >> shift) << (at % 64);
            odd |= bad >> shift;
            at += 16;
            if at % 64 == 0 {
                self.0[at / 64 - 1] = word;
                word = 0;
            }
        }
        for rest in &mut self.0[at / 64..] {
            *rest = word;
            word = 0;
        }
        odd == 0
    }

    /// The index of the first quote at or after `from`, if any.
    #[inline]
    fn next(&self, from: usize) -> Option<usize> {
        let mut word = from / 64;
        let mut bits = *self.0.get(word)? & (!0u64 << (from % 64));
        while bits == 0 {
            word += 1;
            bits = *self.0.get(word)?;
        }
        Some(word * 64 + bits.trailing_zeros() as usize)
    }

    /// The text of the string whose opening quote is at `raw[at]`, and the index after its
    /// closing quote.
    #[inline]
    fn string<'a>(&self, raw: &'a [u8], at: usize) -> Option<(&'a [u8], usize)> {
        if *raw.get(at)? != b'"' {
            return None;
        }
        let end = self.next(at + 1)?;
        Some((&raw[at + 1..end], end + 1))
    }
}

/// For 16 bytes: the mask of their quotes, and the mask of the bytes a plain line never holds.
#[cfg(target_arch = "x86_64")]
#[inline]
fn classify(bytes: &[u8; 16]) -> (u16, u16) {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of every x86_64 target; the load reads exactly `bytes`.
    unsafe {
        let v = _mm_loadu_si128(bytes.as_ptr().cast());
        let eq = |b: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8));
        let quote = _mm_movemask_epi8(eq(b'"')) as u16;
        // Signed compare: bytes 0x80.. are negative, so `< 0x20` also catches non-ASCII.
        let odd = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)), eq(b'\\'));
        (quote, _mm_movemask_epi8(odd) as u16)
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn classify(bytes: &[u8; 16]) -> (u16, u16) {
    let mut quote = 0u16;
    let mut odd = 0u16;
    for (i, &b) in bytes.iter().enumerate() {
        quote |= u16::from(b == b'"') << i;
        let bad = b == b'\\' || !(0x20..0x80).contains(&b);
        odd |= u16::from(bad) << i;
    }
    (quote, odd)
}

/// The slot of a key in [`EVENT_KEYS`].
#[inline]
fn slot(key: &[u8]) -> Option<usize> {
    let slot = match key {
        b"event_type" => 0,
        b"timestamp" => 1,
        b"id" => 2,
        b"id1" => 3,
        b"id2" => 4,
        b"amount" => 5,
        _ => return None,
    };
    debug_assert_eq!(EVENT_KEYS[slot].as_bytes(), key);
    Some(slot)
}

/// The index of the first byte at or after `at` that is not a space (the only white space a
/// plain line holds).
#[inline]
fn skip_ws(raw: &[u8], mut at: usize) -> usize {
    while at < raw.len() && raw[at] == b' ' {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SkipReason;
    use crate::ingest::event::Action;
    use crate::ingest::parse::{LineParser, event_fields};
    use proptest::prelude::*;

    fn plain(line: &str) -> bool {
        members(line.as_bytes(), &mut [None; 6]).is_some()
    }

    #[test]
    fn the_usual_shapes_are_plain() {
        let purchase = r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "1", "amount": "16.83"}"#;
        let mut m = [None; 6];
        members(purchase.as_bytes(), &mut m).expect("plain");
        assert_eq!(
            m[0],
            Some(Member {
                ordinal: 0,
                value: Value::Str(b"purchase")
            })
        );
        assert_eq!(
            m[5],
            Some(Member {
                ordinal: 3,
                value: Value::Str(b"16.83")
            })
        );
        assert_eq!((m[3], m[4]), (None, None));
        assert!(plain(
            r#"{ "id2" : 7 ,"id1":-3, "timestamp":"x","event_type":"unfriend" }"#
        ));
        assert!(plain(r#"{"amount":16.83e0}"#));
    }

    #[test]
    fn anything_else_is_left_to_simd_json() {
        let head = r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "#;
        assert!(plain(&format!(r#"{head}"id": "1", "amount": "2"}}"#)));
        for tail in [
            r#""id": "\u0037", "amount": "2"}"#,       // an escape
            r#""id": "é", "amount": "2"}"#,            // not ASCII
            "\"id\": \"a\u{1}b\", \"amount\": \"2\"}", // a control character
            "\"id\": \"a\rb\", \"amount\": \"2\"}",
            "\"id\":\t\"1\", \"amount\": \"2\"}", // a tab between tokens is fine, but left to simd-json
            r#""id": "1", "id": "2", "amount": "2"}"#, // a repeated key
            r#""id": "1", "note": "x", "amount": "2"}"#, // an unknown key
            r#""id": ["1"], "amount": "2"}"#,     // a nested value
            r#""id": true, "amount": "2"}"#,
            r#""id": 01, "amount": "2"}"#, // not a JSON number
            r#""id": 1., "amount": "2"}"#,
            r#""id": 1 2, "amount": "2"}"#,
            r#""id": "1", "amount": "2",}"#,
            r#""id": "1", "amount": "2"} "#, // untrimmed
            r#""id": "1", "amount": "2"}}"#,
            r#""id" "1", "amount": "2"}"#,
            r#""id": "1" "amount": "2"}"#,
            r#""id": "1", "amount": "2}"#,
            r#""id": "1", "amount": 2"#,
            r#""id": "1", "amount": "2"]"#,
        ] {
            let line = format!("{head}{tail}");
            assert!(!plain(&line), "{line}");
        }
        for line in ["{}", "{", "", "\"id\"", "[1]", r#"{"id": "1"}"#] {
            assert!(!plain(line), "{line}");
        }
    }

    /// Pieces lines are made of: the usual ones and the ones that trip a reader up.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "{",
            "}",
            "\"",
            ":",
            ",",
            " ",
            "\t",
            "\r",
            "\\",
            "\\u0037",
            "\\\"",
            "é",
            "\u{1}",
            "\u{7f}",
            "\"event_type\"",
            "\"timestamp\"",
            "\"id\"",
            "\"id1\"",
            "\"id2\"",
            "\"amount\"",
            "\"note\"",
            "\"purchase\"",
            "\"befriend\"",
            "\"unfriend\"",
            "\"2017-06-13 11:33:01\"",
            "\"2017-02-30 11:33:01\"",
            "\"16.83\"",
            "\"16.830\"",
            "\"\"",
            "\"7\"",
            "7",
            "-7",
            "07",
            "1.5",
            "1e400",
            "-",
            "16.83",
            "true",
            "null",
            "[",
            "]",
            "[1]",
            "{}",
            "0",
            "x",
        ])
    }

    /// A usual line: mostly valid events, with keys in any order and some odd values.
    fn usual_line() -> impl Strategy<Value = String> {
        (usual_values(), layout()).prop_map(|(values, layout)| line_of(values, &layout))
    }

    /// The values of a usual line: event type, timestamp, the ids, amount (JSON text).
    type Values = [&'static str; 5];

    /// The key order and white space of a line: which members (indices into the members of
    /// [`line_of`]) in which order, and twelve pieces of white space.
    type Layout = (Vec<&'static str>, Vec<usize>);

    /// Mostly valid values, some odd.
    fn usual_values() -> impl Strategy<Value = Values> {
        fn often(usual: &'static str, odd: Vec<&'static str>) -> BoxedStrategy<&'static str> {
            prop_oneof![3 => Just(usual), 1 => prop::sample::select(odd)].boxed()
        }
        let value = || {
            often(
                "\"42\"",
                vec![
                    "\"1\"",
                    "42",
                    "-3",
                    "\"\"",
                    "\"a b\"",
                    "\"\\u0031\"",
                    "1.0",
                    "\"é\"",
                    "\"-0\"",
                    "-0",
                    "07",
                    "-",
                    "1.",
                    "1e5",
                    "--1",
                    "1x",
                ],
            )
        };
        let amount = often(
            "\"16.83\"",
            vec![
                "16.83",
                "\"16.8\"",
                "\"007.50\"",
                "\"1e3\"",
                "16.830",
                "1e400",
                "\"-1\"",
                "\".5\"",
                "\"1000000000.01\"",
                "\"1000000000.00\"",
                "12",
                "\"\"",
                "null",
                "01.50",
                "2.",
                "2e",
            ],
        );
        let ts = often(
            "\"2017-06-13 11:33:01\"",
            vec![
                "\"2016-02-29 23:59:59\"",
                "\"2017-02-29 00:00:00\"",
                "\"2017-06-13 11:33:60\"",
                "\"2017-06-13T11:33:01\"",
                "20170613",
            ],
        );
        let kind = prop::sample::select(vec![
            "\"purchase\"",
            "\"befriend\"",
            "\"unfriend\"",
            "\"Purchase\"",
            "7",
        ]);
        (kind, ts, value(), value(), amount)
            .prop_map(|(kind, ts, a, b, amount)| [kind, ts, a, b, amount])
    }

    /// Keys in any order (mostly those of a purchase or a friendship event), mostly single
    /// spaces.
    fn layout() -> impl Strategy<Value = Layout> {
        let ws = prop_oneof![
            30 => prop::sample::select(vec!["", " ", "  "]),
            1 => prop::sample::select(vec!["\t", "\r", " \r\t"]),
        ];
        let keys = prop_oneof![
            2 => Just(vec![0usize, 1, 2, 5]),
            2 => Just(vec![0usize, 1, 3, 4]),
            1 => prop::sample::subsequence(vec![0usize, 1, 2, 3, 4, 5], 0..=6),
        ]
        .prop_shuffle();
        (prop::collection::vec(ws, 12), keys)
    }

    /// The line of these values in this layout.
    fn line_of([kind, ts, a, b, amount]: Values, (ws, keys): &Layout) -> String {
        let members = [
            ("event_type", kind),
            ("timestamp", ts),
            ("id", a),
            ("id1", a),
            ("id2", b),
            ("amount", amount),
        ];
        let body: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                let (key, value) = members[k];
                format!(
                    "{}\"{key}\"{}:{}{value}",
                    ws[i],
                    ws[i + 6],
                    ws[(i + 3) % 12]
                )
            })
            .collect();
        format!("{{{}{}}}", body.join(","), ws[11])
    }

    /// What the plain reader makes of a line it accepts, and what simd-json makes of it.
    fn both(line: &[u8]) -> Option<(Result<Action, SkipReason>, Result<Action, SkipReason>)> {
        let mut found = [None; 6];
        members(line, &mut found)?;
        let hasher = crate::ingest::parse::IdHasher::default();
        let mut plain_ids = Vec::new();
        let plain = event_fields(line, &found).map(|f| f.into_action(&hasher, &mut plain_ids));
        let mut json_ids = Vec::new();
        let json = LineParser::new(hasher).parse_json(line, &mut json_ids);
        assert_eq!(
            plain_ids,
            json_ids,
            "ids of {:?}",
            String::from_utf8_lossy(line)
        );
        Some((plain, json))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Every line the plain reader accepts means exactly what simd-json makes of it: the
        /// same event, or the same reason to skip it.
        #[test]
        fn plain_lines_mean_what_simd_json_reads(line in usual_line()) {
            if let Some((plain, json)) = both(line.as_bytes()) {
                prop_assert_eq!(plain, json, "{}", line);
            }
        }

        /// The same for lines of random pieces, and for usual lines with a byte changed.
        #[test]
        fn odd_lines_mean_what_simd_json_reads(
            pieces in prop::collection::vec(piece(), 0..24),
            usual in usual_line(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let line = pieces.concat();
            if let Some((plain, json)) = both(line.as_bytes()) {
                prop_assert_eq!(plain, json, "{}", line);
            }
            let mut line = usual.into_bytes();
            let i = at.index(line.len());
            line[i] = byte;
            if let Some((plain, json)) = both(&line) {
                prop_assert_eq!(plain, json, "{:?}", String::from_utf8_lossy(&line));
            }
        }
    }

    /// Values that may keep a line's shape or break it: usual ones, and strings holding what
    /// ends or escapes a string or could pass for structure.
    fn reshaping_values() -> impl Strategy<Value = Values> {
        let value = || {
            prop_oneof![
                1 => prop::sample::select(vec!["\"1\"", "\"123456\"", "\"16.83\"", "\"2017-06-13 11:33:01\""]),
                1 => prop::sample::select(vec![
                    "\"\"",
                    "\"a b\"",
                    "\"x\\\"y\"",
                    "\"x\"y\"",
                    "\"\"\"",
                    "\"\\\\\"",
                    "\"\\u0031\"",
                    "\"é\"",
                    "\"a\tb\"",
                    "\"a,\"",
                    "\"}\"",
                    "\"\", \"id\": \"",
                    "\":\"",
                    "\"1\"}\"",
                    "42",
                    "null",
                ]),
            ]
        };
        (value(), value(), value(), value(), value()).prop_map(|(a, b, c, d, e)| [a, b, c, d, e])
    }

    /// What a parser's shapes and the walk make of `line`: the same, or a failed assertion.
    fn same_as_walked(shapes: &mut Shapes, line: &[u8]) -> Result<(), TestCaseError> {
        let (mut by_shape, mut walked) = ([None; 6], [None; 6]);
        let shaped = shapes.members(line, &mut by_shape);
        let plain = members(line, &mut walked);
        let line = String::from_utf8_lossy(line);
        prop_assert_eq!(shaped, plain, "{}", line);
        if plain.is_some() {
            prop_assert_eq!(by_shape, walked, "{}", line);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Once a parser has learned a line's shape, every line reads as the walk reads it:
        /// lines of that shape with other values (some holding quotes, escapes or structure),
        /// and those lines with a byte changed.
        #[test]
        fn shaped_lines_read_as_walked(
            first in usual_values(),
            second in reshaping_values(),
            layout in layout(),
            same_kind in any::<bool>(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut shapes = Shapes::default();
            same_as_walked(&mut shapes, line_of(first, &layout).as_bytes())?;
            let mut second = second;
            if same_kind {
                second[0] = first[0];
            }
            let line = line_of(second, &layout).into_bytes();
            same_as_walked(&mut shapes, &line)?;
            let mut changed = line;
            let i = at.index(changed.len());
            changed[i] = byte;
            same_as_walked(&mut shapes, &changed)?;
        }

        /// The same with many shapes in turn, more than a parser keeps.
        #[test]
        fn many_shapes_read_as_walked(
            lines in prop::collection::vec((usual_values(), 0..6usize), 1..40),
            layouts in prop::collection::vec(layout(), 6),
        ) {
            let mut shapes = Shapes::default();
            for (values, layout) in lines {
                same_as_walked(&mut shapes, line_of(values, &layouts[layout]).as_bytes())?;
            }
        }
    }

    /// A parser reuses its quote marks from line to line: a short line must not see the quotes
    /// of a longer line before it.
    #[test]
    fn quotes_of_a_longer_line_are_forgotten() {
        let long = format!(
            r#"{{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "{}", "amount": "1"}}"#,
            "1".repeat(150)
        );
        let short = r#"{"event_type":"purchase", "id": "1}"#;
        let mut shapes = Shapes::default();
        assert!(shapes.members(long.as_bytes(), &mut [None; 6]).is_some());
        assert!(shapes.members(short.as_bytes(), &mut [None; 6]).is_none());
        assert!(!plain(short));
    }

    /// The shape tests reach the shapes: most lines of a learned shape with usual values fit it,
    /// and so do some with odd values.
    #[test]
    fn the_generators_reach_the_shapes() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut usual, mut odd) = (0, 0);
        for _ in 0..2000 {
            let mut draw = |strategy: BoxedStrategy<Values>| {
                strategy.new_tree(&mut runner).expect("values").current()
            };
            let first = draw(usual_values().boxed());
            let (mut again, mut reshaped) = (
                draw(usual_values().boxed()),
                draw(reshaping_values().boxed()),
            );
            again[0] = first[0];
            reshaped[0] = first[0];
            let layout = layout().new_tree(&mut runner).expect("a layout").current();
            let mut shapes = Shapes::default();
            shapes.members(line_of(first, &layout).as_bytes(), &mut [None; 6]);
            usual += usize::from(shapes.fits(line_of(again, &layout).as_bytes()));
            odd += usize::from(shapes.fits(line_of(reshaped, &layout).as_bytes()));
        }
        assert!(usual > 300, "{usual} of 2000 usual lines fit a shape");
        assert!(odd > 50, "{odd} of 2000 reshaped lines fit a shape");
    }

    /// The generators above reach the plain reader: most usual lines are plain, and both valid
    /// events and each kind of skip come out of it.
    #[test]
    fn the_generators_reach_the_plain_reader() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut plain, mut events, mut skips) = (0, 0, std::collections::BTreeSet::new());
        for _ in 0..2000 {
            let line = usual_line()
                .new_tree(&mut runner)
                .expect("a line")
                .current();
            if let Some((result, _)) = both(line.as_bytes()) {
                plain += 1;
                match result {
                    Ok(_) => events += 1,
                    Err(reason) => {
                        skips.insert(reason.class());
                    }
                }
            }
        }
        assert!(plain > 1000, "{plain} of 2000 usual lines were plain");
        assert!(events > 100, "{events} events");
        assert!(skips.len() >= 5, "{skips:?}");
    }
}
