//! Running the example server as separate processes on one PostgreSQL and one Redis, each test
//! in its own schema and Redis key prefix.

#![allow(dead_code, missing_docs)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// `DATABASE_URL` and `REDIS_URL`, or `None` after printing why the test is skipped (a failure
/// instead under `TICKETING_REQUIRE_SERVICES=1`).
pub fn service_urls() -> Option<(String, String)> {
    let db = std::env::var("DATABASE_URL").ok().filter(|s| !s.is_empty());
    let redis = std::env::var("REDIS_URL").ok().filter(|s| !s.is_empty());
    match (db, redis) {
        (Some(db), Some(redis)) => Some((db, redis)),
        _ => {
            if std::env::var("TICKETING_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("TICKETING_REQUIRE_SERVICES=1 but DATABASE_URL or REDIS_URL is not set");
            }
            eprintln!("skipped: DATABASE_URL and REDIS_URL are needed for server-process tests");
            None
        }
    }
}

/// A test's own PostgreSQL schema and Redis key prefix; the schema is dropped by `drop_schema`.
pub struct Shared {
    pub admin: sqlx::PgPool,
    pub schema: String,
    /// `DATABASE_URL` with the schema as search path.
    pub db_url: String,
    pub redis_url: String,
    pub prefix: String,
}

impl Shared {
    pub async fn new(db: &str, redis: &str) -> Self {
        let admin = sqlx::PgPool::connect(db).await.expect("postgres answers");
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
        Self {
            db_url: format!("{db}{sep}options[search_path]={schema}"),
            admin,
            schema,
            redis_url: redis.to_owned(),
            prefix: format!("ticketing:test:{}:", uuid::Uuid::new_v4().simple()),
        }
    }

    /// A connection of the admin pool with the test schema as search path.
    pub async fn conn(&self) -> sqlx::pool::PoolConnection<sqlx::Postgres> {
        let mut conn = self.admin.acquire().await.expect("conn");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SET search_path = \"{}\"",
            self.schema
        )))
        .execute(&mut *conn)
        .await
        .expect("search path");
        conn
    }

    pub async fn drop_schema(self) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA \"{}\" CASCADE",
            self.schema
        )))
        .execute(&self.admin)
        .await
        .expect("cleanup");
    }
}

/// A server process, killed when dropped.
pub struct Instance {
    pub child: Child,
    pub base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The server binary, which cargo builds before it runs this crate's integration tests.
pub fn server_binary() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_ticketing-server"))
}

/// Start a server process on PostgreSQL (`db_url`) and Redis with these extra variables, and
/// wait (at most 60 s) until its `/health` answers.
pub async fn spawn(
    binary: &std::path::Path,
    shared: &Shared,
    db_url: &str,
    vars: &[(&str, &str)],
) -> Instance {
    let port = free_port();
    let mut cmd = Command::new(binary);
    cmd.env("TICKETING_ADDR", format!("127.0.0.1:{port}"))
        .env("TICKETING_STORE", "postgres")
        .env("TICKETING_QUEUE", "redis")
        // The tests read the seats they just changed: no catalog cache.
        .env("TICKETING_CATALOG_CACHE_MS", "0")
        .env("DATABASE_URL", db_url)
        .env("REDIS_URL", &shared.redis_url)
        .env("TICKETING_REDIS_PREFIX", &shared.prefix)
        .env("TICKETING_DEMO_CONCERTS", "1")
        .env("TICKETING_QUEUE_ADMIT_PER_SEC", "5000")
        .env("TICKETING_RATE_PER_CLIENT", "0")
        .env("TICKETING_PG_POOL", "8")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let instance = Instance {
        child: cmd.spawn().expect("starting a server"),
        base: format!("http://127.0.0.1:{port}/api/ticketing"),
    };
    let http = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(r) = http.get(format!("{}/health", instance.base)).send().await
            && r.status().is_success()
        {
            return instance;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} did not come up", instance.base);
}

/// POST a JSON body with optional headers: status and JSON answer (Null if none).
pub async fn post(
    http: &reqwest::Client,
    url: String,
    body: Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = http.post(url).json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("server answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// GET a JSON answer.
pub async fn get(http: &reqwest::Client, url: String) -> Value {
    http.get(url)
        .send()
        .await
        .expect("server answers")
        .json()
        .await
        .expect("json")
}

/// Charge `amount` points to `user` (asserting 200).
pub async fn charge(http: &reqwest::Client, base: &str, user: i64, amount: i64) {
    let (status, answer) = post(
        http,
        format!("{base}/point/charge"),
        serde_json::json!({"user_id": user, "amount": amount}),
        &[],
    )
    .await;
    assert_eq!(status, 200, "charge: {answer}");
}

/// Join the queue of concert 1 and wait (at most 20 s) until admitted; the token.
pub async fn admitted_token(http: &reqwest::Client, base: &str, user: i64) -> String {
    let (status, t) = post(
        http,
        format!("{base}/queue/tokens"),
        serde_json::json!({"user_id": user, "concert_id": 1}),
        &[],
    )
    .await;
    assert!(status == 201 || status == 200, "enqueue: {status} {t}");
    let token = t["token"].as_str().expect("token").to_owned();
    for _ in 0..400 {
        let s = get(http, format!("{base}/queue/tokens/{token}")).await;
        if s["status"] == "admitted" {
            return token;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("user {user} was not admitted");
}
