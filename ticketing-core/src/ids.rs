//! Newtype identifiers, so a seat id can never be passed where a user id is meant.

use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! int_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The raw integer.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                Self(id)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = ParseIntError;

            /// The decimal integer, as [`Display`](fmt::Display) writes it.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered (UUID v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            /// A UUID in any form [`Uuid::parse_str`] reads (the hyphenated form
            /// [`Display`](fmt::Display) writes, among others).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

int_id!(
    /// A concert (one artist, one venue, several dated options).
    ConcertId
);
int_id!(
    /// A show option: one dated performance of a concert.
    OptionId
);
int_id!(
    /// A seat of one show option.
    SeatId
);
int_id!(
    /// A buyer.
    UserId
);
uuid_id!(
    /// A reservation: one hold of one or more seats, later confirmed, cancelled or expired.
    ReservationId
);
uuid_id!(
    /// A payment that confirmed a reservation.
    PaymentId
);
uuid_id!(
    /// A domain event; consumers de-duplicate by it.
    EventId
);

/// A fencing token handed out by a [`crate::LockManager`]: strictly increasing, so a store can
/// refuse a write from a holder whose lease was lost to a newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FencingToken(pub u64);

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u64> for FencingToken {
    fn from(token: u64) -> Self {
        Self(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_what_they_display() {
        let seat = SeatId(42);
        assert_eq!(seat.to_string().parse::<SeatId>(), Ok(seat));
        assert_eq!(SeatId::from(42), seat);
        assert_eq!(i64::from(seat), 42);
        assert!("4x2".parse::<SeatId>().is_err());
        assert!("".parse::<UserId>().is_err());
        let r = ReservationId::new();
        assert_eq!(r.to_string().parse::<ReservationId>().ok(), Some(r));
        assert_eq!(Uuid::from(r), r.0);
        assert!("not-a-uuid".parse::<ReservationId>().is_err());
    }
}
