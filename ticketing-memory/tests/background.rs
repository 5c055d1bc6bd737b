//! The outbox relay: nothing lost, events delivered at least once and de-duplicable by id,
//! relays taking turns under a lease. (Concurrent expiry sweepers are a conformance case.)
#![cfg(not(loom))]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::Duration;
use ticketing_core::testkit::{Harness, TestBackend};
use ticketing_core::{Error, EventId, EventSink, OutboxRecord, OutboxRelay, Result, async_trait};
use ticketing_memory::{MemoryLockManager, MemoryQueue, MemoryStore};

/// Collects what it is given; fails (after delivering) the first `fail_after_delivery` calls.
#[derive(Debug, Default)]
struct Collect {
    seen: Mutex<Vec<OutboxRecord>>,
    fail_after_delivery: Mutex<u32>,
}

#[async_trait]
impl EventSink for Collect {
    async fn publish(&self, records: &[OutboxRecord]) -> Result<()> {
        self.seen.lock().expect("lock").extend_from_slice(records);
        let mut fail = self.fail_after_delivery.lock().expect("lock");
        if *fail > 0 {
            *fail -= 1;
            return Err(Error::Unavailable {
                message: "acknowledgement lost".into(),
                retryable: true,
                source: None,
            });
        }
        Ok(())
    }
}

async fn harness() -> Harness {
    Harness::new(TestBackend::new(
        MemoryStore::pessimistic(),
        MemoryQueue::new(Default::default()),
    ))
    .await
}

async fn some_activity(h: &Harness, holds: i64) {
    for i in 0..holds {
        h.charge(h.user(i), ticketing_core::Points(5_000)).await;
        h.hold(h.user(i), &[h.seats[i as usize]])
            .await
            .expect("hold");
    }
}

#[tokio::test]
async fn the_relay_publishes_in_order_once_and_acknowledges() {
    let h = harness().await;
    some_activity(&h, 5).await;
    let sink = Arc::new(Collect::default());
    let relay = OutboxRelay::new(h.store.clone(), sink.clone(), 3);
    let mut total = 0;
    loop {
        let n = relay.run_once().await.expect("relay");
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, 10, "5 charges and 5 holds");
    let seen = sink.seen.lock().expect("lock").clone();
    assert!(seen.windows(2).all(|w| w[0].seq < w[1].seq), "in order");
    assert!(
        h.store.outbox_read(0, 100).await.expect("read").is_empty(),
        "all acknowledged"
    );
    assert_eq!(relay.run_once().await.expect("relay"), 0);
}

#[tokio::test]
async fn a_lost_acknowledgement_redelivers_and_ids_deduplicate() {
    let h = harness().await;
    some_activity(&h, 3).await;
    let sink = Arc::new(Collect {
        fail_after_delivery: Mutex::new(1),
        ..Collect::default()
    });
    let relay = OutboxRelay::new(h.store.clone(), sink.clone(), 100);
    assert!(
        relay.run_once().await.is_err(),
        "delivered but not acknowledged"
    );
    assert_eq!(relay.run_once().await.expect("retry"), 6);
    let seen = sink.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 12, "every event delivered twice: at-least-once");
    let unique: HashSet<EventId> = seen.iter().map(|r| r.event.id).collect();
    assert_eq!(
        unique.len(),
        6,
        "a consumer keeping ids sees each event once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_relays_at_once_lose_nothing() {
    let h = harness().await;
    some_activity(&h, 20).await;
    let seen = four_relays(&h, None).await;
    let unique: HashSet<EventId> = seen.iter().map(|r| r.event.id).collect();
    assert_eq!(unique.len(), 40, "every event delivered");
    assert!(h.store.outbox_read(0, 100).await.expect("read").is_empty());
}

/// Four relays, each stepping until the outbox is empty; what the sink saw, in order.
async fn four_relays(h: &Harness, lock: Option<Arc<MemoryLockManager>>) -> Vec<OutboxRecord> {
    let sink = Arc::new(Collect::default());
    let relays: Vec<_> = (0..4)
        .map(|_| {
            let mut relay = OutboxRelay::new(h.store.clone(), sink.clone(), 4);
            if let Some(locks) = lock.clone() {
                relay = relay.with_lock(locks, "outbox-relay", Duration::seconds(5));
            }
            let store = h.store.clone();
            tokio::spawn(async move {
                loop {
                    let n = relay.run_once().await.expect("relay");
                    if n == 0 && store.outbox_read(0, 1).await.expect("read").is_empty() {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for r in relays {
        r.await.expect("relay task");
    }
    sink.seen.lock().expect("lock").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relays_taking_turns_deliver_each_event_once_in_order() {
    let h = harness().await;
    some_activity(&h, 20).await;
    let locks = Arc::new(MemoryLockManager::new(Arc::new(h.clock.clone())));
    let seen = four_relays(&h, Some(locks)).await;
    let seqs: Vec<u64> = seen.iter().map(|r| r.seq).collect();
    assert_eq!(seqs.len(), 40, "each event delivered once: {seqs:?}");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "delivered in order: {seqs:?}"
    );
}
