//! Payments and charges: a payment debits and sells at once, or changes nothing.

use super::ttl;
use crate::domain::{Catalog, ReservationStatus, Seat, SeatStatus};
use crate::error::ErrorCode;
use crate::ids::SeatId;
use crate::money::Points;
use crate::service::ChargeRequest;
use crate::store::{CancelCommand, ChargeCommand};
use crate::testkit::{Harness, PRICE, TestBackend, assert_code, hold_request};
use chrono::Duration;

/// Paying debits the price and sells the seats, atomically.
pub async fn pay_confirms_and_debits(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(10_000)).await;
    let r = h.hold(u, &[h.seats[0], h.seats[1]]).await.expect("hold");
    let p = h.pay(u, r.id).await.expect("pay");
    assert_eq!(
        (p.reservation_id, p.user_id, p.amount),
        (r.id, u, Points(2_000))
    );
    assert_eq!(p.balance, Points(8_000));
    assert_eq!(h.balance(u).await, Points(8_000));
    let read = h.store.reservation(r.id, h.now()).await.expect("read");
    assert_eq!(read.status, ReservationStatus::Confirmed);
    assert_eq!(read.payment_id, Some(p.id));
    h.clock.advance(ttl() * 3);
    assert_eq!(
        h.statuses(&[h.seats[0], h.seats[1]]).await,
        vec![SeatStatus::Sold, SeatStatus::Sold],
        "sold seats never expire"
    );
}

/// A free seat (price 0) is held, paid with an empty wallet and cancelled like any other.
pub async fn free_seats_are_held_paid_and_cancelled(b: TestBackend) {
    let h = Harness::new(b).await;
    let option = crate::ids::OptionId(h.option.0 + 700_000);
    let seat = SeatId(h.seats[0].0 + 700_000);
    let catalog = Catalog {
        concerts: vec![],
        options: vec![crate::domain::ShowOption::new(
            option,
            h.concert,
            h.now() + Duration::days(30),
        )],
        seats: vec![Seat {
            id: seat,
            option_id: option,
            seat_no: "free".into(),
            grade: "F".into(),
            price: Points::ZERO,
        }],
    };
    h.store.seed(&catalog).await.expect("seed a free seat");
    let u = h.user(1);
    let r = h
        .service
        .hold(hold_request(u, option, &[seat]))
        .await
        .expect("hold");
    assert_eq!(r.amount, Points::ZERO);
    let p = h
        .pay(u, r.id)
        .await
        .expect("a free seat is paid with no points");
    assert_eq!((p.amount, p.balance), (Points::ZERO, Points::ZERO));
    let c = h.store.cancel(CancelCommand {
        reservation_id: r.id,
        user_id: u,
        now: h.now(),
        idempotency: None,
        fence: None,
    });
    let c = c.await.expect("cancel");
    assert_eq!(
        (c.status, c.refunded_amount),
        (ReservationStatus::Cancelled, Points::ZERO)
    );
    assert_eq!(h.balance(u).await, Points::ZERO);
}

/// Paying at or after `expires_at` is `hold_expired` and charges nothing.
pub async fn pay_after_expiry_is_hold_expired_and_charges_nothing(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(5_000)).await;
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    h.clock.advance(ttl());
    assert_code(h.pay(u, r.id).await, ErrorCode::HoldExpired);
    assert_eq!(h.balance(u).await, Points(5_000));
    assert_eq!(h.statuses(&[h.seats[0]]).await, vec![SeatStatus::Available]);
}

/// A payment larger than the balance changes nothing; the hold stays payable.
pub async fn insufficient_points_changes_nothing(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(PRICE.0 - 1)).await;
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    assert_code(h.pay(u, r.id).await, ErrorCode::InsufficientPoints);
    assert_eq!(h.balance(u).await, Points(PRICE.0 - 1));
    assert_eq!(h.statuses(&[h.seats[0]]).await, vec![SeatStatus::Held]);
    let read = h.store.reservation(r.id, h.now()).await.expect("read");
    assert_eq!(read.status, ReservationStatus::Held);
    h.charge(u, Points(1)).await;
    assert_eq!(h.pay(u, r.id).await.expect("pay").balance, Points(0));
}

/// A second payment of the same reservation is `invalid_state` and debits nothing.
pub async fn paying_twice_is_invalid_state(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(5_000)).await;
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    h.pay(u, r.id).await.expect("pay");
    assert_code(h.pay(u, r.id).await, ErrorCode::InvalidState);
    assert_eq!(h.balance(u).await, Points(4_000));
}

/// Nobody pays another user's reservation.
pub async fn paying_anothers_reservation_is_forbidden(b: TestBackend) {
    let h = Harness::new(b).await;
    let (a, bb) = (h.user(1), h.user(2));
    h.charge(bb, Points(5_000)).await;
    let r = h.hold(a, &[h.seats[0]]).await.expect("hold");
    assert_code(h.pay(bb, r.id).await, ErrorCode::Forbidden);
    let confirm = crate::store::PayCommand {
        reservation_id: r.id,
        user_id: bb,
        now: h.now(),
        idempotency: None,
        fence: None,
    };
    assert_code(h.store.pay(confirm).await, ErrorCode::Forbidden);
    assert_eq!(h.balance(bb).await, Points(5_000));
    assert_eq!(h.statuses(&[h.seats[0]]).await, vec![SeatStatus::Held]);
}

/// Non-positive, too large and overflowing charges are `invalid_request` and change nothing.
pub async fn charge_rejects_bad_amounts_and_overflow(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    for bad in [0, -5, 10_000_001, i64::MIN] {
        assert_code(
            h.service.charge(ChargeRequest::new(u, Points(bad))).await,
            ErrorCode::InvalidRequest,
        );
    }
    assert_code(
        h.service
            .charge(ChargeRequest::new(u, Points(1)).with_idempotency_key("x".repeat(1000)))
            .await,
        ErrorCode::InvalidRequest,
    );
    assert_eq!(h.balance(u).await, Points(0));
    let charge = |amount| ChargeCommand {
        user_id: u,
        amount,
        now: h.now(),
        idempotency: None,
    };
    h.store
        .charge(charge(Points(i64::MAX - 5)))
        .await
        .expect("large charge");
    assert_code(
        h.store.charge(charge(Points(6))).await,
        ErrorCode::InvalidRequest,
    );
    assert_code(
        h.store.charge(charge(Points(-1))).await,
        ErrorCode::InvalidRequest,
    );
    assert_eq!(h.balance(u).await, Points(i64::MAX - 5));
}
