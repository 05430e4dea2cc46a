//! The `anomaly-detect` command: wires the options to the replay.

use std::io::Write;
use std::process::ExitCode;
use std::sync::OnceLock;

use anyhow::Context;
use clap::Parser;

use anomaly_detect::cli::{Command, Options};
use anomaly_detect::ingest::input::StreamSource;
use anomaly_detect::output::outputs::Outputs;
use anomaly_detect::output::progress::Progress;
use anomaly_detect::output::report::SkipLog;
use anomaly_detect::pipeline::Replay;
use anomaly_detect::signals::Interrupt;
use anomaly_detect::{Fatal, LogFile};

/// mimalloc, on 2 MiB pages where the system allows: per-user state is many thousands of small
/// buffers read in random order, and with 4 KiB pages most reads also miss the TLB.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn run() -> anyhow::Result<()> {
    // SAFETY: sets a process-wide allocator option; takes effect for memory reserved later.
    unsafe {
        libmimalloc_sys::mi_option_set_enabled(libmimalloc_sys::mi_option_large_os_pages, true)
    };
    let options = Options::parse();
    if let Some(kind) = options.generate {
        let mut out = std::io::stdout().lock();
        kind.write(&mut out)
            .and_then(|()| out.flush())
            .context("cannot write to standard output")?;
        return Ok(());
    }
    if let Some(Command::Sweep(sweep)) = &options.command {
        let interrupt = Interrupt::install().context("cannot install the signal handler")?;
        let interrupt = INTERRUPT.get_or_init(|| interrupt);
        return anomaly_detect::sweep::run(sweep, Some(interrupt.flag.clone()));
    }
    let (batch_path, stream_path, output_path) = options.paths();
    let mut config = options.config();
    let batch = LogFile::open(batch_path)?;
    let stream = StreamSource::open(stream_path, options.follow)?;
    let (feed, recommend) = (options.feed.as_deref(), options.recommend.as_deref());
    // Outputs are created once the batch has been read: a fatal problem there writes nothing.
    Outputs::check(output_path, feed, recommend)?;
    let interrupt = Interrupt::install().context("cannot install the signal handler")?;
    let interrupt = INTERRUPT.get_or_init(|| interrupt);
    config.stop = Some(interrupt.flag.clone());

    let progress = Progress::on_terminal(options.quiet || stream.is_live());
    let mut skips = SkipLog::new(Box::new(progress.stderr()), options.strict);
    let replay_all = || -> Result<_, Fatal> {
        let mut replay = Replay::batch(&batch, &config, &mut skips, &progress)?;
        let mut outputs = Outputs::open(output_path, feed, recommend, stream.is_live())?;
        let sinks = &mut outputs.sinks;
        match stream {
            StreamSource::File(log) => replay.stream_file(&log, sinks, &mut skips, &progress)?,
            StreamSource::Live {
                name,
                reader,
                follow,
            } => {
                let stopped = &interrupt.stopped;
                replay.stream_live(&name, reader, follow, sinks, &mut skips, stopped)?
            }
        }
        Ok((replay.finish(&skips), outputs))
    };
    let result = replay_all();
    skips.finish();
    let (summary, outputs) = result?;
    outputs
        .commit()
        .context("the flagged purchases were not saved")?;
    if let Some(path) = &options.stats {
        std::fs::write(path, summary.to_json())
            .with_context(|| format!("{}: cannot write the statistics", path.display()))?;
    }
    if !options.quiet {
        eprintln!("{summary}");
    }
    Ok(())
}

/// The run's signal handling, for the exit status of an interrupted run.
static INTERRUPT: OnceLock<Interrupt> = OnceLock::new();

/// The exit statuses (README, "Exit status").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExitStatus {
    Success,
    /// A fatal problem: unreadable input, invalid parameter line, unwritable output, a skipped
    /// line under `--strict`, bad options.
    Fatal,
    /// A file replay stopped by a signal: 128 + its number (130 for Ctrl-C, 143 for SIGTERM).
    Interrupted(u8),
}

impl ExitStatus {
    fn of(error: &anyhow::Error) -> ExitStatus {
        match error.downcast_ref::<Fatal>() {
            Some(Fatal::Interrupted) => {
                ExitStatus::Interrupted(INTERRUPT.get().map_or(130, Interrupt::exit_status))
            }
            _ => ExitStatus::Fatal,
        }
    }

    fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Fatal => 2,
            ExitStatus::Interrupted(code) => code,
        }
    }
}

fn main() -> ExitCode {
    let status = match run() {
        Ok(()) => ExitStatus::Success,
        Err(error) => {
            eprintln!("Error: {error:#}");
            ExitStatus::of(&error)
        }
    };
    ExitCode::from(status.code())
}
