//! The service applications call: validation, queue admission, per-user caps and idempotency
//! keys, then exactly one atomic store call.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::clock::{Clock, SystemClock};
use crate::domain::{
    Balance, Catalog, Concert, OptionSummary, Payment, Reservation, SeatView, ShowOption,
};
use crate::error::{Error, ErrorCode, Result};
use crate::idempotency::{IdempotencyKey, StoredOutcome};
use crate::ids::{ConcertId, OptionId, ReservationId, UserId};
use crate::money::Points;
use crate::provider::PaymentProvider;
use crate::queue::{QueueLength, QueueStatus, QueueTicket, QueueToken, WaitingQueue};
use crate::rules;
use crate::store::{CancelCommand, ChargeCommand, HoldCommand, PayCommand, TicketStore};

/// Limits and defaults of the service.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// How long a hold lasts (default 5 minutes).
    pub hold_ttl: Duration,
    /// Seats of one option a user may hold or own at once, held plus sold (default 4).
    pub max_seats_per_user: u32,
    /// Seat ids in one hold request, at most (default 100).
    pub max_seats_per_request: usize,
    /// The largest single charge (default 10,000,000 points).
    pub max_charge: Points,
    /// Whether holds and payments need an admitted queue token (default true when a queue is
    /// attached with [`TicketingService::with_queue`]).
    pub require_queue_token: bool,
    /// How long a hold's seats are kept, at least, for a payment provider's answer once a
    /// provider payment has begun (default 2 minutes; docs/payments.md).
    pub provider_bound: Duration,
    /// How long one provider call may take before its outcome counts as unknown (default 5
    /// seconds; with the `tokio` feature, on a tokio runtime; not positive: the default). Keep
    /// it well under `provider_bound`, and under any time limit the caller puts on a request.
    pub provider_timeout: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            hold_ttl: Duration::minutes(5),
            max_seats_per_user: 4,
            max_seats_per_request: 100,
            max_charge: Points(10_000_000),
            require_queue_token: true,
            provider_bound: Duration::minutes(2),
            provider_timeout: Duration::seconds(5),
        }
    }
}

crate::__with_setters!(ServiceConfig {
    with_hold_ttl => hold_ttl: Duration,
    with_max_seats_per_user => max_seats_per_user: u32,
    with_max_seats_per_request => max_seats_per_request: usize,
    with_max_charge => max_charge: Points,
    with_require_queue_token => require_queue_token: bool,
    with_provider_bound => provider_bound: Duration,
    with_provider_timeout => provider_timeout: Duration,
});

/// The entry point of the library: one method per use case.
///
/// ```
/// # use std::sync::Arc;
/// # use ticketing_core::*;
/// # fn build(store: Arc<dyn TicketStore>) -> TicketingService {
/// TicketingService::new(store, ServiceConfig::default())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TicketingService {
    store: Arc<dyn TicketStore>,
    queue: Option<Arc<dyn WaitingQueue>>,
    provider: Option<Arc<dyn PaymentProvider>>,
    clock: Arc<dyn Clock>,
    config: ServiceConfig,
    owners: owners::Owners,
    concerts: owners::Concerts,
}

fn positive(id: i64, what: &str) -> Result<()> {
    if id > 0 {
        Ok(())
    } else {
        Err(Error::invalid(format!("{what} must be a positive integer")))
    }
}

impl TicketingService {
    /// A service over a store, on the system clock, without a waiting queue.
    pub fn new(store: Arc<dyn TicketStore>, config: ServiceConfig) -> Self {
        Self {
            store,
            queue: None,
            provider: None,
            clock: Arc::new(SystemClock),
            config,
            owners: owners::Owners::new(),
            concerts: owners::Concerts::new(),
        }
    }

    /// Attach a waiting queue; with `require_queue_token` holds and payments need a token.
    pub fn with_queue(mut self, queue: Arc<dyn WaitingQueue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Take payments through this provider too ([`TicketingService::pay_by_provider`]).
    pub fn with_provider(mut self, provider: Arc<dyn PaymentProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Judge every expiry by this clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TicketStore> {
        &self.store
    }

    /// The waiting queue, if any.
    pub fn queue(&self) -> Option<&Arc<dyn WaitingQueue>> {
        self.queue.as_ref()
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    fn key(
        &self,
        user: UserId,
        key: Option<&str>,
        fingerprint: String,
    ) -> Result<Option<IdempotencyKey>> {
        key.map(|k| IdempotencyKey::new(user, k, fingerprint))
            .transpose()
    }

    /// The first outcome of an already used key, or `None` if the key is fresh.
    async fn replay(&self, key: Option<&IdempotencyKey>) -> Result<Option<StoredOutcome>> {
        let Some(key) = key else { return Ok(None) };
        match self.store.idempotency_record(key.user_id, &key.key).await? {
            Some(record) => {
                let replayed = record.replay(&key.fingerprint);
                match &replayed {
                    Ok(_) => tracing::debug!(
                        target: "ticketing::service",
                        user = %key.user_id,
                        key = ?key.key,
                        "idempotency key seen before: the first answer is given again"
                    ),
                    Err(_) => tracing::debug!(
                        target: "ticketing::service",
                        user = %key.user_id,
                        key = ?key.key,
                        "idempotency key used before for another request: refused"
                    ),
                }
                replayed.map(Some)
            }
            None => Ok(None),
        }
    }

    /// Whether holds and payments need an admitted queue token.
    fn gates(&self) -> bool {
        self.queue.is_some() && self.config.require_queue_token
    }

    /// The concert of an option (`not_found` for an unknown one), read once and kept.
    async fn concert_of(&self, option: OptionId) -> Result<ConcertId> {
        if let Some(concert) = self.concerts.get(option) {
            return Ok(concert);
        }
        let concert = self.store.option(option).await?.concert_id;
        self.concerts.remember(option, concert);
        Ok(concert)
    }

    /// Check that `token` is admitted for `user` and `concert`, when the queue gates. A
    /// payment also passes with a token that ended early ([`QueueStatus::Done`]: its holder
    /// paid for another hold, or left): the hold it pays for was made while it was admitted.
    async fn gate(
        &self,
        token: Option<&QueueToken>,
        user: UserId,
        concert: ConcertId,
        paying: bool,
    ) -> Result<()> {
        let Some(queue) = self.queue.as_ref().filter(|_| self.gates()) else {
            return Ok(());
        };
        let token = token.ok_or(Error::QueueTokenRequired)?;
        let ticket = queue.status(token, self.clock.now()).await?;
        if ticket.user_id != user || ticket.concert_id != concert {
            return Err(Error::QueueTokenMismatch);
        }
        match ticket.status {
            QueueStatus::Admitted { .. } => Ok(()),
            QueueStatus::Done if paying => Ok(()),
            QueueStatus::Waiting { .. } | QueueStatus::Expired | QueueStatus::Done => {
                Err(Error::QueueTokenNotAdmitted)
            }
        }
    }

    /// Hold seats of one option, all or none, for `hold_ttl`.
    pub async fn hold(&self, req: HoldRequest) -> Result<Reservation> {
        positive(req.user_id.0, "user_id")?;
        positive(req.option_id.0, "option_id")?;
        let seat_ids = rules::normalize_seat_ids(&req.seat_ids, self.config.max_seats_per_request)?;
        let cap = self.config.max_seats_per_user;
        if seat_ids.len() as u64 > u64::from(cap) {
            return Err(Error::LimitExceeded {
                limit: cap,
                would_have: seat_ids.len() as u64,
            });
        }
        let fingerprint = format!(
            "hold:{}:{}",
            req.option_id,
            seat_ids
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        let key = self.key(req.user_id, req.idempotency_key.as_deref(), fingerprint)?;
        // A retry under a used key gets the reservation it made, as it is now (held, paid,
        // cancelled or expired), not the snapshot taken when it was made; before the gate, so a
        // retry after a lost answer learns the outcome even once its queue token has lapsed.
        if let Some(outcome) = self.replay(key.as_ref()).await? {
            let first = outcome.into_hold()?;
            return self.current(first).await;
        }
        // Without a gate the store checks the option in the hold's own atomic step.
        if self.gates() {
            let concert = self.concert_of(req.option_id).await?;
            self.gate(req.queue_token.as_ref(), req.user_id, concert, false)
                .await?;
        }
        let now = self.clock.now();
        let reservation_id = ReservationId::new();
        let made = self
            .store
            .hold(HoldCommand {
                reservation_id,
                user_id: req.user_id,
                option_id: req.option_id,
                seat_ids,
                now,
                expires_at: now + self.config.hold_ttl,
                max_seats_per_user: Some(cap),
                idempotency: key,
                fence: None,
            })
            .await?;
        self.owners.remember(made.id, made.user_id, made.option_id);
        if made.id == reservation_id {
            Ok(made)
        } else {
            // The store replayed a key a concurrent retry had just used.
            self.current(made).await
        }
    }

    /// A replayed hold as it is now; the stored answer if the store no longer finds it.
    async fn current(&self, first: Reservation) -> Result<Reservation> {
        match self.store.reservation(first.id, self.clock.now()).await {
            Err(Error::NotFound { .. }) => Ok(first),
            now => now,
        }
    }

    /// Pay a hold with points: debit and sell, atomically.
    pub async fn pay(&self, req: PayRequest) -> Result<Payment> {
        positive(req.user_id.0, "user_id")?;
        let fingerprint = format!("pay:{}", req.reservation_id);
        let key = self.key(req.user_id, req.idempotency_key.as_deref(), fingerprint)?;
        // A retry under a used key gets its first answer, even once the queue token lapsed.
        if let Some(outcome) = self.replay(key.as_ref()).await? {
            return outcome.into_payment();
        }
        self.gate_payment(&req).await?;
        let payment = self
            .store
            .pay(PayCommand {
                reservation_id: req.reservation_id,
                user_id: req.user_id,
                now: self.clock.now(),
                idempotency: key,
                fence: None,
            })
            .await?;
        self.paid(&req).await;
        Ok(payment)
    }

    /// The queue gate of a payment. It needs the reservation's owner and option (for its
    /// concert): known from the hold this service made, or read once and kept (they never
    /// change). Without a gate the store's step makes the same checks (not found, not the
    /// owner) in its own atomic step, so a read would only cost a round trip.
    async fn gate_payment(&self, req: &PayRequest) -> Result<()> {
        if !self.gates() {
            return Ok(());
        }
        let (owner, option) = match self.owners.get(req.reservation_id) {
            Some(known) => known,
            None => {
                let now = self.clock.now();
                let r = self.store.reservation(req.reservation_id, now).await?;
                self.owners.remember(r.id, r.user_id, r.option_id);
                (r.user_id, r.option_id)
            }
        };
        if owner != req.user_id {
            return Err(Error::Forbidden);
        }
        let concert = self.concert_of(option).await?;
        self.gate(req.queue_token.as_ref(), req.user_id, concert, true)
            .await
    }

    /// The buyer is done: their place in the waiting room goes to the next in line at once,
    /// not when the admission would have lapsed. (Their other holds, if any, can still be paid
    /// with the ended token: see `gate`.) The payment stands whatever the queue says.
    async fn paid(&self, req: &PayRequest) {
        if self.gates()
            && let (Some(queue), Some(token)) = (&self.queue, &req.queue_token)
            && let Err(e) = queue.leave(token, self.clock.now()).await
        {
            tracing::warn!(
                error = %e,
                "a paid buyer's queue token could not be ended; it lapses at its time"
            );
        }
    }

    /// Cancel a hold (nothing to refund) or a confirmed reservation (the points paid back, or
    /// the provider's charge refunded through the provider).
    pub async fn cancel(&self, req: CancelRequest) -> Result<Reservation> {
        positive(req.user_id.0, "user_id")?;
        let fingerprint = format!("cancel:{}", req.reservation_id);
        let key = self.key(req.user_id, req.idempotency_key.as_deref(), fingerprint)?;
        if let Some(outcome) = self.replay(key.as_ref()).await? {
            return outcome.into_cancel();
        }
        let cancelled = self
            .store
            .cancel(CancelCommand {
                reservation_id: req.reservation_id,
                user_id: req.user_id,
                now: self.clock.now(),
                idempotency: key,
                fence: None,
            })
            .await?;
        // Paid through the provider: the store recorded the refund with the cancel; make it.
        self.refund_cancelled(&cancelled).await;
        Ok(cancelled)
    }

    /// Add points to a user's wallet.
    pub async fn charge(&self, req: ChargeRequest) -> Result<Balance> {
        let ChargeRequest {
            user_id,
            amount,
            idempotency_key,
        } = req;
        positive(user_id.0, "user_id")?;
        if !amount.is_positive() || amount > self.config.max_charge {
            return Err(Error::invalid(format!(
                "amount must be between 1 and {}",
                self.config.max_charge
            )));
        }
        let key = self.key(
            user_id,
            idempotency_key.as_deref(),
            format!("charge:{amount}"),
        )?;
        if let Some(outcome) = self.replay(key.as_ref()).await? {
            return outcome.into_charge();
        }
        self.store
            .charge(ChargeCommand {
                user_id,
                amount,
                now: self.clock.now(),
                idempotency: key,
            })
            .await
    }

    /// A user's balance.
    pub async fn balance(&self, user_id: UserId) -> Result<Balance> {
        positive(user_id.0, "user_id")?;
        let balance = self.store.balance(user_id).await?;
        Ok(Balance { user_id, balance })
    }

    /// Every concert.
    pub async fn concerts(&self) -> Result<Vec<Concert>> {
        self.store.concerts().await
    }

    /// Add concerts, options and seats, all or none (see [`TicketStore::seed`]).
    pub async fn add_catalog(&self, catalog: &Catalog) -> Result<()> {
        self.store.seed(catalog).await
    }

    /// Set when an option's seats are on sale (see [`TicketStore::set_sale_window`]).
    pub async fn set_sale_window(
        &self,
        option_id: OptionId,
        opens_at: Option<DateTime<Utc>>,
        closes_at: Option<DateTime<Utc>>,
    ) -> Result<ShowOption> {
        self.store
            .set_sale_window(option_id, opens_at, closes_at)
            .await
    }

    /// End an option's sale now ([`rules::close_sale`]): from this instant holds and payments
    /// of its seats are `sale_closed`; an end already past stays, and an opening still ahead is
    /// dropped. The window is read, then set: a window set by another caller in between is
    /// overwritten.
    pub async fn close_sale(&self, option_id: OptionId) -> Result<ShowOption> {
        let option = self.store.option(option_id).await?;
        let closed = rules::close_sale(&option.sale_window(), self.clock.now());
        self.store
            .set_sale_window(option_id, closed.opens_at, closed.closes_at)
            .await
    }

    /// The options of a concert with their seat counts now; `not_found` for an unknown one.
    pub async fn options(&self, concert_id: ConcertId) -> Result<Vec<OptionSummary>> {
        self.store.options(concert_id, self.clock.now()).await
    }

    /// Every seat of an option with its status now; `not_found` for an unknown one.
    pub async fn seats(&self, option_id: OptionId) -> Result<Vec<SeatView>> {
        self.store.seats(option_id, self.clock.now()).await
    }

    /// Whether every backing service answers: the store (and, through a fenced store, its lock
    /// manager) and the waiting queue if one is attached.
    pub async fn health(&self) -> Result<()> {
        self.store.health().await?;
        if let Some(queue) = &self.queue {
            // An unknown but well-formed token makes the queue backend answer.
            match queue
                .status(&QueueToken("1.0".into()), self.clock.now())
                .await
            {
                Err(e) if e.code() != ErrorCode::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// A reservation with its status now.
    pub async fn reservation(&self, id: ReservationId) -> Result<Reservation> {
        self.store.reservation(id, self.clock.now()).await
    }

    /// A user's reservations, newest first.
    pub async fn user_reservations(&self, user_id: UserId) -> Result<Vec<Reservation>> {
        positive(user_id.0, "user_id")?;
        self.store
            .user_reservations(user_id, self.clock.now())
            .await
    }

    fn require_queue(&self) -> Result<&Arc<dyn WaitingQueue>> {
        self.queue
            .as_ref()
            .ok_or_else(|| Error::not_found("waiting queue", "(none configured)"))
    }

    /// Join the waiting room of a concert; `true` if the token is new.
    pub async fn enqueue(
        &self,
        user_id: UserId,
        concert_id: ConcertId,
    ) -> Result<(QueueTicket, bool)> {
        positive(user_id.0, "user_id")?;
        positive(concert_id.0, "concert_id")?;
        let queue = self.require_queue()?;
        self.store.concert(concert_id).await?;
        queue.enqueue(user_id, concert_id, self.clock.now()).await
    }

    /// A queue token's status now.
    pub async fn queue_status(&self, token: &QueueToken) -> Result<QueueTicket> {
        self.require_queue()?.status(token, self.clock.now()).await
    }

    /// Leave the waiting room: a waiting token is never admitted, an admitted one gives its
    /// place to the next in line at once. `not_found` for an unknown token; leaving twice
    /// changes nothing.
    pub async fn leave_queue(&self, token: &QueueToken) -> Result<()> {
        self.require_queue()?.leave(token, self.clock.now()).await
    }

    /// Admit the next waiting tokens as the rate allows (call it on a timer).
    pub async fn admit(&self) -> Result<u64> {
        self.require_queue()?.admit(self.clock.now()).await
    }

    /// How many wait and how many are admitted, per concert, now (`invalid_request` without a
    /// queue).
    pub async fn queue_lengths(&self) -> Result<Vec<QueueLength>> {
        self.require_queue()?.lengths(self.clock.now()).await
    }

    /// Expire up to `limit` due holds in storage (correctness never depends on this running).
    pub async fn expire_due(&self, limit: usize) -> Result<Vec<ReservationId>> {
        self.store.expire_due(self.clock.now(), limit).await
    }
}

mod owners;
mod provider;
mod requests;

pub use provider::{ProviderPayment, RecoveryReport};
pub use requests::{CancelRequest, ChargeRequest, HoldRequest, PayRequest};

#[cfg(test)]
mod tests;
