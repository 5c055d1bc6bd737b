//! Hostile input to the service: huge and negative ids, thousands of seat ids, overflowing
//! amounts, unicode and control characters in keys. Every request is answered with a success
//! or a client error (never `unavailable`, never a panic), and a failed request changes nothing.

use std::sync::Arc;

use proptest::prelude::*;
use ticketing::{
    CancelRequest, ChargeRequest, ErrorCode, HoldRequest, OptionId, PayRequest, Points,
    ReservationId, SeatId, SeatStatus, ServiceConfig, TicketStore, TicketingService, UserId,
    demo_catalog,
};
use ticketing_memory::MemoryStore;

fn id() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        -3i64..60,
        Just(i64::MAX),
        Just(i64::MIN),
        Just(0)
    ]
}

fn key() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        "[a-z0-9-]{1,20}",
        ".{0,300}",
        "\\PC{0,50}",
        Just("\u{0}\u{7f}\n\t".to_string()),
        Just("k".repeat(5_000)),
    ])
}

#[derive(Debug, Clone)]
enum Op {
    Hold {
        user: i64,
        option: i64,
        seats: Vec<i64>,
        key: Option<String>,
    },
    Charge {
        user: i64,
        amount: i64,
        key: Option<String>,
    },
    Pay {
        user: i64,
        key: Option<String>,
    },
    Cancel {
        user: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (id(), id(), prop::collection::vec(id(), 0..2_000), key()).prop_map(
            |(user, option, seats, key)| Op::Hold {
                user,
                option,
                seats,
                key
            }
        ),
        (id(), prop_oneof![any::<i64>(), 1i64..20_000_000], key())
            .prop_map(|(user, amount, key)| Op::Charge { user, amount, key }),
        (id(), key()).prop_map(|(user, key)| Op::Pay { user, key }),
        id().prop_map(|user| Op::Cancel { user }),
    ]
}

/// Everything a failed request must leave as it was.
async fn snapshot(
    store: &Arc<dyn TicketStore>,
    users: &[i64],
) -> (Vec<SeatStatus>, Vec<Points>, usize) {
    let now = chrono::Utc::now();
    let mut seats = Vec::new();
    for option in [1, 2] {
        seats.extend(
            store
                .seats(OptionId(option), now)
                .await
                .expect("seats")
                .into_iter()
                .map(|s| s.status),
        );
    }
    let mut balances = Vec::new();
    let mut reservations = 0;
    for u in users.iter().filter(|u| **u > 0) {
        balances.push(store.balance(UserId(*u)).await.expect("balance"));
        reservations += store
            .user_reservations(UserId(*u), now)
            .await
            .expect("list")
            .len();
    }
    (seats, balances, reservations)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn hostile_requests_get_client_errors_and_change_nothing(ops in prop::collection::vec(op(), 1..12)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            let store: Arc<dyn TicketStore> = Arc::new(MemoryStore::optimistic());
            store.seed(&demo_catalog(1, 30, Points(1_000))).await.expect("seed");
            let service = TicketingService::new(store.clone(), ServiceConfig::default());
            let mut last: Option<(i64, ReservationId)> = None;
            for op in ops {
                let users: Vec<i64> = match &op {
                    Op::Hold { user, .. } | Op::Charge { user, .. } | Op::Pay { user, .. } | Op::Cancel { user } => vec![*user],
                };
                let before = snapshot(&store, &users).await;
                let result: Result<(), ticketing::Error> = match op.clone() {
                    Op::Hold { user, option, seats, key } => service
                        .hold(HoldRequest::new(UserId(user), OptionId(option), seats.into_iter().map(SeatId).collect::<Vec<_>>()).with_idempotency_key(key))
                        .await
                        .map(|r| last = Some((user, r.id))),
                    Op::Charge { user, amount, key } => {
                        service.charge(ChargeRequest::new(UserId(user), Points(amount)).with_idempotency_key(key.clone())).await.map(|_| ())
                    }
                    Op::Pay { user, key } => match last {
                        Some((_, id)) => service
                            .pay(PayRequest::new(UserId(user), id).with_idempotency_key(key))
                            .await
                            .map(|_| ()),
                        None => Ok(()),
                    },
                    Op::Cancel { user } => match last {
                        Some((_, id)) => service.cancel(CancelRequest::new(UserId(user), id)).await.map(|_| ()),
                        None => Ok(()),
                    },
                };
                if let Err(e) = result {
                    let status = e.code().http_status();
                    assert!((400..500).contains(&status), "{op:?} gave {e:?}");
                    assert_ne!(e.code(), ErrorCode::Unavailable);
                    let after = snapshot(&store, &users).await;
                    assert_eq!(before, after, "{op:?} failed with {e:?} but changed state");
                }
            }
        });
    }
}
