//! The in-memory [`LockManager`]: leases with expiry and strictly increasing fencing tokens.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use ticketing_core::{Acquired, Clock, FencingToken, Lease, LockManager, Result, async_trait};
use uuid::Uuid;

use crate::sync::{Arc, Mutex, lock};

#[derive(Debug)]
struct State {
    leases: HashMap<String, (Uuid, DateTime<Utc>)>,
    /// "Taken" hints: key -> until (judged against the caller's `now`).
    taken: HashMap<String, DateTime<Utc>>,
    last_token: u64,
}

impl State {
    fn acquire(&mut self, keys: &[String], ttl: Duration, now: DateTime<Utc>) -> Option<Lease> {
        let busy = keys
            .iter()
            .any(|k| matches!(self.leases.get(k), Some((_, until)) if *until > now));
        if busy {
            return None;
        }
        let owner = Uuid::new_v4();
        let expires_at = now + ttl;
        for key in keys {
            self.leases.insert(key.clone(), (owner, expires_at));
        }
        self.last_token += 1;
        let mut keys = keys.to_vec();
        keys.sort();
        Some(Lease {
            keys,
            owner,
            token: FencingToken(self.last_token),
            expires_at,
        })
    }

    /// Release what is still this lease's; whether all of it was, unexpired.
    fn release(&mut self, lease: &Lease, now: DateTime<Utc>) -> bool {
        let mut all = true;
        for key in &lease.keys {
            match self.leases.get(key) {
                Some((owner, until)) if *owner == lease.owner => {
                    all &= *until > now;
                    self.leases.remove(key);
                }
                _ => all = false,
            }
        }
        all
    }
}

/// Leases keys within one process; the lease clock is injected so tests can let leases lapse.
#[derive(Debug, Clone)]
pub struct MemoryLockManager {
    clock: std::sync::Arc<dyn Clock>,
    state: Arc<Mutex<State>>,
}

impl MemoryLockManager {
    /// A lock manager judging lease expiry by `clock`.
    pub fn new(clock: std::sync::Arc<dyn Clock>) -> Self {
        Self {
            clock,
            state: Arc::new(Mutex::new(State {
                leases: HashMap::new(),
                taken: HashMap::new(),
                last_token: 0,
            })),
        }
    }
}

#[async_trait]
impl LockManager for MemoryLockManager {
    async fn try_acquire(&self, keys: &[String], ttl: Duration) -> Result<Option<Lease>> {
        let now = self.clock.now();
        Ok(lock(&self.state).acquire(keys, ttl, now))
    }

    async fn release(&self, lease: &Lease) -> Result<bool> {
        let now = self.clock.now();
        Ok(lock(&self.state).release(lease, now))
    }

    async fn try_acquire_untaken(
        &self,
        keys: &[String],
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Acquired> {
        let lease_now = self.clock.now();
        let mut state = lock(&self.state);
        let mut taken: Vec<String> = keys
            .iter()
            .filter(|k| matches!(state.taken.get(*k), Some(until) if *until > now))
            .cloned()
            .collect();
        if !taken.is_empty() {
            taken.sort();
            return Ok(Acquired::Taken(taken));
        }
        Ok(match state.acquire(keys, ttl, lease_now) {
            Some(lease) => Acquired::Lease(lease),
            None => Acquired::Busy,
        })
    }

    async fn release_taken(&self, lease: &Lease, until: DateTime<Utc>) -> Result<bool> {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        let whole = lease
            .keys
            .iter()
            .all(|k| matches!(state.leases.get(k), Some((owner, end)) if *owner == lease.owner && *end > now));
        if whole {
            for key in &lease.keys {
                state.taken.insert(key.clone(), until);
            }
        }
        Ok(state.release(lease, now))
    }

    async fn clear_taken(&self, keys: &[String]) -> Result<()> {
        let mut state = lock(&self.state);
        for key in keys {
            state.taken.remove(key);
        }
        Ok(())
    }
}
