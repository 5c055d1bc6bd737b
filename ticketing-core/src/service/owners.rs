//! Facts that never change, kept so the queue gate need not ask the store for them: who owns
//! a reservation and which option it is of (for the payments that follow a hold), and which
//! concert an option belongs to.

use std::sync::Arc;

use quick_cache::sync::Cache;

use crate::ids::{ConcertId, OptionId, ReservationId, UserId};

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

/// The concert of each option seen, bounded. An option's concert is never changed (its sale
/// window is, and is never cached here: the store reads it in every hold's and payment's own
/// atomic step). Entries are only added for options that exist, which the catalog bounds.
#[derive(Clone)]
pub(crate) struct Concerts(Arc<Cache<OptionId, ConcertId>>);

/// Options kept.
const OPTIONS: usize = 4_096;

impl Concerts {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Cache::new(OPTIONS)))
    }

    pub(crate) fn get(&self, option: OptionId) -> Option<ConcertId> {
        self.0.get(&option)
    }

    pub(crate) fn remember(&self, option: OptionId, concert: ConcertId) {
        self.0.insert(option, concert);
    }
}

impl std::fmt::Debug for Concerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Concerts")
            .field("len", &self.0.len())
            .field("capacity", &OPTIONS)
            .finish()
    }
}
