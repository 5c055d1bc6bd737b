//! Bounds the store keeps against the server's own: a hold over more than
//! `MAX_SEATS_PER_COMMAND` seats is refused before it becomes a statement of too many
//! placeholders (one of exactly that many is held), a sweep over holds of many seats expires
//! them all in seat-bounded transactions, and a schema error (a missing table) is an
//! `unavailable` that is not worth retrying, with its source.

mod common;

use chrono::{Duration, Utc};
use ticketing_core::{
    Catalog, ErrorCode, HoldCommand, OptionId, ReservationId, SeatId, TicketStore, UserId,
};
use ticketing_mysql::{MAX_SEATS_PER_COMMAND, MySqlConfig};

fn hold(user: i64, seats: std::ops::RangeInclusive<i64>) -> HoldCommand {
    let now = Utc::now();
    HoldCommand {
        reservation_id: ReservationId::new(),
        user_id: UserId(user),
        option_id: OptionId(1),
        seat_ids: seats.map(SeatId).collect(),
        now,
        expires_at: now + Duration::minutes(5),
        max_seats_per_user: None,
        idempotency: None,
        fence: None,
    }
}

fn catalog(seats: i64) -> Catalog {
    common::simple_catalog(seats, 0)
}

#[tokio::test]
#[cfg_attr(
    ticketing_no_mysql,
    ignore = "needs MYSQL_URL (a MySQL/MariaDB server)"
)]
async fn a_hold_over_the_seat_bound_is_refused_and_one_at_the_bound_is_held() {
    let Some(store) = common::fresh_store(MySqlConfig::default()).await else {
        return;
    };
    let max = MAX_SEATS_PER_COMMAND as i64;
    store.seed(&catalog(max + 1)).await.expect("seed");
    let over = store
        .hold(hold(1, 1..=max + 1))
        .await
        .expect_err("too many");
    assert_eq!(over.code(), ErrorCode::InvalidRequest, "{over:?}");
    assert!(over.to_string().contains("at most"), "{over}");
    let held = store.hold(hold(1, 1..=max)).await.expect("at the bound");
    assert_eq!(held.seat_ids.len(), MAX_SEATS_PER_COMMAND);
    // Nothing of the refused hold was stored.
    let mine = store
        .user_reservations(UserId(1), Utc::now())
        .await
        .expect("reservations");
    assert_eq!(mine.len(), 1);
}

#[tokio::test]
#[cfg_attr(
    ticketing_no_mysql,
    ignore = "needs MYSQL_URL (a MySQL/MariaDB server)"
)]
async fn due_holds_of_many_seats_all_expire_in_one_sweep() {
    let Some(store) = common::fresh_store(MySqlConfig::default()).await else {
        return;
    };
    // Five holds of 600 seats: more seats than one sweeper transaction locks.
    store.seed(&catalog(3_000)).await.expect("seed");
    let mut ids = Vec::new();
    for u in 0..5 {
        let first = u * 600 + 1;
        ids.push(
            store
                .hold(hold(u + 1, first..=first + 599))
                .await
                .expect("hold")
                .id,
        );
    }
    let later = Utc::now() + Duration::minutes(10);
    let mut expired = store.expire_due(later, 100).await.expect("sweep");
    expired.sort();
    ids.sort();
    assert_eq!(expired, ids);
    let free = store
        .seats(OptionId(1), later)
        .await
        .expect("seats")
        .iter()
        .filter(|s| s.status == ticketing_core::SeatStatus::Available)
        .count();
    assert_eq!(free, 3_000);
}

#[tokio::test]
#[cfg_attr(
    ticketing_no_mysql,
    ignore = "needs MYSQL_URL (a MySQL/MariaDB server)"
)]
async fn a_missing_table_is_unavailable_and_not_retryable() {
    let Some(store) = common::fresh_store(MySqlConfig::default()).await else {
        return;
    };
    sqlx::query("DROP TABLE wallets")
        .execute(store.pool())
        .await
        .expect("drop");
    let e = store.balance(UserId(1)).await.expect_err("no table");
    assert_eq!(e.code(), ErrorCode::Unavailable, "{e:?}");
    assert!(!e.is_retryable(), "error 1146 must not be retried: {e:?}");
    let source = std::error::Error::source(&e).expect("the driver's error kept");
    assert!(source.to_string().contains("1146"), "{source}");
}
