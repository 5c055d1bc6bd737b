//! Test databases: each call gets its own schema in `DATABASE_URL`, migrated, so tests run in
//! parallel and again and again against one server. Without `DATABASE_URL` a test prints a skip
//! line and passes, unless `TICKETING_REQUIRE_SERVICES=1`, where it fails.

#![allow(dead_code)]

pub mod rush;

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::PgPool;
use ticketing_postgres::{PgConfig, PgStore};

/// The database URL, or `None` after printing why the test is skipped.
pub fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("TICKETING_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("TICKETING_REQUIRE_SERVICES=1 but DATABASE_URL is not set");
            }
            eprintln!("skipped: DATABASE_URL is not set (PostgreSQL tests need a server)");
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

/// Drop test schemas left by runs more than an hour old (names carry their creation time).
async fn sweep_old_schemas(pool: &PgPool) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::TEXT FROM pg_namespace WHERE nspname LIKE 'ticketing\\_t\\_%'",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    let cutoff = unix_secs().saturating_sub(3600);
    for name in names {
        let created = name
            .split('_')
            .nth(2)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        if created < cutoff {
            let drop = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(pool).await;
        }
    }
}

/// A fresh, migrated schema and a pool whose connections use it.
pub async fn fresh_pool(config: &PgConfig) -> Option<PgPool> {
    Some(fresh_schema(config).await?.0)
}

/// A fresh, migrated schema: a pool on it and the connect options that reach it.
pub async fn fresh_schema(config: &PgConfig) -> Option<(PgPool, sqlx::postgres::PgConnectOptions)> {
    let url = database_url()?;
    let admin = PgPool::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("DATABASE_URL is set but PostgreSQL does not answer: {e}"));
    sweep_old_schemas(&admin).await;
    let schema = format!(
        "ticketing_t_{}_{}",
        unix_secs(),
        uuid::Uuid::new_v4().simple()
    );
    let create = format!("CREATE SCHEMA \"{schema}\"");
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&admin)
        .await
        .expect("creating a test schema");
    admin.close().await;
    let options = config
        .connect_options(&url)
        .expect("a valid DATABASE_URL")
        .options([("search_path", schema.as_str())]);
    let pool = config
        .pool(options.clone())
        .await
        .expect("connecting to the test schema");
    ticketing_postgres::migrate(&pool)
        .await
        .expect("migrating the test schema");
    Some((pool, options))
}

/// A store on a fresh schema.
pub async fn fresh_store(config: PgConfig) -> Option<PgStore> {
    let pool = fresh_pool(&config).await?;
    Some(PgStore::new(pool, config))
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

/// Assert that no seat is in two confirmed reservations.
pub async fn assert_no_seat_sold_twice(conn: &mut sqlx::PgConnection) {
    let doubles: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT s FROM reservations, unnest(seat_ids) s \
         WHERE status = 'confirmed' GROUP BY s HAVING count(*) > 1) d",
    )
    .fetch_one(conn)
    .await
    .expect("query");
    assert_eq!(doubles, 0, "a seat was sold twice");
}
