//! The last line of defence against a double sale, met by a provider payment
//! (`testkit::defence`): the conflicting sale row is written behind the store's back.

mod common;

use std::sync::Arc;

use ticketing_postgres::{PgConfig, PgStore};

#[tokio::test]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn a_capture_that_meets_a_sold_seat_is_refunded_not_stuck() {
    let config = PgConfig::default();
    let Some(pool) = common::fresh_pool(&config).await else {
        return;
    };
    let store = Arc::new(PgStore::new(pool.clone(), config));
    ticketing_core::testkit::defence::a_capture_that_meets_a_sold_seat_is_refunded(
        store,
        |seat, reservation| async move {
            sqlx::query("INSERT INTO seat_sales (seat_id, reservation_id) VALUES ($1, $2)")
                .bind(seat.0)
                .bind(reservation.0)
                .execute(&pool)
                .await
                .expect("a conflicting sale");
        },
    )
    .await;
}
