//! Instances whose own clocks disagree follow the database's clock (issue #12.4).

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use ticketing_core::{Clock, SystemClock};
use ticketing_postgres::{DatabaseClock, PgConfig};

/// A server whose clock is off by the given amount.
#[derive(Debug)]
struct Skewed(Duration);

impl Clock for Skewed {
    fn now(&self) -> DateTime<Utc> {
        SystemClock.now() + self.0
    }
}

#[tokio::test]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn instances_with_skewed_clocks_agree_through_the_database_clock() {
    let Some(pool) = common::fresh_pool(&PgConfig::default()).await else {
        return;
    };
    let ahead: Arc<dyn Clock> = Arc::new(Skewed(Duration::minutes(10)));
    let behind: Arc<dyn Clock> = Arc::new(Skewed(Duration::minutes(-7)));
    let a = DatabaseClock::with_local(pool.clone(), ahead.clone())
        .await
        .expect("sync a");
    let b = DatabaseClock::with_local(pool.clone(), behind.clone())
        .await
        .expect("sync b");
    let uncertainty = a.sync().await.expect("sync") + b.sync().await.expect("sync");
    let db: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&pool)
        .await
        .expect("database clock");
    let (a_now, b_now) = (a.now(), b.now());
    // Their own clocks are 17 minutes apart: a hold made on one would end 17 minutes off on
    // the other, and a cap would be exceeded for as long.
    assert!((ahead.now() - behind.now()) > Duration::minutes(16));
    // Through the database clock they agree with it, and with each other, within the sync's
    // uncertainty plus the time these lines take (generous for a slow machine).
    let bound = uncertainty + Duration::seconds(2);
    assert!((a_now - db).abs() < bound, "a is {} off", a_now - db);
    assert!((b_now - db).abs() < bound, "b is {} off", b_now - db);
    assert!((a_now - b_now).abs() < bound);
    assert!(a.offset() < Duration::minutes(-9) && b.offset() > Duration::minutes(6));
}
