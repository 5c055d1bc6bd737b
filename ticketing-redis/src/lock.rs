//! The Redis [`LockManager`].

use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};
use redis::Script;
use ticketing_core::{Acquired, Error, FencingToken, Lease, LockManager, Result, async_trait};
use uuid::Uuid;

use crate::backend;
use crate::connection::RedisConnection;

static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/lock_acquire.lua")));
static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/lock_release.lua")));
static RELEASE_TAKEN: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/lock_release_taken.lua")));

/// Leases keys in Redis; fencing tokens come from a counter kept beside each key.
#[derive(Clone)]
pub struct RedisLockManager {
    conn: RedisConnection,
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
    ///
    /// On a Redis Cluster the keys of one lease must share a hash slot: give them one `{tag}`
    /// (every [`seat_key`](ticketing_core::seat_key) of one option has `{opt:<id>}`); a lease
    /// over keys of several slots fails with a `CROSSSLOT` error (`unavailable`, not
    /// retryable). A `{` in `prefix` would put every key in one slot.
    pub fn new(conn: impl Into<RedisConnection>, prefix: impl Into<String>) -> Self {
        Self {
            conn: conn.into(),
            prefix: prefix.into(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn hint_key(&self, key: &str) -> String {
        format!("{}{key}:taken", self.prefix)
    }

    /// Lease `keys`; with `now`, also refuse while a hint on one of them ends after `now`.
    async fn acquire(
        &self,
        keys: &[String],
        ttl: Duration,
        now: Option<DateTime<Utc>>,
    ) -> Result<Acquired> {
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
        for key in &keys {
            invocation.key(self.hint_key(key));
        }
        invocation
            .arg(owner.to_string())
            .arg(ttl_ms)
            .arg(keys.len())
            .arg(now.map_or(-1, |t| t.timestamp_micros()));
        let started = Utc::now();
        let answer: Vec<i64> = invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(match answer.split_first() {
            Some((&token, _)) if token > 0 => Acquired::Lease(Lease {
                keys,
                owner,
                token: FencingToken(token as u64),
                expires_at: started + ttl,
            }),
            Some((-1, positions)) => Acquired::Taken(
                positions
                    .iter()
                    .filter_map(|p| usize::try_from(*p - 1).ok())
                    .filter_map(|i| keys.get(i).cloned())
                    .collect(),
            ),
            _ => Acquired::Busy,
        })
    }
}

#[async_trait]
impl LockManager for RedisLockManager {
    async fn health(&self) -> Result<()> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn try_acquire(&self, keys: &[String], ttl: Duration) -> Result<Option<Lease>> {
        Ok(match self.acquire(keys, ttl, None).await? {
            Acquired::Lease(lease) => Some(lease),
            _ => None,
        })
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

    async fn try_acquire_untaken(
        &self,
        keys: &[String],
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Acquired> {
        self.acquire(keys, ttl, Some(now)).await
    }

    async fn release_taken(&self, lease: &Lease, until: DateTime<Utc>) -> Result<bool> {
        let mut invocation = RELEASE_TAKEN.prepare_invoke();
        for key in &lease.keys {
            invocation.key(self.key(key));
        }
        for key in &lease.keys {
            invocation.key(self.hint_key(key));
        }
        // Kept in Redis a minute past its end by Redis' clock, for tidiness only: the end is
        // judged against the callers' clock.
        let keep_ms = (until - Utc::now()).num_milliseconds().max(0) + 60_000;
        invocation
            .arg(lease.owner.to_string())
            .arg(until.timestamp_micros())
            .arg(keep_ms);
        let owned: usize = invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(owned == lease.keys.len())
    }

    async fn clear_taken(&self, keys: &[String]) -> Result<()> {
        let hints: Vec<String> = keys.iter().map(|k| self.hint_key(k)).collect();
        if hints.is_empty() {
            return Ok(());
        }
        let _: () = redis::cmd("DEL")
            .arg(&hints)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(())
    }
}
