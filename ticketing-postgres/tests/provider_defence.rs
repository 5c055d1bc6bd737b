//! A capture settled when the schema's last line of defence finds a seat already sold under
//! another reservation (a row in `seat_sales` that the seat table does not show): the settle
//! must not fail forever with the money kept. It is refunded, the hold released, and nothing is
//! pending afterwards.

mod common;

use ticketing_core::provider::{
    AttemptKind, BeginPaymentCommand, ChargeOutcome, ChargeSettled, RefundReason,
    SettleChargeCommand,
};
use ticketing_core::testkit::{Harness, TestBackend};
use ticketing_core::{AttemptId, PaymentId, ReservationStatus, TicketStore};
use ticketing_postgres::{PgConfig, PgStore};

#[tokio::test]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn a_capture_that_meets_a_sold_seat_is_refunded_not_stuck() {
    let config = PgConfig::default();
    let Some(pool) = common::fresh_pool(&config).await else {
        return;
    };
    let store = PgStore::new(pool.clone(), config);
    let h = Harness::new(TestBackend::store_only(store.clone())).await;
    let (buyer, other) = (h.user(1), h.user(2));
    let r = h.hold(buyer, &[h.seats[0]]).await.expect("hold");
    // Another reservation (of another seat) to stand in the sales table for the buyer's seat.
    let stranger = h.hold(other, &[h.seats[1]]).await.expect("other hold");
    let attempt = store
        .begin_provider_payment(BeginPaymentCommand {
            reservation_id: r.id,
            user_id: buyer,
            now: h.now(),
            bound: chrono::Duration::minutes(2),
            attempt_id: AttemptId::new(),
            idempotency: None,
        })
        .await
        .expect("begin");
    sqlx::query("INSERT INTO seat_sales (seat_id, reservation_id) VALUES ($1, $2)")
        .bind(h.seats[0].0)
        .bind(stranger.id.0)
        .execute(&pool)
        .await
        .expect("a conflicting sale");
    let settled = store
        .settle_charge(SettleChargeCommand {
            attempt_id: attempt.id,
            outcome: ChargeOutcome::Captured {
                reference: "ch".into(),
            },
            now: h.now(),
            payment_id: PaymentId::new(),
            refund_id: AttemptId::new(),
        })
        .await
        .expect("settled, not failed");
    let ChargeSettled::RefundDue(refund) = settled else {
        panic!("expected a refund, got {settled:?}");
    };
    assert_eq!(refund.reason, Some(RefundReason::SeatsNotKept));
    let now = store.reservation(r.id, h.now()).await.expect("read");
    assert_eq!(now.status, ReservationStatus::Cancelled);
    let attempts = store.reservation_attempts(r.id).await.expect("attempts");
    assert_eq!(
        attempts
            .iter()
            .filter(|a| a.kind == AttemptKind::Charge && a.is_pending())
            .count(),
        0,
        "the charge is settled"
    );
}
