//! The state machine: the one place where the rules of seats and reservations live.
//!
//! Every function here is pure (no I/O, no clock of its own: `now` is passed in), and every
//! backend calls these instead of re-stating the rules.
//!
//! ```text
//! seat:         Available --hold--> Held{r, until} --pay--> Sold{r}
//!               Held --cancel | expire--> Available      Sold --cancel (refund)--> Available
//! reservation:  Held --> Confirmed | Cancelled | Expired      Confirmed --> Cancelled (refund)
//! ```
//!
//! A hold is expired the instant `now >= expires_at`, at every read and every write, whether
//! or not a sweeper has run.

use chrono::{DateTime, Utc};

mod catalog;
mod commands;
mod order;
mod provider;
mod sale;

pub use catalog::validate_catalog;
pub use commands::{
    CancelDecision, ChargeDecision, HoldDecision, PayDecision, decide_cancel, decide_charge,
    decide_hold, decide_pay, seats_owned,
};
pub use order::{in_loaded_order, states_in_order};
pub use provider::{
    BeginDecision, ChargeSettlement, Recovery, begin_provider_payment, cancel_paid_by_provider,
    charge_to_refund, check_no_charge_in_flight, decide_cancel_refunding, paying_charge,
    recovery_step, refund_attempt, refund_event, refund_on_cancel, settle_charge, settle_refund,
};
pub use sale::{
    check_cancel_before_show, check_sale, check_sale_not_ended, close_sale, sale_end,
    validate_sale_window, with_sale_window,
};

use crate::domain::{Reservation, ReservationStatus, SeatState};
use crate::error::Error;
use crate::ids::{FencingToken, ReservationId, SeatId};
use crate::money::Points;

/// Whether a hold that ends at `expires_at` is over at `now` (the end instant is exclusive).
pub fn is_expired(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now >= expires_at
}

/// The seat's state as it is at `now`: a hold whose time has passed is `Available`.
pub fn effective_seat_state(state: SeatState, now: DateTime<Utc>) -> SeatState {
    match state {
        SeatState::Held { until, .. } if is_expired(until, now) => SeatState::Available,
        other => other,
    }
}

/// The reservation's status as it is at `now`: an unpaid hold past `expires_at` is `Expired`.
pub fn effective_status(reservation: &Reservation, now: DateTime<Utc>) -> ReservationStatus {
    match reservation.status {
        ReservationStatus::Held if is_expired(reservation.expires_at, now) => {
            ReservationStatus::Expired
        }
        other => other,
    }
}

/// A copy of the reservation with its status made effective at `now`.
pub fn effective(reservation: &Reservation, now: DateTime<Utc>) -> Reservation {
    Reservation {
        status: effective_status(reservation, now),
        ..reservation.clone()
    }
}

/// Place a hold of `reservation` until `until` on a seat. `Err(())` means the seat is taken
/// (held by an unexpired hold, or sold): the caller reports `seat_unavailable` for it.
#[allow(clippy::result_unit_err)]
pub fn hold_seat(
    state: SeatState,
    reservation: ReservationId,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<SeatState, ()> {
    match effective_seat_state(state, now) {
        SeatState::Available => Ok(SeatState::Held { reservation, until }),
        SeatState::Held { .. } | SeatState::Sold { .. } => Err(()),
    }
}

/// Sell a seat to the reservation that holds it. Fails with `hold_expired` if the seat is no
/// longer held by it (its hold ran out, and the seat may have been taken by someone else).
pub fn sell_seat(
    state: SeatState,
    reservation: ReservationId,
    now: DateTime<Utc>,
) -> Result<SeatState, Error> {
    match effective_seat_state(state, now) {
        SeatState::Held { reservation: r, .. } if r == reservation => {
            Ok(SeatState::Sold { reservation })
        }
        _ => Err(Error::HoldExpired),
    }
}

/// Free a seat on behalf of `reservation` (cancel or expiry). A seat that is no longer the
/// reservation's (its hold expired and another took it) is left as it is.
pub fn release_seat(state: SeatState, reservation: ReservationId) -> SeatState {
    match state {
        SeatState::Held { reservation: r, .. } | SeatState::Sold { reservation: r }
            if r == reservation =>
        {
            SeatState::Available
        }
        other => other,
    }
}

/// Whether a write carrying fencing token `mine` may touch a seat that has already accepted a
/// write with token `seen`: a token older than one already accepted comes from a lock holder
/// whose lease was lost, and must be refused (`lock_lost`). Writes without a token (strategies
/// that do not use a lock manager) are not fenced.
pub fn fence_allows(seen: Option<FencingToken>, mine: Option<FencingToken>) -> bool {
    match (seen, mine) {
        (Some(seen), Some(mine)) => mine >= seen,
        _ => true,
    }
}

/// What is being done to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Pay for a hold.
    Pay,
    /// Cancel a hold or a confirmed reservation.
    Cancel,
    /// Mark a hold whose time ran out as expired.
    Expire,
}

impl Action {
    pub(crate) const fn verb(self) -> &'static str {
        match self {
            Action::Pay => "pay",
            Action::Cancel => "cancel",
            Action::Expire => "expire",
        }
    }
}

/// The outcome of a legal transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The reservation's new status.
    pub to: ReservationStatus,
    /// Points to give back to the owner (only when cancelling a confirmed reservation).
    pub refund: Points,
}

/// The transition table of reservations, judged on the status effective at `now`.
pub fn transition(
    reservation: &Reservation,
    action: Action,
    now: DateTime<Utc>,
) -> Result<Transition, Error> {
    use ReservationStatus::*;
    let from = effective_status(reservation, now);
    let to = |to| {
        Ok(Transition {
            to,
            refund: Points::ZERO,
        })
    };
    match (from, action) {
        (Held, Action::Pay) => to(Confirmed),
        (Held, Action::Cancel) => to(Cancelled),
        (Confirmed, Action::Cancel) => Ok(Transition {
            to: Cancelled,
            refund: reservation.amount,
        }),
        // Stored as held but past its time: expiring it is the one legal move.
        (Expired, Action::Expire) if reservation.status == Held => to(Expired),
        (Expired, Action::Pay) => Err(Error::HoldExpired),
        (from, action) => Err(Error::InvalidState {
            state: from.as_str(),
            action: action.verb(),
        }),
    }
}

/// Check and normalise the seat ids of a hold request: non-empty, positive, no duplicates,
/// at most `max` of them. Returns them sorted ascending (the order locks are taken in).
pub fn normalize_seat_ids(seat_ids: &[SeatId], max: usize) -> Result<Vec<SeatId>, Error> {
    if seat_ids.is_empty() {
        return Err(Error::invalid("seat_ids must not be empty"));
    }
    if seat_ids.len() > max {
        return Err(Error::invalid(format!(
            "at most {max} seat_ids per request"
        )));
    }
    if let Some(bad) = seat_ids.iter().find(|s| s.0 <= 0) {
        return Err(Error::invalid(format!("seat id {bad} must be positive")));
    }
    let mut sorted = seat_ids.to_vec();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid(format!("seat id {} is repeated", w[0])));
    }
    Ok(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::ids::{OptionId, UserId};
    use chrono::{Duration, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn reservation(status: ReservationStatus) -> Reservation {
        Reservation {
            id: ReservationId::new(),
            user_id: UserId(1),
            option_id: OptionId(1),
            seat_ids: vec![SeatId(1)],
            status,
            amount: Points(100),
            expires_at: t0() + Duration::minutes(5),
            created_at: t0(),
            payment_id: None,
            refunded_amount: Points::ZERO,
        }
    }

    #[test]
    fn a_hold_is_expired_exactly_at_its_end() {
        let end = t0() + Duration::minutes(5);
        assert!(!is_expired(end, end - Duration::nanoseconds(1)));
        assert!(is_expired(end, end));
        let held = SeatState::Held {
            reservation: ReservationId::new(),
            until: end,
        };
        assert_eq!(
            effective_seat_state(held, end - Duration::nanoseconds(1)),
            held
        );
        assert_eq!(effective_seat_state(held, end), SeatState::Available);
    }

    #[test]
    fn seats_are_held_only_when_available_or_expired() {
        let r = ReservationId::new();
        let until = t0() + Duration::minutes(5);
        assert_eq!(
            hold_seat(SeatState::Available, r, until, t0()),
            Ok(SeatState::Held {
                reservation: r,
                until
            })
        );
        let other = SeatState::Held {
            reservation: ReservationId::new(),
            until,
        };
        assert_eq!(hold_seat(other, r, until, t0()), Err(()));
        assert!(hold_seat(other, r, until + Duration::minutes(5), until).is_ok());
        let sold = SeatState::Sold {
            reservation: ReservationId::new(),
        };
        assert_eq!(
            hold_seat(sold, r, until, until + Duration::days(9)),
            Err(())
        );
    }

    #[test]
    fn only_the_holder_sells_and_only_before_expiry() {
        let r = ReservationId::new();
        let until = t0() + Duration::minutes(5);
        let held = SeatState::Held {
            reservation: r,
            until,
        };
        assert_eq!(
            sell_seat(held, r, t0()).ok(),
            Some(SeatState::Sold { reservation: r })
        );
        assert!(matches!(sell_seat(held, r, until), Err(Error::HoldExpired)));
        assert!(matches!(
            sell_seat(held, ReservationId::new(), t0()),
            Err(Error::HoldExpired)
        ));
        assert!(sell_seat(SeatState::Available, r, t0()).is_err());
    }

    #[test]
    fn release_frees_only_the_reservations_own_seat() {
        let r = ReservationId::new();
        let mine = SeatState::Sold { reservation: r };
        assert_eq!(release_seat(mine, r), SeatState::Available);
        let theirs = SeatState::Sold {
            reservation: ReservationId::new(),
        };
        assert_eq!(release_seat(theirs, r), theirs);
        assert_eq!(release_seat(SeatState::Available, r), SeatState::Available);
    }

    #[test]
    fn every_legal_reservation_transition() {
        use ReservationStatus::*;
        let held = reservation(Held);
        let ok = |r: &Reservation, a, now| transition(r, a, now).map(|t| (t.to, t.refund)).ok();
        assert_eq!(ok(&held, Action::Pay, t0()), Some((Confirmed, Points(0))));
        assert_eq!(
            ok(&held, Action::Cancel, t0()),
            Some((Cancelled, Points(0)))
        );
        assert_eq!(
            ok(&held, Action::Expire, held.expires_at),
            Some((Expired, Points(0)))
        );
        let confirmed = reservation(Confirmed);
        assert_eq!(
            ok(&confirmed, Action::Cancel, t0() + Duration::days(30)),
            Some((Cancelled, Points(100)))
        );
    }

    #[test]
    fn every_illegal_reservation_transition() {
        use ReservationStatus::*;
        let held = reservation(Held);
        let code = |r: &Reservation, a, now| transition(r, a, now).err().map(|e| e.code());
        let late = held.expires_at;
        assert_eq!(code(&held, Action::Pay, late), Some(ErrorCode::HoldExpired));
        assert_eq!(
            code(&held, Action::Cancel, late),
            Some(ErrorCode::InvalidState)
        );
        assert_eq!(
            code(&held, Action::Expire, t0()),
            Some(ErrorCode::InvalidState)
        );
        for status in [Confirmed, Cancelled, Expired] {
            let r = reservation(status);
            assert_eq!(
                code(&r, Action::Expire, late),
                Some(ErrorCode::InvalidState)
            );
            assert!(code(&r, Action::Pay, t0()).is_some(), "{status:?} pay");
        }
        assert_eq!(
            code(&reservation(Cancelled), Action::Cancel, t0()),
            Some(ErrorCode::InvalidState)
        );
        assert_eq!(
            code(&reservation(Expired), Action::Cancel, t0()),
            Some(ErrorCode::InvalidState)
        );
        assert_eq!(
            code(&reservation(Confirmed), Action::Pay, t0()),
            Some(ErrorCode::InvalidState)
        );
    }

    #[test]
    fn effective_status_turns_held_into_expired_at_the_instant() {
        let held = reservation(ReservationStatus::Held);
        let end = held.expires_at;
        assert_eq!(
            effective_status(&held, end - Duration::nanoseconds(1)),
            ReservationStatus::Held
        );
        assert_eq!(effective_status(&held, end), ReservationStatus::Expired);
        let confirmed = reservation(ReservationStatus::Confirmed);
        assert_eq!(
            effective_status(&confirmed, end),
            ReservationStatus::Confirmed
        );
    }

    #[test]
    fn fencing_refuses_only_older_tokens() {
        let t = |n| Some(FencingToken(n));
        assert!(fence_allows(None, t(1)));
        assert!(fence_allows(t(5), t(5)));
        assert!(fence_allows(t(5), t(6)));
        assert!(!fence_allows(t(5), t(4)));
        assert!(fence_allows(t(5), None));
    }

    #[test]
    fn seat_ids_are_validated_and_sorted() {
        let ids = |v: &[i64]| v.iter().copied().map(SeatId).collect::<Vec<_>>();
        assert_eq!(
            normalize_seat_ids(&ids(&[3, 1, 2]), 10).ok(),
            Some(ids(&[1, 2, 3]))
        );
        for bad in [&[][..], &[1, 1][..], &[0][..], &[-5][..], &[1, 2, 3][..]] {
            let err = normalize_seat_ids(&ids(bad), 2).expect_err("must be rejected");
            assert_eq!(err.code(), ErrorCode::InvalidRequest, "{bad:?}");
        }
    }

    /// A refused transition names what was attempted, as the API's `detail` shows it.
    #[test]
    fn refusals_name_the_action_and_the_state() {
        let cases = [
            (ReservationStatus::Cancelled, Action::Pay, "pay"),
            (ReservationStatus::Cancelled, Action::Cancel, "cancel"),
            (ReservationStatus::Confirmed, Action::Expire, "expire"),
        ];
        for (status, action, verb) in cases {
            match transition(&reservation(status), action, t0()) {
                Err(Error::InvalidState { state, action }) => {
                    assert_eq!((state, action), (status.as_str(), verb));
                }
                other => panic!("{status:?} {verb}: {other:?}"),
            }
        }
    }

    /// The cap on seats per request is inclusive: exactly `max` seats are accepted, sorted.
    #[test]
    fn exactly_max_seat_ids_are_accepted() {
        let ids = |v: &[i64]| v.iter().copied().map(SeatId).collect::<Vec<_>>();
        assert_eq!(
            normalize_seat_ids(&ids(&[3, 1]), 2).expect("two of two"),
            ids(&[1, 3])
        );
        assert!(normalize_seat_ids(&ids(&[3, 1, 2]), 2).is_err());
    }
}
