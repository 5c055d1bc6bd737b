//! Who owns a reservation and which option it is of: facts that never change once a hold is
//! made, kept for the payments that follow it.

use std::sync::Arc;

use quick_cache::sync::Cache;

use crate::ids::{OptionId, ReservationId, UserId};

/// The owner and option of recent reservations, bounded (the cache evicts the entries least
/// likely to be used again).
///
/// A payment through a gating queue must know the reservation's concert before it reaches the
/// store; without this every payment read its reservation first (one round trip and one
/// transaction of its own, the most frequent statement a PostgreSQL server sent per buyer).
/// Entries are only ever added for reservations that exist, and an entry cannot go stale: a
/// reservation's owner and option are never changed. The store still checks owner and status
/// in the payment's own atomic step.
#[derive(Clone)]
pub(crate) struct Owners(Arc<Cache<ReservationId, (UserId, OptionId)>>);

/// Entries kept: ~4 MB at most.
const CAPACITY: usize = 65_536;

impl Owners {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Cache::new(CAPACITY)))
    }

    pub(crate) fn get(&self, id: ReservationId) -> Option<(UserId, OptionId)> {
        self.0.get(&id)
    }

    pub(crate) fn remember(&self, id: ReservationId, user: UserId, option: OptionId) {
        self.0.insert(id, (user, option));
    }
}

impl std::fmt::Debug for Owners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owners")
            .field("len", &self.0.len())
            .field("capacity", &CAPACITY)
            .finish()
    }
}
