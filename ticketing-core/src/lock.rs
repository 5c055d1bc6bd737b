//! The lock manager trait: leases on several keys at once, with fencing tokens.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::{FencingToken, Result};

/// A lease on a set of keys. It ends at `expires_at` whether or not it is released; after that
/// its fencing token is stale as soon as someone else acquires one of the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The keys, sorted.
    pub keys: Vec<String>,
    /// Who holds it (released only by its owner).
    pub owner: Uuid,
    /// Strictly greater than the token of every earlier lease on any of these keys.
    pub token: FencingToken,
    /// When it lapses.
    pub expires_at: DateTime<Utc>,
}

/// Leases several keys at once, all or none.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait LockManager: Send + Sync + Debug + 'static {
    /// Lease every key for `ttl`, or none: `Ok(None)` if any key is leased by someone else.
    async fn try_acquire(&self, keys: &[String], ttl: Duration) -> Result<Option<Lease>>;

    /// Give a lease back early; `false` if it had already lapsed or been taken over.
    async fn release(&self, lease: &Lease) -> Result<bool>;
}
