//! The stream window: stream events are applied to the state at once, while their purchases'
//! checks wait until the window fills up; then they run in parallel, each against the
//! friendships it sees (versioned by sequence number), and their outcomes are handed on in
//! stream order. How a purchase is checked and where its outcome goes is a [`Checks`].

use std::sync::Mutex;

use crate::config::Config;
use crate::error::Fatal;
use crate::ingest::chunks::Numbered;
use crate::ingest::event::{Action, Timestamp};
use crate::query::network::NetworkQuery;
use crate::state::apply::{State, too_many_users};
use crate::state::graph::FriendGraph;
use crate::state::history::{Purchase, PurchaseHistory};
use crate::state::users::{UserId, UserIds};
use crate::state::window::{EdgeChanges, GraphAt};

/// Most checks per parallel task: enough to keep a worker's queries staggered; a small window
/// (a live stream flushes one whenever input stalls) is split evenly over the workers instead.
const CHECK_GROUP: usize = 64;

/// How many pending checks each parallel task takes on `pool`.
pub fn check_group(pending: usize, pool: &rayon::ThreadPool) -> usize {
    let workers = pool.current_num_threads().max(1);
    pending.div_ceil(workers).clamp(1, CHECK_GROUP)
}

/// How the window's purchases are checked, and where each outcome goes: the single check
/// with the run's `D` and `T` ([`crate::check::single::SingleCheck`]), or a sweep's grid.
pub trait Checks {
    /// Called once before the stream's first purchase; `false` ends the stream at once.
    fn begin(&mut self) -> Result<bool, Fatal> {
        Ok(true)
    }

    /// Sees every stream event just before it is applied, in stream order (a purchase's
    /// buyer is both `users`), with the friendships as they stand then (a sweep's stream span
    /// and befriend distances).
    fn before_event(&mut self, _action: &Action, _users: [UserId; 2], _graph: &GraphAt<'_>) {}

    /// Checks `purchase` at once, against the state as it stands, before the purchase joins
    /// the history (the sequential path, one thread).
    fn check_now(
        &mut self,
        query: &mut NetworkQuery,
        graph: &FriendGraph,
        history: &PurchaseHistory,
        purchase: &Pending,
    );

    /// Checks the window's pending purchases on `pool`, each against the friendships it sees.
    fn check_window(&mut self, window: &WindowView<'_>, pool: &rayon::ThreadPool);

    /// Hands the checked purchases on in stream order, and forgets them; `lines` holds their
    /// lines (see [`Pending`]), `stream` is the stream log's name.
    fn hand_over(
        &mut self,
        pending: &[Pending],
        lines: &[u8],
        users: &UserIds,
        stream: &str,
    ) -> Result<Handed, Fatal>;

    /// Pushes out what was handed over so far (live mode calls this whenever the input
    /// stalls).
    fn flush(&mut self) -> Result<(), Fatal> {
        Ok(())
    }

    /// Called once after the stream's last purchase.
    fn finish(&mut self) -> Result<(), Fatal> {
        Ok(())
    }
}

/// What handing checked purchases on gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handed {
    /// How many were flagged.
    pub flagged: u64,
    /// Whether the stream goes on (`false`: a sink ended it).
    pub go_on: bool,
}

impl Handed {
    /// Nothing handed on yet: nothing flagged, the stream goes on.
    pub const NONE: Handed = Handed {
        flagged: 0,
        go_on: true,
    };
}

/// What the checks of a window read: its pending purchases and the state they see.
pub struct WindowView<'a> {
    pub pending: &'a [Pending],
    pub graph: &'a FriendGraph,
    pub history: &'a PurchaseHistory,
    /// The friendships the window changed, with the sequence intervals they are alive in.
    pub changes: &'a EdgeChanges,
    /// Query scratch, one per worker thread.
    pub scratch: &'a [WorkerScratch],
}

/// Where a stream event stands: its sequence number, line number and line.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    pub seq: u64,
    pub line_no: u64,
    pub line: &'a [u8],
}

/// A stream purchase waiting for its check.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub seq: u64,
    pub line_no: u64,
    pub buyer: UserId,
    pub cents: u64,
    pub timestamp: Timestamp,
    /// Span of its line in the window's copy of the lines.
    pub start: usize,
    pub len: usize,
}

impl Pending {
    /// Its line among the window's `lines`.
    pub fn line<'l>(&self, lines: &'l [u8]) -> &'l [u8] {
        &lines[self.start..self.start + self.len]
    }
}

/// One worker's query scratch, on cache lines of its own: the scratch's vectors change length
/// on every step of a query, and sharing a line with another worker's would make the two
/// cores fight over it.
#[repr(align(128))]
pub struct WorkerScratch(pub Mutex<NetworkQuery>);

impl WorkerScratch {
    /// The scratch of the worker running this code.
    pub fn of_this_worker(scratch: &[WorkerScratch]) -> std::sync::MutexGuard<'_, NetworkQuery> {
        let worker = rayon::current_thread_index().unwrap_or(0) % scratch.len();
        scratch[worker].0.lock().expect("query scratch poisoned")
    }
}

/// The stream events applied since the last checks ran.
pub struct StreamWindow {
    /// Events per window; 0 means the sequential path: every check runs at once.
    size: usize,
    events: usize,
    pending: Vec<Pending>,
    /// The lines of the pending purchases, back to back.
    lines: Vec<u8>,
    changes: EdgeChanges,
    /// Users who bought in this window.
    buyers: Vec<UserId>,
    /// Query scratch, one per worker thread.
    scratch: Vec<WorkerScratch>,
    /// Scratch: the interned ids of a chunk's events.
    interned: Vec<[UserId; 2]>,
}

impl StreamWindow {
    /// A window for a replay with `workers` worker threads (one thread: the sequential path).
    pub fn new(config: &Config, workers: usize) -> Self {
        StreamWindow {
            size: if config.threads <= 1 {
                0
            } else {
                config.window.max(1)
            },
            events: 0,
            pending: Vec::new(),
            lines: Vec::new(),
            changes: EdgeChanges::new(),
            buyers: Vec::new(),
            scratch: (0..workers.max(1))
                .map(|_| WorkerScratch(Mutex::new(NetworkQuery::new())))
                .collect(),
            interned: Vec::new(),
        }
    }

    fn is_full(&self) -> bool {
        self.events >= self.size
    }

    /// Applies a chunk of stream events to `state`; their purchases are checked by `checks`
    /// when the window fills up ([`Self::run`] runs the rest). When a sink ends the stream,
    /// the chunk's later events are not applied.
    pub fn apply_chunk(
        &mut self,
        state: &mut State,
        chunk: &Numbered<'_>,
        pool: &rayon::ThreadPool,
        checks: &mut dyn Checks,
    ) -> Result<Handed, Fatal> {
        let (name, text, first_line) = (chunk.name, chunk.text, chunk.lines_before);
        let (seq, parsed) = (chunk.seq, chunk.chunk);
        let mut handed = Handed::NONE;
        let mut users = std::mem::take(&mut self.interned);
        users.clear();
        for (i, event) in parsed.events.iter().enumerate() {
            if let Err(line) = state.intern_ahead(parsed, &mut users, i) {
                self.interned = users;
                return Err(too_many_users(
                    name,
                    first_line + u64::from(line) + 1,
                    &state.users,
                ));
            }
            state.prefetch_ahead(parsed, &users, i, true);
            let line = &text[event.start as usize..(event.start + event.len) as usize];
            let at = At {
                seq: seq + u64::from(event.line),
                line_no: first_line + u64::from(event.line) + 1,
                line,
            };
            self.apply(state, event.action, users[i], at, checks);
            if self.is_full() {
                match self.run(state, pool, checks, name) {
                    Ok(run) if run.go_on => handed.flagged += run.flagged,
                    Ok(run) => {
                        self.interned = users;
                        state.next_seq = at.seq + 1;
                        handed.flagged += run.flagged;
                        handed.go_on = false;
                        return Ok(handed);
                    }
                    Err(error) => {
                        self.interned = users;
                        return Err(error);
                    }
                }
            }
        }
        self.interned = users;
        state.next_seq = seq + u64::from(parsed.lines);
        Ok(handed)
    }

    /// Applies one stream event; a purchase is queued for its check.
    /// `users` are the event's interned ids (a purchase's buyer twice).
    fn apply(
        &mut self,
        state: &mut State,
        action: Action,
        users: [UserId; 2],
        at: At<'_>,
        checks: &mut dyn Checks,
    ) {
        self.events += 1;
        // The checks see the event before it changes anything (the window's changes so far
        // are in `changes`; none on the sequential path).
        let graph = GraphAt {
            graph: &state.graph,
            changes: &self.changes,
            seq: at.seq,
        };
        checks.before_event(&action, users, &graph);
        let [a, b] = users;
        match action {
            Action::Purchase {
                cents, timestamp, ..
            } => {
                let buyer = a;
                let start = self.lines.len();
                self.lines.extend_from_slice(at.line);
                let pending = Pending {
                    seq: at.seq,
                    line_no: at.line_no,
                    buyer,
                    cents,
                    timestamp,
                    start,
                    len: at.line.len(),
                };
                self.pending.push(pending);
                let purchase = Purchase::new(timestamp, at.seq, cents);
                if self.size == 0 {
                    // Sequential: the check runs before the purchase joins the history.
                    let query = self.scratch[0].0.get_mut().expect("not shared");
                    checks.check_now(query, &state.graph, &state.history, &pending);
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

    /// Runs the window's pending checks (in parallel), hands them on in stream order and
    /// closes the window; `stream` is the stream log's name.
    pub fn run(
        &mut self,
        state: &mut State,
        pool: &rayon::ThreadPool,
        checks: &mut dyn Checks,
        stream: &str,
    ) -> Result<Handed, Fatal> {
        if self.size > 0 && !self.pending.is_empty() {
            let view = WindowView {
                pending: &self.pending,
                graph: &state.graph,
                history: &state.history,
                changes: &self.changes,
                scratch: &self.scratch,
            };
            checks.check_window(&view, pool);
        }
        let handed = checks.hand_over(&self.pending, &self.lines, &state.users, stream)?;
        self.pending.clear();
        self.lines.clear();
        self.events = 0;
        self.changes.close(&mut state.graph);
        state.history.close_windows(&self.buyers);
        self.buyers.clear();
        Ok(handed)
    }
}

/// Refuses to echo a line that holds a NUL byte. No line that parsed holds one, so it can only
/// come from a mapped log that lost the line's bytes after it was parsed: truncation leaves
/// zeros in the last page without a fault, and the SIGBUS guard maps zeros over the rest (see
/// [`crate::ingest::shrink`]). The check looks at the very bytes about to be written, so no
/// zero reaches an output, whenever the file changed.
pub fn check_echoed(line: &[u8], stream: &str) -> Result<(), Fatal> {
    match memchr::memchr(0, line) {
        None => Ok(()),
        Some(_) => Err(Fatal::Shrank {
            path: stream.into(),
        }),
    }
}
