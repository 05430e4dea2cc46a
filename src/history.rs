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

/// The latest `tracked` purchases of every user, oldest first.
pub struct PurchaseHistory {
    tracked: usize,
    by_user: Vec<VecDeque<Purchase>>,
}

impl PurchaseHistory {
    pub fn new(tracked: u32) -> Self {
        PurchaseHistory {
            tracked: tracked as usize,
            by_user: Vec::new(),
        }
    }

    pub fn tracked(&self) -> usize {
        self.tracked
    }

    /// Records a purchase, keeping only the user's latest `tracked`.
    pub fn record(&mut self, user: UserId, purchase: Purchase) {
        let u = user as usize;
        if self.by_user.len() <= u {
            self.by_user.resize_with(u + 1, VecDeque::new);
        }
        let list = &mut self.by_user[u];
        if list.len() == self.tracked && list.front().is_some_and(|oldest| purchase < *oldest) {
            return;
        }
        if list.back().is_none_or(|newest| *newest < purchase) {
            list.push_back(purchase);
        } else {
            let at = list.partition_point(|p| *p < purchase);
            list.insert(at, purchase);
        }
        if list.len() > self.tracked {
            list.pop_front();
        }
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
}
