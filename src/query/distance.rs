//! The distance of two users in the friend graph, up to a bound: a breadth-first search from
//! both users at once, one whole level at a time from the side whose frontier has fewer
//! friends to read, which stops as soon as the two sides meet, the bound is reached or a side
//! runs out of users (the two are not connected). The scratch is reused: a search allocates
//! nothing once it has grown to the graph.

use crate::state::users::UserId;
use crate::state::window::{Friendships, SkipMarks};

/// Reusable scratch for [`DistanceQuery::distance`].
#[derive(Default)]
pub struct DistanceQuery {
    /// Per side: bit `u` marks user `u` as reached from that side.
    seen: [Vec<u64>; 2],
    /// Per side: the users reached, level after level (the side's user first).
    reached: [Vec<UserId>; 2],
    marks: SkipMarks,
}

impl DistanceQuery {
    pub fn new() -> Self {
        Self::default()
    }

    /// The length of the shortest friendship path from `a` to `b` in `graph` when it is at
    /// most `bound`, else `None` (farther, or not connected). `a == b` is distance 0.
    pub fn distance(
        &mut self,
        graph: &impl Friendships,
        a: UserId,
        b: UserId,
        bound: u32,
    ) -> Option<u32> {
        if a == b {
            return Some(0);
        }
        // Every friend id is below `graph.users()`: one size check per search.
        let words = graph.users().max(a.max(b) as usize + 1).div_ceil(64);
        for seen in &mut self.seen {
            if seen.len() < words {
                seen.resize(words, 0);
            }
        }
        for (side, user) in [a, b].into_iter().enumerate() {
            self.reached[side].clear();
            self.reached[side].push(user);
            self.seen[side][user as usize / 64] |= 1 << (user % 64);
        }
        let found = self.meet(graph, bound);
        // Every bit set belongs to a reached user: clearing their words clears them all.
        for side in 0..2 {
            for &u in &self.reached[side] {
                self.seen[side][u as usize / 64] = 0;
            }
        }
        found
    }

    /// Grows the two searches level by level until they meet (the distance), or the levels
    /// grown add up to `bound`, or a side has no frontier left (`None`).
    fn meet(&mut self, graph: &impl Friendships, bound: u32) -> Option<u32> {
        // Per side, where its frontier (its deepest level) starts in `reached`.
        let mut frontier = [0usize, 0];
        // Levels grown on both sides together: no path is shorter than this plus one.
        let mut grown = 0u32;
        while grown < bound {
            // Grow the side whose frontier has fewer friends to read: a celebrity's side is
            // grown last, if at all. An empty frontier costs nothing and ends the search.
            let cost = |side: usize| -> usize {
                let level = &self.reached[side][frontier[side]..];
                level.iter().map(|&u| graph.listed_friends(u).len()).sum()
            };
            let side = usize::from(cost(1) < cost(0));
            let (start, end) = (frontier[side], self.reached[side].len());
            if start == end {
                return None;
            }
            let [seen_a, seen_b] = &mut self.seen;
            let (seen, other) = if side == 0 {
                (seen_a, &*seen_b)
            } else {
                (seen_b, &*seen_a)
            };
            let [reached_a, reached_b] = &mut self.reached;
            let reached = if side == 0 { reached_a } else { reached_b };
            for deep in [false, true] {
                for &u in &reached[start..end] {
                    graph.prefetch(u, deep);
                }
            }
            let mut met = false;
            for at in start..end {
                let u = reached[at];
                graph.for_each_friend(u, &mut self.marks, |f| {
                    let (word, bit) = (f as usize / 64, 1u64 << (f % 64));
                    met |= other[word] & bit != 0;
                    if seen[word] & bit == 0 {
                        seen[word] |= bit;
                        reached.push(f);
                    }
                });
                if met {
                    // The other side has grown whole levels only, and no user of the level
                    // being grown was reached by it before: this is the first meeting, at
                    // exactly the levels grown so far plus one.
                    return Some(grown + 1);
                }
            }
            frontier[side] = end;
            grown += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::graph::FriendGraph;
    use std::collections::VecDeque;

    /// The distance by a plain breadth-first search from `a` alone.
    fn plain(graph: &FriendGraph, a: UserId, b: UserId) -> Option<u32> {
        let mut distance = vec![u32::MAX; graph.users().max(a.max(b) as usize + 1)];
        distance[a as usize] = 0;
        let mut queue = VecDeque::from([a]);
        while let Some(u) = queue.pop_front() {
            for &f in graph.friends(u) {
                if distance[f as usize] == u32::MAX {
                    distance[f as usize] = distance[u as usize] + 1;
                    queue.push_back(f);
                }
            }
        }
        (distance[b as usize] != u32::MAX).then_some(distance[b as usize])
    }

    fn xorshift(mut x: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        }
    }

    #[test]
    fn a_path_is_found_at_its_length_and_not_past_the_bound() {
        let mut g = FriendGraph::new();
        for u in 0..6 {
            g.befriend(u, u + 1);
        }
        let mut q = DistanceQuery::new();
        assert_eq!(q.distance(&g, 0, 0, 3), Some(0));
        assert_eq!(q.distance(&g, 0, 1, 1), Some(1));
        assert_eq!(q.distance(&g, 0, 3, 3), Some(3));
        assert_eq!(q.distance(&g, 0, 4, 3), None);
        assert_eq!(q.distance(&g, 6, 0, u32::MAX), Some(6));
        // A user with no friends, and one the graph has never seen.
        assert_eq!(q.distance(&g, 0, 9, u32::MAX), None);
        assert_eq!(q.distance(&g, 200, 0, u32::MAX), None);
    }

    #[test]
    fn random_graphs_give_the_plain_search_s_distance() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let mut q = DistanceQuery::new();
        for round in 0..200 {
            let users = 2 + next(150);
            let mut g = FriendGraph::new();
            for _ in 0..next(3 * users) {
                g.befriend(next(users) as UserId, next(users) as UserId);
            }
            for _ in 0..20 {
                let (a, b) = (next(users) as UserId, next(users) as UserId);
                let truth = plain(&g, a, b);
                for bound in [1, 2, 3, 5, u32::MAX] {
                    let want = truth.filter(|&d| d <= bound);
                    assert_eq!(q.distance(&g, a, b, bound), want, "round {round}: {a}-{b}");
                }
            }
        }
    }
}
