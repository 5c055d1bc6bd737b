//! The decisions of whole commands: given the state a backend loaded (and locked), what the
//! command does to it. A backend loads, calls one of these, and stores what it returns; it
//! never re-states a rule. Every function is pure: ids and instants come in as arguments.

use chrono::DateTime;
use chrono::Utc;

use crate::domain::{
    Balance, EventKind, Payment, PaymentMethod, Reservation, ReservationStatus, SaleWindow, Seat,
    SeatState,
};
use crate::error::Error;
use crate::ids::{OptionId, PaymentId, SeatId};
use crate::money::Points;
use crate::rules::{
    Action, check_cancel_before_show, check_sale, check_sale_not_ended, hold_seat, release_seat,
    sell_seat, transition,
};
use crate::store::{CancelCommand, ChargeCommand, HoldCommand, PayCommand};

/// What a hold does: the new reservation, the seats' next states (in the order given) and the
/// event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldDecision {
    /// The reservation created.
    pub reservation: Reservation,
    /// The next state of each seat, in the order the seats were given.
    pub seats: Vec<SeatState>,
    /// The outbox event.
    pub event: EventKind,
}

/// What a payment does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayDecision {
    /// The reservation as confirmed.
    pub reservation: Reservation,
    /// The payment recorded.
    pub payment: Payment,
    /// The next state of each seat of the reservation, in its order.
    pub seats: Vec<SeatState>,
    /// The outbox event.
    pub event: EventKind,
}

/// What a cancel does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelDecision {
    /// The reservation as cancelled.
    pub reservation: Reservation,
    /// The owner's balance afterwards (the refund added).
    pub balance: Points,
    /// Points given back (zero for a hold).
    pub refund: Points,
    /// The next state of each seat of the reservation, in its order.
    pub seats: Vec<SeatState>,
    /// The outbox event.
    pub event: EventKind,
}

/// What a charge does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeDecision {
    /// The wallet afterwards.
    pub balance: Balance,
}

impl ChargeDecision {
    /// The outbox event of the charge `cmd`.
    pub fn event(cmd: &ChargeCommand) -> EventKind {
        EventKind::PointsCharged {
            user_id: cmd.user_id,
            amount: cmd.amount,
        }
    }
}

/// Seats of `option` that the user holds (unexpired at `now`) or owns, over the user's
/// reservations: what the per-user cap counts.
pub fn seats_owned<'a>(
    reservations: impl IntoIterator<Item = &'a Reservation>,
    option: OptionId,
    now: DateTime<Utc>,
) -> u64 {
    reservations
        .into_iter()
        .filter(|r| r.option_id == option)
        .filter(|r| {
            matches!(
                crate::rules::effective_status(r, now),
                ReservationStatus::Held | ReservationStatus::Confirmed
            )
        })
        .map(|r| r.seat_ids.len() as u64)
        .sum()
}

/// Decide a hold over its seats (`seats[i]` in state `states[i]`, the command's order) for a
/// user who already has `owned` seats of the option (see [`seats_owned`]), the option's sale
/// window being `sale`. Refusals, in this order: a seat of another option (`invalid_request`),
/// the sale window at `cmd.now` (`sale_not_open`, `sale_closed`), a price sum that overflows,
/// the cap (`limit_exceeded`), taken seats (`seat_unavailable`, naming all of them).
pub fn decide_hold(
    cmd: &HoldCommand,
    sale: &SaleWindow,
    seats: &[&Seat],
    states: &[SeatState],
    owned: u64,
) -> Result<HoldDecision, Error> {
    if seats.len() != states.len() || seats.len() != cmd.seat_ids.len() {
        return Err(Error::invalid("a hold decision needs one state per seat"));
    }
    let mut ids: Vec<SeatId> = seats.iter().map(|s| s.id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid("a hold names a seat twice"));
    }
    if let Some(s) = seats.iter().find(|s| s.option_id != cmd.option_id) {
        return Err(Error::invalid(format!(
            "seat {} is not of option {}",
            s.id, cmd.option_id
        )));
    }
    check_sale(sale, cmd.now)?;
    let amount = Points::checked_sum(seats.iter().map(|s| s.price))?;
    if let Some(limit) = cmd.max_seats_per_user {
        let would_have = owned + cmd.seat_ids.len() as u64;
        if would_have > u64::from(limit) {
            return Err(Error::LimitExceeded { limit, would_have });
        }
    }
    let decided: Vec<_> = states
        .iter()
        .map(|s| hold_seat(*s, cmd.reservation_id, cmd.expires_at, cmd.now))
        .collect();
    let taken: Vec<SeatId> = seats
        .iter()
        .zip(&decided)
        .filter(|(_, d)| d.is_err())
        .map(|(s, _)| s.id)
        .collect();
    if !taken.is_empty() {
        return Err(Error::SeatUnavailable { seats: taken });
    }
    let reservation = Reservation {
        id: cmd.reservation_id,
        user_id: cmd.user_id,
        option_id: cmd.option_id,
        seat_ids: seats.iter().map(|s| s.id).collect(),
        status: ReservationStatus::Held,
        amount,
        expires_at: cmd.expires_at,
        created_at: cmd.now,
        payment_id: None,
        refunded_amount: Points::ZERO,
    };
    let event = EventKind::HoldPlaced {
        reservation_id: reservation.id,
        user_id: reservation.user_id,
        seat_ids: reservation.seat_ids.clone(),
    };
    Ok(HoldDecision {
        reservation,
        seats: decided.into_iter().flatten().collect(),
        event,
    })
}

/// Decide a payment of `reservation` (as stored) by its owner, whose balance is `balance`, over
/// the states of the reservation's seats (in its `seat_ids` order), the option's sale window
/// being `sale`. Refusals, in this order: another user's reservation (`forbidden`), an illegal
/// transition (`hold_expired`, `invalid_state`), the end of the sale at `cmd.now`
/// (`sale_closed`: a hold made during the sale is not paid after it; see
/// [`check_sale_not_ended`]), too few points (`insufficient_points`), a seat no longer held by
/// it (`hold_expired`).
pub fn decide_pay(
    cmd: &PayCommand,
    sale: &SaleWindow,
    reservation: &Reservation,
    balance: Points,
    states: &[SeatState],
    payment_id: PaymentId,
) -> Result<PayDecision, Error> {
    if reservation.user_id != cmd.user_id {
        return Err(Error::Forbidden);
    }
    let t = transition(reservation, Action::Pay, cmd.now)?;
    check_sale_not_ended(sale, cmd.now)?;
    if balance < reservation.amount {
        return Err(Error::InsufficientPoints {
            balance,
            required: reservation.amount,
        });
    }
    let after = balance.checked_sub(reservation.amount)?;
    if states.len() != reservation.seat_ids.len() {
        return Err(Error::invalid(
            "a payment decision needs one state per seat",
        ));
    }
    let seats = states
        .iter()
        .map(|s| sell_seat(*s, reservation.id, cmd.now))
        .collect::<Result<Vec<_>, _>>()?;
    let payment = Payment {
        id: payment_id,
        reservation_id: reservation.id,
        user_id: cmd.user_id,
        amount: reservation.amount,
        balance: after,
        created_at: cmd.now,
        method: PaymentMethod::Points,
    };
    let event = EventKind::HoldPaid {
        reservation_id: reservation.id,
        payment_id,
        amount: reservation.amount,
    };
    Ok(PayDecision {
        reservation: Reservation {
            status: t.to,
            payment_id: Some(payment_id),
            ..reservation.clone()
        },
        payment,
        seats,
        event,
    })
}

/// Decide a cancel of `reservation` (as stored) by its owner, whose balance is `balance`, over
/// the states of its seats (in its `seat_ids` order), its option's sale window being `sale`.
/// Refusals: another user's reservation (`forbidden`), an illegal transition (`invalid_state`),
/// a confirmed one once the show has started (`invalid_state`, see
/// [`check_cancel_before_show`]). Seats no longer the reservation's are left as they are.
pub fn decide_cancel(
    cmd: &CancelCommand,
    sale: &SaleWindow,
    reservation: &Reservation,
    balance: Points,
    states: &[SeatState],
) -> Result<CancelDecision, Error> {
    if reservation.user_id != cmd.user_id {
        return Err(Error::Forbidden);
    }
    let t = transition(reservation, Action::Cancel, cmd.now)?;
    check_cancel_before_show(
        sale,
        crate::rules::effective_status(reservation, cmd.now),
        cmd.now,
    )?;
    let after = balance.checked_add(t.refund)?;
    let seats = states
        .iter()
        .map(|s| release_seat(*s, reservation.id))
        .collect();
    let event = EventKind::ReservationCancelled {
        reservation_id: reservation.id,
        refunded: t.refund,
    };
    Ok(CancelDecision {
        reservation: Reservation {
            status: t.to,
            refunded_amount: t.refund,
            ..reservation.clone()
        },
        balance: after,
        refund: t.refund,
        seats,
        event,
    })
}

/// Decide a charge of a wallet holding `balance`: a positive amount that does not overflow.
pub fn decide_charge(cmd: &ChargeCommand, balance: Points) -> Result<ChargeDecision, Error> {
    if !cmd.amount.is_positive() {
        return Err(Error::invalid("amount must be positive"));
    }
    Ok(ChargeDecision {
        balance: Balance {
            user_id: cmd.user_id,
            balance: balance.checked_add(cmd.amount)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Seat, SeatState};
    use crate::ids::{OptionId, ReservationId, SeatId, UserId};

    fn seat(id: i64) -> Seat {
        Seat {
            id: SeatId(id),
            option_id: OptionId(1),
            seat_no: format!("A-{id}"),
            grade: "R".into(),
            price: crate::money::Points(100),
        }
    }

    fn hold(seat_ids: &[i64]) -> HoldCommand {
        let now = Utc::now();
        HoldCommand {
            reservation_id: ReservationId::new(),
            user_id: UserId(1),
            option_id: OptionId(1),
            seat_ids: seat_ids.iter().copied().map(SeatId).collect(),
            now,
            expires_at: now + chrono::Duration::minutes(5),
            max_seats_per_user: Some(4),
            idempotency: None,
            fence: None,
        }
    }

    fn on_sale(now: DateTime<Utc>) -> SaleWindow {
        SaleWindow {
            starts_at: now + chrono::Duration::days(1),
            opens_at: None,
            closes_at: None,
        }
    }

    /// A backend that loads fewer (or more) states or seats than the command names gets a
    /// refusal, never a hold over what it happened to load.
    #[test]
    fn a_hold_needs_exactly_one_loaded_seat_and_state_per_named_seat() {
        let (a, b) = (seat(1), seat(2));
        let free = SeatState::Available;
        let two = hold(&[1, 2]);
        let sale = on_sale(two.now);
        assert!(decide_hold(&two, &sale, &[&a, &b], &[free, free], 0).is_ok());
        // One seat loaded of two named, with one state: every length must agree.
        assert!(decide_hold(&two, &sale, &[&a], &[free], 0).is_err());
        // Seats and command agree, states do not.
        assert!(decide_hold(&two, &sale, &[&a, &b], &[free], 0).is_err());
        // States and seats agree, the command names fewer.
        assert!(decide_hold(&hold(&[1]), &sale, &[&a, &b], &[free, free], 0).is_err());
    }

    /// Outside its option's sale window a hold is refused (after the seats' own checks), and a
    /// hold made inside it is not paid after it.
    #[test]
    fn the_sale_window_bounds_holds_and_payments() {
        let a = seat(1);
        let free = SeatState::Available;
        let cmd = hold(&[1]);
        let closed = SaleWindow {
            starts_at: cmd.now,
            ..on_sale(cmd.now)
        };
        let refused = decide_hold(&cmd, &closed, &[&a], &[free], 0);
        assert!(matches!(refused, Err(Error::SaleClosed { .. })));
        let d = decide_hold(&cmd, &on_sale(cmd.now), &[&a], &[free], 0).expect("on sale");
        let pay = PayCommand {
            reservation_id: d.reservation.id,
            user_id: d.reservation.user_id,
            now: cmd.now,
            idempotency: None,
            fence: None,
        };
        let paid = decide_pay(
            &pay,
            &on_sale(cmd.now),
            &d.reservation,
            crate::money::Points(100),
            &d.seats,
            PaymentId::new(),
        );
        assert!(paid.is_ok());
        let late = decide_pay(
            &pay,
            &closed,
            &d.reservation,
            crate::money::Points(100),
            &d.seats,
            PaymentId::new(),
        );
        assert!(matches!(late, Err(Error::SaleClosed { .. })));
    }
}
