//! The example server end to end over real HTTP: every endpoint, every error code, bad input,
//! idempotency and expiry, on the memory store.

mod server_common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use server_common::{Server, start};

async fn memory_server() -> Server {
    start(&[
        "--demo-concerts",
        "2",
        "--demo-seats",
        "20",
        "--queue-admit-per-sec",
        "1000",
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_endpoints_and_operations() {
    let s = memory_server().await;
    let concerts = s.get("/concerts").await;
    assert_eq!(concerts.status, StatusCode::OK);
    assert_eq!(concerts.body.as_array().map(Vec::len), Some(2));
    assert_eq!(concerts.body[0]["id"], 1);
    let options = s.get("/concerts/1/options").await;
    assert_eq!(options.body[0]["total_seats"], 20);
    assert_eq!(options.body[0]["available_seats"], 20);
    assert_eq!(options.body[1]["concert_id"], 1);
    let seats = s.get("/concerts/options/1/seats").await;
    assert_eq!(seats.body.as_array().map(Vec::len), Some(20));
    assert_eq!(seats.body[0]["status"], "available");
    assert_eq!(seats.body[0]["seat_no"], "A-1");
    s.get("/concerts/99/options")
        .await
        .problem(404, "not_found");
    s.get("/concerts/options/99/seats")
        .await
        .problem(404, "not_found");
    s.get("/concerts/options/1/seats?status=bogus")
        .await
        .problem(400, "invalid_request");

    let health = s.send(s.http.get(format!("{}/health", s.root))).await;
    assert_eq!(health.status, StatusCode::OK);
    let doc = s
        .send(s.http.get(format!("{}/api-docs/openapi.json", s.root)))
        .await;
    let paths = doc.body["paths"].as_object().expect("paths");
    for p in [
        "/api/ticketing/queue/tokens",
        "/api/ticketing/queue/tokens/{token}",
        "/api/ticketing/concerts",
        "/api/ticketing/concerts/{id}/options",
        "/api/ticketing/concerts/options/{id}/seats",
        "/api/ticketing/concerts/options/{id}/availability",
        "/api/ticketing/reservations",
        "/api/ticketing/reservations/{id}",
        "/api/ticketing/reservations/{id}/cancel",
        "/api/ticketing/users/{id}/reservations",
        "/api/ticketing/payments",
        "/api/ticketing/point/charge",
        "/api/ticketing/users/{id}/points",
    ] {
        assert!(paths.contains_key(p), "openapi lacks {p}");
    }
    // The answers every operation may give are documented on each, as problem+json: 503
    // everywhere, and 413, 429, 504 on the changes.
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("a path item") {
            let shared: &[&str] = match method.as_str() {
                "post" => &["413", "429", "503", "504"],
                "delete" => &["429", "503", "504"],
                "get" => &["503"],
                _ => continue,
            };
            for status in shared {
                let answer = &op["responses"][*status];
                assert!(
                    answer["content"]["application/problem+json"].is_object(),
                    "{method} {path} does not document {status}: {answer}"
                );
            }
            for (status, answer) in op["responses"].as_object().expect("responses") {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        answer["content"].get("application/json").is_none(),
                        "{method} {path} documents its {status} as application/json: {answer}"
                    );
                }
            }
        }
    }
    let metrics = s.send(s.http.get(format!("{}/metrics", s.root))).await;
    let text = metrics.body.as_str().expect("text").to_owned();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("http_request_duration_seconds"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_queues_holds_pays_and_cancels() {
    let s = memory_server().await;
    let token = s.admitted_token(7, 1).await;
    // The admitter publishes the queue's lengths as gauges (the recorder is shared by every
    // server of this test process, so only their presence is certain here).
    let mut gauges = false;
    for _ in 0..40 {
        let text = s.send(s.http.get(format!("{}/metrics", s.root))).await.body;
        let text = text.as_str().unwrap_or_default();
        if text.contains("ticketing_queue_admitted{concert=\"1\"}")
            && text.contains("ticketing_queue_waiting{concert=\"1\"}")
        {
            gauges = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(gauges, "queue gauges in /metrics");
    let again = s
        .post("/queue/tokens", json!({"user_id": 7, "concert_id": 1}), &[])
        .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "same user again: 200 and the same token"
    );
    assert_eq!(again.body["token"], token.as_str());
    assert_eq!(again.body["status"], "admitted");
    assert_eq!(again.body["position"], 0);
    assert!(again.body["admitted_until"].is_string());

    s.charge(7, 300_000).await;
    let gate = [("X-Queue-Token", token.as_str())];
    let hold = s
        .post(
            "/reservations",
            json!({"user_id": 7, "option_id": 1, "seat_ids": [4, 3]}),
            &gate,
        )
        .await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.body);
    assert_eq!(hold.body["status"], "held");
    assert_eq!(hold.body["seat_ids"], json!([3, 4]));
    assert_eq!(hold.body["amount"], 100_000, "two R seats at 50,000");
    let id = hold.body["id"].as_str().expect("id").to_owned();
    let seats = s.get("/concerts/options/1/seats?status=all").await;
    assert_eq!(seats.body[2]["status"], "held");
    assert_eq!(seats.body[1]["status"], "available");
    assert_eq!(
        s.get("/concerts/options/1/seats")
            .await
            .body
            .as_array()
            .map(Vec::len),
        Some(18)
    );

    let paid = s
        .post(
            "/payments",
            json!({"user_id": 7, "reservation_id": id}),
            &gate,
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    assert_eq!(paid.body["status"], "paid");
    assert_eq!(paid.body["amount"], 100_000);
    assert_eq!(paid.body["balance"], 200_000);
    assert_eq!(s.get("/users/7/points").await.body["balance"], 200_000);
    assert_eq!(
        s.get(&format!("/queue/tokens/{token}")).await.body["status"],
        "expired",
        "paying ends the buyer's queue token: the place goes to the next in line"
    );
    assert_eq!(
        s.get(&format!("/reservations/{id}")).await.body["status"],
        "confirmed"
    );
    let mine = s.get("/users/7/reservations").await;
    assert_eq!(mine.body[0]["id"], id.as_str());

    let cancelled = s
        .post(
            &format!("/reservations/{id}/cancel"),
            json!({"user_id": 7}),
            &[],
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["refunded_amount"], 100_000);
    assert_eq!(s.get("/users/7/points").await.body["balance"], 300_000);
    assert_eq!(
        s.get("/users/99/points").await.body["balance"],
        0,
        "unknown user has 0"
    );
    s.post(
        &format!("/reservations/{id}/cancel"),
        json!({"user_id": 7}),
        &[],
    )
    .await
    .problem(409, "invalid_state");
}

/// Seat maps and options carry an `ETag`: a client polling with `If-None-Match` gets `304`
/// with no body until something changes. The compact availability form has one bit per seat
/// of `?status=all`, in its order, set for the available ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seat_maps_carry_an_etag_and_a_compact_availability_form() {
    let s = memory_server().await;
    let url = format!("{}/concerts/options/1/availability", s.base);
    let first = s.get("/concerts/options/1/availability").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.content_type, "application/json");
    assert_eq!(
        (first.body["seats"].clone(), first.body["available"].clone()),
        (json!(20), json!(20))
    );
    let etag = first.etag.clone().expect("an ETag");
    let again = s
        .send(s.http.get(&url).header("if-none-match", &etag))
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.etag.as_deref(), Some(etag.as_str()));

    let token = s.admitted_token(9, 1).await;
    let held = s
        .post(
            "/reservations",
            json!({"user_id": 9, "option_id": 1, "seat_ids": [2, 11]}),
            &[("X-Queue-Token", token.as_str())],
        )
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    let changed = s
        .send(s.http.get(&url).header("if-none-match", &etag))
        .await;
    assert_eq!(changed.status, StatusCode::OK, "a hold changes the version");
    assert_ne!(changed.etag.as_deref(), Some(etag.as_str()));
    assert_eq!(changed.body["available"], 18);
    let bitmap = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        changed.body["bitmap"].as_str().expect("bitmap"),
    )
    .expect("base64");
    let all = s.get("/concerts/options/1/seats?status=all").await;
    let seats = all.body.as_array().expect("seats");
    assert_eq!(seats.len(), 20);
    for (i, seat) in seats.iter().enumerate() {
        let bit = bitmap[i / 8] & (0x80 >> (i % 8)) != 0;
        assert_eq!(bit, seat["status"] == "available", "seat {i}: {seat}");
    }
    assert!(all.etag.is_some());
    let options = s.get("/concerts/1/options").await;
    let tag = options.etag.expect("options carry an ETag");
    let url = format!("{}/concerts/1/options", s.base);
    let same = s.send(s.http.get(&url).header("if-none-match", &tag)).await;
    assert_eq!(same.status, StatusCode::NOT_MODIFIED);
    s.get("/concerts/options/99/availability")
        .await
        .problem(404, "not_found");

    // With the cache on, a client that accepts gzip gets the same JSON compressed once per
    // refresh, under a tag of its own.
    let s = start(&[
        "--demo-concerts",
        "1",
        "--demo-seats",
        "20",
        "--catalog-cache-ms",
        "60000",
    ])
    .await;
    let url = format!("{}/concerts/options/1/seats?status=all", s.base);
    let plain = s.http.get(&url).send().await.expect("answer");
    let plain_tag = plain.headers()["etag"].clone();
    let plain = plain.bytes().await.expect("body");
    let zipped = s
        .http
        .get(&url)
        .header("accept-encoding", "br;q=1, gzip;q=0.5")
        .send()
        .await
        .expect("answer");
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert_eq!(zipped.headers()["vary"], "accept-encoding");
    let zipped_tag = zipped.headers()["etag"].clone();
    assert_ne!(zipped_tag, plain_tag);
    let body = zipped.bytes().await.expect("body");
    assert!(
        body.len() < plain.len() / 3,
        "{} of {}",
        body.len(),
        plain.len()
    );
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut json)
        .expect("gzip");
    assert_eq!(json, plain);
    let again = s
        .http
        .get(&url)
        .header("accept-encoding", "gzip")
        .header("if-none-match", zipped_tag)
        .send()
        .await
        .expect("answer");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let refused = s
        .http
        .get(&url)
        .header("accept-encoding", "gzip;q=0")
        .send()
        .await
        .expect("answer");
    assert!(refused.headers().get("content-encoding").is_none());
    let refused = s
        .http
        .get(&url)
        .header("accept-encoding", "GZIP; Q=0")
        .send()
        .await
        .expect("answer");
    assert!(refused.headers().get("content-encoding").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_leaves_the_waiting_room() {
    let s = memory_server().await;
    let token = s.admitted_token(8, 1).await;
    let leave = |t: &str| s.http.delete(format!("{}/queue/tokens/{t}", s.base));
    assert_eq!(s.send(leave(&token)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get(&format!("/queue/tokens/{token}")).await.body["status"],
        "expired"
    );
    assert_eq!(
        s.send(leave(&token)).await.status,
        StatusCode::NO_CONTENT,
        "leaving twice changes nothing"
    );
    s.post(
        "/reservations",
        json!({"user_id": 8, "option_id": 1, "seat_ids": [1]}),
        &[("X-Queue-Token", token.as_str())],
    )
    .await
    .problem(403, "queue_token_not_admitted");
    s.send(leave("0123456789abcdef0123456789abcdef"))
        .await
        .problem(404, "not_found");
    let again = s
        .post("/queue/tokens", json!({"user_id": 8, "concert_id": 1}), &[])
        .await;
    assert_eq!(
        again.status,
        StatusCode::CREATED,
        "a new token after leaving"
    );
    assert_ne!(again.body["token"], token.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_code_of_the_contract() {
    let s = memory_server().await;
    let a = s.admitted_token(1, 1).await;
    let b = s.admitted_token(2, 1).await;
    let other_concert = s.admitted_token(1, 2).await;
    let hold =
        |user: i64, seats: Value| json!({"user_id": user, "option_id": 1, "seat_ids": seats});

    s.post("/reservations", hold(1, json!([1])), &[])
        .await
        .problem(401, "queue_token_required");
    s.post(
        "/reservations",
        hold(1, json!([1])),
        &[("X-Queue-Token", &b)],
    )
    .await
    .problem(403, "queue_token_mismatch");
    s.post(
        "/reservations",
        hold(1, json!([1])),
        &[("X-Queue-Token", &other_concert)],
    )
    .await
    .problem(403, "queue_token_mismatch");
    s.post(
        "/reservations",
        hold(1, json!([1])),
        &[("X-Queue-Token", "1.feedface")],
    )
    .await
    .problem(404, "not_found");
    s.get("/queue/tokens/nope").await.problem(404, "not_found");

    let ga = [("X-Queue-Token", a.as_str())];
    let gb = [("X-Queue-Token", b.as_str())];
    let r = s.post("/reservations", hold(1, json!([1])), &ga).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().expect("id").to_owned();
    s.post("/reservations", hold(2, json!([5, 1])), &gb)
        .await
        .problem(409, "seat_unavailable");
    assert_eq!(
        s.get("/concerts/1/options").await.body[0]["available_seats"],
        19
    );
    s.post("/reservations", hold(2, json!([5, 6, 7, 8, 9])), &gb)
        .await
        .problem(422, "limit_exceeded");
    s.post(
        "/payments",
        json!({"user_id": 1, "reservation_id": id}),
        &ga,
    )
    .await
    .problem(402, "insufficient_points");
    s.post(
        "/payments",
        json!({"user_id": 2, "reservation_id": id}),
        &gb,
    )
    .await
    .problem(403, "forbidden");
    s.post(
        &format!("/reservations/{id}/cancel"),
        json!({"user_id": 2}),
        &[],
    )
    .await
    .problem(403, "forbidden");
    s.get(&format!("/reservations/{}", uuid::Uuid::now_v7()))
        .await
        .problem(404, "not_found");

    let key = [("X-Queue-Token", b.as_str()), ("Idempotency-Key", "k-1")];
    let first = s.post("/reservations", hold(2, json!([10])), &key).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let retry = s.post("/reservations", hold(2, json!([10])), &key).await;
    assert_eq!(
        retry.status,
        StatusCode::CREATED,
        "a retry answers 201 again"
    );
    assert_eq!(retry.body["id"], first.body["id"]);
    s.post("/reservations", hold(2, json!([11])), &key)
        .await
        .problem(409, "idempotency_conflict");
    assert_eq!(
        s.get("/users/2/reservations")
            .await
            .body
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let c1 = s
        .post(
            "/point/charge",
            json!({"user_id": 3, "amount": 10}),
            &[("Idempotency-Key", "c")],
        )
        .await;
    let c2 = s
        .post(
            "/point/charge",
            json!({"user_id": 3, "amount": 10}),
            &[("Idempotency-Key", "c")],
        )
        .await;
    assert_eq!(
        (c1.body["balance"].clone(), c2.body["balance"].clone()),
        (json!(10), json!(10))
    );

    // A cancel retried under its key (its answer lost) is answered 200 again, the same body.
    let cancel = format!(
        "/reservations/{}/cancel",
        first.body["id"].as_str().expect("id")
    );
    let cancel_key = [("Idempotency-Key", "x-1")];
    let k1 = s.post(&cancel, json!({"user_id": 2}), &cancel_key).await;
    assert_eq!(k1.status, StatusCode::OK, "{}", k1.body);
    assert_eq!(k1.body["status"], "cancelled");
    let k2 = s.post(&cancel, json!({"user_id": 2}), &cancel_key).await;
    assert_eq!(
        k2.status,
        StatusCode::OK,
        "a retried cancel answers 200 again"
    );
    assert_eq!(k2.body, k1.body);
    s.post(&cancel, json!({"user_id": 2}), &[])
        .await
        .problem(409, "invalid_state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_token_is_not_admitted_and_holds_expire() {
    // Nobody is admitted (rate 0), and holds last one second.
    let s = start(&[
        "--demo-seats",
        "10",
        "--queue-admit-per-sec",
        "0",
        "--hold-ttl-secs",
        "1",
    ])
    .await;
    let t = s
        .post("/queue/tokens", json!({"user_id": 5, "concert_id": 1}), &[])
        .await;
    assert_eq!(t.status, StatusCode::CREATED);
    assert_eq!(t.body["status"], "waiting");
    assert_eq!(t.body["position"], 1);
    let token = t.body["token"].as_str().expect("token").to_owned();
    s.post(
        "/reservations",
        json!({"user_id": 5, "option_id": 1, "seat_ids": [1]}),
        &[("X-Queue-Token", &token)],
    )
    .await
    .problem(403, "queue_token_not_admitted");

    // Expiry, through a service without the gate (the queue admits nobody here), on a clock
    // that moves only when told, and a server that reads the same clock: no sleeping.
    let clock = ticketing::ManualClock::default();
    let direct = ticketing::TicketingService::new(
        s.service.store().clone(),
        ticketing::ServiceConfig::default().with_hold_ttl(chrono::Duration::seconds(1)),
    )
    .with_clock(std::sync::Arc::new(clock.clone()));
    let s = server_common::serve(
        direct.clone(),
        Duration::from_secs(10),
        64 * 1024,
        std::sync::Arc::new(server_common::app::limit::Limits::new(0, 0)),
    )
    .await;
    s.charge(5, 500_000).await;
    let r = direct
        .hold(ticketing::HoldRequest::new(
            ticketing::UserId(5),
            ticketing::OptionId(1),
            [ticketing::SeatId(1)],
        ))
        .await
        .expect("hold");
    clock.advance(chrono::Duration::milliseconds(999));
    assert_eq!(
        s.get(&format!("/reservations/{}", r.id)).await.body["status"],
        "held",
        "a hold lasts its whole time"
    );
    clock.advance(chrono::Duration::milliseconds(1));
    assert_eq!(
        s.get(&format!("/reservations/{}", r.id)).await.body["status"],
        "expired"
    );
    assert_eq!(
        s.get("/concerts/options/1/seats?status=all").await.body[0]["status"],
        "available"
    );
    let paid = direct
        .pay(ticketing::PayRequest::new(ticketing::UserId(5), r.id))
        .await;
    assert_eq!(
        paid.map_err(|e| e.code().as_str()).err(),
        Some("hold_expired")
    );
    assert_eq!(s.get("/users/5/points").await.body["balance"], 500_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_400_and_never_5xx() {
    let s = memory_server().await;
    let token = s.admitted_token(1, 1).await;
    let gate = [("X-Queue-Token", token.as_str())];
    let bodies = [
        "",
        "{",
        "[]",
        "null",
        "{\"user_id\": \"1\", \"option_id\": 1, \"seat_ids\": [1]}",
        "{\"user_id\": 1, \"option_id\": 1}",
        "{\"user_id\": 1, \"option_id\": 1, \"seat_ids\": []}",
        "{\"user_id\": 1, \"option_id\": 1, \"seat_ids\": [1, 1]}",
        "{\"user_id\": -1, \"option_id\": 1, \"seat_ids\": [1]}",
        "{\"user_id\": 0, \"option_id\": 1, \"seat_ids\": [1]}",
        "{\"user_id\": 1e30, \"option_id\": 1, \"seat_ids\": [1]}",
        "{\"user_id\": 99999999999999999999, \"option_id\": 1, \"seat_ids\": [1]}",
        "{\"user_id\": 1, \"option_id\": 1, \"seat_ids\": [1.5]}",
        "{\"user_id\": 1, \"option_id\": 1, \"seat_ids\": \"1\"}",
        "{\"user_id\": 1, \"option_id\": 1, \"seat_ids\": [-9223372036854775808]}",
        // The fields of the body in order, as an array: serde would read a struct from it.
        "[1, 1, [1]]",
        "\u{0}\u{1}\u{2}",
    ];
    for body in bodies {
        let a = s
            .send(
                s.http
                    .post(format!("{}/reservations", s.base))
                    .header("content-type", "application/json")
                    .header("X-Queue-Token", &token)
                    .body(body.to_owned()),
            )
            .await;
        a.problem(400, "invalid_request");
    }
    let many: Vec<i64> = (1..=5_000).collect();
    s.post(
        "/reservations",
        json!({"user_id": 1, "option_id": 1, "seat_ids": many}),
        &gate,
    )
    .await
    .problem(400, "invalid_request");
    // A body over the limit (64 KiB by default) is 413, not 400 (issue 13).
    let huge = "x".repeat(100 * 1024);
    s.post(
        "/point/charge",
        json!({"user_id": 1, "amount": 1, "pad": huge}),
        &[],
    )
    .await
    .problem(413, "payload_too_large");
    for amount in [
        json!(0),
        json!(-5),
        json!(10_000_001),
        json!(i64::MAX),
        json!("10"),
    ] {
        s.post(
            "/point/charge",
            json!({"user_id": 1, "amount": amount}),
            &[],
        )
        .await
        .problem(400, "invalid_request");
    }
    s.post(
        "/point/charge",
        json!({"user_id": 1, "amount": 5}),
        &[("Idempotency-Key", &"k".repeat(300))],
    )
    .await
    .problem(400, "invalid_request");
    let no_type = s
        .send(
            s.http
                .post(format!("{}/point/charge", s.base))
                .body("{\"user_id\":1,\"amount\":5}"),
        )
        .await;
    no_type.problem(400, "invalid_request");
    s.get("/reservations/not-a-uuid")
        .await
        .problem(400, "invalid_request");
    s.get("/users/abc/points")
        .await
        .problem(400, "invalid_request");
    s.get("/users/-3/points")
        .await
        .problem(400, "invalid_request");
    s.get("/concerts/99999999999999999999/options")
        .await
        .problem(400, "invalid_request");
    s.get("/no/such/route").await.problem(404, "not_found");
    let wrong_method = s.send(s.http.delete(format!("{}/concerts", s.base))).await;
    assert_eq!(wrong_method.content_type, "application/problem+json");
    assert_eq!(
        s.get("/users/1/points").await.body["balance"],
        0,
        "nothing was charged"
    );
    assert_eq!(
        s.get("/concerts/1/options").await.body[0]["available_seats"],
        20,
        "nothing held"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_queue_token_cannot_flood_the_gated_endpoints() {
    let s = start(&[
        "--demo-seats",
        "20",
        "--queue-admit-per-sec",
        "1000",
        "--rate-per-token",
        "5",
    ])
    .await;
    let token = s.admitted_token(3, 1).await;
    let gate = [("X-Queue-Token", token.as_str())];
    let mut limited = 0;
    let started = std::time::Instant::now();
    for _ in 0..30 {
        let a = s
            .post(
                "/reservations",
                json!({"user_id": 3, "option_id": 1, "seat_ids": [999]}),
                &gate,
            )
            .await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            a.problem(429, "rate_limited");
            limited += 1;
        } else {
            a.problem(404, "not_found");
        }
    }
    // A burst of 10, then 5 a second: however slowly the requests went (a slow machine lets
    // more through), no more than that may have been let through.
    let elapsed = started.elapsed().as_secs_f64();
    let allowed = 30 - limited;
    assert!(
        f64::from(allowed) <= 10.0 + 5.0 * elapsed + 1.0,
        "{allowed} of 30 let through in {elapsed:.2} s"
    );
    assert!(
        limited > 0 || elapsed > 3.8,
        "nothing limited in {elapsed:.2} s"
    );
    let other = s.admitted_token(4, 1).await;
    s.post(
        "/reservations",
        json!({"user_id": 4, "option_id": 1, "seat_ids": [999]}),
        &[("X-Queue-Token", &other)],
    )
    .await
    .problem(404, "not_found");
}

/// An operator sells their own catalog from a file (JSON or TOML) instead of the demo one; a
/// file that does not parse, or names a seat twice, stops the start with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_file_is_sold_instead_of_the_demo() {
    let dir = std::env::temp_dir().join(format!("ticketing-catalog-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join("catalog.json");
    std::fs::write(
        &json,
        json!({
            "concerts": [{"id": 40, "title": "Spring Gala", "venue": "Hall B"}],
            "options": [{"id": 400, "concert_id": 40, "starts_at": "2031-04-01T19:00:00Z"}],
            "seats": [
                {"id": 4001, "option_id": 400, "seat_no": "A-1", "grade": "VIP", "price": 120000},
                {"id": 4002, "option_id": 400, "seat_no": "A-2", "grade": "R", "price": 80000}
            ]
        })
        .to_string(),
    )
    .expect("write");
    let s = start(&["--catalog", json.to_str().expect("path")]).await;
    let concerts = s.get("/concerts").await;
    assert_eq!(
        concerts.body,
        json!([{"id": 40, "title": "Spring Gala", "venue": "Hall B"}])
    );
    let seats = s.get("/concerts/options/400/seats").await;
    assert_eq!(seats.body[0]["grade"], "VIP");
    assert_eq!(seats.body[1]["price"], 80000);

    let toml = dir.join("catalog.toml");
    std::fs::write(
        &toml,
        r#"
[[concerts]]
id = 41
title = "Autumn"
venue = "Hall C"

[[options]]
id = 410
concert_id = 41
starts_at = "2031-10-01T19:00:00Z"

[[seats]]
id = 4101
option_id = 410
seat_no = "B-1"
grade = "S"
price = 30000
"#,
    )
    .expect("write");
    let t = start(&["--catalog", toml.to_str().expect("path")]).await;
    assert_eq!(
        t.get("/concerts/41/options").await.body[0]["total_seats"],
        1
    );

    for (name, text) in [
        ("broken.json", "{\"concerts\": ["),
        (
            "twice.json",
            r#"{"concerts":[{"id":1,"title":"t","venue":"v"}],
                "options":[{"id":1,"concert_id":1,"starts_at":"2031-01-01T00:00:00Z"}],
                "seats":[{"id":1,"option_id":1,"seat_no":"a","grade":"R","price":1},
                         {"id":1,"option_id":1,"seat_no":"b","grade":"R","price":1}]}"#,
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        let config = <server_common::app::config::Config as clap::Parser>::parse_from([
            "server",
            "--catalog",
            path.to_str().expect("path"),
        ]);
        let err = server_common::app::backends::build(&config)
            .await
            .err()
            .unwrap_or_else(|| panic!("{name} was accepted"));
        assert_eq!(
            err.code(),
            ticketing::ErrorCode::InvalidRequest,
            "{name}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

/// With `TICKETING_AUTH=jwt` a request acts for its bearer token's user only: user A cannot
/// enqueue as, hold or pay for, list, read or cancel for user B (403), and a request without a
/// valid token is 401. Catalog reads stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_jwt_a_user_acts_only_for_themselves() {
    let s = start(&[
        "--demo-concerts",
        "1",
        "--demo-seats",
        "20",
        "--queue-admit-per-sec",
        "1000",
        "--auth",
        "jwt",
        "--jwt-secret",
        SECRET,
    ])
    .await;
    let token =
        |user: i64| ticketing_server::auth::mint(SECRET.as_bytes(), user, 600).expect("mint");
    let (a, b) = (token(1), token(2));
    // The scheme is case-insensitive.
    let bearer = |t: &str| format!("bEaReR {t}");
    let post = |path: &str, body: Value, jwt: Option<&str>, extra: &[(&str, &str)]| {
        let mut req = s.http.post(format!("{}{path}", s.base)).json(&body);
        if let Some(t) = jwt {
            req = req.header("authorization", bearer(t));
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        s.send(req)
    };
    let get = |path: &str, jwt: Option<&str>| {
        let mut req = s.http.get(format!("{}{path}", s.base));
        if let Some(t) = jwt {
            req = req.header("authorization", bearer(t));
        }
        s.send(req)
    };

    assert_eq!(
        s.get("/concerts").await.status,
        StatusCode::OK,
        "catalog reads stay open"
    );
    let enqueue = |user: i64| json!({"user_id": user, "concert_id": 1});
    post("/queue/tokens", enqueue(1), None, &[])
        .await
        .problem(401, "unauthorized");
    post("/queue/tokens", enqueue(1), Some("not.a.jwt"), &[])
        .await
        .problem(401, "unauthorized");
    let expired = {
        let claims = json!({"sub": "1", "exp": 1_000_000_000u64});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encode")
    };
    post("/queue/tokens", enqueue(1), Some(&expired), &[])
        .await
        .problem(401, "unauthorized");
    let forged =
        ticketing_server::auth::mint(b"another-secret-another-secret-!!", 1, 600).expect("mint");
    post("/queue/tokens", enqueue(1), Some(&forged), &[])
        .await
        .problem(401, "unauthorized");
    post("/queue/tokens", enqueue(2), Some(&a), &[])
        .await
        .problem(403, "forbidden");

    // B's own flow, to have something of B's to reach for.
    let tb = post("/queue/tokens", enqueue(2), Some(&b), &[]).await;
    assert_eq!(tb.status, StatusCode::CREATED, "{}", tb.body);
    let tb = tb.body["token"].as_str().expect("token").to_owned();
    let mut admitted = false;
    for _ in 0..50 {
        if get(&format!("/queue/tokens/{tb}"), Some(&b)).await.body["status"] == "admitted" {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(admitted);
    get(&format!("/queue/tokens/{tb}"), Some(&a))
        .await
        .problem(403, "forbidden");
    let charge = |user: i64| json!({"user_id": user, "amount": 100_000});
    post("/point/charge", charge(2), Some(&a), &[])
        .await
        .problem(403, "forbidden");
    assert_eq!(
        post("/point/charge", charge(2), Some(&b), &[]).await.status,
        StatusCode::OK
    );
    let hold = |user: i64| json!({"user_id": user, "option_id": 1, "seat_ids": [3]});
    let gate = [("X-Queue-Token", tb.as_str())];
    post("/reservations", hold(2), Some(&a), &gate)
        .await
        .problem(403, "forbidden");
    let held = post("/reservations", hold(2), Some(&b), &gate).await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    let id = held.body["id"].as_str().expect("id").to_owned();
    get(&format!("/reservations/{id}"), Some(&a))
        .await
        .problem(403, "forbidden");
    assert_eq!(
        get(&format!("/reservations/{id}"), Some(&b)).await.status,
        StatusCode::OK
    );
    get("/users/2/reservations", Some(&a))
        .await
        .problem(403, "forbidden");
    get("/users/2/points", Some(&a))
        .await
        .problem(403, "forbidden");
    get("/users/2/points", None)
        .await
        .problem(401, "unauthorized");
    let pay = json!({"user_id": 2, "reservation_id": id});
    post("/payments", pay.clone(), Some(&a), &gate)
        .await
        .problem(403, "forbidden");
    post(
        &format!("/reservations/{id}/cancel"),
        json!({"user_id": 2}),
        Some(&a),
        &[],
    )
    .await
    .problem(403, "forbidden");
    let leave = s
        .send(
            s.http
                .delete(format!("{}/queue/tokens/{tb}", s.base))
                .header("authorization", bearer(&a)),
        )
        .await;
    leave.problem(403, "forbidden");
    let paid = post("/payments", pay, Some(&b), &gate).await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    assert_eq!(
        get("/users/2/points", Some(&b)).await.body["balance"],
        50_000
    );
}

/// `ticketing-server mint-token` prints a token the server accepts for that user.
#[test]
fn mint_token_prints_a_token_for_the_user() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ticketing-server"))
        .args(["mint-token", "--user", "42", "--ttl-secs", "60"])
        .env("TICKETING_JWT_SECRET", SECRET)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).expect("utf-8");
    let user = ticketing_server::auth::Jwt::hs256(SECRET.as_bytes())
        .user(token.trim())
        .expect("a valid token");
    assert_eq!(user.0, 42);
    let narrow = ticketing_server::auth::Jwt::hs256(SECRET.as_bytes()).with_audience("tickets");
    assert!(
        narrow.user(token.trim()).is_err(),
        "a server with an audience refuses a token without one"
    );
    let failed = std::process::Command::new(env!("CARGO_BIN_EXE_ticketing-server"))
        .args(["mint-token", "--user", "42"])
        .env("TICKETING_JWT_SECRET", "short")
        .output()
        .expect("run");
    assert!(
        !failed.status.success(),
        "a secret under 32 bytes is refused"
    );
}

/// CORS for the configured browser origins only: a preflight from an allowed origin is
/// answered with its headers, another origin gets none; without the setting, no CORS at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_the_configured_origins_only() {
    let s = start(&[
        "--cors-origins",
        "https://tickets.example,https://m.tickets.example",
    ])
    .await;
    let preflight = |origin: &str| {
        s.http
            .request(reqwest::Method::OPTIONS, format!("{}/reservations", s.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-queue-token",
            )
            .send()
    };
    let ok = preflight("https://m.tickets.example")
        .await
        .expect("answer");
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://m.tickets.example"
    );
    let allowed = ok.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    assert!(allowed.contains("x-queue-token"), "{allowed}");
    let other = preflight("https://evil.example").await.expect("answer");
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let get = s
        .http
        .get(format!("{}/concerts", s.base))
        .header("origin", "https://tickets.example")
        .send()
        .await
        .expect("answer");
    assert_eq!(
        get.headers()["access-control-allow-origin"],
        "https://tickets.example"
    );
    let exposed = get.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    assert!(
        exposed.contains("etag") && exposed.contains("retry-after"),
        "{exposed}"
    );

    let plain = memory_server().await;
    let get = plain
        .http
        .get(format!("{}/concerts", plain.base))
        .header("origin", "https://tickets.example")
        .send()
        .await
        .expect("answer");
    assert!(get.headers().get("access-control-allow-origin").is_none());
}

/// `/metrics` describes every metric (`# HELP`) and counts error answers by their code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_described_and_count_failures_by_code() {
    let s = memory_server().await;
    s.get("/concerts/99/options")
        .await
        .problem(404, "not_found");
    let text = s.send(s.http.get(format!("{}/metrics", s.root))).await.body;
    let text = text.as_str().expect("text");
    assert!(text.contains("# HELP http_requests_total"), "{text}");
    assert!(text.contains("# HELP ticketing_failures_total"), "{text}");
    assert!(
        text.contains("ticketing_failures_total{code=\"not_found\"}"),
        "{text}"
    );
}

/// What the OpenAPI document calls an integer is one: `2.0` as an id, an amount or a path id
/// is read as 2 (schemathesis sends them so), `2.5` is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integral_numbers_are_integers() {
    let s = memory_server().await;
    let charged = s
        .post(
            "/point/charge",
            json!({"user_id": 3.0, "amount": 500.0}),
            &[],
        )
        .await;
    assert_eq!(charged.status, StatusCode::OK, "{}", charged.body);
    assert_eq!(charged.body["balance"], 500);
    assert_eq!(s.get("/users/3.0/points").await.body["balance"], 500);
    s.post("/point/charge", json!({"user_id": 3, "amount": 2.5}), &[])
        .await
        .problem(400, "invalid_request");
    s.get("/users/3.5/points")
        .await
        .problem(400, "invalid_request");
}

const ADMIN: &str = "an-operator-token-of-at-least-32-bytes";

/// The operator adds a concert whose sale opens later, opens it, and closes it: holds before
/// the opening are `409 sale_not_open`, a hold once open is taken, and once closed paying that
/// hold and holding more are `409 sale_closed`. Without the admin token (or on a server that
/// has none) every admin request is 401 and adds nothing; bad catalogs and windows are 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_adds_a_concert_and_opens_and_closes_its_sale() {
    let file = std::env::temp_dir().join(format!("ticketing-admin-{}", uuid::Uuid::new_v4()));
    std::fs::write(&file, format!("{ADMIN}\n")).expect("the token file");
    let s = start(&[
        "--admin-token-file",
        file.to_str().expect("path"),
        "--queue-admit-per-sec",
        "1000",
    ])
    .await;
    let _ = std::fs::remove_file(&file);
    let bearer = format!("Bearer {ADMIN}");
    let admin = [("Authorization", bearer.as_str())];
    // Instants relative to now, so the test means the same whenever it runs.
    let instant = |days: i64| {
        (chrono::Utc::now() + chrono::Duration::days(days))
            .format("%Y-%m-%dT19:00:00Z")
            .to_string()
    };
    let (starts, opens) = (instant(60), instant(30));
    let catalog = json!({
        "concerts": [{"id": 77, "title": "Winter Gala", "venue": "Hall W"}],
        "options": [{"id": 770, "concert_id": 77, "starts_at": starts,
                     "sale_opens_at": opens}],
        "seats": [
            {"id": 7701, "option_id": 770, "seat_no": "W-1", "grade": "R", "price": 40000},
            {"id": 7702, "option_id": 770, "seat_no": "W-2", "grade": "R", "price": 40000}
        ]
    });
    for headers in [
        &[][..],
        &[("Authorization", "Bearer not-the-admin-token")][..],
    ] {
        let refused = s.post("/admin/catalog", catalog.clone(), headers).await;
        refused.problem(401, "unauthorized");
    }
    s.get("/concerts/77/options")
        .await
        .problem(404, "not_found");

    let added = s.post("/admin/catalog", catalog.clone(), &admin).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_eq!(added.body, json!({"concerts": 1, "options": 1, "seats": 2}));
    let options = s.get("/concerts/77/options").await.body;
    assert_eq!(options[0]["sale_opens_at"], opens.as_str());
    assert_eq!(options[0]["sale_closes_at"], starts.as_str());

    let token = s.admitted_token(5, 77).await;
    let gate = [("X-Queue-Token", token.as_str())];
    let hold = |seat: i64| {
        s.post(
            "/reservations",
            json!({"user_id": 5, "option_id": 770, "seat_ids": [seat]}),
            &gate,
        )
    };
    hold(7701).await.problem(409, "sale_not_open");

    let put = |body: Value| {
        s.send(
            s.http
                .put(format!("{}/admin/options/770/sale", s.base))
                .header("Authorization", bearer.as_str())
                .json(&body),
        )
    };
    let opened = put(json!({"sale_opens_at": null})).await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.body);
    assert_eq!(opened.body["sale_opens_at"], Value::Null);
    assert_eq!(opened.body["sale_closes_at"], Value::Null);
    let held = hold(7701).await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    let id = held.body["id"].as_str().expect("id").to_owned();

    let closed = s.post("/admin/options/770/close", json!({}), &admin).await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    assert!(closed.body["sale_closes_at"].is_string());
    s.charge(5, 100_000).await;
    let pay = s
        .post(
            "/payments",
            json!({"user_id": 5, "reservation_id": id}),
            &gate,
        )
        .await;
    pay.problem(409, "sale_closed");
    hold(7702).await.problem(409, "sale_closed");
    let points = s.get("/users/5/points").await;
    assert_eq!(points.body["balance"], 100_000, "nothing was charged");

    // Refused whole, changing nothing.
    s.post("/admin/catalog", catalog, &admin)
        .await
        .problem(400, "invalid_request");
    s.post("/admin/catalog", json!({"concert": []}), &admin)
        .await
        .problem(400, "invalid_request");
    put(json!({"sale_opens_at": instant(40), "sale_closes_at": instant(39)}))
        .await
        .problem(400, "invalid_request");
    s.post("/admin/options/999999/close", json!({}), &admin)
        .await
        .problem(404, "not_found");

    let without = start(&[]).await;
    without
        .post("/admin/catalog", json!({}), &admin)
        .await
        .problem(401, "unauthorized");
}

/// With the fake payment provider a hold is paid by `"method": "provider"`: confirmed, the
/// wallet untouched; a webhook for a key the server never made is 404, one for the charge
/// changes nothing; the cancel refunds through the provider. Without a provider the method is
/// `400 invalid_request`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_pays_through_the_provider_and_cancels() {
    let s = start(&[
        "--demo-concerts",
        "1",
        "--demo-seats",
        "10",
        "--queue-admit-per-sec",
        "1000",
        "--provider",
        "fake",
        "--provider-latency-ms",
        "20",
    ])
    .await;
    let token = s.admitted_token(7, 1).await;
    let gate = [("X-Queue-Token", token.as_str())];
    let hold = s
        .post(
            "/reservations",
            json!({"user_id": 7, "option_id": 1, "seat_ids": [2]}),
            &gate,
        )
        .await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.body);
    let id = hold.body["id"].as_str().expect("id").to_owned();
    let paid = s
        .post(
            "/payments",
            json!({"user_id": 7, "reservation_id": id, "method": "provider"}),
            &gate,
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    assert_eq!(paid.body["status"], "paid");
    assert_eq!(paid.body["amount"], 50_000);
    assert_eq!(paid.body["balance"], 0, "no points were taken");
    assert_eq!(
        s.get(&format!("/reservations/{id}")).await.body["status"],
        "confirmed"
    );
    s.post(
        "/payments/provider/webhook",
        json!({"key": "charge-00000000-0000-0000-0000-000000000000"}),
        &[],
    )
    .await
    .problem(404, "not_found");
    s.post("/payments/provider/webhook", json!({"key": "x"}), &[])
        .await
        .problem(404, "not_found");
    let cancelled = s
        .post(
            &format!("/reservations/{id}/cancel"),
            json!({"user_id": 7}),
            &[],
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(s.get("/users/7/points").await.body["balance"], 0);

    let points_only = memory_server().await;
    let token = points_only.admitted_token(8, 1).await;
    let gate = [("X-Queue-Token", token.as_str())];
    let hold = points_only
        .post(
            "/reservations",
            json!({"user_id": 8, "option_id": 1, "seat_ids": [1]}),
            &gate,
        )
        .await;
    let id = hold.body["id"].as_str().expect("id").to_owned();
    points_only
        .post(
            "/payments",
            json!({"user_id": 8, "reservation_id": id, "method": "provider"}),
            &gate,
        )
        .await
        .problem(400, "invalid_request");
    points_only
        .post(
            "/payments",
            json!({"user_id": 8, "reservation_id": id, "method": "cash"}),
            &gate,
        )
        .await
        .problem(400, "invalid_request");
    points_only
        .post(
            "/payments/provider/webhook",
            json!({"key": "charge-00000000-0000-0000-0000-000000000000"}),
            &[],
        )
        .await
        .problem(404, "not_found");
}
