//! What the server does at its limits: a request that runs out of time, made-up queue tokens,
//! one client flooding the open endpoints.

mod server_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::json;
use server_common::app::limit::Limits;
use server_common::{Server, serve, start};
use ticketing::{
    Balance, CancelCommand, Catalog, ChargeCommand, Concert, ConcertId, HoldCommand,
    IdempotencyRecord, OptionId, OptionSummary, OutboxRecord, PayCommand, Payment, Points,
    Reservation, ReservationId, Result, SeatView, ShowOption, TicketStore, TicketingService,
    UserId, async_trait,
};

/// A store whose changes are slow: with `start_late`, a change waits `delay` before it is
/// applied (a busy pool); otherwise it is applied at once and its answer comes back `delay`
/// later (a slow network, a long commit). With `reads_late`, the list of concerts (a read) is
/// answered `delay` late too.
#[derive(Debug)]
struct SlowAnswers {
    inner: Arc<dyn TicketStore>,
    delay: Duration,
    start_late: bool,
    reads_late: bool,
    /// How many times the seat map was read from this store.
    seat_reads: std::sync::atomic::AtomicU64,
}

impl SlowAnswers {
    fn new(inner: Arc<dyn TicketStore>, delay: Duration) -> Self {
        Self {
            inner,
            delay,
            start_late: false,
            reads_late: false,
            seat_reads: Default::default(),
        }
    }

    /// Serve this slowed-down store with this request time limit.
    async fn serve(self, timeout: Duration) -> Server {
        let service = TicketingService::new(Arc::new(self), Default::default());
        serve(service, timeout, 64 * 1024, Arc::new(Limits::new(0, 0))).await
    }

    /// Serve this slowed-down store, kept by the caller to count its reads, with this request
    /// time limit and catalog cache time.
    async fn serve_cached(self: &Arc<Self>, timeout: Duration, catalog_ttl: Duration) -> Server {
        let service = TicketingService::new(self.clone(), Default::default());
        let router = server_common::app::router(
            service.clone(),
            Arc::new(Limits::new(0, 0)),
            server_common::app::Settings {
                timeout,
                catalog_ttl,
                ..Default::default()
            },
        );
        server_common::listen(router, service).await
    }

    fn seat_reads(&self) -> u64 {
        self.seat_reads.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn late<T>(&self, r: Result<T>) -> Result<T> {
        if !self.start_late {
            tokio::time::sleep(self.delay).await;
        }
        r
    }

    async fn wait_to_start(&self) {
        if self.start_late {
            tokio::time::sleep(self.delay).await;
        }
    }
}

// A wrapper forwards every method, defaults included, or it silently loses the inner one's.
#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl TicketStore for SlowAnswers {
    async fn seed(&self, catalog: &Catalog) -> Result<()> {
        self.inner.seed(catalog).await
    }
    async fn concerts(&self) -> Result<Vec<Concert>> {
        let r = self.inner.concerts().await;
        if self.reads_late {
            tokio::time::sleep(self.delay).await;
        }
        r
    }
    async fn concert(&self, concert: ConcertId) -> Result<Concert> {
        self.inner.concert(concert).await
    }
    async fn options(&self, concert: ConcertId, now: DateTime<Utc>) -> Result<Vec<OptionSummary>> {
        self.inner.options(concert, now).await
    }
    async fn option(&self, option: OptionId) -> Result<ShowOption> {
        self.inner.option(option).await
    }
    async fn set_sale_window(
        &self,
        option: OptionId,
        opens_at: Option<DateTime<Utc>>,
        closes_at: Option<DateTime<Utc>>,
    ) -> Result<ShowOption> {
        self.inner
            .set_sale_window(option, opens_at, closes_at)
            .await
    }
    async fn seats(&self, option: OptionId, now: DateTime<Utc>) -> Result<Vec<SeatView>> {
        self.seat_reads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let r = self.inner.seats(option, now).await;
        if self.reads_late {
            tokio::time::sleep(self.delay).await;
        }
        r
    }
    async fn hold(&self, cmd: HoldCommand) -> Result<Reservation> {
        self.wait_to_start().await;
        let r = self.inner.hold(cmd).await;
        self.late(r).await
    }
    async fn pay(&self, cmd: PayCommand) -> Result<Payment> {
        self.wait_to_start().await;
        let r = self.inner.pay(cmd).await;
        self.late(r).await
    }
    async fn cancel(&self, cmd: CancelCommand) -> Result<Reservation> {
        self.wait_to_start().await;
        let r = self.inner.cancel(cmd).await;
        self.late(r).await
    }
    async fn expire_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<ReservationId>> {
        self.inner.expire_due(now, limit).await
    }
    async fn reservation(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation> {
        self.inner.reservation(id, now).await
    }
    async fn user_reservations(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reservation>> {
        self.inner.user_reservations(user, now).await
    }
    async fn charge(&self, cmd: ChargeCommand) -> Result<Balance> {
        self.wait_to_start().await;
        let r = self.inner.charge(cmd).await;
        self.late(r).await
    }
    async fn balance(&self, user: UserId) -> Result<Points> {
        self.inner.balance(user).await
    }
    async fn idempotency_record(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        self.inner.idempotency_record(user, key).await
    }
    async fn outbox_read(&self, after: u64, limit: usize) -> Result<Vec<OutboxRecord>> {
        self.inner.outbox_read(after, limit).await
    }
    async fn outbox_ack(&self, seqs: &[u64]) -> Result<()> {
        self.inner.outbox_ack(seqs).await
    }
    async fn prune(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        self.inner.prune(before, limit).await
    }
    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }

    async fn begin_provider_payment(
        &self,
        cmd: ticketing::provider::BeginPaymentCommand,
    ) -> Result<ticketing::provider::PaymentAttempt> {
        self.inner.begin_provider_payment(cmd).await
    }

    async fn settle_charge(
        &self,
        cmd: ticketing::provider::SettleChargeCommand,
    ) -> Result<ticketing::provider::ChargeSettled> {
        self.inner.settle_charge(cmd).await
    }

    async fn settle_refund(
        &self,
        cmd: ticketing::provider::SettleRefundCommand,
    ) -> Result<ticketing::provider::PaymentAttempt> {
        self.inner.settle_refund(cmd).await
    }

    async fn payment_attempt(
        &self,
        id: ticketing::AttemptId,
    ) -> Result<ticketing::provider::PaymentAttempt> {
        self.inner.payment_attempt(id).await
    }

    async fn reservation_attempts(
        &self,
        id: ticketing::ReservationId,
    ) -> Result<Vec<ticketing::provider::PaymentAttempt>> {
        self.inner.reservation_attempts(id).await
    }

    async fn pending_attempts(
        &self,
        limit: usize,
    ) -> Result<Vec<ticketing::provider::PaymentAttempt>> {
        self.inner.pending_attempts(limit).await
    }
}

/// API.md: a 503 means nothing changed. A change whose answer comes after the request's time
/// limit did happen, so its timeout must not be a 503: it is `504 outcome_unknown`, the change
/// is finished, and a retry with the same key tells the outcome without doing it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_runs_out_of_time_is_finished_and_answered_outcome_unknown() {
    let base = start(&["--demo-concerts", "1", "--demo-seats", "10"]).await;
    let delay = Duration::from_millis(600);
    let s = SlowAnswers {
        start_late: false,
        reads_late: false,
        ..SlowAnswers::new(base.service.store().clone(), delay)
    }
    .serve(Duration::from_millis(150))
    .await;

    let key = [("Idempotency-Key", "slow-charge")];
    s.post(
        "/point/charge",
        json!({"user_id": 9, "amount": 1_000}),
        &key,
    )
    .await
    .problem(504, "outcome_unknown");
    tokio::time::sleep(delay).await;
    assert_eq!(
        s.get("/users/9/points").await.body["balance"],
        1_000,
        "the charge that ran out of time happened"
    );

    let hold = json!({"user_id": 9, "option_id": 1, "seat_ids": [3]});
    let key = [("Idempotency-Key", "slow-hold")];
    s.post("/reservations", hold.clone(), &key)
        .await
        .problem(504, "outcome_unknown");
    tokio::time::sleep(delay).await;
    let mine = s.get("/users/9/reservations").await.body;
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(mine[0]["status"], "held", "{mine}");

    // Retries with the same keys learn the outcome and do nothing more. (They answer late
    // too, so they get a longer time limit.)
    let patient = serve(
        TicketingService::new(base.service.store().clone(), Default::default()),
        Duration::from_secs(10),
        64 * 1024,
        Arc::new(Limits::new(0, 0)),
    )
    .await;
    let again = patient.post("/reservations", hold, &key).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body["id"], mine[0]["id"]);
    let again = patient
        .post(
            "/point/charge",
            json!({"user_id": 9, "amount": 1_000}),
            &[("Idempotency-Key", "slow-charge")],
        )
        .await;
    assert_eq!(again.body["balance"], 1_000, "charged once: {}", again.body);

    // A change still waiting to start when the time runs out is not cut off either: it runs
    // to its end after the 504 (a dropped handler would have dropped it).
    let s = SlowAnswers {
        start_late: true,
        reads_late: false,
        ..SlowAnswers::new(base.service.store().clone(), Duration::from_millis(1_500))
    }
    .serve(Duration::from_millis(300))
    .await;
    s.post(
        "/point/charge",
        json!({"user_id": 9, "amount": 500}),
        &[("Idempotency-Key", "late-charge")],
    )
    .await
    .problem(504, "outcome_unknown");
    let mut balance = serde_json::Value::Null;
    for _ in 0..100 {
        balance = patient.get("/users/9/points").await.body["balance"].clone();
        if balance == 1_500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        balance, 1_500,
        "the change that had not started yet was finished"
    );
}

/// A queue token that is not of the form the queue issues is refused before the limiter or the
/// queue sees it: it costs no memory, whatever its size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_queue_tokens_are_refused_and_remembered_nowhere() {
    let base = start(&["--demo-concerts", "1", "--demo-seats", "10"]).await;
    let limits = Arc::new(Limits::new(50, 0));
    let s = serve(
        base.service.clone(),
        Duration::from_secs(10),
        64 * 1024,
        limits.clone(),
    )
    .await;
    let body = json!({"user_id": 1, "option_id": 1, "seat_ids": [1]});
    let big = "a".repeat(8 * 1024);
    for bad in [
        big.as_str(),
        "x",
        "1.abc",
        "0123456789abcdef0123456789abcdeg",
    ] {
        s.post("/reservations", body.clone(), &[("X-Queue-Token", bad)])
            .await
            .problem(404, "not_found");
    }
    assert_eq!(limits.len().0, 0, "no limiter entry for a made-up token");

    // Well-formed but never issued: unknown to the queue, and remembered by the limiter only
    // briefly.
    for i in 0..200 {
        let token = format!("{i:032x}");
        s.post("/reservations", body.clone(), &[("X-Queue-Token", &token)])
            .await
            .problem(404, "not_found");
    }
    // At 50/s a bucket refills from one request in 20 ms.
    tokio::time::sleep(Duration::from_millis(100)).await;
    limits.prune();
    assert_eq!(limits.len().0, 0, "entries of idle tokens are dropped");

    // A real token still works.
    let token = base.admitted_token(1, 1).await;
    base.charge(1, 1_000_000).await;
    let held = s
        .post("/reservations", body, &[("X-Queue-Token", &token)])
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
}

/// One client address cannot flood the open endpoints that change something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_flood_the_open_endpoints() {
    let s = start(&[
        "--demo-concerts",
        "1",
        "--demo-seats",
        "10",
        "--rate-per-client",
        "5",
    ])
    .await;
    let started = Instant::now();
    let mut limited = 0;
    for user in 1..=30 {
        let a = s
            .post(
                "/queue/tokens",
                json!({"user_id": user, "concert_id": 1}),
                &[],
            )
            .await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            a.problem(429, "rate_limited");
            // 5 a second: the bucket lets one through again within a second.
            assert_eq!(a.retry_after.as_deref(), Some("1"), "{}", a.body);
            limited += 1;
        } else {
            assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        }
    }
    // A burst of 10, then 5 a second, whatever the speed of the machine.
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
    // Reading is not limited.
    let read = s.get("/concerts").await;
    assert_eq!(read.status, StatusCode::OK);
}

/// Behind a trusted proxy the per-client limit keys by the address the proxy reports, so
/// buyers behind one proxy do not share one bucket; the gated endpoints are limited per client
/// too (a client making up tokens gets a fresh bucket per token otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_address_a_proxy_reports_is_the_key() {
    let s = start(&[
        "--demo-concerts",
        "1",
        "--demo-seats",
        "10",
        "--rate-per-client",
        "1",
        "--client-ip-header",
        "x-forwarded-for",
    ])
    .await;
    // Burst 2 per address: 20 buyers behind the proxy, each from an address of their own.
    for user in 1..=20 {
        let ip = format!("10.0.0.1, 192.0.2.{user}");
        let a = s
            .post(
                "/queue/tokens",
                json!({"user_id": user, "concert_id": 1}),
                &[("X-Forwarded-For", &ip)],
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    }
    // One address making up well-formed tokens on a gated endpoint: refused by address after
    // its burst, whatever the token.
    let started = Instant::now();
    let mut limited = 0;
    for i in 0..10 {
        let a = s
            .post(
                "/reservations",
                json!({"user_id": 1, "option_id": 1, "seat_ids": [1]}),
                &[
                    ("X-Forwarded-For", "198.51.100.7"),
                    ("X-Queue-Token", &format!("{i:032x}")),
                ],
            )
            .await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        } else {
            a.problem(404, "not_found");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        f64::from(10 - limited) <= 2.0 + elapsed + 1.0,
        "{} let through in {elapsed:.2} s",
        10 - limited
    );
}

/// A read that runs out of time is `503 unavailable` (nothing changed) and says when to try
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_runs_out_of_time_is_unavailable_with_retry_after() {
    let base = start(&["--demo-concerts", "1", "--demo-seats", "10"]).await;
    let s = SlowAnswers {
        start_late: false,
        reads_late: true,
        ..SlowAnswers::new(base.service.store().clone(), Duration::from_millis(600))
    }
    .serve(Duration::from_millis(150))
    .await;
    let a = s.get("/concerts").await;
    a.problem(503, "unavailable");
    assert_eq!(a.retry_after.as_deref(), Some("1"), "{}", a.body);
}

/// A body over the configured limit is `413 payload_too_large`, not a 400, and changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_413() {
    let s = start(&[
        "--demo-concerts",
        "1",
        "--demo-seats",
        "10",
        "--max-body-bytes",
        "1024",
    ])
    .await;
    let padding = "x".repeat(4096);
    let a = s
        .post(
            "/point/charge",
            json!({"user_id": 5, "amount": 100, "padding": padding}),
            &[],
        )
        .await;
    a.problem(413, "payload_too_large");
    assert_eq!(s.get("/users/5/points").await.body["balance"], 0);
    // Under the limit, the same charge goes through.
    let small = s
        .post("/point/charge", json!({"user_id": 5, "amount": 100}), &[])
        .await;
    assert_eq!(small.status, StatusCode::OK, "{}", small.body);
}

/// A lock manager that is down (the Redis of the distributed-lock strategy, unreachable).
#[derive(Debug)]
struct DownLocks;

fn down() -> ticketing::Error {
    ticketing::Error::Unavailable {
        message: "the lock manager is down".into(),
        retryable: true,
        source: None,
    }
}

#[async_trait]
impl ticketing::LockManager for DownLocks {
    async fn try_acquire(
        &self,
        _: &[String],
        _: chrono::Duration,
    ) -> Result<Option<ticketing::Lease>> {
        Err(down())
    }
    async fn release(&self, _: &ticketing::Lease) -> Result<bool> {
        Err(down())
    }
    async fn try_acquire_untaken(
        &self,
        _: &[String],
        _: chrono::Duration,
        _: DateTime<Utc>,
    ) -> Result<ticketing::Acquired> {
        Err(down())
    }
    async fn health(&self) -> Result<()> {
        Err(down())
    }
}

/// With the lock manager of the distributed-lock strategy down, every change fails: the
/// instance is alive but not ready, and its health says so (it said 200 before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_lock_manager_is_down_is_live_but_not_ready() {
    let base = start(&["--demo-concerts", "1", "--demo-seats", "10"]).await;
    let fenced = ticketing::FencedStore::new(
        base.service.store().clone(),
        Arc::new(DownLocks),
        chrono::Duration::seconds(5),
    );
    let s = serve(
        TicketingService::new(Arc::new(fenced), Default::default()),
        Duration::from_secs(5),
        64 * 1024,
        Arc::new(Limits::new(0, 0)),
    )
    .await;
    let hold = s
        .post(
            "/reservations",
            json!({"user_id": 3, "option_id": 1, "seat_ids": [1]}),
            &[],
        )
        .await;
    hold.problem(503, "unavailable");
    let live = s.send(s.http.get(format!("{}/health/live", s.root))).await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.body);
    for path in ["/health/ready", "/health"] {
        let a = s.send(s.http.get(format!("{}{path}", s.root))).await;
        a.problem(503, "unavailable");
        assert_eq!(a.retry_after.as_deref(), Some("1"), "{path}");
    }
    // The same store without the lock manager is ready.
    let ready = base
        .send(base.http.get(format!("{}/health/ready", base.root)))
        .await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
}

/// In a rush every buyer refreshes the seat map: 40 buyers asking at once for a seat map that
/// takes the store 300 ms to read cost one store read, not 40, and all get the same answer;
/// within the cache's time the next ones cost none. Once that time has passed, the map is
/// read anew and shows the seat held meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_seat_map_requests_cost_one_store_read_per_refresh() {
    let base = start(&["--demo-concerts", "1", "--demo-seats", "10"]).await;
    let store = Arc::new(SlowAnswers {
        reads_late: true,
        ..SlowAnswers::new(base.service.store().clone(), Duration::from_millis(300))
    });
    let ttl = Duration::from_millis(1_500);
    let s = store.serve_cached(Duration::from_secs(10), ttl).await;
    let started = Instant::now();
    let answers = seat_maps_at_once(&s, 40).await;
    assert!(answers.iter().all(|(status, _)| *status == StatusCode::OK));
    assert!(answers.iter().all(|(_, body)| *body == answers[0].1));
    assert_eq!(
        store.seat_reads(),
        1,
        "40 concurrent misses coalesced into one store read"
    );
    s.get("/concerts/options/1/availability").await;
    s.service
        .hold(ticketing::HoldRequest::new(
            UserId(3),
            OptionId(1),
            [ticketing::SeatId(1)],
        ))
        .await
        .expect("hold");
    let cached = s.get("/concerts/options/1/seats?status=all").await;
    // (On a machine too slow to get here within the cache's time, the map was rightly read
    // anew: nothing to check then.)
    if started.elapsed() < ttl {
        assert_eq!(
            store.seat_reads(),
            1,
            "within the cache's time every form of the map is served from the one read"
        );
        assert_eq!(
            cached.body[0]["status"], "available",
            "served from the cache"
        );
    }
    tokio::time::sleep(ttl).await;
    let fresh = s.get("/concerts/options/1/seats?status=all").await;
    assert_eq!(
        fresh.body[0]["status"], "held",
        "read anew once the cache's time passed"
    );
    assert!(store.seat_reads() >= 2);
}

/// `n` requests at once for the seat map of option 1: each one's status and body.
async fn seat_maps_at_once(s: &Server, n: usize) -> Vec<(StatusCode, String)> {
    let url = format!("{}/concerts/options/1/seats", s.base);
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (http, url) = (s.http.clone(), url.clone());
            tokio::spawn(async move {
                let r = http.get(url).send().await.expect("answer");
                (r.status(), r.text().await.expect("body"))
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

/// A seat map whose store read takes longer than the cache's time is still read once for all
/// who asked at once: each waiter takes the read it waited for (served one per read, the last
/// of 20 would wait 20 reads, past the request's time limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_map_read_slower_than_the_cache_time_still_serves_every_waiter() {
    let base = start(&["--demo-concerts", "1", "--demo-seats", "10"]).await;
    let store = Arc::new(SlowAnswers {
        reads_late: true,
        ..SlowAnswers::new(base.service.store().clone(), Duration::from_millis(400))
    });
    let s = store
        .serve_cached(Duration::from_secs(3), Duration::from_millis(100))
        .await;
    let answers = seat_maps_at_once(&s, 20).await;
    assert!(
        answers.iter().all(|(status, _)| *status == StatusCode::OK),
        "{:?}",
        answers.iter().map(|(status, _)| status).collect::<Vec<_>>()
    );
    assert!(store.seat_reads() <= 2, "read {} times", store.seat_reads());
}
