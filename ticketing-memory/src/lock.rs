//! The in-memory [`LockManager`]: leases with expiry and strictly increasing fencing tokens.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use ticketing_core::{Clock, FencingToken, Lease, LockManager, Result, async_trait};
use uuid::Uuid;

use crate::sync::{Arc, Mutex, lock};

#[derive(Debug)]
struct State {
    leases: HashMap<String, (Uuid, DateTime<Utc>)>,
    last_token: u64,
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
                last_token: 0,
            })),
        }
    }
}

#[async_trait]
impl LockManager for MemoryLockManager {
    async fn try_acquire(&self, keys: &[String], ttl: Duration) -> Result<Option<Lease>> {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        let busy = keys
            .iter()
            .any(|k| matches!(state.leases.get(k), Some((_, until)) if *until > now));
        if busy {
            return Ok(None);
        }
        let owner = Uuid::new_v4();
        let expires_at = now + ttl;
        for key in keys {
            state.leases.insert(key.clone(), (owner, expires_at));
        }
        state.last_token += 1;
        let mut keys = keys.to_vec();
        keys.sort();
        Ok(Some(Lease {
            keys,
            owner,
            token: FencingToken(state.last_token),
            expires_at,
        }))
    }

    async fn release(&self, lease: &Lease) -> Result<bool> {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        let mut all = true;
        for key in &lease.keys {
            match state.leases.get(key) {
                Some((owner, until)) if *owner == lease.owner => {
                    all &= *until > now;
                    state.leases.remove(key);
                }
                _ => all = false,
            }
        }
        Ok(all)
    }
}
