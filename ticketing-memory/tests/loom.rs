//! loom models of the seat table's own synchronisation, for both strategies.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p ticketing-memory
//! --release --test loom`.
#![cfg(loom)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use loom::thread;
use ticketing_core::{Error, OptionId, Points, ReservationId, Seat, SeatId, SeatState, rules};
use ticketing_memory::Strategy;
use ticketing_memory::seat_table::SeatTable;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid")
}

fn table(strategy: Strategy, seats: i64) -> Arc<SeatTable> {
    let table = SeatTable::new(strategy);
    let seats: Vec<Seat> = (1..=seats)
        .map(|i| Seat {
            id: SeatId(i),
            option_id: OptionId(1),
            seat_no: format!("A-{i}"),
            grade: "R".into(),
            price: Points(10),
        })
        .collect();
    assert!(table.insert(&seats));
    Arc::new(table)
}

/// Hold `ids` for `reservation`, all or none, as the store does.
fn hold(table: &SeatTable, ids: &[i64], reservation: ReservationId) -> Result<(), Error> {
    let ids: Vec<SeatId> = ids.iter().copied().map(SeatId).collect();
    let cells = table.cells(&ids)?;
    let until = t0() + Duration::minutes(5);
    table.transact(&cells, None, |states| {
        states
            .iter()
            .map(|s| {
                rules::hold_seat(*s, reservation, until, t0())
                    .map_err(|()| Error::SeatUnavailable { seats: vec![] })
            })
            .collect()
    })
}

fn state(table: &SeatTable, id: i64) -> SeatState {
    table.cells(&[SeatId(id)]).expect("seat")[0].state()
}

fn strategies() -> Vec<Strategy> {
    let mut all = Vec::new();
    #[cfg(feature = "pessimistic")]
    all.push(Strategy::Pessimistic);
    #[cfg(feature = "optimistic")]
    all.push(Strategy::Optimistic { max_retries: 2 });
    all
}

#[test]
fn three_threads_racing_for_one_seat_have_exactly_one_winner() {
    for strategy in strategies() {
        loom::model(move || {
            let table = table(strategy, 1);
            let ids: Vec<ReservationId> = (0..3).map(|_| ReservationId::new()).collect();
            let handles: Vec<_> = ids
                .iter()
                .map(|id| {
                    let (table, id) = (table.clone(), *id);
                    thread::spawn(move || hold(&table, &[1], id).is_ok())
                })
                .collect();
            let wins: Vec<bool> = handles
                .into_iter()
                .map(|h| h.join().expect("join"))
                .collect();
            assert_eq!(
                wins.iter().filter(|w| **w).count(),
                1,
                "{strategy:?}: {wins:?}"
            );
            let winner = ids[wins.iter().position(|w| *w).expect("a winner")];
            assert_eq!(state(&table, 1).reservation(), Some(winner));
        });
    }
}

#[test]
fn overlapping_multi_seat_holds_never_deadlock_nor_share_a_seat() {
    for strategy in strategies() {
        loom::model(move || {
            let table = table(strategy, 3);
            let (a, b) = (ReservationId::new(), ReservationId::new());
            let ta = {
                let table = table.clone();
                thread::spawn(move || hold(&table, &[1, 2], a).is_ok())
            };
            let tb = {
                let table = table.clone();
                thread::spawn(move || hold(&table, &[2, 3], b).is_ok())
            };
            let (wa, wb) = (ta.join().expect("join"), tb.join().expect("join"));
            assert!(
                wa != wb,
                "{strategy:?}: exactly one of two overlapping holds wins ({wa}, {wb})"
            );
            let owner = |id| state(&table, id).reservation();
            if wa {
                assert_eq!((owner(1), owner(2), owner(3)), (Some(a), Some(a), None));
            } else {
                assert_eq!((owner(1), owner(2), owner(3)), (None, Some(b), Some(b)));
            }
        });
    }
}

#[test]
fn holds_naming_the_same_seats_in_opposite_orders_never_deadlock() {
    for strategy in strategies() {
        loom::model(move || {
            let table = table(strategy, 2);
            let (a, b) = (ReservationId::new(), ReservationId::new());
            let ta = {
                let table = table.clone();
                thread::spawn(move || hold(&table, &[1, 2], a).is_ok())
            };
            let tb = {
                let table = table.clone();
                thread::spawn(move || hold(&table, &[2, 1], b).is_ok())
            };
            let (wa, wb) = (ta.join().expect("join"), tb.join().expect("join"));
            assert!(wa != wb, "{strategy:?}: exactly one wins ({wa}, {wb})");
            let winner = if wa { a } else { b };
            assert_eq!(state(&table, 1).reservation(), Some(winner));
            assert_eq!(state(&table, 2).reservation(), Some(winner));
        });
    }
}

/// A release by another reservation (the expiry sweeper or a cancel) rewrites a seat without
/// changing what it holds. If a multi-seat hold that later loses had already written that seat
/// tentatively, the release must not turn the tentative write into a hold that no reservation
/// owns: a loser leaves no trace on any seat.
#[test]
fn a_release_between_tentative_write_and_undo_leaves_no_phantom_hold() {
    for strategy in strategies() {
        loom::model(move || {
            let table = table(strategy, 2);
            // Seat 1 is held by an expired hold (X), so A may take it; seat 2 is free and
            // contested by B.
            let x = ReservationId::new();
            let expired = t0() - Duration::seconds(1);
            let cells = table.cells(&[SeatId(1)]).expect("seat");
            table
                .transact(&cells, None, |_| {
                    Ok(vec![SeatState::Held {
                        reservation: x,
                        until: expired,
                    }])
                })
                .expect("seed");
            let (a, b) = (ReservationId::new(), ReservationId::new());
            let ta = {
                let table = table.clone();
                thread::spawn(move || hold(&table, &[1, 2], a).is_ok())
            };
            let tb = {
                let table = table.clone();
                thread::spawn(move || hold(&table, &[2], b).is_ok())
            };
            let tc = {
                let table = table.clone();
                thread::spawn(move || {
                    let cells = table.cells(&[SeatId(1)]).expect("seat");
                    table
                        .transact(&cells, None, |s| Ok(vec![rules::release_seat(s[0], x)]))
                        .expect("release never fails");
                })
            };
            let (wa, wb) = (ta.join().expect("join"), tb.join().expect("join"));
            tc.join().expect("join");
            let owner = |id| state(&table, id).reservation();
            if !wa {
                assert_ne!(
                    owner(1),
                    Some(a),
                    "{strategy:?}: phantom hold of A on seat 1"
                );
                assert_ne!(
                    owner(2),
                    Some(a),
                    "{strategy:?}: phantom hold of A on seat 2"
                );
            }
            if wb {
                assert_eq!(owner(2), Some(b), "{strategy:?}");
            }
            if wa {
                assert_eq!((owner(1), owner(2)), (Some(a), Some(a)), "{strategy:?}");
            }
        });
    }
}
