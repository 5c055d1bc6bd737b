//! Money as integer points, with every arithmetic step checked for overflow.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// An amount of points. Never a float; every operation that could overflow is checked.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Points(pub i64);

impl Points {
    /// Zero points.
    pub const ZERO: Points = Points(0);

    /// The raw integer.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// `self + other`, or an `invalid_request` error on overflow.
    pub fn checked_add(self, other: Points) -> Result<Points, Error> {
        self.0
            .checked_add(other.0)
            .map(Points)
            .ok_or_else(|| Error::invalid("amount overflows"))
    }

    /// `self - other`, or an `invalid_request` error on overflow.
    pub fn checked_sub(self, other: Points) -> Result<Points, Error> {
        self.0
            .checked_sub(other.0)
            .map(Points)
            .ok_or_else(|| Error::invalid("amount overflows"))
    }

    /// The sum of several amounts, or an `invalid_request` error on overflow.
    pub fn checked_sum<I: IntoIterator<Item = Points>>(items: I) -> Result<Points, Error> {
        items
            .into_iter()
            .try_fold(Points::ZERO, |acc, p| acc.checked_add(p))
    }

    /// Whether the amount is greater than zero.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }
}

impl fmt::Display for Points {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_is_an_invalid_request_not_a_wrap() {
        let err = Points(i64::MAX).checked_add(Points(1)).unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::InvalidRequest);
        let err = Points(i64::MIN).checked_sub(Points(1)).unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::InvalidRequest);
        assert!(Points::checked_sum([Points(i64::MAX), Points(1)]).is_err());
        assert_eq!(
            Points::checked_sum([Points(2), Points(3)]).ok(),
            Some(Points(5))
        );
    }
}
