//! A progress bar on the terminal (indicatif) for the batch and the stream: bytes, events per
//! second and time left. Hidden when stderr is not a terminal or with `--quiet`. Messages
//! printed while a bar is shown go through [`Progress::stderr`], so they never glue onto it.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress of the current phase, if shown.
pub struct Progress {
    shown: bool,
    bar: Arc<Mutex<Option<ProgressBar>>>,
}

impl Progress {
    /// A progress bar shown only on a terminal, and not when `quiet`.
    pub fn on_terminal(quiet: bool) -> Self {
        Progress {
            shown: !quiet && std::io::stderr().is_terminal(),
            bar: Arc::new(Mutex::new(None)),
        }
    }

    pub fn hidden() -> Self {
        Progress {
            shown: false,
            bar: Arc::new(Mutex::new(None)),
        }
    }

    /// Starts a phase of `total` bytes.
    pub fn start(&self, phase: &str, total: u64) {
        if !self.shown {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>6} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(phase.to_string());
        *self.bar.lock().expect("progress poisoned") = Some(bar);
    }

    /// Bytes of the phase done so far.
    pub fn set(&self, done: u64) {
        if let Some(bar) = self.bar.lock().expect("progress poisoned").as_ref() {
            bar.set_position(done);
        }
    }

    /// Standard error for messages: each whole line is printed above the bar, if one is shown.
    pub fn stderr(&self) -> ProgressStderr {
        ProgressStderr {
            bar: self.bar.clone(),
            line: Vec::new(),
        }
    }

    /// Ends the phase and clears its bar.
    pub fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress poisoned").take() {
            bar.finish_and_clear();
        }
    }
}

/// Standard error, one whole line at a time, printed above the progress bar while it is shown
/// (see [`Progress::stderr`]).
pub struct ProgressStderr {
    bar: Arc<Mutex<Option<ProgressBar>>>,
    /// The line written so far, up to its `\n`.
    line: Vec<u8>,
}

impl ProgressStderr {
    fn print(&mut self, upto: usize) -> std::io::Result<()> {
        let bar = self.bar.lock().expect("progress poisoned");
        let text = &self.line[..upto];
        let result = match bar.as_ref() {
            Some(bar) => bar.suspend(|| crate::stderr::write_all(text)),
            None => crate::stderr::write_all(text),
        };
        drop(bar);
        self.line.drain(..upto);
        result
    }
}

impl Write for ProgressStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        if let Some(end) = memchr::memrchr(b'\n', &self.line) {
            self.print(end + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.line.is_empty() {
            self.print(self.line.len())?;
        }
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_wait_for_their_end_of_line() {
        let mut err = Progress::hidden().stderr();
        err.write_all(b"warning: half").unwrap();
        assert_eq!(err.line, b"warning: half");
        assert!(!crate::stderr::captured().contains("warning: half"));
        err.write_all(b" a line of the progress test\nnext")
            .unwrap();
        assert_eq!(err.line, b"next", "the whole line went out, the rest waits");
        let shown = crate::stderr::captured();
        assert!(
            shown.contains("warning: half a line of the progress test\n"),
            "{shown}"
        );
        err.write_all(b" line, not ended, of the progress test")
            .unwrap();
        err.flush().unwrap();
        assert!(err.line.is_empty());
        let shown = crate::stderr::captured();
        assert!(
            shown.contains("next line, not ended, of the progress test"),
            "{shown}"
        );
    }
}
