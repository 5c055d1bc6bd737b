//! Publishing outbox events to a Redis Stream (at-least-once; consumers de-duplicate by the
//! `event_id` field).

use ticketing_core::{Error, EventSink, OutboxRecord, Result, async_trait};

use crate::backend;
use crate::connection::RedisConnection;

/// Appends outbox records to one stream, as entries with fields `event_id`, `seq`, `payload`.
///
/// The stream is capped (`XADD ... MAXLEN ~ n`, default [`Self::DEFAULT_MAX_LEN`]): the oldest
/// entries are trimmed, so Redis memory stays bounded however many events pass. Consumers that
/// fall further behind than the cap lose the oldest events: size it for the longest pause.
#[derive(Clone)]
pub struct RedisEventPublisher {
    conn: RedisConnection,
    stream: String,
    max_len: usize,
}

impl std::fmt::Debug for RedisEventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEventPublisher")
            .field("stream", &self.stream)
            .field("max_len", &self.max_len)
            .finish()
    }
}

impl RedisEventPublisher {
    /// Entries a stream keeps by default (about; Redis trims whole nodes).
    pub const DEFAULT_MAX_LEN: usize = 1_000_000;

    /// A publisher to the stream at key `stream`, capped at [`Self::DEFAULT_MAX_LEN`] entries.
    pub fn new(conn: impl Into<RedisConnection>, stream: impl Into<String>) -> Self {
        Self {
            conn: conn.into(),
            stream: stream.into(),
            max_len: Self::DEFAULT_MAX_LEN,
        }
    }

    /// Keep about `max_len` entries (at least 1).
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len.max(1);
        self
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
                .arg("MAXLEN")
                .arg("~")
                .arg(self.max_len)
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
