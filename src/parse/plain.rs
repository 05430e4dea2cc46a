//! Plain event lines, read without a JSON parser: a flat object of known keys whose values are
//! strings of printable ASCII without escapes, or numbers. That is what logs are made of, and
//! such a line means exactly what simd-json would make of it; every other line (escapes,
//! non-ASCII text, unknown or repeated keys, nested values, anything malformed) is left to
//! simd-json, which also says what is wrong with it.
//!
//! One pass over the line, 16 bytes at a time, finds its quotes and rules out the bytes a plain
//! line never holds (`\`, non-ASCII, control characters: a tab or `\r` is white space between
//! tokens but invalid inside a string, so simd-json sorts those lines out); the members are then
//! read from quote to quote.

use super::{EVENT_KEYS, EventMembers, Member, Value, is_json_number, number_token};

/// Longest line read as plain; longer ones (and lines under 16 bytes, which are no events)
/// go to simd-json.
const MAX_PLAIN: usize = 256;

/// Reads the wanted members of `raw` (a trimmed line) into `found` and returns `Some` when it is
/// a plain event line; `None` (and `found` in any state) when it is not.
#[inline]
pub(crate) fn members<'a>(raw: &'a [u8], found: &mut EventMembers<'a>) -> Option<()> {
    let quotes = Quotes::of(raw)?;
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

/// Where a line's quotes are, one bit per byte.
struct Quotes([u64; MAX_PLAIN / 64]);

impl Quotes {
    /// The quotes of `raw`, or `None` when it is too short or too long, or holds a byte no
    /// plain line holds.
    #[inline]
    fn of(raw: &[u8]) -> Option<Quotes> {
        let len = raw.len();
        if !(16..=MAX_PLAIN).contains(&len) {
            return None;
        }
        let mut quotes = [0u64; MAX_PLAIN / 64];
        let mut odd = 0u16;
        let mut at = 0;
        // Blocks of 16 bytes read straight from the line (no copy: a copy's stores would stall
        // the loads), the last one ending with the line and shifted into place.
        while at < len {
            let start = at.min(len - 16);
            let bytes: &[u8; 16] = raw[start..start + 16].try_into().expect("16 bytes");
            let (quote, bad) = classify(bytes);
            let shift = at - start;
            quotes[at / 64] |= u64::from(quote >> shift) << (at % 64);
            odd |= bad >> shift;
            at += 16;
        }
        (odd == 0).then_some(Quotes(quotes))
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
    use crate::event::Action;
    use crate::parse::{LineParser, event_fields};
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
        (
            kind,
            ts,
            value(),
            value(),
            amount,
            prop::collection::vec(ws, 12),
            keys,
        )
            .prop_map(|(kind, ts, a, b, amount, ws, keys)| {
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
            })
    }

    /// What the plain reader makes of a line it accepts, and what simd-json makes of it.
    fn both(line: &[u8]) -> Option<(Result<Action, SkipReason>, Result<Action, SkipReason>)> {
        let mut found = [None; 6];
        members(line, &mut found)?;
        let hasher = crate::parse::IdHasher::default();
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
