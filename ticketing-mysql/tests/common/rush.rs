//! A rush of buyers that keeps going through a fault, and the books checked afterwards from
//! the database itself.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::Row;
use ticketing_core::{
    ChargeRequest, ErrorCode, HoldRequest, OptionId, PayRequest, Points, SeatId, TicketStore,
    TicketingService, UserId,
};

/// What the buyers of a rush saw.
#[derive(Debug, Default)]
pub struct RushReport {
    /// Final error codes (after any retries), counted.
    pub errors: HashMap<ErrorCode, u64>,
    /// `unavailable` answers that were retried.
    pub retries: u64,
    /// Buyers who paid.
    pub paid: u64,
}

/// How the buyers of a rush behave.
#[derive(Debug, Clone, Copy)]
pub struct Rush {
    /// Buyers `1..=buyers`, buyer `u` wanting seat `u % seats + 1` of option 1.
    pub buyers: i64,
    /// Seats of option 1.
    pub seats: i64,
    /// Buyers start evenly spread over this time, so requests are in flight all along.
    pub spread: Duration,
    /// Tries of each step while the answer is `unavailable` (1: no retry). Retries reuse the
    /// step's idempotency key, so a step that took effect but whose answer was lost is not
    /// done twice.
    pub tries: u32,
}

impl Rush {
    /// Run the rush on `service`: each buyer charges 5,000 points, holds one seat and pays.
    pub async fn run(self, service: &TicketingService) -> RushReport {
        let tasks: Vec<_> = (1..=self.buyers)
            .map(|u| {
                let service = service.clone();
                let start = self.spread.mul_f64(u as f64 / self.buyers as f64);
                tokio::spawn(async move {
                    tokio::time::sleep(start).await;
                    self.buyer(&service, UserId(u)).await
                })
            })
            .collect();
        let mut report = RushReport::default();
        for t in tasks {
            let (outcome, retries) = t.await.expect("buyer");
            report.retries += retries;
            match outcome {
                Ok(()) => report.paid += 1,
                Err(code) => *report.errors.entry(code).or_default() += 1,
            }
        }
        report
    }

    async fn buyer(self, service: &TicketingService, user: UserId) -> (Result<(), ErrorCode>, u64) {
        let mut retries = 0;
        let key = |step: &str| Some(format!("{step}-{}", user.0));
        let charge_key = key("charge");
        let charged = self
            .retry(&mut retries, || {
                service.charge(
                    ChargeRequest::new(user, Points(5_000))
                        .with_idempotency_key(charge_key.clone()),
                )
            })
            .await;
        if let Err(code) = charged {
            return (Err(code), retries);
        }
        let seat = SeatId(user.0 % self.seats + 1);
        let held = self
            .retry(&mut retries, || {
                service.hold(
                    HoldRequest::new(user, OptionId(1), vec![seat])
                        .with_idempotency_key(key("hold")),
                )
            })
            .await;
        let reservation = match held {
            Ok(r) => r,
            Err(code) => return (Err(code), retries),
        };
        let paid = self
            .retry(&mut retries, || {
                service.pay(PayRequest::new(user, reservation.id).with_idempotency_key(key("pay")))
            })
            .await;
        (paid.map(|_| ()), retries)
    }

    async fn retry<T, F, Fut>(self, retries: &mut u64, mut step: F) -> Result<T, ErrorCode>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ticketing_core::Result<T>>,
    {
        let mut wait = Duration::from_millis(50);
        for attempt in 1..=self.tries {
            match step().await {
                Ok(v) => return Ok(v),
                Err(e)
                    if matches!(e.code(), ErrorCode::Unavailable | ErrorCode::OutcomeUnknown)
                        && attempt < self.tries =>
                {
                    *retries += 1;
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_millis(800));
                }
                Err(e) => return Err(e.code()),
            }
        }
        unreachable!("the last try returns")
    }
}

/// Wait (at most 15 s) until the store answers again; how long that took.
pub async fn wait_healthy(store: &dyn TicketStore) -> Duration {
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < Duration::from_secs(15) {
        match (store.health().await, store.balance(UserId(1)).await) {
            (Ok(()), Ok(_)) => return started.elapsed(),
            (Err(e), _) | (_, Err(e)) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let source = last
        .as_ref()
        .and_then(std::error::Error::source)
        .map(|s| s.to_string());
    panic!("the pool did not recover within 15 s: {last:?} ({source:?})");
}

/// The books after a fault: no seat sold twice, every sold seat backed by one confirmed
/// reservation, one payment and one sale record; the points debited are the price of the seats
/// sold; every wallet equals its ledger; every payment debited once. Returns the number of
/// payments.
pub async fn assert_books(conn: &mut sqlx::MySqlConnection) -> i64 {
    super::assert_no_seat_sold_twice(&mut *conn).await;
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM seats WHERE status = 'sold') AS sold, \
                (SELECT COUNT(*) FROM seat_sales) AS sales, \
                (SELECT CAST(COALESCE(SUM(seat_count), 0) AS SIGNED) FROM reservations \
                   WHERE status = 'confirmed') AS confirmed, \
                (SELECT COUNT(*) FROM payments) AS payments",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("query");
    let (sold, sales, confirmed, payments): (i64, i64, i64, i64) = (
        row.get("sold"),
        row.get("sales"),
        row.get("confirmed"),
        row.get("payments"),
    );
    assert_eq!((sold, sales, payments), (confirmed, confirmed, confirmed));
    let unsold_sales: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM seat_sales x JOIN seats s ON s.id = x.seat_id \
         WHERE s.status <> 'sold' OR s.reservation_id <> x.reservation_id",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("query");
    assert_eq!(unsold_sales, 0, "every sale record is its seat's owner");
    let unbalanced: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM wallets w WHERE w.balance <> COALESCE((SELECT SUM(CASE kind \
           WHEN 'charge' THEN amount WHEN 'payment' THEN -amount ELSE amount END) \
           FROM wallet_ledger l WHERE l.user_id = w.user_id), 0)",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("query");
    assert_eq!(
        unbalanced, 0,
        "every wallet equals charges - payments + refunds"
    );
    let paid_total: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(amount), 0) AS SIGNED) FROM payments")
            .fetch_one(&mut *conn)
            .await
            .expect("query");
    let debits: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS SIGNED) FROM wallet_ledger WHERE kind = 'payment'",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("query");
    assert_eq!(
        paid_total, debits,
        "every payment debited once, every debit paid for"
    );
    let sold_price: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(price), 0) AS SIGNED) FROM seats WHERE status = 'sold'",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("query");
    assert_eq!(
        debits, sold_price,
        "the points debited are the price of the seats sold"
    );
    payments
}
