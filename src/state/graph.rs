//! The undirected friend graph: a small adjacency vector per user, one cache line each.

use smallvec::SmallVec;

use crate::state::users::UserId;

/// Adjacency lists indexed by [`UserId`]. Befriending an existing friend, unfriending a
/// non-friend and befriending oneself change nothing.
#[derive(Default, Clone)]
pub struct FriendGraph {
    friends: Vec<FriendList>,
    edges: usize,
}

/// One user's friends: up to [`INLINE_FRIENDS`] held in the list's own 64-byte cache line, so
/// that reading them takes one miss; more spill to the heap.
#[derive(Default, Clone)]
#[repr(align(64))]
struct FriendList(SmallVec<[UserId; INLINE_FRIENDS]>);

/// Friends held inline: 14 ids and the length fill 64 bytes.
const INLINE_FRIENDS: usize = 14;

const _: () = assert!(std::mem::size_of::<FriendList>() == 64);

impl FriendGraph {
    pub fn new() -> Self {
        Self::default()
    }

    fn grow(&mut self, user: UserId) {
        let need = user as usize + 1;
        if self.friends.len() < need {
            self.friends.resize_with(need, FriendList::default);
        }
    }

    /// Adds the friendship; returns whether it changed the graph.
    pub fn befriend(&mut self, a: UserId, b: UserId) -> bool {
        if a == b {
            return false;
        }
        self.grow(a.max(b));
        if self.friends[a as usize].0.contains(&b) {
            return false;
        }
        self.friends[a as usize].0.push(b);
        self.friends[b as usize].0.push(a);
        self.edges += 1;
        true
    }

    /// Removes the friendship; returns whether it changed the graph.
    pub fn unfriend(&mut self, a: UserId, b: UserId) -> bool {
        let removed = remove(self.friends.get_mut(a as usize), b);
        if removed {
            remove(self.friends.get_mut(b as usize), a);
            self.edges -= 1;
        }
        removed
    }

    /// Starts loading a user's adjacency list: its header, or with `deep` its spilled friends.
    #[inline]
    pub fn prefetch(&self, user: UserId, deep: bool) {
        if let Some(list) = self.friends.get(user as usize) {
            if !deep {
                crate::state::prefetch::prefetch(list);
            } else if list.0.spilled() {
                crate::state::prefetch::prefetch(list.0.as_ptr());
            }
        }
    }

    /// The friends of a user, in no particular order.
    pub fn friends(&self, user: UserId) -> &[UserId] {
        self.friends
            .get(user as usize)
            .map_or(&[], |f| f.0.as_slice())
    }

    pub fn are_friends(&self, a: UserId, b: UserId) -> bool {
        self.friends(a).contains(&b)
    }

    /// Every user with friends is below this.
    #[inline]
    pub fn users(&self) -> usize {
        self.friends.len()
    }

    /// Number of friendships (undirected edges).
    pub fn edges(&self) -> usize {
        self.edges
    }
}

fn remove(list: Option<&mut FriendList>, user: UserId) -> bool {
    let Some(FriendList(list)) = list else {
        return false;
    };
    match list.iter().position(|&f| f == user) {
        Some(at) => {
            list.swap_remove(at);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_beyond_one_cache_line_spill_and_shrink() {
        let mut g = FriendGraph::new();
        for f in 1..=40 {
            assert!(g.befriend(0, f));
        }
        assert!(!g.befriend(40, 0), "an existing friend in a spilled list");
        for f in (2..=40).step_by(2) {
            assert!(g.unfriend(f, 0));
        }
        let mut friends = g.friends(0).to_vec();
        friends.sort_unstable();
        assert_eq!(friends, (1..=39).step_by(2).collect::<Vec<_>>());
        assert_eq!(g.edges(), 20);
        assert!(g.are_friends(39, 0) && !g.are_friends(40, 0));
        assert_eq!(g.friends(40), &[] as &[UserId]);
    }

    #[test]
    fn no_op_changes_change_nothing() {
        let mut g = FriendGraph::new();
        assert!(g.befriend(1, 2));
        assert!(!g.befriend(2, 1), "befriending an existing friend");
        assert!(!g.befriend(3, 3), "befriending oneself");
        assert!(!g.unfriend(1, 3), "unfriending a non-friend");
        assert!(!g.unfriend(7, 9), "unfriending unknown users");
        assert_eq!(g.edges(), 1);
        assert_eq!(g.friends(1), &[2]);
        assert_eq!(g.friends(2), &[1]);
        assert!(g.friends(3).is_empty());
        assert!(g.unfriend(2, 1));
        assert!(!g.are_friends(1, 2));
        assert_eq!(g.edges(), 0);
        assert!(g.befriend(2, 1), "befriending again after unfriending");
        assert!(g.are_friends(1, 2) && g.are_friends(2, 1));
    }
}
