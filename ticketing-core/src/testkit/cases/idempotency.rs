//! Idempotency keys: a retried command answers as the first did, per user.

use super::ttl;
use crate::domain::{ReservationStatus, SeatStatus};
use crate::error::ErrorCode;
use crate::idempotency::IdempotencyKey;
use crate::ids::{SeatId, UserId};
use crate::money::Points;
use crate::service::{CancelRequest, ChargeRequest, HoldRequest};
use crate::store::CancelCommand;
use crate::testkit::{Harness, TestBackend, assert_code, hold_request, pay_request};
use chrono::Duration;

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
    h.service
        .cancel(CancelRequest::new(u, first.id))
        .await
        .expect("cancel");
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
        h.service
            .charge(ChargeRequest::new(u, Points(5)).with_idempotency_key("k".to_owned()))
            .await,
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
        .charge(ChargeRequest::new(u, Points(3_000)).with_idempotency_key("c1".to_owned()))
        .await
        .expect("charge");
    let again = h
        .service
        .charge(ChargeRequest::new(u, Points(3_000)).with_idempotency_key("c1".to_owned()))
        .await
        .expect("retry");
    assert_eq!((first, again.balance), (again, Points(3_000)));
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    let req = crate::service::PayRequest {
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
        .charge(ChargeRequest::new(u, Points(100)).with_idempotency_key("old".to_owned()))
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
        .charge(ChargeRequest::new(u, Points(10)).with_idempotency_key("new".to_owned()))
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
    let again = h
        .service
        .charge(ChargeRequest::new(u, Points(100)).with_idempotency_key("old".to_owned()))
        .await;
    assert_eq!(again.expect("charge").balance, Points(210));
    let replay = h
        .service
        .charge(ChargeRequest::new(u, Points(10)).with_idempotency_key("new".to_owned()))
        .await;
    assert_eq!(replay.expect("replay").balance, Points(110));
    assert_eq!(h.balance(u).await, Points(210));
}

/// A cancel retried under its key (its answer was lost) gets the first answer again, and
/// refunds once; without the key it is `invalid_state`; the key on another reservation is a
/// conflict.
pub async fn idempotent_cancel_returns_the_first_answer(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(1_000)).await;
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    h.pay(u, r.id).await.expect("pay");
    let keyed = |id| CancelRequest::new(u, id).with_idempotency_key("cancel-1".to_owned());
    let first = h.service.cancel(keyed(r.id)).await.expect("cancel");
    assert_eq!(first.status, ReservationStatus::Cancelled);
    assert_eq!(first.refunded_amount, first.amount);
    let again = h.service.cancel(keyed(r.id)).await.expect("retried cancel");
    assert_eq!(again, first);
    assert_eq!(h.balance(u).await, Points(1_000), "refunded once");
    assert_code(
        h.service.cancel(CancelRequest::new(u, r.id)).await,
        ErrorCode::InvalidState,
    );
    let other = h.hold(u, &[h.seats[1]]).await.expect("hold");
    assert_code(
        h.service.cancel(keyed(other.id)).await,
        ErrorCode::IdempotencyConflict,
    );
    assert_eq!(h.statuses(&[h.seats[1]]).await, [SeatStatus::Held]);
}

/// A store replays a keyed cancel itself, inside its atomic step, not only the service before
/// it: the same command twice answers the first result and refunds once.
pub async fn a_keyed_cancel_is_replayed_by_the_store(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(1_000)).await;
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    h.pay(u, r.id).await.expect("pay");
    let key = IdempotencyKey::new(u, "cancel-store", format!("cancel:{}", r.id)).expect("key");
    let cmd = CancelCommand {
        reservation_id: r.id,
        user_id: u,
        now: h.now(),
        idempotency: Some(key),
        fence: None,
    };
    let first = h.store.cancel(cmd.clone()).await.expect("cancel");
    let again = h.store.cancel(cmd).await.expect("replayed by the store");
    assert_eq!(again, first);
    assert_eq!(h.balance(u).await, Points(1_000), "refunded once");
}
