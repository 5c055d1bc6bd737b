//! Payments through a provider, at the store (docs/payments.md): begin keeps the seats, a
//! capture in time confirms once, a decline releases, a late capture is refunded, a cancel of a
//! provider-paid reservation refunds through the provider, and pending attempts are listed.

use chrono::Duration;

use crate::domain::{PaymentMethod, ReservationStatus, SeatStatus};
use crate::error::ErrorCode;
use crate::idempotency::IdempotencyKey;
use crate::ids::{AttemptId, PaymentId, ReservationId, UserId};
use crate::money::Points;
use crate::provider::{
    AttemptKind, AttemptState, BeginPaymentCommand, ChargeOutcome, ChargeSettled, PaymentAttempt,
    RefundOutcome, RefundReason, SettleChargeCommand, SettleRefundCommand,
};
use crate::service::CancelRequest;
use crate::testkit::{Harness, PRICE, TestBackend, assert_code};

/// How long a provider call keeps the seats in these cases.
fn bound() -> Duration {
    Duration::minutes(2)
}

async fn begin(h: &Harness, user: UserId, reservation: ReservationId) -> PaymentAttempt {
    h.store
        .begin_provider_payment(BeginPaymentCommand {
            reservation_id: reservation,
            user_id: user,
            now: h.now(),
            bound: bound(),
            attempt_id: AttemptId::new(),
            idempotency: None,
        })
        .await
        .expect("begin a provider payment")
}

async fn settle(h: &Harness, attempt: &PaymentAttempt, outcome: ChargeOutcome) -> ChargeSettled {
    h.store
        .settle_charge(SettleChargeCommand {
            attempt_id: attempt.id,
            outcome,
            now: h.now(),
            payment_id: PaymentId::new(),
            refund_id: AttemptId::new(),
        })
        .await
        .expect("settle a charge")
}

fn captured() -> ChargeOutcome {
    ChargeOutcome::Captured {
        reference: "ch_1".into(),
    }
}

/// While a charge is in flight its seats are kept (past the hold's own end, within the bound),
/// and paying with points, cancelling and a second charge wait for its outcome.
pub async fn a_charge_in_flight_keeps_the_seats_and_blocks_other_moves(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(10_000)).await;
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    h.clock.set(r.expires_at - Duration::seconds(1));
    let a = begin(&h, u, r.id).await;
    assert!(a.is_pending());
    assert_eq!(a.amount, r.amount);
    assert_eq!(a.deadline, h.now() + bound());
    h.clock.set(r.expires_at + Duration::seconds(30));
    assert_eq!(h.statuses(&[h.seats[0]]).await, [SeatStatus::Held]);
    assert_code(h.pay(u, r.id).await, ErrorCode::InvalidState);
    assert_code(
        h.service.cancel(CancelRequest::new(u, r.id)).await,
        ErrorCode::InvalidState,
    );
    assert_code(
        h.store
            .begin_provider_payment(BeginPaymentCommand {
                reservation_id: r.id,
                user_id: u,
                now: h.now(),
                bound: bound(),
                attempt_id: AttemptId::new(),
                idempotency: None,
            })
            .await,
        ErrorCode::InvalidState,
    );
    assert_eq!(
        h.balance(u).await,
        Points(10_000),
        "nothing taken from points"
    );
}

/// A capture while the seats are kept confirms the reservation and sells them, taking nothing
/// from points; the same answer again (a webhook sent twice) changes nothing.
pub async fn a_capture_in_time_confirms_once(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let r = h.hold(u, &[h.seats[0], h.seats[1]]).await.expect("hold");
    let a = begin(&h, u, r.id).await;
    let ChargeSettled::Confirmed(payment) = settle(&h, &a, captured()).await else {
        panic!("expected a confirmed payment");
    };
    assert_eq!(payment.amount, r.amount);
    assert!(matches!(payment.method, PaymentMethod::Provider { .. }));
    assert_eq!(h.balance(u).await, Points(0));
    let now = h.store.reservation(r.id, h.now()).await.expect("read");
    assert_eq!(now.status, ReservationStatus::Confirmed);
    assert_eq!(
        h.statuses(&[h.seats[0], h.seats[1]]).await,
        [SeatStatus::Sold, SeatStatus::Sold]
    );
    let again = settle(&h, &a, captured()).await;
    assert!(matches!(again, ChargeSettled::AlreadySettled(ref s) if !s.is_pending()));
    assert!(
        h.store
            .pending_attempts(100)
            .await
            .expect("pending")
            .iter()
            .all(|p| p.reservation_id != r.id)
    );
}

/// A declined charge takes nothing and releases the reservation's seats at once.
pub async fn a_declined_charge_releases_the_seats(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    let a = begin(&h, u, r.id).await;
    let declined = ChargeOutcome::Declined {
        reason: "card declined".into(),
    };
    let ChargeSettled::Released(failed) = settle(&h, &a, declined).await else {
        panic!("expected released");
    };
    assert!(matches!(failed.state, AttemptState::Failed { .. }));
    let now = h.store.reservation(r.id, h.now()).await.expect("read");
    assert_eq!(now.status, ReservationStatus::Cancelled);
    assert_eq!(now.refunded_amount, Points(0));
    assert_eq!(h.statuses(&[h.seats[0]]).await, [SeatStatus::Available]);
    h.hold(h.user(2), &[h.seats[0]])
        .await
        .expect("the seat is for sale again");
}

/// A charge captured after its seats stopped being kept (the hold expired and the seat was
/// sold to someone else) is refunded, with the reason recorded; the seat stays the other
/// buyer's.
pub async fn a_capture_after_the_seats_were_lost_is_refunded(b: TestBackend) {
    let h = Harness::new(b).await;
    let (u, other) = (h.user(1), h.user(2));
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    let a = begin(&h, u, r.id).await;
    h.clock.set(a.deadline);
    h.store.expire_due(h.now(), 100).await.expect("sweep");
    let taken = h
        .hold(other, &[h.seats[0]])
        .await
        .expect("another buyer holds it");
    let ChargeSettled::RefundDue(refund) = settle(&h, &a, captured()).await else {
        panic!("expected a refund");
    };
    assert_eq!(refund.kind, AttemptKind::Refund);
    assert_eq!(refund.reason, Some(RefundReason::SeatsNotKept));
    assert_eq!(refund.amount, r.amount);
    assert_eq!(refund.charge_key.as_deref(), Some(a.key.as_str()));
    let charge = h.store.payment_attempt(a.id).await.expect("charge");
    assert!(matches!(charge.state, AttemptState::Succeeded { .. }));
    assert!(
        h.store
            .pending_attempts(100)
            .await
            .expect("pending")
            .iter()
            .any(|p| p.id == refund.id),
        "the refund waits to be made"
    );
    let done = h
        .store
        .settle_refund(SettleRefundCommand {
            attempt_id: refund.id,
            outcome: RefundOutcome::Refunded {
                reference: "re_1".into(),
            },
            now: h.now(),
        })
        .await
        .expect("settle the refund");
    assert!(matches!(done.state, AttemptState::Succeeded { .. }));
    let still = h.store.reservation(taken.id, h.now()).await.expect("read");
    assert_eq!(
        still.status,
        ReservationStatus::Held,
        "the other buyer keeps it"
    );
}

/// Cancelling a reservation paid through the provider frees its seats and records a refund
/// through the provider; the wallet is not credited.
pub async fn cancelling_a_provider_paid_reservation_refunds_through_the_provider(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    let a = begin(&h, u, r.id).await;
    settle(&h, &a, captured()).await;
    let cancelled = h
        .service
        .cancel(CancelRequest::new(u, r.id))
        .await
        .expect("cancel");
    assert_eq!(cancelled.status, ReservationStatus::Cancelled);
    assert_eq!(
        cancelled.refunded_amount,
        Points(0),
        "refunded_amount counts points given back; the card's refund is an attempt"
    );
    assert_eq!(
        h.balance(u).await,
        Points(0),
        "no points: the card is refunded"
    );
    assert_eq!(h.statuses(&[h.seats[0]]).await, [SeatStatus::Available]);
    let pending = h.store.pending_attempts(100).await.expect("pending");
    let refund = pending
        .iter()
        .find(|p| p.reservation_id == r.id)
        .expect("a refund to make");
    assert_eq!(
        (refund.kind, refund.reason, refund.amount),
        (AttemptKind::Refund, Some(RefundReason::Cancelled), PRICE)
    );
}

/// A keyed begin retried gets the first attempt back; another user's reservation is
/// `forbidden`; pending attempts are listed oldest first.
pub async fn a_keyed_begin_replays_and_pending_attempts_are_listed(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let r1 = h.hold(u, &[h.seats[0]]).await.expect("hold");
    let r2 = h.hold(u, &[h.seats[1]]).await.expect("hold");
    let key = IdempotencyKey::new(u, "pay-1", format!("provider-pay:{}", r1.id)).expect("key");
    let cmd = BeginPaymentCommand {
        reservation_id: r1.id,
        user_id: u,
        now: h.now(),
        bound: bound(),
        attempt_id: AttemptId::new(),
        idempotency: Some(key),
    };
    let first = h
        .store
        .begin_provider_payment(cmd.clone())
        .await
        .expect("begin");
    let again = h
        .store
        .begin_provider_payment(BeginPaymentCommand {
            attempt_id: AttemptId::new(),
            ..cmd
        })
        .await
        .expect("replay");
    assert_eq!(again, first);
    assert_code(
        h.store
            .begin_provider_payment(BeginPaymentCommand {
                reservation_id: r2.id,
                user_id: h.user(2),
                now: h.now(),
                bound: bound(),
                attempt_id: AttemptId::new(),
                idempotency: None,
            })
            .await,
        ErrorCode::Forbidden,
    );
    h.clock.advance(Duration::seconds(1));
    let second = begin(&h, u, r2.id).await;
    let mine: Vec<AttemptId> = h
        .store
        .pending_attempts(1_000)
        .await
        .expect("pending")
        .into_iter()
        .filter(|p| p.user_id == u)
        .map(|p| p.id)
        .collect();
    assert_eq!(mine, [first.id, second.id]);
}

/// A capture that arrives after the sale closed (the seats were still kept for the call) sells
/// nothing: the money is refunded and the hold released in the same step, so it cannot be paid
/// with points either.
pub async fn a_capture_after_the_sale_closed_is_refunded_and_the_hold_released(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, PRICE).await;
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    let a = begin(&h, u, r.id).await;
    h.service
        .close_sale(h.option)
        .await
        .expect("close the sale");
    h.clock.advance(Duration::seconds(1));
    let ChargeSettled::RefundDue(refund) = settle(&h, &a, captured()).await else {
        panic!("expected a refund");
    };
    assert_eq!(refund.reason, Some(RefundReason::SeatsNotKept));
    let now = h.store.reservation(r.id, h.now()).await.expect("read");
    assert_eq!(now.status, ReservationStatus::Cancelled);
    assert_eq!(h.statuses(&[h.seats[0]]).await, [SeatStatus::Available]);
    assert_code(h.pay(u, r.id).await, ErrorCode::InvalidState);
    assert_eq!(h.balance(u).await, PRICE, "nothing taken from points");
}
