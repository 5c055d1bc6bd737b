//! Payments through a provider, end to end through the service and the fake provider
//! (docs/payments.md): success, decline, timeout then a late capture, a lost answer found by
//! the recovery job, a webhook sent twice, an unreachable provider, a cancel's refund. After
//! each, the books: for every reservation, what the provider captured minus what it refunded
//! is the reservation's amount if it is sold through the provider, else nothing.

use std::sync::Arc;

use chrono::Duration;

use crate::domain::{Reservation, ReservationStatus, SeatStatus};
use crate::error::ErrorCode;
use crate::money::Points;
use crate::provider::fake::{Behaviour, FakeProvider};
use crate::provider::{AttemptKind, AttemptState, RefundReason};
use crate::service::{CancelRequest, PayRequest, ProviderPayment, ServiceConfig, TicketingService};
use crate::testkit::{Harness, TestBackend, assert_code};

/// The service of these cases: the harness's store and clock, paying through `fake`.
fn service(h: &Harness, fake: &FakeProvider) -> TicketingService {
    h.service_with(ServiceConfig::default())
        .with_provider(Arc::new(fake.clone()))
}

/// Pay `reservation` through the provider as `user`, expecting it left pending; the attempt.
async fn pay_pending(
    svc: &TicketingService,
    user: crate::ids::UserId,
    reservation: crate::ids::ReservationId,
) -> crate::provider::PaymentAttempt {
    match svc
        .pay_by_provider(PayRequest::new(user, reservation))
        .await
    {
        Ok(ProviderPayment::Pending(attempt)) => attempt,
        other => panic!("expected pending, got {other:?}"),
    }
}

/// The books of one reservation: the provider's net (captured minus refunded) over every
/// charge made for it equals its amount if it is sold through the provider, else 0.
async fn assert_books(h: &Harness, fake: &FakeProvider, id: crate::ids::ReservationId) -> Points {
    let r: Reservation = h.store.reservation(id, h.now()).await.expect("read");
    let attempts = h.store.reservation_attempts(id).await.expect("attempts");
    let net: i64 = attempts
        .iter()
        .filter(|a| a.kind == AttemptKind::Charge)
        .map(|a| fake.net(&a.key).0)
        .sum();
    let sold = r.status == ReservationStatus::Confirmed;
    let expected = if sold { r.amount.0 } else { 0 };
    assert_eq!(
        net, expected,
        "provider net {net} for a reservation {:?} of {}",
        r.status, r.amount
    );
    Points(net)
}

/// A capture answered at once confirms the hold and sells its seats; points are untouched.
pub async fn a_provider_payment_confirms_and_takes_the_amount_once(b: TestBackend) {
    let h = Harness::new(b).await;
    let fake = FakeProvider::new();
    let svc = service(&h, &fake);
    let u = h.user(1);
    let r = h.hold(u, &[h.seats[0], h.seats[1]]).await.expect("hold");
    let paid = svc
        .pay_by_provider(PayRequest::new(u, r.id))
        .await
        .expect("pay");
    let ProviderPayment::Paid(p) = paid else {
        panic!("expected paid, got {paid:?}");
    };
    assert_eq!(p.amount, r.amount);
    assert_eq!(h.balance(u).await, Points(0));
    assert_eq!(
        h.statuses(&[h.seats[0], h.seats[1]]).await,
        [SeatStatus::Sold, SeatStatus::Sold]
    );
    assert_eq!(assert_books(&h, &fake, r.id).await, r.amount);
    assert_code(
        svc.pay_by_provider(PayRequest::new(u, r.id)).await,
        ErrorCode::InvalidState,
    );
    assert_eq!(fake.calls(), 1, "a paid hold is not charged again");
}

/// A decline takes nothing, answers `payment_declined`, and frees the seats at once.
pub async fn a_declined_provider_payment_frees_the_seats(b: TestBackend) {
    let h = Harness::new(b).await;
    let fake = FakeProvider::new();
    fake.script([Behaviour::Decline("card refused".into())]);
    let svc = service(&h, &fake);
    let u = h.user(1);
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    assert_code(
        svc.pay_by_provider(PayRequest::new(u, r.id)).await,
        ErrorCode::PaymentDeclined,
    );
    assert_eq!(h.statuses(&[h.seats[0]]).await, [SeatStatus::Available]);
    assert_books(&h, &fake, r.id).await;
    h.hold(h.user(2), &[h.seats[0]])
        .await
        .expect("the seat is free for another buyer");
}

/// A call that times out is pending, not failed: the seats stay kept, and the late capture,
/// reported by a webhook sent twice, confirms once.
pub async fn a_late_capture_reported_twice_confirms_once(b: TestBackend) {
    let h = Harness::new(b).await;
    let fake = FakeProvider::new();
    fake.script([Behaviour::Late]);
    fake.send_webhooks_twice();
    let svc = service(&h, &fake);
    let u = h.user(1);
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    h.clock.set(r.expires_at - Duration::seconds(30));
    let attempt = pay_pending(&svc, u, r.id).await;
    h.clock.advance(Duration::minutes(1));
    assert_eq!(
        h.statuses(&[h.seats[0]]).await,
        [SeatStatus::Held],
        "kept for the provider past the hold's own end"
    );
    fake.deliver_late();
    let hooks = fake.take_webhooks();
    assert_eq!(hooks.len(), 2);
    for hook in hooks {
        let a = svc.provider_webhook(&hook.key).await.expect("webhook");
        assert!(matches!(a.state, AttemptState::Succeeded { .. }));
        assert_eq!(a.id, attempt.id);
    }
    let now = h.store.reservation(r.id, h.now()).await.expect("read");
    assert_eq!(now.status, ReservationStatus::Confirmed);
    assert_eq!(assert_books(&h, &fake, r.id).await, r.amount);
    assert_code(
        svc.provider_webhook("charge-not-ours").await,
        ErrorCode::NotFound,
    );
}

/// The provider charged and the answer was lost: the recovery job asks by key and confirms.
pub async fn a_lost_answer_is_found_and_confirmed_by_recovery(b: TestBackend) {
    let h = Harness::new(b).await;
    let fake = FakeProvider::new();
    fake.script([Behaviour::LoseAnswer]);
    let svc = service(&h, &fake);
    let u = h.user(1);
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    pay_pending(&svc, u, r.id).await;
    let early = svc
        .recover_payments(100, Duration::minutes(1))
        .await
        .expect("recover");
    assert_eq!(early.charges_settled, 0, "within the grace, left alone");
    h.clock.advance(Duration::minutes(1));
    let report = svc
        .recover_payments(100, Duration::minutes(1))
        .await
        .expect("recover");
    assert_eq!(report.charges_settled, 1);
    let now = h.store.reservation(r.id, h.now()).await.expect("read");
    assert_eq!(now.status, ReservationStatus::Confirmed);
    assert_eq!(h.statuses(&[h.seats[0]]).await, [SeatStatus::Sold]);
    assert_eq!(assert_books(&h, &fake, r.id).await, r.amount);
}

/// A charge still unknown at its deadline is voided by the recovery job: nothing can be
/// captured under its key afterwards, and the hold is released.
pub async fn an_unknown_charge_past_its_deadline_is_voided_and_released(b: TestBackend) {
    let h = Harness::new(b).await;
    let fake = FakeProvider::new();
    fake.script([Behaviour::Late]);
    let svc = service(&h, &fake);
    let u = h.user(1);
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    let attempt = pay_pending(&svc, u, r.id).await;
    h.clock.set(attempt.deadline);
    let report = svc
        .recover_payments(100, Duration::seconds(30))
        .await
        .expect("recover");
    assert_eq!(report.charges_voided, 1);
    fake.deliver_late();
    assert_eq!(
        fake.captured(&attempt.key),
        Points(0),
        "voided: never captured"
    );
    let now = h.store.reservation(r.id, h.now()).await.expect("read");
    assert_ne!(now.status, ReservationStatus::Confirmed);
    assert_eq!(h.statuses(&[h.seats[0]]).await, [SeatStatus::Available]);
    assert_books(&h, &fake, r.id).await;
}

/// A capture that lands after the deadline, when the seats were no longer kept, is refunded
/// with the reason recorded, and nothing is sold.
pub async fn a_capture_after_the_deadline_is_refunded_by_recovery(b: TestBackend) {
    let h = Harness::new(b).await;
    let fake = FakeProvider::new();
    fake.script([Behaviour::Late]);
    let svc = service(&h, &fake);
    let u = h.user(1);
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    let attempt = pay_pending(&svc, u, r.id).await;
    h.clock.set(attempt.deadline + Duration::seconds(1));
    fake.deliver_late();
    let report = svc
        .recover_payments(100, Duration::seconds(30))
        .await
        .expect("recover");
    assert_eq!(report.charges_settled, 1);
    let refund = h
        .store
        .reservation_attempts(r.id)
        .await
        .expect("attempts")
        .into_iter()
        .find(|a| a.kind == AttemptKind::Refund)
        .expect("a refund was recorded");
    assert_eq!(refund.reason, Some(RefundReason::SeatsNotKept));
    assert!(matches!(refund.state, AttemptState::Succeeded { .. }));
    assert_eq!(assert_books(&h, &fake, r.id).await, Points(0));
    assert_eq!(h.statuses(&[h.seats[0]]).await, [SeatStatus::Available]);
}

/// An unreachable provider is `unavailable` with the attempt kept: a retry under the same
/// idempotency key charges under the same provider key and pays once.
pub async fn an_unreachable_provider_is_retried_under_the_same_key(b: TestBackend) {
    let h = Harness::new(b).await;
    let fake = FakeProvider::new();
    fake.script([Behaviour::Unavailable]);
    let svc = service(&h, &fake);
    let u = h.user(1);
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    let req = PayRequest::new(u, r.id).with_idempotency_key("pay-1".to_owned());
    assert_code(
        svc.pay_by_provider(req.clone()).await,
        ErrorCode::Unavailable,
    );
    assert_eq!(h.statuses(&[h.seats[0]]).await, [SeatStatus::Held]);
    let again = svc.pay_by_provider(req.clone()).await.expect("retry");
    assert!(matches!(again, ProviderPayment::Paid(_)), "{again:?}");
    let replay = svc.pay_by_provider(req).await.expect("replay");
    assert!(matches!(replay, ProviderPayment::Paid(_)), "{replay:?}");
    assert_eq!(
        fake.charge_keys().len(),
        1,
        "one provider key for every retry"
    );
    assert_eq!(assert_books(&h, &fake, r.id).await, r.amount);
}

/// Cancelling a reservation paid through the provider refunds it once, through the provider;
/// a refund the provider could not take at first is made by the recovery job.
pub async fn a_cancel_refunds_a_provider_payment_once(b: TestBackend) {
    let h = Harness::new(b).await;
    let fake = FakeProvider::new();
    fake.refunds_unavailable(1);
    let svc = service(&h, &fake);
    let u = h.user(1);
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    svc.pay_by_provider(PayRequest::new(u, r.id))
        .await
        .expect("pay");
    let cancelled = svc
        .cancel(CancelRequest::new(u, r.id))
        .await
        .expect("cancel");
    assert_eq!(cancelled.status, ReservationStatus::Cancelled);
    assert_eq!(h.statuses(&[h.seats[0]]).await, [SeatStatus::Available]);
    let attempts = h.store.reservation_attempts(r.id).await.expect("attempts");
    let charge = attempts
        .iter()
        .find(|a| a.kind == AttemptKind::Charge)
        .expect("charge");
    assert_eq!(fake.net(&charge.key), r.amount, "the refund call failed");
    let report = svc
        .recover_payments(100, Duration::zero())
        .await
        .expect("recover");
    assert_eq!(report.refunds_settled, 1);
    svc.recover_payments(100, Duration::zero())
        .await
        .expect("recover again");
    assert_eq!(fake.refunded(&charge.key), r.amount, "refunded once");
    assert_eq!(assert_books(&h, &fake, r.id).await, Points(0));
    assert_eq!(h.balance(u).await, Points(0), "points untouched");
    assert_code(
        svc.cancel(CancelRequest::new(u, r.id)).await,
        ErrorCode::InvalidState,
    );
}

/// A lost answer settled by everything at once (webhooks, recovery steps and retries of the
/// payment without a key, racing): confirmed once, one payment event, charged once, and each
/// retry that resumes the charge answers paid.
pub async fn concurrent_answers_settle_a_charge_once(b: TestBackend) {
    let h = Arc::new(Harness::new(b).await);
    let fake = FakeProvider::new();
    fake.script([Behaviour::LoseAnswer]);
    let svc = service(&h, &fake);
    let u = h.user(1);
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    let attempt = pay_pending(&svc, u, r.id).await;
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let (svc, key) = (svc.clone(), attempt.key.clone());
            tokio::spawn(async move {
                match i % 3 {
                    0 => svc.provider_webhook(&key).await.map(|_| None),
                    1 => svc
                        .recover_payments(100, Duration::zero())
                        .await
                        .map(|_| None),
                    _ => svc
                        .pay_by_provider(PayRequest::new(u, r.id))
                        .await
                        .map(Some),
                }
            })
        })
        .collect();
    for answer in super::join_all(tasks).await {
        match answer {
            Ok(None) | Ok(Some(ProviderPayment::Paid(_))) => {}
            // A retry that comes after the settle finds the reservation paid.
            Err(e) if e.code() == ErrorCode::InvalidState => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let now = h.store.reservation(r.id, h.now()).await.expect("read");
    assert_eq!(now.status, ReservationStatus::Confirmed);
    assert_eq!(assert_books(&h, &fake, r.id).await, r.amount);
    assert_eq!(fake.charge_keys().len(), 1, "one charge under one key");
    let paid_events = h
        .store
        .outbox_read(0, 10_000)
        .await
        .expect("outbox")
        .iter()
        .filter(|e| {
            matches!(&e.event.kind, crate::domain::EventKind::HoldPaid { reservation_id, .. } if *reservation_id == r.id)
        })
        .count();
    assert_eq!(paid_events, 1, "one payment event");
}
