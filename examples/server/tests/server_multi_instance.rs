//! Two server processes on one PostgreSQL and one Redis (distributed-lock strategy, Redis
//! queue), a few hundred buyers spread over both; afterwards no seat is sold twice and every
//! balance equals charges - payments + refunds.

mod process_common;

use std::collections::HashMap;

use process_common::{Shared, admitted_token, charge, get, post, service_urls};
use serde_json::json;

const BUYERS: i64 = 300;
const SEATS: i64 = 50;
const CHARGE: i64 = 200_000;

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    paid: i64,
    refunded: i64,
}

async fn buyer(http: reqwest::Client, base: String, user: i64) -> Tally {
    let mut tally = Tally::default();
    let token = admitted_token(&http, &base, user).await;
    charge(&http, &base, user, CHARGE).await;
    for attempt in 0..3 {
        let seat = (user * 7 + attempt * 11) % SEATS + 1;
        let (status, r) = post(
            &http,
            format!("{base}/reservations"),
            json!({"user_id": user, "option_id": 1, "seat_ids": [seat]}),
            &[("X-Queue-Token", &token)],
        )
        .await;
        match status {
            201 => {}
            409 => continue,
            other => panic!("hold: {other} {r}"),
        }
        let id = r["id"].as_str().expect("id").to_owned();
        let (status, p) = post(
            &http,
            format!("{base}/payments"),
            json!({"user_id": user, "reservation_id": id}),
            &[("X-Queue-Token", &token)],
        )
        .await;
        assert_eq!(status, 201, "pay: {p}");
        tally.paid += p["amount"].as_i64().expect("amount");
        if user % 5 == 0 {
            let (status, c) = post(
                &http,
                format!("{base}/reservations/{id}/cancel"),
                json!({"user_id": user}),
                &[],
            )
            .await;
            assert_eq!(status, 200, "cancel: {c}");
            tally.refunded += c["refunded_amount"].as_i64().expect("refund");
        }
        break;
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    any(ticketing_no_database, ticketing_no_redis),
    ignore = "needs DATABASE_URL and REDIS_URL"
)]
async fn two_server_processes_never_sell_a_seat_twice() {
    let Some((db, redis)) = service_urls() else {
        return;
    };
    let shared = Shared::new(&db, &redis).await;
    let binary = process_common::server_binary();
    let seats = SEATS.to_string();
    let vars = [
        ("TICKETING_STRATEGY", "distributed-lock"),
        ("TICKETING_DEMO_SEATS", seats.as_str()),
    ];
    let instances = [
        process_common::spawn(&binary, &shared, &shared.db_url, &vars).await,
        process_common::spawn(&binary, &shared, &shared.db_url, &vars).await,
    ];
    let bases: Vec<String> = instances.iter().map(|i| i.base.clone()).collect();
    let http = reqwest::Client::new();
    let tasks: Vec<_> = (1..=BUYERS)
        .map(|u| {
            let (http, base) = (http.clone(), bases[(u % 2) as usize].clone());
            tokio::spawn(async move { (u, buyer(http, base, u).await) })
        })
        .collect();
    let mut tallies = HashMap::new();
    for t in tasks {
        let (u, tally) = t.await.expect("buyer");
        tallies.insert(u, tally);
    }

    let q = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let mut conn = shared.conn().await;
    let doubles = q(
        "SELECT count(*) FROM (SELECT s FROM reservations, unnest(seat_ids) s \
                     WHERE status = 'confirmed' GROUP BY s HAVING count(*) > 1) d",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("query");
    assert_eq!(doubles, 0, "a seat was sold twice");
    let confirmed = q("SELECT coalesce(sum(cardinality(seat_ids)), 0)::BIGINT FROM reservations WHERE status = 'confirmed'")
        .fetch_one(&mut *conn)
        .await
        .expect("query");
    let sold = q("SELECT count(*) FROM seats WHERE status = 'sold'")
        .fetch_one(&mut *conn)
        .await
        .expect("query");
    assert_eq!(sold, confirmed);
    assert!(sold > 0 && sold <= SEATS);
    for (user, tally) in &tallies {
        let balance = get(&http, format!("{}/users/{user}/points", bases[0])).await;
        assert_eq!(
            balance["balance"],
            CHARGE - tally.paid + tally.refunded,
            "user {user}"
        );
    }
    let total_paid: i64 = tallies.values().map(|t| t.paid - t.refunded).sum();
    let ledger = q("SELECT coalesce(sum(CASE kind WHEN 'payment' THEN amount WHEN 'refund' THEN -amount ELSE 0 END), 0)::BIGINT FROM wallet_ledger")
        .fetch_one(&mut *conn)
        .await
        .expect("query");
    assert_eq!(
        ledger, total_paid,
        "the ledger agrees with what buyers were told"
    );

    // Both instances relay the outbox to one Redis Stream, taking turns under a Redis lease:
    // every event arrives, and (with no failure here) once.
    let mut pending = i64::MAX;
    for _ in 0..200 {
        pending = q("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&mut *conn)
            .await
            .expect("query");
        if pending == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(pending, 0, "the relays drained the outbox");
    let events = q("SELECT count(*) FROM outbox")
        .fetch_one(&mut *conn)
        .await
        .expect("query");
    let mut redis = ticketing_redis::connect(&shared.redis_url)
        .await
        .expect("redis");
    let stream: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(format!("{}events", shared.prefix))
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .expect("XRANGE");
    let ids: Vec<String> = stream
        .ids
        .iter()
        .map(|e| e.get::<String>("event_id").expect("event_id"))
        .collect();
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len() as i64, events, "every event published");
    assert_eq!(ids.len(), unique.len(), "no event published twice");
    let _: () = redis::cmd("DEL")
        .arg(format!("{}events", shared.prefix))
        .query_async(&mut redis)
        .await
        .expect("DEL");
    // Each instance publishes its pool's connections by state (every second).
    let mut pool_gauges = false;
    for _ in 0..30 {
        let text = http
            .get(format!("{}/metrics", bases[0]))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if text.contains("ticketing_db_pool_connections{state=\"idle\"}")
            && text.contains("ticketing_db_pool_connections{state=\"in_use\"}")
        {
            pool_gauges = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(pool_gauges, "pool gauges in /metrics");
    drop(conn);
    drop(instances);
    shared.drop_schema().await;
}
