//! External payment providers: the interface the library calls to take real money for a hold,
//! and to give it back on cancel.
//!
//! Every call carries an idempotency key the library chose and recorded in its store *before*
//! the call, so a retry (after a timeout, a crash, a lost answer) can never charge twice, and a
//! recovery job can always ask the provider what became of a call whose answer it never got.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::money::Points;

mod attempt;
mod commands;

pub use attempt::{AttemptKind, AttemptState, PaymentAttempt, RefundReason};
pub use commands::{BeginPaymentCommand, ChargeSettled, SettleChargeCommand, SettleRefundCommand};

/// A charge the library asks for: `amount` once, under `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCharge {
    /// The idempotency key: the same key again never charges again, it answers the first
    /// charge's outcome.
    pub key: String,
    /// How much, in points (the provider's smallest currency unit).
    pub amount: Points,
    /// What the payer sees on their statement (the reservation id).
    pub description: String,
}

/// A refund the library asks for: `amount` of the charge made under `charge_key`, once, under
/// `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRefund {
    /// The refund's own idempotency key.
    pub key: String,
    /// The idempotency key of the charge refunded.
    pub charge_key: String,
    /// How much.
    pub amount: Points,
}

/// What became of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChargeOutcome {
    /// The money was taken; `reference` is the provider's id of the charge.
    Captured {
        /// The provider's id of the charge.
        reference: String,
    },
    /// Refused (card declined, limit, fraud check): nothing was taken, and nothing ever will be
    /// under this key.
    Declined {
        /// The provider's reason, for the record.
        reason: String,
    },
}

/// What a provider knows of a key when asked ([`PaymentProvider::status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChargeStatus {
    /// The charge under this key ended so.
    Done(ChargeOutcome),
    /// Received and not decided yet (an asynchronous method): ask again, or wait for the webhook.
    Pending,
    /// Nothing under this key: never received, or voided.
    Unknown,
}

/// What became of a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefundOutcome {
    /// The money went back; `reference` is the provider's id of the refund.
    Refunded {
        /// The provider's id of the refund.
        reference: String,
    },
    /// Refused by the provider (for the record; an operator has to look at it).
    Refused {
        /// The provider's reason.
        reason: String,
    },
}

/// A provider call that gave no outcome.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider was not reached, or answered that it did nothing (a connection refused, a
    /// 503 before processing): the call may be made again under the same key.
    #[error("payment provider unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
    },
    /// The call may or may not have taken effect (a timeout, a connection lost after sending):
    /// never read as a failure; ask [`PaymentProvider::status`] under the same key.
    #[error("payment provider outcome unknown: {message}")]
    OutcomeUnknown {
        /// What happened.
        message: String,
    },
}

/// A payment provider (a card processor, a wallet, a bank). Implementations must honour the
/// idempotency keys: one key, at most one charge (or refund), whatever the number of calls.
#[async_trait]
pub trait PaymentProvider: Send + Sync + Debug + 'static {
    /// Charge once under `charge.key`; a repeated key answers the first outcome.
    async fn charge(&self, charge: &ProviderCharge) -> Result<ChargeOutcome, ProviderError>;

    /// What became of the charge under `key`.
    async fn status(&self, key: &str) -> Result<ChargeStatus, ProviderError>;

    /// Make sure nothing is ever captured under `key`: a charge not yet captured is cancelled,
    /// and a charge that arrives later under the key is declined. Answers what the key ended
    /// as: `Declined` if nothing was (or will be) taken, `Captured` if the charge had already
    /// been captured (then it must be refunded to be undone).
    async fn void(&self, key: &str) -> Result<ChargeOutcome, ProviderError>;

    /// Refund once under `refund.key`; a repeated key answers the first outcome.
    async fn refund(&self, refund: &ProviderRefund) -> Result<RefundOutcome, ProviderError>;
}

/// Services hold `Arc<dyn PaymentProvider>`: this fails to compile if the trait stops being
/// dyn-compatible.
const _: Option<&dyn PaymentProvider> = None;

#[cfg(feature = "fake-provider")]
pub mod fake;
