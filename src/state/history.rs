//! Per-user purchase history: each user's latest `T` purchases, ordered by (timestamp, sequence).
//! A purchase outside its buyer's latest `T` can never be among a network's latest `T`.

use std::collections::VecDeque;

use crate::ingest::event::{MAX_CENTS, Timestamp};
use crate::state::recent::RecentPurchases;
use crate::state::snapshot::{In, Out, SnapshotError, inconsistent};
use crate::state::users::UserId;
use std::io::{self, Write};

/// One recorded purchase, packed into 16 bytes (four to a cache line): timestamp, sequence
/// number and cents in one `u128`, most significant first, so that purchases compare by
/// timestamp, then by position in the input (sequence numbers are unique).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Purchase(u128);

const _: () = assert!(Purchase::SEQ_LIMIT == crate::ingest::chunks::SEQ_LIMIT);

impl Purchase {
    /// Bits of the cents: [`MAX_CENTS`] is below 2^37.
    const CENTS_BITS: u32 = 37;
    /// Bits of the sequence number: 4.5 * 10^15 lines.
    const SEQ_BITS: u32 = 52;
    /// Sequence numbers are below this: a run ends with an error before it gets there (the
    /// chunk source numbers lines below [`crate::ingest::chunks::SEQ_LIMIT`], the same).
    pub const SEQ_LIMIT: u64 = 1 << Self::SEQ_BITS;

    /// Packs a purchase. Timestamps come from [`Timestamp::parse`] (below 2^39), cents from
    /// [`crate::ingest::event::parse_cents`] (at most [`MAX_CENTS`]), and `seq` is below
    /// [`Self::SEQ_LIMIT`].
    #[inline]
    pub fn new(timestamp: Timestamp, seq: u64, cents: u64) -> Self {
        debug_assert!(timestamp.0 < 1 << (128 - Self::SEQ_BITS - Self::CENTS_BITS));
        debug_assert!(seq < Self::SEQ_LIMIT && cents <= MAX_CENTS);
        Purchase(
            (u128::from(timestamp.0) << (Self::SEQ_BITS + Self::CENTS_BITS))
                | (u128::from(seq) << Self::CENTS_BITS)
                | u128::from(cents),
        )
    }

    #[inline]
    pub fn timestamp(self) -> Timestamp {
        Timestamp((self.0 >> (Self::SEQ_BITS + Self::CENTS_BITS)) as u64)
    }

    /// Global sequence number: the line's position in the input (batch before stream).
    #[inline]
    pub fn seq(self) -> u64 {
        (self.0 >> Self::CENTS_BITS) as u64 & (Self::SEQ_LIMIT - 1)
    }

    /// Below every real purchase (no line has sequence number 0: the parameter line comes
    /// first).
    pub const ZERO: Purchase = Purchase(0);

    /// The least value above [`Self::ZERO`]: a floor that zero padding never reaches.
    pub const LOWEST: Purchase = Purchase(1);

    #[inline]
    pub fn cents(self) -> u64 {
        self.0 as u64 & ((1 << Self::CENTS_BITS) - 1)
    }

    /// The packed bits, as a snapshot holds them.
    pub(crate) fn bits(self) -> u128 {
        self.0
    }

    /// The purchase packed in `bits` (read from a snapshot), if it could be a line's before
    /// sequence number `next_seq`: amount at most [`MAX_CENTS`], sequence number from 1.
    pub(crate) fn from_bits(bits: u128, next_seq: u64) -> Result<Purchase, SnapshotError> {
        let purchase = Purchase(bits);
        if purchase.cents() > MAX_CENTS || !(1..next_seq).contains(&purchase.seq()) {
            return inconsistent(format!(
                "a purchase of {} cents at sequence number {} (the next is {next_seq})",
                purchase.cents(),
                purchase.seq()
            ));
        }
        Ok(purchase)
    }
}

/// A user's latest purchase time before the current window, and whether they bought inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recency(u64);

impl Recency {
    const FRESH: u64 = 1;

    fn of(timestamp: Timestamp) -> u64 {
        (timestamp.0 + 1) << 1
    }

    /// Orders users by the timestamp of their latest purchase before the window; 0: none.
    #[inline]
    pub fn latest(self) -> u64 {
        self.0 >> 1
    }

    /// Whether the user bought something inside the current window.
    #[inline]
    pub fn is_fresh(self) -> bool {
        self.0 & Self::FRESH != 0
    }
}

/// How many buyers ahead [`PurchaseHistory::close_windows`] starts loading a buyer's state.
const CLOSE_AHEAD: usize = 16;

/// Purchases in a [`Newest`] line.
pub const NEWEST: usize = 4;

/// A user's newest kept purchases before the current window, newest first, in one cache line
/// ([`Purchase::ZERO`] where the user has fewer): a query takes a candidate's purchases from
/// here, and reads the history only when the baseline reaches deeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(align(64))]
pub struct Newest(pub [Purchase; NEWEST]);

impl Newest {
    const NONE: Newest = Newest([Purchase::ZERO; NEWEST]);

    fn of(list: &VecDeque<Purchase>) -> Newest {
        let mut newest = list.iter().rev();
        Newest(std::array::from_fn(|_| {
            newest.next().copied().unwrap_or(Purchase::ZERO)
        }))
    }
}

/// The latest `tracked` purchases of every user, oldest first.
pub struct PurchaseHistory {
    tracked: usize,
    by_user: Vec<VecDeque<Purchase>>,
    /// `recency[u]` packs, in one dense array so that a query can rank its members without
    /// touching their histories: the timestamp of `u`'s latest purchase before the current
    /// window, plus one (0: none), shifted left by one; and in the low bit, whether `u` bought
    /// something inside the current window.
    recency: Vec<u64>,
    /// For users who bought inside the current window: the sequence number of their first
    /// purchase in it.
    first_in_window: Vec<u64>,
    /// `newest[u]`: `u`'s newest purchases before the current window (kept with `recency`).
    newest: Vec<Newest>,
    /// The latest purchases of all users (set by [`Self::rank_all`], then kept up to date).
    recent: RecentPurchases,
    /// Users with at least one purchase.
    buyers: usize,
}

impl PurchaseHistory {
    pub fn new(tracked: u32) -> Self {
        Self::keeping_recent(tracked, RecentPurchases::KEEP)
    }

    /// A history whose [`RecentPurchases`] keep `keep` purchases (tests use a few).
    pub fn keeping_recent(tracked: u32, keep: usize) -> Self {
        PurchaseHistory {
            tracked: tracked as usize,
            by_user: Vec::new(),
            recency: Vec::new(),
            first_in_window: Vec::new(),
            newest: Vec::new(),
            recent: RecentPurchases::keeping(keep),
            buyers: 0,
        }
    }

    pub fn tracked(&self) -> usize {
        self.tracked
    }

    /// Records a purchase, keeping only the user's latest `tracked`.
    pub fn record(&mut self, user: UserId, purchase: Purchase) {
        self.record_unranked(user, purchase);
        self.recent.record(user, purchase);
        let u = user as usize;
        let recency = &mut self.recency[u];
        *recency = (*recency).max(Recency::of(purchase.timestamp()));
        self.newest[u] = Newest::of(&self.by_user[u]);
    }

    /// Records a purchase of the batch like [`Self::record`], but leaves the user's recency
    /// and the recent purchases as they were (one cache line less per purchase):
    /// [`Self::rank_all`] must run before any query.
    #[inline]
    pub fn record_unranked(&mut self, user: UserId, purchase: Purchase) {
        let tracked = self.tracked;
        let list = self.list_for_purchase(user);
        if list.len() == tracked && list.front().is_some_and(|oldest| purchase < *oldest) {
            return;
        }
        if list.len() == list.capacity() && list.len() <= tracked {
            // Grow eightfold (8, 64, 512 slots: fewer copies and fewer freed blocks than by
            // doubling), but stop at room for `tracked` and the one about to be pushed out (a
            // full list of T = 50 takes 8, then 51 slots, not 64).
            let room = (8 * list.len()).max(8).min(tracked + 1);
            list.reserve_exact(room - list.len());
        }
        insert_sorted(list, purchase);
        if list.len() > tracked {
            list.pop_front();
        }
    }

    /// Sets every user's recency from their kept purchases (after [`Self::record_unranked`]),
    /// and the recent purchases.
    pub fn rank_all(&mut self) {
        let by_user = &self.by_user;
        self.recent.rebuild(by_user.len(), self.buyers, |u| {
            by_user[u as usize].iter().rev().copied()
        });
        for ((list, recency), newest) in self
            .by_user
            .iter()
            .zip(&mut self.recency)
            .zip(&mut self.newest)
        {
            *recency = list.back().map_or(0, |p| Recency::of(p.timestamp()));
            *newest = Newest::of(list);
        }
    }

    /// Records a purchase made inside a window, dropping none: the window's queries may still
    /// need what it pushes out, and they rank members by their latest purchase before the
    /// window. Returns true for the user's first purchase of the window: [`Self::close_window`]
    /// must then be called for the user when the window closes.
    pub fn record_in_window(&mut self, user: UserId, purchase: Purchase) -> bool {
        insert_sorted(self.list_for_purchase(user), purchase);
        self.recent.record(user, purchase);
        let recency = &mut self.recency[user as usize];
        let first = *recency & Recency::FRESH == 0;
        *recency |= Recency::FRESH;
        if first {
            self.first_in_window[user as usize] = purchase.seq();
        }
        first
    }

    /// Ends the window for a user who bought in it: keeps the latest `tracked` purchases.
    pub fn close_window(&mut self, user: UserId) {
        let tracked = self.tracked;
        let list = self.list_mut(user);
        let excess = list.len().saturating_sub(tracked);
        list.drain(..excess);
        let latest = list.back().map_or(0, |p| Recency::of(p.timestamp()));
        let newest = Newest::of(list);
        self.recency[user as usize] = latest;
        self.newest[user as usize] = newest;
    }

    /// Ends the window for every user who bought in it, as [`Self::close_window`] does one by
    /// one, loading each one's state ahead: its list's header 16 users ahead, and
    /// half as far ahead, once the header has arrived, its newest purchases, recency and
    /// [`Newest`] line. The buyers' states are scattered; without this every one is a miss.
    pub fn close_windows(&mut self, users: &[UserId]) {
        for (i, &user) in users.iter().enumerate() {
            if let Some(&later) = users.get(i + CLOSE_AHEAD) {
                self.prefetch(later, false, false);
            }
            if let Some(&soon) = users.get(i + CLOSE_AHEAD / 2) {
                self.prefetch_latest(soon, NEWEST);
                self.prefetch(soon, true, true);
                self.prefetch_newest_line(soon);
            }
            self.close_window(user);
        }
    }

    /// The list a purchase of `user` goes into; a user's first purchase counts it as a buyer.
    fn list_for_purchase(&mut self, user: UserId) -> &mut VecDeque<Purchase> {
        self.grow(user);
        let list = &mut self.by_user[user as usize];
        self.buyers += usize::from(list.is_empty());
        list
    }

    fn list_mut(&mut self, user: UserId) -> &mut VecDeque<Purchase> {
        self.grow(user);
        &mut self.by_user[user as usize]
    }

    /// Makes room for `user` in the per-user arrays.
    fn grow(&mut self, user: UserId) {
        let u = user as usize;
        if self.by_user.len() <= u {
            let len = (u + 1).next_power_of_two();
            self.by_user.resize_with(len, VecDeque::new);
            self.recency.resize(len, 0);
            self.first_in_window.resize(len, 0);
            self.newest.resize(len, Newest::NONE);
        }
    }

    /// Starts loading what [`Self::record`] will touch for `user`: the list's header, or with
    /// `deep` (once the header has arrived) its newest entries and, with `ranked`, the
    /// user's recency.
    #[inline]
    pub fn prefetch(&self, user: UserId, deep: bool, ranked: bool) {
        let u = user as usize;
        if let Some(list) = self.by_user.get(u) {
            if !deep {
                crate::state::prefetch::prefetch(list);
            } else if let Some(newest) = list.back() {
                crate::state::prefetch::prefetch(newest);
                if ranked {
                    crate::state::prefetch::prefetch(&self.recency[u]);
                }
            }
        }
    }

    /// Starts loading a user's recency (what ranking the user reads first, see
    /// [`Self::recency`]).
    #[inline]
    pub fn prefetch_recency(&self, user: UserId) {
        if let Some(recency) = self.recency.get(user as usize) {
            crate::state::prefetch::prefetch(recency);
        }
    }

    /// Starts loading a user's newest `k` kept purchases, once the list's header has arrived
    /// (see [`Self::prefetch`]): a query reads the newest and the merge then walks back from
    /// it, and a walk that must wait for each older slot cannot overlap with the others.
    #[inline]
    pub fn prefetch_latest(&self, user: UserId, k: usize) {
        if let Some(list) = self.by_user.get(user as usize) {
            // One prefetch per cache line (every fourth slot) and one for the deepest: slots are
            // 16-byte aligned, so none straddles two lines (a ring that wraps breaks the stride:
            // that only costs a later miss).
            let deepest = k.min(list.len());
            if deepest > 0 {
                for back in (1..deepest).step_by(PER_LINE).chain([deepest]) {
                    crate::state::prefetch::prefetch(&list[list.len() - back]);
                }
            }
        }
    }

    /// The user's newest purchases before the current window.
    #[inline]
    pub fn newest(&self, user: UserId) -> Newest {
        self.newest
            .get(user as usize)
            .copied()
            .unwrap_or(Newest::NONE)
    }

    /// Starts loading the user's [`Newest`] line.
    #[inline]
    pub fn prefetch_newest_line(&self, user: UserId) {
        if let Some(newest) = self.newest.get(user as usize) {
            crate::state::prefetch::prefetch(newest);
        }
    }

    /// The latest purchases of all users.
    #[inline]
    pub fn recent(&self) -> &RecentPurchases {
        &self.recent
    }

    /// How many users have bought something.
    #[inline]
    pub fn buyers(&self) -> usize {
        self.buyers
    }

    /// When the user last bought before the current window, and whether they bought inside it.
    #[inline]
    pub fn recency(&self, user: UserId) -> Recency {
        Recency(self.recency.get(user as usize).copied().unwrap_or(0))
    }

    /// Whether the user bought inside the current window before sequence `before` (then its
    /// [`Recency::latest`] does not bound what a check at `before` sees of it).
    #[inline]
    pub fn bought_in_window_before(&self, user: UserId, before: u64) -> bool {
        self.recency(user).is_fresh() && self.first_in_window[user as usize] < before
    }

    /// A user's kept purchases, oldest first, as the two slices of the ring buffer.
    pub fn of(&self, user: UserId) -> (&[Purchase], &[Purchase]) {
        self.by_user
            .get(user as usize)
            .map_or((&[], &[]), |list| list.as_slices())
    }

    /// A user's kept purchases, newest first.
    #[inline]
    pub fn newest_first(&self, user: UserId) -> impl Iterator<Item = Purchase> + '_ {
        let (older, newer) = self.of(user);
        newer.iter().rev().chain(older.iter().rev()).copied()
    }

    pub fn len_of(&self, user: UserId) -> usize {
        self.by_user.get(user as usize).map_or(0, VecDeque::len)
    }

    /// The `k`-th latest kept purchase of a user (`k = 0` is the latest).
    #[cfg(test)]
    pub fn nth_latest(&self, user: UserId, k: usize) -> Option<Purchase> {
        let list = self.by_user.get(user as usize)?;
        list.len().checked_sub(k + 1).map(|at| list[at])
    }

    /// The latest purchase of a user below position `below` (oldest first) that was made before
    /// sequence `before`, with its position.
    #[cfg(test)]
    pub fn latest_before(
        &self,
        user: UserId,
        below: usize,
        before: u64,
    ) -> Option<(usize, Purchase)> {
        let list = self.by_user.get(user as usize)?;
        (0..below.min(list.len()))
            .rev()
            .map(|at| (at, list[at]))
            .find(|(_, p)| p.seq() < before)
    }
}

impl PurchaseHistory {
    /// Whether some user bought inside the current window (then no snapshot is taken).
    pub(crate) fn in_window(&self) -> bool {
        self.recency.iter().any(|&r| r & Recency::FRESH != 0)
    }

    /// Bytes of [`Self::save`]'s part of a snapshot of `users` users.
    pub(crate) fn snapshot_len(&self, users: usize) -> u64 {
        let kept: usize = (0..users as UserId).map(|u| self.len_of(u)).sum();
        4 * users as u64 + 16 * kept as u64
    }

    /// Writes the kept purchases of users `0..users`: how many each has (`u32`), then each
    /// one's, oldest first (`u128`). Recency and newest purchases follow from them; the
    /// recent purchases are a section of their own ([`RecentPurchases::save`]).
    pub(crate) fn save(&self, out: &mut Out<'_, impl Write>, users: usize) -> io::Result<()> {
        for user in 0..users as UserId {
            // At most `T`, below 2^32, between windows.
            out.u32(self.len_of(user) as u32)?;
        }
        for user in 0..users as UserId {
            let (older, newer) = self.of(user);
            out.purchases(older)?;
            out.purchases(newer)?;
        }
        Ok(())
    }

    /// Reads what [`Self::save`] and [`RecentPurchases::save`] wrote for `users` users, with
    /// `tracked` and `keep` as saved, before sequence number `next_seq`. Each list holds at
    /// most `tracked` purchases in increasing order; every kept purchase at or above the
    /// oldest recent one is among the recent ones, with its buyer.
    pub(crate) fn restore(
        histories: &mut In<'_>,
        recent: &mut In<'_>,
        users: usize,
        tracked: u32,
        keep: usize,
        next_seq: u64,
    ) -> Result<PurchaseHistory, SnapshotError> {
        let lengths = histories.u32s(users as u64)?;
        let total: u64 = lengths.clone().map(u64::from).sum();
        let mut purchases = histories.u128s(total)?;
        let mut history = PurchaseHistory::keeping_recent(tracked, keep);
        let tracked = tracked as usize;
        history.by_user.reserve_exact(users);
        history.recency.reserve_exact(users);
        history.newest.reserve_exact(users);
        history.first_in_window = vec![0; users];
        for (user, len) in lengths.enumerate() {
            let len = len as usize;
            if len > tracked {
                return inconsistent(format!("user {user} has {len} purchases, above T"));
            }
            // The capacity `record_unranked` grows a list to: 8, 64, 512, ... up to `T + 1`.
            let mut room = 8;
            while room < len {
                room *= 8;
            }
            let mut list =
                VecDeque::with_capacity(if len == 0 { 0 } else { room.min(tracked + 1) });
            for bits in purchases.by_ref().take(len) {
                let purchase = Purchase::from_bits(bits, next_seq)?;
                if list.back().is_some_and(|&last| last >= purchase) {
                    return inconsistent(format!("the purchases of user {user} are not in order"));
                }
                list.push_back(purchase);
            }
            history.buyers += usize::from(!list.is_empty());
            history
                .recency
                .push(list.back().map_or(0, |p| Recency::of(p.timestamp())));
            history.newest.push(Newest::of(&list));
            history.by_user.push(list);
        }
        history.recent = RecentPurchases::restore(recent, users, keep, next_seq)?;
        let (kept, buyers) = (history.recent.purchases(), history.recent.buyers());
        let floor = kept.first().copied().unwrap_or(Purchase::LOWEST);
        for (user, list) in history.by_user.iter().enumerate() {
            for &purchase in list.iter().rev().take_while(|&&p| p >= floor) {
                let found = kept.binary_search(&purchase).ok();
                if found.is_none_or(|at| buyers[at] as usize != user) {
                    return inconsistent(format!(
                        "a purchase of user {user} missing from the recent purchases"
                    ));
                }
            }
        }
        Ok(history)
    }
}

/// Purchases per 64-byte cache line.
const PER_LINE: usize = 64 / std::mem::size_of::<Purchase>();

fn insert_sorted(list: &mut VecDeque<Purchase>, purchase: Purchase) {
    if list.back().is_none_or(|newest| *newest < purchase) {
        list.push_back(purchase);
    } else {
        let at = list.partition_point(|p| *p < purchase);
        list.insert(at, purchase);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(timestamp: u64, seq: u64) -> Purchase {
        Purchase::new(Timestamp(timestamp), seq, 100 * seq)
    }

    #[test]
    fn packed_purchases_keep_their_fields_and_order() {
        let latest = Timestamp::parse(b"9999-12-31 23:59:59").expect("valid");
        let fields = [
            (Timestamp(0), 0, 0),
            (Timestamp(0), 0, MAX_CENTS),
            (Timestamp(0), 1, 0),
            (Timestamp(0), Purchase::SEQ_LIMIT - 1, MAX_CENTS),
            (Timestamp(1), 0, 0),
            (latest, 0, 7),
            (latest, 12_345_678_901, 1),
            (latest, Purchase::SEQ_LIMIT - 1, MAX_CENTS),
        ];
        for &(timestamp, seq, cents) in &fields {
            let p = Purchase::new(timestamp, seq, cents);
            assert_eq!((p.timestamp(), p.seq(), p.cents()), (timestamp, seq, cents));
        }
        for &a in &fields {
            for &b in &fields {
                let (pa, pb) = (Purchase::new(a.0, a.1, a.2), Purchase::new(b.0, b.1, b.2));
                assert_eq!(pa.cmp(&pb), a.cmp(&b), "{a:?} against {b:?}");
            }
        }
    }

    #[test]
    fn keeps_the_latest_t_by_timestamp_then_sequence() {
        let mut h = PurchaseHistory::new(3);
        for (ts, seq) in [(5, 0), (1, 1), (9, 2), (5, 3), (0, 4), (9, 5)] {
            h.record(7, p(ts, seq));
        }
        let kept: Vec<_> = {
            let (a, b) = h.of(7);
            a.iter()
                .chain(b)
                .map(|x| (x.timestamp().0, x.seq()))
                .collect()
        };
        assert_eq!(kept, vec![(5, 3), (9, 2), (9, 5)]);
        assert_eq!(h.nth_latest(7, 0).map(|x| x.seq()), Some(5));
        assert_eq!(h.nth_latest(7, 2).map(|x| x.seq()), Some(3));
        assert_eq!(h.nth_latest(7, 3), None);
        assert_eq!(h.len_of(3), 0);
    }

    #[test]
    fn a_full_history_takes_t_plus_one_slots() {
        for tracked in [2, 3, 50, 64, 100] {
            let mut h = PurchaseHistory::new(tracked);
            for seq in 0..3 * u64::from(tracked) {
                h.record(1, p(seq, seq));
            }
            assert_eq!(h.len_of(1), tracked as usize);
            assert_eq!(
                h.by_user[1].capacity(),
                tracked as usize + 1,
                "T = {tracked}"
            );
        }
    }

    #[test]
    fn window_records_are_trimmed_when_the_window_closes() {
        let mut h = PurchaseHistory::new(2);
        h.record(1, p(3, 0));
        assert!(
            h.record_in_window(1, p(1, 1)),
            "first purchase of the window"
        );
        assert!(!h.record_in_window(1, p(2, 2)));
        assert!(!h.record_in_window(1, p(0, 3)));
        assert!(h.recency(1).is_fresh());
        assert_eq!(
            h.recency(1).latest(),
            4,
            "timestamp 3, the latest before the window"
        );
        assert_eq!(h.len_of(1), 4, "nothing dropped inside the window");
        let before = |below, seq| h.latest_before(1, below, seq).map(|(_, x)| x.seq());
        assert_eq!(before(usize::MAX, 2), Some(0));
        assert_eq!(before(3, 3), Some(2));
        assert_eq!(before(2, 2), Some(1));
        assert_eq!(before(1, 3), None);
        assert_eq!(before(usize::MAX, 4), Some(0), "timestamp 3 is the latest");
        h.close_window(1);
        assert!(!h.recency(1).is_fresh());
        let kept: Vec<_> = (0..2)
            .filter_map(|k| h.nth_latest(1, k))
            .map(|x| x.seq())
            .collect();
        assert_eq!(kept, vec![0, 2]);
        assert_eq!(h.len_of(1), 2);
        assert_eq!(h.recency(1).latest(), 4);
    }
}
