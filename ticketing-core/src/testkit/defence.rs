//! A store's last line of defence against a double sale, met by a provider payment: a capture
//! settled when the schema finds a seat already sold under another reservation (a sales row the
//! seat rows do not show). The settle must not fail forever with the money kept: the capture is
//! refunded, the hold released, nothing left pending, and the seat stays sold (never offered
//! again). For SQL stores, whose tests inject the conflicting sale row.

use std::future::Future;
use std::sync::Arc;

use crate::domain::{ReservationStatus, SeatStatus};
use crate::ids::{AttemptId, PaymentId, ReservationId, SeatId};
use crate::provider::{
    AttemptKind, BeginPaymentCommand, ChargeOutcome, ChargeSettled, RefundReason,
    SettleChargeCommand,
};
use crate::store::TicketStore;
use crate::testkit::{Harness, TestBackend};

/// Run the case on `store`; `sell_elsewhere(seat, reservation)` writes a sales row of `seat`
/// for `reservation` behind the store's back.
pub async fn a_capture_that_meets_a_sold_seat_is_refunded<F, Fut>(
    store: Arc<dyn TicketStore>,
    sell_elsewhere: F,
) where
    F: FnOnce(SeatId, ReservationId) -> Fut,
    Fut: Future<Output = ()>,
{
    let h = Harness::new(TestBackend {
        store: store.clone(),
        queue: None,
    })
    .await;
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
    sell_elsewhere(h.seats[0], stranger.id).await;
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
    assert!(
        !attempts
            .iter()
            .any(|a| a.kind == AttemptKind::Charge && a.is_pending()),
        "the charge is settled"
    );
    assert_eq!(
        h.statuses(&[h.seats[0]]).await,
        [SeatStatus::Sold],
        "a seat the sales table gives to another reservation is not offered again"
    );
}
