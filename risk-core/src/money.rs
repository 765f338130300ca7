//! Money in integer minor units and rates in basis points.
//!
//! Amounts never pass through floating point at rest or on the wire; `f64` appears only in
//! ratios and feature vectors.

use serde::{Deserialize, Serialize};

/// An amount in minor units (paise for INR).
pub type Minor = i64;

/// Basis points in one whole (100%).
pub const BPS_PER_UNIT: i64 = 10_000;

/// `amount × bps / 10,000`, rounded half away from zero, computed in 128-bit integers.
pub fn apply_bps(amount: Minor, bps: i64) -> Minor {
    div_round(
        i128::from(amount) * i128::from(bps),
        i128::from(BPS_PER_UNIT),
    )
}

/// `numerator / denominator` rounded half away from zero, saturating at the `i64` range.
pub fn div_round(numerator: i128, denominator: i128) -> Minor {
    if denominator == 0 {
        return 0;
    }
    let (n, d) = if denominator < 0 {
        (-numerator, -denominator)
    } else {
        (numerator, denominator)
    };
    let q = if n >= 0 {
        (n + d / 2) / d
    } else {
        -((-n + d / 2) / d)
    };
    i64::try_from(q).unwrap_or(if q > 0 { i64::MAX } else { i64::MIN })
}

/// A rate outside `0..=RateBps::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interest rate {0} bps is outside 0..=10000")]
pub struct RateOutOfRange(pub i32);

/// An annual interest rate in basis points (`950` = 9.50% p.a.).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RateBps(i32);

impl RateBps {
    /// Highest rate accepted: 100% p.a. Anything above is a data error, not a loan.
    pub const MAX: i32 = 10_000;

    /// Parse a rate in basis points; negative or above [`RateBps::MAX`] is refused.
    pub fn parse(bps: i32) -> Result<Self, RateOutOfRange> {
        if (0..=Self::MAX).contains(&bps) {
            Ok(Self(bps))
        } else {
            Err(RateOutOfRange(bps))
        }
    }

    /// A rate clamped into `0..=MAX` (for derived figures; validation uses [`RateBps::parse`]).
    pub fn clamped(bps: i32) -> Self {
        Self(bps.clamp(0, Self::MAX))
    }

    /// The rate in basis points.
    pub fn bps(self) -> i32 {
        self.0
    }

    /// Monthly rate as a fraction (`annual / 12`), for the annuity formula only.
    pub fn monthly_fraction(self) -> f64 {
        f64::from(self.0) / 10_000.0 / 12.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -3);
        assert_eq!(div_round(4, 3), 1);
        assert_eq!(apply_bps(1_000_000, 40), 4_000);
        assert_eq!(apply_bps(333, 5_000), 167);
    }

    #[test]
    fn a_rate_outside_the_plausible_range_is_refused() {
        assert!(RateBps::parse(-1).is_err());
        assert!(RateBps::parse(10_001).is_err());
        assert_eq!(RateBps::parse(950).map(RateBps::bps), Ok(950));
    }
}
