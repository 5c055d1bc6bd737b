//! Seat-guarding strategies under contention: hold, confirm and cancel per backend x strategy x
//! contention (uniform over 10k seats, 10 hot seats, one hot seat) at 1, 8 and 64 concurrent
//! tasks, beside a global-mutex baseline on the memory store.
//!
//! ```sh
//! cargo bench --bench strategies                       # memory only
//! DATABASE_URL=postgres://postgres@127.0.0.1/test cargo bench --bench strategies   # + PostgreSQL
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ticketing::{
    CancelCommand, Catalog, ChargeCommand, Concert, ConcertId, HoldCommand, OptionId, PayCommand,
    Points, ReservationId, Seat, SeatId, ShowOption, TicketStore, UserId,
};
use ticketing_core::testkit::fresh_base;
use ticketing_memory::{MemoryStore, Strategy};
use ticketing_postgres::{LockWait, PgConfig, PgStore, PgStrategy};

const SEATS: i64 = 10_000;

#[derive(Clone, Copy, Debug)]
enum Contention {
    Uniform,
    Hot10,
    Hot1,
}

impl Contention {
    fn seat(self, op: u64) -> i64 {
        let spread = op.wrapping_mul(2_654_435_761) % SEATS as u64;
        match self {
            Contention::Uniform => spread as i64,
            Contention::Hot10 => (spread % 10) as i64,
            Contention::Hot1 => 0,
        }
    }
}

#[derive(Clone)]
enum Backend {
    Store(Arc<dyn TicketStore>),
    /// Every call behind one process-wide lock: the baseline to beat.
    GlobalMutex(Arc<dyn TicketStore>, Arc<tokio::sync::Mutex<()>>),
}

impl Backend {
    fn store(&self) -> &Arc<dyn TicketStore> {
        match self {
            Backend::Store(s) | Backend::GlobalMutex(s, _) => s,
        }
    }

    async fn hold(&self, cmd: HoldCommand) -> bool {
        match self {
            Backend::Store(s) => s.hold(cmd).await.is_ok(),
            Backend::GlobalMutex(s, m) => {
                let _guard = m.lock().await;
                s.hold(cmd).await.is_ok()
            }
        }
    }
}

/// A fresh catalog of `SEATS` seats under random ids; returns (option, first seat id, base).
async fn seed(store: &Arc<dyn TicketStore>) -> (OptionId, i64, i64) {
    let base = fresh_base();
    let option = OptionId(base + 1);
    store
        .seed(&Catalog {
            concerts: vec![Concert {
                id: ConcertId(base),
                title: "bench".into(),
                venue: "x".into(),
            }],
            options: vec![ShowOption::new(
                option,
                ConcertId(base),
                Utc::now() + chrono::Duration::days(365),
            )],
            seats: (0..SEATS)
                .map(|i| Seat {
                    id: SeatId(base + 1_000 + i),
                    option_id: option,
                    seat_no: format!("{i}"),
                    grade: "R".into(),
                    price: Points(100),
                })
                .collect(),
        })
        .await
        .expect("seeding");
    (option, base + 1_000, base)
}

fn hold_cmd(option: OptionId, seat: i64, user: i64) -> HoldCommand {
    let now = Utc::now();
    HoldCommand {
        reservation_id: ReservationId::new(),
        user_id: UserId(user),
        option_id: option,
        seat_ids: vec![SeatId(seat)],
        now,
        expires_at: now + chrono::Duration::minutes(5),
        max_seats_per_user: Some(4),
        idempotency: None,
        fence: None,
    }
}

/// Run `ops` hold attempts over `tasks` tasks; the elapsed time.
async fn holds(backend: &Backend, contention: Contention, tasks: u64, ops: u64) -> Duration {
    let (option, first, base) = seed(backend.store()).await;
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let backend = backend.clone();
            tokio::spawn(async move {
                let mut op = t;
                while op < ops {
                    let seat = first + contention.seat(op);
                    backend
                        .hold(hold_cmd(option, seat, base + 500_000 + op as i64))
                        .await;
                    op += tasks;
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.await;
    }
    started.elapsed()
}

/// Hold `ops` distinct seats, then time confirming (or cancelling) them over `tasks` tasks.
async fn settle(store: &Arc<dyn TicketStore>, confirm: bool, tasks: u64, ops: u64) -> Duration {
    let (option, first, base) = seed(store).await;
    let mut held = Vec::new();
    for op in 0..ops as i64 {
        let user = base + 500_000 + op;
        let now = Utc::now();
        store
            .charge(ChargeCommand {
                user_id: UserId(user),
                amount: Points(1_000),
                now,
                idempotency: None,
            })
            .await
            .expect("charge");
        let r = store
            .hold(hold_cmd(option, first + op, user))
            .await
            .expect("hold");
        held.push((r.id, UserId(user)));
    }
    let held = Arc::new(held);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (store, held) = (store.clone(), held.clone());
            tokio::spawn(async move {
                let mut i = t as usize;
                while i < held.len() {
                    let (id, user) = held[i];
                    let now = Utc::now();
                    if confirm {
                        let cmd = PayCommand {
                            reservation_id: id,
                            user_id: user,
                            now,
                            idempotency: None,
                            fence: None,
                        };
                        store.pay(cmd).await.expect("confirm");
                    } else {
                        let cmd = CancelCommand {
                            reservation_id: id,
                            user_id: user,
                            now,
                            idempotency: None,
                            fence: None,
                        };
                        store.cancel(cmd).await.expect("cancel");
                    }
                    i += tasks as usize;
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.await;
    }
    started.elapsed()
}

fn backends(rt: &tokio::runtime::Runtime) -> Vec<(String, Backend, u64)> {
    let mut all: Vec<(String, Backend, u64)> = vec![
        (
            "memory/pessimistic".into(),
            Backend::Store(Arc::new(MemoryStore::new(Strategy::Pessimistic))),
            4_000,
        ),
        (
            "memory/optimistic".into(),
            Backend::Store(Arc::new(MemoryStore::new(Strategy::Optimistic {
                max_retries: 16,
            }))),
            4_000,
        ),
        (
            "memory/global-mutex".into(),
            Backend::GlobalMutex(
                Arc::new(MemoryStore::new(Strategy::Pessimistic)),
                Arc::default(),
            ),
            4_000,
        ),
    ];
    if let Ok(url) = std::env::var("DATABASE_URL") {
        for (name, strategy) in [
            (
                "postgres/pessimistic",
                PgStrategy::Pessimistic {
                    lock_wait: LockWait::NoWait,
                },
            ),
            ("postgres/optimistic", PgStrategy::Optimistic),
        ] {
            let config = PgConfig::default()
                .with_strategy(strategy)
                .with_max_connections(16);
            let store = rt.block_on(async {
                let store = PgStore::connect(&url, config).await.expect("postgres");
                ticketing_postgres::migrate(store.pool())
                    .await
                    .expect("migrate");
                store
            });
            all.push((name.into(), Backend::Store(Arc::new(store)), 400));
        }
    } else {
        eprintln!("skipped: DATABASE_URL is not set, PostgreSQL is not benchmarked");
    }
    all
}

fn strategies(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let backends = backends(&rt);
    let mut group = c.benchmark_group("hold");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for (name, backend, ops) in &backends {
        for contention in [Contention::Uniform, Contention::Hot10, Contention::Hot1] {
            for tasks in [1u64, 8, 64] {
                group.throughput(Throughput::Elements(*ops));
                let id = BenchmarkId::new(format!("{name}/{contention:?}"), tasks);
                group.bench_function(id, |b| {
                    b.to_async(&rt).iter_custom(|iters| {
                        let backend = backend.clone();
                        let ops = *ops;
                        async move {
                            let mut total = Duration::ZERO;
                            for _ in 0..iters {
                                total += holds(&backend, contention, tasks, ops).await;
                            }
                            total
                        }
                    })
                });
            }
        }
    }
    group.finish();
    let mut group = c.benchmark_group("settle");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for (name, backend, ops) in backends.iter().filter(|(n, ..)| !n.contains("global")) {
        let ops = (*ops / 4).max(50);
        for (what, confirm) in [("confirm", true), ("cancel", false)] {
            for tasks in [1u64, 8, 64] {
                group.throughput(Throughput::Elements(ops));
                group.bench_function(BenchmarkId::new(format!("{name}/{what}"), tasks), |b| {
                    b.to_async(&rt).iter_custom(|iters| {
                        let store = backend.store().clone();
                        async move {
                            let mut total = Duration::ZERO;
                            for _ in 0..iters {
                                total += settle(&store, confirm, tasks, ops).await;
                            }
                            total
                        }
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, strategies);
criterion_main!(benches);
