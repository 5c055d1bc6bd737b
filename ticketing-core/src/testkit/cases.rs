//! The behavioural tests of the conformance suite, one `pub async fn` each.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Duration;

use super::{
    Harness, OTHER_PRICE, PRICE, TestBackend, assert_code, hold_request, pay_request, queue_config,
};
use crate::domain::{Catalog, Concert, EventKind, ReservationStatus, Seat, SeatStatus};
use crate::error::ErrorCode;
use crate::ids::{ConcertId, ReservationId, SeatId, UserId};
use crate::money::Points;
use crate::queue::QueueStatus;
use crate::service::{HoldRequest, ServiceConfig};
use crate::store::{CancelCommand, ChargeCommand};

mod sale;
pub use sale::{
    a_sale_ends_when_the_show_starts_unless_told_otherwise,
    closing_a_sale_stops_holds_and_payments_at_once, closing_a_sale_stops_the_holds_in_flight,
    payments_check_the_end_and_refunds_stop_at_the_show, sale_window_bounds_holds_and_payments,
};

fn ttl() -> Duration {
    ServiceConfig::default().hold_ttl
}

/// The catalog reads return what was seeded; unknown ids are `not_found`.
pub async fn catalog_lists_what_was_seeded(b: TestBackend) {
    let h = Harness::new(b).await;
    let concerts = h.store.concerts().await.expect("concerts");
    assert!(concerts.iter().any(|c| c.id == h.concert));
    assert_eq!(
        h.store.concert(h.concert).await.expect("concert").id,
        h.concert
    );
    let options = h.store.options(h.concert, h.now()).await.expect("options");
    let ids: Vec<_> = options.iter().map(|o| o.option.id).collect();
    assert_eq!(ids, vec![h.option, h.other_option]);
    assert_eq!(
        (options[0].total_seats, options[0].available_seats),
        (60, 60)
    );
    assert_eq!(
        (options[1].total_seats, options[1].available_seats),
        (10, 10)
    );
    let seats = h.store.seats(h.option, h.now()).await.expect("seats");
    assert_eq!(seats.iter().map(|s| s.seat.id).collect::<Vec<_>>(), h.seats);
    assert!(
        seats
            .iter()
            .all(|s| s.status == SeatStatus::Available && s.seat.price == PRICE)
    );
    let unknown = ConcertId(h.concert.0 + 999_999);
    assert_code(h.store.concert(unknown).await, ErrorCode::NotFound);
    assert_code(h.store.options(unknown, h.now()).await, ErrorCode::NotFound);
    assert_code(
        h.store
            .seats(crate::OptionId(h.option.0 + 999_999), h.now())
            .await,
        ErrorCode::NotFound,
    );
}

/// A catalog that reuses a taken id is rejected and adds nothing.
pub async fn seeding_taken_ids_is_rejected_whole(b: TestBackend) {
    let h = Harness::new(b).await;
    let new_concert = ConcertId(h.concert.0 + 900_000);
    let catalog = Catalog {
        concerts: vec![Concert {
            id: new_concert,
            title: "Clash".into(),
            venue: "Hall".into(),
        }],
        options: vec![],
        seats: vec![Seat {
            id: h.seats[0],
            option_id: h.option,
            seat_no: "dup".into(),
            grade: "R".into(),
            price: Points(1),
        }],
    };
    assert_code(h.store.seed(&catalog).await, ErrorCode::InvalidRequest);
    assert_code(h.store.concert(new_concert).await, ErrorCode::NotFound);
    assert_eq!(
        h.store.seats(h.option, h.now()).await.expect("seats").len(),
        60
    );
}

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
        Err(crate::Error::SeatUnavailable { seats }) => assert_eq!(seats, vec![s[2]]),
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
            .hold(hold_request(u, crate::OptionId(-4), &[s[0]]))
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
                crate::OptionId(h.option.0 + 777_777),
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
    let option = crate::OptionId(h.option.0 + 700_000);
    let seat = SeatId(h.seats[0].0 + 700_000);
    let catalog = Catalog {
        concerts: vec![],
        options: vec![crate::ShowOption::new(
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
    let confirm = crate::ConfirmCommand {
        reservation_id: r.id,
        user_id: bb,
        now: h.now(),
        idempotency: None,
        fence: None,
    };
    assert_code(h.store.confirm(confirm).await, ErrorCode::Forbidden);
    assert_eq!(h.balance(bb).await, Points(5_000));
    assert_eq!(h.statuses(&[h.seats[0]]).await, vec![SeatStatus::Held]);
}

/// Cancelling a hold frees its seats and refunds nothing.
pub async fn cancel_hold_frees_seats_without_refund(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(3_000)).await;
    let r = h.hold(u, &[h.seats[0], h.seats[1]]).await.expect("hold");
    let c = h.service.cancel(u, r.id).await.expect("cancel");
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
    let c = h.service.cancel(u, r.id).await.expect("cancel");
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
    h.service.cancel(u, r.id).await.expect("cancel");
    assert_code(h.service.cancel(u, r.id).await, ErrorCode::InvalidState);
    assert_eq!(h.balance(u).await, Points(5_000), "refunded once");
    let late = h.hold(u, &[h.seats[1]]).await.expect("hold");
    h.clock.advance(ttl());
    assert_code(h.service.cancel(u, late.id).await, ErrorCode::InvalidState);
    assert_code(h.pay(u, r.id).await, ErrorCode::InvalidState);
}

/// Nobody cancels another user's reservation.
pub async fn cancelling_anothers_reservation_is_forbidden(b: TestBackend) {
    let h = Harness::new(b).await;
    let r = h.hold(h.user(1), &[h.seats[0]]).await.expect("hold");
    assert_code(
        h.service.cancel(h.user(2), r.id).await,
        ErrorCode::Forbidden,
    );
    let cmd = CancelCommand {
        reservation_id: r.id,
        user_id: h.user(2),
        now: h.now(),
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
    assert_code(h.service.cancel(h.user(1), id).await, ErrorCode::NotFound);
    assert!(
        h.store
            .user_reservations(h.user(9), h.now())
            .await
            .expect("list")
            .is_empty()
    );
}

/// The cap counts held and sold seats of one option; other options are separate.
pub async fn per_user_cap_counts_held_and_sold(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let s = &h.seats;
    h.charge(u, Points(10_000)).await;
    let first = h.hold(u, &[s[0], s[1]]).await.expect("hold 2");
    h.pay(u, first.id).await.expect("pay");
    h.hold(u, &[s[2], s[3]])
        .await
        .expect("hold 2 more: 4 in all");
    assert_code(h.hold(u, &[s[4]]).await, ErrorCode::LimitExceeded);
    assert_code(
        h.hold(h.user(2), &s[10..15]).await,
        ErrorCode::LimitExceeded,
    );
    assert_eq!(
        h.statuses(&[s[4], s[10]]).await,
        vec![SeatStatus::Available; 2]
    );
    h.service
        .hold(hold_request(u, h.other_option, &[h.other_seats[0]]))
        .await
        .expect("another option has its own cap");
}

/// Cancelled and expired reservations no longer count toward the cap.
pub async fn cap_is_freed_by_cancel_and_expiry(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let s = &h.seats;
    let a = h.hold(u, &s[0..2]).await.expect("hold");
    h.hold(u, &s[2..4]).await.expect("hold");
    assert_code(h.hold(u, &[s[4]]).await, ErrorCode::LimitExceeded);
    h.service.cancel(u, a.id).await.expect("cancel");
    h.hold(u, &s[4..6])
        .await
        .expect("cancelled seats no longer count");
    h.clock.advance(ttl());
    h.hold(u, &s[6..10])
        .await
        .expect("expired seats no longer count");
}

/// The same key and request returns the first reservation and holds nothing more.
pub async fn idempotent_hold_returns_first_result(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let req = HoldRequest {
        idempotency_key: Some("order-1".into()),
        ..hold_request(u, h.option, &[h.seats[0], h.seats[1]])
    };
    let first = h.service.hold(req.clone()).await.expect("hold");
    h.clock.advance(Duration::seconds(5));
    let again = h.service.hold(req.clone()).await.expect("retry");
    assert_eq!(again, first);
    let reordered = HoldRequest {
        seat_ids: vec![h.seats[1], h.seats[0]],
        ..req
    };
    assert_eq!(h.service.hold(reordered).await.expect("same seats"), first);
    assert_eq!(
        h.store
            .user_reservations(u, h.now())
            .await
            .expect("list")
            .len(),
        1
    );
    assert_eq!(h.available().await, 58);
}

/// A retried hold gets its reservation as it is now: cancelled after a cancel, expired after
/// its time, not the snapshot of when it was made.
pub async fn idempotent_hold_replay_shows_the_reservation_as_it_is_now(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let keyed = |key: &str, seat| HoldRequest {
        idempotency_key: Some(key.into()),
        ..hold_request(u, h.option, &[seat])
    };
    let first = h.service.hold(keyed("a", h.seats[0])).await.expect("hold");
    h.service.cancel(u, first.id).await.expect("cancel");
    let again = h.service.hold(keyed("a", h.seats[0])).await.expect("retry");
    assert_eq!(again.id, first.id);
    assert_eq!(again.status, ReservationStatus::Cancelled);
    let second = h.service.hold(keyed("b", h.seats[1])).await.expect("hold");
    h.clock.advance(ttl());
    let again = h.service.hold(keyed("b", h.seats[1])).await.expect("retry");
    assert_eq!(again.id, second.id);
    assert_eq!(again.status, ReservationStatus::Expired);
}

/// A key reused with another request is `idempotency_conflict` and changes nothing.
pub async fn idempotency_key_reused_with_other_request_conflicts(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let with_key = |seats: &[SeatId]| HoldRequest {
        idempotency_key: Some("k".into()),
        ..hold_request(u, h.option, seats)
    };
    h.service.hold(with_key(&[h.seats[0]])).await.expect("hold");
    assert_code(
        h.service.hold(with_key(&[h.seats[1]])).await,
        ErrorCode::IdempotencyConflict,
    );
    assert_code(
        h.service.charge(u, Points(5), Some("k")).await,
        ErrorCode::IdempotencyConflict,
    );
    assert_eq!(h.statuses(&[h.seats[1]]).await, vec![SeatStatus::Available]);
    assert_eq!(h.balance(u).await, Points(0));
}

/// Two users may use the same key; neither sees the other's result.
pub async fn idempotency_keys_are_scoped_per_user(b: TestBackend) {
    let h = Harness::new(b).await;
    let keyed = |u: UserId, seat: SeatId| HoldRequest {
        idempotency_key: Some("shared-key".into()),
        ..hold_request(u, h.option, &[seat])
    };
    let a = h
        .service
        .hold(keyed(h.user(1), h.seats[0]))
        .await
        .expect("a");
    let bb = h
        .service
        .hold(keyed(h.user(2), h.seats[1]))
        .await
        .expect("b");
    assert_ne!(a.id, bb.id);
    assert_eq!(bb.user_id, h.user(2));
    assert_eq!(h.available().await, 58);
}

/// Keyed payments and charges happen once; retries return the first result.
pub async fn idempotent_payment_and_charge(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let first = h
        .service
        .charge(u, Points(3_000), Some("c1"))
        .await
        .expect("charge");
    let again = h
        .service
        .charge(u, Points(3_000), Some("c1"))
        .await
        .expect("retry");
    assert_eq!((first, again.balance), (again, Points(3_000)));
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    let req = crate::PayRequest {
        idempotency_key: Some("p1".into()),
        ..pay_request(u, r.id)
    };
    let paid = h.service.pay(req.clone()).await.expect("pay");
    assert_eq!(h.service.pay(req).await.expect("retry"), paid);
    assert_eq!(h.balance(u).await, Points(2_000));
}

/// Idempotency records are kept until the retention window passes, then forgotten: a retry
/// under a forgotten key is a new request, while records made later and the reservations and
/// wallets themselves stay.
pub async fn retention_forgets_only_old_idempotency_records(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.service
        .charge(u, Points(100), Some("old"))
        .await
        .expect("charge");
    let held = h
        .service
        .hold(HoldRequest {
            idempotency_key: Some("old-hold".into()),
            ..hold_request(u, h.option, &[h.seats[0]])
        })
        .await
        .expect("hold");
    h.clock.advance(Duration::hours(2));
    h.service
        .charge(u, Points(10), Some("new"))
        .await
        .expect("charge");
    let before = h.now() - Duration::hours(1);
    let mut forgotten = 0;
    loop {
        let n = h.store.prune(before, 1).await.expect("prune");
        if n == 0 {
            break;
        }
        forgotten += n;
    }
    assert_eq!(forgotten, 2, "the two records older than the window");
    let record = |key: &'static str| h.store.idempotency_record(u, key);
    assert!(record("old").await.expect("read").is_none());
    assert!(record("old-hold").await.expect("read").is_none());
    assert!(record("new").await.expect("read").is_some());
    assert_eq!(
        h.store
            .reservation(held.id, h.now())
            .await
            .expect("the reservation stays")
            .id,
        held.id
    );
    assert_eq!(h.balance(u).await, Points(110));
    // A retry under the forgotten key is a new request; under the kept one, a replay.
    let again = h.service.charge(u, Points(100), Some("old")).await;
    assert_eq!(again.expect("charge").balance, Points(210));
    let replay = h.service.charge(u, Points(10), Some("new")).await;
    assert_eq!(replay.expect("replay").balance, Points(110));
    assert_eq!(h.balance(u).await, Points(210));
}

/// Non-positive, too large and overflowing charges are `invalid_request` and change nothing.
pub async fn charge_rejects_bad_amounts_and_overflow(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    for bad in [0, -5, 10_000_001, i64::MIN] {
        assert_code(
            h.service.charge(u, Points(bad), None).await,
            ErrorCode::InvalidRequest,
        );
    }
    assert_code(
        h.service
            .charge(u, Points(1), Some(&"x".repeat(1000)))
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

/// `expire_due` marks due holds expired once, frees seats in storage and emits events.
pub async fn expire_due_moves_holds_and_emits_events(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(5_000)).await;
    let a = h.hold(u, &[h.seats[0]]).await.expect("hold");
    let bb = h
        .hold(h.user(2), &[h.seats[1], h.seats[2]])
        .await
        .expect("hold");
    let paid = h.hold(h.user(3), &[h.seats[3]]).await.expect("hold");
    h.charge(h.user(3), PRICE).await;
    h.pay(h.user(3), paid.id).await.expect("pay");
    assert!(
        h.store
            .expire_due(h.now(), 100)
            .await
            .expect("sweep")
            .iter()
            .all(|id| *id != a.id)
    );
    h.clock.advance(ttl());
    let expired: HashSet<_> = h
        .store
        .expire_due(h.now(), 100)
        .await
        .expect("sweep")
        .into_iter()
        .collect();
    assert!(expired.contains(&a.id) && expired.contains(&bb.id) && !expired.contains(&paid.id));
    let again = h.store.expire_due(h.now(), 100).await.expect("sweep again");
    assert!(
        !again.contains(&a.id) && !again.contains(&bb.id),
        "each hold expires once"
    );
    for id in [a.id, bb.id] {
        let r = h.store.reservation(id, h.now()).await.expect("read");
        assert_eq!(r.status, ReservationStatus::Expired);
    }
    let events = h.store.outbox_read(0, 10_000).await.expect("outbox");
    let expired_events: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.event.kind {
            EventKind::HoldExpired { reservation_id } => Some(*reservation_id),
            _ => None,
        })
        .collect();
    assert!(expired_events.contains(&a.id) && expired_events.contains(&bb.id));
    assert_eq!(expired_events.iter().filter(|id| **id == a.id).count(), 1);
    assert_eq!(h.statuses(&[h.seats[3]]).await, vec![SeatStatus::Sold]);
    assert_eq!(h.available().await, 59);
}

/// Every change appends one event in the same step, in order; acknowledged events are gone.
pub async fn outbox_records_changes_in_order_and_acks(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(5_000)).await;
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    let p = h.pay(u, r.id).await.expect("pay");
    h.service.cancel(u, r.id).await.expect("cancel");
    let _ = h.hold(h.user(2), &[h.seats[1], h.seats[1]]).await; // rejected: no event
    let events = h.store.outbox_read(0, 10_000).await.expect("outbox");
    let mine: Vec<_> = events
        .iter()
        .filter(|e| match &e.event.kind {
            EventKind::PointsCharged { user_id, .. } => *user_id == u,
            EventKind::HoldPlaced { reservation_id, .. }
            | EventKind::HoldConfirmed { reservation_id, .. }
            | EventKind::ReservationCancelled { reservation_id, .. }
            | EventKind::HoldExpired { reservation_id } => *reservation_id == r.id,
        })
        .collect();
    assert_eq!(mine.len(), 4, "{mine:?}");
    assert!(mine.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(matches!(
        mine[0].event.kind,
        EventKind::PointsCharged {
            amount: Points(5_000),
            ..
        }
    ));
    assert!(
        matches!(&mine[1].event.kind, EventKind::HoldPlaced { seat_ids, .. } if *seat_ids == vec![h.seats[0]])
    );
    assert!(
        matches!(mine[2].event.kind, EventKind::HoldConfirmed { payment_id, .. } if payment_id == p.id)
    );
    assert!(matches!(
        mine[3].event.kind,
        EventKind::ReservationCancelled {
            refunded: Points(1_000),
            ..
        }
    ));
    let ids: HashSet<_> = events.iter().map(|e| e.event.id).collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
    let after = h
        .store
        .outbox_read(mine[1].seq, 10_000)
        .await
        .expect("read after");
    assert!(after.iter().all(|e| e.seq > mine[1].seq));
    let acked: Vec<u64> = [mine[0].seq, mine[2].seq, u64::MAX].into();
    h.store.outbox_ack(&acked).await.expect("ack");
    let left: Vec<u64> = h
        .store
        .outbox_read(0, 10_000)
        .await
        .expect("outbox")
        .iter()
        .map(|e| e.seq)
        .collect();
    assert!(
        !left.contains(&mine[0].seq) && !left.contains(&mine[2].seq),
        "acknowledged events are no longer pending"
    );
    assert!(
        left.contains(&mine[1].seq) && left.contains(&mine[3].seq),
        "exactly the acknowledged ones: a gap stays pending"
    );
}

/// A user's reservations come newest first, with effective statuses.
pub async fn user_reservations_newest_first(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(h.hold(u, &[h.seats[i]]).await.expect("hold").id);
        h.clock.advance(Duration::seconds(1));
    }
    h.hold(h.user(2), &[h.seats[9]])
        .await
        .expect("someone else");
    let list = h.store.user_reservations(u, h.now()).await.expect("list");
    ids.reverse();
    assert_eq!(list.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    h.clock.advance(ttl());
    let list = h.service.user_reservations(u).await.expect("list");
    assert!(list.iter().all(|r| r.status == ReservationStatus::Expired));
}

/// Available seat counts follow holds and sales, and expired holds count as available.
pub async fn option_counts_follow_holds_and_expiry(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(5_000)).await;
    h.hold(u, &[h.seats[0], h.seats[1]]).await.expect("hold");
    let sold = h.hold(h.user(2), &[h.seats[2]]).await.expect("hold");
    h.charge(h.user(2), PRICE).await;
    h.pay(h.user(2), sold.id).await.expect("pay");
    let count = |o: &[crate::OptionSummary]| {
        o.iter()
            .find(|x| x.option.id == h.option)
            .map(|x| x.available_seats)
    };
    let options = h.store.options(h.concert, h.now()).await.expect("options");
    assert_eq!(count(&options), Some(57));
    h.clock.advance(ttl());
    let options = h.store.options(h.concert, h.now()).await.expect("options");
    assert_eq!(count(&options), Some(59));
}

/// Positions are first come, first served; asking again returns the same token.
pub async fn queue_is_fifo_and_idempotent_per_user(b: TestBackend) {
    let h = Harness::new(b).await;
    let q = h.gated_service();
    let mut tokens = Vec::new();
    for i in 0..3 {
        let (t, created) = q.enqueue(h.user(i), h.concert).await.expect("enqueue");
        assert!(created);
        assert_eq!(
            t.status,
            QueueStatus::Waiting {
                position: i as u64 + 1
            }
        );
        assert_eq!((t.user_id, t.concert_id), (h.user(i), h.concert));
        tokens.push(t.token);
    }
    let (again, created) = q.enqueue(h.user(0), h.concert).await.expect("again");
    assert!(!created);
    assert_eq!(again.token, tokens[0]);
    assert_eq!(again.status, QueueStatus::Waiting { position: 1 });
    let status = q.queue_status(&tokens[2]).await.expect("status");
    assert_eq!(status.status, QueueStatus::Waiting { position: 3 });
    assert!(status.estimated_wait_seconds >= 1);
    assert_code(
        q.enqueue(h.user(0), ConcertId(h.concert.0 + 555_555)).await,
        ErrorCode::NotFound,
    );
    assert_code(
        q.queue_status(&crate::QueueToken("nope".into())).await,
        ErrorCode::NotFound,
    );
}

/// Queue lengths count who waits and whose admission is still valid, per concert.
pub async fn queue_lengths_count_waiting_and_admitted(b: TestBackend) {
    let h = Harness::new(b).await;
    let q = h.gated_service();
    let mine = |lengths: Vec<crate::QueueLength>| {
        lengths
            .into_iter()
            .find(|l| l.concert_id == h.concert)
            .map(|l| (l.waiting, l.admitted))
    };
    assert_eq!(mine(q.queue_lengths().await.expect("lengths")), None);
    for i in 0..5 {
        q.enqueue(h.user(i), h.concert).await.expect("enqueue");
    }
    assert_eq!(
        mine(q.queue_lengths().await.expect("lengths")),
        Some((5, 0))
    );
    // `queue_config`: 2 per second, at most 3 active, admissions last 60 s.
    q.admit().await.expect("admit");
    assert_eq!(
        mine(q.queue_lengths().await.expect("lengths")),
        Some((3, 2))
    );
    h.clock.advance(Duration::seconds(60));
    assert_eq!(
        mine(q.queue_lengths().await.expect("lengths")),
        Some((3, 0)),
        "an admission ends at its time"
    );
}

/// Admission follows the rate (2/s) and never exceeds max-active (3).
pub async fn queue_admits_by_rate_and_max_active(b: TestBackend) {
    let h = Harness::new(b).await;
    let q = h.gated_service();
    let cfg = queue_config();
    let mut tokens = Vec::new();
    for i in 0..6 {
        tokens.push(
            q.enqueue(h.user(i), h.concert)
                .await
                .expect("enqueue")
                .0
                .token,
        );
    }
    let status = |i: usize| {
        let q = q.clone();
        let t = tokens[i].clone();
        async move { q.queue_status(&t).await.expect("status").status }
    };
    q.admit().await.expect("admit");
    assert!(matches!(status(0).await, QueueStatus::Admitted { .. }));
    assert!(matches!(status(1).await, QueueStatus::Admitted { .. }));
    assert_eq!(status(2).await, QueueStatus::Waiting { position: 1 });
    h.clock.advance(Duration::milliseconds(400));
    q.admit().await.expect("admit");
    assert_eq!(
        status(2).await,
        QueueStatus::Waiting { position: 1 },
        "rate: 2 per second"
    );
    h.clock.advance(Duration::seconds(1));
    q.admit().await.expect("admit");
    assert!(matches!(status(2).await, QueueStatus::Admitted { .. }));
    assert_eq!(
        status(3).await,
        QueueStatus::Waiting { position: 1 },
        "max active is 3"
    );
    h.clock.advance(Duration::seconds(5));
    q.admit().await.expect("admit");
    assert_eq!(
        status(3).await,
        QueueStatus::Waiting { position: 1 },
        "still 3 active"
    );
    h.clock.advance(cfg.active_ttl);
    assert_eq!(status(0).await, QueueStatus::Expired);
    q.admit().await.expect("admit");
    assert!(matches!(status(3).await, QueueStatus::Admitted { .. }));
    assert!(matches!(status(4).await, QueueStatus::Admitted { .. }));
    assert_eq!(status(5).await, QueueStatus::Waiting { position: 1 });
}

/// An admission lapses at `admitted_until`; joining again then gives a new token at the back.
pub async fn admitted_token_expires_and_rejoining_gets_a_new_token(b: TestBackend) {
    let h = Harness::new(b).await;
    let q = h.gated_service();
    let (first, _) = q.enqueue(h.user(0), h.concert).await.expect("enqueue");
    q.enqueue(h.user(1), h.concert).await.expect("enqueue");
    q.enqueue(h.user(2), h.concert).await.expect("enqueue");
    q.admit().await.expect("admit");
    let until = match q.queue_status(&first.token).await.expect("status").status {
        QueueStatus::Admitted { until } => until,
        other => panic!("expected admitted, got {other:?}"),
    };
    assert_eq!(until, h.now() + queue_config().active_ttl);
    h.clock.set(until - Duration::microseconds(1));
    assert!(matches!(
        q.queue_status(&first.token).await.expect("s").status,
        QueueStatus::Admitted { .. }
    ));
    h.clock.set(until);
    assert_eq!(
        q.queue_status(&first.token).await.expect("s").status,
        QueueStatus::Expired
    );
    let (rejoined, created) = q.enqueue(h.user(0), h.concert).await.expect("rejoin");
    assert!(created);
    assert_ne!(rejoined.token, first.token);
    assert_eq!(rejoined.status, QueueStatus::Waiting { position: 2 });
}

/// Gated holds and payments need an admitted token of the same user and concert.
pub async fn gated_hold_needs_an_admitted_token_of_the_same_user_and_concert(b: TestBackend) {
    let h = Harness::new(b).await;
    let q = h.gated_service();
    let (a, bb) = (h.user(1), h.user(2));
    let other_concert = ConcertId(h.concert.0 + 3);
    h.store
        .seed(&Catalog {
            concerts: vec![Concert {
                id: other_concert,
                title: "Other".into(),
                venue: "X".into(),
            }],
            ..Catalog::default()
        })
        .await
        .expect("seed");
    let (ta, _) = q.enqueue(a, h.concert).await.expect("enqueue");
    let (tb, _) = q.enqueue(bb, h.concert).await.expect("enqueue");
    let (tother, _) = q.enqueue(a, other_concert).await.expect("enqueue");
    let (tc, _) = q.enqueue(h.user(3), h.concert).await.expect("enqueue");
    let with = |u: UserId, t: Option<&crate::QueueToken>| HoldRequest {
        queue_token: t.cloned(),
        ..hold_request(u, h.option, &[h.seats[0]])
    };
    assert_code(q.hold(with(a, None)).await, ErrorCode::QueueTokenRequired);
    assert_code(
        q.hold(with(a, Some(&tc.token))).await,
        ErrorCode::QueueTokenMismatch,
    );
    assert_code(
        q.hold(with(a, Some(&ta.token))).await,
        ErrorCode::QueueTokenNotAdmitted,
    );
    assert_code(
        q.hold(with(a, Some(&crate::QueueToken("forged".into()))))
            .await,
        ErrorCode::NotFound,
    );
    q.admit().await.expect("admit");
    assert_code(
        q.hold(with(a, Some(&tb.token))).await,
        ErrorCode::QueueTokenMismatch,
    );
    assert_code(
        q.hold(with(a, Some(&tother.token))).await,
        ErrorCode::QueueTokenMismatch,
    );
    assert_eq!(h.available().await, 60, "no rejected request held a seat");
    let r = q
        .hold(with(a, Some(&ta.token)))
        .await
        .expect("admitted hold");
    h.charge(a, PRICE).await;
    let pay = |t: Option<&crate::QueueToken>| crate::PayRequest {
        queue_token: t.cloned(),
        ..pay_request(a, r.id)
    };
    assert_code(q.pay(pay(None)).await, ErrorCode::QueueTokenRequired);
    h.clock.advance(queue_config().active_ttl);
    assert_code(
        q.pay(pay(Some(&ta.token))).await,
        ErrorCode::QueueTokenNotAdmitted,
    );
    assert_eq!(h.balance(a).await, PRICE);
}

/// An admitted token that leaves gives its place back at once: the next admission lets the
/// next in line in although the admission would still have run for a minute.
pub async fn leaving_an_admitted_token_frees_its_place_at_once(b: TestBackend) {
    let h = Harness::new(b).await;
    let q = h.gated_service();
    let mut tokens = Vec::new();
    for i in 0..6 {
        tokens.push(
            q.enqueue(h.user(i), h.concert)
                .await
                .expect("enqueue")
                .0
                .token,
        );
    }
    let status = |i: usize| {
        let (q, t) = (q.clone(), tokens[i].clone());
        async move { q.queue_status(&t).await.expect("status").status }
    };
    // `queue_config`: 2 per second, at most 3 active.
    q.admit().await.expect("admit");
    h.clock.advance(Duration::seconds(1));
    q.admit().await.expect("admit");
    assert!(matches!(status(2).await, QueueStatus::Admitted { .. }));
    assert_eq!(status(3).await, QueueStatus::Waiting { position: 1 });
    q.leave_queue(&tokens[0]).await.expect("leave");
    assert_eq!(
        status(0).await,
        QueueStatus::Done,
        "a token that left is over"
    );
    q.leave_queue(&tokens[0])
        .await
        .expect("leaving twice changes nothing");
    h.clock.advance(Duration::seconds(1));
    q.admit().await.expect("admit");
    assert!(
        matches!(status(3).await, QueueStatus::Admitted { .. }),
        "the place given back went to the next in line"
    );
    assert_eq!(
        status(4).await,
        QueueStatus::Waiting { position: 1 },
        "and only that one place: 3 active"
    );
    let mine = q
        .queue_lengths()
        .await
        .expect("lengths")
        .into_iter()
        .find(|l| l.concert_id == h.concert)
        .map(|l| (l.waiting, l.admitted));
    assert_eq!(mine, Some((2, 3)));
    let hold = HoldRequest {
        queue_token: Some(tokens[0].clone()),
        ..hold_request(h.user(0), h.option, &[h.seats[0]])
    };
    assert_code(q.hold(hold).await, ErrorCode::QueueTokenNotAdmitted);
    let (again, created) = q.enqueue(h.user(0), h.concert).await.expect("rejoin");
    assert!(created, "joining again after leaving gives a new token");
    assert_ne!(again.token, tokens[0]);
}

/// A waiting token that leaves is never admitted and no longer counted as waiting; the ones
/// behind it are admitted in its stead. An unknown token cannot leave.
pub async fn a_waiting_token_that_leaves_is_never_admitted(b: TestBackend) {
    let h = Harness::new(b).await;
    let q = h.gated_service();
    let mut tokens = Vec::new();
    for i in 0..4 {
        tokens.push(
            q.enqueue(h.user(i), h.concert)
                .await
                .expect("enqueue")
                .0
                .token,
        );
    }
    q.leave_queue(&tokens[1]).await.expect("leave");
    assert_eq!(
        q.queue_status(&tokens[1]).await.expect("status").status,
        QueueStatus::Done
    );
    let waiting = |lengths: Vec<crate::QueueLength>| {
        lengths
            .into_iter()
            .find(|l| l.concert_id == h.concert)
            .map(|l| l.waiting)
    };
    assert_eq!(waiting(q.queue_lengths().await.expect("lengths")), Some(3));
    // 2 per second: the two admitted are the first and the third.
    assert_eq!(q.admit().await.expect("admit"), 2);
    for (i, admitted) in [(0, true), (1, false), (2, true), (3, false)] {
        let status = q.queue_status(&tokens[i]).await.expect("status").status;
        assert_eq!(
            matches!(status, QueueStatus::Admitted { .. }),
            admitted,
            "token {i}: {status:?}"
        );
    }
    assert_eq!(
        q.queue_status(&tokens[1]).await.expect("status").status,
        QueueStatus::Done
    );
    assert_eq!(waiting(q.queue_lengths().await.expect("lengths")), Some(1));
    // Well-formed, never issued: the last digit changed.
    let mut unknown = tokens[3].0.clone();
    let last = if unknown.pop() == Some('a') { 'b' } else { 'a' };
    unknown.push(last);
    assert_code(
        q.leave_queue(&crate::QueueToken(unknown)).await,
        ErrorCode::NotFound,
    );
}

/// A buyer who pays is done with the waiting room: their token ends with the payment
/// (`Done`), and the place goes to the next in line at the next admission; the ended token
/// still pays for the buyer's other holds, but holds nothing new.
pub async fn paying_ends_the_buyers_queue_token(b: TestBackend) {
    let h = Harness::new(b).await;
    let q = h.gated_service();
    let mut tokens = Vec::new();
    for i in 0..5 {
        tokens.push(
            q.enqueue(h.user(i), h.concert)
                .await
                .expect("enqueue")
                .0
                .token,
        );
    }
    q.admit().await.expect("admit");
    h.clock.advance(Duration::seconds(1));
    q.admit().await.expect("admit");
    let buyer = h.user(0);
    let r = q
        .hold(HoldRequest {
            queue_token: Some(tokens[0].clone()),
            ..hold_request(buyer, h.option, &[h.seats[0]])
        })
        .await
        .expect("hold");
    // A second hold in the same concert (the other option), paid after the first.
    let other = q
        .hold(HoldRequest {
            queue_token: Some(tokens[0].clone()),
            ..hold_request(buyer, h.other_option, &[h.other_seats[0]])
        })
        .await
        .expect("hold of the other option");
    h.charge(buyer, PRICE.checked_add(OTHER_PRICE).expect("sum"))
        .await;
    q.pay(crate::PayRequest {
        queue_token: Some(tokens[0].clone()),
        ..pay_request(buyer, r.id)
    })
    .await
    .expect("pay");
    assert_eq!(
        q.queue_status(&tokens[0]).await.expect("status").status,
        QueueStatus::Done,
        "the paying buyer's place is given back at once"
    );
    // ... and the token still pays for the other hold made while it was admitted, but holds
    // nothing new.
    assert_code(
        q.hold(HoldRequest {
            queue_token: Some(tokens[0].clone()),
            ..hold_request(buyer, h.option, &[h.seats[1]])
        })
        .await,
        ErrorCode::QueueTokenNotAdmitted,
    );
    q.pay(crate::PayRequest {
        queue_token: Some(tokens[0].clone()),
        ..pay_request(buyer, other.id)
    })
    .await
    .expect("pay the other");
    assert_eq!(
        q.queue_status(&tokens[0]).await.expect("status").status,
        QueueStatus::Done,
        "the paid buyer's token ended"
    );
    assert_eq!(
        q.queue_status(&tokens[3]).await.expect("status").status,
        QueueStatus::Waiting { position: 1 }
    );
    h.clock.advance(Duration::seconds(1));
    q.admit().await.expect("admit");
    assert!(
        matches!(
            q.queue_status(&tokens[3]).await.expect("status").status,
            QueueStatus::Admitted { .. }
        ),
        "the paid buyer's place went to the next in line"
    );
}

async fn join_all<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("task panicked"));
    }
    out
}

/// 200 buyers race for one seat, 20 times over: each time exactly one holds it and the others
/// get `seat_unavailable`.
pub async fn concurrent_holds_on_one_seat_have_one_winner(b: TestBackend) {
    let h = Arc::new(Harness::new(b).await);
    for round in 0..20 {
        let seat = h.seats[round];
        let barrier = Arc::new(tokio::sync::Barrier::new(200));
        let tasks = (0..200)
            .map(|i| {
                let (h, barrier) = (h.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    h.hold(h.user(round as i64 * 200 + i), &[seat]).await
                })
            })
            .collect();
        let results = join_all(tasks).await;
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner");
        for r in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(r.code(), ErrorCode::SeatUnavailable, "{r:?}");
        }
    }
    let mut holds = 0;
    for i in 0..4_000 {
        holds += h
            .store
            .user_reservations(h.user(i), h.now())
            .await
            .expect("list")
            .len();
    }
    assert_eq!(holds, 20, "only the winners have reservations");
}

/// 50 payments race on one wallet that can afford 5: exactly 5 succeed, never below zero.
pub async fn concurrent_payments_never_overdraw(b: TestBackend) {
    let h = Harness::new(b).await;
    let service = h.service_with(ServiceConfig {
        max_seats_per_user: 100,
        ..ServiceConfig::default()
    });
    let u = h.user(1);
    h.charge(u, Points(5 * PRICE.0)).await;
    let mut holds = Vec::new();
    for i in 0..50 {
        holds.push(
            service
                .hold(hold_request(u, h.option, &[h.seats[i]]))
                .await
                .expect("hold")
                .id,
        );
    }
    let tasks = holds
        .into_iter()
        .map(|id| {
            let s = service.clone();
            tokio::spawn(async move { s.pay(pay_request(u, id)).await })
        })
        .collect();
    let results = join_all(tasks).await;
    let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok.len(), 5);
    assert!(ok.iter().all(|p| p.balance.0 >= 0));
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(e.code(), ErrorCode::InsufficientPoints);
    }
    assert_eq!(h.balance(u).await, Points(0));
    let sold = h
        .statuses(&h.seats[..50])
        .await
        .iter()
        .filter(|s| **s == SeatStatus::Sold)
        .count();
    assert_eq!(sold, 5, "sold seats match successful payments");
}

/// Overlapping multi-seat holds race: no seat ends up in two successful reservations.
pub async fn concurrent_overlapping_holds_never_share_a_seat(b: TestBackend) {
    let h = Arc::new(Harness::new(b).await);
    let tasks = (0..120)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move {
                let start = (i * 7) % 18;
                let mut seats = vec![h.seats[start], h.seats[start + 1], h.seats[start + 2]];
                if i % 2 == 0 {
                    seats.reverse();
                }
                h.hold(h.user(i as i64), &seats).await
            })
        })
        .collect();
    let results = join_all(tasks).await;
    let mut owner: HashMap<SeatId, ReservationId> = HashMap::new();
    for r in results.iter() {
        match r {
            Ok(r) => {
                for s in &r.seat_ids {
                    assert!(owner.insert(*s, r.id).is_none(), "seat {s} held twice");
                }
            }
            Err(e) => assert_eq!(e.code(), ErrorCode::SeatUnavailable, "{e:?}"),
        }
    }
    assert!(!owner.is_empty());
    let statuses = h.statuses(&h.seats[..20]).await;
    for (seat, status) in h.seats[..20].iter().zip(statuses) {
        let expected = if owner.contains_key(seat) {
            SeatStatus::Held
        } else {
            SeatStatus::Available
        };
        assert_eq!(status, expected, "seat {seat}");
    }
}

/// One user racing many single-seat holds never gets past the cap.
pub async fn concurrent_holds_by_one_user_respect_the_cap(b: TestBackend) {
    let h = Arc::new(Harness::new(b).await);
    let u = h.user(1);
    let tasks = (0..40)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move { h.hold(u, &[h.seats[i]]).await })
        })
        .collect();
    let results = join_all(tasks).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 4);
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(e.code(), ErrorCode::LimitExceeded);
    }
    assert_eq!(h.available().await, 56);
}

/// Retries of one keyed request racing each other hold once and all see the same result.
pub async fn concurrent_retries_with_one_key_hold_once(b: TestBackend) {
    let h = Arc::new(Harness::new(b).await);
    let u = h.user(1);
    let tasks = (0..20)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                let req = HoldRequest {
                    idempotency_key: Some("double-click".into()),
                    ..hold_request(u, h.option, &[h.seats[0], h.seats[1]])
                };
                h.service.hold(req).await
            })
        })
        .collect();
    let results = join_all(tasks).await;
    let ids: HashSet<_> = results
        .iter()
        .map(|r| r.as_ref().expect("every retry succeeds").id)
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        h.store
            .user_reservations(u, h.now())
            .await
            .expect("list")
            .len(),
        1
    );
}

/// Several admitters at once never admit more than max-active.
pub async fn concurrent_admitters_never_exceed_max_active(b: TestBackend) {
    let h = Harness::new(b).await;
    let q = h.gated_service();
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(
            q.enqueue(h.user(i), h.concert)
                .await
                .expect("enqueue")
                .0
                .token,
        );
    }
    for _ in 0..5 {
        let tasks = (0..8)
            .map(|_| {
                let q = q.clone();
                tokio::spawn(async move { q.admit().await.expect("admit") })
            })
            .collect();
        join_all(tasks).await;
        h.clock.advance(Duration::seconds(1));
    }
    let mut admitted = 0;
    for t in &tokens {
        if matches!(
            q.queue_status(t).await.expect("status").status,
            QueueStatus::Admitted { .. }
        ) {
            admitted += 1;
        }
    }
    assert_eq!(admitted, queue_config().max_active as usize);
}

/// A write carrying a fencing token older than one a seat accepted is `lock_lost` and changes
/// nothing; the current token and unfenced writes go through.
pub async fn stale_fencing_tokens_are_refused(b: TestBackend) {
    use crate::ids::FencingToken;
    use crate::store::HoldCommand;
    let h = Harness::new(b).await;
    let seat = h.seats[0];
    let hold = |user: UserId, fence: u64| HoldCommand {
        reservation_id: ReservationId::new(),
        user_id: user,
        option_id: h.option,
        seat_ids: vec![seat, h.seats[1]],
        now: h.now(),
        expires_at: h.now() + ttl(),
        max_seats_per_user: None,
        idempotency: None,
        fence: Some(FencingToken(fence)),
    };
    let cancel = |r: ReservationId, user: UserId, fence: u64| CancelCommand {
        reservation_id: r,
        user_id: user,
        now: h.now(),
        fence: Some(FencingToken(fence)),
    };
    let r = h
        .store
        .hold(hold(h.user(1), 7))
        .await
        .expect("hold with token 7");
    assert_code(
        h.store.cancel(cancel(r.id, h.user(1), 6)).await,
        ErrorCode::LockLost,
    );
    assert_eq!(h.statuses(&[seat]).await, vec![SeatStatus::Held]);
    h.store
        .cancel(cancel(r.id, h.user(1), 8))
        .await
        .expect("cancel with token 8");
    assert_code(h.store.hold(hold(h.user(2), 7)).await, ErrorCode::LockLost);
    assert_eq!(
        h.available().await,
        60,
        "the refused hold left nothing behind"
    );
    h.store
        .hold(hold(h.user(2), 8))
        .await
        .expect("the current token writes");
}

/// Several expiry sweepers at once (one per server instance, say): each due hold is expired
/// exactly once, with one `HoldExpired` event, and its seats are free again.
pub async fn concurrent_sweepers_expire_each_hold_once(b: TestBackend) {
    let h = Harness::new(b).await;
    let holds = 30;
    for i in 0..holds {
        h.hold(h.user(i), &[h.seats[i as usize]])
            .await
            .expect("hold");
    }
    h.clock.advance(ttl());
    let sweepers: Vec<_> = (0..4)
        .map(|_| {
            let sweeper = crate::ExpirySweeper::new(h.store.clone(), Arc::new(h.clock.clone()), 7);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let ids = sweeper.run_once().await.expect("sweep");
                    if ids.is_empty() {
                        break mine;
                    }
                    mine.extend(ids);
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for s in join_all(sweepers).await {
        all.extend(s);
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(
        (all.len(), unique.len()),
        (holds as usize, holds as usize),
        "each hold expired exactly once"
    );
    let expired_events = h
        .store
        .outbox_read(0, 10_000)
        .await
        .expect("read")
        .iter()
        .filter(|r| matches!(r.event.kind, EventKind::HoldExpired { .. }))
        .count();
    assert_eq!(expired_events, holds as usize);
    assert_eq!(h.available().await, crate::testkit::SEATS);
}
