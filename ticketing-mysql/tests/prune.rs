//! Pruning locks only the rows it deletes and skips rows another transaction holds: it neither
//! waits for them (a range `DELETE ... ORDER BY ... LIMIT` would, until the lock wait timeout)
//! nor takes locks that would hold up the commands' inserts; unacknowledged events stay.

mod common;

use std::time::Duration;

use chrono::Utc;
use ticketing_core::{
    HoldRequest, OptionId, SeatId, ServiceConfig, TicketStore, TicketingService, UserId,
};
use ticketing_mysql::{MySqlConfig, MySqlStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    ticketing_no_mysql,
    ignore = "needs MYSQL_URL (a MySQL/MariaDB server)"
)]
async fn prune_skips_rows_another_transaction_holds_and_keeps_unacknowledged_events() {
    let config = MySqlConfig::default();
    let Some(pool) = common::fresh_pool(&config).await else {
        return;
    };
    let store = std::sync::Arc::new(MySqlStore::new(pool.clone(), config));
    store
        .seed(&common::simple_catalog(10, 1_000))
        .await
        .expect("seed");
    let service = TicketingService::new(store.clone(), ServiceConfig::default());
    let hold = |user: i64| HoldRequest::new(UserId(user), OptionId(1), vec![SeatId(user)]);
    for user in 1..=3 {
        service.hold(hold(user)).await.expect("hold");
    }
    let acked: Vec<u64> = store
        .outbox_read(0, 100)
        .await
        .expect("read")
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(acked.len(), 3);
    store.outbox_ack(&acked).await.expect("ack");
    service
        .hold(hold(4))
        .await
        .expect("an unacknowledged event");

    // Another transaction holds the first acknowledged event.
    let mut other = pool.begin().await.expect("begin");
    sqlx::query("SELECT seq FROM outbox WHERE seq = ? FOR UPDATE")
        .bind(acked[0] as i64)
        .fetch_one(&mut *other)
        .await
        .expect("lock");

    let later = Utc::now() + chrono::Duration::minutes(1);
    // Well below the 2 s lock wait timeout: pruning must not wait at all.
    let pruned = tokio::time::timeout(Duration::from_millis(1_500), store.prune(later, 100))
        .await
        .expect("prune waited for a locked row")
        .expect("prune");
    assert_eq!(pruned, 2, "the two unlocked acknowledged events");
    // A command's insert is not held up while the other transaction is open.
    tokio::time::timeout(Duration::from_millis(1_500), service.hold(hold(5)))
        .await
        .expect("an insert waited")
        .expect("hold");
    other.rollback().await.expect("rollback");

    assert_eq!(store.prune(later, 100).await.expect("prune"), 1);
    let left: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM outbox WHERE published_at IS NULL ORDER BY seq")
            .fetch_all(&pool)
            .await
            .expect("outbox");
    let all: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .expect("outbox");
    assert_eq!(left.len(), 2, "the unacknowledged events stay");
    assert_eq!(all, 2);
}
