//! The server binary as an operator runs it: JSON log lines, one access-log line per request
//! with its request id, and a drain at shutdown during which readiness is 503.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_an_access_line_per_request_and_a_drain_that_is_not_ready() {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ticketing-server"))
        .env("TICKETING_ADDR", format!("127.0.0.1:{port}"))
        .env("TICKETING_LOG_FORMAT", "json")
        .env("TICKETING_DRAIN_SECS", "3")
        .env("TICKETING_DEMO_CONCERTS", "1")
        .env("TICKETING_DEMO_SEATS", "10")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http
        .get(format!("{base}/health/live"))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = http
        .get(format!("{base}/api/ticketing/concerts"))
        .header("x-request-id", "probe-42")
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);

    // Every line is one JSON object; the request above has its access line with its id.
    let mut access = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while access.is_none() && Instant::now() < deadline {
        let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["span"]["request_id"] == "probe-42" && v["fields"]["status"].is_number() {
            access = Some(v);
        }
    }
    let access = access.expect("an access line with the request id");
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["fields"]["status"], 200);
    assert_eq!(access["span"]["uri"], "/api/ticketing/concerts");

    // SIGTERM: readiness is 503 while draining, liveness stays 200, then the process ends.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let mut not_ready = false;
    for _ in 0..40 {
        let ready = http.get(format!("{base}/health/ready")).send().await;
        if ready.is_ok_and(|r| r.status() == 503) {
            not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(not_ready, "readiness answers 503 while draining");
    let live = http
        .get(format!("{base}/health/live"))
        .send()
        .await
        .expect("live");
    assert_eq!(live.status(), 200, "still serving while draining");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            assert!(exit.success(), "{exit:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop after draining"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
