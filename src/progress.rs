//! A progress bar on the terminal (indicatif) for the batch and the stream: bytes, events per
//! second and time left. Hidden when stderr is not a terminal or with `--quiet`.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress of the current phase, if shown.
pub struct Progress {
    shown: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    /// A progress bar shown only on a terminal, and not when `quiet`.
    pub fn on_terminal(quiet: bool) -> Self {
        Progress {
            shown: !quiet && std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
        }
    }

    pub fn hidden() -> Self {
        Progress {
            shown: false,
            bar: Mutex::new(None),
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

    /// Ends the phase and clears its bar.
    pub fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress poisoned").take() {
            bar.finish_and_clear();
        }
    }
}
