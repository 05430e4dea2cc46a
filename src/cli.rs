//! Command-line options, the help's examples and exit statuses, and the generated shell
//! completions and man page (`--generate`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::config::MAX_WINDOW;
use crate::ingest::parse::{
    MAX_CHUNK_BYTES, MAX_LINE_LIMIT, MAX_TRACKED, degree_of, param_value, tracked_of,
};

/// Flags purchases far above what the buyer's social network has spent lately.
///
/// Replays BATCH (history; its first line holds the parameters D and T), then STREAM, and
/// writes every anomalous stream purchase to OUTPUT with the mean and standard deviation of
/// its baseline.
#[derive(Debug, Parser)]
#[command(version, about, long_about, after_help = after_help(), override_usage = USAGE)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Options {
    /// `sweep`: the flags of a whole grid of D and T at once. A batch log named `sweep` is
    /// given as `./sweep`.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The batch log (JSON Lines; the first line holds {"D": .., "T": ..}).
    // Required (shown `<BATCH>`, as in the usage): `--generate` is exclusive, which clap lets
    // stand without the required arguments, and a subcommand negates them.
    #[arg(required = true)]
    pub batch: Option<PathBuf>,
    /// The stream log (JSON Lines); `-` reads standard input live.
    #[arg(required = true)]
    pub stream: Option<PathBuf>,
    /// Where to write the flagged purchases (replaced at the end of a file run; appended to
    /// and flushed as they are decided in live mode); `-` is standard output; a device or FIFO
    /// is written through. No output may name an input or another output.
    #[arg(required = true)]
    pub output: Option<PathBuf>,
    /// Degrees of the social network, overriding the batch log's D (1 or more).
    #[arg(short = 'D', long = "degree", value_name = "D", value_parser = degree)]
    pub degree: Option<u32>,
    /// Number of latest purchases in the baseline, overriding the batch log's T
    /// (2..=10000000).
    #[arg(short = 'T', long = "tracked", value_name = "T", value_parser = tracked)]
    pub tracked: Option<u32>,
    /// Worker threads, 1..=1024 (default: all cores); 1 runs the plain sequential path.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Keep reading STREAM as it grows (like `tail -F`) until interrupted: live mode.
    #[arg(short, long)]
    pub follow: bool,
    /// Also write, for every flagged purchase, the buyer's friends who should see it (`-`:
    /// standard output).
    #[arg(long, value_name = "FILE")]
    pub feed: Option<PathBuf>,
    /// Also write, for every flagged purchase, the friends of friends to suggest befriending the
    /// buyer, with their number of mutual friends (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    pub recommend: Option<PathBuf>,
    /// Write the run's figures as JSON (`-`: standard output), replaced with the other outputs
    /// when the run succeeds.
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,
    /// Live mode only: keep checkpoints in DIR (created if missing) and resume from them on
    /// restart: outputs go on exactly where they stopped, no line written twice.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Seconds between checkpoints with --state (for tests and tuning).
    #[arg(long, hide = true, requires = "state", default_value_t = DEFAULT_CHECKPOINT_SECONDS, value_parser = checkpoint_seconds)]
    pub checkpoint_seconds: usize,
    /// Stream events between checkpoints with --state (for tests and tuning).
    #[arg(long, hide = true, requires = "state", default_value_t = DEFAULT_CHECKPOINT_EVENTS, value_parser = checkpoint_events)]
    pub checkpoint_events: usize,
    /// Print no progress bar and no summary line (skipped lines are still reported).
    #[arg(short, long)]
    pub quiet: bool,
    /// Treat the first skipped line as a fatal error.
    #[arg(long)]
    pub strict: bool,
    /// Print a shell completion script or the man page to standard output, and exit.
    #[arg(long, value_name = "KIND", exclusive = true)]
    pub generate: Option<Generate>,
    /// Size of a parsing chunk in bytes, 1 to 1 GiB (for tests and tuning).
    #[arg(long, hide = true, default_value_t = 1 << 20, value_parser = chunk_bytes)]
    pub chunk_bytes: usize,
    /// The longest line read in bytes, 1 to 1 GiB; longer ones are skipped as too long (for
    /// tests).
    #[arg(long, hide = true, default_value_t = crate::ingest::input::MAX_LINE, value_parser = max_line_bytes)]
    pub max_line_bytes: usize,
    /// Stream events per window of parallel checks, 1 to 1048576 (for tests and tuning).
    #[arg(long, hide = true, default_value_t = anomaly_detect_default_window(), value_parser = window)]
    pub window: usize,
}

/// The forms of the command line.
const USAGE: &str = "\
anomaly-detect [OPTIONS] <BATCH> <STREAM> <OUTPUT>
       anomaly-detect sweep [OPTIONS] <BATCH> <STREAM>
       anomaly-detect --generate <KIND>";

/// The help's examples: what each does (indented 2), then the command (indented 4). The first
/// line's indent stands before the `\`, which drops the white space that starts the next line.
const EXAMPLES: &str = "  \
  Flag the stream's anomalous purchases into flagged.json:
    anomaly-detect batch_log.json stream_log.json flagged.json

  The same with a wider network and a longer baseline than the batch log's D and T:
    anomaly-detect -D 3 -T 100 batch_log.json stream_log.json flagged.json

  Live: flag each line as it arrives, from a growing file or any consumer's pipe:
    tail -F events.json | anomaly-detect batch_log.json - flagged.json
    anomaly-detect --follow batch_log.json stream_log.json -

  Also write who should see each flagged purchase, and whom to suggest as a friend:
    anomaly-detect --feed feed.json --recommend recommend.json batch_log.json stream_log.json flagged.json

  What every D in 1..3 with every T in 10, 50 and 100 would flag, as a table and a picture:
    anomaly-detect sweep -D 1..3 -T 10,50,100 --svg sweep.svg batch_log.json stream_log.json

  Install the bash completions:
    mkdir -p ~/.local/share/bash-completion/completions
    anomaly-detect --generate complete-bash > ~/.local/share/bash-completion/completions/anomaly-detect";

/// The exit statuses and their meaning, word for word those of README.md's "Exit status"
/// table (without its code marks; a test compares them).
pub const EXIT_STATUSES: [(u8, &str); 4] = [
    (
        0,
        "success; in live mode also a stop by Ctrl-C or SIGTERM, the normal end",
    ),
    (
        2,
        "a fatal problem: unreadable input, missing or invalid parameter line, unwritable \
         output, an output naming an input or another output, a skipped line under --strict, \
         bad options, threads that cannot start. One line Error: <file>: <problem> on stderr \
         (bad options: clap's usage message); no output is replaced",
    ),
    (
        130,
        "a file replay interrupted by Ctrl-C (SIGINT); no output is replaced, no temporary \
         file is left. Also any run stopped while an output's reader was not reading (within a \
         second; that output is incomplete)",
    ),
    (143, "the same, by SIGTERM"),
];

/// The end of `--help`: the examples, then the exit statuses (wrapped to 96 columns).
fn after_help() -> String {
    let mut text = format!("Examples:\n{EXAMPLES}\n\nExit status:");
    for (status, meaning) in EXIT_STATUSES {
        let mut line = format!("\n  {status:<5}");
        for word in meaning.split(' ') {
            if line.len() + 1 + word.len() > 96 && line.trim_start().len() > 5 {
                text.push_str(&line);
                line = format!("\n{:7}", "");
            } else if !line.ends_with(' ') {
                line.push(' ');
            }
            line.push_str(word);
        }
        text.push_str(&line);
    }
    text
}

/// What `--generate` prints (ripgrep's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    CompleteBash,
    CompleteZsh,
    CompleteFish,
    CompletePowershell,
    /// The man page (roff), for `man -l` or a `man1` folder.
    Man,
}

impl Generate {
    /// Writes the completion script or man page to `out`. The text is made in memory first:
    /// clap_complete panics on a write error, and `out` may be a full disk or a closed pipe.
    pub fn write(self, out: &mut dyn Write) -> std::io::Result<()> {
        use clap_complete::Shell;
        let command = Options::command();
        let mut text = Vec::new();
        let shell = match self {
            Generate::CompleteBash => Shell::Bash,
            Generate::CompleteZsh => Shell::Zsh,
            Generate::CompleteFish => Shell::Fish,
            Generate::CompletePowershell => Shell::PowerShell,
            Generate::Man => {
                man_page(command, &mut text)?;
                return out.write_all(&text);
            }
        };
        let mut command = without_hidden(&command);
        clap_complete::generate(shell, &mut command, "anomaly-detect", &mut text);
        if shell == Shell::Bash {
            // clap_complete names the subcommands' `case` labels from the binary's name with
            // its hyphen turned into `__subcmd__`, but sets `cmd` with it turned into `__`
            // (clap-rs/clap#6421): no label would match, and nothing would be offered after
            // `sweep`. The labels are given the name `cmd` is set to.
            let script = String::from_utf8_lossy(&text).replace(
                "anomaly__subcmd__detect__subcmd__",
                "anomaly__detect__subcmd__",
            );
            return out.write_all(script.as_bytes());
        }
        out.write_all(&text)
    }
}

/// `command` without its hidden options, in it and in its subcommands: clap_complete's
/// scripts list every option, hidden or not, and a hidden one is for tests and tuning (or, as
/// the sweep's `--state`, only there to be refused with a reason), not to be offered.
fn without_hidden(command: &clap::Command) -> clap::Command {
    let mut visible = clap::Command::new(command.get_name().to_string())
        .args(
            command
                .get_arguments()
                .filter(|arg| !arg.is_hide_set())
                .cloned(),
        )
        .subcommands(command.get_subcommands().map(without_hidden));
    if let Some(about) = command.get_about() {
        visible = visible.about(about.clone());
    }
    if let Some(long_about) = command.get_long_about() {
        visible = visible.long_about(long_about.clone());
    }
    if let Some(version) = command.get_version() {
        visible = visible.version(version.to_string());
    }
    visible
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replays the logs once and reports what every pair of D and T would flag.
    ///
    /// Prints a table (one row per D, one column per T) of the flagged stream purchases and
    /// their share of the stream purchases checked; the batch log's own D and T are marked
    /// with `*`. Every pair's flags are exactly those of a run with `-D d -T t`.
    #[command(after_help = SWEEP_AFTER_HELP)]
    Sweep(SweepOptions),
}

/// The end of `sweep --help`: what a LIST is, then the examples (the man page splits it at
/// `Examples:`).
const SWEEP_AFTER_HELP: &str = "\
LIST: comma-separated values and inclusive ranges, e.g. `2,10,50`, `1..4`, `1..3,6` (at most
32 values). Defaults: D 1,2,3 and T 10,20,50,100,200, each with the batch log's own value added.

Examples:
  anomaly-detect sweep -D 1..3 -T 10,50,100 batch_log.json stream_log.json
  anomaly-detect sweep --csv grid.csv --svg grid.svg --outputs flagged/ batch_log.json stream_log.json";

/// The options of `anomaly-detect sweep`.
#[derive(Debug, Args)]
pub struct SweepOptions {
    /// The batch log (JSON Lines; the first line holds {"D": .., "T": ..}). A file named
    /// `sweep` is given as `./sweep`.
    pub batch: PathBuf,
    /// The stream log (JSON Lines): a file, a pipe or a FIFO, replayed whole (not `-`, not
    /// live).
    pub stream: PathBuf,
    /// The degrees D to try, each 1 or more [default: 1..3 and the batch log's D].
    #[arg(short = 'D', long = "degree", value_name = "LIST", value_parser = degree_list)]
    pub degrees: Option<List>,
    /// The baseline sizes T to try, each 2..=10000000 [default: 10,20,50,100,200 and the batch
    /// log's T].
    #[arg(short = 'T', long = "tracked", value_name = "LIST", value_parser = tracked_list)]
    pub tracked: Option<List>,
    /// Write one CSV row per pair: D,T,flagged,share,buyers,feed,recommend and the last three
    /// per day (flagged_per_day,feed_per_day,recommend_per_day); `-` is standard output.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Draw a heat map of the flagged share per pair and one of the recommendation emails per
    /// day (SVG); `-` is standard output.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Write how far apart the users of every stream befriend were just before it (CSV
    /// distance,friendships: 1 up to the largest D, then more); `-` is standard output.
    #[arg(long, value_name = "FILE")]
    pub distances: Option<PathBuf>,
    /// Write DIR/flagged_D{d}_T{t}.json for every pair, as a run with `-D d -T t` writes its
    /// OUTPUT (DIR is created if missing; its parent must exist).
    #[arg(long, value_name = "DIR")]
    pub outputs: Option<PathBuf>,
    /// Worker threads, 1..=1024 (default: all cores); 1 runs the plain sequential path.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Print no progress bar and no summary line (skipped lines are still reported).
    #[arg(short, long)]
    pub quiet: bool,
    /// Treat the first skipped line as a fatal error.
    #[arg(long)]
    pub strict: bool,
    /// Refused: a sweep replays files, it has no live state (see [`Options::check`]).
    #[arg(long, hide = true, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Size of a parsing chunk in bytes, 1 to 1 GiB (for tests and tuning).
    #[arg(long, hide = true, default_value_t = 1 << 20, value_parser = chunk_bytes)]
    pub chunk_bytes: usize,
    /// Stream events per window of parallel checks, 1 to 1048576 (for tests and tuning).
    #[arg(long, hide = true, default_value_t = anomaly_detect_default_window(), value_parser = window)]
    pub window: usize,
}

/// A list of `D` or `T` values: ascending, without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub values: Vec<u32>,
    /// The largest value given beyond `u32::MAX` (a `D`: it is `u32::MAX`, the whole connected
    /// component), as given without its leading zeros: the sweep names that `D` by it.
    pub beyond: Option<String>,
}

/// Most values in a `-D` or `-T` list of a sweep.
pub const MAX_LIST: usize = 32;

/// A sweep's `-D LIST`.
pub fn degree_list(text: &str) -> Result<List, String> {
    list(text, degree)
}

/// A sweep's `-T LIST`.
pub fn tracked_list(text: &str) -> Result<List, String> {
    list(text, tracked)
}

/// Comma-separated values and inclusive ranges `a..b`, each bound read by `value`; sorted, and
/// repeats dropped.
fn list(text: &str, value: fn(&str) -> Result<u32, String>) -> Result<List, String> {
    let mut values = Vec::new();
    let mut beyond: Option<String> = None;
    for part in text.split(',') {
        if part.is_empty() {
            return Err(format!("empty item in the list `{text}`"));
        }
        let (low, high) = match part.split_once("..") {
            Some((low, high)) => (value(low)?, value(high)?),
            None => (value(part)?, value(part)?),
        };
        if low > high {
            return Err(format!("the range `{part}` is empty: {low} > {high}"));
        }
        if u64::from(high - low) + values.len() as u64 >= MAX_LIST as u64 {
            return Err(format!("the list `{text}` has more than {MAX_LIST} values"));
        }
        values.extend(low..=high);
        let given = part
            .rsplit("..")
            .next()
            .unwrap_or(part)
            .trim_start_matches('0');
        let larger = |than: &String| (given.len(), given) > (than.len(), than.as_str());
        if high == u32::MAX && given.len() >= 10 && beyond.as_ref().is_none_or(larger) {
            beyond = Some(given.to_string());
        }
    }
    values.sort_unstable();
    values.dedup();
    // `4294967295` itself is not beyond.
    let beyond = beyond.filter(|given| given.parse::<u32>().is_err());
    Ok(List { values, beyond })
}

/// The man page, in the sections `man rg` has: NAME, SYNOPSIS, DESCRIPTION, OPTIONS, then
/// SWEEP (the subcommand's description, options, lists and examples in the same page: no
/// `anomaly-detect-sweep(1)` page to look for), EXAMPLES (each command kept as a line, not
/// refilled), EXIT STATUS ([`EXIT_STATUSES`]) and VERSION.
fn man_page(command: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    use clap_mangen::Man;
    let sweep = command.find_subcommand("sweep").cloned();
    let man = Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    if let Some(sweep) = sweep {
        let sweep = Man::new(sweep.bin_name("anomaly-detect sweep"));
        let mut section = Vec::new();
        sweep.render_description_section(&mut section)?;
        sweep.render_options_section(&mut section)?;
        let section = String::from_utf8_lossy(&section)
            .replace(".SH DESCRIPTION", ".SH SWEEP")
            .replace(".SH OPTIONS", ".SS \"Sweep options\"");
        out.write_all(section.as_bytes())?;
        let (lists, examples) = SWEEP_AFTER_HELP
            .split_once("\n\nExamples:\n")
            .expect("the sweep's help has examples");
        writeln!(out, ".SS Lists\n.PP\n{}", roff(&lists.replace('\n', " ")))?;
        writeln!(out, ".SS \"Sweep examples\"")?;
        write_commands(out, examples.lines())?;
    }
    out.write_all(b".SH EXAMPLES\n")?;
    for example in EXAMPLES.split("\n\n") {
        let (what, commands) = example.split_once('\n').expect("a line, then commands");
        writeln!(out, ".PP\n{}", roff(what.trim()))?;
        write_commands(out, commands.lines())?;
    }
    out.write_all(b".SH \"EXIT STATUS\"\n")?;
    for (status, meaning) in EXIT_STATUSES {
        writeln!(out, ".TP\n{status}\n{}", roff(meaning))?;
    }
    man.render_version_section(out)
}

/// Commands as an indented block of lines, not refilled.
fn write_commands<'a>(
    out: &mut dyn Write,
    commands: impl Iterator<Item = &'a str>,
) -> std::io::Result<()> {
    out.write_all(b".PP\n.RS 4\n.nf\n")?;
    for command in commands {
        writeln!(out, "{}", roff(command.trim()))?;
    }
    out.write_all(b".fi\n.RE\n")
}

/// Text as one roff input line: backslashes and hyphens escaped, and a leading `.` or `'` kept
/// from reading as a request.
fn roff(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with(['.', '\'']) {
        format!("\\&{text}")
    } else {
        text
    }
}

/// `-D`, read as the parameter line's `D` is (see [`param_value`]). A refusal names the value:
/// in a sweep's list, clap names only the whole list.
pub fn degree(text: &str) -> Result<u32, String> {
    let value = param_value(text.as_bytes()).ok_or_else(|| not_integer("D", text))?;
    degree_of(value).ok_or_else(|| format!("D must be at least 1, got {text}"))
}

/// `-T`, read as the parameter line's `T` is (see [`param_value`]).
pub fn tracked(text: &str) -> Result<u32, String> {
    let value = param_value(text.as_bytes()).ok_or_else(|| not_integer("T", text))?;
    tracked_of(value).ok_or_else(|| format!("T must be between 2 and {MAX_TRACKED}, got {text}"))
}

/// The refusal of a `-D` or `-T` that is not a decimal integer. A list or a range reaches here
/// only in a run (a sweep splits its lists first): the message says where they belong.
fn not_integer(name: &str, text: &str) -> String {
    let mut message = format!("{name} must be a decimal integer");
    if text.contains(',') || text.contains("..") {
        message.push_str(&format!(
            "; lists and ranges such as `{text}` are for `anomaly-detect sweep`"
        ));
    }
    message
}

/// `--chunk-bytes`: 1 to [`MAX_CHUNK_BYTES`].
fn chunk_bytes(text: &str) -> Result<usize, String> {
    within(text, MAX_CHUNK_BYTES, " (1 GiB)")
}

/// `--max-line-bytes`: 1 to [`MAX_LINE_LIMIT`].
fn max_line_bytes(text: &str) -> Result<usize, String> {
    within(text, MAX_LINE_LIMIT, " (1 GiB)")
}

/// `--window`: 1 to [`MAX_WINDOW`].
fn window(text: &str) -> Result<usize, String> {
    within(text, MAX_WINDOW, "")
}

/// A hidden tuning option's value: a decimal integer from 1 to `max` (`about` says what `max`
/// is). Anything else, however large, is refused with the range, never wrapped or cut.
fn within(text: &str, max: usize, about: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(value) if (1..=max).contains(&value) && text.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(value)
        }
        _ => Err(format!("must be a whole number from 1 to {max}{about}")),
    }
}

/// Default seconds between checkpoints of a live run with `--state`.
pub const DEFAULT_CHECKPOINT_SECONDS: usize = 10;

/// Default stream events between checkpoints of a live run with `--state`.
pub const DEFAULT_CHECKPOINT_EVENTS: usize = 10_000_000;

/// `--checkpoint-seconds`: 1 to a day.
fn checkpoint_seconds(text: &str) -> Result<usize, String> {
    within(text, 86_400, " (a day)")
}

/// `--checkpoint-events`: 1 to 2^40.
fn checkpoint_events(text: &str) -> Result<usize, String> {
    within(text, 1 << 40, "")
}

const fn anomaly_detect_default_window() -> usize {
    crate::config::DEFAULT_WINDOW
}

impl Options {
    /// What clap cannot check: `--state` needs live mode (STREAM `-` or `--follow`); a file
    /// replay and the sweep start afresh and replace their outputs, so a state would be
    /// silently ignored. Refused like any bad option (exit 2).
    pub fn check(&self) -> Result<(), clap::Error> {
        let refuse = |why: &str| {
            Err(Options::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                format!("--state needs live mode (STREAM `-` or --follow): {why}"),
            ))
        };
        match &self.command {
            Some(Command::Sweep(sweep)) if sweep.state.is_some() => {
                refuse("a sweep replays files and keeps no state")
            }
            None if self.state.is_some()
                && !self.follow
                && self.stream.as_deref().is_some_and(|s| s.as_os_str() != "-") =>
            {
                refuse("a file replay starts afresh and replaces its outputs")
            }
            _ => Ok(()),
        }
    }

    /// BATCH, STREAM and OUTPUT, which clap requires unless `--generate` is given.
    pub fn paths(&self) -> (&Path, &Path, &Path) {
        let missing = "clap requires BATCH, STREAM and OUTPUT without --generate";
        (
            self.batch.as_deref().expect(missing),
            self.stream.as_deref().expect(missing),
            self.output.as_deref().expect(missing),
        )
    }

    pub fn config(&self) -> crate::config::Config {
        let mut config = crate::config::Config {
            degree: self.degree,
            tracked: self.tracked,
            chunk_bytes: self.chunk_bytes.max(1),
            window: self.window.max(1),
            max_line: self.max_line_bytes.max(1),
            social: self.feed.is_some() || self.recommend.is_some(),
            ..crate::config::Config::default()
        };
        if let Some(threads) = self.threads {
            config.threads = threads as usize;
        }
        config
    }
}
