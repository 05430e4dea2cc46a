//! Versioned friendships over a window of stream events, so that the window's network queries
//! can run in parallel after the applier has applied the whole window.
//!
//! While a window is applied, friendships are only ever added to the [`FriendGraph`]; every
//! friendship that a window event changes gets the list of sequence intervals in which it is
//! alive. A query at sequence `s` sees an edge when it is untouched by the window or one of its
//! intervals `(from, to)` has `from < s < to`. At the end of the window the friendships that
//! ended dead are removed and the intervals are dropped.

use hashbrown::HashMap;
use smallvec::SmallVec;

use crate::state::graph::FriendGraph;
use crate::state::users::UserId;

/// An alive interval of an edge in sequence numbers: alive for queries with `from < s < to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Alive {
    from: u64,
    to: u64,
}

/// One friendship changed in the window, with the intervals in which it is alive.
struct ChangedEdge {
    a: UserId,
    b: UserId,
    alive: SmallVec<[Alive; 2]>,
}

impl ChangedEdge {
    fn is_alive_at(&self, seq: u64) -> bool {
        self.alive.iter().any(|i| i.from < seq && seq < i.to)
    }

    fn is_alive_now(&self) -> bool {
        self.alive.last().is_some_and(|last| last.to == u64::MAX)
    }
}

/// The friendship changes of the current window.
#[derive(Default)]
pub struct EdgeChanges {
    edges: Vec<ChangedEdge>,
    /// Index in `edges` of every changed edge, keyed by (smaller, larger) id: for the applier.
    index: HashMap<(UserId, UserId), u32>,
    /// `slot[u]` is 1 + the index in `by_user` of the changed edges at `u`, 0 for none: most
    /// users have none and cost a query one array read.
    slot: Vec<u32>,
    by_user: Vec<(UserId, SmallVec<[u32; 4]>)>,
}

fn key(a: UserId, b: UserId) -> (UserId, UserId) {
    (a.min(b), a.max(b))
}

impl EdgeChanges {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&mut self, a: UserId, b: UserId, alive: Alive) {
        // A window changes at most one edge per event, and holds at most `MAX_WINDOW` (2^20)
        // events: the edge and slot indices fit a `u32`.
        let edge = self.edges.len() as u32;
        self.edges.push(ChangedEdge {
            a,
            b,
            alive: smallvec::smallvec![alive],
        });
        self.index.insert(key(a, b), edge);
        for u in [a, b] {
            let i = u as usize;
            if self.slot.len() <= i {
                self.slot.resize((i + 1).next_power_of_two(), 0);
            }
            if self.slot[i] == 0 {
                self.by_user.push((u, SmallVec::new()));
                self.slot[i] = self.by_user.len() as u32;
            }
            self.by_user[self.slot[i] as usize - 1].1.push(edge);
        }
    }

    /// Applies a befriend at sequence `seq` (the graph gains the edge for good until
    /// [`Self::close`]).
    pub fn befriend(&mut self, graph: &mut FriendGraph, a: UserId, b: UserId, seq: u64) {
        if a == b {
            return;
        }
        match self.index.get(&key(a, b)) {
            Some(&edge) => {
                let edge = &mut self.edges[edge as usize];
                if !edge.is_alive_now() {
                    edge.alive.push(Alive {
                        from: seq,
                        to: u64::MAX,
                    });
                }
            }
            None => {
                if graph.befriend(a, b) {
                    let alive = Alive {
                        from: seq,
                        to: u64::MAX,
                    };
                    self.add(a, b, alive);
                }
            }
        }
    }

    /// Applies an unfriend at sequence `seq`; the edge stays in the graph until the window
    /// closes (the graph may index a list to find the friendship).
    pub fn unfriend(&mut self, graph: &mut FriendGraph, a: UserId, b: UserId, seq: u64) {
        if a == b {
            return;
        }
        match self.index.get(&key(a, b)) {
            Some(&edge) => {
                let edge = &mut self.edges[edge as usize];
                if let Some(last) = edge.alive.last_mut().filter(|last| last.to == u64::MAX) {
                    last.to = seq;
                }
            }
            None => {
                if graph.are_friends(a, b) {
                    self.add(a, b, Alive { from: 0, to: seq });
                }
            }
        }
    }

    /// Calls `dead` for every friend `f` of `u` whose edge is in the graph but not alive at `seq`.
    #[inline]
    fn for_each_dead(&self, u: UserId, seq: u64, mut dead: impl FnMut(UserId)) {
        let slot = self.slot.get(u as usize).copied().unwrap_or(0);
        if slot == 0 {
            return;
        }
        for &edge in &self.by_user[slot as usize - 1].1 {
            let edge = &self.edges[edge as usize];
            if !edge.is_alive_at(seq) {
                dead(if edge.a == u { edge.b } else { edge.a });
            }
        }
    }

    /// Starts loading whether `u` has changed edges in the window.
    #[inline]
    pub fn prefetch(&self, u: UserId) {
        if let Some(slot) = self.slot.get(u as usize) {
            crate::state::prefetch::prefetch(slot);
        }
    }

    /// Ends the window: removes the edges that ended dead and forgets the intervals.
    pub fn close(&mut self, graph: &mut FriendGraph) {
        // The ended edges' friend lists are scattered: start loading them a few edges ahead.
        const AHEAD: usize = 8;
        for (i, edge) in self.edges.iter().enumerate() {
            if let Some(later) = self.edges.get(i + AHEAD).filter(|e| !e.is_alive_now()) {
                graph.prefetch(later.a, false);
                graph.prefetch(later.b, false);
            }
            if !edge.is_alive_now() {
                graph.unfriend(edge.a, edge.b);
            }
        }
        self.edges.clear();
        self.index.clear();
        for &(u, _) in &self.by_user {
            self.slot[u as usize] = 0;
        }
        self.by_user.clear();
    }
}

/// Per-query scratch for [`Friendships::for_each_friend`]: the friends to skip, a short list
/// (a user rarely loses more than a few friendships within one window), kept sorted once long.
#[derive(Default)]
pub struct SkipMarks {
    dead: Vec<UserId>,
}

impl SkipMarks {
    /// Lists up to this long are searched in order; longer ones are sorted and bisected.
    const LINEAR: usize = 8;

    fn set(&mut self, u: UserId) {
        self.dead.push(u);
    }

    /// Done marking: ready for [`Self::is_set`].
    fn seal(&mut self) {
        if self.dead.len() > Self::LINEAR {
            self.dead.sort_unstable();
        }
    }

    #[inline]
    fn is_set(&self, u: UserId) -> bool {
        if self.dead.len() <= Self::LINEAR {
            self.dead.contains(&u)
        } else {
            self.dead.binary_search(&u).is_ok()
        }
    }
}

/// The friendships a query at one sequence number sees.
pub trait Friendships {
    /// Calls `visit` for every friend of `user`: its listed friends less the ended ones;
    /// `marks` is scratch.
    fn for_each_friend(&self, user: UserId, marks: &mut SkipMarks, mut visit: impl FnMut(UserId)) {
        let friends = self.listed_friends(user);
        marks.dead.clear();
        self.for_each_ended(user, |f| marks.set(f));
        if marks.dead.is_empty() {
            friends.iter().copied().for_each(visit);
            return;
        }
        marks.seal();
        for &f in friends {
            if !marks.is_set(f) {
                visit(f);
            }
        }
    }

    /// Starts loading `user`'s friend list: its header, or with `deep` its entries.
    fn prefetch(&self, user: UserId, deep: bool);

    /// Every user with friends is below this.
    fn users(&self) -> usize;

    /// `user`'s friend list in the graph: its friends, and those whose friendship is not alive
    /// at this sequence number ([`Self::for_each_ended`]).
    fn listed_friends(&self, user: UserId) -> &[UserId];

    /// Calls `ended` for every user in `user`'s list whose friendship is not alive at this
    /// sequence number (ended before it, or begun after it, within the window).
    fn for_each_ended(&self, user: UserId, ended: impl FnMut(UserId));
}

impl<T: Friendships> Friendships for &T {
    #[inline]
    fn prefetch(&self, user: UserId, deep: bool) {
        T::prefetch(self, user, deep);
    }

    #[inline]
    fn users(&self) -> usize {
        T::users(self)
    }

    #[inline]
    fn listed_friends(&self, user: UserId) -> &[UserId] {
        T::listed_friends(self, user)
    }

    #[inline]
    fn for_each_ended(&self, user: UserId, ended: impl FnMut(UserId)) {
        T::for_each_ended(self, user, ended);
    }
}

impl Friendships for FriendGraph {
    #[inline]
    fn prefetch(&self, user: UserId, deep: bool) {
        FriendGraph::prefetch(self, user, deep);
    }

    #[inline]
    fn users(&self) -> usize {
        FriendGraph::users(self)
    }

    #[inline]
    fn listed_friends(&self, user: UserId) -> &[UserId] {
        self.friends(user)
    }

    #[inline]
    fn for_each_ended(&self, _: UserId, _: impl FnMut(UserId)) {}
}

/// The graph as it stood just before sequence `seq` of the current window.
pub struct GraphAt<'a> {
    pub graph: &'a FriendGraph,
    pub changes: &'a EdgeChanges,
    pub seq: u64,
}

impl Friendships for GraphAt<'_> {
    #[inline]
    fn prefetch(&self, user: UserId, deep: bool) {
        self.graph.prefetch(user, deep);
        if !deep {
            self.changes.prefetch(user);
        }
    }

    #[inline]
    fn users(&self) -> usize {
        self.graph.users()
    }

    #[inline]
    fn listed_friends(&self, user: UserId) -> &[UserId] {
        self.graph.friends(user)
    }

    #[inline]
    fn for_each_ended(&self, user: UserId, ended: impl FnMut(UserId)) {
        self.changes.for_each_dead(user, self.seq, ended);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn friends_at(g: &FriendGraph, c: &EdgeChanges, u: UserId, seq: u64) -> Vec<UserId> {
        let mut out = Vec::new();
        GraphAt {
            graph: g,
            changes: c,
            seq,
        }
        .for_each_friend(u, &mut SkipMarks::default(), |f| out.push(f));
        out.sort_unstable();
        out
    }

    #[test]
    fn many_friendships_ended_in_one_window_are_all_skipped() {
        let mut g = FriendGraph::new();
        for f in 1..=30 {
            g.befriend(0, f);
        }
        let mut c = EdgeChanges::new();
        // Friends 1..=20 leave one by one at sequences 101..=120; 31 and 32 arrive.
        for f in 1..=20 {
            c.unfriend(&mut g, 0, f, 100 + u64::from(f));
        }
        c.befriend(&mut g, 0, 31, 105);
        c.befriend(&mut g, 32, 0, 125);
        let range = |from, to| (from..=to).collect::<Vec<UserId>>();
        assert_eq!(friends_at(&g, &c, 0, 100), range(1, 30));
        assert_eq!(
            friends_at(&g, &c, 0, 103),
            range(4, 30),
            "three gone: a short list"
        );
        assert_eq!(
            friends_at(&g, &c, 0, 110),
            range(11, 31),
            "ten gone: a sorted list"
        );
        assert_eq!(friends_at(&g, &c, 0, 130), range(21, 32));
        assert_eq!(friends_at(&g, &c, 5, 130), Vec::<UserId>::new());
        assert_eq!(friends_at(&g, &c, 25, 130), vec![0]);
    }

    #[test]
    fn churn_inside_one_window_is_versioned() {
        let mut g = FriendGraph::new();
        g.befriend(1, 2); // before the window
        let mut c = EdgeChanges::new();
        c.unfriend(&mut g, 1, 2, 10);
        c.befriend(&mut g, 2, 1, 20);
        c.befriend(&mut g, 1, 2, 25); // no-op: already friends
        c.unfriend(&mut g, 1, 2, 30);
        c.befriend(&mut g, 1, 3, 15);
        c.unfriend(&mut g, 1, 4, 16); // no-op: never friends
        c.befriend(&mut g, 5, 5, 17); // no-op: oneself
        assert_eq!(friends_at(&g, &c, 1, 5), vec![2]);
        assert_eq!(friends_at(&g, &c, 1, 11), Vec::<UserId>::new());
        assert_eq!(friends_at(&g, &c, 1, 16), vec![3]);
        assert_eq!(friends_at(&g, &c, 1, 21), vec![2, 3]);
        assert_eq!(friends_at(&g, &c, 2, 31), Vec::<UserId>::new());
        c.close(&mut g);
        assert_eq!(g.friends(1), &[3]);
        assert!(!g.are_friends(1, 2));
        assert_eq!(friends_at(&g, &c, 1, 40), vec![3]);
    }
}
