//! Several processes' worth of admitters on one Redis never admit more than max-active.

mod common;

use chrono::{Duration, SubsecRound, Utc};
use ticketing_core::{ConcertId, QueueConfig, QueueStatus, UserId, WaitingQueue};
use ticketing_redis::RedisQueue;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(ticketing_no_redis, ignore = "needs REDIS_URL (a Redis server)")]
async fn two_connection_managers_admitting_at_once_never_exceed_max_active() {
    let Some((conn_a, prefix)) = common::redis().await else {
        return;
    };
    let (conn_b, _) = common::redis().await.expect("second connection");
    let config = QueueConfig::default()
        .with_admit_per_sec(7)
        .with_max_active(10)
        .with_active_ttl(Duration::seconds(30));
    let a = RedisQueue::new(conn_a, prefix.clone(), config);
    let b = RedisQueue::new(conn_b, prefix, config);
    let concert = ConcertId(42);
    let start = Utc::now().trunc_subsecs(6);
    let mut tokens = Vec::new();
    for u in 1..=40 {
        let q = if u % 2 == 0 { &a } else { &b };
        let (t, created) = q.enqueue(UserId(u), concert, start).await.expect("enqueue");
        assert!(created);
        assert_eq!(t.status, QueueStatus::Waiting { position: u as u64 });
        tokens.push(t.token);
    }
    let mut admitted_by_calls = 0;
    for tick in 0..6 {
        let now = start + Duration::milliseconds(250 * tick);
        let calls: Vec<_> = (0..8)
            .map(|i| {
                let q = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { q.admit(now).await.expect("admit") })
            })
            .collect();
        for c in calls {
            admitted_by_calls += c.await.expect("task");
        }
        let now = start + Duration::milliseconds(250 * tick);
        let mut active = 0;
        for t in &tokens {
            if let QueueStatus::Admitted { .. } = a.status(t, now).await.expect("status").status {
                active += 1;
            }
        }
        assert!(active <= 10, "tick {tick}: {active} admitted at once");
        assert_eq!(active, admitted_by_calls, "every admission counted once");
    }
    assert_eq!(
        admitted_by_calls, 10,
        "the rate allowed more, max-active stopped it"
    );
    // First come, first served: the admitted are exactly the first ten.
    for (i, t) in tokens.iter().enumerate() {
        let s = a.status(t, start).await.expect("status").status;
        assert_eq!(
            matches!(s, QueueStatus::Admitted { .. }),
            i < 10,
            "token {i}: {s:?}"
        );
    }
}

/// A line of a million buyers must not stay in Redis forever: an admitted token's hash and its
/// user's key carry a TTL of two admission lifetimes.
#[tokio::test]
#[cfg_attr(ticketing_no_redis, ignore = "needs REDIS_URL (a Redis server)")]
async fn admitted_tokens_and_their_users_keys_expire_in_redis() {
    let Some((mut conn, prefix)) = common::redis().await else {
        return;
    };
    let config = QueueConfig::default()
        .with_admit_per_sec(100)
        .with_max_active(100)
        .with_active_ttl(Duration::seconds(30));
    let q = RedisQueue::new(conn.clone(), prefix.clone(), config);
    let concert = ConcertId(7);
    let start = Utc::now().trunc_subsecs(6);
    let (t, _) = q.enqueue(UserId(5), concert, start).await.expect("enqueue");
    let waiting_ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}{{c:7}}:t:{}", t.token))
        .query_async(&mut conn)
        .await
        .expect("pttl");
    assert_eq!(waiting_ttl, -1, "a waiting token stays while it waits");
    assert_eq!(
        q.admit(start + Duration::seconds(1)).await.expect("admit"),
        1
    );
    for key in [
        format!("{prefix}{{c:7}}:t:{}", t.token),
        format!("{prefix}{{c:7}}:u:5"),
    ] {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("pttl");
        assert!(
            (30_000..=60_000).contains(&ttl),
            "{key}: TTL {ttl} ms, expected two admission lifetimes"
        );
    }
}
