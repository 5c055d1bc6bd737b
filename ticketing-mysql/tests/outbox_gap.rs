//! Outbox sequence numbers (AUTO_INCREMENT) are taken when a transaction inserts its event, but
//! become visible when it commits: an event with a lower `seq` can appear after a relay has
//! already read and acknowledged higher ones. Acknowledging by exact `seq` (never "everything up
//! to") keeps that late event unpublished until a relay delivers it.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ticketing_core::{
    EventId, EventSink, HoldRequest, OptionId, OutboxRecord, OutboxRelay, Reservation, Result,
    SeatId, ServiceConfig, TicketStore, TicketingService, UserId, async_trait,
};
use ticketing_mysql::{MySqlConfig, MySqlStore};

type Late = tokio::task::JoinHandle<Result<Reservation>>;

/// Collects what it is given; the first delivery waits for the late transaction to commit, so
/// that it commits between the relay's read and its acknowledgement.
#[derive(Debug, Default)]
struct Collect {
    seen: Mutex<Vec<OutboxRecord>>,
    late: tokio::sync::Mutex<Option<Late>>,
}

#[async_trait]
impl EventSink for Collect {
    async fn publish(&self, records: &[OutboxRecord]) -> Result<()> {
        self.seen.lock().expect("lock").extend_from_slice(records);
        if let Some(late) = self.late.lock().await.take() {
            late.await
                .expect("task")
                .expect("user 2's hold commits late");
        }
        Ok(())
    }
}

fn hold(user: i64, seat: i64) -> HoldRequest {
    HoldRequest::new(UserId(user), OptionId(1), vec![SeatId(seat)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    ticketing_no_mysql,
    ignore = "needs MYSQL_URL (a MySQL/MariaDB server)"
)]
async fn an_event_committed_after_later_ones_were_acknowledged_is_still_delivered() {
    let config = MySqlConfig::default();
    let Some((pool, _, database)) = common::fresh_database(&config).await else {
        return;
    };
    let store = Arc::new(MySqlStore::new(pool.clone(), config));
    store
        .seed(&common::simple_catalog(10, 1_000))
        .await
        .expect("seed");
    let service = TicketingService::new(store.clone(), ServiceConfig::default());
    // User 2's transaction stalls right after inserting its event: its seq is taken, not
    // committed.
    sqlx::query(
        "CREATE TRIGGER stall AFTER INSERT ON outbox FOR EACH ROW \
         BEGIN IF JSON_EXTRACT(NEW.payload, '$.kind.user_id') = 2 THEN DO SLEEP(1); END IF; END",
    )
    .execute(&pool)
    .await
    .expect("trigger");

    let late = {
        let service = service.clone();
        tokio::spawn(async move { service.hold(hold(2, 2)).await })
    };
    let started = Instant::now();
    loop {
        let sleeping: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
             WHERE DB = ? AND ID <> CONNECTION_ID() \
               AND (STATE = 'User sleep' OR INFO LIKE '%SLEEP(%')",
        )
        .bind(&database)
        .fetch_one(&pool)
        .await
        .expect("processlist");
        if sleeping > 0 {
            break;
        }
        if late.is_finished() {
            panic!("user 2's hold ended without stalling: {:?}", late.await);
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    service
        .hold(hold(3, 3))
        .await
        .expect("a later hold commits");
    assert!(
        !late.is_finished(),
        "user 2's hold must still be open when user 3's commits"
    );

    let sink = Arc::new(Collect {
        late: tokio::sync::Mutex::new(Some(late)),
        ..Collect::default()
    });
    let relay = OutboxRelay::new(store.clone(), sink.clone(), 100);
    assert_eq!(relay.run_once().await.expect("relay"), 1, "user 3's event");
    while relay.run_once().await.expect("relay") > 0 {}

    let seen = sink.seen.lock().expect("lock").clone();
    let delivered: HashSet<EventId> = seen.iter().map(|r| r.event.id).collect();
    // The late event really has the lower seq: it was taken before user 3's.
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[1].seq < seen[0].seq,
        "the late event's seq is below the one acknowledged first: {seen:?}"
    );
    let all: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT event_id FROM outbox")
        .fetch_all(&pool)
        .await
        .expect("outbox");
    assert_eq!(all.len(), 2);
    for id in all {
        assert!(
            delivered.contains(&EventId(id)),
            "event {id} was marked published without being delivered"
        );
    }
}
