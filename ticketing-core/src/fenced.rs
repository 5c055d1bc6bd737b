//! The distributed-lock strategy: any store behind any lock manager, every seat write fenced.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::domain::{
    Balance, Catalog, Concert, OptionSummary, OutboxRecord, Payment, Reservation, SeatView,
    ShowOption,
};
use crate::error::{Error, Result};
use crate::idempotency::IdempotencyRecord;
use crate::ids::{ConcertId, OptionId, ReservationId, SeatId, UserId};
use crate::lock::{Acquired, Lease, LockManager};
use crate::money::Points;
use crate::store::{CancelCommand, ChargeCommand, HoldCommand, PayCommand, TicketStore};

/// Wraps a store so that every hold, payment and cancel writes its seats under a lease of the
/// lock manager on those seats and carries the lease's fencing token (the steps of a payment
/// through a provider are forwarded unleased: each is one atomic step of the inner store); the store refuses a token older than one it
/// already accepted for a seat (`lock_lost`), so a holder whose lease lapsed while it was paused
/// can never write. A hold whose seats are leased by someone else is answered
/// `seat_unavailable` at the lock, without touching the store.
///
/// After a new hold (or an unkeyed payment) the lease is released with a "taken" hint on the
/// seats ([`LockManager::release_taken`]) until the hold's end (for a sale, [`SOLD_HINT`]), and
/// a cancel clears it: later holds of those seats are turned away at the lock too, so on a hot
/// seat only the first buyer reaches the store. A hint is judged against the caller's clock
/// and never lets a write through; if clearing one fails, a freed seat looks taken to the lock
/// until the hint ends. A keyed hold refused by a hint asks the store whether its key was used
/// before (its first attempt may have left the hint) and if so goes on to the store for the
/// first answer; a replayed answer leaves no hint, as the seats may have changed since. A
/// payment through a provider leaves no hint either, and one that releases seats (declined,
/// refunded) clears theirs.
#[derive(Debug, Clone)]
pub struct FencedStore {
    store: Arc<dyn TicketStore>,
    locks: Arc<dyn LockManager>,
    lease: Duration,
    attempts: u32,
    sleep: Backoff,
}

/// Waits for a duration on the caller's runtime (e.g. `tokio::time::sleep`), boxed. The one
/// `std::time::Duration` of the API: it is what runtimes' timers take.
pub type Sleep =
    Arc<dyn Fn(std::time::Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

#[derive(Clone, Default)]
struct Backoff(Option<Sleep>);

/// What a successful write tells the lock about its seats.
enum Hint {
    /// Taken until then (a hold's end; [`SOLD_HINT`] after a sale).
    TakenUntil(DateTime<Utc>),
    /// Free again (a cancel).
    Freed,
    /// Nothing to say.
    None,
}

impl std::fmt::Debug for Backoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Backoff(sleep)"
        } else {
            "Backoff(tokio or yield)"
        })
    }
}

/// How long a sale's "taken" hint lasts (a cancel clears it earlier).
pub const SOLD_HINT: Duration = Duration::minutes(10);

/// The lock key of a seat: hash-tagged by option, so one hold's keys share a Cluster slot.
pub fn seat_key(option: OptionId, seat: SeatId) -> String {
    format!("{{opt:{option}}}:seat:{seat}")
}

/// Yield to the executor once (runtime-agnostic), between lease attempts.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

impl FencedStore {
    /// Guard `store` with `locks`; leases last `lease` (default 5 s is a good start: longer
    /// than any one store call, short enough that a crashed holder frees its seats soon).
    pub fn new(store: Arc<dyn TicketStore>, locks: Arc<dyn LockManager>, lease: Duration) -> Self {
        Self {
            store,
            locks,
            lease,
            attempts: 200,
            sleep: Backoff::default(),
        }
    }

    /// The reservation a payment or cancel names, refused `forbidden` before any lease is taken
    /// when `user` does not own it: someone else's request must not lease (and so delay) the
    /// owner's seats. The store still checks the owner under the lease.
    async fn owned(
        &self,
        id: ReservationId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        let r = self.store.reservation(id, now).await?;
        if r.user_id != user {
            return Err(Error::Forbidden);
        }
        Ok(r)
    }

    /// How many times payments, cancels and keyed holds try for a busy lease before answering
    /// `unavailable` (default 200).
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// Sleep between tries for a busy lease, 1 ms doubling up to 50 ms. Without it the tries
    /// sleep on tokio's timer when called on a tokio runtime and the `tokio` feature (default)
    /// is on; elsewhere they only yield to the executor, and 200 yields can pass while the
    /// lease's holder waits for a core, answering `seat_unavailable` or `unavailable` to
    /// requests that would have got the lease a moment later (and can starve a payment behind
    /// a stream of would-be holders): give a runtime other than tokio its timer here.
    pub fn with_sleep(mut self, sleep: Sleep) -> Self {
        self.sleep = Backoff(Some(sleep));
        self
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn TicketStore> {
        &self.store
    }

    fn keys(option: OptionId, seats: &[SeatId]) -> Vec<String> {
        seats.iter().map(|s| seat_key(option, *s)).collect()
    }

    /// Lease the keys, trying up to `attempts` times.
    async fn lease(&self, keys: &[String], attempts: u32) -> Result<Option<Lease>> {
        for attempt in 0..attempts {
            if let Some(lease) = self.locks.try_acquire(keys, self.lease).await? {
                return Ok(Some(lease));
            }
            tracing::debug!(target: "ticketing::lock", ?keys, attempt, "lease busy");
            if attempt + 1 < attempts {
                self.pause(attempt).await;
            }
        }
        Ok(None)
    }

    /// Wait between tries for a busy lease: 1 ms doubling up to 50 ms, on the given timer or
    /// tokio's, else a yield.
    async fn pause(&self, attempt: u32) {
        let wait = std::time::Duration::from_millis((1u64 << attempt.min(6)).min(50));
        match &self.sleep.0 {
            Some(sleep) => sleep(wait).await,
            #[cfg(feature = "tokio")]
            None if tokio::runtime::Handle::try_current().is_ok() => tokio::time::sleep(wait).await,
            None => YieldNow(false).await,
        }
    }

    async fn under_lease<T, F, Fut>(
        &self,
        keys: Vec<String>,
        attempts: u32,
        busy: Error,
        write: F,
    ) -> Result<T>
    where
        F: FnOnce(Lease) -> Fut,
        Fut: Future<Output = Result<(T, Hint)>>,
    {
        let Some(lease) = self.lease(&keys, attempts).await? else {
            return Err(busy);
        };
        self.finish(&lease, write(lease.clone()).await).await
    }

    /// Leave the hint the write asks for, and release the lease. A lapsed lease is harmless
    /// here: the fencing token already kept the write safe (and a lapsed lease leaves no hint).
    async fn finish<T>(&self, lease: &Lease, result: Result<(T, Hint)>) -> Result<T> {
        let (released, result) = match result {
            Ok((value, hint)) => {
                let released = match hint {
                    Hint::TakenUntil(until) => self.locks.release_taken(lease, until).await,
                    Hint::Freed => {
                        self.clear_hints(&lease.keys).await;
                        self.locks.release(lease).await
                    }
                    Hint::None => self.locks.release(lease).await,
                };
                (released, Ok(value))
            }
            Err(e) => (self.locks.release(lease).await, Err(e)),
        };
        match (&result, released) {
            (Err(Error::LockLost), _) => tracing::debug!(
                target: "ticketing::lock",
                keys = ?lease.keys,
                token = %lease.token,
                "write refused: the lease was lost to a newer token"
            ),
            (_, Ok(true)) => {}
            (_, Ok(false)) => tracing::debug!(
                target: "ticketing::lock",
                keys = ?lease.keys,
                token = %lease.token,
                "the lease had lapsed before its release (the fencing token kept the write safe)"
            ),
            (_, Err(e)) => tracing::debug!(
                target: "ticketing::lock",
                keys = ?lease.keys,
                error = %e,
                "releasing a lease failed; it lapses at its end"
            ),
        }
        result
    }

    /// Clear the "taken" hints of freed seats; a failure is logged and harmless (the hints
    /// lapse at their end, and never let a write through).
    async fn clear_hints(&self, keys: &[String]) {
        if let Err(e) = self.locks.clear_taken(keys).await {
            tracing::debug!(
                target: "ticketing::lock",
                ?keys,
                error = %e,
                "clearing the taken hints failed; they lapse at their end"
            );
        }
    }

    fn busy() -> Error {
        Error::Unavailable {
            message: "the seats' lock stayed busy".into(),
            retryable: true,
            source: None,
        }
    }
}

// A wrapper forwards every method, defaults included, or it silently loses the inner one's.
#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl TicketStore for FencedStore {
    async fn seed(&self, catalog: &Catalog) -> Result<()> {
        self.store.seed(catalog).await
    }

    async fn concerts(&self) -> Result<Vec<Concert>> {
        self.store.concerts().await
    }

    async fn concert(&self, concert: ConcertId) -> Result<Concert> {
        self.store.concert(concert).await
    }

    async fn options(&self, concert: ConcertId, now: DateTime<Utc>) -> Result<Vec<OptionSummary>> {
        self.store.options(concert, now).await
    }

    async fn option(&self, option: OptionId) -> Result<ShowOption> {
        self.store.option(option).await
    }

    async fn set_sale_window(
        &self,
        option: OptionId,
        opens_at: Option<DateTime<Utc>>,
        closes_at: Option<DateTime<Utc>>,
    ) -> Result<ShowOption> {
        self.store
            .set_sale_window(option, opens_at, closes_at)
            .await
    }

    async fn seats(&self, option: OptionId, now: DateTime<Utc>) -> Result<Vec<SeatView>> {
        self.store.seats(option, now).await
    }

    async fn hold(&self, cmd: HoldCommand) -> Result<Reservation> {
        let keys = Self::keys(cmd.option_id, &cmd.seat_ids);
        let busy = Error::SeatUnavailable {
            seats: cmd.seat_ids.clone(),
        };
        // Turned away at the lock: by a "taken" hint, or by a lease. A keyed request may be a
        // retry racing its first attempt, so it waits for a busy lease, and when its seats are
        // hinted taken it asks the store whether its key was used (the hint may be its first
        // attempt's): if so, it goes on to the store, which answers with the first result.
        let cmd_id = cmd.reservation_id;
        let attempts = if cmd.idempotency.is_some() {
            self.attempts
        } else {
            1
        };
        let mut lease = None;
        for attempt in 0..attempts {
            match self
                .locks
                .try_acquire_untaken(&keys, self.lease, cmd.now)
                .await?
            {
                Acquired::Lease(l) => {
                    lease = Some(l);
                    break;
                }
                Acquired::Taken(taken) => {
                    let used = match &cmd.idempotency {
                        Some(k) => self
                            .store
                            .idempotency_record(k.user_id, &k.key)
                            .await?
                            .is_some(),
                        None => false,
                    };
                    if !used {
                        tracing::debug!(
                            target: "ticketing::lock",
                            ?taken,
                            "hold refused early by a taken hint"
                        );
                        let seats = cmd
                            .seat_ids
                            .iter()
                            .zip(&keys)
                            .filter(|(_, key)| taken.contains(key))
                            .map(|(seat, _)| *seat)
                            .collect();
                        return Err(Error::SeatUnavailable { seats });
                    }
                    lease = self.lease(&keys, attempts - attempt).await?;
                    break;
                }
                _ => {
                    tracing::debug!(target: "ticketing::lock", ?keys, attempt, "lease busy");
                    if attempt + 1 < attempts {
                        self.pause(attempt).await;
                    }
                }
            }
        }
        let Some(lease) = lease else {
            return Err(busy);
        };
        let held = self
            .store
            .hold(HoldCommand {
                fence: Some(lease.token),
                ..cmd
            })
            .await
            .map(|r| {
                // A new hold has the id this command chose; a replay has its first attempt's.
                let hint = if r.id == cmd_id {
                    Hint::TakenUntil(r.expires_at)
                } else {
                    Hint::None
                };
                (r, hint)
            });
        self.finish(&lease, held).await
    }

    async fn pay(&self, cmd: PayCommand) -> Result<Payment> {
        let r = self.owned(cmd.reservation_id, cmd.user_id, cmd.now).await?;
        let keys = Self::keys(r.option_id, &r.seat_ids);
        let now = cmd.now;
        let keyed = cmd.idempotency.is_some();
        self.under_lease(keys, self.attempts, Self::busy(), |lease| async move {
            let paid = self
                .store
                .pay(PayCommand {
                    fence: Some(lease.token),
                    ..cmd
                })
                .await?;
            // Sold: taken until a cancel clears it. A keyed payment may be a replay, after
            // which the seats may have been freed: no hint then.
            let hint = if keyed {
                Hint::None
            } else {
                Hint::TakenUntil(now + SOLD_HINT)
            };
            Ok((paid, hint))
        })
        .await
    }

    async fn cancel(&self, cmd: CancelCommand) -> Result<Reservation> {
        let r = self.owned(cmd.reservation_id, cmd.user_id, cmd.now).await?;
        let keys = Self::keys(r.option_id, &r.seat_ids);
        self.under_lease(keys, self.attempts, Self::busy(), |lease| async move {
            let cancelled = self
                .store
                .cancel(CancelCommand {
                    fence: Some(lease.token),
                    ..cmd
                })
                .await?;
            // The seats are free again: clear their "taken" hints, also when the cancel was a
            // replay of a keyed one (its seats may have been held by someone else since): a
            // wrong clear only lets losers reach the store, where a stale hint would turn
            // buyers away from free seats.
            Ok((cancelled, Hint::Freed))
        })
        .await
    }

    async fn expire_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<ReservationId>> {
        self.store.expire_due(now, limit).await
    }

    async fn reservation(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation> {
        self.store.reservation(id, now).await
    }

    async fn user_reservations(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reservation>> {
        self.store.user_reservations(user, now).await
    }

    async fn charge(&self, cmd: ChargeCommand) -> Result<Balance> {
        self.store.charge(cmd).await
    }

    async fn balance(&self, user: UserId) -> Result<Points> {
        self.store.balance(user).await
    }

    async fn idempotency_record(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        self.store.idempotency_record(user, key).await
    }

    async fn outbox_read(&self, after: u64, limit: usize) -> Result<Vec<OutboxRecord>> {
        self.store.outbox_read(after, limit).await
    }

    async fn outbox_ack(&self, seqs: &[u64]) -> Result<()> {
        self.store.outbox_ack(seqs).await
    }

    async fn prune(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        self.store.prune(before, limit).await
    }
    async fn health(&self) -> Result<()> {
        // Every change goes through a lease: with the lock manager down none can happen.
        self.store.health().await?;
        self.locks.health().await
    }

    // Provider payments are not leased: each is one atomic step of the inner store, and the
    // provider is called between steps, never under a lease.
    async fn begin_provider_payment(
        &self,
        cmd: crate::provider::BeginPaymentCommand,
    ) -> Result<crate::provider::PaymentAttempt> {
        self.store.begin_provider_payment(cmd).await
    }

    async fn settle_charge(
        &self,
        cmd: crate::provider::SettleChargeCommand,
    ) -> Result<crate::provider::ChargeSettled> {
        use crate::provider::ChargeSettled;
        let now = cmd.now;
        let settled = self.store.settle_charge(cmd).await?;
        // Seats a declined or refunded charge freed must not look taken to the lock: clear
        // their hints (a wrong clear only lets losers reach the store).
        if let ChargeSettled::Released(a) | ChargeSettled::RefundDue(a) = &settled {
            let r = self.store.reservation(a.reservation_id, now).await?;
            self.clear_hints(&Self::keys(r.option_id, &r.seat_ids))
                .await;
        }
        Ok(settled)
    }

    async fn settle_refund(
        &self,
        cmd: crate::provider::SettleRefundCommand,
    ) -> Result<crate::provider::PaymentAttempt> {
        self.store.settle_refund(cmd).await
    }

    async fn payment_attempt(
        &self,
        id: crate::ids::AttemptId,
    ) -> Result<crate::provider::PaymentAttempt> {
        self.store.payment_attempt(id).await
    }

    async fn reservation_attempts(
        &self,
        id: ReservationId,
    ) -> Result<Vec<crate::provider::PaymentAttempt>> {
        self.store.reservation_attempts(id).await
    }

    async fn pending_attempts(&self, limit: usize) -> Result<Vec<crate::provider::PaymentAttempt>> {
        self.store.pending_attempts(limit).await
    }
}

#[cfg(test)]
mod tests;
