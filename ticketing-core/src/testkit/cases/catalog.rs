//! The catalog: what was seeded is read back; seeding is all or nothing.

use crate::domain::{Catalog, Concert, Seat, SeatStatus};
use crate::error::ErrorCode;
use crate::ids::ConcertId;
use crate::money::Points;
use crate::testkit::{Harness, PRICE, TestBackend, assert_code};

/// The catalog reads return what was seeded; unknown ids are `not_found`.
pub async fn catalog_lists_what_was_seeded(b: TestBackend) {
    let h = Harness::new(b).await;
    let concerts = h.store.concerts().await.expect("concerts");
    assert!(concerts.iter().any(|c| c.id == h.concert));
    assert_eq!(
        h.store.concert(h.concert).await.expect("concert").id,
        h.concert
    );
    let options = h.store.options(h.concert, h.now()).await.expect("options");
    let ids: Vec<_> = options.iter().map(|o| o.option.id).collect();
    assert_eq!(ids, vec![h.option, h.other_option]);
    assert_eq!(
        (options[0].total_seats, options[0].available_seats),
        (60, 60)
    );
    assert_eq!(
        (options[1].total_seats, options[1].available_seats),
        (10, 10)
    );
    let seats = h.store.seats(h.option, h.now()).await.expect("seats");
    assert_eq!(seats.iter().map(|s| s.seat.id).collect::<Vec<_>>(), h.seats);
    assert!(
        seats
            .iter()
            .all(|s| s.status == SeatStatus::Available && s.seat.price == PRICE)
    );
    let unknown = ConcertId(h.concert.0 + 999_999);
    assert_code(h.store.concert(unknown).await, ErrorCode::NotFound);
    assert_code(h.store.options(unknown, h.now()).await, ErrorCode::NotFound);
    assert_code(
        h.store
            .seats(crate::ids::OptionId(h.option.0 + 999_999), h.now())
            .await,
        ErrorCode::NotFound,
    );
}

/// A catalog that reuses a taken id is rejected and adds nothing.
pub async fn seeding_taken_ids_is_rejected_whole(b: TestBackend) {
    let h = Harness::new(b).await;
    let new_concert = ConcertId(h.concert.0 + 900_000);
    let catalog = Catalog {
        concerts: vec![Concert {
            id: new_concert,
            title: "Clash".into(),
            venue: "Hall".into(),
        }],
        options: vec![],
        seats: vec![Seat {
            id: h.seats[0],
            option_id: h.option,
            seat_no: "dup".into(),
            grade: "R".into(),
            price: Points(1),
        }],
    };
    assert_code(h.store.seed(&catalog).await, ErrorCode::InvalidRequest);
    assert_code(h.store.concert(new_concert).await, ErrorCode::NotFound);
    assert_eq!(
        h.store.seats(h.option, h.now()).await.expect("seats").len(),
        60
    );
}
