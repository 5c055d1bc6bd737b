//! Faults in the middle of a rush: every connection of the store killed again and again with
//! `KILL CONNECTION`, from a separate admin connection. Requests fail with `unavailable` (or
//! `outcome_unknown` for a commit that got no answer) or succeed, the pool recovers by itself,
//! and afterwards the books hold: no seat sold twice, sold seats = paid reservations, points
//! debited = the price of the seats sold, every wallet balances to the point.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::MySqlPool;
use ticketing_core::{ErrorCode, ServiceConfig, TicketStore, TicketingService};
#[cfg(feature = "pessimistic")]
use ticketing_mysql::LockWait;
use ticketing_mysql::{MySqlConfig, MySqlStore, MySqlStrategy};

const BUYERS: i64 = 300;
const SEATS: i64 = 100;

#[cfg(feature = "optimistic")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    ticketing_no_mysql,
    ignore = "needs MYSQL_URL (a MySQL/MariaDB server)"
)]
async fn killed_connections_mid_rush_lose_nothing_and_sell_nothing_twice_optimistic() {
    killed_connections(MySqlStrategy::Optimistic).await;
}

#[cfg(feature = "pessimistic")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    ticketing_no_mysql,
    ignore = "needs MYSQL_URL (a MySQL/MariaDB server)"
)]
async fn killed_connections_mid_rush_lose_nothing_and_sell_nothing_twice_pessimistic() {
    killed_connections(MySqlStrategy::Pessimistic {
        lock_wait: LockWait::Wait,
    })
    .await;
}

/// Kill every connection of the test's database but the killer's own; how many were killed.
async fn kill_all(admin: &MySqlPool, database: &str) -> u64 {
    let ids: Vec<u64> = sqlx::query_scalar(
        "SELECT CAST(ID AS UNSIGNED) FROM information_schema.PROCESSLIST \
         WHERE DB = ? AND ID <> CONNECTION_ID()",
    )
    .bind(database)
    .fetch_all(admin)
    .await
    .unwrap_or_default();
    let mut killed = 0;
    for id in ids {
        // The connection may have gone in the meantime (error 1094, unknown thread).
        let kill = format!("KILL CONNECTION {id}");
        if sqlx::query(sqlx::AssertSqlSafe(kill))
            .execute(admin)
            .await
            .is_ok()
        {
            killed += 1;
        }
    }
    killed
}

async fn killed_connections(strategy: MySqlStrategy) {
    // The connection wait is long enough that no request fails waiting for a connection (an
    // `unavailable` below comes from a killed connection, not from a pool of four kept busy).
    let config = MySqlConfig::default()
        .with_strategy(strategy)
        .with_max_connections(common::TEST_POOL)
        .with_acquire_timeout(chrono::Duration::seconds(20));
    let Some((pool, _, database)) = common::fresh_database(&config).await else {
        return;
    };
    // The killer's own connection is on the server's default database, not the test's.
    let admin = common::admin_pool(&common::mysql_url().expect("checked above")).await;
    let store = Arc::new(MySqlStore::new(pool, config));
    store
        .seed(&common::simple_catalog(SEATS, 1_000))
        .await
        .expect("seed");
    let service = TicketingService::new(store.clone(), ServiceConfig::default());

    // The fault: kill every connection of the store, every 50 ms, while the buyers run.
    let killer = {
        let admin = admin.clone();
        tokio::spawn(async move {
            let mut killed = 0u64;
            let until = Instant::now() + Duration::from_millis(1_500);
            while Instant::now() < until {
                killed += kill_all(&admin, &database).await;
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
    assert!(
        killed > 0,
        "the fault must have happened: no connection was killed"
    );
    for code in report.errors.keys() {
        assert!(
            matches!(
                code,
                ErrorCode::Unavailable | ErrorCode::OutcomeUnknown | ErrorCode::SeatUnavailable
            ),
            "only `unavailable`, `outcome_unknown` and ordinary losses may come out of a fault: {report:?}"
        );
    }
    // Killing only idle connections (which the pool replaces unseen) would pass everything
    // above: the fault must have hit requests in flight.
    let failed = [ErrorCode::Unavailable, ErrorCode::OutcomeUnknown]
        .iter()
        .filter_map(|code| report.errors.get(code))
        .sum::<u64>();
    assert!(
        failed > 0,
        "no request failed with `unavailable` or `outcome_unknown`: the kills hit nothing in \
         flight ({killed} killed; {report:?})"
    );
    let recovered = common::rush::wait_healthy(store.as_ref()).await;
    eprintln!(
        "faults ({strategy:?}): {killed} connections killed; {report:?}; recovered in {recovered:?} after the last kill"
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
