//! `anomaly-detect sweep`: one replay of the logs checks every stream purchase with every pair
//! of a grid of `D` and `T`, and reports per pair what a run with those parameters flags: a
//! table on standard output, and on request a CSV file, an SVG heat map and each pair's
//! flagged-purchases file. With them, what each pair costs per day ([`cost`]) and how far apart
//! the users of the stream's befriends were ([`distances`]).

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};

use crate::cli::SweepOptions;
use crate::config::Config;
use crate::error::Fatal;
use crate::ingest::chunks::{BatchHead, ChunkSource, read_params};
use crate::ingest::input::{BatchSource, LogFile, MAX_LINE, StreamSource};
use crate::ingest::parse::Params;
use crate::output::file::OutputWriter;
use crate::output::outputs::{Input, Mode, OpenOutputs, Output, OutputPlan, STDOUT_CLOSED};
use crate::output::progress::Progress;
use crate::output::report::SkipLog;
use crate::output::sink::{Sink, flagged_line};
use crate::query::network::Grid;
use crate::replay::Replay;
use crate::state::users::UserId;

pub mod cost;
pub mod distances;
pub mod grid;
mod parked;
mod svg;

use cost::Span;
use distances::Distances;
use grid::{GridChecked, GridChecks, Sweep};
use parked::ParkedPairs;

/// The `D` a sweep tries by default, with the batch log's own.
pub const DEFAULT_DEGREES: [u32; 3] = [1, 2, 3];
/// The `T` a sweep tries by default, with the batch log's own.
pub const DEFAULT_TRACKED: [u32; 5] = [10, 20, 50, 100, 200];

/// Runs a sweep; `stop` set (by a signal) interrupts it, and then nothing is written.
/// `release_memory` is the program's hook for its allocator (see [`Config::release_memory`]).
pub fn run(
    options: &SweepOptions,
    stop: Option<Arc<AtomicBool>>,
    release_memory: fn(),
) -> anyhow::Result<()> {
    if options.stream.as_os_str() == "-" {
        bail!("-: a sweep replays STREAM from a file; standard input (live mode) is not supported");
    }
    // A regular file is mapped; a pipe, a FIFO, a device or a file that cannot be mapped is
    // read as it comes, in bounded memory, as in a run.
    let batch = BatchSource::open(&options.batch)?;
    let stream = StreamSource::open(&options.stream, false)?;
    // The parameter line first: the default grid holds the batch log's own D and T.
    let (own, batch) = match batch {
        BatchSource::File(log) => (read_params(&log)?.0, Batch::File(log)),
        BatchSource::Read(reader) => {
            let head = BatchHead::read(reader, MAX_LINE, stop.as_deref())?;
            (head.params, Batch::Head(head))
        }
    };
    let grid = grid_of(options, own);
    let names = degree_names(options, &grid);
    let open_files = raise_open_files_limit();
    let mut files = SweepFiles::check(options, &grid, &names, open_files)?;

    let mut config = Config {
        degree: grid.degrees.last().copied(),
        tracked: grid.tracked.last().copied(),
        chunk_bytes: options.chunk_bytes.max(1),
        window: options.window.max(1),
        stop,
        release_memory,
        ..Config::default()
    };
    if let Some(threads) = options.threads {
        config.threads = threads as usize;
    }
    let progress = Progress::on_terminal(options.quiet);
    let mut skips = SkipLog::new(Box::new(progress.stderr()), options.strict);
    let replay_all = || -> Result<_, Fatal> {
        let batch_file;
        let source = match batch {
            Batch::File(log) => {
                batch_file = log;
                ChunkSource::whole(&batch_file)
            }
            Batch::Head(head) => ChunkSource::Head(head),
        };
        let mut replay = Replay::batch(source, &config, &mut skips, &progress)?;
        let tally = Tally::new(&grid, files.pair_writers());
        let mut checks = GridChecks::new(grid.clone(), &replay.state().history, tally);
        let stream_file;
        let source = match stream {
            StreamSource::File(log) => {
                stream_file = log;
                ChunkSource::whole(&stream_file)
            }
            // Never live: `-` is refused above, and nothing is followed.
            StreamSource::Read(log) | StreamSource::Live(log) => ChunkSource::Read(log),
        };
        replay.stream(source, &mut checks, &mut skips, &progress)?;
        Ok((replay, checks.into_parts()))
    };
    let result = replay_all();
    skips.finish();
    let (replay, (tally, span, distances)) = result?;
    let mut summary = replay.finish(&skips);
    let (report, pair_outputs) = Report::of(grid, own, tally, (span, distances), names);
    // The summary counts one pair's flags, and names it: the batch log's own, or the grid's
    // first when the lists leave it out.
    let marked = report.marked().unwrap_or(0);
    let cell = &report.cells[marked];
    summary.flagged = cell.flagged;
    summary.flagged_pair = Some(format!(
        "D={} T={}",
        report.degree_names[marked / report.grid.tracked.len()],
        cell.tracked
    ));
    files
        .write(&report, pair_outputs)
        .context("the sweep's outputs were not saved")?;
    if !options.quiet {
        crate::stderr::line(summary);
    }
    Ok(())
}

/// Descriptors a sweep may need besides its outputs: standard streams, the inputs and their
/// reader threads, the signal thread's pipe, folders read or synced, with room to spare.
const RESERVED_FILES: u64 = 64;

/// Raises the soft limit on open files to the hard one (the usual soft limit, 1024, is below
/// what a large grid's pair files need: two descriptors each through the output plan); returns
/// the limit in force.
fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    if limit.rlim_cur >= limit.rlim_max {
        return limit.rlim_cur;
    }
    // An unlimited hard limit cannot be the soft one: the kernel's own maximum is.
    let most = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse::<libc::rlim_t>().ok())
        .unwrap_or(limit.rlim_max);
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max.min(most),
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if raised.rlim_cur > limit.rlim_cur
        && unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0
    {
        return raised.rlim_cur;
    }
    limit.rlim_cur
}

/// A sweep's batch log: mapped, or read as it comes up to its parameter line.
enum Batch {
    File(LogFile),
    Head(BatchHead),
}

/// The grid of a sweep: the lists given, or the defaults with the batch log's own values.
fn grid_of(options: &SweepOptions, own: Params) -> Grid {
    let with_own = |defaults: &[u32], own: u32| {
        let mut values = defaults.to_vec();
        values.push(own);
        values.sort_unstable();
        values.dedup();
        values
    };
    Grid {
        degrees: options.degrees.as_ref().map_or_else(
            || with_own(&DEFAULT_DEGREES, own.degree),
            |list| list.values.clone(),
        ),
        tracked: options.tracked.as_ref().map_or_else(
            || with_own(&DEFAULT_TRACKED, own.tracked),
            |list| list.values.clone(),
        ),
    }
}

/// How the sweep names each `D` of the grid (in files, the table, the CSV and the heat map): by
/// its value, except `u32::MAX` when `-D` gave a larger value (the same `D`, the whole connected
/// component), which is named as given.
fn degree_names(options: &SweepOptions, grid: &Grid) -> Vec<String> {
    let beyond = options.degrees.as_ref().and_then(|l| l.beyond.as_ref());
    grid.degrees
        .iter()
        .map(|&d| match beyond {
            Some(given) if d == u32::MAX => given.clone(),
            _ => d.to_string(),
        })
        .collect()
}

/// The files a sweep was asked to write, checked against the inputs and each other and
/// prepared before any work (the machinery and rules of a run's OUTPUT: see
/// [`crate::output::outputs`]), and committed together at the end. The pairs'
/// flagged-purchases files go through the same plan, unless the grid has more of them than
/// the open-file limit lets the plan hold open (two descriptors each): then they are written
/// through a private folder in `--outputs`, one open at a time (see [`ParkedPairs`]).
struct SweepFiles {
    open: OpenOutputs,
    /// Plan positions of `--csv`, `--svg` and `--distances`.
    csv: Option<usize>,
    svg: Option<usize>,
    distances: Option<usize>,
    /// Plan positions of the pairs' flagged-purchases files, in grid order (none when parked).
    pairs: std::ops::Range<usize>,
    /// The pairs' files, when written through a private folder.
    parked: Option<ParkedPairs>,
    /// Whether the table goes to standard output (not when a file does).
    table: bool,
}

impl SweepFiles {
    /// Checks that every output can be written, none names an input or another output, and
    /// at most one is standard output; prepares them all. Creates the `--outputs` folder when
    /// missing.
    fn check(
        options: &SweepOptions,
        grid: &Grid,
        names: &[String],
        open_files: u64,
    ) -> Result<SweepFiles, Fatal> {
        let stdout = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| p.as_os_str() == "-");
        let mut files: Vec<(&'static str, PathBuf)> = Vec::new();
        let position = |role, path: &Option<PathBuf>, files: &mut Vec<_>| {
            path.as_ref().map(|path: &PathBuf| {
                files.push((role, path.clone()));
                files.len() - 1
            })
        };
        let csv = position("--csv", &options.csv, &mut files);
        let svg = position("--svg", &options.svg, &mut files);
        let distances = position("--distances", &options.distances, &mut files);
        let first_pair = files.len();
        if let Some(dir) = &options.outputs {
            if dir.exists() && !dir.is_dir() {
                return Err(Fatal::Write {
                    path: dir.clone(),
                    error: std::io::Error::other("--outputs names a file, not a folder"),
                });
            }
            if !dir.exists() {
                // A missing parent is said as a run says it of OUTPUT's folder.
                std::fs::create_dir(dir).map_err(|error| Fatal::Write {
                    path: dir.clone(),
                    error: match error.kind() {
                        std::io::ErrorKind::NotFound => {
                            std::io::Error::other("its directory does not exist")
                        }
                        _ => error,
                    },
                })?;
            }
            parked::remove_stale(dir);
            files.extend(names.iter().flat_map(|d| {
                grid.tracked
                    .iter()
                    .map(move |t| ("--outputs", dir.join(format!("flagged_D{d}_T{t}.json"))))
            }));
        }
        let planned: Vec<Output<'_>> = files
            .iter()
            .map(|(role, path)| Output {
                role,
                path,
                mode: Mode::Replace,
            })
            .collect();
        let inputs = [
            Input {
                role: "BATCH",
                path: &options.batch,
            },
            Input {
                role: "STREAM",
                path: &options.stream,
            },
        ];
        let plan = OutputPlan::new(&planned, &inputs)?;
        let pair_count = (files.len() - first_pair) as u64;
        let needed = 2 * files.len() as u64 + RESERVED_FILES;
        let (open, pairs, parked) = match &options.outputs {
            Some(dir) if pair_count > 0 && needed > open_files => {
                // Every file was checked above; the plan opens the others.
                let others = OutputPlan::new(&planned[..first_pair], &inputs)?.open()?;
                let paths = files.drain(first_pair..).map(|(_, path)| path).collect();
                let parked = ParkedPairs::create(dir, paths)?;
                (others, first_pair..first_pair, Some(parked))
            }
            _ => (plan.open()?, first_pair..files.len(), None),
        };
        let table = !stdout(&options.csv) && !stdout(&options.svg) && !stdout(&options.distances);
        if table && STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Fatal::Write {
                path: PathBuf::from("-"),
                error: std::io::Error::other("standard output is closed (the table goes there)"),
            });
        }
        Ok(SweepFiles {
            open,
            csv,
            svg,
            distances,
            pairs,
            parked,
            table,
        })
    }

    /// The pairs' flagged-purchases files, in grid order (none without `--outputs`).
    fn pair_writers(&mut self) -> PairFiles {
        match self.parked.take() {
            Some(parked) => PairFiles::Parked(parked),
            None => PairFiles::Open(self.pairs.clone().map(|i| self.open.writer(i)).collect()),
        }
    }

    /// Writes the CSV and the SVG, puts every file in place together, then prints the table.
    fn write(mut self, report: &Report, pair_files: PairFiles) -> Result<(), Fatal> {
        let finish = |mut out: OutputWriter, text: Option<String>| -> Result<(), Fatal> {
            if let Some(text) = text {
                out.write_all(text.as_bytes()).map_err(Fatal::Output)?;
            }
            out.flush().map_err(Fatal::Output)
        };
        if let Some(i) = self.csv {
            finish(self.open.writer(i), Some(report.csv()))?;
        }
        if let Some(i) = self.svg {
            finish(self.open.writer(i), Some(svg::heat_map(report)))?;
        }
        if let Some(i) = self.distances {
            finish(self.open.writer(i), Some(report.distances.csv()))?;
        }
        let parked = match pair_files {
            PairFiles::Open(writers) => {
                for out in writers {
                    finish(out, None)?;
                }
                None
            }
            PairFiles::Parked(mut parked) => {
                parked.prepare()?;
                Some(parked)
            }
        };
        self.open.commit()?;
        if let Some(parked) = parked {
            parked.put_in_place()?;
        }
        if self.table {
            let mut stdout = std::io::stdout().lock();
            let table = format!(
                "{}\n{}\n{}",
                report.table(),
                report.per_day_table(),
                report.distances.table()
            );
            stdout
                .write_all(table.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| Fatal::Write {
                    path: PathBuf::from("-"),
                    error: e,
                })?;
        }
        Ok(())
    }
}

/// The pairs of a grid in its order: every `T` of the first `D`, then of the next.
pub fn pairs(grid: &Grid) -> impl Iterator<Item = (u32, u32)> + '_ {
    grid.degrees
        .iter()
        .flat_map(|&d| grid.tracked.iter().map(move |&t| (d, t)))
}

/// Where the pairs' flagged lines go.
enum PairFiles {
    /// One writer per pair in grid order (none without `--outputs`), from the output plan.
    Open(Vec<OutputWriter>),
    /// Through a private folder, one file open at a time.
    Parked(ParkedPairs),
}

impl PairFiles {
    /// Whether the pair at `index` has a file.
    fn has(&self, index: usize) -> bool {
        match self {
            PairFiles::Open(writers) => index < writers.len(),
            PairFiles::Parked(_) => true,
        }
    }

    /// Appends whole lines to the file of the pair at `index`.
    fn write(&mut self, index: usize, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            PairFiles::Open(writers) => writers[index].write_all(bytes),
            PairFiles::Parked(parked) => parked.write(index, bytes),
        }
    }
}

/// What one pair flags over the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cell {
    pub degree: u32,
    pub tracked: u32,
    /// Flagged stream purchases.
    pub flagged: u64,
    /// Distinct buyers of flagged purchases.
    pub buyers: u64,
    /// Over the flagged purchases: the buyer's friends at that moment.
    pub feed: u64,
    /// Over the flagged purchases: the users at distance exactly 2 from the buyer then.
    pub recommend: u64,
}

/// Counts what every pair flags as the checked purchases arrive, and writes each pair's
/// flagged lines.
struct Tally {
    checked: u64,
    cells: Vec<Cell>,
    buyers: Vec<HashSet<UserId>>,
    /// The pairs' files.
    outputs: PairFiles,
    line: Vec<u8>,
}

impl Tally {
    fn new(grid: &Grid, outputs: PairFiles) -> Tally {
        Tally {
            checked: 0,
            cells: pairs(grid)
                .map(|(degree, tracked)| Cell {
                    degree,
                    tracked,
                    ..Cell::default()
                })
                .collect(),
            buyers: vec![HashSet::new(); grid.pairs()],
            outputs,
            line: Vec::with_capacity(256),
        }
    }
}

impl Sink<Sweep> for Tally {
    type Error = std::io::Error;

    fn checked(&mut self, purchase: &GridChecked<'_>) -> std::io::Result<bool> {
        self.checked += 1;
        for (pair, baseline) in purchase.baselines.iter().enumerate() {
            if !baseline.is_anomalous(purchase.cents) {
                continue;
            }
            let cell = &mut self.cells[pair];
            cell.flagged += 1;
            cell.feed += purchase.reach.friends;
            cell.recommend += purchase.reach.distance_two;
            self.buyers[pair].insert(purchase.buyer);
            if self.outputs.has(pair) {
                self.line.clear();
                flagged_line(&mut self.line, purchase.line, baseline);
                self.outputs.write(pair, &self.line)?;
            }
        }
        Ok(true)
    }
}

/// A sweep's figures.
pub struct Report {
    pub grid: Grid,
    /// The batch log's own parameters.
    pub own: Params,
    /// Stream purchases checked.
    pub checked: u64,
    /// Per pair, in grid order.
    pub cells: Vec<Cell>,
    /// From the earliest to the latest stream purchase.
    pub span: Span,
    /// The stream befriends by distance.
    pub distances: Distances,
    /// How each `D` of the grid is shown: its value, or a `-D` beyond `u32::MAX` as given.
    pub degree_names: Vec<String>,
}

impl Report {
    /// The figures of a tally and of the stream's events (its span and befriend distances),
    /// and the pairs' flagged-purchases files the tally wrote.
    fn of(
        grid: Grid,
        own: Params,
        tally: Tally,
        (span, distances): (Span, Distances),
        degree_names: Vec<String>,
    ) -> (Report, PairFiles) {
        let mut cells = tally.cells;
        for (cell, buyers) in cells.iter_mut().zip(&tally.buyers) {
            cell.buyers = buyers.len() as u64;
        }
        let report = Report {
            grid,
            own,
            checked: tally.checked,
            cells,
            span,
            distances,
            degree_names,
        };
        (report, tally.outputs)
    }

    /// The index of the batch log's own pair, when the grid holds it.
    pub fn marked(&self) -> Option<usize> {
        self.cells
            .iter()
            .position(|c| c.degree == self.own.degree && c.tracked == self.own.tracked)
    }

    /// `flagged / checked` in millionths, rounded half up (0 when nothing was checked).
    pub fn share_millionths(&self, cell: &Cell) -> u64 {
        ratio(cell.flagged, self.checked, 1_000_000)
    }

    /// One row per `D`, one column per `T`: `2064 (3.4%)`; the batch log's pair has a `*`.
    pub fn table(&self) -> String {
        let marked = self.marked();
        let cell_text = |i: usize, cell: &Cell| {
            let tenths = ratio(cell.flagged, self.checked, 1000);
            let star = if Some(i) == marked { "*" } else { "" };
            format!("{} ({}.{}%){star}", cell.flagged, tenths / 10, tenths % 10)
        };
        let texts: Vec<String> = self
            .cells
            .iter()
            .enumerate()
            .map(|(i, c)| cell_text(i, c))
            .collect();
        let header: Vec<String> = self.grid.tracked.iter().map(|t| format!("T={t}")).collect();
        let columns = self.grid.tracked.len();
        let widths: Vec<usize> = (0..columns)
            .map(|col| {
                texts
                    .iter()
                    .skip(col)
                    .step_by(columns)
                    .chain([&header[col]])
                    .map(String::len)
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let labels: Vec<String> = self.degree_names.iter().map(|d| format!("D={d}")).collect();
        let label_width = labels.iter().map(String::len).max().unwrap_or(0);
        let mut out = format!(
            "Flagged stream purchases (share of the {} checked) by D and T",
            self.checked
        );
        match marked {
            Some(_) => out.push_str(&format!(
                "; * the batch log's own D={} T={}\n",
                self.own.degree, self.own.tracked
            )),
            None => out.push('\n'),
        }
        out.push_str(&" ".repeat(label_width));
        for (h, w) in header.iter().zip(&widths) {
            out.push_str(&format!("  {h:>w$}"));
        }
        out.push('\n');
        for (row, label) in labels.iter().enumerate() {
            out.push_str(&format!("{label:<label_width$}"));
            for (col, w) in widths.iter().enumerate() {
                out.push_str(&format!("  {:>w$}", texts[row * columns + col]));
            }
            out.push('\n');
        }
        out
    }

    /// `D,T,flagged,share,buyers,feed,recommend,flagged_per_day,feed_per_day,recommend_per_day`,
    /// one row per pair; the share has 6 decimals, the rates 2, and the rates are empty when
    /// the stream's purchases span less than a day.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "D,T,flagged,share,buyers,feed,recommend,flagged_per_day,feed_per_day,recommend_per_day\n",
        );
        let columns = self.grid.tracked.len();
        let rate = |count: u64| {
            self.span
                .per_day_hundredths(count)
                .map_or(String::new(), |h| cost::decimal(h, 2, false))
        };
        for (i, cell) in self.cells.iter().enumerate() {
            let share = self.share_millionths(cell);
            out.push_str(&format!(
                "{},{},{},{}.{:06},{},{},{},{},{},{}\n",
                self.degree_names[i / columns],
                cell.tracked,
                cell.flagged,
                share / 1_000_000,
                share % 1_000_000,
                cell.buyers,
                cell.feed,
                cell.recommend,
                rate(cell.flagged),
                rate(cell.feed),
                rate(cell.recommend),
            ));
        }
        out
    }

    /// What each pair costs per day: per `D` three lines (flagged purchases, feed highlights,
    /// recommendation emails), one column per `T`, one decimal; or one line saying why there
    /// is no daily rate.
    pub fn per_day_table(&self) -> String {
        if !self.span.has_days() {
            let why = match self.span.range() {
                None => "the stream has no purchases".to_string(),
                Some(_) => format!(
                    "the stream spans less than a day ({}, purchases {})",
                    self.span.clock_text(),
                    self.span.range_text()
                ),
            };
            return format!("Per day: no daily rate, {why}\n");
        }
        let mut out = format!(
            "Per day, over the {} days of stream purchases ({})\n",
            self.span.days_text(),
            self.span.range_text()
        );
        let columns = self.grid.tracked.len();
        let rate = |count: u64| {
            let hundredths = self.span.per_day_hundredths(count).unwrap_or(0);
            cost::decimal(hundredths, 1, true)
        };
        const KINDS: [&str; 3] = ["flagged", "feed", "emails"];
        let texts: Vec<[String; 3]> = self
            .cells
            .iter()
            .map(|c| [rate(c.flagged), rate(c.feed), rate(c.recommend)])
            .collect();
        let header: Vec<String> = self.grid.tracked.iter().map(|t| format!("T={t}")).collect();
        let widths: Vec<usize> = (0..columns)
            .map(|col| {
                texts
                    .iter()
                    .skip(col)
                    .step_by(columns)
                    .flat_map(|t| t.iter().map(String::len))
                    .chain([header[col].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let labels: Vec<String> = self.degree_names.iter().map(|d| format!("D={d}")).collect();
        let label_width = labels.iter().map(String::len).max().unwrap_or(0);
        let kind_width = KINDS.iter().map(|k| k.len()).max().unwrap_or(0);
        out.push_str(&" ".repeat(label_width + 2 + kind_width));
        for (h, w) in header.iter().zip(&widths) {
            out.push_str(&format!("  {h:>w$}"));
        }
        out.push('\n');
        for (row, label) in labels.iter().enumerate() {
            for (k, kind) in KINDS.iter().enumerate() {
                let label = if k == 0 { label.as_str() } else { "" };
                out.push_str(&format!("{label:<label_width$}  {kind:<kind_width$}"));
                for (col, w) in widths.iter().enumerate() {
                    out.push_str(&format!("  {:>w$}", texts[row * columns + col][k]));
                }
                out.push('\n');
            }
        }
        out
    }
}

/// `n` with a comma between groups of three digits: `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `part / whole` in units of `1 / scale`, rounded half up; 0 when `whole` is 0.
fn ratio(part: u64, whole: u64, scale: u64) -> u64 {
    if whole == 0 {
        return 0;
    }
    let (part, whole, scale) = (u128::from(part), u128::from(whole), u128::from(scale));
    ((2 * part * scale + whole) / (2 * whole)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_round_half_up() {
        assert_eq!(ratio(1, 3, 1_000_000), 333_333);
        assert_eq!(ratio(2, 3, 1_000_000), 666_667);
        assert_eq!(ratio(1, 8, 1000), 125);
        assert_eq!(ratio(1, 16, 1000), 63);
        assert_eq!(ratio(5, 0, 1000), 0);
        assert_eq!(ratio(7, 7, 1000), 1000);
    }

    #[test]
    fn thousands_are_grouped_by_commas() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (123_456, "123,456"),
            (1_234_567, "1,234,567"),
            (u64::MAX, "18,446,744,073,709,551,615"),
        ] {
            assert_eq!(thousands(n), text);
        }
    }
}
