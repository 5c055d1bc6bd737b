//! `FencedStore` against mockall doubles: what reaches the lock manager and the store.

use std::sync::Arc;

use chrono::{Duration, Utc};

use super::*;
use crate::domain::ReservationStatus;
use crate::error::ErrorCode;
use crate::lock::MockLockManager;
use crate::store::MockTicketStore;

fn theirs() -> Reservation {
    Reservation {
        id: ReservationId::new(),
        user_id: UserId(99),
        option_id: OptionId(10),
        seat_ids: vec![SeatId(1), SeatId(2)],
        status: ReservationStatus::Held,
        amount: Points(200),
        expires_at: Utc::now() + Duration::minutes(5),
        created_at: Utc::now(),
        payment_id: None,
        refunded_amount: Points::ZERO,
    }
}

/// Paying or cancelling someone else's reservation is refused before any lease is taken, so
/// it cannot lease (and delay) the owner's seats.
#[tokio::test]
async fn someone_elses_reservation_is_refused_before_any_lease() {
    let r = theirs();
    let id = r.id;
    let mut store = MockTicketStore::new();
    store
        .expect_reservation()
        .returning(move |_, _| Ok(r.clone()));
    store.expect_pay().never();
    store.expect_cancel().never();
    let mut locks = MockLockManager::new();
    locks.expect_try_acquire().never();
    locks.expect_try_acquire_untaken().never();
    let fenced = FencedStore::new(Arc::new(store), Arc::new(locks), Duration::seconds(5));
    let pay = fenced
        .pay(PayCommand {
            reservation_id: id,
            user_id: UserId(7),
            now: Utc::now(),
            idempotency: None,
            fence: None,
        })
        .await;
    assert_eq!(pay.expect_err("forbidden").code(), ErrorCode::Forbidden);
    let cancel = fenced
        .cancel(CancelCommand {
            reservation_id: id,
            user_id: UserId(7),
            now: Utc::now(),
            idempotency: None,
            fence: None,
        })
        .await;
    assert_eq!(cancel.expect_err("forbidden").code(), ErrorCode::Forbidden);
}
