//! The chunk source: one abstraction that hands out parsed chunks of a log, in order, with
//! the sequence numbers of their lines, whether the log is a mapped file (parsed in parallel
//! ahead of the applier), blocks read from a pipe, or a live stream's lines. Reading, cutting,
//! parsing and reporting skipped lines happen here; the consumer only applies chunks.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::clock::PhaseClock;
use crate::config::Config;
use crate::error::{Fatal, SkipReason, escaped, shown};
use crate::ingest::input::{
    BLOCKS_AHEAD, BlockEnd, Lines, LogFile, LogReader, MAX_LINE, chunks, read_blocks_counted,
    trim_line,
};
use crate::ingest::parse::{IdHasher, LineParser, Params, ParsedChunk, parse_params};

/// Sequence numbers are below this (2^52 lines: decades of input at millions of lines per
/// second); a purchase packs its sequence number in 52 bits.
pub const SEQ_LIMIT: u64 = 1 << 52;

/// Where skipped lines are reported (the run's `SkipLog`). Its error stops the replay (a
/// skipped line under `--strict`).
pub trait SkipReport {
    /// Line `line` (1-based) of the log `file` is skipped for `reason`.
    fn skip(&mut self, file: &str, line: u64, reason: &SkipReason) -> Result<(), Fatal>;
}

/// A parsed chunk as the source hands it out.
pub struct Numbered<'a> {
    /// The log's name, for messages.
    pub name: &'a str,
    pub chunk: &'a ParsedChunk,
    /// The chunk's bytes: its events' spans are offsets into them.
    pub text: &'a [u8],
    /// The sequence number of the chunk's first line.
    pub seq: u64,
    /// The lines of the log before the chunk's first line: line `i` of the chunk is line
    /// `lines_before + i + 1` of the log.
    pub lines_before: u64,
}

/// What a chunk source hands its chunks to: the applier.
pub trait Consumer {
    /// Applies a chunk; chunks come in log order. `false` ends the log early: no later chunk
    /// is read.
    fn chunk(&mut self, chunk: &Numbered<'_>) -> Result<bool, Fatal>;

    /// A live stream's input stalls (or a checkpoint is [`due`](Self::due), or the stream
    /// stops: `stopping`): whatever waits should be decided now. `at`: where the last block
    /// handed out ends in the source.
    fn stalled(&mut self, at: BlockEnd, stopping: bool) -> Result<(), Fatal> {
        let _ = (at, stopping);
        Ok(())
    }

    /// Whether a live stream's consumer wants to decide what waits now, though the input
    /// keeps coming (a checkpoint is due after the block ending at `at`).
    fn due(&self, at: BlockEnd) -> bool {
        let _ = at;
        false
    }

    /// The log ended (every chunk was handed out).
    fn end(&mut self) -> Result<(), Fatal> {
        Ok(())
    }
}

/// A log, as a source of parsed chunks.
pub enum ChunkSource<'a> {
    /// A mapped log, from a byte offset of its body: cut into chunks that the pool's workers
    /// parse ahead of the applier.
    Mapped { log: &'a LogFile, from: usize },
    /// A log read as it comes (a pipe, a FIFO, a device): block by block, never whole; a
    /// signal interrupts it ([`Fatal::Interrupted`]).
    Read(LogReader),
    /// The rest of a batch log read as it comes, after its parameter line.
    Head(BatchHead),
    /// A live stream: lines are read as they arrive (a separate thread reads), and the
    /// consumer hears whenever the input stalls. A message on `stop` ends it normally after
    /// the lines already read.
    Live {
        log: LogReader,
        stop: &'a crossbeam_channel::Receiver<()>,
    },
    /// Whole lines already in memory, parsed on the caller's thread with `parser` into
    /// `chunk` (both reused from call to call): a library user's lines, one at a time. A
    /// stream only: a batch log is a file or a pipe.
    Text {
        name: &'a str,
        text: &'a [u8],
        parser: &'a mut LineParser,
        chunk: &'a mut ParsedChunk,
    },
}

/// Where the numbering of a log's lines starts.
#[derive(Debug, Clone, Copy)]
pub struct Numbering {
    /// The sequence number of the next line handed out.
    pub seq: u64,
    /// The sequence number that line 1 of the log has (or would have).
    pub line_one: u64,
}

/// A batch log's parameter line, and the source of the events after it.
pub struct BatchStart<'a> {
    pub params: Params,
    /// Lines up to and with the parameter line.
    pub lines: u64,
    /// When reading the log started.
    pub started: Instant,
    pub clock: PhaseClock,
    pub rest: ChunkSource<'a>,
}

impl<'a> ChunkSource<'a> {
    /// A mapped log from the start of its body.
    pub fn whole(log: &'a LogFile) -> ChunkSource<'a> {
        ChunkSource::Mapped { log, from: 0 }
    }

    /// The log's name, for messages.
    pub fn name(&self) -> &str {
        match self {
            ChunkSource::Mapped { log, .. } => &log.name,
            ChunkSource::Read(log) | ChunkSource::Live { log, .. } => &log.name,
            ChunkSource::Head(head) => &head.name,
            ChunkSource::Text { name, .. } => name,
        }
    }

    /// Reads a batch log up to its parameter line (the first non-blank line); the rest is the
    /// history. A log read as it comes is read block by block up to it.
    pub fn batch_start(self, config: &Config) -> Result<BatchStart<'a>, Fatal> {
        let (started, clock) = (Instant::now(), PhaseClock::start());
        let head = match self {
            ChunkSource::Mapped { log, from } => {
                let found = find_params(&log.body()[from..], &log.path, config.max_line);
                log.check_size()?;
                let (params, at, lines) = found?.ok_or_else(|| no_params(&log.path))?;
                return Ok(BatchStart {
                    params,
                    lines,
                    started,
                    clock,
                    rest: ChunkSource::Mapped {
                        log,
                        from: from + at,
                    },
                });
            }
            ChunkSource::Read(log) | ChunkSource::Live { log, .. } => {
                BatchHead::read(log, config.max_line, config.stop.as_deref())?
            }
            ChunkSource::Head(head) => head,
            ChunkSource::Text { name, .. } => {
                return Err(Fatal::Parameters {
                    path: name.into(),
                    problem: "a batch log is read from a file or a pipe, not from lines in memory"
                        .to_string(),
                });
            }
        };
        Ok(BatchStart {
            params: head.params,
            lines: head.lines,
            started: head.started,
            clock: head.clock,
            rest: ChunkSource::Head(head),
        })
    }

    /// Hands the log's chunks to `to` in order, numbered from `numbering`; reports skipped
    /// lines to `skips` first. Returns the bytes read. `hasher` hashes the ids as the state's
    /// interner does.
    pub fn run(
        self,
        numbering: Numbering,
        config: &Config,
        pool: &rayon::ThreadPool,
        hasher: IdHasher,
        skips: &mut dyn SkipReport,
        to: &mut dyn Consumer,
    ) -> Result<u64, Fatal> {
        let mut seq = numbering.seq;
        let mut deliver = |to: &mut dyn Consumer, name: &str, chunk: &ParsedChunk, text: &[u8]| {
            check_numbering(name, seq, chunk)?;
            let lines_before = seq - numbering.line_one;
            for &(line, ref reason) in &chunk.skipped {
                skips.skip(name, lines_before + u64::from(line) + 1, reason)?;
            }
            let go_on = to.chunk(&Numbered {
                name,
                chunk,
                text,
                seq,
                lines_before,
            })?;
            seq += u64::from(chunk.lines);
            Ok(go_on)
        };
        let stop = config.stop.as_deref();
        match self {
            ChunkSource::Mapped { log, from } => {
                let body = log.body();
                for_each_chunk(log, from, config, pool, hasher, |chunk| {
                    let text = &body[chunk.offset..chunk.offset + chunk.len];
                    deliver(&mut *to, &log.name, chunk, text)
                })?;
                to.end().map_err(|error| damage_of(log, error))?;
                Ok(body.len() as u64)
            }
            ChunkSource::Read(log) => {
                let name = log.name.clone();
                let feed = BlockFeed::start(log, config.max_line)?;
                let mut blocks = Blocks::new(config, hasher, &name, feed, None);
                let mut ended = true;
                while blocks.next(stop)? {
                    if !blocks.deliver(&mut *to, &mut deliver)? {
                        ended = false;
                        break;
                    }
                }
                let bytes = blocks.finish(ended)?;
                to.end()?;
                Ok(bytes)
            }
            ChunkSource::Head(head) => {
                let BatchHead {
                    name,
                    feed,
                    block,
                    from,
                    bytes,
                    ..
                } = head;
                let mut blocks = Blocks::new(config, hasher, &name, feed, Some((block, from)));
                blocks.bytes = bytes;
                let ended = loop {
                    if !blocks.deliver(&mut *to, &mut deliver)? {
                        break false;
                    }
                    if !blocks.next(stop)? {
                        break true;
                    }
                };
                let bytes = blocks.finish(ended)?;
                to.end()?;
                Ok(bytes)
            }
            ChunkSource::Text {
                name,
                text,
                parser,
                chunk,
            } => {
                parser.parse_chunk(text, 0..text.len(), chunk);
                deliver(&mut *to, name, chunk, text)?;
                to.end()?;
                Ok(text.len() as u64)
            }
            ChunkSource::Live { log, stop } => {
                let name = log.name.clone();
                let feed = BlockFeed::start(log, config.max_line)?;
                let mut blocks = Blocks::new(config, hasher, &name, feed, None);
                // Whether the input ended (the reader is done, or failing): else a signal
                // stopped it.
                let mut ended = false;
                let mut at = BlockEnd::default();
                loop {
                    crossbeam_channel::select! {
                        recv(blocks.feed.blocks) -> block => {
                            let Ok((block, end)) = block else {
                                ended = true;
                                break;
                            };
                            blocks.take(block, 0);
                            if !blocks.deliver(&mut *to, &mut deliver)? {
                                break;
                            }
                            at = end;
                            if blocks.feed.blocks.is_empty() || to.due(at) {
                                // The input stalls: decide what is pending now.
                                to.stalled(at, false)?;
                            }
                        }
                        recv(stop) -> _ => break,
                    }
                }
                to.stalled(at, true)?;
                to.end()?;
                blocks.finish(ended)
            }
        }
    }
}

/// A parser for `config`'s line limit and memory hook, hashing ids with `hasher`.
pub fn line_parser(config: &Config, hasher: IdHasher) -> LineParser {
    let mut parser = LineParser::new(hasher);
    parser.set_max_line(config.max_line);
    parser.set_release_memory(config.release_memory);
    parser
}

/// Blocks of a log read as it comes, parsed one at a time by the applier's thread.
struct Blocks<'n> {
    name: &'n str,
    feed: BlockFeed,
    parser: LineParser,
    chunk: ParsedChunk,
    /// The current block, and where its lines start.
    block: Vec<u8>,
    from: usize,
    bytes: u64,
}

impl<'n> Blocks<'n> {
    fn new(
        config: &Config,
        hasher: IdHasher,
        name: &'n str,
        feed: BlockFeed,
        first: Option<(Vec<u8>, usize)>,
    ) -> Self {
        let (block, from) = first.unwrap_or_default();
        Blocks {
            name,
            feed,
            parser: line_parser(config, hasher),
            chunk: ParsedChunk::default(),
            block,
            from,
            bytes: 0,
        }
    }

    /// Takes the next block: `false` at the end of the input.
    fn next(&mut self, stop: Option<&AtomicBool>) -> Result<bool, Fatal> {
        match self.feed.next(stop)? {
            Some((block, _)) => {
                self.take(block, 0);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn take(&mut self, block: Vec<u8>, from: usize) {
        self.bytes += block.len() as u64;
        (self.block, self.from) = (block, from);
    }

    /// Ends reading: a reader that failed or panicked fails the run. Unless the input `ended`
    /// (a signal or the consumer stopped it), the reader may be blocked on its input: it is
    /// waited for only once done. Returns the bytes read.
    fn finish(self, ended: bool) -> Result<u64, Fatal> {
        if ended || self.feed.reader.is_finished() {
            self.feed.finish(Path::new(self.name))?;
        }
        Ok(self.bytes)
    }

    /// Parses the current block and hands it to `deliver`; `false`: the consumer stops.
    fn deliver(
        &mut self,
        to: &mut dyn Consumer,
        deliver: &mut impl FnMut(&mut dyn Consumer, &str, &ParsedChunk, &[u8]) -> Result<bool, Fatal>,
    ) -> Result<bool, Fatal> {
        self.parser
            .parse_chunk(&self.block, self.from..self.block.len(), &mut self.chunk);
        deliver(to, self.name, &self.chunk, &self.block[self.from..])
    }
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
    path: &Path,
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

fn no_params(path: &Path) -> Fatal {
    Fatal::Parameters {
        path: path.to_path_buf(),
        problem: "missing parameter line: the file has no non-blank line".to_string(),
    }
}

/// A batch log read as it comes, up to its parameter line: what a sweep reads before it can
/// set up its replay, which depends on the parameters (see [`ChunkSource::Head`]).
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
            let Some((block, _)) = feed.next(stop)? else {
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

/// Blocks of whole lines read from a [`LogReader`] by a thread of their own, each with where
/// it ends in the source.
struct BlockFeed {
    blocks: crossbeam_channel::Receiver<(Vec<u8>, BlockEnd)>,
    reader: std::thread::JoinHandle<std::io::Result<()>>,
}

impl BlockFeed {
    fn start(log: LogReader, max_line: usize) -> Result<BlockFeed, Fatal> {
        let (tx, blocks) = crossbeam_channel::bounded(BLOCKS_AHEAD);
        let source = log.reader;
        let reader = std::thread::Builder::new()
            .name("log reader".into())
            .spawn(move || read_blocks_counted(source, max_line, &tx))
            .map_err(|error| Fatal::Threads {
                what: format!("the thread that reads {}", shown(&log.name)),
                error: error.to_string(),
            })?;
        Ok(BlockFeed { blocks, reader })
    }

    /// The next block, `None` at the end of the input; waiting for it, looks at `stop` every
    /// tenth of a second (an endless line without `\n` sends no block).
    fn next(&self, stop: Option<&AtomicBool>) -> Result<Option<(Vec<u8>, BlockEnd)>, Fatal> {
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
    fn finish(self, path: &Path) -> Result<(), Fatal> {
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

/// Refuses a chunk whose lines would get sequence numbers of [`SEQ_LIMIT`] or more.
fn check_numbering(name: &str, first_seq: u64, chunk: &ParsedChunk) -> Result<(), Fatal> {
    if first_seq + u64::from(chunk.lines) < SEQ_LIMIT {
        Ok(())
    } else {
        Err(Fatal::TooManyLines {
            file: name.to_string(),
            limit: SEQ_LIMIT - 1,
        })
    }
}

/// Parses `log.body()[from..]` chunk by chunk and hands the chunks to `apply` in order, until
/// it returns `false`. With more than one thread, chunks are parsed in parallel ahead of the
/// applier.
fn for_each_chunk(
    log: &LogFile,
    from: usize,
    config: &Config,
    pool: &rayon::ThreadPool,
    hasher: IdHasher,
    mut apply: impl FnMut(&ParsedChunk) -> Result<bool, Fatal>,
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
        let mut parser = line_parser(config, hasher);
        let mut chunk = ParsedChunk::default();
        while let Some((range, too_long)) = ranges.next_piece() {
            if too_long {
                chunk.one_too_long_line(range.clone(), config.max_line);
            } else {
                parser.parse_chunk(body, range.clone(), &mut chunk);
            }
            let go_on = apply(&chunk)?;
            log.release(range);
            if !go_on {
                break;
            }
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
        .map(|_| WorkerParser(Mutex::new(line_parser(config, hasher))))
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
                let go_on = apply(&chunk)?;
                log.release(chunk.offset..chunk.offset + chunk.len);
                if !go_on {
                    // Dropping `free_tx` on the way out stops the producer.
                    return log.check_size();
                }
                let _ = free_tx.send(chunk);
                next += 1;
            }
        }
        log.check_size()
    })
}

/// `error`, or when it is a line found zeroed by the check of echoed lines
/// (`check::window::check_echoed`), what happened to `log` (it shrank, or a page could not be
/// read).
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

    #[test]
    fn numbering_stops_before_sequence_numbers_overflow() {
        let chunk = ParsedChunk {
            lines: 10,
            ..ParsedChunk::default()
        };
        let last = SEQ_LIMIT - 1;
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
