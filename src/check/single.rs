//! The single check: every stream purchase against its network's baseline with the run's `D`
//! and `T`; the outcome, a [`Checked`], goes to a [`Sink`] in stream order.

use rayon::prelude::*;

use crate::check::window::{
    Checks, Handed, Pending, WindowView, WorkerScratch, check_echoed, check_group,
};
use crate::error::Fatal;
use crate::output::sink::{Checked, Sink, SinkError};
use crate::query::baseline::Baseline;
use crate::query::network::{NetworkQuery, Social};
use crate::state::graph::FriendGraph;
use crate::state::history::PurchaseHistory;
use crate::state::users::{UserId, UserIds};
use crate::state::window::{Friendships, GraphAt};

/// What a check finds: the baseline, and for flagged purchases when asked, the buyer's
/// friends and friends of friends.
#[derive(Default)]
struct Outcome {
    baseline: Baseline,
    social: Option<Social>,
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

/// Checks each purchase with the network's degree `D` (the history keeps `T`) and hands the
/// outcome to a [`Sink`].
pub struct SingleCheck<'s, S: Sink + ?Sized> {
    degree: u32,
    /// Whether flagged purchases also get the buyer's friends and friends of friends.
    social: bool,
    /// Per pending purchase, its outcome.
    outcomes: Vec<Outcome>,
    sink: &'s mut S,
}

impl<'s, S: Sink + ?Sized> SingleCheck<'s, S> {
    /// Checks with degree `degree`, handing outcomes to `sink`; `social`: flagged purchases
    /// also carry the buyer's friends and friends of friends.
    pub fn new(degree: u32, social: bool, sink: &'s mut S) -> Self {
        SingleCheck {
            degree,
            social,
            outcomes: Vec::new(),
            sink,
        }
    }
}

impl<S: Sink + ?Sized> Checks for SingleCheck<'_, S> {
    fn begin(&mut self) -> Result<bool, Fatal> {
        self.sink.begin().map_err(SinkError::into_fatal)
    }

    fn check_now(
        &mut self,
        query: &mut NetworkQuery,
        graph: &FriendGraph,
        history: &PurchaseHistory,
        p: &Pending,
    ) {
        let baseline = query.baseline(graph, history, p.buyer, self.degree);
        let outcome = Outcome::of(query, graph, baseline, self.social, p.buyer, p.cents);
        self.outcomes.push(outcome);
    }

    fn check_window(&mut self, window: &WindowView<'_>, pool: &rayon::ThreadPool) {
        let WindowView {
            pending,
            graph,
            history,
            changes,
            scratch,
        } = *window;
        let (degree, social) = (self.degree, self.social);
        self.outcomes.clear();
        self.outcomes.resize_with(pending.len(), Outcome::default);
        let group = check_group(pending.len(), pool);
        pool.install(|| {
            // In groups, each run staggered by one worker (see `NetworkQuery::baselines`).
            pending
                .par_chunks(group)
                .zip(self.outcomes.par_chunks_mut(group))
                .for_each(|(pending, outcomes)| {
                    let mut query = WorkerScratch::of_this_worker(scratch);
                    let at = |p: &Pending| GraphAt {
                        graph,
                        changes,
                        seq: p.seq,
                    };
                    query.baselines(
                        history,
                        degree,
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

    fn hand_over(
        &mut self,
        pending: &[Pending],
        lines: &[u8],
        users: &UserIds,
        stream: &str,
    ) -> Result<Handed, Fatal> {
        let mut handed = Handed::NONE;
        for (p, outcome) in pending.iter().zip(&self.outcomes) {
            let line = p.line(lines);
            let flagged = outcome.baseline.is_anomalous(p.cents);
            if flagged {
                check_echoed(line, stream)?;
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
                users,
            };
            handed.flagged += u64::from(flagged);
            if !self.sink.checked(&checked).map_err(SinkError::into_fatal)? {
                handed.go_on = false;
                break;
            }
        }
        self.outcomes.clear();
        Ok(handed)
    }

    fn flush(&mut self) -> Result<(), Fatal> {
        self.sink.flush().map_err(SinkError::into_fatal)
    }

    fn finish(&mut self) -> Result<(), Fatal> {
        self.sink.finish().map_err(SinkError::into_fatal)
    }
}
