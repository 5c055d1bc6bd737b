//! The database's clock, for every instance of a deployment: expiry and caps follow one clock.
//!
//! Each instance decides with the instant its service's clock gives (holds end at `now + ttl`;
//! a hold counts toward a cap until its end). With each server on its own clock, a skew of `s`
//! between two instances shortens or lengthens holds by `s` and lets a cap be exceeded for `s`.
//! [`DatabaseClock`] reads the PostgreSQL server's clock and keeps the offset of the local clock
//! to it, refreshed on a timer, so every instance on one database follows the database's clock:
//! the skew left between instances is bounded by each one's measurement error (half the round
//! trip of the last sync, reported by [`DatabaseClock::sync`]) plus the local clocks' drift
//! between syncs (parts per million: well under a millisecond per minute).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, SubsecRound, Utc};
use sqlx::PgPool;
use ticketing_core::{Clock, Error, SystemClock};

/// The PostgreSQL server's clock, read through the local one (see the module docs).
#[derive(Debug, Clone)]
pub struct DatabaseClock {
    pool: PgPool,
    local: Arc<dyn Clock>,
    /// Database time minus local time, in microseconds.
    offset_micros: Arc<AtomicI64>,
}

impl DatabaseClock {
    /// A clock following the database of `pool` through the system clock, synced once now.
    pub async fn new(pool: PgPool) -> Result<Self, Error> {
        Self::with_local(pool, Arc::new(SystemClock)).await
    }

    /// A clock following the database of `pool` through `local`, synced once now.
    pub async fn with_local(pool: PgPool, local: Arc<dyn Clock>) -> Result<Self, Error> {
        let clock = Self {
            pool,
            local,
            offset_micros: Arc::new(AtomicI64::new(0)),
        };
        clock.sync().await?;
        Ok(clock)
    }

    /// Measure the offset again; returns the measurement's uncertainty (half the round trip).
    /// Call it every few seconds (e.g. from the task of [`DatabaseClock::spawn_sync`]).
    ///
    /// The connection is taken from the pool first, so waiting for one (a busy pool in a rush)
    /// is not mistaken for network delay; of [`SAMPLES`](Self::SAMPLES) reads the one with the
    /// shortest round trip is kept.
    pub async fn sync(&self) -> Result<Duration, Error> {
        let unavailable = |e| Error::backend("reading the database clock", true, e);
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        let mut best: Option<(Duration, Duration)> = None;
        for _ in 0..Self::SAMPLES {
            let sent = self.local.now();
            let db: DateTime<Utc> = sqlx::query_scalar(include_str!("../sql/clock_now.sql"))
                .fetch_one(&mut *conn)
                .await
                .map_err(unavailable)?;
            let answered = self.local.now();
            let half_trip = (answered - sent) / 2;
            let offset = db - (sent + half_trip);
            if best.is_none_or(|(h, _)| half_trip < h) {
                best = Some((half_trip, offset));
            }
        }
        let Some((half_trip, offset)) = best else {
            return Err(Error::invalid("no clock sample taken"));
        };
        if let Some(micros) = offset.num_microseconds() {
            self.offset_micros.store(micros, Ordering::Relaxed);
        }
        Ok(half_trip)
    }

    /// Reads of the database clock per sync; the one with the shortest round trip is kept.
    pub const SAMPLES: usize = 3;

    /// The database time minus the local time, as last measured.
    pub fn offset(&self) -> Duration {
        Duration::microseconds(self.offset_micros.load(Ordering::Relaxed))
    }

    /// Re-sync every `every` on the current tokio runtime, until the task is aborted. A failed
    /// sync keeps the last offset (the clocks drift by microseconds a minute).
    pub fn spawn_sync(&self, every: chrono::Duration) -> tokio::task::JoinHandle<()> {
        let clock = self.clone();
        // Never a busy loop: at least a millisecond between syncs.
        let every = every
            .to_std()
            .unwrap_or_default()
            .max(std::time::Duration::from_millis(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let _ = clock.sync().await;
            }
        })
    }
}

impl Clock for DatabaseClock {
    fn now(&self) -> DateTime<Utc> {
        (self.local.now() + self.offset()).trunc_subsecs(6)
    }
}
