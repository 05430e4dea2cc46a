//! The per-event hot paths allocate (almost) nothing in steady state.
//!
//! A counting global allocator wraps the system allocator and counts every allocation and
//! reallocation, on every thread. Each replay runs on deterministic synthetic logs built in
//! memory; the allocations made between the start and the end of `replay` are counted. A run
//! has fixed costs (thread pool, scratch buffers, the first growth of every per-user structure)
//! that do not depend on the log's length, so the test compares two runs whose logs share the
//! same user population, warmed up by the same prefix, and differ only in the number of events
//! after it (the shorter log is a byte prefix of the longer one):
//!
//!     marginal = (allocs(long) - allocs(short)) / (events(long) - events(short))
//!
//! is what one more event costs in steady state. The batch and the stream are lengthened
//! separately, so the batch path (parse, apply) and the stream path (parse, apply, check, sink)
//! each get their own figure, for one thread (sequential) and two (parallel parse, windowed
//! parallel checks). `cargo test --release --test allocations -- --nocapture` prints them.
//!
//! Per-chunk costs (a fresh `ParsedChunk` and parser per 1 MiB chunk of ~10k events, in the
//! parallel path) and per-window costs (a window of `DEFAULT_WINDOW` events) are allowed: they amount to ~0.01 per
//! event at most. Why the test can fail: every event kind makes up at least 10% of the events
//! (60% purchases, 30% befriend, 10% unfriend), so a single allocation per event of any kind,
//! on any thread (a `Vec` or `String` built and filled per event, a `to_vec()`, a `format!`,
//! a `Box`), adds at least 0.10 per event to one of the figures, twice the 0.05 bound. The
//! test checks this on itself: a sink that allocates once per checked purchase must raise the
//! stream figure by about 0.6 (`an_allocation_per_event_is_seen`).
//!
//! Only one `#[test]` lives in this file, so no other test of this binary allocates while a
//! replay is counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use anomaly_detect::config::DEFAULT_WINDOW;
use anomaly_detect::output::report::SkipLog;
use anomaly_detect::{
    Checked, Sink, config::Config, ingest::input::LogFile, output::sink::FlaggedLines,
    replay::replay,
};

/// The system allocator, counting allocations and reallocations.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees are System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations per extra event allowed in steady state.
const BOUND: f64 = 0.05;

/// Users `1..=USERS`, ids as decimal strings.
const USERS: u64 = 4000;
/// A user only ever befriends the next `SPAN` ids (cyclically): at most `2 * SPAN` friends, so
/// adjacency lists stop growing once the warm-up has made every possible friendship.
const SPAN: u64 = 4;
/// `T` of the parameter line.
const TRACKED: u64 = 10;

/// Events of the short logs (the batch's include its warm-up prefix); the long logs hold twice
/// as many.
const BATCH_EVENTS: usize = 200_000;
const STREAM_EVENTS: usize = 50_000;

/// xorshift64*: small, deterministic, good enough.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    }
}

/// Writes event lines; the `i`-th event's timestamp is `i / 2` seconds into the month (so that
/// neighbours share timestamps and the tie-break by position is exercised).
struct LogWriter {
    out: Vec<u8>,
    month: u32,
    events: usize,
}

impl LogWriter {
    fn new(month: u32, first_line: &str) -> Self {
        let mut out = Vec::with_capacity(110 * 2 * BATCH_EVENTS);
        out.extend_from_slice(first_line.as_bytes());
        LogWriter {
            out,
            month,
            events: 0,
        }
    }

    /// Writes `{"event_type":"KIND", "timestamp":"...", ` and counts the event.
    fn start(&mut self, kind: &str) {
        let second = self.events as u64 / 2;
        let (day, hour) = (1 + second / 86_400, second / 3600 % 24);
        let (minute, sec) = (second / 60 % 60, second % 60);
        assert!(day <= 28, "the logs fit in one month");
        write!(
            self.out,
            "{{\"event_type\":\"{kind}\", \"timestamp\":\"2017-{:02}-{day:02} \
             {hour:02}:{minute:02}:{sec:02}\", ",
            self.month
        )
        .unwrap();
        self.events += 1;
    }

    fn purchase(&mut self, user: u64, cents: u64) {
        self.start("purchase");
        writeln!(
            self.out,
            "\"id\": \"{user}\", \"amount\": \"{}.{:02}\"}}",
            cents / 100,
            cents % 100
        )
        .unwrap();
    }

    fn friends(&mut self, kind: &str, a: u64, b: u64) {
        self.start(kind);
        writeln!(self.out, "\"id1\": \"{a}\", \"id2\": \"{b}\"}}").unwrap();
    }

    /// One random event: 60% purchases, 30% befriend, 10% unfriend, over the fixed population.
    fn random_event(&mut self, rng: &mut Rng) {
        let user = 1 + rng.below(USERS);
        let kind = rng.below(10);
        if kind < 6 {
            // Mostly everyday amounts, now and then a large one that may be flagged.
            let cents = if rng.below(100) == 0 {
                100_000 + rng.below(900_000)
            } else {
                100 + rng.below(9_900)
            };
            self.purchase(user, cents);
        } else {
            let friend = 1 + (user + rng.below(SPAN)) % USERS;
            let kind = if kind < 9 { "befriend" } else { "unfriend" };
            self.friends(kind, user, friend);
        }
    }
}

/// The batch log: the parameter line, a warm-up prefix that brings every user's state to its
/// steady size (every possible friendship once, `T + 2` purchases per user), then random
/// events, `events` in all. A shorter batch is a prefix of a longer one.
fn batch_log(events: usize) -> Vec<u8> {
    let mut log = LogWriter::new(6, "{\"D\":\"2\", \"T\":\"10\"}\n");
    for user in 1..=USERS {
        for step in 1..=SPAN {
            log.friends("befriend", user, 1 + (user - 1 + step) % USERS);
        }
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..TRACKED + 2 {
        for user in 1..=USERS {
            log.purchase(user, 100 + rng.below(9_900));
        }
    }
    assert!(
        log.events < events,
        "room for random events after the warm-up"
    );
    while log.events < events {
        log.random_event(&mut rng);
    }
    log.out
}

/// The stream log: `events` random events over the same population, a month after the batch.
fn stream_log(events: usize) -> Vec<u8> {
    let mut log = LogWriter::new(7, "");
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    while log.events < events {
        log.random_event(&mut rng);
    }
    log.out
}

/// Counts purchases, allocating once per call: the canary that shows the counting works.
struct AllocatingSink<S>(S);

impl<S: Sink> Sink for AllocatingSink<S> {
    type Error = S::Error;

    fn checked(&mut self, purchase: &Checked<'_>) -> Result<bool, S::Error> {
        let scratch: Vec<u64> = std::hint::black_box(Vec::with_capacity(4));
        drop(scratch);
        self.0.checked(purchase)
    }
}

/// One replay: the allocations made during the call, and the figures it reports.
fn allocations(
    batch: &LogFile,
    stream: &LogFile,
    threads: usize,
    allocating_sink: bool,
) -> (u64, u64, u64) {
    let config = Config {
        degree: None,
        tracked: None,
        threads,
        chunk_bytes: 1 << 20,
        window: DEFAULT_WINDOW,
        recent: anomaly_detect::state::recent::RecentPurchases::KEEP,
        social: false,
        stop: None,
        max_line: anomaly_detect::ingest::input::MAX_LINE,
        release_memory: anomaly_detect::config::keep_memory,
    };
    let mut skips = SkipLog::new(Box::new(io::sink()), false);
    let mut flagged = FlaggedLines::new(io::sink());
    let mut canary = AllocatingSink(FlaggedLines::new(io::sink()));
    let sink: &mut dyn Sink<Error = io::Error> = if allocating_sink {
        &mut canary
    } else {
        &mut flagged
    };
    let before = ALLOCS.load(Ordering::SeqCst);
    let summary = replay(batch, stream, &config, sink, &mut skips);
    let after = ALLOCS.load(Ordering::SeqCst);
    let summary = summary.expect("the replay runs");
    assert_eq!(skips.total(), 0, "the synthetic logs are clean");
    (
        after - before,
        summary.batch.total() + summary.stream.total(),
        summary.flagged,
    )
}

/// Allocations per extra event between a short and a long run.
fn marginal(short: (u64, u64, u64), long: (u64, u64, u64)) -> f64 {
    assert!(long.1 > short.1);
    (long.0 as f64 - short.0 as f64) / (long.1 - short.1) as f64
}

#[test]
fn hot_paths_allocate_almost_nothing_per_event() {
    let short_batch = batch_log(BATCH_EVENTS);
    let long_batch = batch_log(2 * BATCH_EVENTS);
    let short_stream = stream_log(STREAM_EVENTS);
    let long_stream = stream_log(2 * STREAM_EVENTS);
    assert!(long_batch.starts_with(&short_batch) && long_stream.starts_with(&short_stream));
    let short_batch = LogFile::from_bytes("batch_log.json", short_batch);
    let long_batch = LogFile::from_bytes("batch_log.json", long_batch);
    let short_stream = LogFile::from_bytes("stream_log.json", short_stream);
    let long_stream = LogFile::from_bytes("stream_log.json", long_stream);

    let mut failures = Vec::new();
    for threads in [1, 2] {
        // A first run pays the process's one-time costs (thread-locals, lazy statics), which
        // would otherwise inflate the short run and hide allocations in the difference.
        allocations(&short_batch, &short_stream, threads, false);
        let short = allocations(&short_batch, &short_stream, threads, false);
        let batch = marginal(
            short,
            allocations(&long_batch, &short_stream, threads, false),
        );
        let stream = marginal(
            short,
            allocations(&short_batch, &long_stream, threads, false),
        );
        eprintln!(
            "threads={threads}: {} allocations for {} events ({} flagged); per extra event: \
             batch {batch:.5}, stream {stream:.5}",
            short.0, short.1, short.2
        );
        for (path, figure) in [("batch", batch), ("stream", stream)] {
            if figure >= BOUND {
                failures.push(format!(
                    "threads={threads}, {path}: {figure:.4} allocations per event (bound {BOUND})"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    an_allocation_per_event_is_seen(&short_batch, &short_stream, &long_stream);
}

/// The same measurement with a sink that allocates once per stream purchase (60% of the stream
/// events) must see it: the counting covers the replay's whole call tree.
fn an_allocation_per_event_is_seen(batch: &LogFile, short: &LogFile, long: &LogFile) {
    for threads in [1, 2] {
        let figure = marginal(
            allocations(batch, short, threads, true),
            allocations(batch, long, threads, true),
        );
        eprintln!(
            "threads={threads}: with a sink allocating per purchase, stream {figure:.5} per event"
        );
        assert!(
            figure > 0.5,
            "the canary allocation per purchase went unseen: {figure:.4} per event"
        );
    }
}
