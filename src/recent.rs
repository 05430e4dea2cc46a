//! The latest purchases of the whole log with their buyers, oldest first: a query over a large
//! network scans them from the newest for its members' purchases, instead of ranking every
//! member by recency (see [`crate::network`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::history::Purchase;
use crate::users::UserId;

/// The purchases at or above a floor, ordered by (timestamp, sequence), with their buyers.
///
/// Every purchase recorded at or above the floor is here: a purchase below it is left out, and
/// the floor only rises past purchases that are dropped. A scan from the newest down therefore
/// sees, in order, every purchase of the log down to the floor (one that some user's history
/// has already dropped may be among them: it is older than that user's latest `T`, so a
/// baseline never reaches it before finding `T` newer ones of that user).
pub struct RecentPurchases {
    purchases: Vec<Purchase>,
    buyers: Vec<UserId>,
    /// Purchases kept: between this many and twice as many once that many have arrived.
    keep: usize,
}

impl Default for RecentPurchases {
    fn default() -> Self {
        Self::keeping(Self::KEEP)
    }
}

impl RecentPurchases {
    /// Purchases kept by default (1.3 to 2.6 MB).
    pub const KEEP: usize = 1 << 16;

    pub fn new() -> Self {
        Self::default()
    }

    /// Keeping `keep` purchases instead of [`Self::KEEP`] (tests use a few).
    pub fn keeping(keep: usize) -> Self {
        RecentPurchases {
            purchases: Vec::new(),
            buyers: Vec::new(),
            keep: keep.max(1),
        }
    }

    /// Purchases kept at least, once that many have arrived.
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// Adds a purchase. Purchases mostly arrive in order, so one is usually appended; an older
    /// one is inserted in place, and once the floor has risen one below it is left out.
    #[inline]
    pub fn record(&mut self, buyer: UserId, purchase: Purchase) {
        let len = self.purchases.len();
        if self
            .purchases
            .last()
            .is_none_or(|&newest| newest < purchase)
        {
            self.purchases.push(purchase);
            self.buyers.push(buyer);
        } else {
            if len >= self.keep && purchase < self.purchases[0] {
                return;
            }
            let at = self.purchases.partition_point(|&p| p < purchase);
            self.purchases.insert(at, purchase);
            self.buyers.insert(at, buyer);
        }
        if self.purchases.len() >= 2 * self.keep {
            let drop = self.purchases.len() - self.keep;
            self.purchases.drain(..drop);
            self.buyers.drain(..drop);
        }
    }

    /// Starts again from every user's kept purchases (`each(user)` lists them newest first):
    /// the latest [`Self::keep`] of them.
    pub fn rebuild<'a, I>(&mut self, users: usize, each: impl Fn(UserId) -> I)
    where
        I: Iterator<Item = Purchase> + 'a,
    {
        let keep = self.keep;
        let mut latest: BinaryHeap<Reverse<(Purchase, UserId)>> = BinaryHeap::with_capacity(keep);
        for user in 0..users as UserId {
            for purchase in each(user) {
                if latest.len() == keep {
                    let Reverse((oldest, _)) = *latest.peek().expect("full");
                    if purchase < oldest {
                        // The user's older purchases are older still.
                        break;
                    }
                    latest.pop();
                }
                latest.push(Reverse((purchase, user)));
            }
        }
        self.purchases.clear();
        self.buyers.clear();
        // Ascending order of `Reverse` is newest first.
        for Reverse((purchase, buyer)) in latest.into_sorted_vec().into_iter().rev() {
            self.purchases.push(purchase);
            self.buyers.push(buyer);
        }
    }

    /// The kept purchases, oldest first.
    #[inline]
    pub fn purchases(&self) -> &[Purchase] {
        &self.purchases
    }

    /// `buyers()[i]` made `purchases()[i]`.
    #[inline]
    pub fn buyers(&self) -> &[UserId] {
        &self.buyers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Timestamp;

    fn p(timestamp: u64, seq: u64) -> Purchase {
        Purchase::new(Timestamp(timestamp), seq, 1)
    }

    #[test]
    fn purchases_stay_sorted_and_the_floor_rises_only_past_dropped_ones() {
        let mut recent = RecentPurchases::new();
        let mut all = Vec::new();
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        for seq in 1..=(5 * RecentPurchases::KEEP as u64 / 2) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly in order, one in eight up to 300 s earlier, one in 64 far earlier.
            let t = 1_000_000 + seq / 2;
            let t = match x % 64 {
                0 => x % 1_000,
                1..=8 => t - x % 300,
                _ => t,
            };
            let buyer = (x >> 32) as UserId % 1_000;
            recent.record(buyer, p(t, seq));
            all.push((p(t, seq), buyer));
        }
        let kept = recent.purchases();
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "sorted");
        assert!(kept.len() >= RecentPurchases::KEEP && kept.len() < 2 * RecentPurchases::KEEP);
        // Everything at or above the floor, and nothing else, with its buyer.
        all.sort_unstable();
        let floor = kept[0];
        let expected: Vec<_> = all.into_iter().filter(|&(q, _)| q >= floor).collect();
        let got: Vec<_> = kept
            .iter()
            .copied()
            .zip(recent.buyers().iter().copied())
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_rebuild_keeps_the_latest_of_every_users_purchases() {
        // User u bought at times u, u + 1000, u + 2000, ... (`per_user` of them); times repeat
        // across users, sequence numbers do not.
        let (users, per_user) = (30_000_u32, 5_u64);
        let of = |u: UserId| {
            (0..per_user)
                .rev()
                .map(move |k| p(u64::from(u) + 1_000 * k, u64::from(u) * per_user + k))
        };
        let mut recent = RecentPurchases::new();
        recent.rebuild(users as usize, of);
        let mut expected: Vec<(Purchase, UserId)> = (0..users)
            .flat_map(|u| of(u).map(move |q| (q, u)))
            .collect();
        expected.sort_unstable();
        let expected = expected.split_off(expected.len() - RecentPurchases::KEEP);
        let got: Vec<_> = recent
            .purchases()
            .iter()
            .copied()
            .zip(recent.buyers().iter().copied())
            .collect();
        assert_eq!(got, expected);
    }
}
