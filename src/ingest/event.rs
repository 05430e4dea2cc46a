//! The compact event structs that parsing produces and the applier consumes, and the two
//! scalar types judged by their literal text: [`Timestamp`] and amounts in integer cents.

/// Largest valid amount: 1000000000.00 in cents.
pub const MAX_CENTS: u64 = 100_000_000_000;

/// A validated `YYYY-MM-DD HH:MM:SS`, packed into an integer that sorts like the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Parses exactly `YYYY-MM-DD HH:MM:SS` with a real calendar date (proleptic Gregorian,
    /// years 0000-9999) and a time of day without leap seconds.
    pub fn parse(s: &[u8]) -> Option<Timestamp> {
        if s.len() != 19 || s[4] != b'-' || s[7] != b'-' || s[10] != b' ' {
            return None;
        }
        if s[13] != b':' || s[16] != b':' {
            return None;
        }
        let num = |range: std::ops::Range<usize>| -> Option<u64> {
            s[range].iter().try_fold(0u64, |acc, &b| {
                b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
            })
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let days = (year * 12 + month - 1) * 31 + day - 1;
        Some(Timestamp(((days * 24 + hour) * 60 + minute) * 60 + second))
    }
}

impl Timestamp {
    /// Writes the timestamp back as `YYYY-MM-DD HH:MM:SS`.
    pub fn write(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let t = self.0;
        let (second, t) = (t % 60, t / 60);
        let (minute, t) = (t % 60, t / 60);
        let (hour, days) = (t % 24, t / 24);
        let (day, months) = (days % 31 + 1, days / 31);
        let (month, year) = (months % 12 + 1, months / 12);
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}"
        );
    }
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses an amount's literal text `[0-9]+(\.[0-9]{1,2})?` into cents, at most [`MAX_CENTS`].
pub fn parse_cents(s: &[u8]) -> Option<u64> {
    let (whole, frac) = match memchr::memchr(b'.', s) {
        Some(dot) => (&s[..dot], &s[dot + 1..]),
        None => (s, &b""[..]),
    };
    if whole.is_empty() || (s.len() != whole.len() && !(1..=2).contains(&frac.len())) {
        return None;
    }
    let mut dollars: u64 = 0;
    for &b in whole {
        if !b.is_ascii_digit() {
            return None;
        }
        // Saturate far above the limit so leading zeros and huge numbers both stay exact.
        dollars = (dollars * 10 + u64::from(b - b'0')).min(MAX_CENTS);
    }
    let mut cents: u64 = 0;
    for (i, &b) in frac.iter().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        cents += u64::from(b - b'0') * if i == 0 { 10 } else { 1 };
    }
    let total = dollars * 100 + cents;
    (total <= MAX_CENTS).then_some(total)
}

/// A user id as it appears in one parsed chunk: a small number by its value, any other id by
/// its bytes in the chunk's id arena. 16 bytes, so that an [`Event`] takes 56.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRef {
    /// The value of a canonical decimal below [`SMALL_NUMBERS`] (`"7"`, not `"07"`), whose
    /// user is found through a direct table; else the id's hash (see [`id_hash`]), computed
    /// while parsing so the applier does not have to, which always has its top bit set.
    key: u64,
    /// Where the id's bytes are in the arena (both 0 for a small number, whose digits are
    /// not stored: they are the canonical decimal of its value).
    pub start: u32,
    pub len: u32,
}

impl IdRef {
    /// The id of `bytes`: a small number by its value; any other id copied to `arena` and
    /// hashed with `hash`.
    #[inline]
    pub fn new(bytes: &[u8], arena: &mut Vec<u8>, hash: impl FnOnce(&[u8]) -> u64) -> IdRef {
        let number = small_number(bytes);
        if number != NOT_SMALL {
            return IdRef {
                key: u64::from(number),
                start: 0,
                len: 0,
            };
        }
        // The arena holds ids of one chunk, the bytes a line of it: both within `MAX_PARSED`
        // bytes, so below 4 GiB.
        let start = arena.len() as u32;
        arena.extend_from_slice(bytes);
        IdRef {
            key: id_hash(hash(bytes)),
            start,
            len: bytes.len() as u32,
        }
    }

    /// The id's value when it is a small number.
    #[inline]
    pub fn number(&self) -> Option<u32> {
        (self.key < u64::from(SMALL_NUMBERS)).then_some(self.key as u32)
    }

    /// The id's hash (see [`id_hash`]) when it is not a small number.
    #[inline]
    pub fn hash(&self) -> Option<u64> {
        (self.key >= u64::from(SMALL_NUMBERS)).then_some(self.key)
    }
}

/// The hash an id is interned by: the hasher's value with its top bit set, so that it can
/// never be mistaken for a small number.
#[inline]
pub fn id_hash(hash: u64) -> u64 {
    hash | 1 << 63
}

/// Ids that are canonical decimals below this are interned through a direct table.
pub const SMALL_NUMBERS: u32 = 1 << 22;
pub const NOT_SMALL: u32 = u32::MAX;

/// The digits of a small number (the canonical decimal of `number`): a buffer and how many of
/// its first bytes they take.
pub fn small_number_digits(number: u32) -> ([u8; 8], usize) {
    use std::io::Write;
    let mut digits = [0u8; 8];
    let mut rest = &mut digits[..];
    write!(rest, "{number}").expect("a u32 has at most ten digits, a small number seven");
    let len = 8 - rest.len();
    (digits, len)
}

/// The value of a canonical decimal id below [`SMALL_NUMBERS`], else [`NOT_SMALL`].
#[inline]
pub fn small_number(bytes: &[u8]) -> u32 {
    if bytes.is_empty() || bytes.len() > 7 || (bytes[0] == b'0' && bytes.len() > 1) {
        return NOT_SMALL;
    }
    let mut value = 0u32;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return NOT_SMALL;
        }
        value = value * 10 + u32::from(b - b'0');
    }
    if value < SMALL_NUMBERS {
        value
    } else {
        NOT_SMALL
    }
}

/// What an event does to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Purchase {
        buyer: IdRef,
        cents: u64,
        timestamp: Timestamp,
    },
    Befriend(IdRef, IdRef),
    Unfriend(IdRef, IdRef),
}

/// One valid event line of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Index of the line within its chunk (0-based); its sequence number once the chunk's
    /// first line is known.
    pub line: u32,
    /// Byte span of the trimmed line, relative to the start of the chunk.
    pub start: u32,
    pub len: u32,
    pub action: Action,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_numbers_give_back_their_digits() {
        for n in [0, 7, 10, 99, 100, 12345, SMALL_NUMBERS - 1] {
            let (digits, len) = small_number_digits(n);
            assert_eq!(&digits[..len], n.to_string().as_bytes());
            assert_eq!(small_number(&digits[..len]), n);
        }
    }

    #[test]
    fn events_stay_compact() {
        // Every parsed event crosses from a parse worker to the applier: keep them small.
        assert_eq!(std::mem::size_of::<IdRef>(), 16);
        assert_eq!(std::mem::size_of::<Event>(), 56);
    }

    #[test]
    fn timestamps_are_real_calendar_times() {
        assert!(Timestamp::parse(b"2017-06-13 11:33:01").is_some());
        assert!(Timestamp::parse(b"2016-02-29 00:00:00").is_some());
        assert!(Timestamp::parse(b"2000-02-29 23:59:59").is_some());
        for bad in [
            &b"2017-02-29 00:00:00"[..],
            b"1900-02-29 00:00:00",
            b"2017-02-30 00:00:00",
            b"2017-04-31 00:00:00",
            b"2017-13-01 00:00:00",
            b"2017-00-01 00:00:00",
            b"2017-01-00 00:00:00",
            b"2017-06-13 24:00:00",
            b"2017-06-13 11:60:00",
            b"2017-06-13 11:33:60",
            b"2017-06-13T11:33:01",
            b"2017-06-13 11:33:1",
            b"2017-06-13 11:33:011",
            b"2017-6-13 11:33:01 ",
            b"+017-06-13 11:33:01",
            b"",
        ] {
            assert_eq!(
                Timestamp::parse(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn timestamps_write_back_their_text() {
        for text in [
            "0000-01-01 00:00:00",
            "2016-02-29 23:59:59",
            "2017-06-13 11:33:01",
            "9999-12-31 23:59:59",
        ] {
            let mut out = Vec::new();
            Timestamp::parse(text.as_bytes()).unwrap().write(&mut out);
            assert_eq!(out, text.as_bytes());
        }
    }

    #[test]
    fn timestamps_sort_like_their_text() {
        let texts = [
            "0000-01-01 00:00:00",
            "2016-12-31 23:59:59",
            "2017-01-01 00:00:00",
            "2017-01-31 00:00:00",
            "2017-02-01 00:00:00",
            "2017-06-13 11:33:01",
            "2017-06-13 11:33:02",
            "9999-12-31 23:59:59",
        ];
        let stamps: Vec<_> = texts
            .iter()
            .map(|t| Timestamp::parse(t.as_bytes()).unwrap())
            .collect();
        assert!(stamps.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn only_canonical_small_decimals_are_small_numbers() {
        assert_eq!(small_number(b"0"), 0);
        assert_eq!(small_number(b"7"), 7);
        assert_eq!(small_number(b"4194303"), SMALL_NUMBERS - 1);
        for other in [
            &b"07"[..],
            b"00",
            b"-7",
            b"",
            b"4194304",
            b"12345678",
            b"7a",
            b" 7",
        ] {
            assert_eq!(
                small_number(other),
                NOT_SMALL,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn amounts_are_exact_cents() {
        assert_eq!(parse_cents(b"16.83"), Some(1683));
        assert_eq!(parse_cents(b"16.8"), Some(1680));
        assert_eq!(parse_cents(b"16"), Some(1600));
        assert_eq!(parse_cents(b"007.50"), Some(750));
        assert_eq!(parse_cents(b"29.10"), Some(2910));
        assert_eq!(parse_cents(b"0"), Some(0));
        assert_eq!(parse_cents(b"1000000000.00"), Some(MAX_CENTS));
        assert_eq!(parse_cents(b"0001000000000"), Some(MAX_CENTS));
        assert_eq!(parse_cents(b"1000000000.01"), None);
        assert_eq!(parse_cents(b"99999999999999999999999"), None);
        for bad in [
            &b"1e3"[..],
            b"12.345",
            b"-1",
            b".5",
            b"+5",
            b"",
            b"16.830",
            b"5.",
            b"1.2.3",
            b" 5",
            b"5 ",
            b"1,5",
        ] {
            assert_eq!(parse_cents(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
