//! The `anomaly-detect` command: wires the options to the replay.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use anyhow::Context;
use clap::{CommandFactory, Parser};

use crate::Fatal;
use crate::cli::{Command, Options};
use crate::error::{escaped, shown};
use crate::ingest::chunks::ChunkSource;
use crate::ingest::input::{self, BatchSource, StreamSource};
use crate::output::outputs::{self, Outputs};
use crate::output::progress::Progress;
use crate::output::report::{SkipLog, Summary};
use crate::replay::Replay;
use crate::signals::Interrupt;
use crate::stderr;

fn run(options: Options, release_memory: fn()) -> anyhow::Result<()> {
    if let Some(kind) = options.generate {
        if outputs::STDOUT_CLOSED.load(Ordering::Relaxed) {
            anyhow::bail!("-: cannot write: standard output is closed");
        }
        let mut out = std::io::stdout().lock();
        kind.write(&mut out)
            .and_then(|()| out.flush())
            .map_err(|error| Fatal::Write {
                path: "-".into(),
                error,
            })?;
        return Ok(());
    }
    if let Some(Command::Sweep(sweep)) = &options.command {
        let interrupt = Interrupt::install().context("cannot install the signal handler")?;
        let interrupt = INTERRUPT.get_or_init(|| interrupt);
        return crate::sweep::run(sweep, Some(interrupt.flag.clone()), release_memory);
    }
    let (batch_path, stream_path, output_path) = options.paths();
    let mut config = options.config();
    config.release_memory = release_memory;
    let live = stream_path.as_os_str() == "-" || options.follow;
    // Before anything is read or written: no output may name an input or another output.
    let plan = Outputs::plan(
        [batch_path, stream_path],
        output_path,
        options.feed.as_deref(),
        options.recommend.as_deref(),
        options.stats.as_deref(),
        live,
    )?;
    let batch = BatchSource::open(batch_path)?;
    if let Some(dir) = &options.state {
        let BatchSource::File(batch) = batch else {
            return Err(Fatal::State {
                dir: dir.clone(),
                problem: format!(
                    "the batch log {} is not a regular file: a checkpoint keeps its identity",
                    shown(batch_path)
                ),
            }
            .into());
        };
        return run_with_state(&options, dir, batch, config);
    }
    let stream = StreamSource::open(stream_path, options.follow)?;
    // Every output is prepared before the replay; none is visible before the batch is read.
    let mut opened = plan.open()?;
    let interrupt = Interrupt::install().context("cannot install the signal handler")?;
    let interrupt = INTERRUPT.get_or_init(|| interrupt);
    config.stop = Some(interrupt.flag.clone());

    let progress = Progress::on_terminal(options.quiet || stream.is_live());
    let mut skips = SkipLog::new(Box::new(progress.stderr()), options.strict);
    let replay_all = || -> Result<_, Fatal> {
        let (batch_file, stream_file);
        let source = match batch {
            BatchSource::File(log) => {
                batch_file = log;
                ChunkSource::whole(&batch_file)
            }
            BatchSource::Read(log) => ChunkSource::Read(log),
        };
        let mut replay = Replay::batch(source, &config, &mut skips, &progress)?;
        for warning in opened.begin()? {
            stderr::line(warning);
        }
        let mut outputs = Outputs::new(opened);
        let source = match stream {
            StreamSource::File(log) => {
                stream_file = log;
                ChunkSource::whole(&stream_file)
            }
            StreamSource::Read(log) => ChunkSource::Read(log),
            StreamSource::Live(log) => ChunkSource::Live {
                log,
                stop: &interrupt.stopped,
            },
        };
        let mut checks = replay.single_check(&mut outputs.sinks);
        replay.stream(source, &mut checks, &mut skips, &progress)?;
        Ok((replay.finish(&skips), outputs))
    };
    let result = replay_all();
    skips.finish();
    commit(result, output_path, options.quiet)
}

/// Ends a run: its outputs committed after a replay that succeeded, the summary shown. An
/// interrupt names the output it leaves as it was: `Error: flagged.json: interrupted: ...`.
fn commit(
    result: Result<(Summary, Outputs), Fatal>,
    output_path: &Path,
    quiet: bool,
) -> anyhow::Result<()> {
    let (summary, outputs) = result.map_err(|error| match error {
        Fatal::Interrupted => anyhow::Error::from(error).context(shown(output_path)),
        error => error.into(),
    })?;
    outputs.commit(|| summary.to_json())?;
    if !quiet {
        stderr::line(summary);
    }
    Ok(())
}

/// A live run with `--state DIR` (`live::run`): resumed from DIR's checkpoint when it has
/// one (no batch replay), else the batch replayed; checkpoints saved as the stream goes.
fn run_with_state(
    options: &Options,
    dir: &std::path::Path,
    batch: crate::ingest::input::LogFile,
    mut config: crate::config::Config,
) -> anyhow::Result<()> {
    use crate::live::run::LiveState;
    let (batch_path, stream_path, output_path) = options.paths();
    let plan = Outputs::plan(
        [batch_path, stream_path],
        output_path,
        options.feed.as_deref(),
        options.recommend.as_deref(),
        options.stats.as_deref(),
        true,
    )?;
    let mut roles = vec![("OUTPUT", output_path)];
    roles.extend(options.feed.as_deref().map(|p| ("--feed", p)));
    roles.extend(options.recommend.as_deref().map(|p| ("--recommend", p)));
    let live = LiveState::open(dir, &batch, stream_path, &roles, &config)?;
    let mut opened = plan.open()?;
    let interrupt = Interrupt::install().context("cannot install the signal handler")?;
    let interrupt = INTERRUPT.get_or_init(|| interrupt);
    config.stop = Some(interrupt.flag.clone());
    let progress = Progress::hidden();
    let mut skips = SkipLog::new(Box::new(progress.stderr()), options.strict);
    let replay_all = || -> Result<_, Fatal> {
        let mut replay = match live.restore(&config)? {
            Some(mut replay) => {
                opened.keep_torn_tails();
                replay.restored_from(&batch.name, &dir.to_string_lossy());
                replay
            }
            None => Replay::batch(ChunkSource::whole(&batch), &config, &mut skips, &progress)?,
        };
        let (log, positions) = live.stream(stream_path)?;
        for warning in opened.begin()? {
            stderr::line(warning);
        }
        let (mut outputs, mut checkpointer) = live.outputs(
            opened,
            positions,
            stream_path.as_os_str() == "-",
            std::time::Duration::from_secs(options.checkpoint_seconds as u64),
            options.checkpoint_events as u64,
        )?;
        let source = ChunkSource::Live {
            log,
            stop: &interrupt.stopped,
        };
        checkpointer.start(replay.state())?;
        let mut checks = replay.single_check(&mut outputs.sinks);
        replay.stream_live(source, &mut checks, &mut skips, &mut checkpointer)?;
        Ok((replay.finish(&skips), outputs))
    };
    let result = replay_all();
    skips.finish();
    commit(result, output_path, options.quiet)
}

/// Notes whether standard input and output are closed before the Rust runtime opens
/// `/dev/null` in their place (see [`outputs::STDOUT_CLOSED`], [`input::STDIN_CLOSED`]). The
/// binary runs it from `.init_array`, which glibc runs before `main`.
pub extern "C" fn probe_standard_streams() {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    let closed = |fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1;
    outputs::STDOUT_CLOSED.store(closed(1), Ordering::Relaxed);
    input::STDIN_CLOSED.store(closed(0), Ordering::Relaxed);
}

/// The run's signal handling, for the exit status of an interrupted run.
static INTERRUPT: OnceLock<Interrupt> = OnceLock::new();

/// The exit statuses (README, "Exit status"; `--help` ends with them).
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
            Some(fatal) if fatal.is_interrupt() => {
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

/// What clap has to say instead of a run: `--help` and `--version` go to standard output (a
/// write error is exit 2, naming `-`); a usage error goes to standard error without colours,
/// each line [`escaped`] like every other message, since it quotes the arguments as given (a
/// file name holding an escape sequence must not reach the terminal raw). Returns the exit
/// status: clap's (0 for help, 2 for usage errors).
fn usage(error: &clap::Error) -> u8 {
    let code = u8::try_from(error.exit_code()).unwrap_or(2);
    if error.use_stderr() {
        // The same error from a command without styles: its text holds no escape sequence
        // but those of the arguments, which are shown escaped instead of stripped.
        let plain = Options::command()
            .styles(clap::builder::Styles::plain())
            .try_get_matches_from(std::env::args_os());
        let text = match plain {
            Err(plain) => plain.render().ansi().to_string(),
            Ok(_) => error.render().to_string(),
        };
        let lines: Vec<String> = text
            .trim_end()
            .lines()
            .map(|line| escaped(line.as_bytes(), usize::MAX))
            .collect();
        stderr::line(lines.join("\n"));
        return code;
    }
    let written = if outputs::STDOUT_CLOSED.load(Ordering::Relaxed) {
        Err(std::io::Error::other("standard output is closed"))
    } else {
        error.print().and_then(|()| std::io::stdout().flush())
    };
    match written {
        Ok(()) => code,
        Err(error) => {
            stderr::line(format_args!("Error: -: cannot write: {error}"));
            2
        }
    }
}

/// Runs the `anomaly-detect` command on the process's arguments: the whole program behind
/// `src/main.rs`, which only picks the allocator. `release_memory` hands memory the allocator
/// keeps back to the system; the library calls it after a line over 1 MiB.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     anomaly_detect::command::main(|| {})
/// }
/// ```
pub fn main(release_memory: fn()) -> ExitCode {
    let options = match Options::try_parse().and_then(|o| o.check().map(|()| o)) {
        Ok(options) => options,
        Err(error) => return ExitCode::from(usage(&error)),
    };
    let status = match run(options, release_memory) {
        Ok(()) => ExitStatus::Success,
        Err(error) => {
            stderr::line(format_args!("Error: {error:#}"));
            ExitStatus::of(&error)
        }
    };
    ExitCode::from(status.code())
}
