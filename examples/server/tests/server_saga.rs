//! The payment saga through server processes: the server pays through a provider over HTTP
//! (`TICKETING_PROVIDER=http`), served here by the fake provider, and is killed (SIGKILL) at
//! each step of a provider payment:
//!
//! - before the provider call: the charge request arrives, and the server dies before the
//!   provider records anything (as if it died just before sending);
//! - after the call: the provider captured, and the server dies before the answer reaches it;
//! - before the confirm: the provider answered "captured", and the server is killed at once,
//!   racing its settle.
//!
//! After each kill a new server process starts on the same database; its recovery job finishes
//! the attempt. The books must then hold: for every reservation, what the provider captured
//! minus what it refunded equals its amount if it is sold through the provider, else 0; no seat
//! is sold without a captured charge; no attempt is left pending.

mod process_common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::{get as route_get, post as route_post};
use axum::{Json, Router};
use process_common::{Shared, admitted_token, post, server_binary, spawn};
use serde_json::{Value, json};
use ticketing::Points;
use ticketing::provider::fake::FakeProvider;
use ticketing::provider::{
    ChargeOutcome, ChargeStatus, PaymentProvider, ProviderCharge, ProviderRefund, RefundOutcome,
};

/// Where the provider kills the server during a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    /// Before recording the charge.
    BeforeCall,
    /// After capturing, before answering.
    AfterCapture,
    /// Right after answering "captured".
    AfterAnswer,
    /// Not at all.
    Never,
}

#[derive(Clone)]
struct Provider {
    fake: FakeProvider,
    kill: Arc<Mutex<(Kill, Option<u32>)>>,
}

impl Provider {
    fn kill_now(&self) {
        let pid = self.kill.lock().map(|k| k.1).ok().flatten();
        if let Some(pid) = pid {
            let killed = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            assert!(
                killed.as_ref().is_ok_and(|s| s.success()),
                "kill -9 {pid}: {killed:?}"
            );
        }
    }

    fn point(&self) -> Kill {
        self.kill.lock().map(|k| k.0).unwrap_or(Kill::Never)
    }
}

fn outcome(o: ChargeOutcome) -> Value {
    match o {
        ChargeOutcome::Captured { reference } => {
            json!({"outcome": "captured", "reference": reference})
        }
        ChargeOutcome::Declined { reason } => json!({"outcome": "declined", "reason": reason}),
        _ => json!({"outcome": "declined", "reason": "unknown"}),
    }
}

async fn charge(State(p): State<Provider>, Json(body): Json<Value>) -> Json<Value> {
    let point = p.point();
    if point == Kill::BeforeCall {
        p.kill_now();
        // The server is gone: nothing is recorded, nothing answered.
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let call = ProviderCharge {
        key: body["key"].as_str().unwrap_or_default().to_owned(),
        amount: Points(body["amount"].as_i64().unwrap_or(0)),
        description: String::new(),
    };
    let answer = p.fake.charge(&call).await.expect("the fake answers");
    match point {
        Kill::AfterCapture => {
            p.kill_now();
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Kill::AfterAnswer => {
            let p = p.clone();
            tokio::spawn(async move { p.kill_now() });
        }
        _ => {}
    }
    Json(outcome(answer))
}

async fn status(State(p): State<Provider>, Path(key): Path<String>) -> Json<Value> {
    Json(match p.fake.status(&key).await.expect("status") {
        ChargeStatus::Done(ChargeOutcome::Captured { reference }) => {
            json!({"status": "captured", "reference": reference})
        }
        ChargeStatus::Done(ChargeOutcome::Declined { reason }) => {
            json!({"status": "declined", "reason": reason})
        }
        ChargeStatus::Pending => json!({"status": "pending"}),
        _ => json!({"status": "unknown"}),
    })
}

async fn void(State(p): State<Provider>, Path(key): Path<String>) -> Json<Value> {
    Json(outcome(p.fake.void(&key).await.expect("void")))
}

async fn refund(State(p): State<Provider>, Json(body): Json<Value>) -> Json<Value> {
    let call = ProviderRefund {
        key: body["key"].as_str().unwrap_or_default().to_owned(),
        charge_key: body["charge_key"].as_str().unwrap_or_default().to_owned(),
        amount: Points(body["amount"].as_i64().unwrap_or(0)),
    };
    Json(match p.fake.refund(&call).await.expect("refund") {
        RefundOutcome::Refunded { reference } => {
            json!({"outcome": "refunded", "reference": reference})
        }
        RefundOutcome::Refused { reason } => json!({"outcome": "refused", "reason": reason}),
        _ => json!({"outcome": "refused", "reason": "unknown"}),
    })
}

/// Serve the fake provider over HTTP; its base URL.
async fn serve(provider: Provider) -> String {
    let app = Router::new()
        .route("/charges", route_post(charge))
        .route("/charges/{key}", route_get(status))
        .route("/charges/{key}/void", route_post(void))
        .route("/refunds", route_post(refund))
        .with_state(provider);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// The books of every reservation in the schema, against the provider's; `Err` while an attempt
/// is still pending.
async fn books(shared: &Shared, fake: &FakeProvider) -> Result<Vec<String>, String> {
    use sqlx::Row;
    let mut conn = shared.conn().await;
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM payment_attempts WHERE pending")
        .fetch_one(&mut *conn)
        .await
        .expect("pending attempts");
    if pending > 0 {
        return Err(format!("{pending} attempts pending"));
    }
    let rows = sqlx::query(
        "SELECT r.id, r.status, r.amount, p.method FROM reservations r \
         LEFT JOIN payments p ON p.reservation_id = r.id ORDER BY r.created_at",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("reservations");
    // No seat sold but to a reservation sold through the provider (the only way these buyers
    // pay).
    let stray: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM seats s WHERE s.status = 'sold' AND NOT EXISTS \
         (SELECT 1 FROM reservations r JOIN payments p ON p.reservation_id = r.id \
          WHERE r.id = s.reservation_id AND r.status = 'confirmed' AND p.method = 'provider')",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("sold seats");
    assert_eq!(stray, 0, "a seat sold without a sale through the provider");
    let mut seen = Vec::new();
    for row in rows {
        let id: uuid::Uuid = row.get("id");
        let status: String = row.get("status");
        let amount: i64 = row.get("amount");
        let method: Option<String> = row.get("method");
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT body->>'key' FROM payment_attempts WHERE reservation_id = $1 \
             AND body->>'kind' = 'charge'",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .expect("attempts");
        let net: i64 = keys.iter().map(|k| fake.net(k).0).sum();
        let by_provider = status == "confirmed" && method.as_deref() == Some("provider");
        let expected = if by_provider { amount } else { 0 };
        assert_eq!(
            net, expected,
            "reservation {id} ({status}, paid by {method:?}): the provider keeps {net}"
        );
        if by_provider {
            assert!(
                keys.iter().any(|k| fake.captured(k).0 == amount),
                "{id} is sold without a captured charge"
            );
        }
        seen.push(format!("{status}/{}", method.unwrap_or_default()));
    }
    Ok(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_at_each_step_of_a_provider_payment_keeps_the_books() {
    let Some((db, redis)) = process_common::service_urls() else {
        return;
    };
    let shared = Shared::new(&db, &redis).await;
    let provider = Provider {
        fake: FakeProvider::new(),
        kill: Arc::new(Mutex::new((Kill::Never, None))),
    };
    let url = serve(provider.clone()).await;
    let vars = [
        ("TICKETING_PROVIDER", "http"),
        ("TICKETING_PROVIDER_URL", url.as_str()),
        ("TICKETING_PROVIDER_TIMEOUT_MS", "1000"),
        ("TICKETING_PROVIDER_BOUND_SECS", "2"),
        // A short hold, so a charge that never got an answer passes its deadline soon.
        ("TICKETING_HOLD_TTL_SECS", "5"),
    ];
    let http = reqwest::Client::new();
    let binary = server_binary();
    let points = [Kill::BeforeCall, Kill::AfterCapture, Kill::AfterAnswer];
    for (i, point) in points.iter().enumerate() {
        let mut server = spawn(&binary, &shared, &shared.db_url, &vars).await;
        let user = 100 + i as i64;
        let token = admitted_token(&http, &server.base, user).await;
        let gate = [("X-Queue-Token", token.as_str())];
        let (status, hold) = post(
            &http,
            format!("{}/reservations", server.base),
            json!({"user_id": user, "option_id": 1, "seat_ids": [i + 1]}),
            &gate,
        )
        .await;
        assert_eq!(status, 201, "hold: {hold}");
        if let Ok(mut k) = provider.kill.lock() {
            *k = (*point, Some(server.child.id()));
        }
        let paid = http
            .post(format!("{}/payments", server.base))
            .header("X-Queue-Token", token.as_str())
            .json(&json!({"user_id": user, "reservation_id": hold["id"], "method": "provider"}))
            .timeout(Duration::from_secs(20))
            .send()
            .await;
        // The provider killed it at the point (a payment refused before it reached the provider
        // fails here instead of hanging).
        let waited = Instant::now();
        let exited = loop {
            if let Some(status) = server.child.try_wait().expect("the server's status") {
                break status;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(30),
                "{point:?}: the server was not killed; the payment answered {paid:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            !exited.success(),
            "{point:?}: killed, not exited ({paid:?})"
        );
        if let Ok(mut k) = provider.kill.lock() {
            *k = (Kill::Never, None);
        }
        drop(server);
        // A new process on the same database: its recovery job finishes what the dead one left.
        let _restarted = spawn(&binary, &shared, &shared.db_url, &vars).await;
        let started = Instant::now();
        let seen = loop {
            match books(&shared, &provider.fake).await {
                Ok(seen) => break seen,
                Err(why) if started.elapsed() < Duration::from_secs(60) => {
                    let _ = why;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(why) => panic!("{point:?}: recovery did not finish: {why}"),
            }
        };
        eprintln!("after {point:?}: {seen:?}");
    }
    // A payment with no kill, for contrast: sold through the provider, and the books hold.
    let server = spawn(&binary, &shared, &shared.db_url, &vars).await;
    let token = admitted_token(&http, &server.base, 200).await;
    let gate = [("X-Queue-Token", token.as_str())];
    let (_, hold) = post(
        &http,
        format!("{}/reservations", server.base),
        json!({"user_id": 200, "option_id": 1, "seat_ids": [9]}),
        &gate,
    )
    .await;
    let (status, paid) = post(
        &http,
        format!("{}/payments", server.base),
        json!({"user_id": 200, "reservation_id": hold["id"], "method": "provider"}),
        &gate,
    )
    .await;
    assert_eq!(status, 201, "{paid}");
    let seen = books(&shared, &provider.fake)
        .await
        .expect("nothing pending");
    assert!(
        seen.iter().any(|s| s == "confirmed/provider"),
        "a sale through the provider: {seen:?}"
    );
    drop(server);
    shared.drop_schema().await;
}
