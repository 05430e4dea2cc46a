//! Command-line options.

use std::path::PathBuf;

use clap::Parser;

use crate::parse::MAX_TRACKED;

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
    /// The stream log (JSON Lines).
    pub stream: PathBuf,
    /// Where to write the flagged purchases (replaced atomically at the end of the run).
    pub output: PathBuf,
    /// Degrees of the social network, overriding the batch log's D.
    #[arg(short = 'D', long = "degree", value_parser = clap::value_parser!(u32).range(1..))]
    pub degree: Option<u32>,
    /// Number of latest purchases in the baseline, overriding the batch log's T.
    #[arg(short = 'T', long = "tracked", value_parser = clap::value_parser!(u32).range(2..=MAX_TRACKED as i64))]
    pub tracked: Option<u32>,
    /// Worker threads (default: all cores); 1 runs the plain sequential path.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Print no summary line at the end (skipped lines are still reported).
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

const fn anomaly_detect_default_window() -> usize {
    crate::pipeline::DEFAULT_WINDOW
}
