//! The Redis [`LockManager`].

use std::sync::LazyLock;

use chrono::{Duration, Utc};
use redis::Script;
use redis::aio::ConnectionManager;
use ticketing_core::{Error, FencingToken, Lease, LockManager, Result, async_trait};
use uuid::Uuid;

use crate::backend;

static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/lock_acquire.lua")));
static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/lock_release.lua")));

/// Leases keys in Redis; fencing tokens come from a counter kept beside each key.
#[derive(Clone)]
pub struct RedisLockManager {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisLockManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLockManager")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisLockManager {
    /// A lock manager whose keys all start with `prefix`.
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl LockManager for RedisLockManager {
    async fn try_acquire(&self, keys: &[String], ttl: Duration) -> Result<Option<Lease>> {
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        let ttl_ms = ttl.num_milliseconds();
        if keys.is_empty() || ttl_ms <= 0 {
            return Err(Error::invalid("a lease needs keys and a positive duration"));
        }
        let owner = Uuid::new_v4();
        let mut invocation = ACQUIRE.prepare_invoke();
        for key in &keys {
            invocation.key(self.key(key));
        }
        for key in &keys {
            invocation.key(format!("{}:fence", self.key(key)));
        }
        invocation
            .arg(owner.to_string())
            .arg(ttl_ms)
            .arg(keys.len());
        let started = Utc::now();
        let token: u64 = invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok((token > 0).then(|| Lease {
            keys,
            owner,
            token: FencingToken(token),
            expires_at: started + ttl,
        }))
    }

    async fn release(&self, lease: &Lease) -> Result<bool> {
        let mut invocation = RELEASE.prepare_invoke();
        for key in &lease.keys {
            invocation.key(self.key(key));
        }
        invocation.arg(lease.owner.to_string());
        let released: usize = invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(released == lease.keys.len())
    }
}
