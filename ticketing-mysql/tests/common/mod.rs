//! Test databases: each call gets its own database (a MySQL schema) on the server of
//! `MYSQL_URL`, migrated, so tests run in parallel and again and again against one server and
//! never share state. Without `MYSQL_URL` a test prints a skip line and returns, unless
//! `TICKETING_REQUIRE_SERVICES=1`, where it fails (the build script marks the tests ignored
//! when the variable is missing at build time, so they never show as passed).

#![allow(dead_code)]

pub mod rush;

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{MySqlPool, Row};
use ticketing_mysql::{MySqlConfig, MySqlStore};

/// The server URL, or `None` after printing why the test is skipped.
pub fn mysql_url() -> Option<String> {
    match std::env::var("MYSQL_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("TICKETING_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("TICKETING_REQUIRE_SERVICES=1 but MYSQL_URL is not set");
            }
            eprintln!("skipped: MYSQL_URL is not set (MySQL tests need a MySQL or MariaDB server)");
            None
        }
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Drop test databases left by runs more than an hour old (names carry their creation time).
async fn sweep_old_databases(admin: &MySqlPool) {
    let names: Vec<String> = sqlx::query(
        "SELECT CAST(SCHEMA_NAME AS CHAR) AS name FROM information_schema.SCHEMATA \
         WHERE SCHEMA_NAME LIKE 'ticketing\\_t\\_%'",
    )
    .fetch_all(admin)
    .await
    .unwrap_or_default()
    .iter()
    .filter_map(|r| r.try_get("name").ok())
    .collect();
    let cutoff = unix_secs().saturating_sub(3600);
    for name in names {
        let created = name
            .split('_')
            .nth(2)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        if created < cutoff {
            let drop = format!("DROP DATABASE IF EXISTS `{name}`");
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(admin).await;
        }
    }
}

/// The most connections a test's pool may have: the server's `max_connections` (151 by
/// default) is shared by every test running at once, and with everything else on the machine.
pub const TEST_POOL: u32 = 4;

/// An admin pool (of two connections) on the database of `MYSQL_URL` (not a test's own).
pub async fn admin_pool(url: &str) -> MySqlPool {
    MySqlPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("MYSQL_URL is set but MySQL does not answer: {e}"))
}

/// A fresh, migrated database: a pool on it (at most [`TEST_POOL`] connections, whatever
/// `config` says), the connect options that reach it, its name.
pub async fn fresh_database(
    config: &MySqlConfig,
) -> Option<(MySqlPool, MySqlConnectOptions, String)> {
    let config = &config
        .clone()
        .with_max_connections(config.max_connections.min(TEST_POOL));
    let url = mysql_url()?;
    let admin = admin_pool(&url).await;
    sweep_old_databases(&admin).await;
    let name = format!(
        "ticketing_t_{}_{}",
        unix_secs(),
        uuid::Uuid::new_v4().simple()
    );
    let create = format!("CREATE DATABASE `{name}`");
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&admin)
        .await
        .expect("creating a test database");
    admin.close().await;
    let options = config
        .connect_options(&url)
        .expect("a valid MYSQL_URL")
        .database(&name);
    let pool = config
        .pool(options.clone())
        .await
        .expect("connecting to the test database");
    ticketing_mysql::migrate(&pool)
        .await
        .expect("migrating the test database");
    Some((pool, options, name))
}

/// A fresh, migrated database and a pool on it.
pub async fn fresh_pool(config: &MySqlConfig) -> Option<MySqlPool> {
    Some(fresh_database(config).await?.0)
}

/// A store on a fresh database.
pub async fn fresh_store(config: MySqlConfig) -> Option<MySqlStore> {
    let pool = fresh_pool(&config).await?;
    Some(MySqlStore::new(pool, config))
}

/// One concert (1) with one option (1) and seats `1..=seats`, all at `price`.
pub fn simple_catalog(seats: i64, price: i64) -> ticketing_core::Catalog {
    use ticketing_core::{Concert, ConcertId, OptionId, Points, Seat, SeatId, ShowOption};
    ticketing_core::Catalog {
        concerts: vec![Concert {
            id: ConcertId(1),
            title: "Rush".into(),
            venue: "Hall".into(),
        }],
        options: vec![ShowOption::new(
            OptionId(1),
            ConcertId(1),
            chrono::Utc::now() + chrono::Duration::days(365),
        )],
        seats: (1..=seats)
            .map(|i| Seat {
                id: SeatId(i),
                option_id: OptionId(1),
                seat_no: format!("A-{i}"),
                grade: "R".into(),
                price: Points(price),
            })
            .collect(),
    }
}

/// Assert that no seat is in two confirmed reservations (their JSON seat lists unnested).
pub async fn assert_no_seat_sold_twice(conn: &mut sqlx::MySqlConnection) {
    let doubles: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT j.seat FROM reservations r, \
           JSON_TABLE(r.seat_ids, '$[*]' COLUMNS (seat BIGINT PATH '$')) AS j \
         WHERE r.status = 'confirmed' GROUP BY j.seat HAVING COUNT(*) > 1) d",
    )
    .fetch_one(conn)
    .await
    .expect("query");
    assert_eq!(doubles, 0, "a seat was sold twice");
}
