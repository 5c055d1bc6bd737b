//! The per-user lock (a transaction-level advisory lock, migration
//! `20261206000001_user_locks.sql`): holds create no wallet row, and per-command and batched
//! instances on one schema exclude each other on one user's cap (deterministically: the first
//! hold is parked on a seat lock while it holds its user's lock).
#![cfg(feature = "pessimistic")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ticketing_core::{
    CancelCommand, ChargeCommand, ErrorCode, HoldCommand, OptionId, PayCommand, Points,
    ReservationId, SeatId, TicketStore, UserId,
};
use ticketing_postgres::{BatchConfig, LockWait, PgConfig, PgStore, PgStrategy};

fn hold(user: i64, seat: i64) -> HoldCommand {
    let now = Utc::now();
    HoldCommand {
        reservation_id: ReservationId::new(),
        user_id: UserId(user),
        option_id: OptionId(1),
        seat_ids: vec![SeatId(seat)],
        now,
        expires_at: now + chrono::Duration::minutes(5),
        max_seats_per_user: Some(4),
        idempotency: None,
        fence: None,
    }
}

/// Waiting pessimistic locking; a lock wait may last a minute (the default two seconds could
/// end the parked hold's wait on a loaded machine before the test releases it).
fn pessimistic() -> PgConfig {
    PgConfig::default()
        .with_strategy(PgStrategy::Pessimistic {
            lock_wait: LockWait::Wait,
        })
        .with_lock_timeout(chrono::Duration::seconds(60))
}

fn batched() -> PgConfig {
    pessimistic().with_batch(Some(BatchConfig::default().with_workers(2)))
}

async fn wallets(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM wallets")
        .fetch_one(pool)
        .await
        .expect("count wallets")
}

/// A buyer who only tries to hold (and one refused), or whose payment or cancel is refused,
/// leaves no wallet row behind: the rows a caller can make the database keep are those it pays
/// into.
async fn holds_leave_no_wallet(config: PgConfig) {
    let Some((pool, _)) = common::fresh_schema(&config).await else {
        return;
    };
    let store = PgStore::new(pool.clone(), config);
    store
        .seed(&common::simple_catalog(10, 100))
        .await
        .expect("seed");
    let held = store.hold(hold(7, 1)).await.expect("first hold");
    let refused = store.hold(hold(8, 1)).await.expect_err("the seat is taken");
    assert_eq!(refused.code(), ErrorCode::SeatUnavailable);
    assert_eq!(wallets(&pool).await, 0, "a hold created a wallet row");
    // Refused payments and cancels (someone else's reservation, one that does not exist) by a
    // user without a wallet leave none either.
    let pay = |user: i64, id: ReservationId| PayCommand {
        reservation_id: id,
        user_id: UserId(user),
        now: Utc::now(),
        idempotency: None,
        fence: None,
    };
    let e = store.pay(pay(9, held.id)).await.expect_err("not 9's");
    assert_eq!(e.code(), ErrorCode::Forbidden);
    let e = store
        .pay(pay(9, ReservationId::new()))
        .await
        .expect_err("no such reservation");
    assert_eq!(e.code(), ErrorCode::NotFound);
    let e = store
        .cancel(CancelCommand {
            reservation_id: held.id,
            user_id: UserId(9),
            now: Utc::now(),
            idempotency: None,
            fence: None,
        })
        .await
        .expect_err("not 9's");
    assert_eq!(e.code(), ErrorCode::Forbidden);
    assert_eq!(
        wallets(&pool).await,
        0,
        "a refused command created a wallet row"
    );
    store
        .charge(ChargeCommand {
            user_id: UserId(7),
            amount: Points(500),
            now: Utc::now(),
            idempotency: None,
        })
        .await
        .expect("charge");
    assert_eq!(wallets(&pool).await, 1);
    assert_eq!(store.balance(UserId(8)).await.expect("balance"), Points(0));
}

#[tokio::test]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn holds_leave_no_wallet_per_command() {
    holds_leave_no_wallet(pessimistic()).await;
}

#[tokio::test]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn holds_leave_no_wallet_batched() {
    holds_leave_no_wallet(batched()).await;
}

/// Sessions of `app` waiting on a lock (a row or an advisory lock).
async fn waiting(pool: &sqlx::PgPool, app: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
         AND wait_event_type = 'Lock'",
    )
    .bind(app)
    .fetch_one(pool)
    .await
    .expect("pg_stat_activity")
}

/// A hold of user 5 waits on a seat the test keeps locked, inside its transaction and after it
/// took user 5's lock; a second hold of user 5 (cap 1) is sent through the other store (or the
/// same). It must wait for the first and then be refused `limit_exceeded`: decided at once, it
/// would count no live hold and succeed, and user 5 would end with two seats under a cap of one.
async fn the_second_hold_waits_for_the_first(first_batched: bool, second_batched: bool) {
    let Some((pool, options)) = common::fresh_schema(&pessimistic()).await else {
        return;
    };
    let app = format!("user-lock-{}", uuid::Uuid::new_v4().simple());
    let options = options.application_name(&app);
    let single = Arc::new(PgStore::new(
        pessimistic().pool(options.clone()).await.expect("pool"),
        pessimistic(),
    ));
    let grouped = Arc::new(PgStore::new(
        batched().pool(options).await.expect("pool"),
        batched(),
    ));
    single
        .seed(&common::simple_catalog(10, 100))
        .await
        .expect("seed");
    let pick = |b: bool| if b { grouped.clone() } else { single.clone() };
    let capped = |seat| HoldCommand {
        max_seats_per_user: Some(1),
        ..hold(5, seat)
    };

    let mut blocker = pool.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM seats WHERE id = 1 FOR UPDATE")
        .execute(&mut *blocker)
        .await
        .expect("lock seat 1");
    let first = {
        let (store, cmd) = (pick(first_batched), capped(1));
        tokio::spawn(async move { store.hold(cmd).await })
    };
    let mut waited = false;
    for _ in 0..1_000 {
        if waiting(&pool, &app).await >= 1 {
            waited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(waited, "the first hold never waited on seat 1");
    let second = {
        let (store, cmd) = (pick(second_batched), capped(2));
        tokio::spawn(async move { store.hold(cmd).await })
    };
    // The second waits too (on user 5's lock), or, wrongly, finishes.
    for _ in 0..1_000 {
        if second.is_finished() || waiting(&pool, &app).await >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !second.is_finished(),
        "user 5's second hold was decided while the first held user 5's lock: {:?}",
        second.await
    );
    blocker.rollback().await.expect("release seat 1");
    first.await.expect("first task").expect("the first hold");
    let refused = second
        .await
        .expect("second task")
        .expect_err("the cap of one is taken");
    assert_eq!(refused.code(), ErrorCode::LimitExceeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn per_command_waits_for_per_command() {
    the_second_hold_waits_for_the_first(false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn batched_waits_for_per_command() {
    the_second_hold_waits_for_the_first(false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn per_command_waits_for_batched() {
    the_second_hold_waits_for_the_first(true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn batched_waits_for_batched() {
    the_second_hold_waits_for_the_first(true, true).await;
}
