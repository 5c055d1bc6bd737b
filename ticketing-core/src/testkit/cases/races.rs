//! Races: concurrent commands that must never sell a seat twice or overdraw a wallet.

use super::{join_all, ttl};
use crate::domain::{EventKind, SeatStatus};
use crate::error::ErrorCode;
use crate::ids::{ReservationId, SeatId};
use crate::money::Points;
use crate::service::{CancelRequest, HoldRequest, ServiceConfig};
use crate::testkit::{Harness, PRICE, TestBackend, hold_request, pay_request};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

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
            let sweeper = crate::background::ExpirySweeper::new(
                h.store.clone(),
                Arc::new(h.clock.clone()),
                7,
            );
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

/// Retries of one keyed cancel racing each other (a double click on a paid reservation) all
/// get the same answer, and the points come back once.
pub async fn concurrent_retries_of_one_keyed_cancel_refund_once(b: TestBackend) {
    let h = Arc::new(Harness::new(b).await);
    let u = h.user(1);
    h.charge(u, PRICE).await;
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    h.pay(u, r.id).await.expect("pay");
    let tasks = (0..20)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                let req =
                    CancelRequest::new(u, r.id).with_idempotency_key("cancel-click".to_owned());
                h.service.cancel(req).await
            })
        })
        .collect();
    let results = join_all(tasks).await;
    let answers: HashSet<_> = results
        .iter()
        .map(|r| {
            let c = r.as_ref().expect("every retry succeeds");
            (c.id, c.status, c.refunded_amount)
        })
        .collect();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(h.balance(u).await, PRICE, "refunded once");
}
