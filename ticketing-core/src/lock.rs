//! The lock manager trait: leases on several keys at once, with fencing tokens.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::error::Result;
use crate::ids::FencingToken;

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

/// What [`LockManager::try_acquire_untaken`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Acquired {
    /// Every key, leased.
    Lease(Lease),
    /// Some key is leased by someone else.
    Busy,
    /// These keys (sorted) carry a "taken" hint that ends after the caller's `now`.
    Taken(Vec<String>),
}

/// Leases several keys at once, all or none.
///
/// A manager may require the keys of one lease to live together: on a Redis Cluster they must
/// share a hash slot (a `{tag}`, as [`seat_key`](crate::seat_key) gives every seat of one
/// option), and a lease over keys of several slots is refused with an error.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait LockManager: Send + Sync + Debug + 'static {
    /// Lease every key for `ttl`, or none: `Ok(None)` if any key is leased by someone else.
    async fn try_acquire(&self, keys: &[String], ttl: Duration) -> Result<Option<Lease>>;

    /// Give a lease back early; `false` if it had already lapsed or been taken over.
    async fn release(&self, lease: &Lease) -> Result<bool>;

    /// Like [`try_acquire`](Self::try_acquire), but refused with the hinted keys while any key
    /// carries a "taken" hint whose end is after `now` (see
    /// [`release_taken`](Self::release_taken)). The default ignores hints.
    async fn try_acquire_untaken(
        &self,
        keys: &[String],
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Acquired> {
        let _ = now;
        Ok(match self.try_acquire(keys, ttl).await? {
            Some(lease) => Acquired::Lease(lease),
            None => Acquired::Busy,
        })
    }

    /// Release the lease and, only if it was still whole (not lapsed, not taken over), leave
    /// on its keys a hint that they are taken until `until`: until then
    /// [`try_acquire_untaken`](Self::try_acquire_untaken) turns callers away without a lease, so
    /// the losers of a hot seat never reach the store. A hint can only turn a caller away early,
    /// never let a write through: the store still decides every write. The default only
    /// releases.
    async fn release_taken(&self, lease: &Lease, until: DateTime<Utc>) -> Result<bool> {
        let _ = until;
        self.release(lease).await
    }

    /// Drop the "taken" hints of these keys (their seats were freed before the hints' end).
    async fn clear_taken(&self, keys: &[String]) -> Result<()> {
        let _ = keys;
        Ok(())
    }

    /// Whether the lock backend answers (`unavailable` if not): a store behind this lock
    /// manager cannot change anything while it is down. The default (an in-process manager)
    /// always answers.
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

/// `LockManager` stays usable as a trait object (services hold `Arc<dyn LockManager>`): a change
/// that breaks that fails to compile here, beside the trait, not in a backend.
const _: fn(&dyn LockManager) = |_| {};
