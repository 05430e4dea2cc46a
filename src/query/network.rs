//! The network query: the users within `D` hops of a buyer (breadth-first, with reusable
//! visited bits), then the latest `T` of their purchases as a [`Baseline`]: for a large network
//! scanned from the log's recent purchases, otherwise from the members ranked by recency and
//! merged. A query runs in three stages (gather, load, merge) so that a worker can keep several
//! in flight.

use crate::ingest::event::Timestamp;
use crate::query::baseline::Baseline;
use crate::state::graph::FriendGraph;
use crate::state::history::{NEWEST, Newest, Purchase, PurchaseHistory};
use crate::state::users::UserId;
use crate::state::window::{Friendships, SkipMarks};

/// How far back from each candidate's newest purchase a query starts loading (in purchases; see
/// [`PurchaseHistory::prefetch_latest`]): a fifth of a baseline comes from deeper than a
/// member's newest purchase.
const LATEST_AHEAD: usize = 5;

/// How much more a member costs a ranking than an entry costs a scan, roughly (see
/// [`NetworkQuery::scan_pays`]).
const RANK_OVER_SCAN: usize = 16;

/// A scan is tried only when `T` is at most this fraction of the recent purchases.
const SCAN_DEPTH: usize = 8;

/// How many queries [`NetworkQuery::baselines`] has in flight: one walking its network, one
/// whose candidates' histories are arriving, one merging them.
const IN_FLIGHT: usize = 3;

/// Reusable scratch for network queries: one per worker thread.
#[derive(Default)]
pub struct NetworkQuery {
    /// Bit `u` marks user `u` as visited in the current query: one bit per user keeps the set
    /// in the first-level cache (12.5 KB per 100 000 users), and a query clears only the words
    /// its members set.
    visited: Vec<u64>,
    /// The buyer, then the members (see [`Self::walk`]).
    members: Vec<UserId>,
    /// `levels[k]`: how many of `members` lie within distance `k` of the buyer (the buyer
    /// counted), for `k` up to the walk's degree.
    levels: Vec<usize>,
    /// Friends of the user being expanded whose friendship the check does not see.
    hidden: Vec<UserId>,
    /// Per query in flight: the members whose purchases its merge reads.
    picks: [Pick; IN_FLIGHT],
    /// Per grid query in flight (see [`Self::grids`]): each row's pick, and the cells found.
    grid_slots: [GridSlot; IN_FLIGHT],
    /// Per query in flight: its baseline when a scan of the recent purchases found it (see
    /// [`Self::scan`]); the other stages then have nothing to do.
    scanned: [Option<Baseline>; IN_FLIGHT],
    /// Scans that found a baseline, and scans that reached the oldest recent purchase first.
    #[cfg(test)]
    scans: [usize; 2],
    /// The members' latest keys, each packed with the member's position in `members`.
    keys: Vec<u64>,
    /// The purchases a merge has gathered so far.
    gathered: Vec<Purchase>,
    /// Per candidate of a merge: how many of its purchases, newest first, were looked at.
    looked: Vec<usize>,
    skip: SkipMarks,
}

impl NetworkQuery {
    pub fn new() -> Self {
        Self::default()
    }

    /// The users at shortest distance `1..=degree` from `user`, in no particular order.
    pub fn members(&mut self, graph: &impl Friendships, user: UserId, degree: u32) -> &[UserId] {
        self.walk(graph, user, degree);
        self.clear_visited();
        &self.members[1..]
    }

    /// Walks `user`'s network breadth first: `members` gets `user`, then the users at distance
    /// 1, 2, ... up to `degree`, each level right after the one before (the level being read
    /// is the walk's frontier, the one being appended its next). Leaves their bits set in
    /// `visited` for [`Self::clear_visited`].
    fn walk(&mut self, graph: &impl Friendships, user: UserId, degree: u32) {
        // Every friend id is below `graph.users()`: one size check per walk, none per visit.
        let words = graph.users().max(user as usize + 1).div_ceil(64);
        if self.visited.len() < words {
            self.visited.resize(words, 0);
        }
        let (visited, members) = (&mut self.visited[..], &mut self.members);
        let hidden = &mut self.hidden;
        members.clear();
        members.push(user);
        visited[user as usize / 64] |= 1 << (user % 64);
        let levels = &mut self.levels;
        levels.clear();
        levels.push(1);
        let mut level = 0..1;
        for _ in 0..degree {
            // The frontier's friend lists are scattered: start loading them all at once.
            for deep in [false, true] {
                for &u in &members[level.clone()] {
                    graph.prefetch(u, deep);
                }
            }
            for at in level.clone() {
                let u = members[at];
                // Friends in `u`'s list whose friendship this check does not see (the window
                // changed it) pass for seen while the list is read, then are unmarked.
                hidden.clear();
                graph.for_each_ended(u, |f| {
                    let (word, bit) = (f as usize / 64, 1 << (f % 64));
                    if visited[word] & bit == 0 {
                        visited[word] |= bit;
                        hidden.push(f);
                    }
                });
                // Whether a friend was seen before is a coin toss deep in a large network: each
                // one is written after the members and counted only if new, with no branch.
                let friends = graph.listed_friends(u);
                let mut len = members.len();
                members.resize(len + friends.len(), 0);
                for &f in friends {
                    let (word, bit) = (f as usize / 64, 1 << (f % 64));
                    let seen = visited[word];
                    visited[word] = seen | bit;
                    members[len] = f;
                    len += usize::from(seen & bit == 0);
                }
                members.truncate(len);
                for &f in hidden.iter() {
                    visited[f as usize / 64] &= !(1 << (f % 64));
                }
            }
            levels.push(members.len());
            if members.len() == level.end {
                break;
            }
            level = level.end..members.len();
        }
    }

    /// Clears what [`Self::walk`] set: every bit set belongs to the user or a member, so
    /// clearing their words clears them all.
    fn clear_visited(&mut self) {
        for &u in &self.members {
            self.visited[u as usize / 64] = 0;
        }
    }

    /// The baseline of a purchase by `user`: the latest `T` purchases of its network.
    pub fn baseline(
        &mut self,
        graph: &FriendGraph,
        history: &PurchaseHistory,
        user: UserId,
        degree: u32,
    ) -> Baseline {
        self.baseline_before(graph, history, user, degree, u64::MAX)
    }

    /// The baseline of a purchase by `user` at sequence `before`: the latest `T` purchases made
    /// before it by the network that `graph` shows. The check belongs to the current window:
    /// `before` comes after every purchase recorded outside it ([`PurchaseHistory::record`]),
    /// since the query ranks members by their latest such purchase.
    pub fn baseline_before(
        &mut self,
        graph: &impl Friendships,
        history: &PurchaseHistory,
        user: UserId,
        degree: u32,
        before: u64,
    ) -> Baseline {
        self.gather(0, graph, history, user, degree, before);
        self.load(0, history);
        self.merge(0, history, before)
    }

    /// The first stage of [`Self::baseline`] alone: walks `user`'s network and picks the
    /// members whose purchases the merge would read, and returns how many (0 when a scan of
    /// the recent purchases found the baseline, which then took the whole query). For
    /// query-bench, which times a query's ranking apart from its merge.
    pub fn rank(
        &mut self,
        graph: &FriendGraph,
        history: &PurchaseHistory,
        user: UserId,
        degree: u32,
    ) -> usize {
        self.gather(0, graph, history, user, degree, u64::MAX);
        self.picks[0].candidates.len() + self.picks[0].ranked.len()
    }

    /// The baselines of `n` purchases, as [`Self::baseline_before`] gives them one by one:
    /// `query(i)` is purchase `i`'s view of the graph, buyer and sequence number, and
    /// `done(self, i, baseline)` is called for `i = 0, 1, ...` in order.
    ///
    /// A query mostly waits for scattered memory: here up to `IN_FLIGHT` (3) run staggered, so
    /// that while one merges, the histories of the next are arriving and the one after that
    /// walks its network. `done` may run [`Self::social`], but not another baseline query:
    /// that would overwrite a query in flight.
    pub fn baselines<G: Friendships>(
        &mut self,
        history: &PurchaseHistory,
        degree: u32,
        n: usize,
        query: impl Fn(usize) -> (G, UserId, u64),
        mut done: impl FnMut(&mut Self, usize, Baseline),
    ) {
        for step in 0..n + IN_FLIGHT - 1 {
            if step < n {
                let (graph, user, before) = query(step);
                self.gather(step % IN_FLIGHT, &graph, history, user, degree, before);
            }
            if let Some(i) = step.checked_sub(1).filter(|&i| i < n) {
                self.load(i % IN_FLIGHT, history);
            }
            if let Some(i) = step.checked_sub(IN_FLIGHT - 1) {
                let (_, _, before) = query(i);
                let baseline = self.merge(i % IN_FLIGHT, history, before);
                done(self, i, baseline);
            }
        }
    }

    /// First stage of a query: finds the candidates of `user`'s network for a check at
    /// `before` into `slot` and starts loading their histories' headers.
    fn gather(
        &mut self,
        slot: usize,
        graph: &impl Friendships,
        history: &PurchaseHistory,
        user: UserId,
        degree: u32,
        before: u64,
    ) {
        self.walk(graph, user, degree);
        let tracked = history.tracked();
        let scanned = self
            .scan_pays(history)
            .then(|| self.scan(history, user, before));
        #[cfg(test)]
        if let Some(found) = &scanned {
            self.scans[usize::from(found.is_none())] += 1;
        }
        self.clear_visited();
        // Set on every query, so that a slot never keeps a scan of a query that was not merged.
        self.scanned[slot] = scanned.flatten();
        if self.scanned[slot].is_some() {
            // Nothing for the other stages to load or merge.
            self.picks[slot].clear();
            return;
        }
        let mut pick = std::mem::take(&mut self.picks[slot]);
        self.select_candidates(&mut pick, history, tracked, before);
        pick.prefetch_headers(history);
        self.picks[slot] = pick;
    }

    /// Second stage, once the headers have arrived: starts loading the candidates' newest
    /// purchases, and asks again for the ranked candidates' lines, which the first stage asked
    /// for (a prefetch that found the core's miss buffers full may have been dropped).
    fn load(&self, slot: usize, history: &PurchaseHistory) {
        self.picks[slot].prefetch_latest(history);
    }

    /// Last stage: the latest `T` purchases of the candidates in `slot` made before `before`.
    /// No heap: every purchase at or above a bound, then one selection (the purchases are
    /// unique by timestamp and sequence, so "the latest `T`" is one set).
    fn merge(&mut self, slot: usize, history: &PurchaseHistory, before: u64) -> Baseline {
        if let Some(baseline) = self.scanned[slot].take() {
            return baseline;
        }
        let mut baseline = Baseline::default();
        let (gathered, looked) = (&mut self.gathered, &mut self.looked);
        self.picks[slot].latest(gathered, looked, history, before, Some(&mut baseline));
        gathered.iter().for_each(|p| baseline.push(p.cents()));
        baseline
    }

    /// The baselines of a purchase by `user` at sequence `before` for every pair of `grid`:
    /// `out[row * tracked.len() + col]` is the baseline with `D = degrees[row]` and
    /// `T = tracked[col]`; the history keeps at least the largest `T`. One walk to the largest
    /// `D` serves every row (the members within distance `d` are a prefix of the walk's); per
    /// row, the latest purchases of that prefix are gathered once, newest first (from a scan of
    /// the recent purchases when [`Self::scan_pays`] for the row's network, as for a single
    /// query, else ranked and merged), and prefix sums over them give each column's baseline.
    /// Also returns what the buyer reaches at that moment.
    pub fn grid(
        &mut self,
        graph: &impl Friendships,
        history: &PurchaseHistory,
        user: UserId,
        before: u64,
        grid: &Grid,
        out: &mut [Baseline],
    ) -> Reach {
        self.gather_grid(0, graph, history, user, before, grid);
        self.grid_slots[0].prefetch_latest(history);
        self.merge_grid(0, history, before, grid);
        let slot = &self.grid_slots[0];
        out.copy_from_slice(&slot.cells);
        slot.reach
    }

    /// The grid baselines of `n` purchases, as [`Self::grid`] gives them one by one:
    /// `query(i)` is purchase `i`'s view of the graph, buyer and sequence number, and
    /// `done(i, baselines, reach)` is called for `i = 0, 1, ...` in order. Staggered as
    /// [`Self::baselines`]: while one query merges its rows, the histories of the next are
    /// arriving and the one after that walks its network.
    pub fn grids<G: Friendships>(
        &mut self,
        history: &PurchaseHistory,
        grid: &Grid,
        n: usize,
        query: impl Fn(usize) -> (G, UserId, u64),
        mut done: impl FnMut(usize, &[Baseline], Reach),
    ) {
        for step in 0..n + IN_FLIGHT - 1 {
            if step < n {
                let (graph, user, before) = query(step);
                self.gather_grid(step % IN_FLIGHT, &graph, history, user, before, grid);
            }
            if let Some(i) = step.checked_sub(1).filter(|&i| i < n) {
                self.grid_slots[i % IN_FLIGHT].prefetch_latest(history);
            }
            if let Some(i) = step.checked_sub(IN_FLIGHT - 1) {
                let (_, _, before) = query(i);
                self.merge_grid(i % IN_FLIGHT, history, before, grid);
                let slot = &self.grid_slots[i % IN_FLIGHT];
                done(i, &slot.cells, slot.reach);
            }
        }
    }

    /// First stage of a grid query into `slot`: walks `user`'s network to the grid's largest
    /// `D` (2 at least, for the reach); per row, from the largest `D` down, narrows the walk to
    /// the row's network and fills the row's cells from a scan of the recent purchases when
    /// one pays and finds them, else picks the members whose purchases the merge reads and
    /// starts loading their histories' headers.
    fn gather_grid(
        &mut self,
        slot: usize,
        graph: &impl Friendships,
        history: &PurchaseHistory,
        user: UserId,
        before: u64,
        grid: &Grid,
    ) {
        let (degrees, columns) = (&grid.degrees[..], grid.tracked.len());
        let deepest = degrees.last().copied().unwrap_or(1).max(2);
        self.walk(graph, user, deepest);
        let within = |levels: &[usize], d: u32| levels[(d as usize).min(levels.len() - 1)];
        let mut grid_slot = std::mem::take(&mut self.grid_slots[slot]);
        grid_slot.reach = Reach {
            friends: (within(&self.levels, 1) - 1) as u64,
            distance_two: (within(&self.levels, 2) - within(&self.levels, 1)) as u64,
        };
        grid_slot.cells.clear();
        grid_slot.cells.resize(grid.pairs(), Baseline::default());
        grid_slot.rows.resize_with(degrees.len(), Default::default);
        // The rows below the largest `D` are mostly ranked (their networks are small for a
        // scan): start loading their members' recencies while the largest row is found.
        if let [.., below, _] = degrees {
            for &m in &self.members[1..within(&self.levels, *below)] {
                history.prefetch_recency(m);
            }
        }
        for (row, &degree) in degrees.iter().enumerate().rev() {
            // The row's network: the members within `degree`, a prefix of the walk's; the
            // visited bits of the others are cleared, so that they mark it for a scan.
            let within_degree = within(&self.levels, degree);
            for &u in &self.members[within_degree..] {
                self.visited[u as usize / 64] &= !(1 << (u % 64));
            }
            self.members.truncate(within_degree);
            let (pick, scanned) = &mut grid_slot.rows[row];
            *scanned = self.scan_pays(history) && self.scan_latest(history, user, before);
            if *scanned {
                pick.clear();
                let cells = &mut grid_slot.cells[row * columns..(row + 1) * columns];
                fill_cells(cells, &self.gathered, &grid.tracked);
            } else {
                self.select_candidates(pick, history, history.tracked(), before);
                pick.prefetch_headers(history);
            }
        }
        self.clear_visited();
        self.grid_slots[slot] = grid_slot;
    }

    /// Last stage of a grid query in `slot`: the cells of every row that no scan filled, from
    /// the latest purchases of its picked members made before `before`.
    fn merge_grid(&mut self, slot: usize, history: &PurchaseHistory, before: u64, grid: &Grid) {
        let columns = grid.tracked.len();
        let grid_slot = &mut self.grid_slots[slot];
        let (gathered, looked) = (&mut self.gathered, &mut self.looked);
        for (row, (pick, scanned)) in grid_slot.rows.iter().enumerate() {
            if *scanned {
                continue;
            }
            pick.latest(gathered, looked, history, before, None);
            nest_latest(gathered, &grid.tracked);
            let cells = &mut grid_slot.cells[row * columns..(row + 1) * columns];
            fill_cells(cells, gathered, &grid.tracked);
        }
    }

    /// [`Self::scan`] for a grid's row: the latest `tracked` purchases that a check at `before`
    /// by `user` sees of the network marked in `visited`, into `gathered`, newest first.
    /// `false` when the scan reaches the oldest kept purchase first (`gathered` then holds
    /// what it found).
    fn scan_latest(&mut self, history: &PurchaseHistory, user: UserId, before: u64) -> bool {
        let tracked = history.tracked();
        let recent = history.recent();
        let (purchases, buyers) = (recent.purchases(), recent.buyers());
        let (visited, gathered) = (&self.visited[..], &mut self.gathered);
        gathered.clear();
        for (&buyer, &purchase) in buyers.iter().zip(purchases).rev() {
            let member = visited
                .get(buyer as usize / 64)
                .is_some_and(|word| word & (1 << (buyer % 64)) != 0);
            if member && buyer != user && purchase.seq() < before {
                gathered.push(purchase);
                if gathered.len() == tracked {
                    #[cfg(test)]
                    {
                        self.scans[0] += 1;
                    }
                    return true;
                }
            }
        }
        #[cfg(test)]
        {
            self.scans[1] += 1;
        }
        false
    }

    /// Whether scanning the recent purchases of the whole log for the members' is expected to
    /// cost less than ranking the members: a scan reads about `T * buyers / members` entries
    /// (at one entry a nanosecond or so), ranking reads every member's recency at random.
    fn scan_pays(&self, history: &PurchaseHistory) -> bool {
        let tracked = history.tracked();
        let members = self.members.len() - 1;
        tracked <= history.recent().keep() / SCAN_DEPTH
            && members * members * RANK_OVER_SCAN >= tracked * history.buyers()
    }

    /// The baseline of a check at `before` by `user`, whose network is marked in `visited`,
    /// from the recent purchases of the whole log: the first `tracked` purchases made before
    /// the check by members, scanning from the newest down. `None` when the scan reaches the
    /// oldest kept purchase first (then what lies below it is unknown).
    fn scan(&self, history: &PurchaseHistory, user: UserId, before: u64) -> Option<Baseline> {
        let tracked = history.tracked() as u64;
        let recent = history.recent();
        let (purchases, buyers) = (recent.purchases(), recent.buyers());
        let visited = &self.visited[..];
        let mut baseline = Baseline::default();
        for (&buyer, &purchase) in buyers.iter().zip(purchases).rev() {
            let member = visited
                .get(buyer as usize / 64)
                .is_some_and(|word| word & (1 << (buyer % 64)) != 0);
            if member && buyer != user && purchase.seq() < before {
                baseline.push(purchase.cents());
                if baseline.n == tracked {
                    return Some(baseline);
                }
            }
        }
        None
    }

    /// Narrows the members to those who can hold one of the latest `tracked` purchases seen by a
    /// check at `before` into `pick`, with a bound for them (0: none).
    ///
    /// The `tracked`-th highest [`crate::state::history::Recency::latest`] key of the members is the bound: that many
    /// members each made a purchase before the window, seen by every check in it, whose key
    /// reaches it, so the baseline's oldest purchase reaches it too. Members whose key is lower
    /// drop out, unless they bought inside the window before the check (purchases after it are
    /// not seen, so those do not count); such members rank outside the keys, which only lowers
    /// the bound. Keys are packed with the member's position (`key << 24 | position`) so that
    /// the selection compares plain integers; a network of 2^24 members or more, and one whose
    /// members have at most `tracked` keys in all, gets no bound.
    ///
    /// With a bound, the members ranked at or above it go to [`Pick::ranked`] (merged from their
    /// [`Newest`] lines), and those who bought in the window before the check to
    /// [`Pick::candidates`] (merged from their histories); without one, every candidate goes to
    /// [`Pick::candidates`].
    fn select_candidates(
        &mut self,
        pick: &mut Pick,
        history: &PurchaseHistory,
        tracked: usize,
        before: u64,
    ) {
        const POSITION_BITS: u32 = 24;
        const POSITION: u64 = (1 << POSITION_BITS) - 1;
        pick.clear();
        let Pick {
            candidates,
            ranked,
            bound: picked_bound,
        } = pick;
        let keys = &mut self.keys;
        keys.clear();
        let packed = self.members.len() as u64 <= POSITION + 1;
        // The walk's first is the buyer, never a member.
        for (at, &m) in self.members.iter().enumerate().skip(1) {
            let latest = history.recency(m).latest();
            if history.bought_in_window_before(m, before) {
                candidates.push(m);
            } else if latest > 0 {
                if packed {
                    keys.push(latest << POSITION_BITS | at as u64);
                } else {
                    candidates.push(m);
                }
            }
        }
        let member = |key: u64| self.members[(key & POSITION) as usize];
        if keys.len() <= tracked {
            candidates.extend(keys.iter().map(|&key| member(key)));
            return;
        }
        let at = keys.len() - tracked;
        keys.select_nth_unstable(at);
        let bound = keys[at] >> POSITION_BITS;
        let (older, newer) = keys.split_at(at);
        ranked.extend(newer.iter().map(|&key| member(key)));
        // Members whose key ties the bound can still hold a purchase at it.
        ranked.extend(
            older
                .iter()
                .filter(|&&key| key >> POSITION_BITS == bound)
                .map(|&key| member(key)),
        );
        *picked_bound = bound;
    }
}

/// The members whose purchases a query's merge reads (see
/// [`NetworkQuery::select_candidates`]).
#[derive(Default)]
struct Pick {
    /// The members who may hold one of the latest purchases, merged from their histories.
    candidates: Vec<UserId>,
    /// When there is a bound: the members ranked at or above it who did not buy in the window
    /// before the check, merged from their [`Newest`] lines (and their histories only when all
    /// of a line reaches the bound).
    ranked: Vec<UserId>,
    /// A [`crate::state::history::Recency::latest`] key that the oldest purchase of the
    /// baseline reaches; 0 when the network has too few buyers for one.
    bound: u64,
}

impl Pick {
    /// Nothing picked.
    fn clear(&mut self) {
        self.candidates.clear();
        self.ranked.clear();
        self.bound = 0;
    }

    /// Starts loading the picked members' histories' headers and [`Newest`] lines: they are
    /// scattered in memory, and all are asked for at once.
    fn prefetch_headers(&self, history: &PurchaseHistory) {
        for &m in &self.candidates {
            history.prefetch(m, false, false);
        }
        for &m in &self.ranked {
            history.prefetch_newest_line(m);
        }
    }

    /// Once the headers have arrived: starts loading the candidates' newest purchases, and
    /// asks again for the ranked members' lines (a prefetch that found the core's miss buffers
    /// full may have been dropped).
    fn prefetch_latest(&self, history: &PurchaseHistory) {
        for &m in &self.candidates {
            history.prefetch_latest(m, LATEST_AHEAD);
        }
        for &m in &self.ranked {
            history.prefetch_newest_line(m);
        }
    }

    /// The latest `T` purchases of the picked members made before `before`, into
    /// `gathered` in no particular order. When the candidates hold at most `T` purchases in
    /// all and `small` is given, they go straight into `small` instead (`gathered` is left
    /// empty).
    fn latest(
        &self,
        gathered: &mut Vec<Purchase>,
        looked: &mut Vec<usize>,
        history: &PurchaseHistory,
        before: u64,
        mut small: Option<&mut Baseline>,
    ) {
        let tracked = history.tracked();
        let candidates = &self.candidates;
        gathered.clear();
        let bound = self.bound;
        if bound > 0 {
            // The lowest purchase whose latest key reaches the bound (key = timestamp + 1).
            let floor = Purchase::new(Timestamp(bound - 1), 0, 0);
            add_from(
                gathered,
                history,
                candidates,
                std::iter::repeat(0),
                floor,
                before,
            );
            add_ranked(gathered, history, &self.ranked, floor, before);
        } else {
            let total: usize = candidates.iter().map(|&m| history.len_of(m)).sum();
            if total <= tracked {
                for &m in candidates {
                    let (a, b) = history.of(m);
                    let seen = a.iter().chain(b).filter(|p| p.seq() < before);
                    match small.as_deref_mut() {
                        Some(baseline) => seen.for_each(|p| baseline.push(p.cents())),
                        None => gathered.extend(seen),
                    }
                }
                return;
            }
            // Few members have bought (no bound from their latest keys). The `tracked`-th latest
            // of any purchases of the network bounds the baseline's oldest from below. Gather
            // each candidate's latest few (a first round of `each` per candidate is enough for
            // `tracked` in all; when histories run short, further rounds take twice as many
            // more), take the bound from them, then add every older purchase at or above it.
            looked.clear();
            looked.resize(candidates.len(), 0);
            let mut each = tracked.div_ceil(candidates.len());
            loop {
                let mut more = false;
                for (&m, looked) in candidates.iter().zip(looked.iter_mut()) {
                    let mut found = 0;
                    for p in history.newest_first(m).skip(*looked) {
                        if found == each {
                            more = true;
                            break;
                        }
                        *looked += 1;
                        if p.seq() < before {
                            gathered.push(p);
                            found += 1;
                        }
                    }
                }
                if gathered.len() >= tracked || !more {
                    break;
                }
                each *= 2;
            }
            if gathered.len() >= tracked {
                keep_latest(gathered, tracked);
                let floor = gathered
                    .iter()
                    .copied()
                    .min()
                    .expect("at least `tracked` gathered");
                add_from(
                    gathered,
                    history,
                    candidates,
                    looked.iter().copied(),
                    floor,
                    before,
                );
            }
        }
        keep_latest(gathered, tracked);
    }
}

/// Adds to `gathered` the purchases at or above `floor` (above zero) of members ranked at or
/// above it who did not buy in the window before `before`: those of their [`Newest`] line,
/// and only when the whole line reaches `floor`, the older ones from their histories (less
/// the window's, which come after `before`).
fn add_ranked(
    gathered: &mut Vec<Purchase>,
    history: &PurchaseHistory,
    ranked: &[UserId],
    floor: Purchase,
    before: u64,
) {
    let floor = floor.max(Purchase::LOWEST);
    for &m in ranked {
        let Newest(newest) = history.newest(m);
        let reached = newest.iter().take_while(|&&p| p >= floor).count();
        gathered.extend_from_slice(&newest[..reached]);
        if reached == NEWEST {
            // The history holds the line's purchases, and the window's after or among them.
            let oldest = newest[NEWEST - 1];
            gathered.extend(
                history
                    .newest_first(m)
                    .skip_while(|&p| p >= oldest)
                    .take_while(|&p| p >= floor)
                    .filter(|p| p.seq() < before),
            );
        }
    }
}

/// Adds to `gathered` the purchases at or above `floor` that a check at `before` sees, of each
/// candidate from its `skip`-th newest purchase on (newest first, stopping at the first below).
fn add_from(
    gathered: &mut Vec<Purchase>,
    history: &PurchaseHistory,
    candidates: &[UserId],
    skip: impl Iterator<Item = usize>,
    floor: Purchase,
    before: u64,
) {
    for (&m, skip) in candidates.iter().zip(skip) {
        for p in history.newest_first(m).skip(skip) {
            if p < floor {
                break;
            }
            if p.seq() < before {
                gathered.push(p);
            }
        }
    }
}

/// A grid query in flight (see [`NetworkQuery::grids`]).
#[derive(Default)]
struct GridSlot {
    /// Per row of the grid: the members its merge reads, and whether a scan filled its cells
    /// instead.
    rows: Vec<(Pick, bool)>,
    /// The baselines, as [`NetworkQuery::grid`] gives them.
    cells: Vec<Baseline>,
    /// What the buyer reaches.
    reach: Reach,
}

impl GridSlot {
    /// The second stage of a grid query: [`Pick::prefetch_latest`] for every row that no scan
    /// filled.
    fn prefetch_latest(&self, history: &PurchaseHistory) {
        for (pick, scanned) in &self.rows {
            if !scanned {
                pick.prefetch_latest(history);
            }
        }
    }
}

/// Orders `purchases` so that for every `T` of `tracked` (ascending), the first `T` are the
/// latest `T` (in no particular order among themselves): one selection per `T`, from the
/// largest down, each within the one before; no full sort.
fn nest_latest(purchases: &mut [Purchase], tracked: &[u32]) {
    let mut upto = purchases.len();
    for &t in tracked.iter().rev() {
        let t = t as usize;
        if t < upto {
            purchases[..upto].select_nth_unstable_by(t, |a, b| b.cmp(a));
            upto = t;
        }
    }
}

/// A row's cells from its latest purchases, nested (see [`nest_latest`]; newest first is):
/// the cell of `T = tracked[col]` gets the first `T` of them (all when fewer).
fn fill_cells(cells: &mut [Baseline], latest: &[Purchase], tracked: &[u32]) {
    let mut baseline = Baseline::default();
    let mut taken = 0;
    for (cell, &t) in cells.iter_mut().zip(tracked) {
        let upto = (t as usize).min(latest.len());
        for p in &latest[taken.min(upto)..upto] {
            baseline.push(p.cents());
        }
        taken = taken.max(upto);
        *cell = baseline;
    }
}

/// Keeps the latest `tracked` of `gathered`, in no particular order.
fn keep_latest(gathered: &mut Vec<Purchase>, tracked: usize) {
    if gathered.len() > tracked {
        gathered.select_nth_unstable_by(tracked - 1, |a, b| b.cmp(a));
        gathered.truncate(tracked);
    }
}

/// The pairs of parameters a sweep checks every purchase with: every `D` of `degrees` with
/// every `T` of `tracked`, both ascending and distinct, `D >= 1`, `T >= 2`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grid {
    pub degrees: Vec<u32>,
    pub tracked: Vec<u32>,
}

impl Grid {
    /// How many pairs.
    pub fn pairs(&self) -> usize {
        self.degrees.len() * self.tracked.len()
    }
}

/// How many users a buyer reaches at a moment: friends, and users at distance exactly 2 (the
/// friends of friends who are not friends, whom recommendations go to).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reach {
    pub friends: u64,
    pub distance_two: u64,
}

/// The buyer's friends and the friends of friends who are not friends yet, with the number
/// of friends they share with the buyer: for the feed and for recommendations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Social {
    pub friends: Vec<UserId>,
    /// Users at distance exactly 2 with their number of mutual friends.
    pub suggest: Vec<(UserId, u32)>,
}

impl NetworkQuery {
    /// The buyer's friends and friends of friends, as `graph` shows them.
    pub fn social(&mut self, graph: &impl Friendships, buyer: UserId) -> Social {
        let mut friends = Vec::new();
        graph.for_each_friend(buyer, &mut self.skip, |f| friends.push(f));
        let mut mutual: hashbrown::HashMap<UserId, u32> = hashbrown::HashMap::new();
        for &f in &friends {
            graph.for_each_friend(f, &mut self.skip, |g| {
                if g != buyer {
                    *mutual.entry(g).or_default() += 1;
                }
            });
        }
        for f in &friends {
            mutual.remove(f);
        }
        Social {
            friends,
            suggest: mutual.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event::Timestamp;

    fn sorted(mut v: Vec<UserId>) -> Vec<UserId> {
        v.sort_unstable();
        v
    }

    #[test]
    fn members_are_within_degree_and_exclude_the_user() {
        // 0 - 1 - 2 - 3, and a cycle 0 - 4 - 5 - 0.
        let mut g = FriendGraph::new();
        for (a, b) in [(0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 0)] {
            g.befriend(a, b);
        }
        let mut q = NetworkQuery::new();
        assert_eq!(sorted(q.members(&g, 0, 1).to_vec()), vec![1, 4, 5]);
        assert_eq!(sorted(q.members(&g, 0, 2).to_vec()), vec![1, 2, 4, 5]);
        assert_eq!(sorted(q.members(&g, 0, 3).to_vec()), vec![1, 2, 3, 4, 5]);
        assert_eq!(
            sorted(q.members(&g, 0, u32::MAX).to_vec()),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(sorted(q.members(&g, 3, 2).to_vec()), vec![1, 2]);
        assert!(q.members(&g, 9, 3).is_empty(), "unknown user");
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

    #[test]
    fn staggered_queries_give_the_baselines_of_queries_one_by_one() {
        let mut below = xorshift(0x9E37_79B9_7F4A_7C15);
        let mut g = FriendGraph::new();
        for _ in 0..400 {
            g.befriend(below(120) as UserId, below(120) as UserId);
        }
        let mut h = PurchaseHistory::new(4);
        // Checks run inside an open window: they see every purchase from before it, and the
        // window's own purchases before them.
        for seq in 0..2_000 {
            let (user, purchase) = (
                below(130) as UserId,
                Purchase::new(Timestamp(below(500)), seq, 1 + below(10_000)),
            );
            if seq < 1_500 {
                h.record(user, purchase);
            } else {
                h.record_in_window(user, purchase);
            }
        }
        let mut one = NetworkQuery::new();
        let mut staggered = NetworkQuery::new();
        for n in 0..12 {
            for degree in 1..=3 {
                let queries: Vec<(UserId, u64)> = (0..n)
                    .map(|_| (below(135) as UserId, 1_500 + below(600)))
                    .collect();
                let expected: Vec<Baseline> = queries
                    .iter()
                    .map(|&(u, before)| one.baseline_before(&g, &h, u, degree, before))
                    .collect();
                let mut got = Vec::new();
                staggered.baselines(
                    &h,
                    degree,
                    n,
                    |i| (&g, queries[i].0, queries[i].1),
                    |_, i, baseline| got.push((i, baseline)),
                );
                let expected: Vec<_> = expected.into_iter().enumerate().collect();
                assert_eq!(got, expected, "{n} queries at D={degree}");
                assert!(
                    n < 3 || expected.iter().any(|(_, b)| b.n == 4),
                    "merges ran"
                );
            }
        }
    }

    #[test]
    fn merged_baselines_are_the_latest_t_purchases_of_the_members() {
        let mut below = xorshift(0x2545_F491_4F6C_DD1D);
        let mut q = NetworkQuery::new();
        let mut merged = 0;
        for round in 0..60 {
            let users = 10 + below(60);
            let tracked = [2, 3, 5, 8][round % 4];
            let mut g = FriendGraph::new();
            for _ in 0..below(3 * users) {
                g.befriend(below(users) as UserId, below(users) as UserId);
            }
            // The recent purchases keep from the fewest that scans are tried with (scans reach
            // the oldest and give way to ranking) to all.
            let keep = [SCAN_DEPTH, SCAN_DEPTH + 4, 40, 1 << 16][round / 4 % 4] * tracked as usize;
            let mut h = PurchaseHistory::keeping_recent(tracked, keep);
            // Few distinct timestamps: ties are broken by sequence. Every third round they
            // straddle 2^38 s (in year 8711; 9999-12-31 is below 2^39), so the keys a query
            // packs use their top bit. Purchases of an open window stay beyond `tracked`, for
            // `before` to cut.
            let (batch, window) = (below(400), below(200));
            let first = if round % 3 == 1 { (1 << 38) - 20 } else { 0 };
            for seq in 0..batch + window {
                let (user, cents) = (below(users) as UserId, 1 + below(1_000));
                let purchase = Purchase::new(Timestamp(first + below(40)), seq, cents);
                if seq < batch {
                    h.record(user, purchase);
                } else {
                    h.record_in_window(user, purchase);
                }
            }
            for _ in 0..20 {
                let (user, degree) = (below(users) as UserId, 1 + below(3) as u32);
                // A check inside the window sees every purchase from before it.
                let before = batch + below(window + 1);
                let mut expected: Vec<Purchase> = Vec::new();
                for &m in q.members(&g, user, degree) {
                    let (a, b) = h.of(m);
                    expected.extend(a.iter().chain(b).filter(|p| p.seq() < before));
                }
                expected.sort_unstable_by(|a, b| b.cmp(a));
                merged += usize::from(expected.len() > tracked as usize);
                expected.truncate(tracked as usize);
                let expected = Baseline::from_amounts(expected.iter().map(|p| p.cents()));
                let got = q.baseline_before(&g, &h, user, degree, before);
                assert_eq!(got, expected, "round {round}, user {user}, D={degree}");
            }
        }
        assert!(merged > 300, "most queries merge: {merged}");
        let [found, fell_back] = q.scans;
        assert!(
            found > 300 && fell_back > 30,
            "scans: {found} found, {fell_back} fell back"
        );
    }

    #[test]
    fn grid_baselines_are_the_latest_t_purchases_of_each_network() {
        let mut below = xorshift(0x6A09_E667_F3BC_C909);
        let mut one = NetworkQuery::new();
        let mut staggered = NetworkQuery::new();
        let mut merged = 0;
        for round in 0..96 {
            let users = 10 + below(60);
            let grid = Grid {
                degrees: [vec![1, 2, 3], vec![2], vec![1, 4], vec![3]][round % 4].clone(),
                tracked: [vec![2, 5, 8], vec![3], vec![2, 3, 4, 9]][round % 3].clone(),
            };
            let largest = *grid.tracked.last().unwrap();
            let mut g = FriendGraph::new();
            for _ in 0..below(3 * users) {
                g.befriend(below(users) as UserId, below(users) as UserId);
            }
            // From the fewest recent purchases that scans are tried with (they reach the oldest
            // and give way to ranking) to all.
            let keep = [SCAN_DEPTH, SCAN_DEPTH + 4, 40, 1 << 16][round / 3 % 4] * largest as usize;
            let mut h = PurchaseHistory::keeping_recent(largest, keep);
            let (batch, window) = (below(400), below(200));
            for seq in 0..batch + window {
                let (user, cents) = (below(users) as UserId, 1 + below(1_000));
                let purchase = Purchase::new(Timestamp(below(40)), seq, cents);
                if seq < batch {
                    h.record(user, purchase);
                } else {
                    h.record_in_window(user, purchase);
                }
            }
            let queries: Vec<(UserId, u64)> = (0..1 + below(12))
                .map(|_| (below(users + 2) as UserId, batch + below(window + 1)))
                .collect();
            let mut expected = Vec::new();
            for &(user, before) in &queries {
                let mut cells = vec![Baseline::default(); grid.pairs()];
                let reach = one.grid(&g, &h, user, before, &grid, &mut cells);
                let mut want = Vec::new();
                for &degree in &grid.degrees {
                    let mut latest: Vec<Purchase> = Vec::new();
                    for &m in one.members(&g, user, degree) {
                        let (a, b) = h.of(m);
                        latest.extend(a.iter().chain(b).filter(|p| p.seq() < before));
                    }
                    latest.sort_unstable_by(|a, b| b.cmp(a));
                    merged += usize::from(latest.len() > largest as usize);
                    for &t in &grid.tracked {
                        let amounts = latest.iter().take(t as usize).map(|p| p.cents());
                        want.push(Baseline::from_amounts(amounts));
                    }
                }
                assert_eq!(cells, want, "round {round}, user {user}, {grid:?}");
                let friends = one.members(&g, user, 1).len() as u64;
                let distance_two = one.members(&g, user, 2).len() as u64 - friends;
                assert_eq!((reach.friends, reach.distance_two), (friends, distance_two));
                expected.push((cells, reach));
            }
            let mut got = Vec::new();
            staggered.grids(
                &h,
                &grid,
                queries.len(),
                |i| (&g, queries[i].0, queries[i].1),
                |i, cells, reach| got.push((i, cells.to_vec(), reach)),
            );
            let expected: Vec<_> = expected
                .into_iter()
                .enumerate()
                .map(|(i, (cells, reach))| (i, cells, reach))
                .collect();
            assert_eq!(got, expected, "round {round}: staggered");
        }
        assert!(merged > 600, "most rows merge: {merged}");
        let [found, fell_back] = one.scans;
        assert!(
            found > 200 && fell_back > 15,
            "scans: {found} found, {fell_back} fell back"
        );
    }

    #[test]
    fn a_ranked_members_older_purchases_count_beyond_its_newest_line() {
        // User 0's friends 1..=7. Friend 1 bought ten times lately, the others once, earlier:
        // the baseline is friend 1's six newest, deeper than its line of four.
        let mut g = FriendGraph::new();
        for f in 1..=7 {
            g.befriend(0, f);
        }
        let mut h = PurchaseHistory::new(6);
        let mut seq = 1;
        let mut buy = |h: &mut PurchaseHistory, user, ts, cents, in_window: bool| {
            let p = Purchase::new(Timestamp(ts), seq, cents);
            seq += 1;
            if in_window {
                h.record_in_window(user, p);
            } else {
                h.record(user, p);
            }
            p.seq()
        };
        for (k, f) in (2..=7).enumerate() {
            buy(&mut h, f, 50 + k as u64, 1, false);
        }
        for ts in 100..110 {
            buy(&mut h, 1, ts, ts, false);
        }
        // Inside the window, after the check: not seen, however it ranks.
        let later = buy(&mut h, 1, 105, 9_999, true);
        let mut q = NetworkQuery::new();
        let expected = Baseline::from_amounts(104..110);
        assert_eq!(q.baseline_before(&g, &h, 0, 1, later), expected);
        assert_eq!(q.baseline_before(&g, &h, 0, 2, later), expected);
    }

    #[test]
    fn ranking_picks_the_members_whose_purchases_the_merge_reads() {
        // User 0's friends 1..=6 bought once each, friend 6 last. With T = 2, the merge reads
        // friends 6 and 5 only, unless a scan of the recent purchases finds the baseline first.
        let mut g = FriendGraph::new();
        for f in 1..=6 {
            g.befriend(0, f);
        }
        for (keep, expected) in [(0, 2), (1 << 16, 0)] {
            let mut h = PurchaseHistory::keeping_recent(2, keep);
            for f in 1..=6 {
                h.record(
                    f,
                    Purchase::new(Timestamp(10 + u64::from(f)), f.into(), 100),
                );
            }
            h.rank_all();
            let mut q = NetworkQuery::new();
            assert_eq!(q.rank(&g, &h, 0, 1), expected, "keeping {keep}");
            assert_eq!(q.baseline(&g, &h, 0, 1), Baseline::from_amounts([100, 100]));
            assert_eq!(q.rank(&g, &h, 7, 1), 0, "no network");
        }
    }

    #[test]
    fn baseline_takes_the_latest_t_across_members() {
        let mut g = FriendGraph::new();
        g.befriend(0, 1);
        g.befriend(0, 2);
        let mut h = PurchaseHistory::new(3);
        let buy = |h: &mut PurchaseHistory, user, ts, seq, cents| {
            h.record(user, Purchase::new(Timestamp(ts), seq, cents))
        };
        buy(&mut h, 1, 10, 0, 100);
        buy(&mut h, 2, 10, 1, 200);
        buy(&mut h, 1, 5, 2, 400); // older timestamp, later in the file: not latest
        buy(&mut h, 2, 12, 3, 800);
        buy(&mut h, 0, 99, 4, 1600); // the buyer's own purchase never counts
        let mut q = NetworkQuery::new();
        let b = q.baseline(&g, &h, 0, 1);
        assert_eq!(b, Baseline::from_amounts([100, 200, 800]));
        // Fewer purchases than T: all of them.
        let b = q.baseline(&g, &h, 1, 1);
        assert_eq!(b, Baseline::from_amounts([1600]));
    }
}
