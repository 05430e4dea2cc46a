//! What each pair costs per day: the stream's span, from its earliest to its latest purchase
//! timestamp, and each count divided by it. A stream whose purchases span less than a day has
//! no daily rate: it is said so, never divided into one.

use crate::ingest::event::Timestamp;

/// Seconds in a day.
pub const DAY: u64 = 86_400;

/// The earliest and latest timestamps of the stream's purchases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    /// Earliest and latest, once a purchase was seen.
    range: Option<(Timestamp, Timestamp)>,
}

impl Span {
    /// Takes in a purchase's timestamp (in any order: a timestamp may go back in time).
    pub fn see(&mut self, at: Timestamp) {
        self.range = Some(match self.range {
            None => (at, at),
            Some((first, last)) => (first.min(at), last.max(at)),
        });
    }

    /// The earliest and latest timestamps, when the stream has purchases.
    pub fn range(&self) -> Option<(Timestamp, Timestamp)> {
        self.range
    }

    /// Seconds from the earliest to the latest timestamp (0 without purchases).
    pub fn seconds(&self) -> u64 {
        self.range
            .map_or(0, |(first, last)| seconds_of(last) - seconds_of(first))
    }

    /// Whether the span is long enough for a daily rate: at least a day.
    pub fn has_days(&self) -> bool {
        self.seconds() >= DAY
    }

    /// `count` per day in hundredths, rounded half up; `None` when the span is shorter than a
    /// day.
    pub fn per_day_hundredths(&self, count: u64) -> Option<u64> {
        let seconds = self.seconds();
        (seconds >= DAY).then(|| {
            let (part, whole) = (
                u128::from(count) * u128::from(DAY) * 100,
                u128::from(seconds),
            );
            ((2 * part + whole) / (2 * whole)) as u64
        })
    }

    /// The span in days with two decimals (rounded half up), e.g. `6.94`.
    pub fn days_text(&self) -> String {
        let hundredths = (2 * self.seconds() * 100 + DAY) / (2 * DAY);
        format!("{}.{:02}", hundredths / 100, hundredths % 100)
    }

    /// A span shorter than a day as hours, minutes and seconds, e.g. `13 h 55 min 3 s`.
    pub fn clock_text(&self) -> String {
        let s = self.seconds();
        format!("{} h {} min {} s", s / 3600, s / 60 % 60, s % 60)
    }

    /// `from 2017-06-13 00:00:00 to 2017-06-19 22:33:20`, or `no purchases`.
    pub fn range_text(&self) -> String {
        match self.range {
            None => "no purchases".to_string(),
            Some((first, last)) => {
                let mut text = b"from ".to_vec();
                first.write(&mut text);
                text.extend_from_slice(b" to ");
                last.write(&mut text);
                String::from_utf8_lossy(&text).into_owned()
            }
        }
    }
}

/// A timestamp as seconds since 0000-03-01 (proleptic Gregorian): its packed value counts
/// 31 days in every month, so differences of packed values are not durations.
fn seconds_of(at: Timestamp) -> u64 {
    let t = at.0;
    let (time, days) = (t % DAY, t / DAY);
    let (day, months) = (days % 31 + 1, days / 31);
    let (month, year) = (months % 12 + 1, months / 12);
    // Days from civil (H. Hinnant): years start in March, so the leap day ends a year.
    let (y, m) = if month <= 2 {
        (year + 399, month + 9)
    } else {
        (year + 400, month - 3)
    };
    let (era, yoe) = (y / 400, y % 400);
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe) * DAY + time
}

/// Hundredths as a decimal with `decimals` (1 or 2) digits, rounded half up from the
/// hundredths, with thousands separators when `grouped`: `1234567` → `12,345.67`.
pub fn decimal(hundredths: u64, decimals: u32, grouped: bool) -> String {
    let (value, scale) = match decimals {
        1 => ((hundredths + 5) / 10, 10),
        _ => (hundredths, 100),
    };
    let whole = value / scale;
    let whole = if grouped {
        super::thousands(whole)
    } else {
        whole.to_string()
    };
    format!(
        "{whole}.{:0width$}",
        value % scale,
        width = decimals as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn spans_count_real_days_across_months_and_leap_years() {
        let span = |a: &str, b: &str| {
            let mut s = Span::default();
            s.see(at(b));
            s.see(at(a));
            s.seconds()
        };
        assert_eq!(span("2017-02-28 00:00:00", "2017-03-01 00:00:00"), DAY);
        assert_eq!(span("2016-02-28 00:00:00", "2016-03-01 00:00:00"), 2 * DAY);
        assert_eq!(span("1900-02-28 12:00:00", "1900-03-01 12:00:00"), DAY);
        assert_eq!(
            span("2000-02-28 00:00:00", "2000-03-01 00:00:01"),
            2 * DAY + 1
        );
        assert_eq!(
            span("0000-01-01 00:00:00", "0001-01-01 00:00:00"),
            366 * DAY
        );
        assert_eq!(span("2017-12-31 23:59:59", "2018-01-01 00:00:00"), 1);
        assert_eq!(
            span("0000-01-01 00:00:00", "9999-12-31 23:59:59"),
            3_652_425 * DAY - 1
        );
    }

    #[test]
    fn a_span_shorter_than_a_day_has_no_rate() {
        let mut s = Span::default();
        assert_eq!(s.per_day_hundredths(5), None);
        assert_eq!(s.range_text(), "no purchases");
        s.see(at("2017-06-13 00:00:00"));
        s.see(at("2017-06-13 23:59:59"));
        assert_eq!(s.per_day_hundredths(5), None);
        assert_eq!(s.clock_text(), "23 h 59 min 59 s");
        s.see(at("2017-06-14 00:00:00"));
        assert_eq!(s.per_day_hundredths(5), Some(500));
        s.see(at("2017-06-20 00:00:00"));
        assert_eq!(s.per_day_hundredths(7), Some(100));
        assert_eq!(s.per_day_hundredths(1), Some(14));
        assert_eq!(s.days_text(), "7.00");
        assert_eq!(
            s.range_text(),
            "from 2017-06-13 00:00:00 to 2017-06-20 00:00:00"
        );
    }

    #[test]
    fn decimals_round_half_up_and_group_thousands() {
        assert_eq!(decimal(1_234_567, 2, true), "12,345.67");
        assert_eq!(decimal(1_234_567, 1, true), "12,345.7");
        assert_eq!(decimal(1_234_567, 2, false), "12345.67");
        assert_eq!(decimal(5, 1, false), "0.1");
        assert_eq!(decimal(4, 1, false), "0.0");
        assert_eq!(decimal(99_999_995, 1, true), "1,000,000.0");
    }
}
