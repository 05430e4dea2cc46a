//! The latest purchases of the whole log with their buyers, oldest first: a query over a large
//! network scans them from the newest for its members' purchases, instead of ranking every
//! member by recency (the query stage, `query/network.rs`, chooses which).

use crate::state::history::Purchase;
use crate::state::snapshot::{In, Out, SnapshotError, inconsistent};
use crate::state::users::UserId;
use std::io::{self, Write};

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

impl RecentPurchases {
    /// Purchases kept by default (1.3 to 2.6 MB).
    pub const KEEP: usize = crate::config::RECENT_KEPT;

    /// Keeping `keep` purchases ([`Self::KEEP`] by default; tests use a few).
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
        if self
            .purchases
            .last()
            .is_none_or(|&newest| newest < purchase)
        {
            self.purchases.push(purchase);
            self.buyers.push(buyer);
        } else {
            if self.purchases.len() >= self.keep && purchase < self.purchases[0] {
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

    /// Starts again from every user's kept purchases (`each(user)` lists them newest first;
    /// `buyers` users have some): the latest [`Self::keep`] of them.
    pub fn rebuild<I>(&mut self, users: usize, buyers: usize, each: impl Fn(UserId) -> I)
    where
        I: Iterator<Item = Purchase>,
    {
        let keep = self.keep;
        // A first floor: the `keep`-th latest of every user's few newest purchases (enough of
        // them for `keep` in all). That many purchases reach it, so the latest `keep` do too.
        let few = keep.div_ceil(buyers.max(1));
        let mut floor = Purchase::ZERO;
        let mut firsts: Vec<Purchase> = (0..users as UserId)
            .flat_map(|user| each(user).take(few))
            .collect();
        if firsts.len() > keep {
            let at = firsts.len() - keep;
            floor = *firsts.select_nth_unstable(at).1;
        }
        drop(firsts);
        // Every purchase at or above the floor; when they pile up, only the latest `keep`,
        // and the floor rises to the oldest of them.
        let mut latest: Vec<(Purchase, UserId)> = Vec::new();
        for user in 0..users as UserId {
            for purchase in each(user) {
                if purchase < floor {
                    // The user's older purchases are older still.
                    break;
                }
                latest.push((purchase, user));
            }
            if latest.len() >= 4 * keep {
                floor = keep_latest(&mut latest, keep);
            }
        }
        keep_latest(&mut latest, keep);
        latest.sort_unstable();
        self.purchases.clear();
        self.buyers.clear();
        for (purchase, buyer) in latest {
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

impl RecentPurchases {
    /// Bytes of [`Self::save`]'s part of a snapshot.
    pub(crate) fn snapshot_len(&self) -> u64 {
        8 + 20 * self.purchases.len() as u64
    }

    /// Writes how many purchases are kept (`u64`), the purchases (`u128`), their buyers
    /// (`u32`).
    pub(crate) fn save(&self, out: &mut Out<'_, impl Write>) -> io::Result<()> {
        out.u64(self.purchases.len() as u64)?;
        out.purchases(&self.purchases)?;
        out.u32s(&self.buyers)
    }

    /// Reads what [`Self::save`] wrote, keeping `keep`, for `users` users, before sequence
    /// number `next_seq`: fewer than `2 * keep` purchases, in increasing order, each bought by
    /// a user.
    pub(crate) fn restore(
        input: &mut In<'_>,
        users: usize,
        keep: usize,
        next_seq: u64,
    ) -> Result<RecentPurchases, SnapshotError> {
        let mut recent = RecentPurchases::keeping(keep);
        let count = input.u64()?;
        if count >= (recent.keep as u64).saturating_mul(2) {
            return inconsistent(format!("{count} recent purchases, keeping {keep}"));
        }
        let purchases = input.u128s(count)?;
        let buyers = input.u32s(count)?;
        recent.purchases.reserve_exact(purchases.len());
        for bits in purchases {
            let purchase = Purchase::from_bits(bits, next_seq)?;
            if recent
                .purchases
                .last()
                .is_some_and(|&last| last >= purchase)
            {
                return inconsistent("the recent purchases are not in order");
            }
            recent.purchases.push(purchase);
        }
        recent.buyers = buyers.collect();
        if let Some(buyer) = recent.buyers.iter().find(|&&b| b as usize >= users) {
            return inconsistent(format!("a recent purchase by user {buyer} of {users}"));
        }
        Ok(recent)
    }
}

/// Keeps the latest `keep` of `latest` (in no order) and returns the oldest of them.
fn keep_latest(latest: &mut Vec<(Purchase, UserId)>, keep: usize) -> Purchase {
    if latest.len() > keep {
        let at = latest.len() - keep;
        latest.select_nth_unstable(at);
        latest.drain(..at);
    }
    latest
        .iter()
        .map(|&(p, _)| p)
        .min()
        .unwrap_or(Purchase::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event::Timestamp;

    fn p(timestamp: u64, seq: u64) -> Purchase {
        Purchase::new(Timestamp(timestamp), seq, 1)
    }

    #[test]
    fn purchases_stay_sorted_and_the_floor_rises_only_past_dropped_ones() {
        let mut recent = RecentPurchases::keeping(RecentPurchases::KEEP);
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
        // across users, sequence numbers do not. Many users with few purchases each, and few
        // with many (one of whom bought most lately), keeping from a few to many.
        for (users, per_user, keep) in [
            (30_000_u32, 5_u64, RecentPurchases::KEEP),
            (30_000, 5, 7),
            (3, 400, 100),
            (3, 400, 2_000),
        ] {
            let of = |u: UserId| {
                (0..per_user).rev().map(move |k| {
                    let late = if u == 1 { 500_000 } else { 0 };
                    p(u64::from(u) + 1_000 * k + late, u64::from(u) * per_user + k)
                })
            };
            let mut recent = RecentPurchases::keeping(keep);
            recent.rebuild(users as usize, users as usize, of);
            let mut expected: Vec<(Purchase, UserId)> = (0..users)
                .flat_map(|u| of(u).map(move |q| (q, u)))
                .collect();
            expected.sort_unstable();
            let expected = expected.split_off(expected.len().saturating_sub(keep));
            let got: Vec<_> = recent
                .purchases()
                .iter()
                .copied()
                .zip(recent.buyers().iter().copied())
                .collect();
            assert_eq!(
                got, expected,
                "{users} users, {per_user} each, keeping {keep}"
            );
        }
    }
}
