//! The ticket rush on the embedded memory store: many buyers, few seats, one table of results.
//!
//! ```sh
//! cargo run --release --example rush -- --buyers 20000 --seats 1000 --strategy optimistic
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use ticketing::memory::{MemoryStore, Strategy};
use ticketing::{
    ErrorCode, HoldRequest, OptionId, PayRequest, Points, ReservationStatus, SeatId, SeatStatus,
    ServiceConfig, TicketStore, TicketingService, UserId, demo_catalog,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StrategyArg {
    Pessimistic,
    Optimistic,
}

/// Simulate a ticket rush on the memory store and check the books afterwards.
#[derive(Debug, Parser)]
struct Args {
    /// Buyers arriving at once.
    #[arg(long, default_value_t = 20_000)]
    buyers: u32,
    /// Seats on sale (one show option).
    #[arg(long, default_value_t = 1_000)]
    seats: u32,
    /// Buyers in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: u32,
    /// Seats each buyer tries to hold together.
    #[arg(long, default_value_t = 1)]
    seats_per_buyer: u32,
    /// Share of successful holds that are paid (the rest are cancelled).
    #[arg(long, default_value_t = 0.9)]
    pay_ratio: f64,
    /// How seat writes are guarded.
    #[arg(long, value_enum, default_value_t = StrategyArg::Optimistic)]
    strategy: StrategyArg,
    /// Stop starting new buyers after this many seconds.
    #[arg(long, default_value_t = 30)]
    max_seconds: u64,
}

#[derive(Default)]
struct Counters {
    holds: AtomicU64,
    conflicts: AtomicU64,
    confirms: AtomicU64,
    cancels: AtomicU64,
    other_errors: AtomicU64,
    paid: AtomicU64,
}

/// splitmix64: a tiny deterministic generator, one per buyer.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn buyer(service: &TicketingService, args: &Args, i: u32, c: &Counters) {
    let user = UserId(i64::from(i) + 1);
    let mut rng = u64::from(i).wrapping_mul(7919);
    if service.charge(user, Points(1_000_000), None).await.is_err() {
        c.other_errors.fetch_add(1, Ordering::Relaxed);
        return;
    }
    for _attempt in 0..3 {
        let first = next(&mut rng) % u64::from(args.seats.max(1));
        let seat_ids: Vec<SeatId> = (0..u64::from(args.seats_per_buyer))
            .map(|k| SeatId(((first + k) % u64::from(args.seats)) as i64 + 1))
            .collect();
        let req = HoldRequest {
            user_id: user,
            option_id: OptionId(1),
            seat_ids,
            queue_token: None,
            idempotency_key: None,
        };
        match service.hold(req).await {
            Ok(hold) => {
                c.holds.fetch_add(1, Ordering::Relaxed);
                let pay = (next(&mut rng) % 10_000) as f64 / 10_000.0 < args.pay_ratio;
                let result = if pay {
                    service
                        .pay(PayRequest {
                            user_id: user,
                            reservation_id: hold.id,
                            queue_token: None,
                            idempotency_key: None,
                        })
                        .await
                        .map(|p| {
                            c.paid.fetch_add(p.amount.0 as u64, Ordering::Relaxed);
                            &c.confirms
                        })
                } else {
                    service.cancel(user, hold.id).await.map(|_| &c.cancels)
                };
                match result {
                    Ok(counter) => counter.fetch_add(1, Ordering::Relaxed),
                    Err(_) => c.other_errors.fetch_add(1, Ordering::Relaxed),
                };
                return;
            }
            Err(e) if e.code() == ErrorCode::SeatUnavailable => {
                c.conflicts.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                c.other_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Arc::new(Args::parse());
    let strategy = match args.strategy {
        StrategyArg::Pessimistic => Strategy::Pessimistic,
        StrategyArg::Optimistic => Strategy::Optimistic { max_retries: 16 },
    };
    let store = Arc::new(MemoryStore::new(strategy));
    let mut catalog = demo_catalog(1, args.seats, Points(10_000));
    catalog.seats.retain(|s| s.option_id == OptionId(1));
    catalog.options.retain(|o| o.id == OptionId(1));
    store.seed(&catalog).await?;
    let service = TicketingService::new(
        store.clone(),
        ServiceConfig {
            max_seats_per_request: args.seats_per_buyer.max(1) as usize,
            max_seats_per_user: args.seats_per_buyer.max(1),
            ..ServiceConfig::default()
        },
    );
    let counters = Arc::new(Counters::default());
    let next_buyer = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_seconds);
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (service, args, counters, next_buyer) = (
                service.clone(),
                args.clone(),
                counters.clone(),
                next_buyer.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next_buyer.fetch_add(1, Ordering::Relaxed);
                    if i >= u64::from(args.buyers) || Instant::now() > deadline {
                        break;
                    }
                    buyer(&service, &args, i as u32, &counters).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let buyers_run = next_buyer
        .load(Ordering::Relaxed)
        .min(u64::from(args.buyers));

    // Check the books from the store itself.
    let now = chrono::Utc::now();
    let seats = store.seats(OptionId(1), now).await?;
    let sold = seats
        .iter()
        .filter(|s| s.status == SeatStatus::Sold)
        .count() as u64;
    let mut owners: HashMap<SeatId, u64> = HashMap::new();
    let mut balances = 0i64;
    let mut confirmed_amount = 0i64;
    for i in 0..buyers_run {
        let user = UserId(i as i64 + 1);
        balances += store.balance(user).await?.0;
        for r in store.user_reservations(user, now).await? {
            if r.status == ReservationStatus::Confirmed {
                confirmed_amount += r.amount.0;
                for s in r.seat_ids {
                    *owners.entry(s).or_default() += 1;
                }
            }
        }
    }
    let oversold = owners.values().filter(|n| **n > 1).count();
    let charged = buyers_run as i64 * 1_000_000;
    let c = &counters;
    let paid = c.paid.load(Ordering::Relaxed) as i64;
    let balanced = charged == balances + paid && paid == confirmed_amount;
    let holds = c.holds.load(Ordering::Relaxed);
    println!("ticket rush on the memory store ({:?})", args.strategy);
    println!("{:<28}{:>14}", "buyers", buyers_run);
    println!("{:<28}{:>14}", "seats", args.seats);
    println!("{:<28}{:>14}", "concurrency", args.concurrency);
    println!("{:<28}{:>14.3}", "elapsed (s)", elapsed);
    println!("{:<28}{:>14}", "holds", holds);
    println!("{:<28}{:>14.0}", "holds/s", holds as f64 / elapsed);
    println!(
        "{:<28}{:>14}",
        "conflicts (seat taken)",
        c.conflicts.load(Ordering::Relaxed)
    );
    println!(
        "{:<28}{:>14}",
        "confirms",
        c.confirms.load(Ordering::Relaxed)
    );
    println!("{:<28}{:>14}", "cancels", c.cancels.load(Ordering::Relaxed));
    println!(
        "{:<28}{:>14}",
        "other errors",
        c.other_errors.load(Ordering::Relaxed)
    );
    println!("{:<28}{:>14}", "seats sold (store)", sold);
    println!("{:<28}{:>14}", "oversold seats", oversold);
    println!("{:<28}{:>14}", "books balanced", balanced);
    if oversold > 0 || !balanced || sold != owners.len() as u64 {
        return Err("the books do not balance".into());
    }
    Ok(())
}
