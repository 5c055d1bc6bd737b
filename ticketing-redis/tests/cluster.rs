//! The lock manager, the waiting queue, the distributed-lock strategy (the memory store behind
//! the Redis lock, every seat write fenced) and the event publisher on a three-node Redis
//! Cluster that the test process starts on loopback ports (`redis-server --cluster-enabled yes`,
//! `redis-cli --cluster create`). Run with `TICKETING_FAULT_TESTS=1`, as `.ci/run` does: like
//! the restart tests, they start servers of their own.

#[path = "common/cluster.rs"]
mod cluster;

use std::sync::Arc;

use chrono::{Duration, Utc};
use redis::AsyncCommands;
use ticketing_core::testkit::{TestBackend, queue_config};
use ticketing_core::{
    DomainEvent, EventKind, FencedStore, LockManager, OptionId, OutboxRecord, Points, SeatId,
    UserId, seat_key,
};
use ticketing_memory::MemoryStore;
use ticketing_redis::{RedisEventPublisher, RedisLockManager, RedisQueue};

async fn manager() -> Option<Arc<dyn LockManager>> {
    let (conn, prefix) = cluster::cluster().await;
    Some(Arc::new(RedisLockManager::new(conn, prefix)))
}

async fn backend() -> Option<TestBackend> {
    let (conn, prefix) = cluster::cluster().await;
    let store = FencedStore::new(
        Arc::new(MemoryStore::pessimistic()),
        Arc::new(RedisLockManager::new(conn.clone(), prefix.clone())),
        Duration::seconds(5),
    );
    Some(TestBackend::new(
        store,
        RedisQueue::new(conn, prefix, queue_config()),
    ))
}

ticketing_core::lock_manager_suite!(manager; #[cfg_attr(ticketing_no_fault_tests, ignore = "starts a Redis Cluster of its own: set TICKETING_FAULT_TESTS=1")]);
ticketing_core::conformance_suite!(backend; #[cfg_attr(ticketing_no_fault_tests, ignore = "starts a Redis Cluster of its own: set TICKETING_FAULT_TESTS=1")]);

/// The suites above prove nothing about a cluster unless their keys really are spread over
/// its nodes: leases of many options land on every node, and each lease (several seats of one
/// option) is still one all-or-none script in one slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    ticketing_no_fault_tests,
    ignore = "starts a Redis Cluster of its own: set TICKETING_FAULT_TESTS=1"
)]
async fn seat_locks_spread_over_every_node_and_events_reach_a_stream() {
    let (mut conn, prefix) = cluster::cluster().await;
    let locks = RedisLockManager::new(conn.clone(), prefix.clone());
    for option in 1..=60 {
        let keys: Vec<String> = (1..=3)
            .map(|seat| seat_key(OptionId(option), SeatId(seat)))
            .collect();
        let lease = locks
            .try_acquire(&keys, Duration::seconds(30))
            .await
            .expect("lease")
            .expect("free keys");
        assert!(
            locks
                .try_acquire(&keys[1..2], Duration::seconds(30))
                .await
                .expect("second lease")
                .is_none(),
            "a leased key is not leased twice"
        );
        assert_eq!(lease.keys.len(), 3);
    }
    let mine: Vec<usize> = cluster::ports()
        .iter()
        .map(|&port| {
            let out = std::process::Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .args(["--scan", "--pattern", &format!("{prefix}*")])
                .output()
                .expect("redis-cli --scan");
            String::from_utf8_lossy(&out.stdout).lines().count()
        })
        .collect();
    assert!(
        mine.iter().all(|&n| n > 0),
        "every node holds some of the test's lock keys: {mine:?}"
    );

    let stream = format!("{prefix}events");
    let publisher = RedisEventPublisher::new(conn.clone(), stream.clone());
    let records: Vec<OutboxRecord> = (1..=3)
        .map(|seq| OutboxRecord {
            seq,
            event: DomainEvent::new(
                Utc::now(),
                EventKind::PointsCharged {
                    user_id: UserId(seq as i64),
                    amount: Points(10),
                },
            ),
        })
        .collect();
    assert_eq!(publisher.publish(&records).await.expect("publish").len(), 3);
    let entries: redis::streams::StreamRangeReply = conn.xrange_all(&stream).await.expect("xrange");
    assert_eq!(entries.ids.len(), 3);
    let _: () = conn.del(&stream).await.expect("cleanup");
}
