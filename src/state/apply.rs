//! The state that events change, and applying events to it: ids interned ahead of the event
//! applied, the state of the events ahead prefetched, batch chunks applied in order.

use crate::error::Fatal;
use crate::ingest::chunks::Numbered;
use crate::ingest::event::{Action, Event};
use crate::ingest::parse::{IdHasher, Params, ParsedChunk};
use crate::state::graph::FriendGraph;
use crate::state::history::{Purchase, PurchaseHistory};
use crate::state::users::{TooManyUsers, UserId, UserIds};

/// The state that events change: users, friendships and purchase histories, with the
/// parameters they are kept for and the sequence number of the next line. A replay builds it
/// from the batch log, or continues from one it is given.
pub struct State {
    pub users: UserIds,
    pub graph: FriendGraph,
    pub history: PurchaseHistory,
    /// The network's degree `D` and the baseline's size `T` (the history keeps `T`).
    pub params: Params,
    /// The sequence number of the next line (batch lines first, then stream lines): it breaks
    /// ties between equal timestamps.
    pub next_seq: u64,
}

/// How many events ahead of the one being applied its state starts loading (see
/// [`State::prefetch_ahead`]).
pub const APPLY_AHEAD: usize = 8;

impl State {
    /// A state with no event yet, for the parameters `params`, keeping `recent` purchases of
    /// the whole log for scans; ids are hashed by `hasher` (the parsers' too). The next line's
    /// sequence number is `next_seq` (the lines up to the batch log's parameter line).
    pub fn new(params: Params, recent: usize, hasher: IdHasher, next_seq: u64) -> State {
        State {
            users: UserIds::new(hasher),
            graph: FriendGraph::new(),
            history: PurchaseHistory::keeping_recent(params.tracked, recent),
            params,
            next_seq,
        }
    }

    /// Applies a chunk of batch events, which leave the buyers' recency alone (see
    /// [`Self::end_batch`]). Stops at a line naming one user too many, with an error naming
    /// its file and line.
    pub fn apply_batch(
        &mut self,
        chunk: &Numbered<'_>,
        users: &mut Vec<[UserId; 2]>,
    ) -> Result<(), Fatal> {
        self.apply_batch_events(chunk.chunk, chunk.seq, users)
            .map_err(|line| {
                too_many_users(
                    chunk.name,
                    chunk.lines_before + u64::from(line) + 1,
                    &self.users,
                )
            })?;
        self.next_seq = chunk.seq + u64::from(chunk.chunk.lines);
        Ok(())
    }

    /// Ends the batch: every user's recency and newest purchases set from the kept histories.
    pub fn end_batch(&mut self) {
        self.history.rank_all();
    }

    /// Interns the events of `chunk` up to `i + 2 * APPLY_AHEAD` into `users` (`users[k]` for
    /// event `k`, a purchase's buyer twice), so that applying event `i` can prefetch for the
    /// events ahead of it. Interning goes along with applying, so a chunk's events are read
    /// once, while cached; the direct table's entries start loading [`APPLY_AHEAD`] events
    /// before they are read.
    ///
    /// A new user beyond [`crate::state::users::MAX_USERS`] stops it: the error is the
    /// chunk-local index of the line that named it.
    #[inline]
    pub fn intern_ahead(
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
    pub fn prefetch_ahead(
        &self,
        chunk: &ParsedChunk,
        users: &[[UserId; 2]],
        i: usize,
        ranked: bool,
    ) {
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
    fn apply_batch_events(
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

/// The error for line `line` of the log `name`, which names one distinct user more than a run
/// holds.
pub fn too_many_users(name: &str, line: u64, users: &UserIds) -> Fatal {
    Fatal::TooManyUsers {
        file: name.to_string(),
        line,
        limit: users.limit() as u64,
    }
}
