//! Command-line options.

use std::path::PathBuf;

use clap::Parser;

use crate::parse::{MAX_TRACKED, degree_of, param_value, tracked_of};

/// Flags purchases far above what the buyer's social network has spent lately.
///
/// Replays BATCH (history; its first line holds the parameters D and T), then STREAM, and
/// writes every anomalous stream purchase to OUTPUT with the mean and standard deviation of
/// its baseline.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
pub struct Options {
    /// The batch log (JSON Lines; the first line holds {"D": .., "T": ..}).
    pub batch: PathBuf,
    /// The stream log (JSON Lines); `-` reads standard input live.
    pub stream: PathBuf,
    /// Where to write the flagged purchases (replaced at the end of a file run; appended to
    /// and flushed as they are decided in live mode); `-` is standard output.
    pub output: PathBuf,
    /// Degrees of the social network, overriding the batch log's D.
    #[arg(short = 'D', long = "degree", value_parser = degree)]
    pub degree: Option<u32>,
    /// Number of latest purchases in the baseline, overriding the batch log's T.
    #[arg(short = 'T', long = "tracked", value_parser = tracked)]
    pub tracked: Option<u32>,
    /// Worker threads (default: all cores); 1 runs the plain sequential path.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Keep reading STREAM as it grows (like `tail -f`) until interrupted: live mode.
    #[arg(short, long)]
    pub follow: bool,
    /// Also write, for every flagged purchase, the buyer's friends who should see it.
    #[arg(long, value_name = "FILE")]
    pub feed: Option<PathBuf>,
    /// Also write, for every flagged purchase, the friends of friends to suggest befriending the
    /// buyer, with their number of mutual friends.
    #[arg(long, value_name = "FILE")]
    pub recommend: Option<PathBuf>,
    /// Write the run's figures as JSON.
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,
    /// Print no progress bar and no summary line (skipped lines are still reported).
    #[arg(short, long)]
    pub quiet: bool,
    /// Treat the first skipped line as a fatal error.
    #[arg(long)]
    pub strict: bool,
    /// Size of a parsing chunk in bytes (for tests and tuning).
    #[arg(long, hide = true, default_value_t = 1 << 20)]
    pub chunk_bytes: usize,
    /// Stream events per window of parallel checks (for tests and tuning).
    #[arg(long, hide = true, default_value_t = anomaly_detect_default_window())]
    pub window: usize,
}

/// `-D`, read as the parameter line's `D` is (see [`param_value`]).
pub fn degree(text: &str) -> Result<u32, String> {
    let value = param_value(text.as_bytes()).ok_or("D must be a decimal integer")?;
    degree_of(value).ok_or_else(|| "D must be at least 1".to_string())
}

/// `-T`, read as the parameter line's `T` is (see [`param_value`]).
pub fn tracked(text: &str) -> Result<u32, String> {
    let value = param_value(text.as_bytes()).ok_or("T must be a decimal integer")?;
    tracked_of(value).ok_or_else(|| format!("T must be between 2 and {MAX_TRACKED}"))
}

const fn anomaly_detect_default_window() -> usize {
    crate::pipeline::DEFAULT_WINDOW
}

impl Options {
    pub fn config(&self) -> crate::Config {
        let mut config = crate::Config {
            degree: self.degree,
            tracked: self.tracked,
            chunk_bytes: self.chunk_bytes.max(1),
            window: self.window.max(1),
            social: self.feed.is_some() || self.recommend.is_some(),
            ..crate::Config::default()
        };
        if let Some(threads) = self.threads {
            config.threads = threads as usize;
        }
        config
    }
}
