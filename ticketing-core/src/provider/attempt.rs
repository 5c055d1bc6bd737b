//! A payment attempt: one charge or refund made through a provider, recorded in the store
//! before the call (with the idempotency key the provider gets) and settled after it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AttemptId, ReservationId, UserId};
use crate::money::Points;

/// Whether an attempt takes money or gives it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    /// A charge for a held reservation.
    Charge,
    /// A refund of a captured charge.
    Refund,
}

/// Where an attempt stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AttemptState {
    /// Recorded; the provider's outcome is not known yet (not called, in flight, or its answer
    /// lost). Never read as a failure: the recovery job asks the provider.
    Pending,
    /// Captured (a charge) or refunded (a refund); `reference` is the provider's id.
    Succeeded {
        /// The provider's id of the charge or refund.
        reference: String,
    },
    /// Declined or voided (a charge: nothing was taken), or refused (a refund: an operator
    /// must look at it).
    Failed {
        /// The provider's reason.
        reason: String,
    },
}

/// Why a refund is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefundReason {
    /// The buyer cancelled a reservation paid through the provider.
    Cancelled,
    /// The charge was captured after the hold had ended: the seats were not kept for it.
    SeatsNotKept,
}

/// One charge or refund through a payment provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAttempt {
    /// Its id.
    pub id: AttemptId,
    /// A charge or a refund.
    pub kind: AttemptKind,
    /// The reservation it pays for (or refunds).
    pub reservation_id: ReservationId,
    /// The buyer.
    pub user_id: UserId,
    /// How much.
    pub amount: Points,
    /// The idempotency key the provider gets: one key, at most one charge or refund.
    pub key: String,
    /// A refund's charge (its key); `None` for a charge.
    pub charge_key: Option<String>,
    /// Why a refund is made; `None` for a charge.
    pub reason: Option<RefundReason>,
    /// Where it stands.
    pub state: AttemptState,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// A charge: the end of the time its reservation's seats are kept for it; after it the
    /// recovery job voids a charge still unknown. A refund: when it was recorded.
    pub deadline: DateTime<Utc>,
}

impl PaymentAttempt {
    /// The provider key of a charge attempt.
    pub fn charge_key(id: AttemptId) -> String {
        format!("charge-{id}")
    }

    /// The provider key of a refund attempt.
    pub fn refund_key(id: AttemptId) -> String {
        format!("refund-{id}")
    }

    /// Whether the provider's outcome is still unknown.
    pub fn is_pending(&self) -> bool {
        self.state == AttemptState::Pending
    }
}
