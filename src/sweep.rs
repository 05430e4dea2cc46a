//! `anomaly-detect sweep`: one replay of the logs checks every stream purchase with every pair
//! of a grid of `D` and `T`, and reports per pair what a run with those parameters flags: a
//! table on standard output, and on request a CSV file, an SVG heat map and each pair's
//! flagged-purchases file.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};

use crate::cli::SweepOptions;
use crate::error::Fatal;
use crate::ingest::input::LogFile;
use crate::ingest::parse::Params;
use crate::output::outputs::Outputs;
use crate::output::progress::Progress;
use crate::output::report::SkipLog;
use crate::output::sink::{OutputFile, Sink, flagged_line};
use crate::pipeline::{Config, GridChecked, GridSink, Replay, read_params};
use crate::query::network::Grid;
use crate::state::users::UserId;

mod svg;

/// The `D` a sweep tries by default, with the batch log's own.
pub const DEFAULT_DEGREES: [u32; 3] = [1, 2, 3];
/// The `T` a sweep tries by default, with the batch log's own.
pub const DEFAULT_TRACKED: [u32; 5] = [10, 20, 50, 100, 200];

/// Runs a sweep; `stop` set (by a signal) interrupts it, and then nothing is written.
pub fn run(options: &SweepOptions, stop: Option<Arc<AtomicBool>>) -> anyhow::Result<()> {
    if options.stream.as_os_str() == "-" {
        bail!("-: a sweep replays STREAM from a file; standard input (live mode) is not supported");
    }
    let batch = LogFile::open(&options.batch)?;
    let stream = LogFile::open(&options.stream)?;
    let (own, _, _) = read_params(&batch)?;
    let grid = grid_of(options, own);
    let files = SweepFiles::check(options, &grid)?;

    let mut config = Config {
        degree: grid.degrees.last().copied(),
        tracked: grid.tracked.last().copied(),
        chunk_bytes: options.chunk_bytes.max(1),
        window: options.window.max(1),
        stop,
        ..Config::default()
    };
    if let Some(threads) = options.threads {
        config.threads = threads as usize;
    }
    let progress = Progress::on_terminal(options.quiet);
    let mut skips = SkipLog::new(Box::new(progress.stderr()), options.strict);
    let mut replay_all = || -> Result<_, Fatal> {
        let mut replay = Replay::batch(&batch, &config, &mut skips, &progress)?;
        let outputs = files.open_pair_outputs(&grid)?;
        replay.sweep(grid.clone(), Box::new(Tally::new(&grid, outputs)));
        let mut no_sink: Vec<Box<dyn Sink>> = Vec::new();
        replay.stream_file(&stream, &mut no_sink, &mut skips, &progress)?;
        let sink: Box<dyn std::any::Any> = replay.take_grid_sink().expect("a sweep");
        let tally = *sink.downcast::<Tally>().expect("the sweep's tally");
        Ok((replay, tally))
    };
    let result = replay_all();
    skips.finish();
    let (replay, tally) = result?;
    let mut summary = replay.finish(&skips);
    let (report, pair_outputs) = Report::of(grid, own, tally);
    let marked = report.marked().unwrap_or(0);
    summary.flagged = report.cells[marked].flagged;
    files
        .write(&report, pair_outputs)
        .context("the sweep's outputs were not saved")?;
    if !options.quiet {
        eprintln!("{summary}");
    }
    Ok(())
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
            |list| list.0.clone(),
        ),
        tracked: options.tracked.as_ref().map_or_else(
            || with_own(&DEFAULT_TRACKED, own.tracked),
            |list| list.0.clone(),
        ),
    }
}

/// A file a sweep writes: to a temporary file renamed into place by [`Output::commit`], or
/// to standard output for `-`.
pub struct Output {
    file: Option<OutputFile>,
    writer: Box<dyn Write>,
}

impl Output {
    /// Every file a sweep writes is created here, with the machinery of a run's OUTPUT.
    pub fn create(path: &Path) -> Result<Output, Fatal> {
        if path.as_os_str() == "-" {
            let writer = Box::new(std::io::BufWriter::new(std::io::stdout()));
            return Ok(Output { file: None, writer });
        }
        let (file, writer) = OutputFile::create(path)?;
        Ok(Output {
            file: Some(file),
            writer: Box::new(writer),
        })
    }

    /// Flushes the writer and moves the file into place.
    pub fn commit(mut self) -> Result<(), Fatal> {
        self.writer.flush().map_err(Fatal::Output)?;
        drop(self.writer);
        self.file.map_or(Ok(()), OutputFile::commit)
    }
}

/// The files a sweep was asked to write, checked before any work.
struct SweepFiles {
    csv: Option<PathBuf>,
    svg: Option<PathBuf>,
    /// The folder of the pairs' flagged-purchases files, and its files in grid order.
    outputs: Option<(PathBuf, Vec<PathBuf>)>,
    /// Whether the table goes to standard output (not when a file does).
    table: bool,
}

impl SweepFiles {
    /// Checks that every output can be written, none names an input or another output, and
    /// at most one is standard output. Creates the `--outputs` folder when missing.
    fn check(options: &SweepOptions, grid: &Grid) -> Result<SweepFiles, Fatal> {
        let stdout = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| p.as_os_str() == "-");
        let refuse = |path: &Path, problem: &str| Fatal::Write {
            path: path.to_path_buf(),
            error: std::io::Error::other(problem.to_string()),
        };
        if stdout(&options.csv) && stdout(&options.svg) {
            return Err(refuse(Path::new("-"), "--csv and --svg cannot both be `-`"));
        }
        let outputs = match &options.outputs {
            None => None,
            Some(dir) => {
                if dir.exists() && !dir.is_dir() {
                    return Err(refuse(dir, "--outputs names a file, not a folder"));
                }
                if !dir.exists() {
                    std::fs::create_dir(dir).map_err(|error| Fatal::Write {
                        path: dir.clone(),
                        error,
                    })?;
                }
                let files: Vec<PathBuf> = pairs(grid)
                    .map(|(d, t)| dir.join(format!("flagged_D{d}_T{t}.json")))
                    .collect();
                Some((dir.clone(), files))
            }
        };
        let mut written: Vec<&Path> = Vec::new();
        written.extend(options.csv.as_deref());
        written.extend(options.svg.as_deref());
        if let Some((_, files)) = &outputs {
            written.extend(files.iter().map(PathBuf::as_path));
        }
        let inputs = [options.batch.as_path(), options.stream.as_path()];
        for (i, &path) in written.iter().enumerate() {
            if path.as_os_str() == "-" {
                continue;
            }
            Outputs::check(path, None, None)?;
            if inputs.iter().any(|&input| same_file(input, path)) {
                return Err(refuse(path, "it is an input of the run"));
            }
            if written[..i].iter().any(|&other| same_file(other, path)) {
                return Err(refuse(path, "it is named twice as an output"));
            }
        }
        Ok(SweepFiles {
            csv: options.csv.clone(),
            svg: options.svg.clone(),
            outputs,
            table: !stdout(&options.csv) && !stdout(&options.svg),
        })
    }

    /// Opens the pairs' flagged-purchases files, in grid order (none without `--outputs`).
    fn open_pair_outputs(&self, grid: &Grid) -> Result<Vec<Output>, Fatal> {
        let Some((_, files)) = &self.outputs else {
            return Ok(Vec::new());
        };
        debug_assert_eq!(files.len(), grid.pairs());
        files.iter().map(|path| Output::create(path)).collect()
    }

    /// Writes the table, the CSV and the SVG, and moves every file into place.
    fn write(&self, report: &Report, pair_outputs: Vec<Output>) -> Result<(), Fatal> {
        let mut done = Vec::new();
        if let Some(path) = &self.csv {
            let mut out = Output::create(path)?;
            out.writer
                .write_all(report.csv().as_bytes())
                .map_err(Fatal::Output)?;
            done.push(out);
        }
        if let Some(path) = &self.svg {
            let mut out = Output::create(path)?;
            out.writer
                .write_all(svg::heat_map(report).as_bytes())
                .map_err(Fatal::Output)?;
            done.push(out);
        }
        done.extend(pair_outputs);
        done.into_iter().try_for_each(Output::commit)?;
        if self.table {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(report.table().as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(Fatal::Output)?;
        }
        Ok(())
    }
}

/// Whether two paths name the same file: the same file on disk, or the same name in the same
/// folder when neither exists yet.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => {
            let place = |p: &Path| {
                let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
                let dir = std::fs::canonicalize(dir.unwrap_or(Path::new("."))).ok();
                (dir, p.file_name().map(|n| n.to_os_string()))
            };
            place(a) == place(b)
        }
    }
}

/// The pairs of a grid in its order: every `T` of the first `D`, then of the next.
pub fn pairs(grid: &Grid) -> impl Iterator<Item = (u32, u32)> + '_ {
    grid.degrees
        .iter()
        .flat_map(|&d| grid.tracked.iter().map(move |&t| (d, t)))
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
    /// One per pair in grid order, or none.
    outputs: Vec<Output>,
    line: Vec<u8>,
}

impl Tally {
    fn new(grid: &Grid, outputs: Vec<Output>) -> Tally {
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

impl GridSink for Tally {
    fn checked(&mut self, purchase: &GridChecked<'_>) -> std::io::Result<()> {
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
            if let Some(out) = self.outputs.get_mut(pair) {
                self.line.clear();
                flagged_line(&mut self.line, purchase.line, baseline);
                out.writer.write_all(&self.line)?;
            }
        }
        Ok(())
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
}

impl Report {
    /// The figures of a tally, and the pairs' flagged-purchases files it wrote.
    fn of(grid: Grid, own: Params, tally: Tally) -> (Report, Vec<Output>) {
        let mut cells = tally.cells;
        for (cell, buyers) in cells.iter_mut().zip(&tally.buyers) {
            cell.buyers = buyers.len() as u64;
        }
        let report = Report {
            grid,
            own,
            checked: tally.checked,
            cells,
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
        let labels: Vec<String> = self.grid.degrees.iter().map(|d| format!("D={d}")).collect();
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

    /// `D,T,flagged,share,buyers,feed,recommend`, one row per pair; the share has 6 decimals.
    pub fn csv(&self) -> String {
        let mut out = String::from("D,T,flagged,share,buyers,feed,recommend\n");
        for cell in &self.cells {
            let share = self.share_millionths(cell);
            out.push_str(&format!(
                "{},{},{},{}.{:06},{},{},{}\n",
                cell.degree,
                cell.tracked,
                cell.flagged,
                share / 1_000_000,
                share % 1_000_000,
                cell.buyers,
                cell.feed,
                cell.recommend
            ));
        }
        out
    }
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
}
