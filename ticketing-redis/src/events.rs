//! Publishing outbox events to a Redis Stream (at-least-once; consumers de-duplicate by the
//! `event_id` field).

use redis::aio::ConnectionManager;
use ticketing_core::{Error, EventSink, OutboxRecord, Result, async_trait};

use crate::backend;

/// Appends outbox records to one stream, as entries with fields `event_id`, `seq`, `payload`.
#[derive(Clone)]
pub struct RedisEventPublisher {
    conn: ConnectionManager,
    stream: String,
}

impl std::fmt::Debug for RedisEventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEventPublisher")
            .field("stream", &self.stream)
            .finish()
    }
}

impl RedisEventPublisher {
    /// A publisher to the stream at key `stream`.
    pub fn new(conn: ConnectionManager, stream: impl Into<String>) -> Self {
        Self {
            conn,
            stream: stream.into(),
        }
    }

    /// Append the records in order, in one atomic pipeline; returns the stream entry ids.
    pub async fn publish(&self, records: &[OutboxRecord]) -> Result<Vec<String>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for r in records {
            let payload = serde_json::to_string(&r.event)
                .map_err(|e| Error::backend("encoding an event", false, e))?;
            pipe.cmd("XADD")
                .arg(&self.stream)
                .arg("*")
                .arg("event_id")
                .arg(r.event.id.to_string())
                .arg("seq")
                .arg(r.seq)
                .arg("payload")
                .arg(payload);
        }
        pipe.query_async(&mut self.conn.clone())
            .await
            .map_err(backend)
    }
}

#[async_trait]
impl EventSink for RedisEventPublisher {
    async fn publish(&self, records: &[OutboxRecord]) -> Result<()> {
        RedisEventPublisher::publish(self, records)
            .await
            .map(|_| ())
    }
}
