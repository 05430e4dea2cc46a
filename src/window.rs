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

use crate::graph::FriendGraph;
use crate::users::UserId;

/// An alive interval of an edge in sequence numbers: alive for queries with `from < s < to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Alive {
    from: u64,
    to: u64,
}

/// The friendship changes of the current window.
#[derive(Default)]
pub struct EdgeChanges {
    /// Alive intervals of every edge a window event changed, keyed by (smaller, larger) id.
    intervals: HashMap<(UserId, UserId), SmallVec<[Alive; 2]>>,
    /// `touched[u]` counts the changed edges at `u`: most users have none, and need no lookup.
    touched: Vec<u32>,
    /// Users with `touched[u] > 0`, to reset them.
    touched_users: Vec<UserId>,
}

fn key(a: UserId, b: UserId) -> (UserId, UserId) {
    (a.min(b), a.max(b))
}

impl EdgeChanges {
    pub fn new() -> Self {
        Self::default()
    }

    fn touch(&mut self, u: UserId) {
        let i = u as usize;
        if self.touched.len() <= i {
            self.touched.resize(i + 1, 0);
        }
        if self.touched[i] == 0 {
            self.touched_users.push(u);
        }
        self.touched[i] += 1;
    }

    /// Applies a befriend at sequence `seq` (the graph gains the edge for good until
    /// [`Self::close`]).
    pub fn befriend(&mut self, graph: &mut FriendGraph, a: UserId, b: UserId, seq: u64) {
        if a == b {
            return;
        }
        match self.intervals.get_mut(&key(a, b)) {
            Some(list) => {
                if list.last().is_some_and(|last| last.to != u64::MAX) {
                    list.push(Alive {
                        from: seq,
                        to: u64::MAX,
                    });
                }
            }
            None => {
                if graph.befriend(a, b) {
                    self.intervals.insert(
                        key(a, b),
                        smallvec::smallvec![Alive {
                            from: seq,
                            to: u64::MAX
                        }],
                    );
                    self.touch(a);
                    self.touch(b);
                }
            }
        }
    }

    /// Applies an unfriend at sequence `seq`; the edge stays in the graph until the window closes.
    pub fn unfriend(&mut self, graph: &FriendGraph, a: UserId, b: UserId, seq: u64) {
        if a == b {
            return;
        }
        match self.intervals.get_mut(&key(a, b)) {
            Some(list) => {
                if let Some(last) = list.last_mut().filter(|last| last.to == u64::MAX) {
                    last.to = seq;
                }
            }
            None => {
                if graph.are_friends(a, b) {
                    self.intervals
                        .insert(key(a, b), smallvec::smallvec![Alive { from: 0, to: seq }]);
                    self.touch(a);
                    self.touch(b);
                }
            }
        }
    }

    /// Whether the edge `u - f` of the graph is alive for a query at sequence `seq`.
    #[inline]
    pub fn alive(&self, u: UserId, f: UserId, seq: u64) -> bool {
        if self.touched.get(u as usize).is_none_or(|&n| n == 0)
            || self.touched.get(f as usize).is_none_or(|&n| n == 0)
        {
            return true;
        }
        match self.intervals.get(&key(u, f)) {
            None => true,
            Some(list) => list.iter().any(|i| i.from < seq && seq < i.to),
        }
    }

    /// Whether `u` has any edge changed in this window.
    #[inline]
    pub fn is_touched(&self, u: UserId) -> bool {
        self.touched.get(u as usize).is_some_and(|&n| n > 0)
    }

    /// Ends the window: removes the edges that ended dead and forgets the intervals.
    pub fn close(&mut self, graph: &mut FriendGraph) {
        for (&(a, b), list) in &self.intervals {
            if list.last().is_some_and(|last| last.to != u64::MAX) {
                graph.unfriend(a, b);
            }
        }
        self.intervals.clear();
        for &u in &self.touched_users {
            self.touched[u as usize] = 0;
        }
        self.touched_users.clear();
    }
}

/// The friendships a query at one sequence number sees.
pub trait Friendships {
    /// Calls `visit` for every friend of `user`.
    fn for_each_friend(&self, user: UserId, visit: impl FnMut(UserId));
}

impl Friendships for FriendGraph {
    #[inline]
    fn for_each_friend(&self, user: UserId, visit: impl FnMut(UserId)) {
        self.friends(user).iter().copied().for_each(visit);
    }
}

/// The graph as it stood just before sequence `seq` of the current window.
pub struct GraphAt<'a> {
    pub graph: &'a FriendGraph,
    pub changes: &'a EdgeChanges,
    pub seq: u64,
}

impl Friendships for GraphAt<'_> {
    #[inline]
    fn for_each_friend(&self, user: UserId, mut visit: impl FnMut(UserId)) {
        let friends = self.graph.friends(user);
        if !self.changes.is_touched(user) {
            friends.iter().copied().for_each(visit);
            return;
        }
        for &f in friends {
            if self.changes.alive(user, f, self.seq) {
                visit(f);
            }
        }
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
        .for_each_friend(u, |f| out.push(f));
        out.sort_unstable();
        out
    }

    #[test]
    fn churn_inside_one_window_is_versioned() {
        let mut g = FriendGraph::new();
        g.befriend(1, 2); // before the window
        let mut c = EdgeChanges::new();
        c.unfriend(&g, 1, 2, 10);
        c.befriend(&mut g, 2, 1, 20);
        c.befriend(&mut g, 1, 2, 25); // no-op: already friends
        c.unfriend(&g, 1, 2, 30);
        c.befriend(&mut g, 1, 3, 15);
        c.unfriend(&g, 1, 4, 16); // no-op: never friends
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
