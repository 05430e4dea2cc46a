//! What a run tells its user on stderr: skipped lines (the first ten in full, then a count)
//! and the one-line summary at the end.

use std::io::Write;
use std::time::Duration;

use crate::error::{Fatal, SkipClass, SkipReason};

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

    pub fn to_stderr(strict: bool) -> Self {
        SkipLog::new(Box::new(std::io::stderr()), strict)
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
            let _ = writeln!(self.out, "warning: {file}:{line}: skipped: {reason}");
        }
        Ok(())
    }

    /// Reports how many skipped lines were not shown in full.
    pub fn finish(&mut self) {
        if self.total > SHOWN_SKIPS {
            let _ = writeln!(
                self.out,
                "warning: {} more skipped lines not shown",
                self.total - SHOWN_SKIPS
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

/// Figures of a finished run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub batch_file: String,
    pub stream_file: String,
    pub batch_events: u64,
    pub stream_events: u64,
    pub stream_purchases: u64,
    pub flagged: u64,
    pub skipped: Vec<(SkipClass, u64)>,
    pub users: usize,
    pub friendships: usize,
    /// Time spent on the batch log (parameters included) and in all.
    pub batch_elapsed: Duration,
    pub elapsed: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} events, {}: {} events; ",
            self.batch_file, self.batch_events, self.stream_file, self.stream_events
        )?;
        let skipped: u64 = self.skipped.iter().map(|(_, n)| n).sum();
        if skipped == 0 {
            write!(f, "0 lines skipped; ")?;
        } else {
            let parts: Vec<String> = self
                .skipped
                .iter()
                .map(|(class, n)| format!("{n} {class}"))
                .collect();
            write!(f, "{skipped} lines skipped ({}); ", parts.join(", "))?;
        }
        write!(
            f,
            "{} of {} stream purchases flagged; {:.2} s (batch {:.2} s, stream {:.2} s)",
            self.flagged,
            self.stream_purchases,
            self.elapsed.as_secs_f64(),
            self.batch_elapsed.as_secs_f64(),
            (self.elapsed.saturating_sub(self.batch_elapsed)).as_secs_f64()
        )
    }
}
