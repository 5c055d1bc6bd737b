//! Sale windows: holds and payments only while an option is on sale.

use chrono::{DateTime, Duration, Utc};

use crate::domain::{Catalog, ReservationStatus, Seat, SeatStatus, ShowOption};
use crate::error::ErrorCode;
use crate::ids::{OptionId, SeatId};
use crate::money::Points;
use crate::store::{CancelCommand, HoldCommand};
use crate::testkit::{Harness, PRICE, TestBackend, assert_code, hold_request};

/// Seed option `n` of the harness's concert (3 seats priced [`PRICE`]) with this window.
async fn option_with_window(
    h: &Harness,
    n: i64,
    starts_at: DateTime<Utc>,
    opens_at: Option<DateTime<Utc>>,
    closes_at: Option<DateTime<Utc>>,
) -> (OptionId, Vec<SeatId>) {
    option_with_seats(h, n, 3, starts_at, opens_at, closes_at).await
}

/// Seed option `n` of the harness's concert with `count` seats (below 10,000) priced [`PRICE`].
async fn option_with_seats(
    h: &Harness,
    n: i64,
    count: i64,
    starts_at: DateTime<Utc>,
    opens_at: Option<DateTime<Utc>>,
    closes_at: Option<DateTime<Utc>>,
) -> (OptionId, Vec<SeatId>) {
    let option = OptionId(h.concert.0 + 600_000 + n * 10_000);
    let seats: Vec<SeatId> = (0..count).map(|i| SeatId(option.0 + 1 + i)).collect();
    let catalog = Catalog {
        concerts: vec![],
        options: vec![ShowOption {
            sale_opens_at: opens_at,
            sale_closes_at: closes_at,
            ..ShowOption::new(option, h.concert, starts_at)
        }],
        seats: seats
            .iter()
            .map(|id| Seat {
                id: *id,
                option_id: option,
                seat_no: format!("S-{id}"),
                grade: "R".into(),
                price: PRICE,
            })
            .collect(),
    };
    h.store.seed(&catalog).await.expect("seeding an option");
    (option, seats)
}

async fn status_of(h: &Harness, option: OptionId, seat: SeatId) -> SeatStatus {
    let seats = h.store.seats(option, h.now()).await.expect("seat map");
    seats
        .iter()
        .find(|v| v.seat.id == seat)
        .map(|v| v.status)
        .expect("seat of the option")
}

/// Before the sale opens a hold is `sale_not_open`; from the opening instant holds and
/// payments go through; from the closing instant a hold is `sale_closed`, and so is paying a
/// hold made during the sale, which charges nothing and leaves the hold as it was.
pub async fn sale_window_bounds_holds_and_payments(b: TestBackend) {
    let h = Harness::new(b).await;
    let t0 = h.now();
    let (opens, closes) = (t0 + Duration::hours(1), t0 + Duration::hours(2));
    let starts = t0 + Duration::days(3);
    let (option, seats) = option_with_window(&h, 1, starts, Some(opens), Some(closes)).await;
    let stored = h.store.option(option).await.expect("option");
    assert_eq!(
        (stored.sale_opens_at, stored.sale_closes_at),
        (Some(opens), Some(closes))
    );
    let u = h.user(1);
    h.charge(u, Points(10_000)).await;
    let hold = |seat: SeatId| h.service.hold(hold_request(u, option, &[seat]));

    assert_code(hold(seats[0]).await, ErrorCode::SaleNotOpen);
    h.clock.advance(Duration::hours(1) - Duration::seconds(1));
    assert_code(hold(seats[0]).await, ErrorCode::SaleNotOpen);
    assert_eq!(status_of(&h, option, seats[0]).await, SeatStatus::Available);
    assert!(
        h.store
            .user_reservations(u, h.now())
            .await
            .expect("list")
            .is_empty()
    );

    h.clock.advance(Duration::seconds(1)); // the opening instant
    let first = hold(seats[0]).await.expect("a hold once the sale opens");
    h.pay(u, first.id).await.expect("a payment during the sale");

    h.clock.advance(Duration::hours(1) - Duration::minutes(1));
    let second = hold(seats[1])
        .await
        .expect("a hold a minute before the close");
    h.clock.advance(Duration::minutes(1)); // the closing instant, before the hold's end
    assert_code(h.pay(u, second.id).await, ErrorCode::SaleClosed);
    assert_eq!(h.balance(u).await, Points(10_000 - PRICE.0));
    let kept = h.store.reservation(second.id, h.now()).await.expect("read");
    assert_eq!(kept.status, ReservationStatus::Held);
    assert_eq!(status_of(&h, option, seats[1]).await, SeatStatus::Held);
    assert_code(hold(seats[2]).await, ErrorCode::SaleClosed);
    assert_eq!(status_of(&h, option, seats[2]).await, SeatStatus::Available);
}

/// An option with no closing instant is on sale until its show starts; one whose closing
/// instant is after the start stays on sale until then.
pub async fn a_sale_ends_when_the_show_starts_unless_told_otherwise(b: TestBackend) {
    let h = Harness::new(b).await;
    let t0 = h.now();
    let starts = t0 + Duration::hours(1);
    let (plain, plain_seats) = option_with_window(&h, 2, starts, None, None).await;
    let later = Some(starts + Duration::hours(1));
    let (late, late_seats) = option_with_window(&h, 3, starts, None, later).await;
    let u = h.user(1);
    let hold = |option, seat| h.service.hold(hold_request(u, option, &[seat]));
    hold(plain, plain_seats[0]).await.expect("before the show");
    h.clock.advance(Duration::hours(1));
    assert_code(hold(plain, plain_seats[1]).await, ErrorCode::SaleClosed);
    hold(late, late_seats[0])
        .await
        .expect("after the start, before its own close");
    h.clock.advance(Duration::hours(1));
    assert_code(hold(late, late_seats[1]).await, ErrorCode::SaleClosed);
}

/// Closing a sale (a window that ends now) refuses the next hold and the payment of a live
/// hold; opening it again lets both through. A window that ends before it opens, or of an
/// unknown option, is refused and changes nothing; so is a catalog carrying one.
pub async fn closing_a_sale_stops_holds_and_payments_at_once(b: TestBackend) {
    let h = Harness::new(b).await;
    let (option, seats) = option_with_window(&h, 4, h.now() + Duration::days(2), None, None).await;
    let u = h.user(1);
    h.charge(u, Points(10_000)).await;
    let hold = |seat: SeatId| h.service.hold(hold_request(u, option, &[seat]));
    let live = hold(seats[0]).await.expect("on sale");

    let closed = h
        .store
        .set_sale_window(option, None, Some(h.now()))
        .await
        .expect("closing the sale");
    assert_eq!(closed.sale_closes_at, Some(h.now()));
    assert_eq!(h.store.option(option).await.expect("option"), closed);
    assert_code(hold(seats[1]).await, ErrorCode::SaleClosed);
    assert_code(h.pay(u, live.id).await, ErrorCode::SaleClosed);
    assert_eq!(h.balance(u).await, Points(10_000));

    let bad = h.now() + Duration::hours(2);
    assert_code(
        h.store
            .set_sale_window(option, Some(bad), Some(bad - Duration::hours(1)))
            .await,
        ErrorCode::InvalidRequest,
    );
    assert_eq!(h.store.option(option).await.expect("option"), closed);
    assert_code(
        h.store
            .set_sale_window(OptionId(option.0 + 9), None, None)
            .await,
        ErrorCode::NotFound,
    );

    h.store
        .set_sale_window(option, None, None)
        .await
        .expect("opening it again");
    h.pay(u, live.id).await.expect("the live hold is paid");
    hold(seats[1]).await.expect("and holds are taken again");

    let inverted = Catalog {
        concerts: vec![],
        options: vec![ShowOption {
            sale_opens_at: Some(bad),
            sale_closes_at: Some(bad - Duration::hours(1)),
            ..ShowOption::new(
                OptionId(option.0 + 5),
                h.concert,
                h.now() + Duration::days(2),
            )
        }],
        seats: vec![],
    };
    assert_code(h.store.seed(&inverted).await, ErrorCode::InvalidRequest);
    assert_code(
        h.store.option(OptionId(option.0 + 5)).await,
        ErrorCode::NotFound,
    );
}

/// Moving the opening later leaves a live hold payable (a payment checks only the end); a
/// confirmed reservation is not cancelled (nor refunded) once its show has started, a hold
/// still is; closing through the service never moves an earlier end later.
pub async fn payments_check_the_end_and_refunds_stop_at_the_show(b: TestBackend) {
    let h = Harness::new(b).await;
    let starts = h.now() + Duration::hours(2);
    let (option, seats) = option_with_window(&h, 5, starts, None, None).await;
    let u = h.user(1);
    h.charge(u, Points(10_000)).await;
    let hold = |seat: SeatId| h.service.hold(hold_request(u, option, &[seat]));
    let first = hold(seats[0]).await.expect("on sale");
    let later = h.now() + Duration::hours(1);
    h.store
        .set_sale_window(option, Some(later), None)
        .await
        .expect("moving the opening later");
    assert_code(hold(seats[1]).await, ErrorCode::SaleNotOpen);
    h.pay(u, first.id).await.expect("a live hold stays payable");
    h.store
        .set_sale_window(option, None, None)
        .await
        .expect("open again");
    let second = hold(seats[1]).await.expect("on sale again");

    h.clock.advance(Duration::hours(2) - Duration::minutes(1));
    let last = hold(seats[2]).await.expect("a minute before the show");
    h.clock.advance(Duration::minutes(1)); // the show starts
    let cancel = |id| CancelCommand {
        reservation_id: id,
        user_id: u,
        now: h.now(),
        idempotency: None,
        fence: None,
    };
    assert_code(
        h.store.cancel(cancel(first.id)).await,
        ErrorCode::InvalidState,
    );
    assert_eq!(h.balance(u).await, Points(10_000 - PRICE.0), "no refund");
    assert_eq!(status_of(&h, option, seats[0]).await, SeatStatus::Sold);
    // The second hold began 2 hours ago: it has expired, and cancelling it is refused as ever.
    assert_code(
        h.store.cancel(cancel(second.id)).await,
        ErrorCode::InvalidState,
    );
    // A live hold is released after the start: nothing was paid, nothing is refunded.
    let released = h
        .store
        .cancel(cancel(last.id))
        .await
        .expect("a live hold is released");
    assert_eq!(released.status, ReservationStatus::Cancelled);
    assert_eq!(status_of(&h, option, seats[2]).await, SeatStatus::Available);

    let (option, _) = option_with_window(&h, 6, h.now() + Duration::days(1), None, None).await;
    let early = h.now() - Duration::minutes(1);
    h.store
        .set_sale_window(option, None, Some(early))
        .await
        .expect("closed a minute ago");
    let closed = h.service.close_sale(option).await.expect("closing again");
    assert_eq!(closed.sale_closes_at, Some(early), "an earlier end stays");
    let (option, _) = option_with_window(&h, 7, h.now() + Duration::days(1), None, None).await;
    h.store
        .set_sale_window(option, Some(h.now() + Duration::hours(1)), None)
        .await
        .expect("opening in an hour");
    let closed = h.service.close_sale(option).await.expect("closing now");
    assert_eq!(
        (closed.sale_opens_at, closed.sale_closes_at),
        (None, Some(h.now())),
        "an opening still ahead is dropped"
    );
}

/// A window change reaches every hold that has not been stored yet: holds race on an option
/// while its sale is closed, and no hold is stored after the close returned (the seats held
/// right after it are all the seats ever held). A store that reads the window before its seat
/// locks (or lets go of it before storing) lets a hold through after the close.
pub async fn closing_a_sale_stops_the_holds_in_flight(b: TestBackend) {
    const BUYERS: i64 = 8;
    const PER_BUYER: i64 = 400;
    let h = Harness::new(b).await;
    let starts = h.now() + Duration::days(1);
    let (option, seats) = option_with_seats(&h, 8, BUYERS * PER_BUYER, starts, None, None).await;
    let now = h.now();
    let tasks: Vec<_> = (0..BUYERS)
        .map(|b| {
            let store = h.store.clone();
            let user = h.user(10 + b);
            let mine: Vec<SeatId> =
                seats[(b * PER_BUYER) as usize..][..PER_BUYER as usize].to_vec();
            tokio::spawn(async move {
                let mut after_close = 0;
                for seat in mine {
                    let cmd = HoldCommand {
                        reservation_id: crate::ids::ReservationId::new(),
                        user_id: user,
                        option_id: option,
                        seat_ids: vec![seat],
                        now,
                        expires_at: now + Duration::minutes(5),
                        max_seats_per_user: None,
                        idempotency: None,
                        fence: None,
                    };
                    match store.hold(cmd).await {
                        Ok(_) => {}
                        Err(e) if e.code() == ErrorCode::SaleClosed => {
                            // Keep trying a little after the close: none may pass.
                            after_close += 1;
                            if after_close > 20 {
                                break;
                            }
                        }
                        // Under NOWAIT a seat the closing change has locked is refused at once.
                        Err(e) if e.code() == ErrorCode::SeatUnavailable => {}
                        Err(e) => panic!("a hold failed: {e}"),
                    }
                    // Paced, so holds are still arriving when the sale closes.
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    h.store
        .set_sale_window(option, None, Some(now))
        .await
        .expect("closing");
    let held_at_close = held(&h, option).await;
    for t in tasks {
        t.await.expect("a buyer");
    }
    let held_after = held(&h, option).await;
    assert!(held_at_close > 0, "holds went through before the close");
    assert_eq!(
        held_after,
        held_at_close,
        "{} holds were stored after the close returned",
        held_after - held_at_close
    );
}

async fn held(h: &Harness, option: OptionId) -> usize {
    let map = h.store.seats(option, h.now()).await.expect("seat map");
    map.iter()
        .filter(|v| v.status != SeatStatus::Available)
        .count()
}
