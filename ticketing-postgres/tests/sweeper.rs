//! The expiry sweeper never waits on a seat another transaction has locked (a hold in progress):
//! it leaves that reservation for a later sweep, so expiring can never make a hold wait or fail.

mod common;

use chrono::{Duration, Utc};
use ticketing_core::{
    HoldCommand, OptionId, ReservationId, ReservationStatus, SeatId, TicketStore, UserId,
};
use ticketing_postgres::{LockWait, PgConfig, PgStore, PgStrategy};

fn hold(user: i64, seat: i64, now: chrono::DateTime<Utc>) -> HoldCommand {
    HoldCommand {
        reservation_id: ReservationId::new(),
        user_id: UserId(user),
        option_id: OptionId(1),
        seat_ids: vec![SeatId(seat)],
        now,
        expires_at: now + Duration::seconds(1),
        max_seats_per_user: None,
        idempotency: None,
        fence: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn a_sweep_skips_seats_locked_by_others_and_expires_the_rest() {
    let config = PgConfig::default().with_strategy(PgStrategy::Pessimistic {
        lock_wait: LockWait::Wait,
    });
    let Some(pool) = common::fresh_pool(&config).await else {
        return;
    };
    let store = PgStore::new(pool.clone(), config);
    store
        .seed(&common::simple_catalog(3, 0))
        .await
        .expect("seed");
    let t0 = Utc::now();
    let a = store.hold(hold(1, 1, t0)).await.expect("hold a");
    let b = store.hold(hold(2, 2, t0)).await.expect("hold b");
    // Another transaction (a hold in progress) has seat 1 locked.
    let mut other = pool.begin().await.expect("begin");
    sqlx::query("SELECT id FROM seats WHERE id = 1 FOR UPDATE")
        .fetch_one(&mut *other)
        .await
        .expect("lock seat 1");
    let later = t0 + Duration::seconds(2);
    let started = std::time::Instant::now();
    let expired = store
        .expire_due(later, 100)
        .await
        .expect("the sweep neither waits nor fails");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1_500),
        "the sweep waited on the locked seat ({:?}; lock_timeout is 2 s)",
        started.elapsed()
    );
    assert_eq!(expired, vec![b.id], "b expired, a left for later");
    let stored = store.reservation(a.id, later).await.expect("a");
    assert_eq!(
        stored.status,
        ReservationStatus::Expired,
        "a is expired all the same"
    );
    other.rollback().await.expect("release");
    assert_eq!(
        store.expire_due(later, 100).await.expect("sweep"),
        vec![a.id]
    );
    assert!(
        store
            .expire_due(later, 100)
            .await
            .expect("sweep")
            .is_empty()
    );
}
