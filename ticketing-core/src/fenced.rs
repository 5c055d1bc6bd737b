//! The distributed-lock strategy: any store behind any lock manager, every seat write fenced.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::{
    Balance, CancelCommand, Catalog, ChargeCommand, Concert, ConcertId, ConfirmCommand, Error,
    HoldCommand, IdempotencyRecord, Lease, LockManager, OptionId, OptionSummary, OutboxRecord,
    Payment, Points, Reservation, ReservationId, Result, SeatId, SeatView, ShowOption, TicketStore,
    UserId,
};

/// Wraps a store so that every seat write happens under a lease of the lock manager on those
/// seats and carries the lease's fencing token; the store refuses a token older than one it
/// already accepted for a seat (`lock_lost`), so a holder whose lease lapsed while it was paused
/// can never write. A hold whose seats are leased by someone else is answered
/// `seat_unavailable` at the lock, without touching the store.
#[derive(Debug, Clone)]
pub struct FencedStore {
    store: Arc<dyn TicketStore>,
    locks: Arc<dyn LockManager>,
    lease: Duration,
    attempts: u32,
    sleep: Backoff,
}

/// Waits for a duration on the caller's runtime (e.g. `tokio::time::sleep`), boxed.
pub type Sleep =
    Arc<dyn Fn(std::time::Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

#[derive(Clone, Default)]
struct Backoff(Option<Sleep>);

impl std::fmt::Debug for Backoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Backoff(sleep)"
        } else {
            "Backoff(yield)"
        })
    }
}

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

    /// How many times confirm, cancel and keyed holds try for a busy lease before answering
    /// `unavailable` (default 200).
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// Sleep between tries for a busy lease, 1 ms doubling up to 50 ms (without it, tries only
    /// yield to the executor, which can starve a payment behind a stream of would-be holders).
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
            if attempt + 1 < attempts {
                match &self.sleep.0 {
                    Some(sleep) => {
                        let ms = 1u64 << attempt.min(6);
                        sleep(std::time::Duration::from_millis(ms.min(50))).await;
                    }
                    None => YieldNow(false).await,
                }
            }
        }
        Ok(None)
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
        Fut: Future<Output = Result<T>>,
    {
        let Some(lease) = self.lease(&keys, attempts).await? else {
            return Err(busy);
        };
        let result = write(lease.clone()).await;
        // A lapsed lease is harmless here: the fencing token already kept the write safe.
        let _ = self.locks.release(&lease).await;
        result
    }

    fn busy() -> Error {
        Error::Unavailable {
            message: "the seats' lock stayed busy".into(),
            retryable: true,
            source: None,
        }
    }
}

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

    async fn seats(&self, option: OptionId, now: DateTime<Utc>) -> Result<Vec<SeatView>> {
        self.store.seats(option, now).await
    }

    async fn hold(&self, cmd: HoldCommand) -> Result<Reservation> {
        let keys = Self::keys(cmd.option_id, &cmd.seat_ids);
        let busy = Error::SeatUnavailable {
            seats: cmd.seat_ids.clone(),
        };
        // A keyed request may be a retry racing its first attempt: wait for the lease, then
        // the store answers with the first result. Others are turned away at the lock.
        let attempts = if cmd.idempotency.is_some() {
            self.attempts
        } else {
            1
        };
        self.under_lease(keys, attempts, busy, |lease| {
            self.store.hold(HoldCommand {
                fence: Some(lease.token),
                ..cmd
            })
        })
        .await
    }

    async fn confirm(&self, cmd: ConfirmCommand) -> Result<Payment> {
        let r = self.store.reservation(cmd.reservation_id, cmd.now).await?;
        let keys = Self::keys(r.option_id, &r.seat_ids);
        self.under_lease(keys, self.attempts, Self::busy(), |lease| {
            self.store.confirm(ConfirmCommand {
                fence: Some(lease.token),
                ..cmd
            })
        })
        .await
    }

    async fn cancel(&self, cmd: CancelCommand) -> Result<Reservation> {
        let r = self.store.reservation(cmd.reservation_id, cmd.now).await?;
        let keys = Self::keys(r.option_id, &r.seat_ids);
        self.under_lease(keys, self.attempts, Self::busy(), |lease| {
            self.store.cancel(CancelCommand {
                fence: Some(lease.token),
                ..cmd
            })
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

    async fn health(&self) -> Result<()> {
        self.store.health().await
    }
}
