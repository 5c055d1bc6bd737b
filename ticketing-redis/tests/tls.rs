//! TLS to Redis with rustls (feature `tls`): a `rediss://` URL reaches a TLS-only Redis and the
//! waiting queue works over it; a certificate the webpki roots do not trust is refused unless
//! the URL says `#insecure`. Starts its own TLS Redis (`redis-server --tls-port`, with Debian's
//! snakeoil certificate), so it runs only with `TICKETING_FAULT_TESTS=1`, like the restart
//! tests.
#![cfg(feature = "tls")]

use std::process::{Command, Stdio};

use chrono::Utc;
use ticketing_core::{ConcertId, QueueConfig, UserId, WaitingQueue};
use ticketing_redis::RedisQueue;

const CERT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
const KEY: &str = "/etc/ssl/private/ssl-cert-snakeoil.key";

/// A TLS-only Redis on a free port; shut down when dropped.
struct TlsRedis {
    port: u16,
    dir: std::path::PathBuf,
}

impl TlsRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("ticketing-tls-redis-{port}"));
        std::fs::create_dir_all(&dir).expect("a directory");
        let status = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--tls-cert-file", CERT, "--tls-key-file", KEY])
            .args(["--tls-ca-cert-file", CERT, "--tls-auth-clients", "no"])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "yes", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .status()
            .expect("redis-server runs");
        assert!(status.success(), "redis-server --tls-port started");
        Self { port, dir }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let url = format!("rediss://127.0.0.1:{}/#insecure", self.port);
        if let Ok(client) = redis::Client::open(url)
            && let Ok(mut conn) = client.get_connection()
        {
            let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("NOSAVE").query(&mut conn);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(ticketing_no_redis, ticketing_no_fault_tests),
    ignore = "starts its own TLS Redis: needs TICKETING_FAULT_TESTS=1 and REDIS_URL"
)]
async fn the_queue_works_over_tls_and_an_untrusted_certificate_is_refused() {
    if std::env::var("TICKETING_FAULT_TESTS").as_deref() != Ok("1") {
        eprintln!("skipped: set TICKETING_FAULT_TESTS=1 to start a TLS Redis in a test");
        return;
    }
    let server = TlsRedis::start();
    let url = format!("rediss://127.0.0.1:{}", server.port);
    let mut ready = false;
    for _ in 0..50 {
        if ticketing_redis::connect(&format!("{url}/#insecure"))
            .await
            .is_ok()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "the TLS Redis answers over rediss://");

    // One attempt each (the connection manager would retry with backoff).
    let once = |url: String| async move {
        let client = redis::Client::open(url)?;
        client.get_multiplexed_async_connection().await.map(|_| ())
    };
    // Verified against the webpki roots: a self-signed certificate is refused.
    let refused = once(url.clone()).await;
    let refused = refused.expect_err("an untrusted certificate is refused");
    assert!(
        format!("{refused:?}")
            .to_lowercase()
            .contains("certificate"),
        "refused for its certificate: {refused:?}"
    );
    // Plain text to the TLS port gets nowhere either.
    let plain = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        once(format!("redis://127.0.0.1:{}", server.port)),
    )
    .await;
    assert!(
        !matches!(plain, Ok(Ok(_))),
        "a plain-text client is not served by a TLS port"
    );

    let conn = ticketing_redis::connect(&format!("{url}/#insecure"))
        .await
        .expect("connected over TLS");
    let queue = RedisQueue::new(conn, "ticketing:tls-test:", QueueConfig::default());
    let now = Utc::now();
    let (ticket, _) = queue
        .enqueue(UserId(1), ConcertId(1), now)
        .await
        .expect("enqueued over TLS");
    let read = queue
        .status(&ticket.token, now)
        .await
        .expect("status over TLS");
    assert_eq!((read.user_id, read.concert_id), (UserId(1), ConcertId(1)));
}
