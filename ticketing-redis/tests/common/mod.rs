//! Test connections: each test uses its own key prefix, so tests run in parallel and again and
//! again against one server. Without `REDIS_URL` a test prints a skip line and passes, unless
//! `TICKETING_REQUIRE_SERVICES=1`, where it fails.

#![allow(dead_code)]

use redis::aio::ConnectionManager;

/// A connection and a fresh key prefix, or `None` after printing why the test is skipped.
pub async fn redis() -> Option<(ConnectionManager, String)> {
    let url = match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            if std::env::var("TICKETING_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("TICKETING_REQUIRE_SERVICES=1 but REDIS_URL is not set");
            }
            eprintln!("skipped: REDIS_URL is not set (Redis tests need a server)");
            return None;
        }
    };
    let conn = ticketing_redis::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("REDIS_URL is set but Redis does not answer: {e}"));
    Some((
        conn,
        format!("ticketing:test:{}:", uuid::Uuid::new_v4().simple()),
    ))
}
