//! TLS to Redis with rustls (feature `tls`): a `rediss://` URL reaches a TLS-only Redis whose
//! certificate is signed by a CA the client is given, and the waiting queue works over it; the
//! same certificate is refused against the webpki roots, and plain text gets nowhere. Starts its
//! own TLS Redis (`redis-server --tls-port`, with a certificate made here by `openssl`), so it
//! runs only with `TICKETING_FAULT_TESTS=1`, like the restart tests.
#![cfg(feature = "tls")]

use std::path::PathBuf;
use std::process::{Command, Stdio};

use chrono::Utc;
use ticketing_core::{ConcertId, QueueConfig, UserId, WaitingQueue};
use ticketing_redis::RedisQueue;

/// A TLS-only Redis on a free port with a self-signed certificate for 127.0.0.1; stopped and
/// its directory removed when dropped.
struct TlsRedis {
    port: u16,
    dir: PathBuf,
}

fn run(cmd: &mut Command) {
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(status.is_ok_and(|s| s.success()), "{cmd:?} failed");
}

impl TlsRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("ticketing-tls-redis-{port}"));
        std::fs::create_dir_all(&dir).expect("a directory");
        // A CA, and a server certificate for 127.0.0.1 that it signs (webpki takes no CA
        // certificate as a server's own).
        let file = |name: &str| dir.join(name);
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=ticketing test CA", "-keyout"])
            .arg(file("ca.key"))
            .arg("-out")
            .arg(file("ca.pem")));
        run(Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
            ])
            .arg("-keyout")
            .arg(file("key.pem"))
            .arg("-out")
            .arg(file("server.csr")));
        std::fs::write(
            file("server.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .expect("extensions");
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "1", "-CAcreateserial", "-in"])
            .arg(file("server.csr"))
            .arg("-CA")
            .arg(file("ca.pem"))
            .arg("-CAkey")
            .arg(file("ca.key"))
            .arg("-extfile")
            .arg(file("server.ext"))
            .arg("-out")
            .arg(file("cert.pem")));
        run(Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(dir.join("cert.pem"))
            .arg("--tls-key-file")
            .arg(dir.join("key.pem"))
            .args(["--tls-auth-clients", "no", "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "yes"])
            .arg("--pidfile")
            .arg(dir.join("redis.pid"))
            .arg("--dir")
            .arg(&dir));
        Self { port, dir }
    }

    fn ca(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("ca.pem")).expect("the CA certificate")
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("redis.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One connection attempt (the connection manager would retry with backoff).
async fn once(url: &str, ca: Option<&[u8]>) -> redis::RedisResult<()> {
    let client = match ca {
        Some(ca) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.to_vec()),
            },
        )?,
        None => redis::Client::open(url)?,
    };
    client.get_multiplexed_async_connection().await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(ticketing_no_redis, ticketing_no_fault_tests),
    ignore = "starts its own TLS Redis: needs TICKETING_FAULT_TESTS=1 and REDIS_URL"
)]
async fn the_queue_works_over_verified_tls_and_other_certificates_are_refused() {
    if std::env::var("TICKETING_FAULT_TESTS").as_deref() != Ok("1") {
        eprintln!("skipped: set TICKETING_FAULT_TESTS=1 to start a TLS Redis in a test");
        return;
    }
    let server = TlsRedis::start();
    let url = format!("rediss://127.0.0.1:{}", server.port);
    let ca = server.ca();
    let mut last = None;
    for _ in 0..50 {
        match once(&url, Some(&ca)).await {
            Ok(()) => {
                last = None;
                break;
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        last.is_none(),
        "the TLS Redis answers over rediss:// with its CA: {last:?}"
    );

    // Checked against the webpki roots, a certificate of a private CA is refused.
    let refused = once(&url, None).await;
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
        once(&format!("redis://127.0.0.1:{}", server.port), None),
    )
    .await;
    assert!(
        !matches!(plain, Ok(Ok(_))),
        "a plain-text client is not served by a TLS port"
    );

    let conn = ticketing_redis::connect_with_root_ca(&url, &ca)
        .await
        .expect("connected over verified TLS");
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
