//! Two server processes on one PostgreSQL and one Redis (distributed-lock strategy, Redis
//! queue), a few hundred buyers spread over both; afterwards no seat is sold twice and every
//! balance equals charges - payments + refunds.

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const BUYERS: i64 = 300;
const SEATS: i64 = 50;
const CHARGE: i64 = 200_000;

fn service_urls() -> Option<(String, String)> {
    let db = std::env::var("DATABASE_URL").ok().filter(|s| !s.is_empty());
    let redis = std::env::var("REDIS_URL").ok().filter(|s| !s.is_empty());
    match (db, redis) {
        (Some(db), Some(redis)) => Some((db, redis)),
        _ => {
            if std::env::var("TICKETING_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("TICKETING_REQUIRE_SERVICES=1 but DATABASE_URL or REDIS_URL is not set");
            }
            eprintln!("skipped: DATABASE_URL and REDIS_URL are needed for the multi-instance test");
            None
        }
    }
}

/// Kills the child when dropped.
struct Instance(Child);

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The example binary, built fresh (a no-op when up to date).
fn server_binary() -> std::path::PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", "server"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("running cargo");
    assert!(status.success(), "building the server example");
    let exe = std::env::current_exe().expect("test path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    dir.join("examples").join("server")
}

async fn post(
    http: &reqwest::Client,
    url: String,
    body: Value,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.header("X-Queue-Token", t);
    }
    let resp = req.send().await.expect("server answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    paid: i64,
    refunded: i64,
}

async fn buyer(http: reqwest::Client, base: String, user: i64) -> Tally {
    let mut tally = Tally::default();
    let (status, t) = post(
        &http,
        format!("{base}/queue/tokens"),
        json!({"user_id": user, "concert_id": 1}),
        None,
    )
    .await;
    assert!(status == 201 || status == 200, "enqueue: {status} {t}");
    let token = t["token"].as_str().expect("token").to_owned();
    let mut admitted = false;
    for _ in 0..400 {
        let s: Value = http
            .get(format!("{base}/queue/tokens/{token}"))
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("json");
        if s["status"] == "admitted" {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(admitted, "user {user} admitted");
    let (status, _) = post(
        &http,
        format!("{base}/point/charge"),
        json!({"user_id": user, "amount": CHARGE}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    for attempt in 0..3 {
        let seat = (user * 7 + attempt * 11) % SEATS + 1;
        let (status, r) = post(
            &http,
            format!("{base}/reservations"),
            json!({"user_id": user, "option_id": 1, "seat_ids": [seat]}),
            Some(&token),
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
            Some(&token),
        )
        .await;
        assert_eq!(status, 201, "pay: {p}");
        tally.paid += p["amount"].as_i64().expect("amount");
        if user % 5 == 0 {
            let (status, c) = post(
                &http,
                format!("{base}/reservations/{id}/cancel"),
                json!({"user_id": user}),
                None,
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
async fn two_server_processes_never_sell_a_seat_twice() {
    let Some((db, redis)) = service_urls() else {
        return;
    };
    let admin = sqlx::PgPool::connect(&db).await.expect("postgres answers");
    let schema = format!(
        "ticketing_t_{}_{}",
        chrono::Utc::now().timestamp(),
        uuid::Uuid::new_v4().simple()
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&admin)
        .await
        .expect("schema");
    let sep = if db.contains('?') { '&' } else { '?' };
    let db_url = format!("{db}{sep}options[search_path]={schema}");
    let prefix = format!("ticketing:test:{}:", uuid::Uuid::new_v4().simple());
    let binary = server_binary();
    let ports = [free_port(), free_port()];
    let _instances: Vec<Instance> = ports
        .iter()
        .map(|port| {
            Instance(
                Command::new(&binary)
                    .env("TICKETING_ADDR", format!("127.0.0.1:{port}"))
                    .env("TICKETING_STORE", "postgres")
                    .env("TICKETING_STRATEGY", "distributed-lock")
                    .env("TICKETING_QUEUE", "redis")
                    .env("DATABASE_URL", &db_url)
                    .env("REDIS_URL", &redis)
                    .env("TICKETING_REDIS_PREFIX", &prefix)
                    .env("TICKETING_DEMO_CONCERTS", "1")
                    .env("TICKETING_DEMO_SEATS", SEATS.to_string())
                    .env("TICKETING_QUEUE_ADMIT_PER_SEC", "5000")
                    .env("TICKETING_PG_POOL", "8")
                    .env("RUST_LOG", "warn")
                    .stdout(Stdio::null())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("starting a server"),
            )
        })
        .collect();
    let http = reqwest::Client::new();
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}/api/ticketing"))
        .collect();
    for base in &bases {
        let mut up = false;
        for _ in 0..600 {
            if let Ok(r) = http.get(format!("{base}/health")).send().await
                && r.status().is_success()
            {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(up, "{base} did not come up");
    }
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
    let mut conn = admin.acquire().await.expect("conn");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET search_path = \"{schema}\""
    )))
    .execute(&mut *conn)
    .await
    .expect("search path");
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
        let balance: Value = http
            .get(format!("{}/users/{user}/points", bases[0]))
            .send()
            .await
            .expect("points")
            .json()
            .await
            .expect("json");
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
    drop(conn);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&admin)
    .await
    .expect("cleanup");
}
