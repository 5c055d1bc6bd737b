//! The clock every expiry is judged by, injected so tests can stop and move time.

use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, SubsecRound, Utc};

/// A source of the current instant.
pub trait Clock: Send + Sync + Debug + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// Services hold `Arc<dyn Clock>`: this fails to compile if the trait stops being
/// dyn-compatible.
const _: Option<&dyn Clock> = None;

/// The system's wall clock, to the microsecond (the precision databases keep, so an instant
/// read back from storage compares equal to the one written).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A clock that only moves when told to; clones share the same instant.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Move the clock forward (or backward, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    /// Set the clock to an instant.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Default for ManualClock {
    /// Stopped at the current instant, to the microsecond.
    fn default() -> Self {
        Self::new(Utc::now().trunc_subsecs(6))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::default();
        let start = clock.now();
        let copy = clock.clone();
        assert_eq!(clock.now(), start);
        copy.advance(Duration::seconds(90));
        assert_eq!(clock.now(), start + Duration::seconds(90));
        clock.set(start);
        assert_eq!(copy.now(), start);
    }
}
