//! Per-user purchase history: each user's latest `T` purchases, ordered by (timestamp, sequence).
//! A purchase outside its buyer's latest `T` can never be among a network's latest `T`.

use std::collections::VecDeque;

use crate::event::Timestamp;
use crate::users::UserId;

/// One recorded purchase. Ordered by timestamp, then by position in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Purchase {
    pub timestamp: Timestamp,
    /// Global sequence number: the line's position in the input (batch before stream).
    pub seq: u64,
    pub cents: u64,
}

impl Purchase {
    /// The purchase's place in time as one integer: timestamp, then sequence. Never 0.
    #[inline]
    pub fn key(&self) -> u128 {
        (u128::from(self.timestamp.0) << 64) | u128::from(self.seq) | 1 << 127
    }
}

/// The latest `tracked` purchases of every user, oldest first.
pub struct PurchaseHistory {
    tracked: usize,
    by_user: Vec<VecDeque<Purchase>>,
    /// `latest[u]` is the key of `u`'s latest purchase as of the current window's start (0: none),
    /// in a dense array so that a query can rank its members without touching their histories.
    latest: Vec<u128>,
    /// `fresh[u]`: `u` bought something in the current window.
    fresh: Vec<bool>,
}

impl PurchaseHistory {
    pub fn new(tracked: u32) -> Self {
        PurchaseHistory {
            tracked: tracked as usize,
            by_user: Vec::new(),
            latest: Vec::new(),
            fresh: Vec::new(),
        }
    }

    pub fn tracked(&self) -> usize {
        self.tracked
    }

    /// Records a purchase, keeping only the user's latest `tracked`.
    pub fn record(&mut self, user: UserId, purchase: Purchase) {
        let tracked = self.tracked;
        let list = self.list_mut(user);
        if list.len() == tracked && list.front().is_some_and(|oldest| purchase < *oldest) {
            return;
        }
        insert_sorted(list, purchase);
        if list.len() > tracked {
            list.pop_front();
        }
        let latest = &mut self.latest[user as usize];
        *latest = (*latest).max(purchase.key());
    }

    /// Records a purchase made inside a window, dropping none: the window's queries may still
    /// need what it pushes out, and they rank members by their latest purchase before the
    /// window. Returns true for the user's first purchase of the window: [`Self::close_window`]
    /// must then be called for the user when the window closes.
    pub fn record_in_window(&mut self, user: UserId, purchase: Purchase) -> bool {
        insert_sorted(self.list_mut(user), purchase);
        !std::mem::replace(&mut self.fresh[user as usize], true)
    }

    /// Ends the window for a user who bought in it: keeps the latest `tracked` purchases.
    pub fn close_window(&mut self, user: UserId) {
        let tracked = self.tracked;
        let list = self.list_mut(user);
        let excess = list.len().saturating_sub(tracked);
        list.drain(..excess);
        let latest = list.back().map_or(0, Purchase::key);
        self.latest[user as usize] = latest;
        self.fresh[user as usize] = false;
    }

    fn list_mut(&mut self, user: UserId) -> &mut VecDeque<Purchase> {
        let u = user as usize;
        if self.by_user.len() <= u {
            let len = (u + 1).next_power_of_two();
            self.by_user.resize_with(len, VecDeque::new);
            self.latest.resize(len, 0);
            self.fresh.resize(len, false);
        }
        &mut self.by_user[u]
    }

    /// Key of the user's latest purchase before the current window (0: none).
    #[inline]
    pub fn latest_key(&self, user: UserId) -> u128 {
        self.latest.get(user as usize).copied().unwrap_or(0)
    }

    /// Whether the user bought something in the current window.
    #[inline]
    pub fn is_fresh(&self, user: UserId) -> bool {
        self.fresh.get(user as usize).copied().unwrap_or(false)
    }

    /// A user's kept purchases, oldest first, as the two slices of the ring buffer.
    pub fn of(&self, user: UserId) -> (&[Purchase], &[Purchase]) {
        self.by_user
            .get(user as usize)
            .map_or((&[], &[]), |list| list.as_slices())
    }

    pub fn len_of(&self, user: UserId) -> usize {
        self.by_user.get(user as usize).map_or(0, VecDeque::len)
    }

    /// The `k`-th latest kept purchase of a user (`k = 0` is the latest).
    pub fn nth_latest(&self, user: UserId, k: usize) -> Option<Purchase> {
        let list = self.by_user.get(user as usize)?;
        list.len().checked_sub(k + 1).map(|at| list[at])
    }

    /// The latest purchase of a user below position `below` (oldest first) that was made before
    /// sequence `before`, with its position.
    #[inline]
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
            .find(|(_, p)| p.seq < before)
    }

    /// Number of users who have bought something, and purchases kept in all.
    pub fn size(&self) -> (usize, usize) {
        let buyers = self.by_user.iter().filter(|l| !l.is_empty()).count();
        (buyers, self.by_user.iter().map(VecDeque::len).sum())
    }
}

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
        Purchase {
            timestamp: Timestamp(timestamp),
            seq,
            cents: 100 * seq,
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
            a.iter().chain(b).map(|x| (x.timestamp.0, x.seq)).collect()
        };
        assert_eq!(kept, vec![(5, 3), (9, 2), (9, 5)]);
        assert_eq!(h.nth_latest(7, 0).map(|x| x.seq), Some(5));
        assert_eq!(h.nth_latest(7, 2).map(|x| x.seq), Some(3));
        assert_eq!(h.nth_latest(7, 3), None);
        assert_eq!(h.len_of(3), 0);
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
        assert!(h.is_fresh(1));
        assert_eq!(
            h.latest_key(1),
            p(3, 0).key(),
            "the latest before the window"
        );
        assert_eq!(h.len_of(1), 4, "nothing dropped inside the window");
        let before = |below, seq| h.latest_before(1, below, seq).map(|(_, x)| x.seq);
        assert_eq!(before(usize::MAX, 2), Some(0));
        assert_eq!(before(3, 3), Some(2));
        assert_eq!(before(2, 2), Some(1));
        assert_eq!(before(1, 3), None);
        assert_eq!(before(usize::MAX, 4), Some(0), "timestamp 3 is the latest");
        h.close_window(1);
        assert!(!h.is_fresh(1));
        let kept: Vec<_> = (0..2)
            .filter_map(|k| h.nth_latest(1, k))
            .map(|x| x.seq)
            .collect();
        assert_eq!(kept, vec![0, 2]);
        assert_eq!(h.len_of(1), 2);
        assert_eq!(h.latest_key(1), p(3, 0).key());
    }
}
