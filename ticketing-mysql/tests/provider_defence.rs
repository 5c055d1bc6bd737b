//! The last line of defence against a double sale, met by a provider payment
//! (`testkit::defence`): the conflicting sale row is written behind the store's back.

mod common;

use std::sync::Arc;

use ticketing_mysql::{MySqlConfig, MySqlStore};

#[tokio::test]
#[cfg_attr(
    ticketing_no_mysql,
    ignore = "needs MYSQL_URL (a MySQL/MariaDB server)"
)]
async fn a_capture_that_meets_a_sold_seat_is_refunded_not_stuck() {
    let config = MySqlConfig::default();
    let Some(pool) = common::fresh_pool(&config).await else {
        return;
    };
    let store = Arc::new(MySqlStore::new(pool.clone(), config));
    ticketing_core::testkit::defence::a_capture_that_meets_a_sold_seat_is_refunded(
        store,
        |seat, reservation| async move {
            sqlx::query("INSERT INTO seat_sales (seat_id, reservation_id) VALUES (?, ?)")
                .bind(seat.0)
                .bind(reservation.0)
                .execute(&pool)
                .await
                .expect("a conflicting sale");
        },
    )
    .await;
}
