//! The `anomaly-detect` command: wires the options to the replay.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use anomaly_detect::cli::Options;
use anomaly_detect::report::SkipLog;
use anomaly_detect::sink::{FlaggedLines, OutputFile};
use anomaly_detect::{Config, LogFile, replay};

fn run() -> anyhow::Result<()> {
    let options = Options::parse();
    let mut config = Config {
        degree: options.degree,
        tracked: options.tracked,
        chunk_bytes: options.chunk_bytes.max(1),
        window: options.window.max(1),
        ..Config::default()
    };
    if let Some(threads) = options.threads {
        config.threads = threads as usize;
    }
    let batch = LogFile::open(&options.batch)?;
    let stream = LogFile::open(&options.stream)?;
    let (output, writer) = OutputFile::create(&options.output)?;
    let mut sink = FlaggedLines::new(writer);
    let mut skips = SkipLog::to_stderr(options.strict);
    let result = replay(&batch, &stream, &config, &mut sink, &mut skips);
    skips.finish();
    let summary = result?;
    output
        .commit(sink.into_inner())
        .context("the flagged purchases were not saved")?;
    if !options.quiet {
        eprintln!("{summary}");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error:#}");
            ExitCode::from(2)
        }
    }
}
