//! The store trait: every read and every atomic write a backend provides.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    Balance, Catalog, Concert, OptionSummary, OutboxRecord, Payment, Reservation, SeatView,
    ShowOption,
};
use crate::error::Result;
use crate::idempotency::{IdempotencyKey, IdempotencyRecord};
use crate::ids::{AttemptId, ConcertId, FencingToken, OptionId, ReservationId, SeatId, UserId};
use crate::money::Points;
use crate::provider::{
    BeginPaymentCommand, ChargeSettled, PaymentAttempt, SettleChargeCommand, SettleRefundCommand,
};

/// Place a hold on several seats of one option, all or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldCommand {
    /// The id the new reservation gets.
    pub reservation_id: ReservationId,
    /// The buyer.
    pub user_id: UserId,
    /// The show option all seats must belong to.
    pub option_id: OptionId,
    /// The seats: non-empty, no duplicates, ascending (see [`crate::rules::normalize_seat_ids`]).
    pub seat_ids: Vec<SeatId>,
    /// The instant the hold is placed at; expiry of older holds is judged by it.
    pub now: DateTime<Utc>,
    /// When the new hold ends.
    pub expires_at: DateTime<Utc>,
    /// At most this many seats of the option held or sold by the user, this hold included.
    pub max_seats_per_user: Option<u32>,
    /// Record the result under this key, in the same atomic step.
    pub idempotency: Option<IdempotencyKey>,
    /// Reject the write if any seat has accepted a newer fencing token.
    pub fence: Option<FencingToken>,
}

/// Pay for a hold: debit the wallet and sell the seats, atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayCommand {
    /// The reservation to pay.
    pub reservation_id: ReservationId,
    /// The payer, who must own it.
    pub user_id: UserId,
    /// The instant of payment.
    pub now: DateTime<Utc>,
    /// Record the result under this key, in the same atomic step.
    pub idempotency: Option<IdempotencyKey>,
    /// Reject the write if any seat has accepted a newer fencing token.
    pub fence: Option<FencingToken>,
}

/// Cancel a hold, or a confirmed reservation with a refund, atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelCommand {
    /// The reservation to cancel.
    pub reservation_id: ReservationId,
    /// Who asks; must be the owner.
    pub user_id: UserId,
    /// The instant of cancellation.
    pub now: DateTime<Utc>,
    /// Record the result under this key, in the same atomic step (a retried cancel whose
    /// answer was lost gets it again, not `invalid_state`).
    pub idempotency: Option<IdempotencyKey>,
    /// Reject the write if any seat has accepted a newer fencing token.
    pub fence: Option<FencingToken>,
}

/// Add points to a wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeCommand {
    /// Whose wallet.
    pub user_id: UserId,
    /// How many points; positive.
    pub amount: Points,
    /// The instant of the charge.
    pub now: DateTime<Utc>,
    /// Record the result under this key, in the same atomic step.
    pub idempotency: Option<IdempotencyKey>,
}

/// A backend's storage: catalog, seats, reservations, wallets, idempotency records, outbox.
///
/// Every write is one atomic step: it happens whole or not at all, and records its outbox event
/// and idempotency record in the same step. Every rule is taken from [`crate::rules`]. Times
/// are passed in, never read from a clock of the store's own, so a manual clock drives expiry.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait TicketStore: Send + Sync + Debug + 'static {
    /// Add a catalog. Ids already present, or an option whose sale window ends before it opens,
    /// are an `invalid_request` and nothing is added.
    async fn seed(&self, catalog: &Catalog) -> Result<()>;

    /// Every concert, by id.
    async fn concerts(&self) -> Result<Vec<Concert>>;

    /// One concert; `not_found` for an unknown one.
    async fn concert(&self, concert: ConcertId) -> Result<Concert>;

    /// The options of a concert with their seat counts at `now`; `not_found` for an unknown one.
    async fn options(&self, concert: ConcertId, now: DateTime<Utc>) -> Result<Vec<OptionSummary>>;

    /// One option; `not_found` for an unknown one.
    async fn option(&self, option: OptionId) -> Result<ShowOption>;

    /// Set when an option's seats are on sale (`None`: from now on, or until the show starts;
    /// see [`crate::rules::check_sale`]) and return the option as stored. A window that ends
    /// before it opens is an `invalid_request` ([`crate::rules::validate_sale_window`]); an
    /// end in the past closes the sale. Every hold, payment and cancel stored after this returns
    /// was decided with this window (a store makes a change wait for, or invalidate, the commands
    /// deciding on the option's seats).
    async fn set_sale_window(
        &self,
        option: OptionId,
        opens_at: Option<DateTime<Utc>>,
        closes_at: Option<DateTime<Utc>>,
    ) -> Result<ShowOption>;

    /// Every seat of an option with its status at `now`, by id; `not_found` for an unknown one.
    async fn seats(&self, option: OptionId, now: DateTime<Utc>) -> Result<Vec<SeatView>>;

    /// Hold every seat of the command or none (`seat_unavailable` naming the taken ones).
    async fn hold(&self, cmd: HoldCommand) -> Result<Reservation>;

    /// Pay a hold: debit (never below zero), seats held → sold, payment recorded, or nothing.
    async fn pay(&self, cmd: PayCommand) -> Result<Payment>;

    /// Cancel: seats freed, paid points refunded, or nothing. Returns the reservation as
    /// cancelled; under a key used before, the first answer (replayed inside the same atomic
    /// step, after the owner check).
    async fn cancel(&self, cmd: CancelCommand) -> Result<Reservation>;

    /// Mark up to `limit` holds due at `now` as expired and free their seats in storage.
    /// Safe to run from several places at once: each hold is expired once.
    async fn expire_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<ReservationId>>;

    /// One reservation with its status at `now`.
    async fn reservation(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation>;

    /// A user's reservations with their status at `now`, newest first.
    async fn user_reservations(&self, user: UserId, now: DateTime<Utc>)
    -> Result<Vec<Reservation>>;

    /// Add points to a wallet; overflow is an `invalid_request` and changes nothing.
    async fn charge(&self, cmd: ChargeCommand) -> Result<Balance>;

    /// A user's balance (0 for an unknown user).
    async fn balance(&self, user: UserId) -> Result<Points>;

    /// The idempotency record of a user's key, if any.
    async fn idempotency_record(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>>;

    /// Outbox events with `seq > after` not yet acknowledged, in order, at most `limit`.
    async fn outbox_read(&self, after: u64, limit: usize) -> Result<Vec<OutboxRecord>>;

    /// Acknowledge (mark published) exactly these outbox events, the ones a relay delivered.
    /// Never a range: in a database an event's `seq` is taken when its transaction inserts it
    /// but becomes visible when it commits, so a lower `seq` can appear after higher ones were
    /// read, and must stay unpublished until it is delivered. Unknown or already acknowledged
    /// `seq`s are ignored.
    async fn outbox_ack(&self, seqs: &[u64]) -> Result<()>;

    /// Forget what is kept only for a while: idempotency records made before `before` (a
    /// retry under such a key is then a new request) and outbox events acknowledged before
    /// `before`. At most `limit` of each per call; returns how many were forgotten, so a caller
    /// can call again while it is `limit` or more. Live state (wallets, reservations, seats,
    /// unacknowledged events) is never touched.
    async fn prune(&self, before: DateTime<Utc>, limit: usize) -> Result<u64>;

    /// Whether the store answers.
    async fn health(&self) -> Result<()>;

    /// Begin paying a hold through a provider (docs/payments.md, step 1), decided by
    /// [`rules::begin_provider_payment`](crate::rules::begin_provider_payment): the seats kept
    /// for the call, the attempt recorded, its event; under a key used before, the first
    /// attempt. A store that keeps no provider payments answers `unavailable` (the default).
    async fn begin_provider_payment(&self, cmd: BeginPaymentCommand) -> Result<PaymentAttempt> {
        let _ = cmd;
        Err(no_provider_payments())
    }

    /// Settle a charge attempt with the provider's outcome, decided by
    /// [`rules::settle_charge`](crate::rules::settle_charge), in one atomic step.
    async fn settle_charge(&self, cmd: SettleChargeCommand) -> Result<ChargeSettled> {
        let _ = cmd;
        Err(no_provider_payments())
    }

    /// Settle a refund attempt with the provider's outcome, decided by
    /// [`rules::settle_refund`](crate::rules::settle_refund); returns the attempt as it stands.
    async fn settle_refund(&self, cmd: SettleRefundCommand) -> Result<PaymentAttempt> {
        let _ = cmd;
        Err(no_provider_payments())
    }

    /// One payment attempt; `not_found` for an unknown one.
    async fn payment_attempt(&self, id: AttemptId) -> Result<PaymentAttempt> {
        let _ = id;
        Err(no_provider_payments())
    }

    /// The attempts of one reservation, oldest first (a cancel's refund, to make it at once).
    /// A store that keeps no provider payments has none.
    async fn reservation_attempts(&self, id: ReservationId) -> Result<Vec<PaymentAttempt>> {
        let _ = id;
        Ok(Vec::new())
    }

    /// Attempts whose outcome is not known yet, oldest first, at most `limit` (what the
    /// recovery job finishes). A store that keeps no provider payments has none.
    async fn pending_attempts(&self, limit: usize) -> Result<Vec<PaymentAttempt>> {
        let _ = limit;
        Ok(Vec::new())
    }
}

/// The answer of a store that keeps no provider payments.
fn no_provider_payments() -> crate::error::Error {
    crate::error::Error::Unavailable {
        message: "this store does not keep payments through a provider".into(),
        retryable: false,
        source: None,
    }
}

/// `TicketStore` stays usable as a trait object (services hold `Arc<dyn TicketStore>`): a change
/// that breaks that fails to compile here, beside the trait, not in a backend.
const _: fn(&dyn TicketStore) = |_| {};
