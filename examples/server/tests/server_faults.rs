//! Faults through the example server, run as separate processes on one PostgreSQL and one
//! Redis:
//!
//! - a server process killed (SIGKILL) while its payment transaction has debited the wallet but
//!   not yet confirmed the seats: PostgreSQL rolls the transaction back, no point is lost, the
//!   seat is not sold, and another instance takes the same payment (same idempotency key) once;
//! - a lock holder paused after taking its lease (distributed-lock strategy): the lease lapses,
//!   another instance holds and frees the seat, and when the paused request goes on, the store
//!   refuses its stale fencing token (`409 lock_lost`) instead of writing.
//!
//! Both pause a server at an exact point from outside, without test hooks in the server: a
//! trigger that sleeps in the payment insert, and the holder's per-user lock (`lock_user`, the
//! first lock a hold takes in the store, after the lease is taken).

mod process_common;

use std::time::{Duration, Instant};

use process_common::{Shared, admitted_token, charge, get, post, server_binary, spawn};
use serde_json::{Value, json};

const CHARGE: i64 = 100_000;

/// `base_url` with an application name (to find the instance's sessions in
/// `pg_stat_activity`) and a check for vanished clients every 100 ms.
fn tagged(shared: &Shared, app: &str) -> String {
    format!(
        "{}&application_name={app}&options[client_connection_check_interval]=100ms",
        shared.db_url
    )
}

/// Wait (at most `limit`) for a session of `app` matching `condition`; its pid and query.
async fn session_where(
    shared: &Shared,
    app: &str,
    condition: &'static str,
    limit: Duration,
) -> (i32, String) {
    let sql = format!(
        "SELECT pid, query FROM pg_stat_activity WHERE application_name = $1 AND {condition}"
    );
    let started = Instant::now();
    while started.elapsed() < limit {
        let found: Option<(i32, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(app)
            .fetch_optional(&shared.admin)
            .await
            .expect("pg_stat_activity");
        if let Some(found) = found {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no session of {app} where {condition} within {limit:?}");
}

async fn seat_status(http: &reqwest::Client, base: &str, seat: i64) -> String {
    let seats = get(http, format!("{base}/concerts/options/1/seats?status=all")).await;
    seats
        .as_array()
        .and_then(|all| all.iter().find(|s| s["id"] == seat))
        .and_then(|s| s["status"].as_str())
        .unwrap_or("missing")
        .to_owned()
}

/// Payments, seat sales and ledger debits in the test's schema.
async fn payment_counts(conn: &mut sqlx::PgConnection) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM payments), (SELECT count(*) FROM seat_sales), \
                (SELECT count(*) FROM wallet_ledger WHERE kind = 'payment')",
    )
    .fetch_one(conn)
    .await
    .expect("counts")
}

async fn balance(http: &reqwest::Client, base: &str, user: i64) -> Value {
    get(http, format!("{base}/users/{user}/points")).await["balance"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(ticketing_no_database, ticketing_no_redis),
    ignore = "needs DATABASE_URL and REDIS_URL"
)]
async fn a_server_killed_between_debit_and_confirm_loses_no_point_and_sells_no_seat() {
    let Some((db, redis)) = process_common::service_urls() else {
        return;
    };
    let shared = Shared::new(&db, &redis).await;
    let binary = server_binary();
    let app = format!("ticketing-victim-{}", uuid::Uuid::new_v4().simple());
    let vars = [
        ("TICKETING_STRATEGY", "pessimistic"),
        ("TICKETING_DEMO_SEATS", "10"),
    ];
    let mut victim = spawn(&binary, &shared, &tagged(&shared, &app), &vars).await;
    let survivor = spawn(&binary, &shared, &shared.db_url, &vars).await;
    let http = reqwest::Client::new();
    let user = 7;
    charge(&http, &victim.base, user, CHARGE).await;
    let token = admitted_token(&http, &victim.base, user).await;
    let (status, held) = post(
        &http,
        format!("{}/reservations", victim.base),
        json!({"user_id": user, "option_id": 1, "seat_ids": [1]}),
        &[("X-Queue-Token", &token)],
    )
    .await;
    assert_eq!(status, 201, "{held}");
    let reservation = held["id"].as_str().expect("id").to_owned();
    let price = held["amount"].as_i64().expect("amount");

    // The pause point: the payment row is inserted after the wallet was debited, inside the
    // one transaction that also sells the seats.
    let mut conn = shared.conn().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE FUNCTION stall_payment() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.user_id = {user} THEN PERFORM pg_sleep(30); END IF; RETURN NEW; END $$"
    )))
    .execute(&mut *conn)
    .await
    .expect("trigger function");
    sqlx::query(
        "CREATE TRIGGER stall AFTER INSERT ON payments FOR EACH ROW EXECUTE FUNCTION stall_payment()",
    )
    .execute(&mut *conn)
    .await
    .expect("trigger");

    let paying = {
        let (http, url, token) = (
            http.clone(),
            format!("{}/payments", victim.base),
            token.clone(),
        );
        let body = json!({"user_id": user, "reservation_id": reservation});
        tokio::spawn(async move {
            let sent = http
                .post(url)
                .header("X-Queue-Token", token)
                .header("Idempotency-Key", "pay-once")
                .json(&body)
                .send()
                .await;
            sent.map(|r| r.status().as_u16())
        })
    };
    let (pid, query) = session_where(
        &shared,
        &app,
        "wait_event = 'PgSleep'",
        Duration::from_secs(10),
    )
    .await;
    // Per command, the payment insert; with group commit (the server's default), the batch's
    // one write statement, whose wallet update and payment insert run together.
    assert!(
        query.contains("INSERT INTO payments") || query.contains("WITH wallets_w AS"),
        "paused in {query}"
    );

    victim.child.kill().expect("SIGKILL the server");
    let killed_at = Instant::now();
    let _ = victim.child.wait();
    let answer = paying.await.expect("request task");
    assert!(
        !matches!(answer, Ok(s) if (200..300).contains(&s)),
        "a killed server cannot have answered success: {answer:?}"
    );
    // PostgreSQL notices the vanished client and rolls its transaction back.
    let mut rolled_back = None;
    while killed_at.elapsed() < Duration::from_secs(40) {
        let alive: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = $1")
            .bind(pid)
            .fetch_one(&shared.admin)
            .await
            .expect("pg_stat_activity");
        if alive == 0 {
            rolled_back = Some(killed_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rolled_back = rolled_back.expect("the killed server's session ended");

    // The books, through the surviving instance and from the database.
    let base = &survivor.base;
    assert_eq!(balance(&http, base, user).await, CHARGE, "no point lost");
    assert_eq!(seat_status(&http, base, 1).await, "held", "seat not sold");
    let r = get(&http, format!("{base}/reservations/{reservation}")).await;
    assert_eq!(r["status"], "held", "{r}");
    let counts = payment_counts(&mut conn).await;
    assert_eq!(counts, (0, 0, 0), "payments, sales, debits");

    // The client retries on the other instance with the same key: paid once.
    sqlx::query("DROP TRIGGER stall ON payments")
        .execute(&mut *conn)
        .await
        .expect("drop trigger");
    let (status, paid) = post(
        &http,
        format!("{base}/payments"),
        json!({"user_id": user, "reservation_id": reservation}),
        &[("X-Queue-Token", &token), ("Idempotency-Key", "pay-once")],
    )
    .await;
    assert_eq!(status, 201, "{paid}");
    assert_eq!(balance(&http, base, user).await, CHARGE - price);
    assert_eq!(seat_status(&http, base, 1).await, "sold");
    let counts = payment_counts(&mut conn).await;
    assert_eq!(counts, (1, 1, 1), "payments, sales, debits");
    eprintln!(
        "killed between debit and confirm: client saw {answer:?}; the session ended {rolled_back:?} after SIGKILL"
    );
    drop(conn);
    drop(survivor);
    shared.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(ticketing_no_database, ticketing_no_redis),
    ignore = "needs DATABASE_URL and REDIS_URL"
)]
async fn a_paused_lock_holder_cannot_write_after_its_lease_lapsed() {
    let Some((db, redis)) = process_common::service_urls() else {
        return;
    };
    let shared = Shared::new(&db, &redis).await;
    let binary = server_binary();
    let app = format!("ticketing-paused-{}", uuid::Uuid::new_v4().simple());
    let lease_ms = 300;
    let lease = lease_ms.to_string();
    let vars = [
        ("TICKETING_STRATEGY", "distributed-lock"),
        ("TICKETING_LOCK_LEASE_MS", lease.as_str()),
        ("TICKETING_DEMO_SEATS", "10"),
    ];
    let paused = spawn(&binary, &shared, &tagged(&shared, &app), &vars).await;
    let other = spawn(&binary, &shared, &shared.db_url, &vars).await;
    let http = reqwest::Client::new();
    let (p, q) = (11, 12);
    let mut tokens = Vec::new();
    for (user, base) in [(p, &paused.base), (q, &other.base)] {
        charge(&http, base, user, CHARGE).await;
        tokens.push(admitted_token(&http, base, user).await);
    }
    let (p_token, q_token) = (tokens[0].clone(), tokens[1].clone());

    // Pause P's hold on the paused instance right after it took the lease: its first store
    // step waits for P's per-user lock, which the test holds.
    let mut blocker = shared.admin.begin().await.expect("begin");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET LOCAL search_path = \"{}\"",
        shared.schema
    )))
    .execute(&mut *blocker)
    .await
    .expect("search path");
    sqlx::query("SELECT lock_user($1)")
        .bind(p)
        .execute(&mut *blocker)
        .await
        .expect("take P's per-user lock");
    let holding = {
        let (http, url, token) = (
            http.clone(),
            format!("{}/reservations", paused.base),
            p_token.clone(),
        );
        tokio::spawn(async move {
            post(
                &http,
                url,
                json!({"user_id": p, "option_id": 1, "seat_ids": [1]}),
                &[("X-Queue-Token", &token)],
            )
            .await
        })
    };
    session_where(
        &shared,
        &app,
        "wait_event_type = 'Lock'",
        Duration::from_secs(10),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(lease_ms + 200)).await;

    // P's lease has lapsed: Q holds the seat on the other instance, then frees it.
    let (status, q_hold) = post(
        &http,
        format!("{}/reservations", other.base),
        json!({"user_id": q, "option_id": 1, "seat_ids": [1]}),
        &[("X-Queue-Token", &q_token)],
    )
    .await;
    assert_eq!(
        status, 201,
        "the lapsed lease no longer guards the seat: {q_hold}"
    );
    let q_id = q_hold["id"].as_str().expect("id");
    let (status, cancelled) = post(
        &http,
        format!("{}/reservations/{q_id}/cancel", other.base),
        json!({"user_id": q}),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");

    // P wakes up with a stale token. Without the fence it would now take the free seat under a
    // lease it no longer has.
    blocker.rollback().await.expect("release P's per-user lock");
    let (status, answer) = holding.await.expect("P's request");
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["code"], "lock_lost", "{answer}");

    // Nothing was written for P.
    let base = &other.base;
    assert_eq!(seat_status(&http, base, 1).await, "available");
    let mine = get(&http, format!("{base}/users/{p}/reservations")).await;
    assert_eq!(mine, json!([]), "P has no reservation");
    assert_eq!(balance(&http, base, p).await, CHARGE);

    // A fresh lease works: P holds and pays on the paused instance.
    let (status, held) = post(
        &http,
        format!("{}/reservations", paused.base),
        json!({"user_id": p, "option_id": 1, "seat_ids": [1]}),
        &[("X-Queue-Token", &p_token)],
    )
    .await;
    assert_eq!(status, 201, "{held}");
    let (status, paid) = post(
        &http,
        format!("{}/payments", paused.base),
        json!({"user_id": p, "reservation_id": held["id"]}),
        &[("X-Queue-Token", &p_token)],
    )
    .await;
    assert_eq!(status, 201, "{paid}");
    assert_eq!(seat_status(&http, base, 1).await, "sold");
    drop((paused, other));
    shared.drop_schema().await;
}
