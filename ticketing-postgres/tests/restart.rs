//! PostgreSQL restarted (`pg_ctlcluster ... stop -m fast`, a second down, `start`: every
//! connection cut, the server gone for a couple of seconds) in the middle of a rush. Buyers retry `unavailable` with the
//! same idempotency keys, as a client of the library should; the pool reconnects by itself, every
//! buyer ends with a definite answer, and afterwards no seat is sold twice, nobody paid twice,
//! and every wallet balances to the point.
//!
//! This test restarts the local PostgreSQL, so it runs only when `TICKETING_FAULT_TESTS=1`
//! (set by `.ci/run`) and `DATABASE_URL` points at 127.0.0.1; otherwise it prints a skip line.
//! It is the only test of its binary, and cargo runs test binaries one after another, so no
//! other test sees the restart.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ticketing_core::{ErrorCode, ServiceConfig, TicketingService};
use ticketing_postgres::{BatchConfig, PgConfig, PgStore, PgStrategy};

const BUYERS: i64 = 300;
const SEATS: i64 = 100;

fn pg_ctlcluster(action: &str) {
    let version = std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .expect("a PostgreSQL cluster under /etc/postgresql");
    let status = Command::new("pg_ctlcluster")
        .args([
            "--skip-systemctl-redirect",
            &version,
            "main",
            action,
            "-m",
            "fast",
        ])
        .status()
        .expect("running pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster {action} failed");
}

/// Stop the local cluster (fast: every session cut), keep it down for a second, start it;
/// how long it was away.
fn restart_postgres() -> Duration {
    let started = Instant::now();
    pg_ctlcluster("stop");
    std::thread::sleep(Duration::from_secs(1));
    pg_ctlcluster("start");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    any(ticketing_no_database, ticketing_no_fault_tests),
    ignore = "restarts the local PostgreSQL: needs TICKETING_FAULT_TESTS=1 and DATABASE_URL"
)]
async fn a_postgres_restart_mid_rush_loses_nothing_and_sells_nothing_twice() {
    let local = std::env::var("DATABASE_URL")
        .is_ok_and(|u| u.contains("127.0.0.1") || u.contains("localhost"));
    if std::env::var("TICKETING_FAULT_TESTS").as_deref() != Ok("1") || !local {
        eprintln!(
            "skipped: set TICKETING_FAULT_TESTS=1 with a local DATABASE_URL to restart PostgreSQL in a test"
        );
        return;
    }
    // One mode after the other: both restart the one local server.
    restart_mid_rush(None).await;
    restart_mid_rush(Some(BatchConfig::default())).await;
}

async fn restart_mid_rush(batch: Option<BatchConfig>) {
    let config = PgConfig::default()
        .with_strategy(PgStrategy::Optimistic)
        .with_max_connections(8)
        .with_acquire_timeout(chrono::Duration::milliseconds(500))
        .with_batch(batch);
    let Some((_admin, options)) = common::fresh_schema(&config).await else {
        return;
    };
    let store = Arc::new(PgStore::new(
        config.pool(options).await.expect("pool"),
        config,
    ));
    ticketing_core::TicketStore::seed(store.as_ref(), &common::simple_catalog(SEATS, 1_000))
        .await
        .expect("seed");
    let service = TicketingService::new(store.clone(), ServiceConfig::default());

    // Buyers arrive over 4 s; PostgreSQL restarts 1 s in. Once it is back, a probe measures
    // how long the pool takes to answer again.
    let restart = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1_000)).await;
            let down = tokio::task::spawn_blocking(restart_postgres)
                .await
                .expect("restart");
            (down, common::rush::wait_healthy(store.as_ref()).await)
        })
    };
    let report = common::rush::Rush {
        buyers: BUYERS,
        seats: SEATS,
        spread: Duration::from_millis(4_000),
        // Enough for a restart that takes long on a loaded machine (0.8 s apart at most: ~45 s).
        tries: 60,
    }
    .run(&service)
    .await;
    let (down, recovered) = restart.await.expect("restart task");
    eprintln!(
        "{batch:?}: postgres down for {down:?} (stop, 1 s, start); {report:?}; the pool answered {recovered:?} after PostgreSQL was back"
    );
    assert!(
        report.retries > 0,
        "the restart must have hit requests in flight: {report:?}"
    );
    for code in report.errors.keys() {
        assert_eq!(
            *code,
            ErrorCode::SeatUnavailable,
            "after retries, only ordinary losses remain: {report:?}"
        );
    }

    let mut conn = store.pool().acquire().await.expect("connection");
    let payments = common::rush::assert_books(&mut conn).await;
    assert_eq!(
        payments as u64, report.paid,
        "retries with idempotency keys: one payment per paid buyer, none lost, none doubled"
    );
    let paid_twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT user_id FROM payments GROUP BY user_id HAVING count(*) > 1) d",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("query");
    assert_eq!(paid_twice, 0, "a retried payment was taken twice");
    let charged_twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT user_id FROM wallet_ledger WHERE kind = 'charge' \
         GROUP BY user_id HAVING count(*) > 1) d",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("query");
    assert_eq!(charged_twice, 0, "a retried charge was applied twice");
}
