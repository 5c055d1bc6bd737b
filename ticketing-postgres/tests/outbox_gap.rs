//! Outbox sequence numbers are taken when a transaction inserts its event, but become visible
//! when it commits: an event with a lower `seq` can appear after a relay has already read and
//! acknowledged higher ones. Acknowledging by exact `seq` (never "everything up to") keeps that
//! late event unpublished until a relay delivers it.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ticketing_core::{
    EventId, EventSink, HoldRequest, OptionId, OutboxRecord, OutboxRelay, Reservation, Result,
    SeatId, ServiceConfig, TicketStore, TicketingService, UserId, async_trait,
};
use ticketing_postgres::{PgConfig, PgStore};

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
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn an_event_committed_after_later_ones_were_acknowledged_is_still_delivered() {
    let config = PgConfig::default();
    let Some(pool) = common::fresh_pool(&config).await else {
        return;
    };
    let store = Arc::new(PgStore::new(pool.clone(), config));
    store
        .seed(&common::simple_catalog(10, 1_000))
        .await
        .expect("seed");
    let service = TicketingService::new(store.clone(), ServiceConfig::default());
    // User 2's transaction stalls right after inserting its event: its seq is taken, not
    // committed.
    sqlx::query(
        "CREATE FUNCTION stall_event() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.payload -> 'kind' ->> 'user_id' = '2' THEN PERFORM pg_sleep(1); END IF; \
         RETURN NEW; END $$",
    )
    .execute(&pool)
    .await
    .expect("trigger function");
    sqlx::query(
        "CREATE TRIGGER stall AFTER INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION stall_event()",
    )
    .execute(&pool)
    .await
    .expect("trigger");
    let app: String = sqlx::query_scalar("SELECT current_setting('application_name')")
        .fetch_one(&pool)
        .await
        .expect("application name");

    let late = {
        let service = service.clone();
        tokio::spawn(async move { service.hold(hold(2, 2)).await })
    };
    let started = Instant::now();
    loop {
        let sleeping: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' \
             AND application_name = $1 AND datname = current_database()",
        )
        .bind(&app)
        .fetch_one(&pool)
        .await
        .expect("pg_stat_activity");
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

    let sink = Arc::new(Collect {
        late: tokio::sync::Mutex::new(Some(late)),
        ..Collect::default()
    });
    let relay = OutboxRelay::new(store.clone(), sink.clone(), 100);
    assert_eq!(relay.run_once().await.expect("relay"), 1, "user 3's event");
    while relay.run_once().await.expect("relay") > 0 {}

    let delivered: HashSet<EventId> = sink
        .seen
        .lock()
        .expect("lock")
        .iter()
        .map(|r| r.event.id)
        .collect();
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
