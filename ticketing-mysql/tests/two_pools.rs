//! Two independent pools ("two instances" of a service) race 500 buyers over 50 seats on one
//! MySQL / MariaDB database; afterwards no seat is confirmed twice and every wallet balances to
//! the point.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::Row;
use ticketing_core::{
    CancelRequest, ChargeRequest, ErrorCode, HoldRequest, OptionId, PayRequest, Points, SeatId,
    ServiceConfig, TicketStore, TicketingService, UserId,
};
use ticketing_mysql::{MySqlConfig, MySqlStore};

const BUYERS: i64 = 500;
const SEATS: i64 = 50;
const PRICE: i64 = 1_000;
const CHARGE: i64 = 5_000;

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    paid: i64,
    refunded: i64,
}

async fn buyer(service: TicketingService, user: UserId) -> Tally {
    let mut tally = Tally::default();
    service
        .charge(ChargeRequest::new(user, Points(CHARGE)))
        .await
        .expect("charge");
    for attempt in 0..3 {
        let seat = SeatId((user.0 * 7 + attempt * 13) % SEATS + 1);
        let hold = match service
            .hold(HoldRequest::new(user, OptionId(1), vec![seat]))
            .await
        {
            Ok(hold) => hold,
            Err(e) if e.code() == ErrorCode::SeatUnavailable => continue,
            Err(e) => panic!("hold failed unexpectedly: {e:?}"),
        };
        let paid = service
            .pay(PayRequest::new(user, hold.id))
            .await
            .expect("paying a fresh hold");
        tally.paid += paid.amount.0;
        if user.0 % 5 == 0 {
            let cancelled = service
                .cancel(CancelRequest::new(user, hold.id))
                .await
                .expect("cancel");
            tally.refunded += cancelled.refunded_amount.0;
        }
        break;
    }
    tally
}

async fn race(config: MySqlConfig) {
    let Some((pool_a, options, _)) = common::fresh_database(&config).await else {
        return;
    };
    // Each pool as small as the first (the server's connections are shared by all tests).
    let config = config.with_max_connections(common::TEST_POOL);
    let pool_b = config.pool(options).await.expect("second pool");
    let a = MySqlStore::new(pool_a.clone(), config.clone());
    let b = MySqlStore::new(pool_b, config);
    a.seed(&common::simple_catalog(SEATS, PRICE))
        .await
        .expect("seed");
    let services = [
        TicketingService::new(Arc::new(a), ServiceConfig::default()),
        TicketingService::new(Arc::new(b), ServiceConfig::default()),
    ];
    let tasks: Vec<_> = (1..=BUYERS)
        .map(|u| {
            let service = services[(u % 2) as usize].clone();
            tokio::spawn(async move { (u, buyer(service, UserId(u)).await) })
        })
        .collect();
    let mut tallies = HashMap::new();
    for t in tasks {
        let (u, tally) = t.await.expect("buyer task");
        tallies.insert(u, tally);
    }

    // No seat in two confirmed reservations; the sales table agrees.
    common::assert_no_seat_sold_twice(&mut pool_a.acquire().await.expect("conn")).await;
    let confirmed: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(seat_count), 0) AS SIGNED) FROM reservations WHERE status = 'confirmed'",
    )
    .fetch_one(&pool_a)
    .await
    .expect("query");
    let sold: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM seats WHERE status = 'sold'")
        .fetch_one(&pool_a)
        .await
        .expect("query");
    let sales: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM seat_sales")
        .fetch_one(&pool_a)
        .await
        .expect("query");
    assert_eq!((sold, sales), (confirmed, confirmed));
    assert!(confirmed > 0 && confirmed <= SEATS);

    // Every wallet: charged - paid + refunded, by the client's tally and by the ledger.
    let rows = sqlx::query(
        "SELECT w.user_id, w.balance, \
           CAST(COALESCE(SUM(CASE WHEN l.kind = 'charge' THEN l.amount END), 0) AS SIGNED) AS charged, \
           CAST(COALESCE(SUM(CASE WHEN l.kind = 'payment' THEN l.amount END), 0) AS SIGNED) AS paid, \
           CAST(COALESCE(SUM(CASE WHEN l.kind = 'refund' THEN l.amount END), 0) AS SIGNED) AS refunded \
         FROM wallets w LEFT JOIN wallet_ledger l ON l.user_id = w.user_id \
         GROUP BY w.user_id, w.balance",
    )
    .fetch_all(&pool_a)
    .await
    .expect("query");
    assert_eq!(rows.len() as i64, BUYERS);
    for row in rows {
        let user: i64 = row.get("user_id");
        let balance: i64 = row.get("balance");
        let tally = tallies[&user];
        assert_eq!(
            balance,
            CHARGE - tally.paid + tally.refunded,
            "user {user} (client tally)"
        );
        let ledger: i64 = row.get::<i64, _>("charged") - row.get::<i64, _>("paid")
            + row.get::<i64, _>("refunded");
        assert_eq!(balance, ledger, "user {user} (ledger)");
    }
}

#[cfg(feature = "optimistic")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    ticketing_no_mysql,
    ignore = "needs MYSQL_URL (a MySQL/MariaDB server)"
)]
async fn two_pools_optimistic_never_oversell() {
    race(MySqlConfig::default().with_strategy(ticketing_mysql::MySqlStrategy::Optimistic)).await;
}

#[cfg(feature = "pessimistic")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    ticketing_no_mysql,
    ignore = "needs MYSQL_URL (a MySQL/MariaDB server)"
)]
async fn two_pools_pessimistic_never_oversell() {
    race(
        MySqlConfig::default().with_strategy(ticketing_mysql::MySqlStrategy::Pessimistic {
            lock_wait: ticketing_mysql::LockWait::Wait,
        }),
    )
    .await;
}

#[cfg(feature = "pessimistic")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    ticketing_no_mysql,
    ignore = "needs MYSQL_URL (a MySQL/MariaDB server)"
)]
async fn two_pools_pessimistic_nowait_never_oversell() {
    race(
        MySqlConfig::default().with_strategy(ticketing_mysql::MySqlStrategy::Pessimistic {
            lock_wait: ticketing_mysql::LockWait::NoWait,
        }),
    )
    .await;
}
