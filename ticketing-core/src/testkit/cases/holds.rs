//! Holds: one seat, all or nothing, bad lists, unknown ids, and exact expiry.

use super::ttl;
use crate::domain::{ReservationStatus, SeatStatus};
use crate::error::ErrorCode;
use crate::ids::{SeatId, UserId};
use crate::money::Points;
use crate::testkit::{Harness, OTHER_PRICE, PRICE, TestBackend, assert_code, hold_request};
use chrono::Duration;

/// One seat is held for the hold TTL at its price.
pub async fn hold_places_one_seat(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let r = h.hold(u, &[h.seats[3]]).await.expect("hold");
    assert_eq!(r.status, ReservationStatus::Held);
    assert_eq!((r.user_id, r.option_id, r.amount), (u, h.option, PRICE));
    assert_eq!(r.seat_ids, vec![h.seats[3]]);
    assert_eq!(r.expires_at, h.now() + ttl());
    assert_eq!(h.statuses(&[h.seats[3]]).await, vec![SeatStatus::Held]);
    assert_eq!(h.available().await, 59);
    assert_eq!(h.store.reservation(r.id, h.now()).await.expect("read"), r);
}

/// A multi-seat hold takes every seat or none, and names the taken ones.
pub async fn hold_is_all_or_nothing(b: TestBackend) {
    let h = Harness::new(b).await;
    let s = &h.seats;
    h.hold(h.user(1), &[s[2]]).await.expect("first hold");
    match h.hold(h.user(2), &[s[3], s[1], s[2]]).await {
        Err(crate::error::Error::SeatUnavailable { seats }) => assert_eq!(seats, vec![s[2]]),
        other => panic!("expected seat_unavailable, got {other:?}"),
    }
    assert_eq!(
        h.statuses(&[s[1], s[2], s[3]]).await,
        vec![
            SeatStatus::Available,
            SeatStatus::Held,
            SeatStatus::Available
        ]
    );
    let r = h.hold(h.user(2), &[s[3], s[1]]).await.expect("free seats");
    assert_eq!(
        r.seat_ids,
        vec![s[1], s[3]],
        "seat ids are stored ascending"
    );
    assert_eq!(r.amount, Points(2 * PRICE.0));
}

/// Empty, duplicate, non-positive or too many seat ids are `invalid_request`; nothing is held.
pub async fn hold_rejects_bad_seat_lists(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let s = &h.seats;
    assert_code(h.hold(u, &[]).await, ErrorCode::InvalidRequest);
    assert_code(h.hold(u, &[s[0], s[0]]).await, ErrorCode::InvalidRequest);
    assert_code(h.hold(u, &[SeatId(0)]).await, ErrorCode::InvalidRequest);
    assert_code(h.hold(u, &[SeatId(-1)]).await, ErrorCode::InvalidRequest);
    let too_many: Vec<SeatId> = (1..=101).map(|i| SeatId(s[0].0 + i)).collect();
    assert_code(h.hold(u, &too_many).await, ErrorCode::InvalidRequest);
    assert_code(h.hold(UserId(0), &[s[0]]).await, ErrorCode::InvalidRequest);
    assert_code(
        h.service
            .hold(hold_request(u, crate::ids::OptionId(-4), &[s[0]]))
            .await,
        ErrorCode::InvalidRequest,
    );
    assert_eq!(h.available().await, 60);
    assert!(
        h.store
            .user_reservations(u, h.now())
            .await
            .expect("list")
            .is_empty()
    );
}

/// Unknown options and seats are `not_found`; nothing is held.
pub async fn hold_of_unknown_seat_or_option_is_not_found(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let missing = SeatId(h.seats[0].0 + 800_000);
    assert_code(h.hold(u, &[h.seats[0], missing]).await, ErrorCode::NotFound);
    assert_code(
        h.service
            .hold(hold_request(
                u,
                crate::ids::OptionId(h.option.0 + 777_777),
                &[h.seats[0]],
            ))
            .await,
        ErrorCode::NotFound,
    );
    assert_eq!(h.available().await, 60);
}

/// A seat of another option cannot be held under this option.
pub async fn hold_of_another_options_seat_is_rejected(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    assert_code(
        h.hold(u, &[h.seats[0], h.other_seats[0]]).await,
        ErrorCode::InvalidRequest,
    );
    assert_eq!(h.available().await, 60);
    let r = h
        .service
        .hold(hold_request(u, h.other_option, &[h.other_seats[0]]))
        .await
        .expect("hold under its own option");
    assert_eq!(r.amount, OTHER_PRICE);
}

/// A hold is held until one instant before `expires_at` and expired at it, with no sweeper.
pub async fn hold_expires_exactly_at_its_end(b: TestBackend) {
    let h = Harness::new(b).await;
    let r = h.hold(h.user(1), &[h.seats[0]]).await.expect("hold");
    h.clock.advance(ttl() - Duration::microseconds(1));
    assert_eq!(h.statuses(&[h.seats[0]]).await, vec![SeatStatus::Held]);
    let read = h.store.reservation(r.id, h.now()).await.expect("read");
    assert_eq!(read.status, ReservationStatus::Held);
    h.clock.advance(Duration::microseconds(1));
    assert_eq!(h.now(), r.expires_at);
    assert_eq!(h.statuses(&[h.seats[0]]).await, vec![SeatStatus::Available]);
    let read = h.store.reservation(r.id, h.now()).await.expect("read");
    assert_eq!(read.status, ReservationStatus::Expired);
}

/// Once a hold has expired another buyer may take the seat; the first can no longer pay.
pub async fn expired_seat_can_be_held_again(b: TestBackend) {
    let h = Harness::new(b).await;
    let (a, bb) = (h.user(1), h.user(2));
    h.charge(a, Points(10_000)).await;
    let first = h.hold(a, &[h.seats[0]]).await.expect("hold");
    assert_code(h.hold(bb, &[h.seats[0]]).await, ErrorCode::SeatUnavailable);
    h.clock.advance(ttl());
    let second = h.hold(bb, &[h.seats[0]]).await.expect("hold after expiry");
    assert_code(h.pay(a, first.id).await, ErrorCode::HoldExpired);
    assert_eq!(h.balance(a).await, Points(10_000));
    h.charge(bb, PRICE).await;
    h.pay(bb, second.id).await.expect("second buyer pays");
    assert_eq!(h.statuses(&[h.seats[0]]).await, vec![SeatStatus::Sold]);
}
