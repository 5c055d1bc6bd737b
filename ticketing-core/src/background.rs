//! The background work a server runs beside the requests, as runtime-agnostic steps: call
//! `run_once` on a timer. Correctness never depends on either running.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;

use crate::clock::Clock;
use crate::domain::OutboxRecord;
use crate::error::Result;
use crate::ids::ReservationId;
use crate::lock::LockManager;
use crate::store::TicketStore;

/// Moves holds whose time ran out to `expired` in storage, frees their seats and emits
/// `HoldExpired` events. Expiry is already decided by the clock at every read and write; this
/// only tidies storage. Several sweepers may run at once: each hold is expired once.
#[derive(Debug, Clone)]
pub struct ExpirySweeper {
    store: Arc<dyn TicketStore>,
    clock: Arc<dyn Clock>,
    batch: usize,
}

impl ExpirySweeper {
    /// A sweeper expiring at most `batch` holds per step.
    pub fn new(store: Arc<dyn TicketStore>, clock: Arc<dyn Clock>, batch: usize) -> Self {
        Self {
            store,
            clock,
            batch: batch.max(1),
        }
    }

    /// One step: the holds it expired.
    pub async fn run_once(&self) -> Result<Vec<ReservationId>> {
        self.store.expire_due(self.clock.now(), self.batch).await
    }
}

/// Forgets idempotency records and acknowledged outbox events older than a retention window
/// (24 hours by default), so what a store keeps follows recent traffic, not all traffic ever.
/// A retry under a key older than the window is a new request: keep the window longer than any
/// client retries.
#[derive(Debug, Clone)]
pub struct RetentionPruner {
    store: Arc<dyn TicketStore>,
    clock: Arc<dyn Clock>,
    retention: chrono::Duration,
    batch: usize,
}

impl RetentionPruner {
    /// The default window: 24 hours.
    pub const DEFAULT_RETENTION: chrono::Duration = chrono::Duration::hours(24);

    /// A pruner forgetting what is older than `retention`, at most `batch` of each kind per
    /// store call.
    pub fn new(
        store: Arc<dyn TicketStore>,
        clock: Arc<dyn Clock>,
        retention: chrono::Duration,
        batch: usize,
    ) -> Self {
        Self {
            store,
            clock,
            retention,
            batch: batch.max(1),
        }
    }

    /// One step: everything older than the window, in calls of at most `batch`; returns how
    /// many were forgotten.
    pub async fn run_once(&self) -> Result<u64> {
        let before = self.clock.now() - self.retention;
        let mut total = 0;
        loop {
            let n = self.store.prune(before, self.batch).await?;
            total += n;
            if n < self.batch as u64 {
                return Ok(total);
            }
        }
    }
}

/// Where an outbox relay delivers events.
#[async_trait]
pub trait EventSink: Send + Sync + Debug + 'static {
    /// Deliver the records in order; an error means some may not have been delivered (they
    /// will be delivered again: at-least-once).
    async fn publish(&self, records: &[OutboxRecord]) -> Result<()>;
}

/// Services hold `Arc<dyn EventSink>`: this fails to compile if the trait stops being
/// dyn-compatible.
const _: Option<&dyn EventSink> = None;

/// Reads unpublished outbox rows in order, publishes them, then marks them published.
/// At-least-once: a crash (or another relay) between publishing and marking delivers the same
/// events again; consumers de-duplicate by event id.
///
/// Several relays (one per server instance, say) may run at once. Given a lock manager
/// ([`OutboxRelay::with_lock`]), each step first leases one relay key, so one relay publishes at
/// a time, in order, and an event is delivered twice only when a relay fails (or stalls past its
/// lease) between publishing and marking. Without one, concurrent relays may each deliver the
/// same batch.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    store: Arc<dyn TicketStore>,
    sink: Arc<dyn EventSink>,
    batch: usize,
    lock: Option<RelayLock>,
}

#[derive(Debug, Clone)]
struct RelayLock {
    locks: Arc<dyn LockManager>,
    key: String,
    lease: Duration,
}

impl OutboxRelay {
    /// A relay moving at most `batch` events per step.
    pub fn new(store: Arc<dyn TicketStore>, sink: Arc<dyn EventSink>, batch: usize) -> Self {
        Self {
            store,
            sink,
            batch: batch.max(1),
            lock: None,
        }
    }

    /// Take turns with other relays of the same outbox: each step leases `key` for `lease`
    /// (longer than one publish) and does nothing while another relay holds it.
    pub fn with_lock(
        mut self,
        locks: Arc<dyn LockManager>,
        key: impl Into<String>,
        lease: Duration,
    ) -> Self {
        self.lock = Some(RelayLock {
            locks,
            key: key.into(),
            lease,
        });
        self
    }

    /// One step: how many events this relay published (0 also when another relay had the
    /// turn).
    pub async fn run_once(&self) -> Result<usize> {
        let Some(lock) = &self.lock else {
            return self.publish_batch().await;
        };
        let Some(lease) = lock
            .locks
            .try_acquire(std::slice::from_ref(&lock.key), lock.lease)
            .await?
        else {
            return Ok(0);
        };
        let published = self.publish_batch().await;
        // A lapsed lease only risks a duplicate delivery, which at-least-once allows.
        let _ = lock.locks.release(&lease).await;
        published
    }

    async fn publish_batch(&self) -> Result<usize> {
        let records = self.store.outbox_read(0, self.batch).await?;
        if records.is_empty() {
            return Ok(0);
        }
        self.sink.publish(&records).await?;
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        self.store.outbox_ack(&seqs).await?;
        Ok(records.len())
    }
}
