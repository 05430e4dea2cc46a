//! What a run tells its user on stderr: skipped lines (the first ten in full, then a count)
//! and the one-line summary at the end.

use std::io::Write;
use std::time::Duration;

use crate::clock::PhaseClock;
use crate::error::{Fatal, SkipClass, SkipReason, shown};
use crate::ingest::event::Action;
use crate::ingest::parse::ParsedChunk;

/// How many skipped lines are reported in full before only counting them.
pub const SHOWN_SKIPS: u64 = 10;

/// Collects skipped lines and reports them.
pub struct SkipLog {
    out: Box<dyn Write + Send>,
    strict: bool,
    by_class: [u64; SkipClass::ALL.len()],
    total: u64,
}

impl SkipLog {
    /// A log that writes its messages to `out`; in `strict` mode the first skip is fatal.
    pub fn new(out: Box<dyn Write + Send>, strict: bool) -> Self {
        SkipLog {
            out,
            strict,
            by_class: [0; SkipClass::ALL.len()],
            total: 0,
        }
    }

    /// Records one skipped line of `file` (line numbers are 1-based).
    pub fn skip(&mut self, file: &str, line: u64, reason: &SkipReason) -> Result<(), Fatal> {
        if self.strict {
            return Err(Fatal::Strict {
                file: file.to_string(),
                line,
                reason: reason.clone(),
            });
        }
        self.total += 1;
        self.by_class[reason.class() as usize] += 1;
        if self.total <= SHOWN_SKIPS {
            let file = shown(file);
            let _ = writeln!(self.out, "warning: {file}:{line}: skipped: {reason}");
        }
        Ok(())
    }

    /// Reports how many skipped lines were not shown in full.
    pub fn finish(&mut self) {
        if self.total > SHOWN_SKIPS {
            let more = self.total - SHOWN_SKIPS;
            let _ = writeln!(
                self.out,
                "warning: {more} more skipped {} not shown",
                plural(more, "line", "lines")
            );
        }
        let _ = self.out.flush();
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Counts by class, for the classes that occurred.
    pub fn counts(&self) -> impl Iterator<Item = (SkipClass, u64)> + '_ {
        SkipClass::ALL
            .iter()
            .map(|&c| (c, self.by_class[c as usize]))
            .filter(|&(_, n)| n > 0)
    }
}

/// Valid events of one log, by type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounts {
    pub purchases: u64,
    pub befriends: u64,
    pub unfriends: u64,
}

impl EventCounts {
    pub fn total(&self) -> u64 {
        self.purchases + self.befriends + self.unfriends
    }

    fn add(&mut self, chunk: &ParsedChunk) {
        for event in &chunk.events {
            match event.action {
                Action::Purchase { .. } => self.purchases += 1,
                Action::Befriend(..) => self.befriends += 1,
                Action::Unfriend(..) => self.unfriends += 1,
            }
        }
    }
}

/// Figures of a finished run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub batch_file: String,
    pub stream_file: String,
    pub batch: EventCounts,
    pub stream: EventCounts,
    /// Bytes of the batch and stream logs read.
    pub batch_bytes: u64,
    pub stream_bytes: u64,
    pub flagged: u64,
    pub skipped: Vec<(SkipClass, u64)>,
    /// The pair of `D` and `T` whose flags `flagged` counts, named in the summary line (a
    /// sweep's: `D=2 T=50`); `None` for a run, whose one pair is its parameters.
    pub flagged_pair: Option<String>,
    /// The state directory whose checkpoint the batch's state came from (a resumed live run:
    /// the batch log was not read, its counts are 0).
    pub restored_from: Option<String>,
    pub users: usize,
    pub friendships: usize,
    /// Time spent on the batch log (parameters included), on the stream, and in all.
    pub batch_elapsed: Duration,
    pub stream_elapsed: Duration,
    pub elapsed: Duration,
    /// CPU time of all threads in the batch and stream phases (see [`crate::clock`]); `None`
    /// where the system does not tell.
    pub batch_cpu: Option<Duration>,
    pub stream_cpu: Option<Duration>,
    /// The part of that CPU time spent in the kernel (mostly handing out fresh memory).
    pub batch_system: Option<Duration>,
    pub stream_system: Option<Duration>,
}

impl Summary {
    pub fn count_batch(&mut self, chunk: &ParsedChunk) {
        self.batch.add(chunk);
    }

    pub fn count_stream(&mut self, chunk: &ParsedChunk) {
        self.stream.add(chunk);
    }

    /// Adds a stream replay's wall, CPU and system time, since `clock` started, to the stream
    /// phase's (a system tells the CPU times always or never).
    pub fn add_stream_time(&mut self, clock: &PhaseClock) {
        let add = |total: Option<Duration>, now: Option<Duration>| {
            now.map(|now| total.unwrap_or_default() + now)
        };
        self.stream_elapsed += clock.wall();
        self.stream_cpu = add(self.stream_cpu, clock.cpu());
        self.stream_system = add(self.stream_system, clock.system());
    }

    /// The run's figures as one JSON object (for `--stats`).
    pub fn to_json(&self) -> String {
        let counts = |c: &EventCounts| {
            format!(
                "{{\"events\": {}, \"purchase\": {}, \"befriend\": {}, \"unfriend\": {}}}",
                c.total(),
                c.purchases,
                c.befriends,
                c.unfriends
            )
        };
        let skipped: Vec<String> = self
            .skipped
            .iter()
            .map(|(class, n)| format!("\"{class}\": {n}"))
            .collect();
        let rate = |n: u64, d: Duration| {
            let secs = d.as_secs_f64();
            if secs > 0.0 { n as f64 / secs } else { 0.0 }
        };
        let cpu = |d: Option<Duration>| {
            d.map_or("null".to_string(), |d| format!("{:.3}", d.as_secs_f64()))
        };
        format!(
            concat!(
                "{{\"batch\": {{\"file\": {}, {}\"bytes\": {}, \"counts\": {}, \"seconds\": {:.3}, \"cpu_seconds\": {}, \"system_seconds\": {}, \"events_per_second\": {:.0}}},\n",
                " \"stream\": {{\"file\": {}, \"bytes\": {}, \"counts\": {}, \"seconds\": {:.3}, \"cpu_seconds\": {}, \"system_seconds\": {}, \"events_per_second\": {:.0}}},\n",
                " \"skipped\": {{{}}}, \"flagged\": {}, \"users\": {}, \"friendships\": {}, \"seconds\": {:.3}}}\n"
            ),
            json_string(&self.batch_file),
            self.restored_from
                .as_ref()
                .map_or(String::new(), |dir| format!(
                    "\"restored_from\": {}, ",
                    json_string(dir)
                )),
            self.batch_bytes,
            counts(&self.batch),
            self.batch_elapsed.as_secs_f64(),
            cpu(self.batch_cpu),
            cpu(self.batch_system),
            rate(self.batch.total(), self.batch_elapsed),
            json_string(&self.stream_file),
            self.stream_bytes,
            counts(&self.stream),
            self.stream_elapsed.as_secs_f64(),
            cpu(self.stream_cpu),
            cpu(self.stream_system),
            rate(self.stream.total(), self.stream_elapsed),
            skipped.join(", "),
            self.flagged,
            self.users,
            self.friendships,
            self.elapsed.as_secs_f64(),
        )
    }
}

/// A JSON string literal of `text`.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let events = |n: u64| plural(n, "event", "events");
        match &self.restored_from {
            Some(dir) => write!(
                f,
                "{}: restored from {}, ",
                shown(&self.batch_file),
                shown(dir)
            )?,
            None => write!(
                f,
                "{}: {} {}, ",
                shown(&self.batch_file),
                self.batch.total(),
                events(self.batch.total())
            )?,
        }
        write!(
            f,
            "{}: {} {}; ",
            shown(&self.stream_file),
            self.stream.total(),
            events(self.stream.total())
        )?;
        let skipped: u64 = self.skipped.iter().map(|(_, n)| n).sum();
        let lines = plural(skipped, "line", "lines");
        if skipped == 0 {
            write!(f, "0 lines skipped; ")?;
        } else {
            let parts: Vec<String> = self
                .skipped
                .iter()
                .map(|(class, n)| format!("{n} {class}"))
                .collect();
            write!(f, "{skipped} {lines} skipped ({}); ", parts.join(", "))?;
        }
        if let Some(pair) = &self.flagged_pair {
            write!(f, "{pair}: ")?;
        }
        write!(
            f,
            "{} of {} stream {} flagged; {:.2} s (batch {:.2} s, stream {:.2} s)",
            self.flagged,
            self.stream.purchases,
            plural(self.stream.purchases, "purchase", "purchases"),
            self.elapsed.as_secs_f64(),
            self.batch_elapsed.as_secs_f64(),
            self.stream_elapsed.as_secs_f64()
        )
    }
}

/// `one` when `n` is 1, else `many`: "1 event", "0 events", "2 events".
fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }

    #[test]
    fn the_summary_line_says_one_in_the_singular() {
        let mut summary = Summary {
            batch_file: "b.json".into(),
            stream_file: "s.json".into(),
            ..Summary::default()
        };
        summary.batch.befriends = 1;
        summary.stream.purchases = 1;
        summary.flagged = 1;
        summary.skipped = vec![(SkipClass::NotJson, 1)];
        let text = summary.to_string();
        assert!(
            text.starts_with(
                "b.json: 1 event, s.json: 1 event; 1 line skipped (1 not JSON); \
                 1 of 1 stream purchase flagged; "
            ),
            "{text}"
        );
        summary.batch.befriends = 2;
        summary.stream.purchases = 2;
        summary.skipped = vec![(SkipClass::NotJson, 2)];
        summary.flagged_pair = Some("D=2 T=50".into());
        let text = summary.to_string();
        assert!(
            text.starts_with(
                "b.json: 2 events, s.json: 2 events; 2 lines skipped (2 not JSON); \
                 D=2 T=50: 1 of 2 stream purchases flagged; "
            ),
            "{text}"
        );
    }

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_skipped_line_beyond_the_shown_ones_is_a_line() {
        for (skips, last) in [
            (11, "warning: 1 more skipped line not shown\n"),
            (12, "warning: 2 more skipped lines not shown\n"),
        ] {
            let out = Shared::default();
            let mut log = SkipLog::new(Box::new(out.clone()), false);
            for line in 1..=skips {
                log.skip("s.json", line, &SkipReason::NotObject).unwrap();
            }
            log.finish();
            let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
            assert!(text.ends_with(last), "{text}");
        }
    }
}
