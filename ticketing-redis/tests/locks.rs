//! The lock-manager suite on Redis (each case uses keys of its own under a fresh prefix).

mod common;

use std::sync::Arc;

use ticketing_core::LockManager;
use ticketing_redis::RedisLockManager;

async fn manager() -> Option<Arc<dyn LockManager>> {
    let (conn, prefix) = common::redis().await?;
    Some(Arc::new(RedisLockManager::new(conn, prefix)))
}

ticketing_core::lock_manager_suite!(manager; #[cfg_attr(ticketing_no_redis, ignore = "needs REDIS_URL (a Redis server)")]);
