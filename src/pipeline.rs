//! The replay: the batch log builds the state, then every stream event is applied in order and
//! every stream purchase is checked against its network's baseline just before it joins the
//! history. Chunks of each log are parsed in parallel and applied in order by one thread.

use std::sync::Mutex;
use std::time::Instant;

use rayon::prelude::*;

use crate::baseline::Baseline;
use crate::error::Fatal;
use crate::event::Action;
use crate::graph::FriendGraph;
use crate::history::{Purchase, PurchaseHistory};
use crate::input::{Lines, LogFile, chunks, trim_line};
use crate::network::NetworkQuery;
use crate::parse::{IdHasher, LineParser, Params, ParsedChunk, parse_params};
use crate::report::{SkipLog, Summary};
use crate::sink::{Checked, Sink};
use crate::users::{UserId, UserIds};
use crate::window::{EdgeChanges, GraphAt};

/// Default number of stream events per window of parallel queries.
pub const DEFAULT_WINDOW: usize = 8192;

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Overrides the parameter line's `D`.
    pub degree: Option<u32>,
    /// Overrides the parameter line's `T`.
    pub tracked: Option<u32>,
    /// Worker threads; 1 is the plain sequential path.
    pub threads: usize,
    /// Target size of a parsing chunk in bytes.
    pub chunk_bytes: usize,
    /// Stream events applied per window before the window's queries run in parallel.
    pub window: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            degree: None,
            tracked: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            chunk_bytes: 1 << 20,
            window: DEFAULT_WINDOW,
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
    let body = batch.body();
    let problem = |problem: String| Fatal::Parameters {
        path: batch.path.clone(),
        problem,
    };
    for (index, line) in Lines::new(body).enumerate() {
        let (start, len) = trim_line(body, line.clone());
        if len == 0 {
            continue;
        }
        let params = parse_params(&body[start..start + len]).map_err(problem)?;
        return Ok((params, (line.end + 1).min(body.len()), index as u64 + 1));
    }
    Err(problem(
        "missing parameter line: the file has no non-blank line".to_string(),
    ))
}

/// Replays the batch then the stream, handing every checked stream purchase to `sink`.
pub fn replay(
    batch: &LogFile,
    stream: &LogFile,
    config: &Config,
    sink: &mut dyn Sink,
    skips: &mut SkipLog,
) -> Result<Summary, Fatal> {
    let started = Instant::now();
    let (header, batch_start, header_lines) = read_params(batch)?;
    let params = Params {
        degree: config.degree.unwrap_or(header.degree),
        tracked: config.tracked.unwrap_or(header.tracked),
    };
    let hasher = IdHasher::random();
    let mut state = State {
        users: UserIds::new(hasher),
        graph: FriendGraph::new(),
        history: PurchaseHistory::new(params.tracked),
    };
    let mut summary = Summary {
        batch_file: batch.name.clone(),
        stream_file: stream.name.clone(),
        ..Summary::default()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads.max(1))
        .build()
        .map_err(|e| Fatal::Output(std::io::Error::other(e)))?;

    // The batch: history only, nothing is checked.
    let mut seq = header_lines;
    let mut interned = Vec::new();
    for_each_chunk(batch, batch_start, config, &pool, hasher, |chunk| {
        for &(line, ref reason) in &chunk.skipped {
            skips.skip(&batch.name, seq + u64::from(line) + 1, reason)?;
        }
        state.apply_batch(chunk, seq, &mut interned);
        summary.batch_events += chunk.events.len() as u64;
        seq += u64::from(chunk.lines);
        Ok(())
    })?;

    // The stream: every purchase is checked against the state just before it. One thread:
    // check, then apply, event by event. More: apply a window of events with versioned
    // friendships, then run the window's checks in parallel (see `window`).
    summary.batch_elapsed = started.elapsed();
    let batch_lines = seq;
    let body = stream.body();
    let mut window = StreamWindow::new(config, params, pool.current_num_threads());
    for_each_chunk(stream, 0, config, &pool, hasher, |chunk| {
        let first_line = seq - batch_lines;
        for &(line, ref reason) in &chunk.skipped {
            skips.skip(&stream.name, first_line + u64::from(line) + 1, reason)?;
        }
        for event in &chunk.events {
            let at = Pending {
                seq: seq + u64::from(event.line),
                buyer: 0,
                start: chunk.offset + event.start as usize,
                len: event.len,
                line_no: first_line + u64::from(event.line) + 1,
            };
            window.apply(&mut state, chunk, event.action, at);
            if window.is_full() {
                window.run(&mut state, &pool, body, sink, &mut summary)?;
            }
        }
        summary.stream_events += chunk.events.len() as u64;
        seq += u64::from(chunk.lines);
        Ok(())
    })?;
    window.run(&mut state, &pool, body, sink, &mut summary)?;

    summary.skipped = skips.counts().collect();
    summary.users = state.users.len();
    summary.friendships = state.graph.edges();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// A stream event's place, and for a purchase its buyer: what its check needs.
#[derive(Debug, Clone, Copy)]
struct Pending {
    seq: u64,
    buyer: UserId,
    /// Span of its line in the stream body.
    start: usize,
    len: u32,
    line_no: u64,
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
    events: usize,
    pending: Vec<(Pending, u64)>,
    results: Vec<Baseline>,
    changes: EdgeChanges,
    /// Users who bought in this window.
    buyers: Vec<UserId>,
    /// Query scratch, one per worker thread.
    scratch: Vec<WorkerScratch>,
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
            events: 0,
            pending: Vec::new(),
            results: Vec::new(),
            changes: EdgeChanges::new(),
            buyers: Vec::new(),
            scratch: (0..workers.max(1))
                .map(|_| WorkerScratch(Mutex::new(NetworkQuery::new())))
                .collect(),
        }
    }

    fn is_full(&self) -> bool {
        self.events >= self.size
    }

    /// Applies one stream event (`at` says where it is); a purchase is queued for its check.
    fn apply(&mut self, state: &mut State, chunk: &ParsedChunk, action: Action, at: Pending) {
        self.events += 1;
        let mut user = |id: crate::event::IdRef| state.users.intern_ref(id, chunk.id(id));
        match action {
            Action::Purchase {
                buyer,
                cents,
                timestamp,
            } => {
                let buyer = user(buyer);
                let pending = Pending { buyer, ..at };
                self.pending.push((pending, cents));
                let purchase = Purchase {
                    timestamp,
                    seq: pending.seq,
                    cents,
                };
                if self.size == 0 {
                    // Sequential: the check runs before the purchase joins the history.
                    let baseline = self.scratch[0].0.get_mut().expect("not shared").baseline(
                        &state.graph,
                        &state.history,
                        buyer,
                        self.params.degree,
                    );
                    self.results.push(baseline);
                    state.history.record(buyer, purchase);
                } else if state.history.record_in_window(buyer, purchase) {
                    self.buyers.push(buyer);
                }
            }
            Action::Befriend(a, b) => {
                let (a, b) = (user(a), user(b));
                if self.size == 0 {
                    state.graph.befriend(a, b);
                } else {
                    self.changes.befriend(&mut state.graph, a, b, at.seq);
                }
            }
            Action::Unfriend(a, b) => {
                let (a, b) = (user(a), user(b));
                if self.size == 0 {
                    state.graph.unfriend(a, b);
                } else {
                    self.changes.unfriend(&state.graph, a, b, at.seq);
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
        body: &[u8],
        sink: &mut dyn Sink,
        summary: &mut Summary,
    ) -> Result<(), Fatal> {
        if self.size > 0 {
            let (graph, history, changes) = (&state.graph, &state.history, &self.changes);
            let (scratch, degree) = (&self.scratch, self.params.degree);
            pool.install(|| {
                self.pending
                    .par_iter()
                    .map(|(p, _)| {
                        let worker = rayon::current_thread_index().unwrap_or(0) % scratch.len();
                        let mut query = scratch[worker].0.lock().expect("query scratch poisoned");
                        let at = GraphAt {
                            graph,
                            changes,
                            seq: p.seq,
                        };
                        query.baseline_before(&at, history, p.buyer, degree, p.seq)
                    })
                    .collect_into_vec(&mut self.results);
            });
        }
        for (&(p, cents), baseline) in self.pending.iter().zip(&self.results) {
            let checked = Checked {
                line: &body[p.start..p.start + p.len as usize],
                line_no: p.line_no,
                buyer: p.buyer,
                cents,
                baseline: *baseline,
                flagged: baseline.is_anomalous(cents),
            };
            summary.stream_purchases += 1;
            summary.flagged += u64::from(checked.flagged);
            sink.checked(&checked).map_err(Fatal::Output)?;
        }
        self.pending.clear();
        self.results.clear();
        self.events = 0;
        self.changes.close(&mut state.graph);
        for &u in &self.buyers {
            state.history.close_window(u);
        }
        self.buyers.clear();
        Ok(())
    }
}

impl State {
    /// Applies a chunk of batch events (line `i` of the chunk has sequence `first_seq + i`).
    /// The ids are interned first; then each event's state is prefetched a few events ahead,
    /// so that the cache misses of random users overlap instead of queueing.
    fn apply_batch(&mut self, chunk: &ParsedChunk, first_seq: u64, users: &mut Vec<[UserId; 2]>) {
        users.clear();
        users.extend(chunk.events.iter().map(|event| match event.action {
            Action::Purchase { buyer, .. } => [self.users.intern_ref(buyer, chunk.id(buyer)); 2],
            Action::Befriend(a, b) | Action::Unfriend(a, b) => [
                self.users.intern_ref(a, chunk.id(a)),
                self.users.intern_ref(b, chunk.id(b)),
            ],
        }));
        const AHEAD: usize = 8;
        let prefetch = |state: &State, i: usize, deep: bool| {
            let Some(event) = chunk.events.get(i) else {
                return;
            };
            let [a, b] = users[i];
            if matches!(event.action, Action::Purchase { .. }) {
                state.history.prefetch(a, deep);
            } else {
                state.graph.prefetch(a, deep);
                state.graph.prefetch(b, deep);
            }
        };
        for (i, event) in chunk.events.iter().enumerate() {
            prefetch(self, i + 2 * AHEAD, false);
            prefetch(self, i + AHEAD, true);
            let [a, b] = users[i];
            match event.action {
                Action::Purchase {
                    cents, timestamp, ..
                } => self.history.record(
                    a,
                    Purchase {
                        timestamp,
                        seq: first_seq + u64::from(event.line),
                        cents,
                    },
                ),
                Action::Befriend(..) => {
                    self.graph.befriend(a, b);
                }
                Action::Unfriend(..) => {
                    self.graph.unfriend(a, b);
                }
            }
        }
    }
}

/// Asks the CPU to start loading the cache line at `ptr`.
#[inline(always)]
pub(crate) fn prefetch<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(ptr.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

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
    let body = log.body();
    let ranges = chunks(body, from, config.chunk_bytes);
    if config.threads <= 1 {
        let mut parser = LineParser::new(hasher);
        let mut chunk = ParsedChunk::default();
        for range in ranges {
            parser.parse_chunk(body, range, &mut chunk);
            apply(&chunk)?;
        }
        return Ok(());
    }
    let group = config.threads * 2;
    let (tx, rx) = crossbeam_channel::bounded::<ParsedChunk>(group * 2);
    // Applied chunks come back to be filled again: no allocation per chunk in steady state.
    let (recycle, recycled) = crossbeam_channel::unbounded::<ParsedChunk>();
    let parsers: Vec<WorkerParser> = (0..pool.current_num_threads())
        .map(|_| WorkerParser(Mutex::new(LineParser::new(hasher))))
        .collect();
    std::thread::scope(|scope| {
        // The producer runs on a thread of its own and hands each group of chunks to the pool:
        // blocking on the full channel must never hold a pool worker that checks could use.
        scope.spawn(move || {
            let mut parsed: Vec<ParsedChunk> = Vec::with_capacity(group);
            for batch in ranges.chunks(group) {
                parsed.extend(
                    batch
                        .iter()
                        .map(|_| recycled.try_recv().unwrap_or_default()),
                );
                pool.install(|| {
                    parsed.par_iter_mut().zip(batch).for_each(|(chunk, range)| {
                        let worker = rayon::current_thread_index().unwrap_or(0) % parsers.len();
                        let mut parser = parsers[worker].0.lock().expect("parser poisoned");
                        parser.parse_chunk(body, range.clone(), chunk);
                    })
                });
                for chunk in parsed.drain(..) {
                    if tx.send(chunk).is_err() {
                        return; // the applier stopped
                    }
                }
            }
        });
        for chunk in rx {
            apply(&chunk)?;
            let _ = recycle.send(chunk);
        }
        Ok(())
    })
}

/// One worker's line parser, on cache lines of its own.
#[repr(align(128))]
struct WorkerParser(Mutex<LineParser>);
