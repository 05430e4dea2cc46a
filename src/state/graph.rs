//! The undirected friend graph: a small adjacency list per user, one cache line each, and a
//! position index for the few users with many friends (a brand, a celebrity, the shop's own
//! account), so that befriend, unfriend and "are they friends?" cost O(1) expected whatever
//! the degree.

use std::hash::BuildHasher;

use hashbrown::{HashMap, HashTable};
use smallvec::SmallVec;

use crate::state::snapshot::{In, Out, SnapshotError, inconsistent};
use crate::state::users::UserId;
use std::io::{self, Write};

/// Adjacency lists indexed by [`UserId`]. Befriending an existing friend, unfriending a
/// non-friend and befriending oneself change nothing.
///
/// A list is in no particular order: a new friend is appended, an unfriended one is replaced
/// by the list's last (`swap_remove`). A list longer than [`INDEX_ABOVE`] gets a `Positions`
/// index (friend to place in the list) the first time a friend must be found in it, kept up to
/// date from then on, and dropped once the list is shorter than [`UNINDEX_BELOW`]; the index
/// never changes the list's order. A list that only grows is never searched (a new friendship
/// is looked up in the shorter list), so a celebrity that only gains friends has no index.
#[derive(Default, Clone)]
pub struct FriendGraph {
    friends: Vec<FriendList>,
    /// The position index of the lists that have one, keyed by the list's user: every list
    /// has at least [`UNINDEX_BELOW`] friends.
    indexes: HashMap<UserId, Positions>,
    /// Hashes the friends in the indexes (seeded per run, so crafted ids cannot collide).
    hasher: foldhash::fast::RandomState,
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

/// Where each friend of a long list is in it: the list's positions, each hashed by the friend
/// it holds (4 bytes and a control byte a slot; the friend is read from the list itself). A
/// position fits a `u32`: a list holds distinct users, fewer than [`UserId::MAX`].
type Positions = HashTable<u32>;

/// A list longer than this is searched through a position index. Shorter lists are scanned:
/// a scan of 256 ids (16 cache lines, read in order) costs about what the index's three
/// scattered reads cost, less when the lists are out of cache (docs/performance.md, "Celebrity
/// users"), and an index more than doubles a list's memory.
pub const INDEX_ABOVE: usize = 256;

/// An indexed list that shrinks below this loses its index. The gap to [`INDEX_ABOVE`] keeps
/// a user whose degree churns around one value from building and dropping an index in turn.
pub const UNINDEX_BELOW: usize = 64;

const _: () = assert!(INLINE_FRIENDS < UNINDEX_BELOW && UNINDEX_BELOW < INDEX_ABOVE);

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
        if self.are_friends(a, b) {
            return false;
        }
        self.push(a, b);
        self.push(b, a);
        self.edges += 1;
        true
    }

    /// Removes the friendship; returns whether it changed the graph.
    pub fn unfriend(&mut self, a: UserId, b: UserId) -> bool {
        // A long list without an index is indexed only for a friendship that is there: a
        // stranger's list (the shorter) says so first.
        let unindexed =
            |g: &Self, u: UserId| g.friends(u).len() > INDEX_ABOVE && !g.indexes.contains_key(&u);
        if (unindexed(self, a) || unindexed(self, b)) && !self.are_friends(a, b) {
            return false;
        }
        let Some(at) = self.find(a, b) else {
            return false;
        };
        self.remove_at(a, at);
        // Friendship is symmetric: `a` is in `b`'s list.
        if let Some(at) = self.find(b, a) {
            self.remove_at(b, at);
        }
        self.edges -= 1;
        true
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

    /// Whether `a` and `b` are friends, looked up in the shorter of their lists: a celebrity's
    /// friendship with an ordinary user is found in the ordinary user's cache line. (Takes
    /// `&mut self`: when both lists are long, the shorter one may get its index now.)
    #[inline]
    pub fn are_friends(&mut self, a: UserId, b: UserId) -> bool {
        let (in_a, in_b) = (self.friends(a), self.friends(b));
        let (user, friend, list) = if in_a.len() <= in_b.len() {
            (a, b, in_a)
        } else {
            (b, a, in_b)
        };
        if list.len() < UNINDEX_BELOW {
            return list.contains(&friend);
        }
        self.find_in_long(user, friend).is_some()
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

    /// How many lists have a position index (for tests and the benchmark).
    pub fn indexed_users(&self) -> usize {
        self.indexes.len()
    }

    /// Where `friend` is in `user`'s list: through its index, built now if the list is longer
    /// than [`INDEX_ABOVE`] and has none, else by a scan.
    #[inline]
    fn find(&mut self, user: UserId, friend: UserId) -> Option<usize> {
        let list = self.friends(user);
        if list.len() < UNINDEX_BELOW {
            return list.iter().position(|&f| f == friend);
        }
        self.find_in_long(user, friend)
    }

    /// [`Self::find`] in a list of at least [`UNINDEX_BELOW`] friends (kept out of line: the
    /// usual list is short).
    #[inline(never)]
    fn find_in_long(&mut self, user: UserId, friend: UserId) -> Option<usize> {
        let FriendGraph {
            friends,
            indexes,
            hasher,
            ..
        } = self;
        let list = friends[user as usize].0.as_slice();
        let hash = |at: &u32| hasher.hash_one(list[*at as usize]);
        let index = match indexes.get(&user) {
            Some(index) => index,
            None if list.len() <= INDEX_ABOVE => return list.iter().position(|&f| f == friend),
            None => {
                let mut index = Positions::with_capacity(list.len());
                for at in 0..list.len() as u32 {
                    index.insert_unique(hash(&at), at, hash);
                }
                indexes.entry(user).insert(index).into_mut()
            }
        };
        index
            .find(hasher.hash_one(friend), |&at| list[at as usize] == friend)
            .map(|&at| at as usize)
    }

    /// Appends `friend` to `user`'s list, and to its index if it has one.
    #[inline(always)]
    fn push(&mut self, user: UserId, friend: UserId) {
        let list = &mut self.friends[user as usize].0;
        list.push(friend);
        if list.len() > UNINDEX_BELOW {
            self.push_indexed(user);
        }
    }

    /// Adds the last friend of `user`'s list to its index, if it has one (out of line: the
    /// usual list is short).
    #[inline(never)]
    fn push_indexed(&mut self, user: UserId) {
        let FriendGraph {
            friends,
            indexes,
            hasher,
            ..
        } = self;
        let list = &friends[user as usize].0;
        if let Some(index) = indexes.get_mut(&user) {
            let list = list.as_slice();
            let hash = |at: &u32| hasher.hash_one(list[*at as usize]);
            let at = (list.len() - 1) as u32;
            index.insert_unique(hash(&at), at, hash);
        }
    }

    /// Removes the friend at `at` of `user`'s list: the last one takes its place, in the
    /// index too; an index is dropped once the list is shorter than [`UNINDEX_BELOW`].
    #[inline(always)]
    fn remove_at(&mut self, user: UserId, at: usize) {
        let list = &mut self.friends[user as usize].0;
        if list.len() < UNINDEX_BELOW {
            list.swap_remove(at);
        } else {
            self.remove_at_long(user, at);
        }
    }

    /// [`Self::remove_at`] in a list of at least [`UNINDEX_BELOW`] friends (out of line: the
    /// usual list is short).
    #[inline(never)]
    fn remove_at_long(&mut self, user: UserId, at: usize) {
        let FriendGraph {
            friends,
            indexes,
            hasher,
            ..
        } = self;
        let list = &mut friends[user as usize].0;
        if let Some(index) = indexes.get_mut(&user) {
            let last = list.len() - 1;
            let removed = hasher.hash_one(list[at]);
            if let Ok(entry) = index.find_entry(removed, |&p| p as usize == at) {
                entry.remove();
            }
            if at != last {
                let moved = hasher.hash_one(list[last]);
                if let Some(p) = index.find_mut(moved, |&p| p as usize == last) {
                    *p = at as u32;
                }
            }
            list.swap_remove(at);
            if list.len() < UNINDEX_BELOW {
                indexes.remove(&user);
            }
            return;
        }
        list.swap_remove(at);
    }
}

impl FriendGraph {
    /// Bytes of [`Self::save`]'s part of a snapshot of `users` users.
    pub(crate) fn snapshot_len(&self, users: usize) -> u64 {
        4 * (users as u64 + 2 * self.edges as u64)
    }

    /// Writes the friends of users `0..users`: their degrees (`u32`), then each one's friends
    /// in ascending order, so that the bytes do not depend on the order changes made.
    pub(crate) fn save(&self, out: &mut Out<'_, impl Write>, users: usize) -> io::Result<()> {
        for user in 0..users as UserId {
            // A list holds distinct users, fewer than `UserId::MAX`.
            out.u32(self.friends(user).len() as u32)?;
        }
        let mut sorted = Vec::new();
        for user in 0..users as UserId {
            let friends = self.friends(user);
            if friends.is_sorted() {
                out.u32s(friends)?;
            } else {
                sorted.clear();
                sorted.extend_from_slice(friends);
                sorted.sort_unstable();
                out.u32s(&sorted)?;
            }
        }
        Ok(())
    }

    /// Reads the friends of `users` users written by [`Self::save`]: every friend a user, no
    /// one their own friend, each list ascending without repeats, every friendship in both
    /// lists. Position indexes are built again when first needed.
    pub(crate) fn restore(input: &mut In<'_>, users: usize) -> Result<FriendGraph, SnapshotError> {
        let degrees = input.u32s(users as u64)?;
        let total: u64 = degrees.clone().map(u64::from).sum();
        let mut listed = input.u32s(total)?;
        let mut friends = Vec::with_capacity(users);
        // Friendships seen from the smaller user's side, and from the larger's.
        let (mut up, mut down) = (0u64, 0u64);
        for (user, degree) in degrees.enumerate() {
            let list: SmallVec<[UserId; INLINE_FRIENDS]> =
                listed.by_ref().take(degree as usize).collect();
            for (i, &friend) in list.iter().enumerate() {
                if friend as usize >= users || friend as usize == user {
                    return inconsistent(format!("user {user} has friend {friend}"));
                }
                if i > 0 && list[i - 1] >= friend {
                    return inconsistent(format!("the friends of user {user} are not in order"));
                }
            }
            let below = list.partition_point(|&f| (f as usize) < user);
            down += below as u64;
            up += (list.len() - below) as u64;
            friends.push(FriendList(list));
        }
        // Every friendship from the smaller side is in the larger's list too; as many are
        // seen from each side, so there are no others.
        for (user, list) in friends.iter().enumerate() {
            let list = list.0.as_slice();
            let below = list.partition_point(|&f| (f as usize) < user);
            for &friend in &list[below..] {
                if friends[friend as usize]
                    .0
                    .binary_search(&(user as UserId))
                    .is_err()
                {
                    return inconsistent(format!(
                        "user {user} has friend {friend}, who does not have {user}"
                    ));
                }
            }
        }
        if up != down {
            return inconsistent("friendships seen from one side only");
        }
        Ok(FriendGraph {
            friends,
            edges: up as usize,
            ..FriendGraph::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    impl FriendGraph {
        /// Panics unless every index maps each friend of its list to the friend's place, and
        /// only lists of at least `UNINDEX_BELOW` friends have one.
        fn check_indexes(&self) {
            for (user, list) in self.friends.iter().enumerate() {
                let list = list.0.as_slice();
                let user = user as UserId;
                if let Some(index) = self.indexes.get(&user) {
                    assert!(
                        list.len() >= UNINDEX_BELOW,
                        "user {user}: a short list indexed"
                    );
                    assert_eq!(index.len(), list.len(), "user {user}: index size");
                    for (at, &f) in list.iter().enumerate() {
                        let hash = self.hasher.hash_one(f);
                        let found = index.find(hash, |&p| list[p as usize] == f);
                        assert_eq!(found, Some(&(at as u32)), "user {user}, friend {f}");
                    }
                }
            }
        }
    }

    /// A xorshift64 generator from `seed`: `below(n)` draws from `0..n`.
    fn xorshift(mut x: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        }
    }

    /// The graph against a set of pairs, and its lists against plain vectors searched from the
    /// front and changed by `swap_remove` (so the lists' order, which the walk reads, is what
    /// an unindexed list gives), under random befriends and unfriends that push a few hubs far
    /// past the index threshold and back below the point where the index is dropped, then up
    /// again.
    #[test]
    fn graph_matches_a_set_of_pairs_as_hubs_cross_the_index_threshold() {
        let mut below = xorshift(0x9E37_79B9_7F4A_7C15);
        let users = 1_200u64;
        let hubs = [0u32, 1, 2];
        let mut g = FriendGraph::new();
        let mut pairs: HashSet<(UserId, UserId)> = HashSet::new();
        let mut lists: Vec<Vec<UserId>> = vec![Vec::new(); users as usize];
        let key = |a: UserId, b: UserId| (a.min(b), a.max(b));
        let mut most = [0usize; 3];
        let mut fewest_after_most = [usize::MAX; 3];
        for phase in 0..13 {
            // Even phases grow the hubs (befriends mostly at a hub), odd ones shrink them
            // (unfriends mostly at a hub); every phase also churns ordinary users.
            let growing = phase % 2 == 0;
            for _ in 0..1_500 {
                let hub = hubs[below(3) as usize];
                let at_hub = below(10) < 8;
                let a = if at_hub { hub } else { below(users) as UserId };
                let befriend = if at_hub {
                    growing == (below(10) < 9)
                } else {
                    below(2) == 0
                };
                // A hub's unfriends mostly name one of its friends.
                let b = match lists[a as usize].len() {
                    len if at_hub && !befriend && len > 0 && below(10) < 9 => {
                        lists[a as usize][below(len as u64) as usize]
                    }
                    _ => below(users) as UserId,
                };
                let (changed, expected) = if befriend {
                    let new = a != b && pairs.insert(key(a, b));
                    if new {
                        lists[a as usize].push(b);
                        lists[b as usize].push(a);
                    }
                    (g.befriend(a, b), new)
                } else {
                    let gone = pairs.remove(&key(a, b));
                    if gone {
                        for (u, v) in [(a, b), (b, a)] {
                            let list = &mut lists[u as usize];
                            let at = list.iter().position(|&f| f == v).unwrap();
                            list.swap_remove(at);
                        }
                    }
                    (g.unfriend(a, b), gone)
                };
                assert_eq!(
                    changed, expected,
                    "phase {phase}: {a} {b} befriend={befriend}"
                );
                let (x, y) = (below(users) as UserId, below(users) as UserId);
                assert_eq!(g.are_friends(x, y), pairs.contains(&key(x, y)) && x != y);
                assert_eq!(g.are_friends(hub, y), pairs.contains(&key(hub, y)));
            }
            for (i, &hub) in hubs.iter().enumerate() {
                let degree = g.friends(hub).len();
                most[i] = most[i].max(degree);
                if most[i] > INDEX_ABOVE {
                    fewest_after_most[i] = fewest_after_most[i].min(degree);
                }
            }
            for u in 0..users as UserId {
                assert_eq!(
                    g.friends(u),
                    lists[u as usize].as_slice(),
                    "user {u}, phase {phase}"
                );
            }
            assert_eq!(g.edges(), pairs.len());
            g.check_indexes();
        }
        for i in 0..3 {
            assert!(most[i] > INDEX_ABOVE + 32, "hub {i} peaked at {}", most[i]);
            assert!(
                fewest_after_most[i] < UNINDEX_BELOW,
                "hub {i} never fell below {UNINDEX_BELOW}: {}",
                fewest_after_most[i]
            );
        }
        assert!(g.indexed_users() >= 1);
    }

    #[test]
    fn a_list_that_only_grows_gets_no_index_until_a_friend_must_be_found_in_it() {
        let mut g = FriendGraph::new();
        for f in 1..=1_000 {
            assert!(g.befriend(0, f));
            assert!(
                !g.befriend(f, 0),
                "an existing friend, found in the shorter list"
            );
        }
        assert!(
            !g.unfriend(0, 5_000),
            "a stranger, found out in the stranger's list"
        );
        assert_eq!(g.indexed_users(), 0);
        assert!(g.unfriend(0, 500));
        assert_eq!(g.indexed_users(), 1);
        for f in 10_001..=11_000 {
            g.befriend(10_000, f);
        }
        // Two long lists: the shorter one is searched, and indexed for it.
        assert!(!g.are_friends(0, 10_000));
        assert_eq!(
            g.indexed_users(),
            1,
            "0's list is the shorter and has its index"
        );
        assert!(g.befriend(10_000, 0) && g.are_friends(0, 10_000));
        assert_eq!(g.indexed_users(), 1);
        assert!(g.unfriend(0, 10_000));
        assert_eq!(
            g.indexed_users(),
            2,
            "10 000's list is indexed to remove 0 from it"
        );
        g.check_indexes();
    }

    #[test]
    fn a_hub_of_a_hundred_thousand_friends_changes_in_constant_time() {
        let mut g = FriendGraph::new();
        let n = 100_000;
        for f in 1..=n {
            assert!(g.befriend(0, f));
        }
        assert!(!g.befriend(n, 0) && !g.befriend(0, 1));
        assert!(g.are_friends(0, n / 2) && g.are_friends(n / 2, 0));
        for f in (2..=n).step_by(2) {
            assert!(g.unfriend(0, f));
            assert!(!g.unfriend(f, 0));
        }
        assert_eq!(g.friends(0).len(), n as usize / 2);
        assert_eq!(g.edges(), n as usize / 2);
        assert_eq!(g.indexed_users(), 1);
        for f in (1..=n).step_by(2) {
            assert!(g.unfriend(f, 0));
        }
        assert_eq!((g.edges(), g.indexed_users()), (0, 0));
    }

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
