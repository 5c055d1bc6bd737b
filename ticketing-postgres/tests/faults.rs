//! Faults in the middle of a rush: every connection of the store killed again and again with
//! `pg_terminate_backend`. Requests fail with `unavailable` or succeed, the pool recovers by
//! itself, and afterwards no seat is sold twice and every wallet balances to the point.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Row;
use ticketing_core::{
    ErrorCode, HoldRequest, OptionId, PayRequest, Points, SeatId, ServiceConfig, TicketStore,
    TicketingService, UserId,
};
use ticketing_postgres::{PgConfig, PgStore, PgStrategy};

const BUYERS: i64 = 300;
const SEATS: i64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_mid_rush_lose_nothing_and_sell_nothing_twice() {
    let config = PgConfig {
        strategy: PgStrategy::Optimistic,
        max_connections: 8,
        acquire_timeout: Duration::from_secs(2),
        ..PgConfig::default()
    };
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
    let tasks: Vec<_> = (1..=BUYERS)
        .map(|u| {
            let service = service.clone();
            tokio::spawn(async move {
                let user = UserId(u);
                let mut codes = Vec::new();
                // Each step may fail with `unavailable`; the buyer does not retry.
                if let Err(e) = service.charge(user, Points(5_000), None).await {
                    codes.push(e.code());
                    return codes;
                }
                let hold = service
                    .hold(HoldRequest {
                        user_id: user,
                        option_id: OptionId(1),
                        seat_ids: vec![SeatId(u % SEATS + 1)],
                        queue_token: None,
                        idempotency_key: None,
                    })
                    .await;
                match hold {
                    Ok(r) => {
                        let paid = service
                            .pay(PayRequest {
                                user_id: user,
                                reservation_id: r.id,
                                queue_token: None,
                                idempotency_key: None,
                            })
                            .await;
                        if let Err(e) = paid {
                            codes.push(e.code());
                        }
                    }
                    Err(e) => codes.push(e.code()),
                }
                codes
            })
        })
        .collect();
    let mut counts: HashMap<ErrorCode, u64> = HashMap::new();
    for t in tasks {
        for code in t.await.expect("buyer") {
            *counts.entry(code).or_default() += 1;
        }
    }
    let killed = killer.await.expect("killer");
    for code in counts.keys() {
        assert!(
            matches!(code, ErrorCode::Unavailable | ErrorCode::SeatUnavailable),
            "only `unavailable` and ordinary losses may come out of a fault: {counts:?}"
        );
    }

    // The pool recovers by itself.
    let started = Instant::now();
    let mut healthy = false;
    while started.elapsed() < Duration::from_secs(10) {
        if store.health().await.is_ok() && store.balance(UserId(1)).await.is_ok() {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(healthy, "the pool did not recover");
    eprintln!(
        "faults: {killed} connections killed; errors {counts:?}; recovered in {:?}",
        started.elapsed()
    );

    // The books, from the database itself.
    let mut conn = store.pool().acquire().await.expect("connection");
    common::assert_no_seat_sold_twice(&mut conn).await;
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM seats WHERE status = 'sold') AS sold, \
                (SELECT count(*) FROM seat_sales) AS sales, \
                (SELECT coalesce(sum(cardinality(seat_ids)), 0)::BIGINT FROM reservations WHERE status = 'confirmed') AS confirmed, \
                (SELECT count(*) FROM payments) AS payments",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("query");
    let (sold, sales, confirmed, payments): (i64, i64, i64, i64) = (
        row.get("sold"),
        row.get("sales"),
        row.get("confirmed"),
        row.get("payments"),
    );
    assert_eq!((sold, sales, payments), (confirmed, confirmed, confirmed));
    let unbalanced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM wallets w WHERE w.balance <> coalesce((SELECT sum(CASE kind \
           WHEN 'charge' THEN amount WHEN 'payment' THEN -amount ELSE amount END) \
           FROM wallet_ledger l WHERE l.user_id = w.user_id), 0)",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("query");
    assert_eq!(
        unbalanced, 0,
        "every wallet equals charges - payments + refunds"
    );
    let paid_total: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(amount), 0)::BIGINT FROM payments")
            .fetch_one(&mut *conn)
            .await
            .expect("query");
    let debits: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(amount), 0)::BIGINT FROM wallet_ledger WHERE kind = 'payment'",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("query");
    assert_eq!(
        paid_total, debits,
        "every payment debited once, every debit paid for"
    );
}
