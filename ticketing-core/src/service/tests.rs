//! Service unit tests against mockall doubles of the store and the queue: what reaches the
//! store, and what must never.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::clock::ManualClock;
use crate::domain::{ReservationStatus, ShowOption};
use crate::error::ErrorCode;
use crate::idempotency::IdempotencyRecord;
use crate::ids::SeatId;
use crate::queue::MockWaitingQueue;
use crate::service::{CancelRequest, ChargeRequest};
use crate::store::MockTicketStore;

fn clock() -> ManualClock {
    ManualClock::new(
        Utc.with_ymd_and_hms(2026, 5, 1, 10, 0, 0)
            .single()
            .expect("valid"),
    )
}

fn option() -> ShowOption {
    ShowOption::new(OptionId(10), ConcertId(1), Utc::now())
}

fn reservation(user: UserId) -> Reservation {
    Reservation {
        id: ReservationId::new(),
        user_id: user,
        option_id: OptionId(10),
        seat_ids: vec![SeatId(1), SeatId(2)],
        status: ReservationStatus::Held,
        amount: Points(200),
        expires_at: Utc::now(),
        created_at: Utc::now(),
        payment_id: None,
        refunded_amount: Points::ZERO,
    }
}

fn request(seats: &[i64]) -> HoldRequest {
    HoldRequest {
        user_id: UserId(7),
        option_id: OptionId(10),
        seat_ids: seats.iter().copied().map(SeatId).collect(),
        queue_token: None,
        idempotency_key: None,
    }
}

fn service(store: MockTicketStore) -> TicketingService {
    TicketingService::new(Arc::new(store), ServiceConfig::default()).with_clock(Arc::new(clock()))
}

#[tokio::test]
async fn invalid_input_never_reaches_the_store() {
    // A mock with no expectations panics on any call.
    let s = service(MockTicketStore::new());
    for seats in [&[][..], &[1, 1][..], &[0][..], &[-3][..]] {
        let err = s.hold(request(seats)).await.expect_err("rejected");
        assert_eq!(err.code(), ErrorCode::InvalidRequest, "{seats:?}");
    }
    let err = s
        .hold(request(&[1, 2, 3, 4, 5]))
        .await
        .expect_err("over the cap");
    assert_eq!(err.code(), ErrorCode::LimitExceeded);
    let bad_key = HoldRequest {
        idempotency_key: Some("a b".into()),
        ..request(&[1])
    };
    assert_eq!(
        s.hold(bad_key).await.expect_err("bad key").code(),
        ErrorCode::InvalidRequest
    );
    for amount in [0, -1, 10_000_001] {
        let err = s
            .charge(ChargeRequest::new(UserId(7), Points(amount)))
            .await
            .expect_err("bad amount");
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
    }
    let err = s
        .cancel(CancelRequest::new(UserId(-1), ReservationId::new()))
        .await
        .expect_err("bad user");
    assert_eq!(err.code(), ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn a_waiting_token_never_reaches_the_store() {
    let mut store = MockTicketStore::new();
    store.expect_option().returning(|_| Ok(option()));
    store.expect_hold().never();
    let mut queue = MockWaitingQueue::new();
    queue.expect_status().returning(|token, _| {
        Ok(QueueTicket {
            token: token.clone(),
            user_id: UserId(7),
            concert_id: ConcertId(1),
            status: QueueStatus::Waiting { position: 3 },
            estimated_wait_seconds: 1,
        })
    });
    let s = service(store).with_queue(Arc::new(queue));
    let gated = HoldRequest {
        queue_token: Some(QueueToken("t".into())),
        ..request(&[1])
    };
    let err = s.hold(gated).await.expect_err("waiting");
    assert_eq!(err.code(), ErrorCode::QueueTokenNotAdmitted);
    let err = s.hold(request(&[1])).await.expect_err("no token");
    assert_eq!(err.code(), ErrorCode::QueueTokenRequired);
}

#[tokio::test]
async fn a_retried_key_calls_the_store_once() {
    let first = reservation(UserId(7));
    let mut store = MockTicketStore::new();
    store.expect_option().returning(|_| Ok(option()));
    let mut seq = mockall::Sequence::new();
    store
        .expect_idempotency_record()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(None));
    let stored = first.clone();
    store
        .expect_hold()
        .times(1)
        .in_sequence(&mut seq)
        .withf(|cmd| cmd.idempotency.as_ref().is_some_and(|k| k.key == "k1"))
        .returning(move |cmd| {
            Ok(Reservation {
                id: cmd.reservation_id,
                ..stored.clone()
            })
        });
    let record = IdempotencyRecord {
        fingerprint: "hold:10:1,2".into(),
        outcome: StoredOutcome::Hold(first.clone()),
    };
    store
        .expect_idempotency_record()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _| Ok(Some(record.clone())));
    // The retry answers with the reservation as it is now, read from the store.
    let now_cancelled = Reservation {
        status: ReservationStatus::Cancelled,
        ..first.clone()
    };
    let current = now_cancelled.clone();
    let id = first.id;
    store
        .expect_reservation()
        .times(1)
        .in_sequence(&mut seq)
        .withf(move |r, _| *r == id)
        .returning(move |_, _| Ok(current.clone()));
    let s = service(store);
    let keyed = HoldRequest {
        idempotency_key: Some("k1".into()),
        ..request(&[2, 1])
    };
    let made = s.hold(keyed.clone()).await.expect("first");
    assert_eq!(
        (made.user_id, made.seat_ids.clone()),
        (first.user_id, first.seat_ids.clone())
    );
    assert_eq!(s.hold(keyed).await.expect("retry"), now_cancelled);
}

#[tokio::test]
async fn the_store_gets_sorted_seats_the_ttl_and_the_cap() {
    let c = clock();
    let now = c.now();
    let mut store = MockTicketStore::new();
    store.expect_option().returning(|_| Ok(option()));
    store
        .expect_hold()
        .times(1)
        .withf(move |cmd| {
            cmd.seat_ids == vec![SeatId(1), SeatId(3)]
                && cmd.now == now
                && cmd.expires_at == now + Duration::minutes(5)
                && cmd.max_seats_per_user == Some(4)
                && cmd.idempotency.is_none()
                && cmd.fence.is_none()
        })
        .returning(|cmd| {
            Ok(Reservation {
                id: cmd.reservation_id,
                ..reservation(cmd.user_id)
            })
        });
    let s =
        TicketingService::new(Arc::new(store), ServiceConfig::default()).with_clock(Arc::new(c));
    s.hold(request(&[3, 1])).await.expect("hold");
}

#[tokio::test]
async fn paying_someone_elses_reservation_never_reaches_the_store() {
    // With a gating queue the service reads the reservation (it needs its concert) and refuses
    // before the store is asked to pay.
    let theirs = reservation(UserId(99));
    let mut store = MockTicketStore::new();
    store
        .expect_reservation()
        .returning(move |_, _| Ok(theirs.clone()));
    store.expect_pay().never();
    let mut queue = MockWaitingQueue::new();
    queue.expect_status().never();
    let s = service(store).with_queue(Arc::new(queue));
    let req = PayRequest {
        user_id: UserId(7),
        reservation_id: ReservationId::new(),
        queue_token: Some(QueueToken("t".into())),
        idempotency_key: None,
    };
    assert_eq!(
        s.pay(req).await.expect_err("forbidden").code(),
        ErrorCode::Forbidden
    );
}

/// A store's pay that succeeds: 200 points paid, nothing left.
fn paid(cmd: PayCommand) -> Result<Payment> {
    Ok(Payment {
        id: crate::ids::PaymentId::new(),
        reservation_id: cmd.reservation_id,
        user_id: cmd.user_id,
        amount: Points(200),
        balance: Points(0),
        created_at: Utc::now(),
        method: Default::default(),
    })
}

fn admitting_queue(times: usize) -> MockWaitingQueue {
    let mut queue = MockWaitingQueue::new();
    queue.expect_status().times(times).returning(|token, _| {
        Ok(QueueTicket {
            token: token.clone(),
            user_id: UserId(7),
            concert_id: ConcertId(1),
            status: QueueStatus::Admitted {
                until: Utc::now() + Duration::minutes(5),
            },
            estimated_wait_seconds: 0,
        })
    });
    queue
}

#[tokio::test]
async fn a_payment_after_a_hold_through_the_same_service_reads_nothing_first() {
    // The gate needs the reservation's concert: the service knows it from the hold it made
    // (owner and option never change), so the payment is one store call.
    let mut store = MockTicketStore::new();
    store.expect_option().returning(|_| Ok(option()));
    store.expect_hold().times(1).returning(|cmd| {
        Ok(Reservation {
            id: cmd.reservation_id,
            ..reservation(cmd.user_id)
        })
    });
    store.expect_reservation().never();
    store.expect_pay().times(1).returning(paid);
    // Paying ends the buyer's queue token (their place goes to the next in line).
    let mut queue = admitting_queue(2);
    queue
        .expect_leave()
        .times(1)
        .withf(|token, _| token.0 == "t")
        .returning(|_, _| Ok(()));
    let s = service(store).with_queue(Arc::new(queue));
    let token = Some(QueueToken("t".into()));
    let held = s
        .hold(HoldRequest {
            queue_token: token.clone(),
            ..request(&[1, 2])
        })
        .await
        .expect("hold");
    let paid = s
        .pay(PayRequest {
            user_id: UserId(7),
            reservation_id: held.id,
            queue_token: token,
            idempotency_key: None,
        })
        .await
        .expect("pay");
    assert_eq!(paid.reservation_id, held.id);
}

#[tokio::test]
async fn a_payment_of_an_unknown_reservation_reads_it_once_then_knows_its_owner() {
    // Another instance made the hold: the first payment reads it; a retry does not.
    let theirs = reservation(UserId(99));
    let id = theirs.id;
    let mut store = MockTicketStore::new();
    store
        .expect_reservation()
        .times(1)
        .returning(move |_, _| Ok(theirs.clone()));
    store.expect_pay().never();
    let s = service(store).with_queue(Arc::new(admitting_queue(0)));
    for _ in 0..2 {
        let req = PayRequest {
            user_id: UserId(7),
            reservation_id: id,
            queue_token: Some(QueueToken("t".into())),
            idempotency_key: None,
        };
        assert_eq!(
            s.pay(req).await.expect_err("forbidden").code(),
            ErrorCode::Forbidden
        );
    }
}

#[tokio::test]
async fn without_a_gate_a_payment_is_one_store_call() {
    // No queue gates: the store's pay checks the owner in its own atomic step (the
    // conformance case `paying_anothers_reservation_is_forbidden` holds every store to it), so the
    // service does not read the reservation first.
    let mut store = MockTicketStore::new();
    store.expect_reservation().never();
    store.expect_option().never();
    store
        .expect_pay()
        .times(1)
        .returning(|_| Err(Error::Forbidden));
    let s = service(store);
    let req = PayRequest {
        user_id: UserId(7),
        reservation_id: ReservationId::new(),
        queue_token: None,
        idempotency_key: None,
    };
    assert_eq!(
        s.pay(req).await.expect_err("forbidden").code(),
        ErrorCode::Forbidden
    );
}

#[tokio::test]
async fn store_failures_pass_through_with_their_code() {
    let mut store = MockTicketStore::new();
    store.expect_charge().returning(|_| {
        Err(Error::backend(
            "down",
            true,
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
        ))
    });
    let err = service(store)
        .charge(ChargeRequest::new(UserId(7), Points(5)))
        .await
        .expect_err("down");
    assert_eq!(err.code(), ErrorCode::Unavailable);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_payment_stands_when_the_queue_cannot_end_the_token() {
    let mut store = MockTicketStore::new();
    store.expect_option().returning(|_| Ok(option()));
    store
        .expect_reservation()
        .times(1)
        .returning(|_, _| Ok(reservation(UserId(7))));
    store.expect_pay().times(1).returning(paid);
    let mut queue = admitting_queue(1);
    queue.expect_leave().times(1).returning(|_, _| {
        Err(Error::Unavailable {
            message: "queue down".into(),
            retryable: true,
            source: None,
        })
    });
    let s = service(store).with_queue(Arc::new(queue));
    let paid = s
        .pay(PayRequest {
            user_id: UserId(7),
            reservation_id: reservation(UserId(7)).id,
            queue_token: Some(QueueToken("t".into())),
            idempotency_key: None,
        })
        .await;
    assert!(
        paid.is_ok(),
        "the money moved and the seats are sold: {paid:?}"
    );
}

#[tokio::test]
async fn a_token_that_ended_still_pays_for_its_holds_but_holds_nothing_new() {
    // The buyer paid for one hold (the token ended); another hold made while admitted can
    // still be paid with it, but it admits no new hold.
    let mut store = MockTicketStore::new();
    store.expect_option().returning(|_| Ok(option()));
    store
        .expect_reservation()
        .times(1)
        .returning(|_, _| Ok(reservation(UserId(7))));
    store.expect_pay().times(1).returning(paid);
    store.expect_hold().never();
    let mut queue = MockWaitingQueue::new();
    queue.expect_status().times(2).returning(|token, _| {
        Ok(QueueTicket {
            token: token.clone(),
            user_id: UserId(7),
            concert_id: ConcertId(1),
            status: QueueStatus::Done,
            estimated_wait_seconds: 0,
        })
    });
    queue.expect_leave().times(1).returning(|_, _| Ok(()));
    let s = service(store).with_queue(Arc::new(queue));
    s.pay(PayRequest {
        user_id: UserId(7),
        reservation_id: reservation(UserId(7)).id,
        queue_token: Some(QueueToken("t".into())),
        idempotency_key: None,
    })
    .await
    .expect("pay with an ended token");
    let err = s
        .hold(HoldRequest {
            queue_token: Some(QueueToken("t".into())),
            ..request(&[1])
        })
        .await
        .expect_err("no new hold");
    assert_eq!(err.code(), ErrorCode::QueueTokenNotAdmitted);
}
