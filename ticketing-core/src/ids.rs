//! Newtype identifiers, so a seat id can never be passed where a user id is meant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A text that is not an id of the kind asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind}: {text:?}")]
pub struct ParseIdError {
    kind: &'static str,
    text: String,
}

impl ParseIdError {
    fn new(kind: &'static str, text: &str) -> Self {
        Self {
            kind,
            // Enough to recognise it in a message; an id is never long.
            text: text.chars().take(64).collect(),
        }
    }
}

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
            type Err = ParseIdError;

            /// The decimal integer exactly as [`Display`](fmt::Display) writes it (no sign
            /// other than `-`, no leading zeros, no spaces).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse::<i64>()
                    .ok()
                    .filter(|n| n.to_string() == s)
                    .map(Self)
                    .ok_or_else(|| ParseIdError::new(stringify!($name), s))
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
            type Err = ParseIdError;

            /// A UUID in the hyphenated form [`Display`](fmt::Display) writes (any case).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(s)
                    .ok()
                    .filter(|_| s.len() == 36)
                    .map(Self)
                    .ok_or_else(|| ParseIdError::new(stringify!($name), s))
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
uuid_id!(
    /// One call (or its retries) to a payment provider: a charge or a refund.
    AttemptId
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

impl From<FencingToken> for u64 {
    fn from(token: FencingToken) -> Self {
        token.0
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
        for bad in ["4x2", "", "+42", "042", " 42", "42 "] {
            assert!(bad.parse::<SeatId>().is_err(), "{bad:?}");
        }
        assert_eq!("-3".parse::<UserId>(), Ok(UserId(-3)));
        let r = ReservationId::new();
        assert_eq!(r.to_string().parse::<ReservationId>().ok(), Some(r));
        assert_eq!(Uuid::from(r), r.0);
        assert!("not-a-uuid".parse::<ReservationId>().is_err());
        assert!(r.0.simple().to_string().parse::<ReservationId>().is_err());
        assert_eq!(
            "x".parse::<PaymentId>().map_err(|e| e.to_string()),
            Err("not a valid PaymentId: \"x\"".to_owned())
        );
    }
}
