//! The background work a server runs beside the requests, as runtime-agnostic steps: call
//! `run_once` on a timer. Correctness never depends on either running.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{Clock, OutboxRecord, ReservationId, Result, TicketStore};

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

/// Where an outbox relay delivers events.
#[async_trait]
pub trait EventSink: Send + Sync + Debug + 'static {
    /// Deliver the records in order; an error means some may not have been delivered (they
    /// will be delivered again: at-least-once).
    async fn publish(&self, records: &[OutboxRecord]) -> Result<()>;
}

/// Reads unpublished outbox rows in order, publishes them, then marks them published.
/// At-least-once: a crash (or another relay) between publishing and marking delivers the same
/// events again; consumers de-duplicate by event id.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    store: Arc<dyn TicketStore>,
    sink: Arc<dyn EventSink>,
    batch: usize,
}

impl OutboxRelay {
    /// A relay moving at most `batch` events per step.
    pub fn new(store: Arc<dyn TicketStore>, sink: Arc<dyn EventSink>, batch: usize) -> Self {
        Self {
            store,
            sink,
            batch: batch.max(1),
        }
    }

    /// One step: how many events were published.
    pub async fn run_once(&self) -> Result<usize> {
        let records = self.store.outbox_read(0, self.batch).await?;
        let Some(last) = records.last().map(|r| r.seq) else {
            return Ok(0);
        };
        self.sink.publish(&records).await?;
        self.store.outbox_ack(last).await?;
        Ok(records.len())
    }
}
