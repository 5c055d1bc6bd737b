//! The store's atomic steps of a provider payment (docs/payments.md): begin, settle a charge,
//! settle a refund. Each is decided by `rules::provider` and stored whole or not at all.

use chrono::{DateTime, Duration, Utc};

use crate::domain::Payment;
use crate::idempotency::IdempotencyKey;
use crate::ids::{AttemptId, PaymentId, ReservationId, UserId};
use crate::provider::{ChargeOutcome, PaymentAttempt, RefundOutcome};

/// Begin paying a hold through a provider: the seats kept for the call, the attempt recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeginPaymentCommand {
    /// The reservation to pay.
    pub reservation_id: ReservationId,
    /// The payer; must own it.
    pub user_id: UserId,
    /// The instant of the request.
    pub now: DateTime<Utc>,
    /// The seats are kept at least this long from `now` for the provider's answer.
    pub bound: Duration,
    /// The id the attempt gets.
    pub attempt_id: AttemptId,
    /// Record the attempt under this key: a retried request gets the same attempt back.
    pub idempotency: Option<IdempotencyKey>,
}

/// Settle a charge attempt with the provider's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleChargeCommand {
    /// The charge attempt.
    pub attempt_id: AttemptId,
    /// What the provider answered.
    pub outcome: ChargeOutcome,
    /// The instant of settling.
    pub now: DateTime<Utc>,
    /// The id a payment would get.
    pub payment_id: PaymentId,
    /// The id a refund attempt would get.
    pub refund_id: AttemptId,
}

/// Settle a refund attempt with the provider's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleRefundCommand {
    /// The refund attempt.
    pub attempt_id: AttemptId,
    /// What the provider answered.
    pub outcome: RefundOutcome,
    /// The instant of settling.
    pub now: DateTime<Utc>,
}

/// What settling a charge did, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeSettled {
    /// The attempt was settled before; it stands as it is (nothing changed).
    AlreadySettled(PaymentAttempt),
    /// Captured in time: the reservation is confirmed and its seats sold.
    Confirmed(Payment),
    /// Declined or voided: nothing taken, the seats released.
    Released(PaymentAttempt),
    /// Captured too late: this refund attempt was recorded; make it, then settle it.
    RefundDue(PaymentAttempt),
}
