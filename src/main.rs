//! The `anomaly-detect` command: wires the options to the replay.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Parser;

use anomaly_detect::cli::Options;
use anomaly_detect::outputs::Outputs;
use anomaly_detect::pipeline::Replay;
use anomaly_detect::progress::Progress;
use anomaly_detect::report::SkipLog;
use anomaly_detect::{Fatal, LogFile};

fn run() -> anyhow::Result<()> {
    let options = Options::parse();
    let (config, live) = (options.config(), options.is_live());
    let batch = LogFile::open(&options.batch)?;
    let stream = match live {
        false => Some(LogFile::open(&options.stream)?),
        true => None,
    };
    let source: Box<dyn std::io::Read + Send> = match (live, options.stream.as_os_str() == "-") {
        (true, true) => Box::new(std::io::stdin()),
        (true, false) => {
            Box::new(
                std::fs::File::open(&options.stream).map_err(|error| Fatal::Read {
                    path: options.stream.clone(),
                    error,
                })?,
            )
        }
        _ => Box::new(std::io::empty()),
    };
    let mut outputs = Outputs::open(
        &options.output,
        options.feed.as_deref(),
        options.recommend.as_deref(),
        live,
    )?;
    // Ctrl-C / SIGTERM: the normal end of a live run; a failure that saves nothing in file mode.
    let interrupted = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = crossbeam_channel::bounded(1);
    let flag = interrupted.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
        let _ = stop.try_send(());
    })
    .context("cannot install the signal handler")?;

    let mut skips = SkipLog::to_stderr(options.strict);
    let progress = Progress::on_terminal(options.quiet || live);
    let replay_all = || -> Result<_, Fatal> {
        let mut replay = Replay::batch(&batch, &config, &mut skips, &progress)?;
        let sinks = &mut outputs.sinks;
        match &stream {
            Some(stream) => {
                replay.stream_file(stream, sinks, &mut skips, &progress, Some(&interrupted))?
            }
            None => replay.stream_live(
                &options.stream.display().to_string(),
                source,
                options.follow,
                sinks,
                &mut skips,
                &stopped,
            )?,
        }
        Ok(replay.finish(&skips))
    };
    let result = replay_all();
    skips.finish();
    let summary = result?;
    outputs
        .commit()
        .context("the flagged purchases were not saved")?;
    if let Some(path) = &options.stats {
        std::fs::write(path, summary.to_json())
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
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
