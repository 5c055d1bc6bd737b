//! A fixed-rate load against a running server, counting the answers by status: by default an
//! attacker's `POST /payments` with a random queue token of `--token-bytes` bytes (what made-up
//! tokens cost the server); with `--get PATH`, plain GETs of that path (e.g. buyers refreshing
//! a seat map during a rush). At `--rate` requests a second for `--seconds` (BENCHMARKS.md).
//!
//! ```sh
//! cargo run --release --example flood -- --url http://127.0.0.1:8080 --rate 2000 --seconds 60
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;

/// Send made-up queue tokens at a fixed rate.
#[derive(Debug, Parser)]
struct Args {
    /// The server's root URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Requests per second.
    #[arg(long, default_value_t = 2_000)]
    rate: u32,
    /// How long to send.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Length of each random token (hexadecimal characters).
    #[arg(long, default_value_t = 8 * 1024)]
    token_bytes: usize,
    /// GET this path (under the root URL) instead of posting made-up payments; the answers
    /// are read to their end, so connections are kept alive as a browser's would be.
    #[arg(long)]
    get: Option<String>,
    /// With --get: say `Accept-Encoding: gzip`, as browsers do (the bodies are not decoded).
    #[arg(long)]
    gzip: bool,
    /// Requests in flight at most (more are skipped, and counted as such).
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
}

/// A random token of `len` characters: a random body made once, with a fresh random head per
/// request, so every token differs while the attacker spends little CPU (it shares the cores
/// with the server it measures).
fn random_token(body: &str) -> String {
    let head = uuid::Uuid::new_v4().simple().to_string();
    let mut token = String::with_capacity(body.len());
    token.push_str(&head[..head.len().min(body.len())]);
    token.push_str(&body[token.len()..]);
    token
}

fn random_body(len: usize) -> String {
    let mut body = String::with_capacity(len + 32);
    while body.len() < len {
        body.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    body.truncate(len);
    body
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let http = reqwest::Client::new();
    let url = format!("{}/api/ticketing/payments", args.url.trim_end_matches('/'));
    let statuses: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let slots = Arc::new(tokio::sync::Semaphore::new(args.in_flight.max(1)));
    let period = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let end = started + Duration::from_secs(args.seconds);
    let body = random_body(if args.get.is_some() {
        0
    } else {
        args.token_bytes
    });
    let get = args
        .get
        .as_ref()
        .map(|p| format!("{}{p}", args.url.trim_end_matches('/')));
    let mut sent = 0u64;
    let mut skipped = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        sent += 1;
        let req = match &get {
            Some(url) if args.gzip => http.get(url).header("accept-encoding", "gzip"),
            Some(url) => http.get(url),
            None => http
                .post(&url)
                .header("X-Queue-Token", random_token(&body))
                .json(&serde_json::json!({"user_id": 1, "reservation_id": uuid::Uuid::new_v4()})),
        };
        let statuses = statuses.clone();
        tokio::spawn(async move {
            let key = match req.send().await {
                Ok(r) => {
                    let status = r.status().as_u16().to_string();
                    // Read to the end, so the connection is kept for the next request.
                    let _ = r.bytes().await;
                    status
                }
                Err(e) => {
                    // The innermost cause names what went wrong (reset, refused, ...).
                    let mut cause: &dyn std::error::Error = &e;
                    while let Some(inner) = cause.source() {
                        cause = inner;
                    }
                    format!("error: {cause}")
                }
            };
            if let Ok(mut s) = statuses.lock() {
                *s.entry(key).or_default() += 1;
            }
            drop(permit);
        });
    }
    let _ = slots.acquire_many(args.in_flight.max(1) as u32).await;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "sent {sent} in {elapsed:.1} s ({:.0}/s), skipped {skipped} (in flight full)",
        sent as f64 / elapsed
    );
    if let Ok(s) = statuses.lock() {
        for (status, n) in s.iter() {
            println!("  {status}: {n}");
        }
    }
}
