//! Why fencing exists: a holder whose lease lapses while it is paused must not write when it
//! wakes, while the holder that took the lease over succeeds.

mod common;

use std::sync::Arc;

use chrono::Duration;
use ticketing_core::testkit::{Harness, TestBackend};
use ticketing_core::{
    CancelCommand, ErrorCode, FencedStore, HoldCommand, LockManager, ReservationId, SeatStatus,
    TicketStore, seat_key,
};
use ticketing_memory::{MemoryQueue, MemoryStore};
use ticketing_redis::RedisLockManager;

#[tokio::test]
#[cfg_attr(ticketing_no_redis, ignore = "needs REDIS_URL (a Redis server)")]
async fn a_paused_holder_whose_lease_lapsed_cannot_write() {
    let Some((conn, prefix)) = common::redis().await else {
        return;
    };
    let locks = RedisLockManager::new(conn.clone(), prefix);
    let h = Harness::new(TestBackend::new(
        MemoryStore::optimistic(),
        MemoryQueue::new(Default::default()),
    ))
    .await;
    let seat = h.seats[0];
    let keys = vec![seat_key(h.option, seat)];
    let hold = |user, fence| HoldCommand {
        reservation_id: ReservationId::new(),
        user_id: user,
        option_id: h.option,
        seat_ids: vec![seat],
        now: h.now(),
        expires_at: h.now() + Duration::minutes(5),
        max_seats_per_user: None,
        idempotency: None,
        fence: Some(fence),
    };

    // A takes a short lease, then pauses (a GC pause, a slow network) past its end.
    let a = locks
        .try_acquire(&keys, Duration::milliseconds(100))
        .await
        .expect("redis")
        .expect("free");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    // B gets the lease with a newer token, holds the seat, then lets it go again.
    let b = locks
        .try_acquire(&keys, Duration::seconds(5))
        .await
        .expect("redis")
        .expect("A's lease lapsed");
    assert!(
        b.token > a.token,
        "tokens increase: {:?} then {:?}",
        a.token,
        b.token
    );
    let held = h
        .store
        .hold(hold(h.user(2), b.token))
        .await
        .expect("B holds");
    h.store
        .cancel(CancelCommand {
            reservation_id: held.id,
            user_id: h.user(2),
            now: h.now(),
            idempotency: None,
            fence: Some(b.token),
        })
        .await
        .expect("B cancels");

    // A wakes and writes with its old token: refused, although the seat is free.
    let stale = h.store.hold(hold(h.user(1), a.token)).await;
    assert_eq!(
        stale.map(|r| r.id).map_err(|e| e.code()),
        Err(ErrorCode::LockLost)
    );
    assert!(
        !locks.release(&a).await.expect("redis"),
        "A's lease is gone"
    );
    assert_eq!(h.statuses(&[seat]).await, vec![SeatStatus::Available]);

    // The current holder still writes.
    h.store
        .hold(hold(h.user(3), b.token))
        .await
        .expect("B's token is current");
    assert!(locks.release(&b).await.expect("redis"));
    assert_eq!(h.statuses(&[seat]).await, vec![SeatStatus::Held]);
}

#[tokio::test]
#[cfg_attr(ticketing_no_redis, ignore = "needs REDIS_URL (a Redis server)")]
async fn leases_are_all_or_none_and_released_only_by_their_owner() {
    let Some((conn, prefix)) = common::redis().await else {
        return;
    };
    let locks = RedisLockManager::new(conn, prefix);
    let k = |s: &str| s.to_owned();
    let first = locks
        .try_acquire(
            &[k("{opt:1}:seat:1"), k("{opt:1}:seat:2")],
            Duration::seconds(5),
        )
        .await
        .expect("redis")
        .expect("free");
    let overlapping = locks
        .try_acquire(
            &[k("{opt:1}:seat:2"), k("{opt:1}:seat:3")],
            Duration::seconds(5),
        )
        .await
        .expect("redis");
    assert!(overlapping.is_none(), "seat 2 is leased");
    let third = locks
        .try_acquire(&[k("{opt:1}:seat:3")], Duration::seconds(5))
        .await
        .expect("redis")
        .expect("seat 3 was left untouched by the refused lease");
    let mut forged = first.clone();
    forged.owner = uuid::Uuid::new_v4();
    assert!(
        !locks.release(&forged).await.expect("redis"),
        "not the owner"
    );
    assert!(locks.release(&first).await.expect("redis"));
    let again = locks
        .try_acquire(&[k("{opt:1}:seat:2")], Duration::seconds(5))
        .await
        .expect("redis")
        .expect("released");
    assert!(again.token > first.token);
    assert!(locks.release(&third).await.expect("redis"));
}

#[tokio::test]
#[cfg_attr(ticketing_no_redis, ignore = "needs REDIS_URL (a Redis server)")]
async fn taken_hints_keep_losers_off_the_store() {
    let Some((conn, prefix)) = common::redis().await else {
        return;
    };
    ticketing_core::testkit::hints::taken_hints_keep_losers_off_the_store(
        std::sync::Arc::new(MemoryStore::pessimistic()),
        std::sync::Arc::new(RedisLockManager::new(conn, prefix)),
        MemoryQueue::new(Default::default()),
    )
    .await;
}

/// A store behind this lock manager can change nothing while Redis is away, so the lock
/// manager's health (and `FencedStore::health`, which asks it) is Redis answering.
#[tokio::test]
#[cfg_attr(ticketing_no_redis, ignore = "needs REDIS_URL (a Redis server)")]
async fn the_lock_manager_is_healthy_while_redis_answers() {
    let Some((conn, prefix)) = common::redis().await else {
        return;
    };
    let locks = Arc::new(RedisLockManager::new(conn, prefix));
    locks.health().await.expect("Redis answers");
    let fenced = FencedStore::new(
        Arc::new(MemoryStore::optimistic()),
        locks,
        Duration::seconds(5),
    );
    fenced
        .health()
        .await
        .expect("store and lock manager answer");
}
