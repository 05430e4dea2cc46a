//! The replay: the batch log builds the state, then every stream event is applied in order and
//! every stream purchase is checked against its network's baseline just before it joins the
//! history. Chunks of each log are parsed in parallel and applied in order by one thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rayon::prelude::*;

use crate::clock::PhaseClock;
use crate::error::{Fatal, escaped, shown};
use crate::ingest::event::{Action, Event, Timestamp};
use crate::ingest::input::{
    BLOCKS_AHEAD, Lines, LogFile, LogReader, MAX_LINE, chunks, read_blocks, trim_line,
};
use crate::ingest::parse::{
    IdHasher, LineParser, MAX_CHUNK_BYTES, MAX_LINE_LIMIT, Params, ParsedChunk, parse_params,
};
use crate::output::progress::Progress;
use crate::output::report::{SkipLog, Summary};
use crate::output::sink::{Checked, Sink};
use crate::query::baseline::Baseline;
use crate::query::network::{Grid, NetworkQuery, Reach, Social};
use crate::state::graph::FriendGraph;
use crate::state::history::{Purchase, PurchaseHistory};
use crate::state::recent::RecentPurchases;
use crate::state::users::{TooManyUsers, UserId, UserIds};
use crate::state::window::{EdgeChanges, Friendships, GraphAt};

/// Default number of stream events per window of parallel queries. Between two windows' checks
/// the pool's workers wait for the applier; after 2 048 events the wait is short, and the
/// workers sleep less often per window than after 8 192: the same work with less idle time,
/// 12-19% faster streams at D=1, 2 and 3 (docs/performance.md, "Designs measured and not kept").
pub const DEFAULT_WINDOW: usize = 2048;

/// The largest window (`--window`): 1 048 576 events, 512 times the default; a window holds
/// its purchases' lines and a `u32` index per changed friendship.
pub const MAX_WINDOW: usize = 1 << 20;

/// Most checks per parallel task: enough to keep a worker's queries staggered; a small window
/// (a live stream flushes one whenever input stalls) is split evenly over the workers instead.
const CHECK_GROUP: usize = 64;

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Overrides the parameter line's `D`.
    pub degree: Option<u32>,
    /// Overrides the parameter line's `T`.
    pub tracked: Option<u32>,
    /// Worker threads; 1 is the plain sequential path.
    pub threads: usize,
    /// Target size of a parsing chunk in bytes (see [`Config::bounded`]).
    pub chunk_bytes: usize,
    /// Stream events applied per window before the window's queries run in parallel (see
    /// [`Config::bounded`]).
    pub window: usize,
    /// Recent purchases kept for scanning large networks (see [`RecentPurchases`]); tests use
    /// a few, so that scans reach the oldest kept and give way to ranking.
    pub recent: usize,
    /// Whether flagged purchases also get the buyer's friends and friends of friends (for the
    /// feed and recommendation sinks).
    pub social: bool,
    /// Set (by a signal handler) to interrupt reading logs: the replay fails with
    /// [`Fatal::Interrupted`].
    pub stop: Option<Arc<AtomicBool>>,
    /// The longest line read (see [`MAX_LINE`] and [`Config::bounded`]); longer ones are
    /// skipped as too long.
    pub max_line: usize,
}

impl Config {
    /// This configuration within the bounds a replay holds to: a chunk of 1 to
    /// [`MAX_CHUNK_BYTES`] bytes, a line limit of 1 to [`MAX_LINE_LIMIT`] bytes, a window of 1
    /// to [`MAX_WINDOW`] events. The command line refuses values beyond them; a library caller's
    /// are brought within.
    pub fn bounded(&self) -> Config {
        Config {
            chunk_bytes: self.chunk_bytes.clamp(1, MAX_CHUNK_BYTES),
            max_line: self.max_line.clamp(1, MAX_LINE_LIMIT),
            window: self.window.clamp(1, MAX_WINDOW),
            ..self.clone()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            degree: None,
            tracked: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            chunk_bytes: 1 << 20,
            window: DEFAULT_WINDOW,
            recent: RecentPurchases::KEEP,
            social: false,
            stop: None,
            max_line: MAX_LINE,
        }
    }
}

/// The state that events change: users, friendships and purchase histories.
pub struct State {
    pub users: UserIds,
    pub graph: FriendGraph,
    pub history: PurchaseHistory,
}

/// Reads the parameter line: the first non-blank line of the batch log. Returns the
/// parameters, the byte offset just after that line and the number of lines it took.
pub fn read_params(batch: &LogFile) -> Result<(Params, usize, u64), Fatal> {
    find_params(batch.body(), &batch.path, MAX_LINE)?.ok_or_else(|| no_params(&batch.path))
}

/// The parameter line among the lines of `body`: the parameters, the offset after the line and
/// the lines it took; `None` when every line is blank.
fn find_params(
    body: &[u8],
    path: &std::path::Path,
    max_line: usize,
) -> Result<Option<(Params, usize, u64)>, Fatal> {
    let problem = |problem: String| Fatal::Parameters {
        path: path.to_path_buf(),
        problem,
    };
    for (index, line) in Lines::new(body).enumerate() {
        if line.len() > max_line {
            return Err(problem(format!(
                "the parameter line is too long (more than {max_line} bytes)"
            )));
        }
        let (start, len) = trim_line(body, line.clone());
        if len == 0 {
            continue;
        }
        let params = parse_params(&body[start..start + len]).map_err(problem)?;
        return Ok(Some((
            params,
            (line.end + 1).min(body.len()),
            index as u64 + 1,
        )));
    }
    Ok(None)
}

fn no_params(path: &std::path::Path) -> Fatal {
    Fatal::Parameters {
        path: path.to_path_buf(),
        problem: "missing parameter line: the file has no non-blank line".to_string(),
    }
}

/// Replays the batch then the stream, handing every checked stream purchase to `sink`.
pub fn replay(
    batch: &LogFile,
    stream: &LogFile,
    config: &Config,
    sink: &mut dyn Sink,
    skips: &mut SkipLog,
) -> Result<Summary, Fatal> {
    let mut replay = Replay::batch(batch, config, skips, &Progress::hidden())?;
    replay.stream_file(stream, sink, skips, &Progress::hidden())?;
    Ok(replay.finish(skips))
}

/// A replay in progress: the state after the batch, fed with stream events.
pub struct Replay {
    config: Config,
    hasher: IdHasher,
    pool: rayon::ThreadPool,
    state: State,
    window: StreamWindow,
    summary: Summary,
    started: Instant,
    /// Sequence number of the next line (batch lines first, then stream lines).
    seq: u64,
    batch_lines: u64,
    /// Scratch: the interned ids of a chunk's events.
    interned: Vec<[UserId; 2]>,
}

impl Replay {
    /// The state after the events replayed so far.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Reads the batch log: the parameters, then the history.
    pub fn batch(
        batch: &LogFile,
        config: &Config,
        skips: &mut SkipLog,
        progress: &Progress,
    ) -> Result<Replay, Fatal> {
        let config = &config.bounded();
        let started = Instant::now();
        let clock = PhaseClock::start();
        let found = find_params(batch.body(), &batch.path, config.max_line);
        batch.check_size()?;
        let (header, batch_start, header_lines) = found?.ok_or_else(|| no_params(&batch.path))?;
        let mut replay = Replay::new(&batch.name, header, header_lines, config, started)?;
        replay.summary.batch_bytes = batch.body().len() as u64;
        progress.start("batch", batch.body().len() as u64);
        let hasher = replay.hasher;
        let Replay {
            pool,
            state,
            summary,
            seq,
            interned,
            ..
        } = &mut replay;
        for_each_chunk(batch, batch_start, config, pool, hasher, |chunk| {
            apply_batch_chunk(&batch.name, chunk, state, summary, seq, interned, skips)?;
            progress.set((chunk.offset + chunk.len) as u64);
            Ok(())
        })?;
        replay.end_batch(&clock, progress);
        Ok(replay)
    }

    /// Reads a batch log as it comes (a pipe, a FIFO, a device): block by block, never whole.
    pub fn batch_read(
        batch: LogReader,
        config: &Config,
        skips: &mut SkipLog,
        progress: &Progress,
    ) -> Result<Replay, Fatal> {
        let config = &config.bounded();
        let head = BatchHead::read(batch, config.max_line, config.stop.as_deref())?;
        Replay::batch_rest(head, config, skips, progress)
    }

    /// Reads the rest of a batch log read as it comes, after its parameter line.
    pub fn batch_rest(
        head: BatchHead,
        config: &Config,
        skips: &mut SkipLog,
        progress: &Progress,
    ) -> Result<Replay, Fatal> {
        let config = &config.bounded();
        let BatchHead {
            params,
            name,
            feed,
            mut block,
            mut from,
            lines,
            mut bytes,
            started,
            clock,
        } = head;
        let path = std::path::PathBuf::from(&name);
        let stop = config.stop.as_deref();
        let mut replay = Replay::new(&name, params, lines, config, started)?;
        let mut parser = LineParser::new(replay.hasher);
        parser.set_max_line(config.max_line);
        let mut chunk = ParsedChunk::default();
        let Replay {
            state,
            summary,
            seq,
            interned,
            ..
        } = &mut replay;
        loop {
            parser.parse_chunk(&block, from..block.len(), &mut chunk);
            apply_batch_chunk(&name, &chunk, state, summary, seq, interned, skips)?;
            let Some(next) = feed.next(stop)? else { break };
            bytes += next.len() as u64;
            (block, from) = (next, 0);
        }
        feed.finish(&path)?;
        replay.summary.batch_bytes = bytes;
        replay.end_batch(&clock, progress);
        Ok(replay)
    }

    /// A replay with no event yet, after the parameter line of the batch log `name`.
    fn new(
        name: &str,
        header: Params,
        header_lines: u64,
        config: &Config,
        started: Instant,
    ) -> Result<Replay, Fatal> {
        let params = Params {
            degree: config.degree.unwrap_or(header.degree),
            tracked: config.tracked.unwrap_or(header.tracked),
        };
        let hasher = IdHasher::random();
        let state = State {
            users: UserIds::new(hasher),
            graph: FriendGraph::new(),
            history: PurchaseHistory::keeping_recent(params.tracked, config.recent),
        };
        let threads = config.threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Fatal::Threads {
                what: match threads {
                    1 => "its worker thread".to_string(),
                    n => format!("{n} worker threads"),
                },
                error: e.to_string(),
            })?;
        let summary = Summary {
            batch_file: name.to_string(),
            ..Summary::default()
        };
        let window = StreamWindow::new(config, params, pool.current_num_threads());
        Ok(Replay {
            config: config.clone(),
            hasher,
            pool,
            state,
            window,
            summary,
            started,
            seq: header_lines,
            batch_lines: header_lines,
            interned: Vec::new(),
        })
    }

    /// Ends the batch: histories ranked, the batch's times taken.
    fn end_batch(&mut self, clock: &PhaseClock, progress: &Progress) {
        self.state.history.rank_all();
        progress.finish();
        self.batch_lines = self.seq;
        self.summary.batch_elapsed = clock.wall();
        self.summary.batch_cpu = clock.cpu();
        self.summary.batch_system = clock.system();
    }

    /// Applies one parsed chunk of stream lines; `text` is the chunk's bytes. Checks run when a
    /// window fills up; [`Self::flush`] runs the rest.
    pub fn stream_chunk(
        &mut self,
        name: &str,
        chunk: &ParsedChunk,
        text: &[u8],
        sink: &mut dyn Sink,
        skips: &mut SkipLog,
    ) -> Result<(), Fatal> {
        let (mut parts, pool) = self.parts();
        parts.stream_chunk(name, chunk, text, pool, sink, skips)
    }

    /// The parts that stream chunks change, and the thread pool, borrowed apart.
    fn parts(&mut self) -> (ReplayParts<'_>, &rayon::ThreadPool) {
        (
            ReplayParts {
                window: &mut self.window,
                state: &mut self.state,
                summary: &mut self.summary,
                seq: &mut self.seq,
                batch_lines: self.batch_lines,
                interned: &mut self.interned,
            },
            &self.pool,
        )
    }

    /// Runs the checks of the events applied so far and hands them to the sink.
    pub fn flush(&mut self, sink: &mut dyn Sink) -> Result<(), Fatal> {
        self.window
            .run(&mut self.state, &self.pool, sink, &mut self.summary)
    }

    /// Replays a whole stream log.
    pub fn stream_file(
        &mut self,
        stream: &LogFile,
        sink: &mut dyn Sink,
        skips: &mut SkipLog,
        progress: &Progress,
    ) -> Result<(), Fatal> {
        let clock = PhaseClock::start();
        self.summary.stream_file = stream.name.clone();
        let body = stream.body();
        self.summary.stream_bytes += body.len() as u64;
        let (config, hasher) = (self.config.clone(), self.hasher);
        // `for_each_chunk` borrows the pool while chunks are applied to the rest of `self`.
        let (mut this, pool) = self.parts();
        progress.start("stream", body.len() as u64);
        for_each_chunk(stream, 0, &config, pool, hasher, |chunk| {
            let text = &body[chunk.offset..chunk.offset + chunk.len];
            this.stream_chunk(&stream.name, chunk, text, pool, sink, skips)?;
            progress.set((chunk.offset + chunk.len) as u64);
            Ok(())
        })?;
        self.flush(sink).map_err(|error| damage_of(stream, error))?;
        progress.finish();
        self.summary.add_stream_time(&clock);
        Ok(())
    }

    /// Replays a stream read as it comes (a pipe, a FIFO, a device) like a file: block by
    /// block, never whole; a signal interrupts it ([`Fatal::Interrupted`]).
    pub fn stream_read(
        &mut self,
        stream: LogReader,
        sink: &mut dyn Sink,
        skips: &mut SkipLog,
    ) -> Result<(), Fatal> {
        let clock = PhaseClock::start();
        let name = stream.name.clone();
        self.summary.stream_file = name.clone();
        let feed = BlockFeed::start(stream, self.config.max_line)?;
        let stop = self.config.stop.clone();
        let mut parser = LineParser::new(self.hasher);
        parser.set_max_line(self.config.max_line);
        let mut chunk = ParsedChunk::default();
        while let Some(text) = feed.next(stop.as_deref())? {
            self.summary.stream_bytes += text.len() as u64;
            parser.parse_chunk(&text, 0..text.len(), &mut chunk);
            self.stream_chunk(&name, &chunk, &text, sink, skips)?;
        }
        feed.finish(std::path::Path::new(&name))?;
        self.flush(sink)?;
        self.summary.add_stream_time(&clock);
        Ok(())
    }

    /// Replays a live stream: lines are read from `source` as they arrive (a separate thread
    /// reads), and every pending check runs as soon as the input stalls, so nothing waits for a
    /// window to fill. A followed file never ends (see [`crate::ingest::input::FollowedFile`]).
    /// A message on `stop` ends the replay normally after the lines already read.
    pub fn stream_live(
        &mut self,
        source: LogReader,
        sink: &mut dyn Sink,
        skips: &mut SkipLog,
        stop: &crossbeam_channel::Receiver<()>,
    ) -> Result<(), Fatal> {
        let clock = PhaseClock::start();
        let name = source.name.clone();
        self.summary.stream_file = name.clone();
        let feed = BlockFeed::start(source, self.config.max_line)?;
        let mut parser = LineParser::new(self.hasher);
        parser.set_max_line(self.config.max_line);
        let mut chunk = ParsedChunk::default();
        // Whether the input ended (the reader is done, or failing): else a signal stopped it.
        let mut ended = false;
        loop {
            crossbeam_channel::select! {
                recv(feed.blocks) -> text => {
                    let Ok(text) = text else {
                        ended = true;
                        break;
                    };
                    self.summary.stream_bytes += text.len() as u64;
                    parser.parse_chunk(&text, 0..text.len(), &mut chunk);
                    self.stream_chunk(&name, &chunk, &text, sink, skips)?;
                    if feed.blocks.is_empty() {
                        // The input stalls: decide what is pending now.
                        self.flush(sink)?;
                        sink.flush().map_err(Fatal::Output)?;
                    }
                }
                recv(stop) -> _ => break,
            }
        }
        self.flush(sink)?;
        sink.flush().map_err(Fatal::Output)?;
        self.summary.add_stream_time(&clock);
        // A reader that failed or panicked fails the run. After a stop it may be blocked on its
        // input: it is waited for only once done.
        if ended || feed.reader.is_finished() {
            feed.finish(std::path::Path::new(&name))?;
        }
        Ok(())
    }

    /// Turns the replay into a sweep: from now on every stream purchase is checked with every
    /// pair of `grid` and handed to `sink` instead of the [`Sink`] given to the stream calls.
    /// The replay must have been made with `D` and `T` overridden to the grid's largest (the
    /// history then keeps enough purchases for every pair).
    pub fn sweep(&mut self, grid: Grid, sink: Box<dyn GridSink>) {
        assert!(
            grid.tracked
                .last()
                .is_some_and(|&t| t as usize <= self.state.history.tracked()),
            "the history keeps the grid's largest T"
        );
        self.window.grid = Some(GridChecks {
            grid,
            baselines: Vec::new(),
            reach: Vec::new(),
            sink,
        });
    }

    /// The sink that [`Self::sweep`] was given, back once the stream is replayed.
    pub fn take_grid_sink(&mut self) -> Option<Box<dyn GridSink>> {
        self.window.grid.take().map(|grid| grid.sink)
    }

    /// Ends the replay: the run's figures.
    pub fn finish(mut self, skips: &SkipLog) -> Summary {
        self.summary.skipped = skips.counts().collect();
        self.summary.users = self.state.users.len();
        self.summary.friendships = self.state.graph.edges();
        self.summary.elapsed = self.started.elapsed();
        self.summary
    }
}

/// Applies a parsed chunk of batch lines of the log `name`; `seq` is the sequence number of the
/// chunk's first line, advanced past it.
fn apply_batch_chunk(
    name: &str,
    chunk: &ParsedChunk,
    state: &mut State,
    summary: &mut Summary,
    seq: &mut u64,
    interned: &mut Vec<[UserId; 2]>,
    skips: &mut SkipLog,
) -> Result<(), Fatal> {
    check_numbering(name, *seq, chunk)?;
    for &(line, ref reason) in &chunk.skipped {
        skips.skip(name, *seq + u64::from(line) + 1, reason)?;
    }
    state
        .apply_batch(chunk, *seq, interned)
        .map_err(|line| too_many_users(name, *seq + u64::from(line) + 1, &state.users))?;
    summary.count_batch(chunk);
    *seq += u64::from(chunk.lines);
    Ok(())
}

/// A batch log read as it comes, up to its parameter line: what a sweep reads before it can
/// set up its replay, which depends on the parameters (see [`Replay::batch_rest`]).
pub struct BatchHead {
    /// The parameter line's `D` and `T`.
    pub params: Params,
    name: String,
    feed: BlockFeed,
    /// The block that holds the parameter line, and where the events start in it.
    block: Vec<u8>,
    from: usize,
    /// Lines up to the parameter line, and bytes read so far.
    lines: u64,
    bytes: u64,
    started: Instant,
    clock: PhaseClock,
}

impl BatchHead {
    /// Starts reading `batch` and reads up to its parameter line: the first non-blank line,
    /// maybe after blocks of blank lines. `stop` interrupts the wait.
    pub fn read(
        batch: LogReader,
        max_line: usize,
        stop: Option<&AtomicBool>,
    ) -> Result<BatchHead, Fatal> {
        let started = Instant::now();
        let clock = PhaseClock::start();
        let name = batch.name.clone();
        let path = std::path::PathBuf::from(&name);
        let feed = BlockFeed::start(batch, max_line)?;
        let mut lines_before = 0;
        let mut bytes = 0;
        let (params, block, from, lines) = loop {
            let Some(block) = feed.next(stop)? else {
                feed.finish(&path)?;
                return Err(no_params(&path));
            };
            bytes += block.len() as u64;
            match find_params(&block, &path, max_line)? {
                Some((params, from, lines)) => break (params, block, from, lines_before + lines),
                None => lines_before += Lines::new(&block).count() as u64,
            }
        };
        Ok(BatchHead {
            params,
            name,
            feed,
            block,
            from,
            lines,
            bytes,
            started,
            clock,
        })
    }
}

/// Blocks of whole lines read from a [`LogReader`] by a thread of their own.
struct BlockFeed {
    blocks: crossbeam_channel::Receiver<Vec<u8>>,
    reader: std::thread::JoinHandle<std::io::Result<()>>,
}

impl BlockFeed {
    fn start(log: LogReader, max_line: usize) -> Result<BlockFeed, Fatal> {
        let (tx, blocks) = crossbeam_channel::bounded::<Vec<u8>>(BLOCKS_AHEAD);
        let source = log.reader;
        let reader = std::thread::Builder::new()
            .name("log reader".into())
            .spawn(move || read_blocks(source, max_line, &tx))
            .map_err(|error| Fatal::Threads {
                what: format!("the thread that reads {}", shown(&log.name)),
                error: error.to_string(),
            })?;
        Ok(BlockFeed { blocks, reader })
    }

    /// The next block, `None` at the end of the input; waiting for it, looks at `stop` every
    /// tenth of a second (an endless line without `\n` sends no block).
    fn next(&self, stop: Option<&AtomicBool>) -> Result<Option<Vec<u8>>, Fatal> {
        use crossbeam_channel::RecvTimeoutError;
        loop {
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return Err(Fatal::Interrupted);
            }
            match self
                .blocks
                .recv_timeout(std::time::Duration::from_millis(100))
            {
                Ok(block) => return Ok(Some(block)),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
    }

    /// Waits for the reader (ended, or ending now that the blocks are dropped) and reports
    /// its error. A reader that panicked may have stopped anywhere: that is a fatal error too,
    /// never the end of the input.
    fn finish(self, path: &std::path::Path) -> Result<(), Fatal> {
        drop(self.blocks);
        match self.reader.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Fatal::Read {
                path: path.to_path_buf(),
                error,
            }),
            Err(panic) => Err(Fatal::ReaderFailed {
                path: path.to_path_buf(),
                message: panic_message(panic.as_ref()),
            }),
        }
    }
}

/// The message a thread panicked with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => escaped(text.as_bytes(), 200),
        (_, Some(text)) => escaped(text.as_bytes(), 200),
        _ => "panicked".to_string(),
    }
}

/// The error for line `line` of the log `name`, which names one distinct user more than a run
/// holds.
fn too_many_users(name: &str, line: u64, users: &UserIds) -> Fatal {
    Fatal::TooManyUsers {
        file: name.to_string(),
        line,
        limit: users.limit() as u64,
    }
}

/// Refuses a chunk whose lines would get sequence numbers beyond what a [`Purchase`] holds
/// (2^52 lines: decades of input at millions of lines per second).
fn check_numbering(name: &str, first_seq: u64, chunk: &ParsedChunk) -> Result<(), Fatal> {
    if first_seq + u64::from(chunk.lines) < Purchase::SEQ_LIMIT {
        Ok(())
    } else {
        Err(Fatal::TooManyLines {
            file: name.to_string(),
            limit: Purchase::SEQ_LIMIT - 1,
        })
    }
}

/// The parts of a [`Replay`] that stream chunks change, borrowed apart from its thread pool.
struct ReplayParts<'a> {
    window: &'a mut StreamWindow,
    state: &'a mut State,
    summary: &'a mut Summary,
    seq: &'a mut u64,
    batch_lines: u64,
    /// Scratch: the interned ids of a chunk's events.
    interned: &'a mut Vec<[UserId; 2]>,
}

impl ReplayParts<'_> {
    fn stream_chunk(
        &mut self,
        name: &str,
        chunk: &ParsedChunk,
        text: &[u8],
        pool: &rayon::ThreadPool,
        sink: &mut dyn Sink,
        skips: &mut SkipLog,
    ) -> Result<(), Fatal> {
        check_numbering(name, *self.seq, chunk)?;
        let first_line = *self.seq - self.batch_lines;
        for &(line, ref reason) in &chunk.skipped {
            skips.skip(name, first_line + u64::from(line) + 1, reason)?;
        }
        let users = &mut *self.interned;
        users.clear();
        for (i, event) in chunk.events.iter().enumerate() {
            self.state.intern_ahead(chunk, users, i).map_err(|line| {
                too_many_users(name, first_line + u64::from(line) + 1, &self.state.users)
            })?;
            self.state.prefetch_ahead(chunk, users, i, true);
            let line = &text[event.start as usize..(event.start + event.len) as usize];
            let at = At {
                seq: *self.seq + u64::from(event.line),
                line_no: first_line + u64::from(event.line) + 1,
                line,
            };
            self.window.apply(self.state, event.action, users[i], at);
            if self.window.is_full() {
                self.window.run(self.state, pool, sink, self.summary)?;
            }
        }
        self.summary.count_stream(chunk);
        *self.seq += u64::from(chunk.lines);
        Ok(())
    }
}

/// Where a stream event stands: its sequence number, line number and line.
#[derive(Debug, Clone, Copy)]
struct At<'a> {
    seq: u64,
    line_no: u64,
    line: &'a [u8],
}

/// A stream purchase waiting for its check.
#[derive(Debug, Clone, Copy)]
struct Pending {
    seq: u64,
    line_no: u64,
    buyer: UserId,
    cents: u64,
    timestamp: Timestamp,
    /// Span of its line in the window's copy of the lines.
    start: usize,
    len: usize,
}

/// What a check finds: the baseline, and for flagged purchases when asked, the buyer's
/// friends and friends of friends.
#[derive(Default)]
struct Outcome {
    baseline: Baseline,
    social: Option<Social>,
}

/// A stream purchase of a sweep, checked with every pair of its grid.
pub struct GridChecked<'a> {
    /// The original line, trimmed of surrounding JSON white space.
    pub line: &'a [u8],
    /// 1-based line number in the stream log.
    pub line_no: u64,
    pub buyer: UserId,
    pub cents: u64,
    /// `baselines[row * grid.tracked.len() + col]`: the baseline with the row's `D` and the
    /// column's `T`.
    pub baselines: &'a [Baseline],
    /// What the buyer reaches at that moment.
    pub reach: Reach,
}

/// Receives every stream purchase of a sweep, in stream order.
pub trait GridSink: std::any::Any {
    fn checked(&mut self, purchase: &GridChecked<'_>) -> std::io::Result<()>;

    /// Sees every stream event just before it is applied, in stream order (a purchase's buyer
    /// is both `users`), with the friendships as they stand then: the sweep's stream span and
    /// befriend distances (`crate::sweep::cost`, `crate::sweep::distances`).
    fn before_event(&mut self, _action: &Action, _users: [UserId; 2], _graph: &GraphAt<'_>) {}
}

/// A sweep's checks: the grid, the window's results and where they go.
struct GridChecks {
    grid: Grid,
    /// Per pending purchase, its baselines (see [`GridChecked::baselines`]).
    baselines: Vec<Baseline>,
    /// Per pending purchase, what its buyer reaches.
    reach: Vec<Reach>,
    sink: Box<dyn GridSink>,
}

impl GridChecks {
    /// Checks a purchase by `buyer` at `before` now (the sequential path).
    fn check(
        &mut self,
        query: &mut NetworkQuery,
        graph: &impl Friendships,
        history: &PurchaseHistory,
        buyer: UserId,
        before: u64,
    ) {
        let at = self.baselines.len();
        self.baselines
            .resize(at + self.grid.pairs(), Baseline::default());
        let out = &mut self.baselines[at..];
        self.reach
            .push(query.grid(graph, history, buyer, before, &self.grid, out));
    }

    /// Checks the window's pending purchases in parallel, each against the friendships it
    /// sees.
    fn check_window(
        &mut self,
        pending: &[Pending],
        graph: &FriendGraph,
        history: &PurchaseHistory,
        changes: &EdgeChanges,
        scratch: &[WorkerScratch],
        pool: &rayon::ThreadPool,
    ) {
        let (grid, pairs) = (&self.grid, self.grid.pairs());
        self.baselines.clear();
        self.baselines
            .resize(pending.len() * pairs, Baseline::default());
        self.reach.clear();
        self.reach.resize(pending.len(), Reach::default());
        let workers = pool.current_num_threads().max(1);
        let group = pending.len().div_ceil(workers).clamp(1, CHECK_GROUP);
        pool.install(|| {
            pending
                .par_chunks(group)
                .zip(self.baselines.par_chunks_mut(group * pairs))
                .zip(self.reach.par_chunks_mut(group))
                .for_each(|((pending, baselines), reach)| {
                    let worker = rayon::current_thread_index().unwrap_or(0) % scratch.len();
                    let mut query = scratch[worker].0.lock().expect("query scratch poisoned");
                    for ((p, out), reach) in pending
                        .iter()
                        .zip(baselines.chunks_mut(pairs))
                        .zip(reach.iter_mut())
                    {
                        let at = GraphAt {
                            graph,
                            changes,
                            seq: p.seq,
                        };
                        *reach = query.grid(&at, history, p.buyer, p.seq, grid, out);
                    }
                });
        });
    }

    /// Hands the checked purchases to the sink in stream order, and forgets them.
    fn hand_over(&mut self, pending: &[Pending], lines: &[u8], stream: &str) -> Result<(), Fatal> {
        let pairs = self.grid.pairs();
        for ((p, baselines), &reach) in pending
            .iter()
            .zip(self.baselines.chunks(pairs))
            .zip(&self.reach)
        {
            let line = &lines[p.start..p.start + p.len];
            check_echoed(line, stream)?;
            let checked = GridChecked {
                line,
                line_no: p.line_no,
                buyer: p.buyer,
                cents: p.cents,
                baselines,
                reach,
            };
            self.sink.checked(&checked).map_err(Fatal::Output)?;
        }
        self.baselines.clear();
        self.reach.clear();
        Ok(())
    }
}

/// Refuses to echo a line that holds a NUL byte. No line that parsed holds one, so it can only
/// come from a mapped log that lost the line's bytes after it was parsed: truncation leaves
/// zeros in the last page without a fault, and the SIGBUS guard maps zeros over the rest (see
/// [`crate::ingest::shrink`]). The check looks at the very bytes about to be written, so no
/// zero reaches an output, whenever the file changed.
fn check_echoed(line: &[u8], stream: &str) -> Result<(), Fatal> {
    match memchr::memchr(0, line) {
        None => Ok(()),
        Some(_) => Err(Fatal::Shrank {
            path: stream.into(),
        }),
    }
}

/// One worker's query scratch, on cache lines of its own: the scratch's vectors change length
/// on every step of a query, and sharing a line with another worker's would make the two
/// cores fight over it.
#[repr(align(128))]
struct WorkerScratch(Mutex<NetworkQuery>);

/// The stream events applied since the last checks ran.
struct StreamWindow {
    params: Params,
    /// Events per window; 0 means the sequential path: every check runs at once.
    size: usize,
    /// Whether flagged purchases also get the buyer's friends and friends of friends.
    social: bool,
    events: usize,
    pending: Vec<Pending>,
    /// The lines of the pending purchases, back to back.
    lines: Vec<u8>,
    outcomes: Vec<Outcome>,
    changes: EdgeChanges,
    /// Users who bought in this window.
    buyers: Vec<UserId>,
    /// Query scratch, one per worker thread.
    scratch: Vec<WorkerScratch>,
    /// In a sweep: its checks, which replace the single check with the run's `D` and `T`.
    grid: Option<GridChecks>,
}

impl StreamWindow {
    fn new(config: &Config, params: Params, workers: usize) -> Self {
        StreamWindow {
            params,
            size: if config.threads <= 1 {
                0
            } else {
                config.window.max(1)
            },
            social: config.social,
            events: 0,
            pending: Vec::new(),
            lines: Vec::new(),
            outcomes: Vec::new(),
            changes: EdgeChanges::new(),
            buyers: Vec::new(),
            scratch: (0..workers.max(1))
                .map(|_| WorkerScratch(Mutex::new(NetworkQuery::new())))
                .collect(),
            grid: None,
        }
    }

    fn is_full(&self) -> bool {
        self.events >= self.size
    }

    /// Applies one stream event; a purchase is queued for its check.
    /// `users` are the event's interned ids (a purchase's buyer twice).
    fn apply(&mut self, state: &mut State, action: Action, users: [UserId; 2], at: At<'_>) {
        self.events += 1;
        // Sweep: its sink sees the event before it changes anything (the window's changes so
        // far are in `changes`; none on the sequential path).
        if let Some(grid) = &mut self.grid {
            let graph = GraphAt {
                graph: &state.graph,
                changes: &self.changes,
                seq: at.seq,
            };
            grid.sink.before_event(&action, users, &graph);
        }
        let [a, b] = users;
        match action {
            Action::Purchase {
                cents, timestamp, ..
            } => {
                let buyer = a;
                let start = self.lines.len();
                self.lines.extend_from_slice(at.line);
                self.pending.push(Pending {
                    seq: at.seq,
                    line_no: at.line_no,
                    buyer,
                    cents,
                    timestamp,
                    start,
                    len: at.line.len(),
                });
                let purchase = Purchase::new(timestamp, at.seq, cents);
                if self.size == 0 {
                    // Sequential: the check runs before the purchase joins the history.
                    let query = self.scratch[0].0.get_mut().expect("not shared");
                    let (graph, degree) = (&state.graph, self.params.degree);
                    if let Some(grid) = &mut self.grid {
                        grid.check(query, graph, &state.history, buyer, u64::MAX);
                    } else {
                        let baseline = query.baseline(graph, &state.history, buyer, degree);
                        let outcome =
                            Outcome::of(query, graph, baseline, self.social, buyer, cents);
                        self.outcomes.push(outcome);
                    }
                    state.history.record(buyer, purchase);
                } else if state.history.record_in_window(buyer, purchase) {
                    self.buyers.push(buyer);
                }
            }
            Action::Befriend(..) => {
                if self.size == 0 {
                    state.graph.befriend(a, b);
                } else {
                    self.changes.befriend(&mut state.graph, a, b, at.seq);
                }
            }
            Action::Unfriend(..) => {
                if self.size == 0 {
                    state.graph.unfriend(a, b);
                } else {
                    self.changes.unfriend(&mut state.graph, a, b, at.seq);
                }
            }
        }
    }

    /// Runs the window's pending checks (in parallel), hands them to the sink in stream order
    /// and closes the window.
    fn run(
        &mut self,
        state: &mut State,
        pool: &rayon::ThreadPool,
        sink: &mut dyn Sink,
        summary: &mut Summary,
    ) -> Result<(), Fatal> {
        if let Some(grid) = &mut self.grid {
            if self.size > 0 && !self.pending.is_empty() {
                let (graph, history) = (&state.graph, &state.history);
                grid.check_window(
                    &self.pending,
                    graph,
                    history,
                    &self.changes,
                    &self.scratch,
                    pool,
                );
            }
            grid.hand_over(&self.pending, &self.lines, &summary.stream_file)?;
        } else if self.size > 0 && !self.pending.is_empty() {
            let (graph, history, changes) = (&state.graph, &state.history, &self.changes);
            let (scratch, params, social) = (&self.scratch, self.params, self.social);
            self.outcomes.clear();
            self.outcomes
                .resize_with(self.pending.len(), Outcome::default);
            let workers = pool.current_num_threads().max(1);
            let group = self.pending.len().div_ceil(workers).clamp(1, CHECK_GROUP);
            pool.install(|| {
                // In groups, each run staggered by one worker (see `NetworkQuery::baselines`).
                self.pending
                    .par_chunks(group)
                    .zip(self.outcomes.par_chunks_mut(group))
                    .for_each(|(pending, outcomes)| {
                        let worker = rayon::current_thread_index().unwrap_or(0) % scratch.len();
                        let mut query = scratch[worker].0.lock().expect("query scratch poisoned");
                        let at = |p: &Pending| GraphAt {
                            graph,
                            changes,
                            seq: p.seq,
                        };
                        query.baselines(
                            history,
                            params.degree,
                            pending.len(),
                            |i| (at(&pending[i]), pending[i].buyer, pending[i].seq),
                            |query, i, baseline| {
                                let p = &pending[i];
                                outcomes[i] =
                                    Outcome::of(query, &at(p), baseline, social, p.buyer, p.cents);
                            },
                        );
                    });
            });
        }
        for (p, outcome) in self.pending.iter().zip(&self.outcomes) {
            let line = &self.lines[p.start..p.start + p.len];
            let flagged = outcome.baseline.is_anomalous(p.cents);
            if flagged {
                check_echoed(line, &summary.stream_file)?;
            }
            let checked = Checked {
                line,
                line_no: p.line_no,
                buyer: p.buyer,
                cents: p.cents,
                timestamp: p.timestamp,
                baseline: outcome.baseline,
                flagged,
                social: outcome.social.as_ref(),
                users: &state.users,
            };
            summary.flagged += u64::from(checked.flagged);
            sink.checked(&checked).map_err(Fatal::Output)?;
        }
        self.pending.clear();
        self.lines.clear();
        self.outcomes.clear();
        self.events = 0;
        self.changes.close(&mut state.graph);
        state.history.close_windows(&self.buyers);
        self.buyers.clear();
        Ok(())
    }
}

impl Outcome {
    /// The outcome of a check with this baseline; `social` asks for the buyer's friends and
    /// friends of friends, which flagged purchases then carry, as `graph` shows them.
    fn of(
        query: &mut NetworkQuery,
        graph: &impl Friendships,
        baseline: Baseline,
        social: bool,
        buyer: UserId,
        cents: u64,
    ) -> Outcome {
        let social = (social && baseline.is_anomalous(cents)).then(|| query.social(graph, buyer));
        Outcome { baseline, social }
    }
}

impl State {
    /// Interns the events of `chunk` up to `i + 2 * APPLY_AHEAD` into `users` (`users[k]` for
    /// event `k`, a purchase's buyer twice), so that applying event `i` can prefetch for the
    /// events ahead of it. Interning goes along with applying, so a chunk's events are read
    /// once, while cached; the direct table's entries start loading [`APPLY_AHEAD`] events
    /// before they are read.
    ///
    /// A new user beyond [`crate::state::users::MAX_USERS`] stops it: the error is the chunk-local index of the
    /// line that named it.
    #[inline]
    fn intern_ahead(
        &mut self,
        chunk: &ParsedChunk,
        users: &mut Vec<[UserId; 2]>,
        i: usize,
    ) -> Result<(), u32> {
        let events = &chunk.events;
        let through = (i + 2 * APPLY_AHEAD + 1).min(events.len());
        while users.len() < through {
            if let Some(later) = events.get(users.len() + APPLY_AHEAD) {
                self.prefetch_ids(later);
            }
            let event = &events[users.len()];
            let interned = self
                .intern_event(chunk, event)
                .map_err(|TooManyUsers| event.line)?;
            users.push(interned);
        }
        Ok(())
    }

    /// Starts loading what interning an event's ids will read.
    #[inline]
    fn prefetch_ids(&self, event: &Event) {
        match event.action {
            Action::Purchase { buyer, .. } => self.users.prefetch(buyer),
            Action::Befriend(a, b) | Action::Unfriend(a, b) => {
                self.users.prefetch(a);
                self.users.prefetch(b);
            }
        }
    }

    /// The users of an event of `chunk` (a purchase's buyer twice).
    #[inline]
    fn intern_event(
        &mut self,
        chunk: &ParsedChunk,
        event: &Event,
    ) -> Result<[UserId; 2], TooManyUsers> {
        Ok(match event.action {
            Action::Purchase { buyer, .. } => [self.users.intern_from(chunk, buyer)?; 2],
            Action::Befriend(a, b) | Action::Unfriend(a, b) => [
                self.users.intern_from(chunk, a)?,
                self.users.intern_from(chunk, b)?,
            ],
        })
    }

    /// Called before applying event `i` of the chunk: starts loading the headers of what the
    /// event twice [`APPLY_AHEAD`] further on will touch, and what the headers of the event
    /// [`APPLY_AHEAD`] further on point to, so that the cache misses of random users overlap
    /// instead of queueing.
    #[inline]
    fn prefetch_ahead(&self, chunk: &ParsedChunk, users: &[[UserId; 2]], i: usize, ranked: bool) {
        self.prefetch_event(chunk, users, i + 2 * APPLY_AHEAD, false, ranked);
        self.prefetch_event(chunk, users, i + APPLY_AHEAD, true, ranked);
    }

    /// Starts loading what applying event `i` of the chunk will touch: its users' history or
    /// friend lists, or with `deep` (once those headers have arrived) what they point to;
    /// `ranked`: also a buyer's recency (the batch leaves it for [`PurchaseHistory::rank_all`]).
    #[inline]
    fn prefetch_event(
        &self,
        chunk: &ParsedChunk,
        users: &[[UserId; 2]],
        i: usize,
        deep: bool,
        ranked: bool,
    ) {
        let Some(event) = chunk.events.get(i) else {
            return;
        };
        let [a, b] = users[i];
        if matches!(event.action, Action::Purchase { .. }) {
            self.history.prefetch(a, deep, ranked);
        } else {
            self.graph.prefetch(a, deep);
            self.graph.prefetch(b, deep);
        }
    }

    /// Applies a chunk of batch events (line `i` of the chunk has sequence `first_seq + i`).
    /// Stops at a line naming one user too many (see [`Self::intern_ahead`]).
    fn apply_batch(
        &mut self,
        chunk: &ParsedChunk,
        first_seq: u64,
        users: &mut Vec<[UserId; 2]>,
    ) -> Result<(), u32> {
        users.clear();
        for (i, event) in chunk.events.iter().enumerate() {
            self.intern_ahead(chunk, users, i)?;
            self.prefetch_ahead(chunk, users, i, false);
            let [a, b] = users[i];
            match event.action {
                Action::Purchase {
                    cents, timestamp, ..
                } => self.history.record_unranked(
                    a,
                    Purchase::new(timestamp, first_seq + u64::from(event.line), cents),
                ),
                Action::Befriend(..) => {
                    self.graph.befriend(a, b);
                }
                Action::Unfriend(..) => {
                    self.graph.unfriend(a, b);
                }
            }
        }
        Ok(())
    }
}

/// How many events ahead of the one being applied its state starts loading (see
/// [`State::prefetch_ahead`]).
const APPLY_AHEAD: usize = 8;

/// Parses `log.body()[from..]` chunk by chunk and hands the chunks to `apply` in order.
/// With more than one thread, chunks are parsed in parallel ahead of the applier.
fn for_each_chunk(
    log: &LogFile,
    from: usize,
    config: &Config,
    pool: &rayon::ThreadPool,
    hasher: IdHasher,
    mut apply: impl FnMut(&ParsedChunk) -> Result<(), Fatal>,
) -> Result<(), Fatal> {
    let stop = config.stop.clone();
    let mut apply = move |chunk: &ParsedChunk| {
        if stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
            return Err(Fatal::Interrupted);
        }
        // Before anything of the chunk is used: it may hold zeros for bytes the file lost.
        log.check_size()?;
        apply(chunk).map_err(|error| damage_of(log, error))
    };
    let body = log.body();
    // A line longer than the limit comes as a piece of its own, its pages given back as they
    // are looked through: it is never parsed nor kept resident.
    let release = |range| log.release(range);
    let mut ranges = chunks(body, from, config.chunk_bytes).with_limit(config.max_line, &release);
    if config.threads <= 1 {
        let mut parser = LineParser::new(hasher);
        parser.set_max_line(config.max_line);
        let mut chunk = ParsedChunk::default();
        while let Some((range, too_long)) = ranges.next_piece() {
            if too_long {
                chunk.one_too_long_line(range.clone(), config.max_line);
            } else {
                parser.parse_chunk(body, range.clone(), &mut chunk);
            }
            apply(&chunk)?;
            log.release(range);
        }
        // The last chunk's lines may have been read during its application.
        return log.check_size();
    }
    // A fixed set of chunk buffers circulates: the producer takes a free one for each range
    // and has a pool worker parse into it, the applier takes parsed chunks back in order and
    // frees them. Workers never wait for each other, and memory stays flat.
    let in_flight = config.threads * 4;
    let (parsed_tx, parsed_rx) = crossbeam_channel::unbounded::<(usize, ParsedChunk)>();
    let (free_tx, free_rx) = crossbeam_channel::unbounded::<ParsedChunk>();
    for _ in 0..in_flight {
        let _ = free_tx.send(ParsedChunk::default());
    }
    let parsers: Vec<WorkerParser> = (0..pool.current_num_threads())
        .map(|_| {
            let mut parser = LineParser::new(hasher);
            parser.set_max_line(config.max_line);
            WorkerParser(Mutex::new(parser))
        })
        .collect();
    let max_line = config.max_line;
    std::thread::scope(|scope| {
        // The producer runs on a thread of its own: waiting for a free chunk must never hold a
        // pool worker that parsing or checks could use.
        let producer = std::thread::Builder::new().name("chunk producer".into());
        let started = producer.spawn_scoped(scope, move || {
            pool.in_place_scope(|jobs| {
                for index in 0.. {
                    let Some((range, too_long)) = ranges.next_piece() else {
                        return;
                    };
                    // No free chunk and no applier to free one: the applier stopped.
                    let Ok(mut chunk) = free_rx.recv() else {
                        return;
                    };
                    if too_long {
                        chunk.one_too_long_line(range, max_line);
                        let _ = parsed_tx.send((index, chunk));
                        continue;
                    }
                    let parsed_tx = parsed_tx.clone();
                    let parsers = &parsers;
                    jobs.spawn(move |_| {
                        let worker = rayon::current_thread_index().unwrap_or(0) % parsers.len();
                        let mut parser = parsers[worker].0.lock().expect("parser poisoned");
                        parser.parse_chunk(body, range, &mut chunk);
                        drop(parser);
                        let _ = parsed_tx.send((index, chunk));
                    });
                }
            });
        });
        if let Err(error) = started {
            return Err(Fatal::Threads {
                what: format!("the thread that cuts {} into chunks", shown(&log.name)),
                error: error.to_string(),
            });
        }
        // Owned here, so that when applying fails the producer, finding no free chunk and no
        // sender left, stops.
        let free_tx = free_tx;
        // Chunks arrive in any order: each waits in its slot until those before it are applied.
        let mut waiting: Vec<Option<ParsedChunk>> = (0..in_flight).map(|_| None).collect();
        let mut next = 0;
        for (index, chunk) in parsed_rx {
            waiting[index % in_flight] = Some(chunk);
            while let Some(chunk) = waiting[next % in_flight].take() {
                apply(&chunk)?;
                log.release(chunk.offset..chunk.offset + chunk.len);
                let _ = free_tx.send(chunk);
                next += 1;
            }
        }
        log.check_size()
    })
}

/// `error`, or when it is a line found zeroed by [`check_echoed`], what happened to `log` (it
/// shrank, or a page could not be read).
fn damage_of(log: &LogFile, error: Fatal) -> Fatal {
    match error {
        Fatal::Shrank { .. } => log.check_size().err().unwrap_or(error),
        error => error,
    }
}

/// One worker's line parser, on cache lines of its own.
#[repr(align(128))]
struct WorkerParser(Mutex<LineParser>);

#[cfg(test)]
mod tests {
    use super::*;

    /// A log read as it comes that hands out `lines`, then panics.
    fn panicking_reader(name: &str, lines: &'static [u8]) -> LogReader {
        struct Panics(&'static [u8]);
        impl std::io::Read for Panics {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    panic!("the reader broke");
                }
                let n = self.0.len().min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        LogReader {
            name: name.to_string(),
            reader: Box::new(Panics(lines)),
        }
    }

    const BATCH: &[u8] = b"{\"D\":\"1\", \"T\":\"2\"}\n";
    const STREAM: &[u8] = b"{\"event_type\":\"befriend\", \"timestamp\":\"2017-06-13 11:33:01\", \"id1\": \"1\", \"id2\": \"2\"}\n";

    fn assert_reader_failed(result: Result<(), Fatal>, name: &str) {
        match result {
            Err(error @ Fatal::ReaderFailed { .. }) => assert_eq!(
                error.to_string(),
                format!("{name}: cannot read: the thread reading it failed (the reader broke)")
            ),
            Err(other) => panic!("another error: {other}"),
            Ok(()) => panic!("a reader that panicked ended the input as a success"),
        }
    }

    #[test]
    fn a_reader_thread_that_panics_is_a_fatal_error_naming_the_file() {
        let config = Config {
            threads: 1,
            ..Config::default()
        };
        let mut skips = SkipLog::new(Box::new(std::io::sink()), false);
        let progress = Progress::hidden();
        let batch = Replay::batch_read(
            panicking_reader("batch.fifo", BATCH),
            &config,
            &mut skips,
            &progress,
        );
        assert_reader_failed(batch.map(drop), "batch.fifo");
        let batch = LogFile::from_bytes("batch", BATCH.to_vec());
        let mut sink: Vec<Box<dyn Sink>> = Vec::new();
        let mut replay = Replay::batch(&batch, &config, &mut skips, &progress).unwrap();
        let read = replay.stream_read(
            panicking_reader("stream.fifo", STREAM),
            &mut sink,
            &mut skips,
        );
        assert_reader_failed(read, "stream.fifo");
        // Live: the stop channel stays open; the reader's end is the only way out.
        let (_stop, stopped) = crossbeam_channel::bounded(1);
        let mut replay = Replay::batch(&batch, &config, &mut skips, &progress).unwrap();
        let live = replay.stream_live(
            panicking_reader("-", STREAM),
            &mut sink,
            &mut skips,
            &stopped,
        );
        assert_reader_failed(live, "-");
    }

    /// A log naming one distinct user more than a run holds stops the run with an error naming
    /// the file and the line, in the batch and in the stream, at any thread count and chunk size.
    /// (The limit is lowered to 3 here; the real one is `MAX_USERS`, 4 294 967 294.)
    #[test]
    fn one_user_too_many_is_a_fatal_error_naming_the_file_and_line() {
        use crate::output::report::SkipLog;
        use crate::state::users::TEST_LIMIT;
        let line = |kind: &str, ids: &str| {
            format!(r#"{{"event_type":"{kind}", "timestamp":"2017-06-13 11:33:01", {ids}}}"#)
        };
        let befriend =
            |a: &str, b: &str| line("befriend", &format!(r#""id1": "{a}", "id2": "{b}""#));
        let purchase = |a: &str| line("purchase", &format!(r#""id": "{a}", "amount": "1.00""#));
        let params = r#"{"D":"1", "T":"2"}"#;
        // Users 1, x and 2 fit; "y" (batch line 6, stream line 3) is one too many.
        let fits = [
            params.to_string(),
            String::new(),
            befriend("1", "x"),
            purchase("2"),
        ];
        let batch_over = [&fits[..], &[purchase("1"), befriend("x", "y")]]
            .concat()
            .join("\n");
        let batch_fits = fits.join("\n");
        let stream = [
            purchase("2"),
            befriend("1", "2"),
            purchase("y"),
            purchase("1"),
        ]
        .join("\n");
        for threads in [1, 2] {
            for chunk_bytes in [1, 1 << 20] {
                let config = Config {
                    threads,
                    chunk_bytes,
                    window: 2,
                    ..Config::default()
                };
                let run = |batch: &str, stream: &str| {
                    let batch = LogFile::from_bytes("batch_log.json", batch.as_bytes().to_vec());
                    let stream = LogFile::from_bytes("stream_log.json", stream.as_bytes().to_vec());
                    let mut skips = SkipLog::new(Box::new(std::io::sink()), false);
                    let mut sink = crate::output::sink::FlaggedLines::new(Vec::new());
                    TEST_LIMIT.set(Some(3));
                    let result = replay(&batch, &stream, &config, &mut sink, &mut skips);
                    TEST_LIMIT.set(None);
                    result.map(|_| ()).map_err(|e| e.to_string())
                };
                let beyond =
                    "the logs name more than 3 distinct users, beyond what a run can index";
                assert_eq!(
                    run(&batch_over, ""),
                    Err(format!("batch_log.json:6: {beyond}")),
                    "threads {threads}, chunks of {chunk_bytes} bytes"
                );
                assert_eq!(
                    run(&batch_fits, &stream),
                    Err(format!("stream_log.json:3: {beyond}")),
                    "threads {threads}, chunks of {chunk_bytes} bytes"
                );
                assert_eq!(run(&batch_fits, &stream.replace("\"y\"", "\"x\"")), Ok(()));
            }
        }
    }

    /// A library caller's tuning values beyond the command line's bounds are brought within
    /// them: the largest chunk, line limit and window work (a chunk target of `usize::MAX`
    /// overflowed the chunk cutter).
    #[test]
    fn out_of_bounds_tuning_values_are_brought_within_bounds() {
        use crate::output::report::SkipLog;
        let wild = Config {
            chunk_bytes: usize::MAX,
            max_line: usize::MAX,
            window: usize::MAX,
            ..Config::default()
        };
        let bounded = wild.bounded();
        assert_eq!(
            (bounded.chunk_bytes, bounded.max_line, bounded.window),
            (MAX_CHUNK_BYTES, MAX_LINE_LIMIT, MAX_WINDOW)
        );
        let zero = Config {
            chunk_bytes: 0,
            max_line: 0,
            window: 0,
            ..Config::default()
        }
        .bounded();
        assert_eq!((zero.chunk_bytes, zero.max_line, zero.window), (1, 1, 1));
        let batch = concat!(
            r#"{"D":"1", "T":"2"}"#,
            "\n",
            r#"{"event_type":"befriend", "timestamp":"2017-06-13 11:33:01", "id1": "1", "id2": "2"}"#,
            "\n",
            r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "2", "amount": "10.00"}"#,
            "\n",
            r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:01", "id": "2", "amount": "12.00"}"#,
        );
        let stream = r#"{"event_type":"purchase", "timestamp":"2017-06-13 11:33:02", "id": "1", "amount": "100.00"}"#;
        for threads in [1, 2] {
            let config = Config {
                threads,
                ..wild.clone()
            };
            let batch = LogFile::from_bytes("batch_log.json", batch.as_bytes().to_vec());
            let stream = LogFile::from_bytes("stream_log.json", stream.as_bytes().to_vec());
            let mut skips = SkipLog::new(Box::new(std::io::sink()), false);
            let mut sink = crate::output::sink::FlaggedLines::new(Vec::new());
            let summary = replay(&batch, &stream, &config, &mut sink, &mut skips).expect("a run");
            assert_eq!(summary.flagged, 1, "threads {threads}");
        }
    }

    #[test]
    fn numbering_stops_before_sequence_numbers_overflow() {
        let chunk = ParsedChunk {
            lines: 10,
            ..ParsedChunk::default()
        };
        let last = Purchase::SEQ_LIMIT - 1;
        assert!(check_numbering("log", last - 10, &chunk).is_ok());
        let refused = check_numbering("log", last - 9, &chunk).expect_err("overflow");
        assert_eq!(
            refused.to_string(),
            format!(
                "log: the logs hold more than {last} lines in all, beyond what a run can number"
            )
        );
    }
}
