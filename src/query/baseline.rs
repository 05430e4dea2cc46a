//! Exact statistics of a baseline in integer cents: mean, population standard deviation
//! and the anomaly decision, as the spec's "Exactness" paragraph defines them.

/// Count, sum and sum of squares of the amounts (in cents) of a baseline.
///
/// ```
/// let baseline = anomaly_detect::Baseline::from_amounts([1683, 5928, 1120]);
/// assert_eq!((baseline.mean_cents(), baseline.sd_cents()), (2910, 2146));
/// assert!(baseline.is_anomalous(160183));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Baseline {
    /// How many purchases (at most `T`).
    pub n: u64,
    /// Their sum, in cents.
    pub sum: u128,
    /// The sum of their squares, in cents squared.
    pub sum_sq: u128,
}

impl Baseline {
    /// Adds a purchase of `cents`.
    pub fn push(&mut self, cents: u64) {
        self.n += 1;
        self.sum += u128::from(cents);
        self.sum_sq += u128::from(cents) * u128::from(cents);
    }

    /// The baseline of these amounts, in cents.
    pub fn from_amounts(cents: impl IntoIterator<Item = u64>) -> Self {
        let mut b = Baseline::default();
        cents.into_iter().for_each(|c| b.push(c));
        b
    }

    /// `N*Q - S*S`: `N^2` times the variance, exact.
    fn spread(&self) -> u128 {
        u128::from(self.n) * self.sum_sq - self.sum * self.sum
    }

    /// `floor(S / N)`.
    pub fn mean_cents(&self) -> u128 {
        self.sum / u128::from(self.n.max(1))
    }

    /// `floor(isqrt(N*Q - S*S) / N)`, the population standard deviation truncated to cents.
    pub fn sd_cents(&self) -> u128 {
        self.spread().isqrt() / u128::from(self.n.max(1))
    }

    /// Whether `cents > mean + 3 sd` exactly; never for a baseline of fewer than 2 purchases.
    pub fn is_anomalous(&self, cents: u64) -> bool {
        if self.n < 2 {
            return false;
        }
        let excess = i128::from(self.n) * i128::from(cents) - self.sum as i128;
        excess > 0 && (excess as u128) * (excess as u128) > 9 * self.spread()
    }
}

/// Writes cents as dollars truncated to two decimals: `346` → `3.46`.
pub fn write_dollars(out: &mut Vec<u8>, cents: u128) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{}.{:02}", cents / 100, cents % 100);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dollars(cents: u128) -> String {
        let mut out = Vec::new();
        write_dollars(&mut out, cents);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn official_example() {
        let b = Baseline::from_amounts([1683, 5928, 1120]);
        assert_eq!(dollars(b.mean_cents()), "29.10");
        assert_eq!(dollars(b.sd_cents()), "21.46");
        assert!(b.is_anomalous(160_183));
    }

    #[test]
    fn mean_and_sd_are_truncated_not_rounded() {
        // 1, 2, 2 cents... in dollars: 3.46666 must print 3.46.
        let b = Baseline::from_amounts([300, 300, 440]);
        assert_eq!(dollars(b.mean_cents()), "3.46");
        // sd = sqrt(((-46.67)^2*2 + 93.33^2)/3) = 65.99..., truncated.
        assert_eq!(dollars(b.sd_cents()), "0.65");
        let flat = Baseline::from_amounts([500, 500]);
        assert_eq!(dollars(flat.mean_cents()), "5.00");
        assert_eq!(dollars(flat.sd_cents()), "0.00");
    }

    #[test]
    fn threshold_is_strict() {
        // mean 20.00, sd 10.00: the threshold is exactly 50.00.
        let b = Baseline::from_amounts([1000, 3000]);
        assert_eq!((b.mean_cents(), b.sd_cents()), (2000, 1000));
        assert!(!b.is_anomalous(5000));
        assert!(b.is_anomalous(5001));
        // Equal amounts: sd 0, anything above the mean is anomalous, the mean itself is not.
        let flat = Baseline::from_amounts([700, 700, 700]);
        assert!(!flat.is_anomalous(700));
        assert!(flat.is_anomalous(701));
    }

    #[test]
    fn population_not_sample_deviation() {
        // Population sd of [0, 200] is 100 cents; the sample sd would be 141.
        let b = Baseline::from_amounts([0, 200]);
        assert_eq!(b.sd_cents(), 100);
        assert!(b.is_anomalous(401));
        assert!(!b.is_anomalous(400));
    }

    #[test]
    fn fewer_than_two_never_flags() {
        assert!(!Baseline::default().is_anomalous(u64::MAX / 4));
        assert!(!Baseline::from_amounts([1]).is_anomalous(100_000_000_000));
    }

    #[test]
    fn largest_quantities_fit() {
        // T = 10^7 purchases at the maximum amount, one at zero.
        let max = 100_000_000_000u64;
        let b = Baseline {
            n: 10_000_000,
            sum: u128::from(max) * 9_999_999,
            sum_sq: u128::from(max) * u128::from(max) * 9_999_999,
        };
        assert_eq!(b.mean_cents(), 99_999_990_000);
        assert!(!b.is_anomalous(max));
        let _ = b.sd_cents();
    }
}
