//! Faults in the middle of a rush: every connection of the store killed again and again with
//! `pg_terminate_backend`. Requests fail with `unavailable` or succeed, the pool recovers by
//! itself, and afterwards no seat is sold twice and every wallet balances to the point.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ticketing_core::{ErrorCode, ServiceConfig, TicketStore, TicketingService};
use ticketing_postgres::{BatchConfig, PgConfig, PgStore, PgStrategy};

const BUYERS: i64 = 300;
const SEATS: i64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn killed_connections_mid_rush_lose_nothing_and_sell_nothing_twice() {
    killed_connections(None).await;
}

/// The same in the group-commit mode: a killed batch is run again or answered `unavailable`
/// as a whole, never half applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn killed_connections_mid_rush_lose_nothing_in_batched_mode() {
    killed_connections(Some(BatchConfig::default())).await;
}

async fn killed_connections(batch: Option<BatchConfig>) {
    let config = PgConfig::default()
        .with_strategy(PgStrategy::Optimistic)
        .with_max_connections(8)
        .with_acquire_timeout(chrono::Duration::seconds(2))
        .with_batch(batch);
    let Some((admin, options)) = common::fresh_schema(&config).await else {
        return;
    };
    let app_name = format!("ticketing-fault-{}", uuid::Uuid::new_v4().simple());
    let pool = config
        .pool(options.application_name(&app_name))
        .await
        .expect("pool");
    let store = Arc::new(PgStore::new(pool, config));
    store
        .seed(&common::simple_catalog(SEATS, 1_000))
        .await
        .expect("seed");
    let service = TicketingService::new(store.clone(), ServiceConfig::default());

    // The fault: kill every connection of the store, every 50 ms, while the buyers run.
    let killer = {
        let (admin, app_name) = (admin.clone(), app_name.clone());
        tokio::spawn(async move {
            let mut killed = 0u64;
            let until = Instant::now() + Duration::from_millis(1_500);
            while Instant::now() < until {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                )
                .bind(&app_name)
                .fetch_one(&admin)
                .await
                .unwrap_or(0);
                killed += n as u64;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            killed
        })
    };
    // Buyers do not retry here: every `unavailable` the faults caused is counted.
    let report = common::rush::Rush {
        buyers: BUYERS,
        seats: SEATS,
        spread: Duration::from_millis(1_000),
        tries: 1,
    }
    .run(&service)
    .await;
    let killed = killer.await.expect("killer");
    for code in report.errors.keys() {
        assert!(
            matches!(
                code,
                ErrorCode::Unavailable | ErrorCode::OutcomeUnknown | ErrorCode::SeatUnavailable
            ),
            "only `unavailable`, `outcome_unknown` and ordinary losses may come out of a fault: {report:?}"
        );
    }
    let recovered = common::rush::wait_healthy(store.as_ref()).await;
    eprintln!(
        "faults ({batch:?}): {killed} connections killed; {report:?}; recovered in {recovered:?} after the last kill"
    );

    // The books, from the database itself.
    let mut conn = store.pool().acquire().await.expect("connection");
    let payments = common::rush::assert_books(&mut conn).await;
    // A payment whose commit got no answer (`outcome_unknown`) may still have happened; one
    // answered `unavailable` did not.
    let unanswered = report
        .errors
        .get(&ErrorCode::OutcomeUnknown)
        .copied()
        .unwrap_or(0);
    assert!(
        (report.paid..=report.paid + unanswered).contains(&(payments as u64)),
        "{payments} payments for {} paid buyers and {unanswered} unanswered",
        report.paid
    );
}
