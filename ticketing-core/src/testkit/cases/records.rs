//! Expiry, the outbox and the read models that follow the writes.

use super::ttl;
use crate::domain::{EventKind, ReservationStatus, SeatStatus};
use crate::money::Points;
use crate::service::CancelRequest;
use crate::testkit::{Harness, PRICE, TestBackend};
use chrono::Duration;
use std::collections::HashSet;

/// `expire_due` marks due holds expired once, frees seats in storage and emits events.
pub async fn expire_due_moves_holds_and_emits_events(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(5_000)).await;
    let a = h.hold(u, &[h.seats[0]]).await.expect("hold");
    let bb = h
        .hold(h.user(2), &[h.seats[1], h.seats[2]])
        .await
        .expect("hold");
    let paid = h.hold(h.user(3), &[h.seats[3]]).await.expect("hold");
    h.charge(h.user(3), PRICE).await;
    h.pay(h.user(3), paid.id).await.expect("pay");
    assert!(
        h.store
            .expire_due(h.now(), 100)
            .await
            .expect("sweep")
            .iter()
            .all(|id| *id != a.id)
    );
    h.clock.advance(ttl());
    let expired: HashSet<_> = h
        .store
        .expire_due(h.now(), 100)
        .await
        .expect("sweep")
        .into_iter()
        .collect();
    assert!(expired.contains(&a.id) && expired.contains(&bb.id) && !expired.contains(&paid.id));
    let again = h.store.expire_due(h.now(), 100).await.expect("sweep again");
    assert!(
        !again.contains(&a.id) && !again.contains(&bb.id),
        "each hold expires once"
    );
    for id in [a.id, bb.id] {
        let r = h.store.reservation(id, h.now()).await.expect("read");
        assert_eq!(r.status, ReservationStatus::Expired);
    }
    let events = h.store.outbox_read(0, 10_000).await.expect("outbox");
    let expired_events: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.event.kind {
            EventKind::HoldExpired { reservation_id } => Some(*reservation_id),
            _ => None,
        })
        .collect();
    assert!(expired_events.contains(&a.id) && expired_events.contains(&bb.id));
    assert_eq!(expired_events.iter().filter(|id| **id == a.id).count(), 1);
    assert_eq!(h.statuses(&[h.seats[3]]).await, vec![SeatStatus::Sold]);
    assert_eq!(h.available().await, 59);
}

/// Every change appends one event in the same step, in order; acknowledged events are gone.
pub async fn outbox_records_changes_in_order_and_acks(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(5_000)).await;
    let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
    let p = h.pay(u, r.id).await.expect("pay");
    h.service
        .cancel(CancelRequest::new(u, r.id))
        .await
        .expect("cancel");
    let _ = h.hold(h.user(2), &[h.seats[1], h.seats[1]]).await; // rejected: no event
    let events = h.store.outbox_read(0, 10_000).await.expect("outbox");
    let mine: Vec<_> = events
        .iter()
        .filter(|e| match &e.event.kind {
            EventKind::PointsCharged { user_id, .. } => *user_id == u,
            other => other.reservation_id() == Some(r.id),
        })
        .collect();
    assert_eq!(mine.len(), 4, "{mine:?}");
    assert!(mine.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(matches!(
        mine[0].event.kind,
        EventKind::PointsCharged {
            amount: Points(5_000),
            ..
        }
    ));
    assert!(
        matches!(&mine[1].event.kind, EventKind::HoldPlaced { seat_ids, .. } if *seat_ids == vec![h.seats[0]])
    );
    assert!(
        matches!(mine[2].event.kind, EventKind::HoldPaid { payment_id, .. } if payment_id == p.id)
    );
    assert!(matches!(
        mine[3].event.kind,
        EventKind::ReservationCancelled {
            refunded: Points(1_000),
            ..
        }
    ));
    let ids: HashSet<_> = events.iter().map(|e| e.event.id).collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
    let after = h
        .store
        .outbox_read(mine[1].seq, 10_000)
        .await
        .expect("read after");
    assert!(after.iter().all(|e| e.seq > mine[1].seq));
    let acked: Vec<u64> = [mine[0].seq, mine[2].seq, u64::MAX].into();
    h.store.outbox_ack(&acked).await.expect("ack");
    let left: Vec<u64> = h
        .store
        .outbox_read(0, 10_000)
        .await
        .expect("outbox")
        .iter()
        .map(|e| e.seq)
        .collect();
    assert!(
        !left.contains(&mine[0].seq) && !left.contains(&mine[2].seq),
        "acknowledged events are no longer pending"
    );
    assert!(
        left.contains(&mine[1].seq) && left.contains(&mine[3].seq),
        "exactly the acknowledged ones: a gap stays pending"
    );
}

/// A user's reservations come newest first, with effective statuses.
pub async fn user_reservations_newest_first(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(h.hold(u, &[h.seats[i]]).await.expect("hold").id);
        h.clock.advance(Duration::seconds(1));
    }
    h.hold(h.user(2), &[h.seats[9]])
        .await
        .expect("someone else");
    let list = h.store.user_reservations(u, h.now()).await.expect("list");
    ids.reverse();
    assert_eq!(list.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    h.clock.advance(ttl());
    let list = h.service.user_reservations(u).await.expect("list");
    assert!(list.iter().all(|r| r.status == ReservationStatus::Expired));
}

/// Available seat counts follow holds and sales, and expired holds count as available.
pub async fn option_counts_follow_holds_and_expiry(b: TestBackend) {
    let h = Harness::new(b).await;
    let u = h.user(1);
    h.charge(u, Points(5_000)).await;
    h.hold(u, &[h.seats[0], h.seats[1]]).await.expect("hold");
    let sold = h.hold(h.user(2), &[h.seats[2]]).await.expect("hold");
    h.charge(h.user(2), PRICE).await;
    h.pay(h.user(2), sold.id).await.expect("pay");
    let count = |o: &[crate::domain::OptionSummary]| {
        o.iter()
            .find(|x| x.option.id == h.option)
            .map(|x| x.available_seats)
    };
    let options = h.store.options(h.concert, h.now()).await.expect("options");
    assert_eq!(count(&options), Some(57));
    h.clock.advance(ttl());
    let options = h.store.options(h.concert, h.now()).await.expect("options");
    assert_eq!(count(&options), Some(59));
}
