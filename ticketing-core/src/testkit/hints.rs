//! "Taken" hints of the distributed-lock strategy, for any [`LockManager`]: the losers of a
//! taken seat are turned away at the lock and never reach the store, and hints never hide a
//! seat that is free.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use super::{Harness, TestBackend, assert_code, hold_request, pay_request};
use crate::domain::{
    Balance, Catalog, Concert, OptionSummary, OutboxRecord, Payment, Reservation, SeatView,
    ShowOption,
};
use crate::error::{Error, ErrorCode, Result};
use crate::fenced::FencedStore;
use crate::idempotency::IdempotencyRecord;
use crate::ids::{ConcertId, OptionId, ReservationId, UserId};
use crate::lock::LockManager;
use crate::money::Points;
use crate::queue::WaitingQueue;
use crate::service::{CancelRequest, HoldRequest};
use crate::store::{CancelCommand, ChargeCommand, HoldCommand, PayCommand, TicketStore};

/// A store that counts the holds that reach it and passes everything on.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn TicketStore>,
    holds: Arc<AtomicU64>,
}

impl CountingStore {
    /// Count the holds reaching `inner`; the counter is shared with the caller.
    pub fn new(inner: Arc<dyn TicketStore>) -> (Self, Arc<AtomicU64>) {
        let holds = Arc::new(AtomicU64::new(0));
        (
            Self {
                inner,
                holds: holds.clone(),
            },
            holds,
        )
    }
}

// A wrapper forwards every method, defaults included, or it silently loses the inner one's.
#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl TicketStore for CountingStore {
    async fn seed(&self, catalog: &Catalog) -> Result<()> {
        self.inner.seed(catalog).await
    }
    async fn concerts(&self) -> Result<Vec<Concert>> {
        self.inner.concerts().await
    }
    async fn concert(&self, concert: ConcertId) -> Result<Concert> {
        self.inner.concert(concert).await
    }
    async fn options(&self, concert: ConcertId, now: DateTime<Utc>) -> Result<Vec<OptionSummary>> {
        self.inner.options(concert, now).await
    }
    async fn option(&self, option: OptionId) -> Result<ShowOption> {
        self.inner.option(option).await
    }
    async fn set_sale_window(
        &self,
        option: OptionId,
        opens_at: Option<DateTime<Utc>>,
        closes_at: Option<DateTime<Utc>>,
    ) -> Result<ShowOption> {
        self.inner
            .set_sale_window(option, opens_at, closes_at)
            .await
    }
    async fn seats(&self, option: OptionId, now: DateTime<Utc>) -> Result<Vec<SeatView>> {
        self.inner.seats(option, now).await
    }
    async fn hold(&self, cmd: HoldCommand) -> Result<Reservation> {
        self.holds.fetch_add(1, Ordering::SeqCst);
        self.inner.hold(cmd).await
    }
    async fn pay(&self, cmd: PayCommand) -> Result<Payment> {
        self.inner.pay(cmd).await
    }
    async fn cancel(&self, cmd: CancelCommand) -> Result<Reservation> {
        self.inner.cancel(cmd).await
    }
    async fn expire_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<ReservationId>> {
        self.inner.expire_due(now, limit).await
    }
    async fn reservation(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation> {
        self.inner.reservation(id, now).await
    }
    async fn user_reservations(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reservation>> {
        self.inner.user_reservations(user, now).await
    }
    async fn charge(&self, cmd: ChargeCommand) -> Result<Balance> {
        self.inner.charge(cmd).await
    }
    async fn balance(&self, user: UserId) -> Result<Points> {
        self.inner.balance(user).await
    }
    async fn idempotency_record(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        self.inner.idempotency_record(user, key).await
    }
    async fn outbox_read(&self, after: u64, limit: usize) -> Result<Vec<OutboxRecord>> {
        self.inner.outbox_read(after, limit).await
    }
    async fn outbox_ack(&self, seqs: &[u64]) -> Result<()> {
        self.inner.outbox_ack(seqs).await
    }
    async fn prune(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        self.inner.prune(before, limit).await
    }
    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }

    async fn begin_provider_payment(
        &self,
        cmd: crate::provider::BeginPaymentCommand,
    ) -> Result<crate::provider::PaymentAttempt> {
        self.inner.begin_provider_payment(cmd).await
    }

    async fn settle_charge(
        &self,
        cmd: crate::provider::SettleChargeCommand,
    ) -> Result<crate::provider::ChargeSettled> {
        self.inner.settle_charge(cmd).await
    }

    async fn settle_refund(
        &self,
        cmd: crate::provider::SettleRefundCommand,
    ) -> Result<crate::provider::PaymentAttempt> {
        self.inner.settle_refund(cmd).await
    }

    async fn payment_attempt(
        &self,
        id: crate::ids::AttemptId,
    ) -> Result<crate::provider::PaymentAttempt> {
        self.inner.payment_attempt(id).await
    }

    async fn reservation_attempts(
        &self,
        id: crate::ids::ReservationId,
    ) -> Result<Vec<crate::provider::PaymentAttempt>> {
        self.inner.reservation_attempts(id).await
    }

    async fn pending_attempts(&self, limit: usize) -> Result<Vec<crate::provider::PaymentAttempt>> {
        self.inner.pending_attempts(limit).await
    }
}

/// With `locks` in front of `inner` (a fresh store): after a hold, the losers of its seat are
/// refused at the lock (naming only the taken seats) without reaching the store, also after
/// the seat is sold; a cancel, or the hold's end on the caller's clock, frees the seat for the
/// next buyer at once; a keyed retry gets its first answer, a new key of another buyer is
/// refused at the lock.
pub async fn taken_hints_keep_losers_off_the_store(
    inner: Arc<dyn TicketStore>,
    locks: Arc<dyn LockManager>,
    queue: impl WaitingQueue,
) {
    let (counting, holds) = CountingStore::new(inner);
    let fenced = FencedStore::new(Arc::new(counting), locks, Duration::seconds(5));
    let h = Harness::new(TestBackend::new(fenced, queue)).await;
    let reached = || holds.load(Ordering::SeqCst);
    let s = &h.seats;

    let first = h.hold(h.user(1), &[s[0]]).await.expect("first hold");
    assert_eq!(reached(), 1);
    for i in 2..22 {
        match h.hold(h.user(i), &[s[0]]).await {
            Err(Error::SeatUnavailable { seats }) => assert_eq!(seats, vec![s[0]]),
            other => panic!("expected seat_unavailable, got {other:?}"),
        }
    }
    match h.hold(h.user(30), &[s[1], s[0]]).await {
        Err(Error::SeatUnavailable { seats }) => assert_eq!(seats, vec![s[0]], "only the taken"),
        other => panic!("expected seat_unavailable, got {other:?}"),
    }
    assert_eq!(reached(), 1, "losers never reached the store");

    // A cancel frees the seat for the very next buyer.
    h.service
        .cancel(CancelRequest::new(h.user(1), first.id))
        .await
        .expect("cancel");
    let second = h
        .hold(h.user(31), &[s[0]])
        .await
        .expect("freed by the cancel");
    assert_eq!(reached(), 2);

    // The hold's end (the caller's clock) frees it too.
    h.clock.advance(second.expires_at - h.now());
    h.hold(h.user(32), &[s[0]]).await.expect("freed by expiry");
    assert_eq!(reached(), 3);

    // A keyed retry gets the first answer back, not a refusal by the hint its first attempt
    // left (the service answers it from the idempotency record; racing retries are the
    // conformance suite's `concurrent_retries_with_one_key_hold_once`).
    let keyed = HoldRequest {
        idempotency_key: Some("once".into()),
        ..hold_request(h.user(33), h.option, &[s[2]])
    };
    let a = h.service.hold(keyed.clone()).await.expect("keyed hold");
    let b = h.service.hold(keyed).await.expect("keyed retry");
    assert_eq!(a.id, b.id);
    assert_eq!(reached(), 4);
    // Another buyer's keyed hold of that seat is refused at the lock as well (its key is new).
    let other = HoldRequest {
        idempotency_key: Some("mine".into()),
        ..hold_request(h.user(35), h.option, &[s[2]])
    };
    assert_code(h.service.hold(other).await, ErrorCode::SeatUnavailable);
    assert_eq!(reached(), 4);

    // Sold: turned away at the lock also after the hold's own hint ended.
    h.charge(h.user(33), Points(100_000)).await;
    h.service
        .pay(pay_request(h.user(33), a.id))
        .await
        .expect("pay");
    h.clock
        .advance(a.expires_at - h.now() + Duration::minutes(1));
    assert_code(
        h.hold(h.user(34), &[s[2]]).await,
        ErrorCode::SeatUnavailable,
    );
    assert_eq!(reached(), 4);
}
