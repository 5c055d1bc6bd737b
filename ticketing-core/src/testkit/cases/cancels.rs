//! Cancels: a hold is released, a paid reservation refunded; only by its owner.

use super::ttl;
use crate::domain::{ReservationStatus, SeatStatus};
use crate::error::ErrorCode;
use crate::ids::ReservationId;
use crate::money::Points;
use crate::service::CancelRequest;
use crate::store::CancelCommand;
use crate::testkit::{Harness, TestBackend, assert_code};
use chrono::Duration;

/// Cancelling a hold frees its seats and refunds nothing.
pub async fn cancel_hold_frees_seats_without_refund(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(3_000)).await;
    let r = h.hold(u, &[h.seats[0], h.seats[1]]).await.expect("hold");
    let c = h
        .service
        .cancel(CancelRequest::new(u, r.id))
        .await
        .expect("cancel");
    assert_eq!(
        (c.status, c.refunded_amount),
        (ReservationStatus::Cancelled, Points(0))
    );
    assert_eq!(h.balance(u).await, Points(3_000));
    assert_eq!(h.available().await, 60);
    h.hold(h.user(2), &[h.seats[1]])
        .await
        .expect("freed seat can be held");
}

/// Cancelling a confirmed reservation refunds what was paid and frees the seats.
pub async fn cancel_confirmed_refunds_and_frees_seats(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(5_000)).await;
    let r = h.hold(u, &[h.seats[0], h.seats[1]]).await.expect("hold");
    h.pay(u, r.id).await.expect("pay");
    assert_eq!(h.balance(u).await, Points(3_000));
    h.clock.advance(Duration::days(2));
    let c = h
        .service
        .cancel(CancelRequest::new(u, r.id))
        .await
        .expect("cancel");
    assert_eq!(
        (c.status, c.refunded_amount),
        (ReservationStatus::Cancelled, Points(2_000))
    );
    assert_eq!(h.balance(u).await, Points(5_000));
    assert_eq!(h.available().await, 60);
    let read = h.store.reservation(r.id, h.now()).await.expect("read");
    assert_eq!(
        (read.status, read.refunded_amount),
        (ReservationStatus::Cancelled, Points(2_000))
    );
}

/// Cancelling twice, or a hold that already expired, is `invalid_state`.
pub async fn cancelling_twice_or_after_expiry_is_invalid_state(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(5_000)).await;
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    h.pay(u, r.id).await.expect("pay");
    h.service
        .cancel(CancelRequest::new(u, r.id))
        .await
        .expect("cancel");
    assert_code(
        h.service.cancel(CancelRequest::new(u, r.id)).await,
        ErrorCode::InvalidState,
    );
    assert_eq!(h.balance(u).await, Points(5_000), "refunded once");
    let late = h.hold(u, &[h.seats[1]]).await.expect("hold");
    h.clock.advance(ttl());
    assert_code(
        h.service.cancel(CancelRequest::new(u, late.id)).await,
        ErrorCode::InvalidState,
    );
    assert_code(h.pay(u, r.id).await, ErrorCode::InvalidState);
}

/// Nobody cancels another user's reservation.
pub async fn cancelling_anothers_reservation_is_forbidden(b: TestBackend) {
    let h = Harness::new(b).await;
    let r = h.hold(h.user(1), &[h.seats[0]]).await.expect("hold");
    assert_code(
        h.service.cancel(CancelRequest::new(h.user(2), r.id)).await,
        ErrorCode::Forbidden,
    );
    let cmd = CancelCommand {
        reservation_id: r.id,
        user_id: h.user(2),
        now: h.now(),
        idempotency: None,
        fence: None,
    };
    assert_code(h.store.cancel(cmd).await, ErrorCode::Forbidden);
    assert_eq!(h.statuses(&[h.seats[0]]).await, vec![SeatStatus::Held]);
}

/// Unknown reservations are `not_found` for every operation.
pub async fn unknown_reservation_is_not_found(b: TestBackend) {
    let h = Harness::new(b).await;
    let id = ReservationId::new();
    assert_code(h.store.reservation(id, h.now()).await, ErrorCode::NotFound);
    assert_code(h.pay(h.user(1), id).await, ErrorCode::NotFound);
    assert_code(
        h.service.cancel(CancelRequest::new(h.user(1), id)).await,
        ErrorCode::NotFound,
    );
    assert!(
        h.store
            .user_reservations(h.user(9), h.now())
            .await
            .expect("list")
            .is_empty()
    );
}
