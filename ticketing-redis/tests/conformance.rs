//! The conformance suite with the distributed-lock strategy (the memory store behind the Redis
//! lock, every seat write fenced) and the Redis waiting queue, against the local Redis.

mod common;

use std::sync::Arc;

use chrono::Duration;
use ticketing_core::FencedStore;
use ticketing_core::testkit::{TestBackend, queue_config};
use ticketing_memory::MemoryStore;
use ticketing_redis::{RedisLockManager, RedisQueue};

async fn backend() -> Option<TestBackend> {
    let (conn, prefix) = common::redis().await?;
    let locks = RedisLockManager::new(conn.clone(), prefix.clone());
    let store = FencedStore::new(
        Arc::new(MemoryStore::pessimistic()),
        Arc::new(locks),
        Duration::seconds(5),
    );
    Some(TestBackend::new(
        store,
        RedisQueue::new(conn, prefix, queue_config()),
    ))
}

ticketing_core::conformance_suite!(backend; #[cfg_attr(ticketing_no_redis, ignore = "needs REDIS_URL (a Redis server)")]);
