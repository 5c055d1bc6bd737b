//! The waiting queue: FIFO admission by rate and max-active, and the service's gate.

use super::join_all;
use crate::domain::{Catalog, Concert};
use crate::error::ErrorCode;
use crate::ids::{ConcertId, UserId};
use crate::queue::QueueStatus;
use crate::service::HoldRequest;
use crate::testkit::{
    Harness, OTHER_PRICE, PRICE, TestBackend, assert_code, hold_request, pay_request, queue_config,
};
use chrono::Duration;

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
        q.queue_status(&crate::queue::QueueToken("nope".into()))
            .await,
        ErrorCode::NotFound,
    );
}

/// Queue lengths count who waits and whose admission is still valid, per concert.
pub async fn queue_lengths_count_waiting_and_admitted(b: TestBackend) {
    let h = Harness::new(b).await;
    let q = h.gated_service();
    let mine = |lengths: Vec<crate::queue::QueueLength>| {
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
    let with = |u: UserId, t: Option<&crate::queue::QueueToken>| HoldRequest {
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
        q.hold(with(a, Some(&crate::queue::QueueToken("forged".into()))))
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
    let pay = |t: Option<&crate::queue::QueueToken>| crate::service::PayRequest {
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
    let waiting = |lengths: Vec<crate::queue::QueueLength>| {
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
        q.leave_queue(&crate::queue::QueueToken(unknown)).await,
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
    q.pay(crate::service::PayRequest {
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
    q.pay(crate::service::PayRequest {
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
