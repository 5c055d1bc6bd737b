//! Fencing tokens: a stale lock holder's write is refused by the store.

use super::ttl;
use crate::domain::SeatStatus;
use crate::error::ErrorCode;
use crate::ids::{ReservationId, UserId};
use crate::store::CancelCommand;
use crate::testkit::{Harness, TestBackend, assert_code};

/// A write carrying a fencing token older than one a seat accepted is `lock_lost` and changes
/// nothing; the current token and unfenced writes go through.
pub async fn stale_fencing_tokens_are_refused(b: TestBackend) {
    use crate::ids::FencingToken;
    use crate::store::HoldCommand;
    let h = Harness::new(b).await;
    let seat = h.seats[0];
    let hold = |user: UserId, fence: u64| HoldCommand {
        reservation_id: ReservationId::new(),
        user_id: user,
        option_id: h.option,
        seat_ids: vec![seat, h.seats[1]],
        now: h.now(),
        expires_at: h.now() + ttl(),
        max_seats_per_user: None,
        idempotency: None,
        fence: Some(FencingToken(fence)),
    };
    let cancel = |r: ReservationId, user: UserId, fence: u64| CancelCommand {
        reservation_id: r,
        user_id: user,
        now: h.now(),
        idempotency: None,
        fence: Some(FencingToken(fence)),
    };
    let r = h
        .store
        .hold(hold(h.user(1), 7))
        .await
        .expect("hold with token 7");
    assert_code(
        h.store.cancel(cancel(r.id, h.user(1), 6)).await,
        ErrorCode::LockLost,
    );
    assert_eq!(h.statuses(&[seat]).await, vec![SeatStatus::Held]);
    h.store
        .cancel(cancel(r.id, h.user(1), 8))
        .await
        .expect("cancel with token 8");
    assert_code(h.store.hold(hold(h.user(2), 7)).await, ErrorCode::LockLost);
    assert_eq!(
        h.available().await,
        60,
        "the refused hold left nothing behind"
    );
    h.store
        .hold(hold(h.user(2), 8))
        .await
        .expect("the current token writes");
}
