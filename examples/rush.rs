//! The ticket-rush simulator: many buyers, few seats, one table of results per strategy.
//!
//! ```sh
//! cargo run --release --example rush                                   # memory, optimistic
//! cargo run --release --example rush -- --strategy pessimistic,optimistic,distributed-lock \
//!     --buyers 20000 --seats 1000 --concurrency 64 --chart rush.svg
//! DATABASE_URL=postgres://postgres@127.0.0.1/test cargo run --release --example rush -- \
//!     --store postgres --strategy pessimistic,optimistic --json
//! MYSQL_URL=mysql://root@127.0.0.1:3306/test cargo run --release --example rush -- \
//!     --store mysql --strategy pessimistic,optimistic
//! cargo run --release --example rush -- --http http://127.0.0.1:8080  # a running server
//! cargo run --release --example rush -- --pay-by provider --provider-latency-ms 50 \
//!     --concurrency 256                         # pay through the fake payment provider
//! ```
//!
//! Each buyer charges points, tries to hold seats (up to three picks), then pays or cancels.
//! Afterwards the books are checked from the store itself (or through the API with `--http`):
//! no seat sold twice, every balance equal to charges - payments + refunds; paying through the
//! fake provider, what it keeps (captured minus refunded) equals the amounts of the reservations
//! sold through it (checked with the library target; a server's fake is its own).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use ticketing::provider::fake::FakeProvider;
use ticketing::{
    CancelRequest, ChargeRequest, ErrorCode, FencedStore, HoldRequest, OptionId, PayRequest,
    Points, ProviderPayment, ReservationId, ReservationStatus, SeatId, SeatStatus, ServiceConfig,
    TicketStore, TicketingService, UserId, demo_catalog,
};
use ticketing_memory::{MemoryLockManager, MemoryStore, Strategy};
use ticketing_mysql::{MySqlConfig, MySqlStore, MySqlStrategy};
use ticketing_postgres::{BatchConfig, LockWait, PgConfig, PgStore, PgStrategy};

/// glibc's allocator took ~11% of the CPU in a PostgreSQL rush over HTTP (`_int_malloc`,
/// `unlink_chunk`, `malloc_consolidate`); mimalloc's thread-local free lists do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreArg {
    Memory,
    Postgres,
    Mysql,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PayBy {
    Points,
    Provider,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StrategyArg {
    Pessimistic,
    Optimistic,
    DistributedLock,
}

/// Simulate a ticket rush and check the books afterwards.
#[derive(Debug, Clone, Parser)]
struct Args {
    /// Store to rush (ignored with --http).
    #[arg(long, value_enum, default_value = "memory")]
    store: StoreArg,
    /// Strategies to compare, comma-separated (distributed-lock uses Redis at REDIS_URL, or the
    /// in-process lock manager on the memory store when REDIS_URL is not set).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "optimistic")]
    strategy: Vec<StrategyArg>,
    /// Buyers arriving at once.
    #[arg(long, default_value_t = 20_000)]
    buyers: u32,
    /// Seats on sale (one show option).
    #[arg(long, default_value_t = 1_000)]
    seats: u32,
    /// The first buyer's user id (buyers are numbered on from it): separate runs against one
    /// server need separate buyers for their books to be checked.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..))]
    first_user: i64,
    /// Buyers in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: u32,
    /// Seats each buyer holds together.
    #[arg(long, default_value_t = 1)]
    seats_per_buyer: u32,
    /// Share of successful holds that are paid.
    #[arg(long, default_value_t = 0.9)]
    pay_ratio: f64,
    /// Share of paid reservations cancelled afterwards (refunded).
    #[arg(long, default_value_t = 0.1)]
    cancel_ratio: f64,
    /// Stop starting new buyers after this many seconds.
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    /// Rush a running server instead (its store and strategy are its own).
    #[arg(long)]
    http: Option<String>,
    /// PostgreSQL URL for --store postgres (a fresh schema is created and dropped).
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// MySQL / MariaDB URL for --store mysql (a fresh database is created and dropped).
    #[arg(long, env = "MYSQL_URL")]
    mysql_url: Option<String>,
    /// Redis URL for the distributed-lock strategy.
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Draw throughput and latency per strategy into this SVG file.
    #[arg(long)]
    chart: Option<std::path::PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Each buyer makes one hold attempt and nothing else (no charge, payment or cancel): the
    /// hold path alone, to compare with the physical limits.
    #[arg(long)]
    holds_only: bool,
    /// PostgreSQL group commit (--store postgres): batch workers, 0 for one transaction per
    /// command.
    #[arg(long, default_value_t = 0)]
    pg_batch: usize,
    /// Connections of the PostgreSQL pool (--store postgres).
    #[arg(long, default_value_t = 32)]
    pg_pool: u32,
    /// Connections of the MySQL pool (--store mysql).
    #[arg(long, default_value_t = 32)]
    mysql_pool: u32,
    /// How buyers pay: with points, or through the payment provider (the fake one in memory
    /// with the library target; with --http the server's, started with TICKETING_PROVIDER=fake).
    #[arg(long, value_enum, default_value = "points")]
    pay_by: PayBy,
    /// The fake provider's answer time, in ms (library target; a server has its own setting).
    #[arg(long, default_value_t = 0)]
    provider_latency_ms: u64,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a buyer talks to.
#[derive(Clone)]
enum Target {
    Library(TicketingService, Option<FakeProvider>),
    Http { http: reqwest::Client, base: String },
}

#[derive(Debug)]
enum Outcome {
    Ok(Value),
    Conflict,
    Failed(String),
}

impl Target {
    async fn call(&self, op: &str, user: i64, arg: Value, token: Option<&str>) -> Outcome {
        match self {
            Target::Library(s, _) => library(s, op, user, arg).await,
            Target::Http { http, base } => {
                let (method_post, path, body) = match op {
                    "charge" => (
                        true,
                        "/point/charge".to_string(),
                        json!({"user_id": user, "amount": arg}),
                    ),
                    "hold" => (
                        true,
                        "/reservations".to_string(),
                        json!({"user_id": user, "option_id": 1, "seat_ids": arg}),
                    ),
                    "pay" => (
                        true,
                        "/payments".to_string(),
                        json!({"user_id": user, "reservation_id": arg}),
                    ),
                    "pay_provider" => (
                        true,
                        "/payments".to_string(),
                        json!({"user_id": user, "reservation_id": arg, "method": "provider"}),
                    ),
                    "cancel" => (
                        true,
                        format!("/reservations/{}/cancel", arg.as_str().unwrap_or("")),
                        json!({"user_id": user}),
                    ),
                    "enqueue" => (
                        true,
                        "/queue/tokens".to_string(),
                        json!({"user_id": user, "concert_id": 1}),
                    ),
                    _ => (
                        false,
                        format!("/queue/tokens/{}", arg.as_str().unwrap_or("")),
                        Value::Null,
                    ),
                };
                let mut req = if method_post {
                    http.post(format!("{base}{path}")).json(&body)
                } else {
                    http.get(format!("{base}{path}"))
                };
                if let Some(t) = token {
                    req = req.header("X-Queue-Token", t);
                }
                match req.send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        match status {
                            200 | 201 => Outcome::Ok(body),
                            409 if body["code"] == "seat_unavailable" => Outcome::Conflict,
                            _ => Outcome::Failed(format!("{status} {body}")),
                        }
                    }
                    Err(e) => Outcome::Failed(e.to_string()),
                }
            }
        }
    }
}

async fn library(s: &TicketingService, op: &str, user: i64, arg: Value) -> Outcome {
    let user = UserId(user);
    let result = match op {
        "charge" => s
            .charge(ChargeRequest::new(user, Points(arg.as_i64().unwrap_or(0))))
            .await
            .map(|b| json!({"balance": b.balance.0})),
        "hold" => {
            let seat_ids: Vec<SeatId> = arg
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_i64).map(SeatId).collect())
                .unwrap_or_default();
            s.hold(HoldRequest::new(user, OptionId(1), seat_ids))
                .await
                .map(|r| json!({"id": r.id.0.to_string()}))
        }
        "pay" => match arg.as_str().and_then(|s| s.parse().ok()) {
            Some(id) => s
                .pay(PayRequest::new(user, ReservationId(id)))
                .await
                .map(|p| json!({"amount": p.amount.0})),
            None => return Outcome::Failed("bad id".into()),
        },
        "pay_provider" => match arg.as_str().and_then(|s| s.parse().ok()) {
            Some(id) => match s
                .pay_by_provider(PayRequest::new(user, ReservationId(id)))
                .await
            {
                Ok(ProviderPayment::Paid(p)) => Ok(json!({"amount": p.amount.0})),
                Ok(other) => return Outcome::Failed(format!("provider payment: {other:?}")),
                Err(e) => Err(e),
            },
            None => return Outcome::Failed("bad id".into()),
        },
        "cancel" => match arg.as_str().and_then(|s| s.parse().ok()) {
            Some(id) => s
                .cancel(CancelRequest::new(user, ReservationId(id)))
                .await
                .map(|r| json!({"refunded_amount": r.refunded_amount.0})),
            None => return Outcome::Failed("bad id".into()),
        },
        other => return Outcome::Failed(format!("no library op {other}")),
    };
    match result {
        Ok(v) => Outcome::Ok(v),
        Err(e) if e.code() == ErrorCode::SeatUnavailable => Outcome::Conflict,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

#[derive(Default)]
struct Stats {
    holds: AtomicU64,
    hold_attempts: AtomicU64,
    conflicts: AtomicU64,
    confirms: AtomicU64,
    cancels: AtomicU64,
    errors: AtomicU64,
    latency: Mutex<HashMap<&'static str, Histogram<u64>>>,
    tally: Mutex<HashMap<i64, (i64, i64)>>,
    /// Paid through the provider minus cancelled since: what the provider must keep.
    provider_kept: std::sync::atomic::AtomicI64,
    first_error: Mutex<Option<String>>,
    /// Queue tokens admitted before the timed part (with --http).
    tokens: Mutex<HashMap<i64, String>>,
}

impl Stats {
    fn error(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut e) = self.first_error.lock() {
            e.get_or_insert(message);
        }
    }

    fn record(&self, op: &'static str, started: Instant) {
        let micros = started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(op).or_insert_with(|| {
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
            });
            let _ = h.record(micros.max(1));
        }
    }
}

/// splitmix64: a tiny deterministic generator per buyer.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const CHARGE: i64 = 10_000_000;

/// `seats_per_buyer` consecutive seats from a random first one.
fn pick_seats(rng: &mut u64, args: &Args) -> Vec<i64> {
    let first = next(rng) % u64::from(args.seats);
    (0..u64::from(args.seats_per_buyer))
        .map(|k| ((first + k) % u64::from(args.seats)) as i64 + 1)
        .collect()
}

async fn buyer(target: &Target, args: &Args, user: i64, stats: &Stats) {
    let mut rng = (user as u64).wrapping_mul(7919);
    // With --http every buyer was admitted before the timed part (see `admit_everyone`).
    let token = stats.tokens.lock().ok().and_then(|t| t.get(&user).cloned());
    let token = token.as_deref();
    if args.holds_only {
        let seats = pick_seats(&mut rng, args);
        let started = Instant::now();
        stats.hold_attempts.fetch_add(1, Ordering::Relaxed);
        match target.call("hold", user, json!(seats), token).await {
            Outcome::Ok(_) => {
                stats.holds.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Conflict => {
                stats.conflicts.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Failed(e) => stats.error(e),
        }
        stats.record("hold", started);
        if let Ok(mut t) = stats.tally.lock() {
            t.insert(user, (0, 0));
        }
        return;
    }
    if !matches!(
        target.call("charge", user, json!(CHARGE), None).await,
        Outcome::Ok(_)
    ) {
        stats.errors.fetch_add(1, Ordering::Relaxed);
        return;
    }
    for _ in 0..3 {
        let seats = pick_seats(&mut rng, args);
        let started = Instant::now();
        stats.hold_attempts.fetch_add(1, Ordering::Relaxed);
        let outcome = target.call("hold", user, json!(seats), token).await;
        stats.record("hold", started);
        let id = match outcome {
            Outcome::Ok(r) => r["id"].clone(),
            Outcome::Conflict => {
                stats.conflicts.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Outcome::Failed(e) => {
                stats.error(e);
                return;
            }
        };
        stats.holds.fetch_add(1, Ordering::Relaxed);
        let roll = |rng: &mut u64| (next(rng) % 10_000) as f64 / 10_000.0;
        let (mut paid, mut refunded) = (0, 0);
        let by_provider = args.pay_by == PayBy::Provider;
        let mut provider_paid = 0;
        if roll(&mut rng) < args.pay_ratio {
            let started = Instant::now();
            let op = if by_provider { "pay_provider" } else { "pay" };
            match target.call(op, user, id.clone(), token).await {
                Outcome::Ok(p) if by_provider => {
                    stats.record("pay", started);
                    stats.confirms.fetch_add(1, Ordering::Relaxed);
                    provider_paid = p["amount"].as_i64().unwrap_or(0);
                    stats
                        .provider_kept
                        .fetch_add(provider_paid, Ordering::Relaxed);
                }
                Outcome::Ok(p) => {
                    stats.record("pay", started);
                    stats.confirms.fetch_add(1, Ordering::Relaxed);
                    paid = p["amount"].as_i64().unwrap_or(0);
                }
                Outcome::Conflict => stats.error("pay answered seat_unavailable".into()),
                Outcome::Failed(e) => stats.error(e),
            }
            if (paid > 0 || provider_paid > 0) && roll(&mut rng) < args.cancel_ratio {
                let started = Instant::now();
                if let Outcome::Ok(c) = target.call("cancel", user, id, None).await {
                    stats.record("cancel", started);
                    stats.cancels.fetch_add(1, Ordering::Relaxed);
                    if by_provider {
                        // Refunded through the provider, not to the wallet.
                        stats
                            .provider_kept
                            .fetch_sub(provider_paid, Ordering::Relaxed);
                    } else {
                        refunded = c["refunded_amount"].as_i64().unwrap_or(0);
                    }
                }
            }
        } else {
            let started = Instant::now();
            if let Outcome::Ok(_) = target.call("cancel", user, id, None).await {
                stats.record("cancel", started);
                stats.cancels.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Ok(mut t) = stats.tally.lock() {
            t.insert(user, (paid, refunded));
        }
        return;
    }
    if let Ok(mut t) = stats.tally.lock() {
        t.insert(user, (0, 0));
    }
}

/// Build the library target for a strategy; returns the store for the books check.
async fn library_target(
    args: &Args,
    strategy: StrategyArg,
    schema: Option<&str>,
) -> Result<(Target, Arc<dyn TicketStore>), BoxError> {
    let base: Arc<dyn TicketStore> = match args.store {
        StoreArg::Memory => Arc::new(MemoryStore::new(match strategy {
            StrategyArg::Optimistic => Strategy::Optimistic { max_retries: 16 },
            _ => Strategy::Pessimistic,
        })),
        StoreArg::Postgres => {
            let url = args
                .database_url
                .clone()
                .ok_or("--store postgres needs DATABASE_URL")?;
            let config = PgConfig::default()
                .with_strategy(match strategy {
                    StrategyArg::Pessimistic => PgStrategy::Pessimistic {
                        lock_wait: LockWait::NoWait,
                    },
                    _ => PgStrategy::Optimistic,
                })
                .with_max_connections(args.pg_pool)
                .with_batch(
                    (args.pg_batch > 0).then(|| BatchConfig::default().with_workers(args.pg_batch)),
                );
            let options = config
                .connect_options(&url)?
                .options([("search_path", schema.unwrap_or("public"))]);
            let pool = config.pool(options).await?;
            ticketing_postgres::migrate(&pool).await?;
            Arc::new(PgStore::new(pool, config))
        }
        StoreArg::Mysql => {
            let url = args
                .mysql_url
                .clone()
                .ok_or("--store mysql needs MYSQL_URL")?;
            let config = MySqlConfig::default()
                .with_strategy(match strategy {
                    StrategyArg::Pessimistic => MySqlStrategy::Pessimistic {
                        lock_wait: ticketing_mysql::LockWait::NoWait,
                    },
                    _ => MySqlStrategy::Optimistic,
                })
                .with_max_connections(args.mysql_pool);
            let mut options = config.connect_options(&url)?;
            if let Some(database) = schema {
                options = options.database(database);
            }
            let pool = config.pool(options).await?;
            ticketing_mysql::migrate(&pool).await?;
            Arc::new(MySqlStore::new(pool, config))
        }
    };
    let store: Arc<dyn TicketStore> = match strategy {
        StrategyArg::DistributedLock => {
            let locks: Arc<dyn ticketing::LockManager> = match &args.redis_url {
                Some(url) => Arc::new(ticketing_redis::RedisLockManager::new(
                    ticketing_redis::connect(url).await?,
                    format!("ticketing:rush:{}:", uuid::Uuid::new_v4().simple()),
                )),
                None => Arc::new(MemoryLockManager::new(Arc::new(ticketing::SystemClock))),
            };
            Arc::new(FencedStore::new(base, locks, chrono::Duration::seconds(5)))
        }
        _ => base,
    };
    let mut catalog = demo_catalog(1, args.seats, Points(10_000));
    catalog.seats.retain(|s| s.option_id == OptionId(1));
    catalog.options.retain(|o| o.id == OptionId(1));
    store.seed(&catalog).await?;
    let per_request = args.seats_per_buyer.max(1);
    let service = TicketingService::new(
        store.clone(),
        ServiceConfig::default()
            .with_max_seats_per_request(per_request as usize)
            .with_max_seats_per_user(per_request),
    );
    Ok(match args.pay_by {
        PayBy::Points => (Target::Library(service, None), store),
        PayBy::Provider => {
            let latency = i64::try_from(args.provider_latency_ms).unwrap_or(i64::MAX / 1_000_000);
            let fake = FakeProvider::new().with_latency(chrono::Duration::milliseconds(latency));
            let service = service.with_provider(Arc::new(fake.clone()));
            (Target::Library(service, Some(fake)), store)
        }
    })
}

struct Books {
    oversold: u64,
    sold: u64,
    balanced: bool,
}

async fn check_books(
    target: &Target,
    store: Option<&Arc<dyn TicketStore>>,
    stats: &Stats,
    charged: i64,
) -> Result<Books, BoxError> {
    let tally = stats.tally.lock().map(|t| t.clone()).unwrap_or_default();
    let mut owners: HashMap<i64, u64> = HashMap::new();
    let mut balanced = true;
    for (&user, &(paid, refunded)) in &tally {
        let (balance, reservations) = match (target, store) {
            (_, Some(store)) => {
                let now = chrono::Utc::now();
                let b = store.balance(UserId(user)).await?.0;
                let r: Vec<Vec<i64>> = store
                    .user_reservations(UserId(user), now)
                    .await?
                    .into_iter()
                    .filter(|r| r.status == ReservationStatus::Confirmed)
                    .map(|r| r.seat_ids.iter().map(|s| s.0).collect())
                    .collect();
                (b, r)
            }
            (Target::Http { http, base }, None) => {
                let b: Value = http
                    .get(format!("{base}/users/{user}/points"))
                    .send()
                    .await?
                    .json()
                    .await?;
                let list: Value = http
                    .get(format!("{base}/users/{user}/reservations"))
                    .send()
                    .await?
                    .json()
                    .await?;
                let r = list
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|r| r["status"] == "confirmed")
                            .map(|r| {
                                r["seat_ids"]
                                    .as_array()
                                    .map(|s| s.iter().filter_map(Value::as_i64).collect())
                                    .unwrap_or_default()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (b["balance"].as_i64().unwrap_or(-1), r)
            }
            _ => return Err("no way to read the books".into()),
        };
        balanced &= balance == charged - paid + refunded;
        for seats in reservations {
            for s in seats {
                *owners.entry(s).or_default() += 1;
            }
        }
    }
    let sold = match store {
        Some(store) => store
            .seats(OptionId(1), chrono::Utc::now())
            .await?
            .iter()
            .filter(|s| s.status == SeatStatus::Sold)
            .count() as u64,
        None => owners.len() as u64,
    };
    Ok(Books {
        oversold: owners.values().filter(|n| **n > 1).count() as u64
            + sold.saturating_sub(owners.len() as u64),
        sold,
        balanced,
    })
}

/// Through a server, every buyer first joins the waiting room and waits to be admitted; that
/// part is not timed, so the figures are those of the hold path itself.
async fn admit_everyone(args: &Args, target: &Target, stats: &Arc<Stats>) {
    let next_user = Arc::new(AtomicU64::new(1));
    let first = args.first_user - 1;
    let workers: Vec<_> = (0..args.concurrency.max(512))
        .map(|_| {
            let (target, stats, next_user) = (target.clone(), stats.clone(), next_user.clone());
            let buyers = u64::from(args.buyers);
            tokio::spawn(async move {
                loop {
                    let user = next_user.fetch_add(1, Ordering::Relaxed);
                    if user > buyers {
                        break;
                    }
                    let user = user as i64 + first;
                    let Outcome::Ok(t) = target.call("enqueue", user, Value::Null, None).await
                    else {
                        continue;
                    };
                    let token = t["token"].as_str().unwrap_or("").to_owned();
                    let mut admitted = t["status"] == "admitted";
                    for _ in 0..2_000 {
                        if admitted {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        if let Outcome::Ok(s) =
                            target.call("status", user, json!(token), None).await
                        {
                            admitted = s["status"] == "admitted";
                        }
                    }
                    if let Ok(mut tokens) = stats.tokens.lock() {
                        tokens.insert(user, token);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
}

/// PostgreSQL's WAL insert position (exact at once, unlike the statistics views, which a
/// backend updates at most once a second): read before and after the timed part, the range
/// says how much the database logged (`pg_waldump --stats -s FROM -e TO` counts its records).
async fn wal_position(pool: Option<&sqlx::PgPool>) -> Option<String> {
    sqlx::query_scalar::<_, String>("SELECT pg_current_wal_insert_lsn()::TEXT")
        .fetch_one(pool?)
        .await
        .ok()
}

/// The bytes of WAL between two positions.
async fn wal_bytes(pool: Option<&sqlx::PgPool>, from: &str, to: &str) -> Option<i64> {
    sqlx::query_scalar::<_, i64>("SELECT pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn)::BIGINT")
        .bind(from)
        .bind(to)
        .fetch_one(pool?)
        .await
        .ok()
}

async fn run(
    args: &Args,
    label: &str,
    target: Target,
    store: Option<Arc<dyn TicketStore>>,
    pg_admin: Option<&sqlx::PgPool>,
) -> Result<Value, BoxError> {
    let stats = Arc::new(Stats::default());
    if let Target::Http { .. } = target {
        admit_everyone(args, &target, &stats).await;
    }
    let next_buyer = Arc::new(AtomicU64::new(0));
    let wal_from = wal_position(pg_admin).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_seconds);
    let bar = if args.quiet || args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(u64::from(args.buyers))
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>18} {bar:40} {pos}/{len} buyers {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(label.to_owned());
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (target, args, stats, next_buyer, bar) = (
                target.clone(),
                args.clone(),
                stats.clone(),
                next_buyer.clone(),
                bar.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next_buyer.fetch_add(1, Ordering::Relaxed);
                    if i >= u64::from(args.buyers) || Instant::now() > deadline {
                        break;
                    }
                    buyer(&target, &args, i as i64 + args.first_user, &stats).await;
                    bar.inc(1);
                }
            })
        })
        .collect();
    for w in workers {
        w.await?;
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let wal = match (wal_from, wal_position(pg_admin).await) {
        (Some(from), Some(to)) => {
            let bytes = wal_bytes(pg_admin, &from, &to).await;
            json!({"from": from, "to": to, "bytes": bytes})
        }
        _ => json!(null),
    };
    let charged = if args.holds_only { 0 } else { CHARGE };
    let books = check_books(&target, store.as_ref(), &stats, charged).await?;
    // What the fake provider keeps (captured minus refunded, over every charge it saw) must be
    // what the buyers were told they paid through it, less what their cancels refunded.
    let provider_kept = stats.provider_kept.load(Ordering::Relaxed);
    let provider_balanced = match &target {
        Target::Library(_, Some(fake)) => {
            let kept: i64 = fake.charge_keys().iter().map(|k| fake.net(k).0).sum();
            kept == provider_kept
        }
        _ => true,
    };
    let latency = stats.latency.lock().map(|l| l.clone()).unwrap_or_default();
    let lat = |op: &str| {
        latency.get(op).map_or(json!(null), |h| {
            json!({"p50_ms": h.value_at_quantile(0.5) as f64 / 1000.0,
                   "p99_ms": h.value_at_quantile(0.99) as f64 / 1000.0,
                   "max_ms": h.max() as f64 / 1000.0, "count": h.len()})
        })
    };
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Ok(json!({
        "strategy": label,
        "buyers": next_buyer.load(Ordering::Relaxed).min(u64::from(args.buyers)),
        "seats": args.seats,
        "concurrency": args.concurrency,
        "elapsed_s": elapsed,
        "hold_attempts": n(&stats.hold_attempts),
        "holds": n(&stats.holds),
        "holds_per_s": n(&stats.holds) as f64 / elapsed,
        "hold_attempts_per_s": n(&stats.hold_attempts) as f64 / elapsed,
        "confirms": n(&stats.confirms),
        "confirms_per_s": n(&stats.confirms) as f64 / elapsed,
        "cancels": n(&stats.cancels),
        "conflicts": n(&stats.conflicts),
        "errors": n(&stats.errors),
        "first_error": stats.first_error.lock().map(|e| e.clone()).unwrap_or_default(),
        "latency": {"hold": lat("hold"), "pay": lat("pay"), "cancel": lat("cancel")},
        "seats_sold": books.sold,
        "oversold_seats": books.oversold,
        "books_balanced": books.balanced && provider_balanced,
        "pay_by": format!("{:?}", args.pay_by).to_lowercase(),
        "provider_latency_ms": args.provider_latency_ms,
        "provider_kept": provider_kept,
        "wal": wal,
    }))
}

fn print_table(rows: &[Value]) {
    let cols: Vec<String> = rows
        .iter()
        .map(|r| r["strategy"].as_str().unwrap_or("?").to_owned())
        .collect();
    print!("{:<26}", "");
    for c in &cols {
        print!("{c:>24}");
    }
    println!();
    let line = |name: &str, f: &dyn Fn(&Value) -> String| {
        print!("{name:<26}");
        for r in rows {
            print!("{:>24}", f(r));
        }
        println!();
    };
    let num = |k: &'static str| move |r: &Value| r[k].to_string();
    let rate = |k: &'static str| move |r: &Value| format!("{:.0}", r[k].as_f64().unwrap_or(0.0));
    let ms = |op: &'static str, q: &'static str| {
        move |r: &Value| match r["latency"][op][q].as_f64() {
            Some(v) => format!("{v:.3}"),
            None => "-".into(),
        }
    };
    line("buyers", &num("buyers"));
    line("elapsed (s)", &|r| {
        format!("{:.3}", r["elapsed_s"].as_f64().unwrap_or(0.0))
    });
    line("hold attempts/s", &rate("hold_attempts_per_s"));
    line("holds/s", &rate("holds_per_s"));
    line("confirms/s", &rate("confirms_per_s"));
    line("hold p50 / p99 (ms)", &|r| {
        format!("{} / {}", ms("hold", "p50_ms")(r), ms("hold", "p99_ms")(r))
    });
    line("hold max (ms)", &ms("hold", "max_ms"));
    line("pay p50 / p99 (ms)", &|r| {
        format!("{} / {}", ms("pay", "p50_ms")(r), ms("pay", "p99_ms")(r))
    });
    line("pay max (ms)", &ms("pay", "max_ms"));
    line("cancel p50 / p99 (ms)", &|r| {
        format!(
            "{} / {}",
            ms("cancel", "p50_ms")(r),
            ms("cancel", "p99_ms")(r)
        )
    });
    line("conflicts", &num("conflicts"));
    line("other errors", &num("errors"));
    line("seats sold (store)", &num("seats_sold"));
    line("oversold seats", &num("oversold_seats"));
    line("books balanced", &num("books_balanced"));
    line("paid by", &|r| {
        r["pay_by"].as_str().unwrap_or("?").to_owned()
    });
}

fn chart(path: &std::path::Path, rows: &[Value]) -> Result<(), BoxError> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(450);
    let labels: Vec<String> = rows
        .iter()
        .map(|r| r["strategy"].as_str().unwrap_or("?").to_owned())
        .collect();
    let draw = |area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
                title: &str,
                values: Vec<f64>|
     -> Result<(), BoxError> {
        let max = values.iter().cloned().fold(0.0, f64::max).max(1e-9) * 1.15;
        let mut c = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d((0..values.len()).into_segmented(), 0.0..max)?;
        c.configure_mesh()
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()?;
        c.draw_series(values.iter().enumerate().map(|(i, v)| {
            Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), *v),
                ],
                BLUE.mix(0.6).filled(),
            )
        }))?;
        Ok(())
    };
    draw(
        &left,
        "holds / s",
        rows.iter()
            .map(|r| r["holds_per_s"].as_f64().unwrap_or(0.0))
            .collect(),
    )?;
    draw(
        &right,
        "hold p99 latency (ms)",
        rows.iter()
            .map(|r| r["latency"]["hold"]["p99_ms"].as_f64().unwrap_or(0.0))
            .collect(),
    )?;
    root.present()?;
    Ok(())
}

/// The connection that creates and drops a run's schema (PostgreSQL) or database (MySQL).
enum Admin {
    Pg(sqlx::PgPool),
    My(sqlx::MySqlPool),
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    if args.seats == 0 || args.seats_per_buyer == 0 || args.seats_per_buyer > args.seats {
        return Err(
            "--seats and --seats-per-buyer must be positive, per-buyer at most seats".into(),
        );
    }
    let mut rows = Vec::new();
    if let Some(url) = &args.http {
        let target = Target::Http {
            http: reqwest::Client::new(),
            base: format!("{}/api/ticketing", url.trim_end_matches('/')),
        };
        rows.push(run(&args, "http", target, None, None).await?);
    } else {
        for &strategy in &args.strategy {
            let label = format!("{:?}/{:?}", args.store, strategy).to_lowercase();
            let (schema, admin) = match args.store {
                StoreArg::Postgres => {
                    let url = args
                        .database_url
                        .clone()
                        .ok_or("--store postgres needs DATABASE_URL")?;
                    let admin = sqlx::PgPool::connect(&url).await?;
                    let schema = format!("ticketing_rush_{}", uuid::Uuid::new_v4().simple());
                    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
                        .execute(&admin)
                        .await?;
                    (Some(schema), Some(Admin::Pg(admin)))
                }
                StoreArg::Mysql => {
                    // A MySQL "schema" is a database: a fresh one per run, dropped after it (a
                    // failed setup included). Named as the MySQL tests name theirs,
                    // `ticketing_t_<unix seconds>_<uuid>`, so one left by a killed run is
                    // dropped by the next test run once it is an hour old.
                    let url = args
                        .mysql_url
                        .clone()
                        .ok_or("--store mysql needs MYSQL_URL")?;
                    let admin = sqlx::MySqlPool::connect(&url).await?;
                    let secs = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    let database = format!("ticketing_t_{secs}_{}", uuid::Uuid::new_v4().simple());
                    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{database}`")))
                        .execute(&admin)
                        .await?;
                    (Some(database), Some(Admin::My(admin)))
                }
                StoreArg::Memory => (None, None),
            };
            let (target, store) = match library_target(&args, strategy, schema.as_deref()).await {
                Ok(setup) => setup,
                Err(e) => {
                    // The migration or the setup failed after the MySQL database was created.
                    if let (Some(database), Some(Admin::My(admin))) = (&schema, &admin) {
                        let drop = format!("DROP DATABASE IF EXISTS `{database}`");
                        if let Err(dropped) =
                            sqlx::query(sqlx::AssertSqlSafe(drop)).execute(admin).await
                        {
                            eprintln!("could not drop the database {database}: {dropped}");
                        }
                    }
                    return Err(e);
                }
            };
            let pg_admin = match &admin {
                Some(Admin::Pg(pool)) => Some(pool),
                _ => None,
            };
            let row = run(&args, &label, target, Some(store), pg_admin).await;
            match (schema, admin) {
                (Some(schema), Some(Admin::Pg(admin))) => {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA \"{schema}\" CASCADE"
                    )))
                    .execute(&admin)
                    .await?;
                }
                (Some(database), Some(Admin::My(admin))) => {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE `{database}`")))
                        .execute(&admin)
                        .await?;
                }
                _ => {}
            }
            rows.push(row?);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json!({"runs": rows}))?);
    } else {
        print_table(&rows);
    }
    if let Some(path) = &args.chart {
        chart(path, &rows)?;
    }
    if rows
        .iter()
        .any(|r| r["oversold_seats"] != 0 || r["books_balanced"] != true)
    {
        return Err("the books do not balance".into());
    }
    Ok(())
}
