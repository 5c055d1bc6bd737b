//! Outbox events reach a Redis Stream in order, with their ids for de-duplication.

mod common;

use std::collections::HashMap;

use chrono::Utc;
use redis::AsyncCommands;
use ticketing_core::{DomainEvent, EventKind, OutboxRecord, Points, UserId};
use ticketing_redis::RedisEventPublisher;

#[tokio::test]
#[cfg_attr(ticketing_no_redis, ignore = "needs REDIS_URL (a Redis server)")]
async fn published_events_arrive_in_order_with_their_ids() {
    let Some((mut conn, prefix)) = common::redis().await else {
        return;
    };
    let stream = format!("{prefix}events");
    let publisher = RedisEventPublisher::new(conn.clone(), stream.clone());
    let records: Vec<OutboxRecord> = (1..=3)
        .map(|seq| OutboxRecord {
            seq,
            event: DomainEvent::new(
                Utc::now(),
                EventKind::PointsCharged {
                    user_id: UserId(seq as i64),
                    amount: Points(10),
                },
            ),
        })
        .collect();
    let ids = publisher.publish(&records).await.expect("publish");
    assert_eq!(ids.len(), 3);
    let entries: redis::streams::StreamRangeReply = conn.xrange_all(&stream).await.expect("xrange");
    assert_eq!(entries.ids.len(), 3);
    for (entry, record) in entries.ids.iter().zip(&records) {
        let fields: HashMap<String, String> = entry
            .map
            .iter()
            .map(|(k, v)| (k.clone(), redis::from_redis_value_ref(v).expect("string")))
            .collect();
        assert_eq!(fields["event_id"], record.event.id.to_string());
        assert_eq!(fields["seq"], record.seq.to_string());
        let event: DomainEvent = serde_json::from_str(&fields["payload"]).expect("json");
        assert_eq!(event, record.event);
    }
    let _: () = conn.del(&stream).await.expect("cleanup");
}

#[tokio::test]
#[cfg_attr(ticketing_no_redis, ignore = "needs REDIS_URL (a Redis server)")]
async fn the_stream_is_capped_however_many_events_pass() {
    let Some((mut conn, prefix)) = common::redis().await else {
        return;
    };
    let stream = format!("{prefix}capped");
    let publisher = RedisEventPublisher::new(conn.clone(), stream.clone()).with_max_len(10);
    for batch in 0..20u64 {
        let records: Vec<OutboxRecord> = (1..=100)
            .map(|i| OutboxRecord {
                seq: batch * 100 + i,
                event: DomainEvent::new(
                    Utc::now(),
                    EventKind::PointsCharged {
                        user_id: UserId(i as i64),
                        amount: Points(10),
                    },
                ),
            })
            .collect();
        publisher.publish(&records).await.expect("publish");
    }
    let len: u64 = conn.xlen(&stream).await.expect("xlen");
    // `MAXLEN ~` trims whole radix-tree nodes (100 entries by default): about the cap, never
    // the 2,000 published.
    assert!(
        len <= 10 + 2 * 100,
        "{len} entries kept of 2,000 with a cap of 10"
    );
    let _: () = conn.del(&stream).await.expect("cleanup");
}
