//! The per-user cap counts held and sold seats, and is freed by cancel and expiry.

use super::ttl;
use crate::domain::SeatStatus;
use crate::error::ErrorCode;
use crate::money::Points;
use crate::service::CancelRequest;
use crate::testkit::{Harness, TestBackend, assert_code, hold_request};

/// The cap counts held and sold seats of one option; other options are separate.
pub async fn per_user_cap_counts_held_and_sold(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let s = &h.seats;
    h.charge(u, Points(10_000)).await;
    let first = h.hold(u, &[s[0], s[1]]).await.expect("hold 2");
    h.pay(u, first.id).await.expect("pay");
    h.hold(u, &[s[2], s[3]])
        .await
        .expect("hold 2 more: 4 in all");
    assert_code(h.hold(u, &[s[4]]).await, ErrorCode::LimitExceeded);
    assert_code(
        h.hold(h.user(2), &s[10..15]).await,
        ErrorCode::LimitExceeded,
    );
    assert_eq!(
        h.statuses(&[s[4], s[10]]).await,
        vec![SeatStatus::Available; 2]
    );
    h.service
        .hold(hold_request(u, h.other_option, &[h.other_seats[0]]))
        .await
        .expect("another option has its own cap");
}

/// Cancelled and expired reservations no longer count toward the cap.
pub async fn cap_is_freed_by_cancel_and_expiry(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let s = &h.seats;
    let a = h.hold(u, &s[0..2]).await.expect("hold");
    h.hold(u, &s[2..4]).await.expect("hold");
    assert_code(h.hold(u, &[s[4]]).await, ErrorCode::LimitExceeded);
    h.service
        .cancel(CancelRequest::new(u, a.id))
        .await
        .expect("cancel");
    h.hold(u, &s[4..6])
        .await
        .expect("cancelled seats no longer count");
    h.clock.advance(ttl());
    h.hold(u, &s[6..10])
        .await
        .expect("expired seats no longer count");
}
