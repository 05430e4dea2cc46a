//! The sweep's checks: every stream purchase with every pair of a grid of `D` and `T`, in one
//! walk to the largest `D` (see [`NetworkQuery::grid`]; a window's checks are staggered, see
//! [`NetworkQuery::grids`]); each purchase's baselines go to a [`Sink`] of [`Sweep`]s in
//! stream order. The checks also see every stream event just before it is applied: the
//! stream's span ([`Span`]) and its befriends' distances ([`Distances`]).

use rayon::prelude::*;

use crate::check::window::{
    Checks, Handed, Pending, WindowView, WorkerScratch, check_echoed, check_group,
};
use crate::error::Fatal;
use crate::ingest::event::Action;
use crate::output::sink::{Kind, Sink, SinkError};
use crate::query::baseline::Baseline;
use crate::query::network::{Grid, NetworkQuery, Reach};
use crate::state::graph::FriendGraph;
use crate::state::history::PurchaseHistory;
use crate::state::users::{UserId, UserIds};
use crate::state::window::GraphAt;

use super::cost::Span;
use super::distances::Distances;

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

/// A sweep's checks, as a [`Sink`] receives them: every pair's baselines ([`GridChecked`]).
pub enum Sweep {}

impl Kind for Sweep {
    type Checked<'a> = GridChecked<'a>;
}

/// A sweep's checks: the grid, the window's results and where they go. The replay must keep
/// the grid's largest `T` (see [`GridChecks::new`]).
pub struct GridChecks<S: Sink<Sweep>> {
    grid: Grid,
    /// Per pending purchase, its baselines (see [`GridChecked::baselines`]).
    baselines: Vec<Baseline>,
    /// Per pending purchase, what its buyer reaches.
    reach: Vec<Reach>,
    /// From the earliest to the latest stream purchase.
    span: Span,
    /// The stream befriends by distance, up to the grid's largest `D`.
    distances: Distances,
    sink: S,
}

impl<S: Sink<Sweep>> GridChecks<S> {
    /// Checks with every pair of `grid`, handing the results to `sink`. `history` is the
    /// replay's: it must keep the grid's largest `T` (a replay made with `D` and `T` overridden
    /// to the grid's largest does).
    pub fn new(grid: Grid, history: &PurchaseHistory, sink: S) -> Self {
        assert!(
            grid.tracked
                .last()
                .is_some_and(|&t| t as usize <= history.tracked()),
            "the history keeps the grid's largest T"
        );
        let distances = Distances::new(grid.degrees.last().copied().unwrap_or(1));
        GridChecks {
            grid,
            baselines: Vec::new(),
            reach: Vec::new(),
            span: Span::default(),
            distances,
            sink,
        }
    }

    /// The sink, once the stream is replayed.
    pub fn into_sink(self) -> S {
        self.sink
    }

    /// The sink, the stream's span and its befriends by distance, once the stream is
    /// replayed.
    pub fn into_parts(self) -> (S, Span, Distances) {
        (self.sink, self.span, self.distances)
    }
}

impl<S: Sink<Sweep>> Checks for GridChecks<S> {
    fn begin(&mut self) -> Result<bool, Fatal> {
        self.sink.begin().map_err(SinkError::into_fatal)
    }

    fn before_event(&mut self, action: &Action, users: [UserId; 2], graph: &GraphAt<'_>) {
        match *action {
            Action::Purchase { timestamp, .. } => self.span.see(timestamp),
            Action::Befriend(..) => self.distances.befriend(graph, users[0], users[1]),
            Action::Unfriend(..) => {}
        }
    }

    fn check_now(
        &mut self,
        query: &mut NetworkQuery,
        graph: &FriendGraph,
        history: &PurchaseHistory,
        p: &Pending,
    ) {
        let at = self.baselines.len();
        self.baselines
            .resize(at + self.grid.pairs(), Baseline::default());
        let out = &mut self.baselines[at..];
        self.reach
            .push(query.grid(graph, history, p.buyer, u64::MAX, &self.grid, out));
    }

    fn check_window(&mut self, window: &WindowView<'_>, pool: &rayon::ThreadPool) {
        let WindowView {
            pending,
            graph,
            history,
            changes,
            scratch,
        } = *window;
        let (grid, pairs) = (&self.grid, self.grid.pairs());
        self.baselines.clear();
        self.baselines
            .resize(pending.len() * pairs, Baseline::default());
        self.reach.clear();
        self.reach.resize(pending.len(), Reach::default());
        let group = check_group(pending.len(), pool);
        pool.install(|| {
            pending
                .par_chunks(group)
                .zip(self.baselines.par_chunks_mut(group * pairs))
                .zip(self.reach.par_chunks_mut(group))
                .for_each(|((pending, baselines), reach)| {
                    let mut query = WorkerScratch::of_this_worker(scratch);
                    // Staggered, as a run's checks (see `NetworkQuery::grids`).
                    query.grids(
                        history,
                        grid,
                        pending.len(),
                        |i| {
                            let p = &pending[i];
                            let at = GraphAt {
                                graph,
                                changes,
                                seq: p.seq,
                            };
                            (at, p.buyer, p.seq)
                        },
                        |i, cells, found| {
                            baselines[i * pairs..(i + 1) * pairs].copy_from_slice(cells);
                            reach[i] = found;
                        },
                    );
                });
        });
    }

    fn hand_over(
        &mut self,
        pending: &[Pending],
        lines: &[u8],
        _users: &UserIds,
        stream: &str,
    ) -> Result<Handed, Fatal> {
        let pairs = self.grid.pairs();
        let mut handed = Handed::NONE;
        for ((p, baselines), &reach) in pending
            .iter()
            .zip(self.baselines.chunks(pairs))
            .zip(&self.reach)
        {
            let line = p.line(lines);
            check_echoed(line, stream)?;
            let checked = GridChecked {
                line,
                line_no: p.line_no,
                buyer: p.buyer,
                cents: p.cents,
                baselines,
                reach,
            };
            if !self.sink.checked(&checked).map_err(SinkError::into_fatal)? {
                handed.go_on = false;
                break;
            }
        }
        self.baselines.clear();
        self.reach.clear();
        Ok(handed)
    }

    fn flush(&mut self) -> Result<(), Fatal> {
        self.sink.flush().map_err(SinkError::into_fatal)
    }

    fn finish(&mut self) -> Result<(), Fatal> {
        self.sink.finish().map_err(SinkError::into_fatal)
    }
}
