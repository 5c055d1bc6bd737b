//! The requests the service takes: built with `new` and chainable `with_*` methods, as they
//! are `#[non_exhaustive]` (a field can be added without breaking callers).

use crate::ids::{OptionId, ReservationId, SeatId, UserId};
use crate::money::Points;
use crate::queue::QueueToken;

/// A request to hold seats: [`HoldRequest::new`], then a queue token and an idempotency key
/// if the caller has them.
///
/// ```
/// # use ticketing_core::{HoldRequest, OptionId, SeatId, UserId};
/// let req = HoldRequest::new(UserId(7), OptionId(1), [SeatId(10), SeatId(11)])
///     .with_idempotency_key("order-1".to_owned());
/// assert_eq!(req.queue_token, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HoldRequest {
    /// The buyer.
    pub user_id: UserId,
    /// The show option.
    pub option_id: OptionId,
    /// The seats, all of that option.
    pub seat_ids: Vec<SeatId>,
    /// An admitted queue token of this user for the option's concert, when the queue gates.
    pub queue_token: Option<QueueToken>,
    /// Makes a retry return the first result instead of holding again.
    pub idempotency_key: Option<String>,
}

impl HoldRequest {
    /// Hold `seat_ids` of `option_id` for `user_id`, without token or key.
    pub fn new(user_id: UserId, option_id: OptionId, seat_ids: impl Into<Vec<SeatId>>) -> Self {
        Self {
            user_id,
            option_id,
            seat_ids: seat_ids.into(),
            queue_token: None,
            idempotency_key: None,
        }
    }

    /// With this admitted queue token (or none).
    pub fn with_queue_token(mut self, token: impl Into<Option<QueueToken>>) -> Self {
        self.queue_token = token.into();
        self
    }

    /// With this idempotency key (or none).
    pub fn with_idempotency_key(mut self, key: impl Into<Option<String>>) -> Self {
        self.idempotency_key = key.into();
        self
    }
}

/// A request to pay a hold: [`PayRequest::new`], then a queue token and an idempotency key if
/// the caller has them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PayRequest {
    /// The payer, who must own the reservation.
    pub user_id: UserId,
    /// The reservation.
    pub reservation_id: ReservationId,
    /// An admitted queue token, when the queue gates.
    pub queue_token: Option<QueueToken>,
    /// Makes a retry return the first result instead of paying again.
    pub idempotency_key: Option<String>,
}

impl PayRequest {
    /// Pay `reservation_id` as `user_id`, without token or key.
    pub fn new(user_id: UserId, reservation_id: ReservationId) -> Self {
        Self {
            user_id,
            reservation_id,
            queue_token: None,
            idempotency_key: None,
        }
    }

    /// With this admitted queue token (or none).
    pub fn with_queue_token(mut self, token: impl Into<Option<QueueToken>>) -> Self {
        self.queue_token = token.into();
        self
    }

    /// With this idempotency key (or none).
    pub fn with_idempotency_key(mut self, key: impl Into<Option<String>>) -> Self {
        self.idempotency_key = key.into();
        self
    }
}

/// A request to cancel a reservation (a hold, or a paid one with a refund).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CancelRequest {
    /// Who asks; must own the reservation.
    pub user_id: UserId,
    /// The reservation.
    pub reservation_id: ReservationId,
    /// Makes a retry (after a lost answer) return the first result instead of `invalid_state`.
    pub idempotency_key: Option<String>,
}

impl CancelRequest {
    /// Cancel `reservation_id` as `user_id`, without a key.
    pub fn new(user_id: UserId, reservation_id: ReservationId) -> Self {
        Self {
            user_id,
            reservation_id,
            idempotency_key: None,
        }
    }

    /// With this idempotency key (or none).
    pub fn with_idempotency_key(mut self, key: impl Into<Option<String>>) -> Self {
        self.idempotency_key = key.into();
        self
    }
}

/// A request to add points to a wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChargeRequest {
    /// Whose wallet.
    pub user_id: UserId,
    /// How many points (1 up to [`ServiceConfig::max_charge`](crate::ServiceConfig::max_charge)).
    pub amount: Points,
    /// Makes a retry return the first result instead of charging again.
    pub idempotency_key: Option<String>,
}

impl ChargeRequest {
    /// Charge `amount` to `user_id`'s wallet, without a key.
    pub fn new(user_id: UserId, amount: Points) -> Self {
        Self {
            user_id,
            amount,
            idempotency_key: None,
        }
    }

    /// With this idempotency key (or none).
    pub fn with_idempotency_key(mut self, key: impl Into<Option<String>>) -> Self {
        self.idempotency_key = key.into();
        self
    }
}
