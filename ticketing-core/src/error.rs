//! The one error type of the library, with the stable codes of the HTTP contract.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::ids::SeatId;
use crate::money::Points;

/// A boxed error from a backing store or network client, kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong, by meaning. Each variant maps to one stable [`ErrorCode`].
///
/// A failed operation changes nothing: every error is returned before any write, or the write
/// is rolled back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request itself is malformed (empty or duplicate seat ids, non-positive or
    /// overflowing amounts, over-long keys, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A queue-gated operation was called without a queue token.
    #[error("a queue token is required")]
    QueueTokenRequired,
    /// The queue token is still waiting, or has expired.
    #[error("the queue token is not admitted")]
    QueueTokenNotAdmitted,
    /// The queue token belongs to another user or concert.
    #[error("the queue token belongs to another user or concert")]
    QueueTokenMismatch,
    /// Paying or cancelling another user's reservation.
    #[error("the reservation belongs to another user")]
    Forbidden,
    /// An unknown concert, option, seat, reservation or token.
    #[error("{what} {id} not found")]
    NotFound {
        /// What kind of thing was looked up.
        what: &'static str,
        /// The id that was asked for.
        id: String,
    },
    /// The payment is larger than the balance; nothing was charged and the hold stays.
    #[error("insufficient points: balance {balance}, required {required}")]
    InsufficientPoints {
        /// The balance at the time of the attempt.
        balance: Points,
        /// The amount that was due.
        required: Points,
    },
    /// One of the seats is held or sold by someone else; nothing was held.
    #[error("seats unavailable: {seats:?}")]
    SeatUnavailable {
        /// The seats that were not available.
        seats: Vec<SeatId>,
    },
    /// The hold's time ran out before it was paid.
    #[error("the hold has expired")]
    HoldExpired,
    /// The transition is not allowed from the current state (paying a cancelled reservation,
    /// cancelling twice, ...).
    #[error("cannot {action} a reservation that is {state}")]
    InvalidState {
        /// The state the reservation was in.
        state: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// The option's sale has not opened yet; nothing was held or paid.
    #[error("the sale opens at {opens_at}")]
    SaleNotOpen {
        /// When it opens.
        opens_at: DateTime<Utc>,
    },
    /// The option's sale has ended (or the show has started); nothing was held or paid.
    #[error("the sale closed at {closed_at}")]
    SaleClosed {
        /// When it closed.
        closed_at: DateTime<Utc>,
    },
    /// An idempotency key was reused with a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyConflict,
    /// The user would hold or own more seats of one option than allowed.
    #[error("limit exceeded: at most {limit} seats per user and option, would have {would_have}")]
    LimitExceeded {
        /// The configured cap.
        limit: u32,
        /// How many the user would hold or own after the request.
        would_have: u64,
    },
    /// A write carried a fencing token older than one the store already accepted for a seat:
    /// the writer's lock lease was lost. Nothing was written.
    #[error("stale fencing token: the lock lease was lost")]
    LockLost,
    /// The payment provider declined the charge (card refused, limit, fraud check, or the
    /// charge was voided): nothing was taken, and the hold was released.
    #[error("payment declined: {reason}")]
    PaymentDeclined {
        /// The provider's reason.
        reason: String,
    },
    /// The provider captured the charge after the seats could no longer be kept for it (the
    /// hold ran out past the bound, a seat was taken, the sale ended): the money is refunded
    /// (the refund is recorded and made, or retried by the recovery job) and nothing is sold.
    #[error("payment captured too late and refunded: the seats could not be kept")]
    PaymentRefunded,
    /// A backing store failed or is unreachable. Nothing was changed (or the change was rolled
    /// back); `retryable` says whether trying again may help.
    #[error("backend unavailable: {message}")]
    Unavailable {
        /// What failed.
        message: String,
        /// Whether a retry may succeed (serialization failure, lock timeout, lost connection).
        retryable: bool,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// The operation may or may not have taken effect: the commit was sent and no answer came
    /// back, or the request ran out of time after the change had started. Retry with the same
    /// idempotency key to learn the outcome (and to apply it at most once). It counts as
    /// retryable for that reason: a request without a key, retried, may apply twice.
    #[error("outcome unknown: {message}")]
    OutcomeUnknown {
        /// What happened.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// An `invalid_request` error with a message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidRequest(message.into())
    }

    /// A `not_found` error.
    pub fn not_found(what: &'static str, id: impl fmt::Display) -> Self {
        Error::NotFound {
            what,
            id: id.to_string(),
        }
    }

    /// A backend failure that keeps its source.
    pub fn backend(
        message: impl Into<String>,
        retryable: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Unavailable {
            message: message.into(),
            retryable,
            source: Some(source.into()),
        }
    }

    /// The stable machine code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Error::QueueTokenRequired => ErrorCode::QueueTokenRequired,
            Error::QueueTokenNotAdmitted => ErrorCode::QueueTokenNotAdmitted,
            Error::QueueTokenMismatch => ErrorCode::QueueTokenMismatch,
            Error::Forbidden => ErrorCode::Forbidden,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::InsufficientPoints { .. } => ErrorCode::InsufficientPoints,
            Error::SeatUnavailable { .. } => ErrorCode::SeatUnavailable,
            Error::HoldExpired => ErrorCode::HoldExpired,
            Error::InvalidState { .. } => ErrorCode::InvalidState,
            Error::SaleNotOpen { .. } => ErrorCode::SaleNotOpen,
            Error::SaleClosed { .. } => ErrorCode::SaleClosed,
            Error::IdempotencyConflict => ErrorCode::IdempotencyConflict,
            Error::LimitExceeded { .. } => ErrorCode::LimitExceeded,
            Error::LockLost => ErrorCode::LockLost,
            Error::Unavailable { .. } => ErrorCode::Unavailable,
            Error::OutcomeUnknown { .. } => ErrorCode::OutcomeUnknown,
            Error::PaymentDeclined { .. } => ErrorCode::PaymentDeclined,
            Error::PaymentRefunded => ErrorCode::PaymentRefunded,
        }
    }

    /// Whether the same request may succeed if tried again unchanged.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unavailable { retryable, .. } => *retryable,
            Error::LockLost | Error::OutcomeUnknown { .. } => true,
            _ => false,
        }
    }
}

/// The stable machine codes of `API.md`. Clients match on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_request` (400).
    InvalidRequest,
    /// `queue_token_required` (401).
    QueueTokenRequired,
    /// `queue_token_not_admitted` (403).
    QueueTokenNotAdmitted,
    /// `queue_token_mismatch` (403).
    QueueTokenMismatch,
    /// `forbidden` (403).
    Forbidden,
    /// `not_found` (404).
    NotFound,
    /// `insufficient_points` (402).
    InsufficientPoints,
    /// `seat_unavailable` (409).
    SeatUnavailable,
    /// `hold_expired` (409).
    HoldExpired,
    /// `invalid_state` (409).
    InvalidState,
    /// `sale_not_open` (409): the option's sale has not opened yet.
    SaleNotOpen,
    /// `sale_closed` (409): the option's sale has ended, or the show has started.
    SaleClosed,
    /// `idempotency_conflict` (409).
    IdempotencyConflict,
    /// `limit_exceeded` (422).
    LimitExceeded,
    /// `lock_lost` (409): an addition to API.md for the distributed-lock strategy.
    LockLost,
    /// `unavailable` (503): nothing was changed.
    Unavailable,
    /// `outcome_unknown` (504): an addition to API.md. The change may have happened; retry with
    /// the same `Idempotency-Key` to learn the outcome.
    OutcomeUnknown,
    /// `payment_declined` (402): an addition to API.md; the provider declined, nothing was
    /// taken and the hold was released.
    PaymentDeclined,
    /// `payment_refunded` (409): an addition to API.md; captured after the seats could not be
    /// kept, refunded, nothing sold.
    PaymentRefunded,
}

impl ErrorCode {
    /// Every code, for exhaustive tests and documentation.
    pub const ALL: [ErrorCode; 19] = [
        ErrorCode::InvalidRequest,
        ErrorCode::QueueTokenRequired,
        ErrorCode::QueueTokenNotAdmitted,
        ErrorCode::QueueTokenMismatch,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::InsufficientPoints,
        ErrorCode::SeatUnavailable,
        ErrorCode::HoldExpired,
        ErrorCode::InvalidState,
        ErrorCode::SaleNotOpen,
        ErrorCode::SaleClosed,
        ErrorCode::IdempotencyConflict,
        ErrorCode::LimitExceeded,
        ErrorCode::LockLost,
        ErrorCode::Unavailable,
        ErrorCode::OutcomeUnknown,
        ErrorCode::PaymentDeclined,
        ErrorCode::PaymentRefunded,
    ];

    /// The code as it appears in the `code` field of a problem+json answer.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::QueueTokenRequired => "queue_token_required",
            ErrorCode::QueueTokenNotAdmitted => "queue_token_not_admitted",
            ErrorCode::QueueTokenMismatch => "queue_token_mismatch",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InsufficientPoints => "insufficient_points",
            ErrorCode::SeatUnavailable => "seat_unavailable",
            ErrorCode::HoldExpired => "hold_expired",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::SaleNotOpen => "sale_not_open",
            ErrorCode::SaleClosed => "sale_closed",
            ErrorCode::IdempotencyConflict => "idempotency_conflict",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::LockLost => "lock_lost",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::OutcomeUnknown => "outcome_unknown",
            ErrorCode::PaymentDeclined => "payment_declined",
            ErrorCode::PaymentRefunded => "payment_refunded",
        }
    }

    /// The HTTP status of `API.md` for this code.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::QueueTokenRequired => 401,
            ErrorCode::QueueTokenNotAdmitted
            | ErrorCode::QueueTokenMismatch
            | ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::InsufficientPoints | ErrorCode::PaymentDeclined => 402,
            ErrorCode::SeatUnavailable
            | ErrorCode::HoldExpired
            | ErrorCode::InvalidState
            | ErrorCode::SaleNotOpen
            | ErrorCode::SaleClosed
            | ErrorCode::IdempotencyConflict
            | ErrorCode::LockLost
            | ErrorCode::PaymentRefunded => 409,
            ErrorCode::LimitExceeded => 422,
            ErrorCode::Unavailable => 503,
            ErrorCode::OutcomeUnknown => 504,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result type of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::error::Error as _;

    #[test]
    fn codes_are_distinct_and_match_the_contract() {
        let names: HashSet<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        assert_eq!(ErrorCode::SeatUnavailable.http_status(), 409);
        assert_eq!(ErrorCode::InsufficientPoints.http_status(), 402);
        assert_eq!(ErrorCode::LimitExceeded.http_status(), 422);
        assert_eq!(ErrorCode::QueueTokenRequired.http_status(), 401);
        assert_eq!(ErrorCode::Unavailable.http_status(), 503);
        assert_eq!(ErrorCode::OutcomeUnknown.http_status(), 504);
    }

    #[test]
    fn backend_errors_keep_their_source_and_retryability() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let err = Error::backend("connection lost", true, io);
        assert_eq!(err.code(), ErrorCode::Unavailable);
        assert!(err.is_retryable());
        assert_eq!(
            err.source().map(|s| s.to_string()).as_deref(),
            Some("reset")
        );
        assert!(!Error::HoldExpired.is_retryable());
    }
}
