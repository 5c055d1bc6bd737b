//! The saga of a payment through a provider (docs/payments.md), as pure decisions: begin
//! (keep the seats for the call, record the attempt), settle a charge (confirm, release, or
//! refund a capture that came too late), refund on cancel, settle a refund, and what the
//! recovery job does with an attempt whose outcome it never heard. A store loads, calls one of
//! these, and stores what it returns, in one atomic step each; the provider is called between
//! the steps, never inside one.

use chrono::{DateTime, Duration, Utc};

use crate::domain::{
    EventKind, Payment, PaymentMethod, Reservation, ReservationStatus, SaleWindow, SeatState,
};
use crate::error::Error;
use crate::ids::{AttemptId, PaymentId, UserId};
use crate::money::Points;
use crate::provider::{
    AttemptKind, AttemptState, ChargeOutcome, ChargeStatus, PaymentAttempt, RefundOutcome,
    RefundReason,
};
use crate::rules::{
    Action, check_sale_not_ended, effective_seat_state, effective_status, release_seat, sale_end,
    transition,
};

/// What beginning a provider payment does: the reservation and its seats kept until the
/// attempt's deadline, the attempt recorded, and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeginDecision {
    /// The reservation, still held, its end moved to the attempt's deadline if later.
    pub reservation: Reservation,
    /// The seats' next states (in the reservation's order): held until that end.
    pub seats: Vec<SeatState>,
    /// The charge attempt, pending.
    pub attempt: PaymentAttempt,
    /// `provider_payment_started`.
    pub event: EventKind,
}

/// Whether a charge is in flight for the reservation: a pending charge attempt. Paying it with
/// points, cancelling it, or starting a second charge must wait for its outcome
/// (`invalid_state`), or the buyer could pay twice, or be charged for seats they gave up.
pub fn check_no_charge_in_flight(attempts: &[PaymentAttempt], action: Action) -> Result<(), Error> {
    if attempts
        .iter()
        .any(|a| a.kind == AttemptKind::Charge && a.is_pending())
    {
        return Err(Error::InvalidState {
            state: "payment_pending",
            action: action.verb(),
        });
    }
    Ok(())
}

/// Decide the start of a payment of `reservation` (as stored) through a provider, by `user`
/// at `now`, over the states of its seats (in its `seat_ids` order) and the attempts recorded
/// for it. The seats are kept at least `bound` from now (a hold about to end is not lost while
/// the provider answers), never less than the hold had. Refusals, in order: another user's
/// reservation (`forbidden`), a charge already in flight (`invalid_state`), an illegal
/// transition (`hold_expired`, `invalid_state`), the end of the sale (`sale_closed`), a seat
/// no longer held by it (`hold_expired`).
#[allow(clippy::too_many_arguments)]
pub fn begin_provider_payment(
    user: UserId,
    now: DateTime<Utc>,
    bound: Duration,
    sale: &SaleWindow,
    reservation: &Reservation,
    states: &[SeatState],
    attempts: &[PaymentAttempt],
    attempt_id: AttemptId,
) -> Result<BeginDecision, Error> {
    if bound <= Duration::zero() {
        return Err(Error::invalid("a provider payment needs a positive bound"));
    }
    if reservation.user_id != user {
        return Err(Error::Forbidden);
    }
    transition(reservation, Action::Pay, now)?;
    check_no_charge_in_flight(attempts, Action::Pay)?;
    check_sale_not_ended(sale, now)?;
    if states.len() != reservation.seat_ids.len() {
        return Err(Error::invalid(
            "a payment decision needs one state per seat",
        ));
    }
    if !states.iter().all(|s| held_by(*s, reservation, now)) {
        return Err(Error::HoldExpired);
    }
    let kept_until = now
        .checked_add_signed(bound)
        .ok_or_else(|| Error::invalid("the bound of a provider payment is too large"))?;
    let until = reservation.expires_at.max(kept_until);
    let attempt = PaymentAttempt {
        id: attempt_id,
        kind: AttemptKind::Charge,
        reservation_id: reservation.id,
        user_id: user,
        amount: reservation.amount,
        key: PaymentAttempt::charge_key(attempt_id),
        charge_key: None,
        reason: None,
        state: AttemptState::Pending,
        created_at: now,
        deadline: until,
    };
    Ok(BeginDecision {
        reservation: Reservation {
            expires_at: until,
            ..reservation.clone()
        },
        seats: states
            .iter()
            .map(|_| SeatState::Held {
                reservation: reservation.id,
                until,
            })
            .collect(),
        event: EventKind::ProviderPaymentStarted {
            reservation_id: reservation.id,
            attempt_id,
            amount: reservation.amount,
            until,
        },
        attempt,
    })
}

fn held_by(state: SeatState, reservation: &Reservation, now: DateTime<Utc>) -> bool {
    matches!(effective_seat_state(state, now), SeatState::Held { reservation: r, .. } if r == reservation.id)
}

/// What settling a charge does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeSettlement {
    /// The attempt was settled before with an outcome that agrees (a webhook sent twice, a
    /// recovery after the answer): nothing changes.
    AlreadySettled,
    /// Captured while the seats were still kept and the sale still on: the reservation is
    /// confirmed and its seats sold; nothing is debited from points.
    Confirmed {
        /// The reservation, confirmed.
        reservation: Reservation,
        /// The payment, method `provider`.
        payment: Payment,
        /// The seats' next states: sold.
        seats: Vec<SeatState>,
        /// The attempt, succeeded.
        attempt: PaymentAttempt,
        /// `hold_paid`.
        event: EventKind,
    },
    /// Declined (or voided): nothing was taken; the reservation, if still held, is released
    /// and its seats freed.
    Released {
        /// The reservation's next state, if it changes (a hold the sweeper already expired
        /// stays as it is).
        reservation: Option<Reservation>,
        /// The seats' next states (the reservation's seats freed, others left).
        seats: Vec<SeatState>,
        /// The attempt, failed.
        attempt: PaymentAttempt,
        /// `provider_payment_failed`, then `reservation_cancelled` if it was released now.
        events: Vec<EventKind>,
    },
    /// Captured when the seats could not be sold for it any more (the hold ended, a seat was
    /// taken, the sale ended), or after the attempt was settled as declined (a provider's late
    /// or contradicting answer): the money goes back, with the reason recorded. A reservation
    /// still held is released in the same step, so it can never also be paid with points.
    RefundDue {
        /// The charge attempt, succeeded.
        attempt: PaymentAttempt,
        /// The refund attempt, pending: make it, then settle it.
        refund: PaymentAttempt,
        /// The reservation's next state, if it changes.
        reservation: Option<Reservation>,
        /// The seats' next states (the reservation's seats freed, others left).
        seats: Vec<SeatState>,
        /// `provider_refund_started`, then `reservation_cancelled` or `hold_expired` if the
        /// reservation was released now.
        events: Vec<EventKind>,
    },
}

impl ChargeSettlement {
    /// The seats' next states, in the reservation's order: `states` (as loaded) when nothing
    /// changes.
    pub fn next_seats(&self, states: &[SeatState]) -> Vec<SeatState> {
        match self {
            ChargeSettlement::Confirmed { seats, .. }
            | ChargeSettlement::Released { seats, .. }
            | ChargeSettlement::RefundDue { seats, .. } => seats.clone(),
            ChargeSettlement::AlreadySettled => states.to_vec(),
        }
    }
}

/// Decide what the provider's `outcome` of the charge `attempt` does to `reservation` (as
/// stored) and its seats (in its `seat_ids` order) at `now`, its option's sale window being
/// `sale`. `balance` is the payer's points balance (untouched; recorded in the payment),
/// `payment_id` and `refund_id` are the ids a payment or a refund would take.
///
/// A second outcome that agrees with the first changes nothing; a capture reported after the
/// attempt was settled as declined is refunded (the money must not be kept without a seat); a
/// decline reported after a capture changes nothing (what was taken was taken: the capture's
/// settlement stands). A decline never frees the seats of a reservation that is not held
/// (`invalid_state`: a store let it be paid or cancelled while its charge was in flight).
#[allow(clippy::too_many_arguments)]
pub fn settle_charge(
    attempt: &PaymentAttempt,
    outcome: &ChargeOutcome,
    sale: &SaleWindow,
    reservation: &Reservation,
    states: &[SeatState],
    balance: Points,
    now: DateTime<Utc>,
    payment_id: PaymentId,
    refund_id: AttemptId,
) -> Result<ChargeSettlement, Error> {
    if attempt.kind != AttemptKind::Charge || attempt.reservation_id != reservation.id {
        return Err(Error::invalid("not a charge attempt of this reservation"));
    }
    if states.len() != reservation.seat_ids.len() {
        return Err(Error::invalid("a settlement needs one state per seat"));
    }
    let captured_after_decline = matches!(
        (&attempt.state, outcome),
        (AttemptState::Failed { .. }, ChargeOutcome::Captured { .. })
    );
    if !attempt.is_pending() && !captured_after_decline {
        return Ok(ChargeSettlement::AlreadySettled);
    }
    match outcome {
        ChargeOutcome::Captured { reference } => {
            let succeeded = PaymentAttempt {
                state: AttemptState::Succeeded {
                    reference: reference.clone(),
                },
                ..attempt.clone()
            };
            let kept = !captured_after_decline
                && effective_status(reservation, now) == ReservationStatus::Held
                && now < sale_end(sale)
                && states.iter().all(|s| held_by(*s, reservation, now));
            if kept {
                let payment = Payment {
                    id: payment_id,
                    reservation_id: reservation.id,
                    user_id: reservation.user_id,
                    amount: attempt.amount,
                    balance,
                    created_at: now,
                    method: PaymentMethod::Provider {
                        attempt_id: attempt.id,
                        reference: reference.clone(),
                    },
                };
                return Ok(ChargeSettlement::Confirmed {
                    reservation: Reservation {
                        status: ReservationStatus::Confirmed,
                        payment_id: Some(payment_id),
                        ..reservation.clone()
                    },
                    seats: states
                        .iter()
                        .map(|_| SeatState::Sold {
                            reservation: reservation.id,
                        })
                        .collect(),
                    event: EventKind::HoldPaid {
                        reservation_id: reservation.id,
                        payment_id,
                        amount: attempt.amount,
                    },
                    payment,
                    attempt: succeeded,
                });
            }
            let refund = refund_attempt(&succeeded, RefundReason::SeatsNotKept, now, refund_id);
            let mut events = vec![refund_event(&refund)];
            let (released, seats) = release(reservation, states, now, &mut events);
            Ok(ChargeSettlement::RefundDue {
                attempt: succeeded,
                refund,
                reservation: released,
                seats,
                events,
            })
        }
        ChargeOutcome::Declined { reason } => {
            if !matches!(
                reservation.status,
                ReservationStatus::Held | ReservationStatus::Expired
            ) {
                return Err(Error::InvalidState {
                    state: reservation.status.as_str(),
                    action: "release after a declined charge",
                });
            }
            let failed = PaymentAttempt {
                state: AttemptState::Failed {
                    reason: reason.clone(),
                },
                ..attempt.clone()
            };
            let mut events = vec![EventKind::ProviderPaymentFailed {
                reservation_id: reservation.id,
                attempt_id: attempt.id,
                reason: reason.clone(),
            }];
            let (released, seats) = release(reservation, states, now, &mut events);
            Ok(ChargeSettlement::Released {
                reservation: released,
                seats,
                attempt: failed,
                events,
            })
        }
    }
}

/// Release a reservation still stored as held (cancelled, or expired if its time ran out) and
/// free its seats, adding the event; anything else is left as it is.
fn release(
    reservation: &Reservation,
    states: &[SeatState],
    now: DateTime<Utc>,
    events: &mut Vec<EventKind>,
) -> (Option<Reservation>, Vec<SeatState>) {
    if reservation.status != ReservationStatus::Held {
        return (None, states.to_vec());
    }
    let status = match effective_status(reservation, now) {
        ReservationStatus::Held => ReservationStatus::Cancelled,
        other => other,
    };
    events.push(match status {
        ReservationStatus::Expired => EventKind::HoldExpired {
            reservation_id: reservation.id,
        },
        _ => EventKind::ReservationCancelled {
            reservation_id: reservation.id,
            refunded: Points::ZERO,
        },
    });
    (
        Some(Reservation {
            status,
            ..reservation.clone()
        }),
        states
            .iter()
            .map(|s| release_seat(*s, reservation.id))
            .collect(),
    )
}

/// The refund of a captured charge, pending, under a key of its own.
pub fn refund_attempt(
    charge: &PaymentAttempt,
    reason: RefundReason,
    now: DateTime<Utc>,
    id: AttemptId,
) -> PaymentAttempt {
    PaymentAttempt {
        id,
        kind: AttemptKind::Refund,
        reservation_id: charge.reservation_id,
        user_id: charge.user_id,
        amount: charge.amount,
        key: PaymentAttempt::refund_key(id),
        charge_key: Some(charge.key.clone()),
        reason: Some(reason),
        state: AttemptState::Pending,
        created_at: now,
        deadline: now,
    }
}

/// The event of a refund begun.
pub fn refund_event(refund: &PaymentAttempt) -> EventKind {
    EventKind::ProviderRefundStarted {
        reservation_id: refund.reservation_id,
        attempt_id: refund.id,
        amount: refund.amount,
        reason: refund.reason.unwrap_or(RefundReason::Cancelled),
    }
}

/// The refund a cancel of a reservation paid through a provider makes: of the charge that
/// paid it (`charge`, succeeded). The cancel itself (seats freed, status) is
/// [`decide_cancel`](crate::rules::decide_cancel)'s; this replaces its points refund.
pub fn refund_on_cancel(
    charge: &PaymentAttempt,
    now: DateTime<Utc>,
    id: AttemptId,
) -> Result<(PaymentAttempt, EventKind), Error> {
    if charge.kind != AttemptKind::Charge || !matches!(charge.state, AttemptState::Succeeded { .. })
    {
        return Err(Error::invalid("only a captured charge is refunded"));
    }
    let refund = refund_attempt(charge, RefundReason::Cancelled, now, id);
    let event = refund_event(&refund);
    Ok((refund, event))
}

/// A cancel of a reservation paid through a provider: the decision of
/// [`decide_cancel`](crate::rules::decide_cancel), its points refund taken back out of the
/// wallet (`balance` is the wallet before the cancel), the reservation's `refunded_amount` and
/// the cancel event's `refunded` (both points given back) zero, and the refund of `charge`
/// through the provider instead, with its event (`provider_refund_started`).
pub fn cancel_paid_by_provider(
    decision: crate::rules::CancelDecision,
    balance: Points,
    charge: &PaymentAttempt,
    now: DateTime<Utc>,
    refund_id: AttemptId,
) -> Result<(crate::rules::CancelDecision, PaymentAttempt, EventKind), Error> {
    if charge.reservation_id != decision.reservation.id {
        return Err(Error::invalid("not the charge of this reservation"));
    }
    let (refund, event) = refund_on_cancel(charge, now, refund_id)?;
    let reservation = Reservation {
        refunded_amount: Points::ZERO,
        ..decision.reservation
    };
    Ok((
        crate::rules::CancelDecision {
            balance,
            refund: Points::ZERO,
            event: EventKind::ReservationCancelled {
                reservation_id: reservation.id,
                refunded: Points::ZERO,
            },
            reservation,
            ..decision
        },
        refund,
        event,
    ))
}

/// The charge a cancel of `reservation` refunds through the provider: its paying charge
/// ([`paying_charge`]) if it is confirmed; `None` for a hold or a points payment.
pub fn charge_to_refund<'a>(
    attempts: &'a [PaymentAttempt],
    reservation: &Reservation,
) -> Option<&'a PaymentAttempt> {
    paying_charge(attempts).filter(|_| reservation.status == ReservationStatus::Confirmed)
}

/// A cancel as every store decides it: [`decide_cancel`](crate::rules::decide_cancel), and
/// when `charge` (from [`charge_to_refund`]) paid the reservation,
/// [`cancel_paid_by_provider`]: no points back, the refund through the provider (the attempt,
/// pending, and its event).
#[allow(clippy::too_many_arguments)]
pub fn decide_cancel_refunding(
    cmd: &crate::store::CancelCommand,
    sale: &SaleWindow,
    reservation: &Reservation,
    balance: Points,
    states: &[SeatState],
    charge: Option<&PaymentAttempt>,
    refund_id: AttemptId,
) -> Result<
    (
        crate::rules::CancelDecision,
        Option<(PaymentAttempt, EventKind)>,
    ),
    Error,
> {
    let d = crate::rules::decide_cancel(cmd, sale, reservation, balance, states)?;
    match charge {
        Some(charge) => {
            let (d, refund, event) =
                cancel_paid_by_provider(d, balance, charge, cmd.now, refund_id)?;
            Ok((d, Some((refund, event))))
        }
        None => Ok((d, None)),
    }
}

/// The charge that paid a reservation, among its attempts: a succeeded charge with no refund
/// (a capture that came too late is refunded when it is settled, and its reservation released).
pub fn paying_charge(attempts: &[PaymentAttempt]) -> Option<&PaymentAttempt> {
    attempts.iter().find(|a| {
        a.kind == AttemptKind::Charge
            && matches!(a.state, AttemptState::Succeeded { .. })
            && !attempts
                .iter()
                .any(|r| r.kind == AttemptKind::Refund && r.charge_key.as_ref() == Some(&a.key))
    })
}

/// What the provider's answer to a refund does: the attempt settled and its event, or `None`
/// when it was settled before (the same answer twice changes nothing).
pub fn settle_refund(
    attempt: &PaymentAttempt,
    outcome: &RefundOutcome,
) -> Result<Option<(PaymentAttempt, EventKind)>, Error> {
    if attempt.kind != AttemptKind::Refund {
        return Err(Error::invalid("not a refund attempt"));
    }
    if !attempt.is_pending() {
        return Ok(None);
    }
    let (state, refunded) = match outcome {
        RefundOutcome::Refunded { reference } => (
            AttemptState::Succeeded {
                reference: reference.clone(),
            },
            true,
        ),
        RefundOutcome::Refused { reason } => (
            AttemptState::Failed {
                reason: reason.clone(),
            },
            false,
        ),
    };
    Ok(Some((
        PaymentAttempt {
            state,
            ..attempt.clone()
        },
        EventKind::ProviderRefundSettled {
            reservation_id: attempt.reservation_id,
            attempt_id: attempt.id,
            refunded,
        },
    )))
}

/// What the recovery job does with a pending attempt, given what the provider says of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// The provider knows the outcome: settle with it.
    Settle(ChargeOutcome),
    /// Past the attempt's deadline with no outcome: void the key (nothing can be captured
    /// under it afterwards) and settle with what the void answers.
    Void,
    /// Still within the deadline and undecided: ask again later.
    Wait,
    /// A pending refund: make it again under its key (refunds are idempotent by key).
    RetryRefund,
}

/// Decide the recovery of a pending `attempt` at `now`, the provider saying `status` of its key
/// (not asked for a refund: pass [`ChargeStatus::Unknown`]). An unknown outcome is never read
/// as a failure: it is voided first, and the void's answer settles it.
pub fn recovery_step(
    attempt: &PaymentAttempt,
    status: &ChargeStatus,
    now: DateTime<Utc>,
) -> Recovery {
    if attempt.kind == AttemptKind::Refund {
        return Recovery::RetryRefund;
    }
    match status {
        ChargeStatus::Done(outcome) => Recovery::Settle(outcome.clone()),
        ChargeStatus::Pending | ChargeStatus::Unknown if now >= attempt.deadline => Recovery::Void,
        ChargeStatus::Pending | ChargeStatus::Unknown => Recovery::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::ids::{OptionId, ReservationId, SeatId};
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn held() -> Reservation {
        Reservation {
            id: ReservationId::new(),
            user_id: UserId(1),
            option_id: OptionId(1),
            seat_ids: vec![SeatId(1), SeatId(2)],
            status: ReservationStatus::Held,
            amount: Points(300),
            expires_at: t0() + Duration::minutes(5),
            created_at: t0(),
            payment_id: None,
            refunded_amount: Points::ZERO,
        }
    }

    fn seats(r: &Reservation) -> Vec<SeatState> {
        r.seat_ids
            .iter()
            .map(|_| SeatState::Held {
                reservation: r.id,
                until: r.expires_at,
            })
            .collect()
    }

    fn sale() -> SaleWindow {
        SaleWindow {
            starts_at: t0() + Duration::days(30),
            opens_at: None,
            closes_at: None,
        }
    }

    fn begin(r: &Reservation, now: DateTime<Utc>) -> BeginDecision {
        begin_provider_payment(
            r.user_id,
            now,
            Duration::minutes(2),
            &sale(),
            r,
            &seats(r),
            &[],
            AttemptId::new(),
        )
        .expect("begin")
    }

    fn captured() -> ChargeOutcome {
        ChargeOutcome::Captured {
            reference: "ch_1".into(),
        }
    }

    #[test]
    fn beginning_keeps_the_seats_for_the_bound_and_never_shortens_the_hold() {
        let r = held();
        // Early: the hold already lasts longer than the bound.
        let early = begin(&r, t0());
        assert_eq!(early.reservation.expires_at, r.expires_at);
        assert_eq!(early.attempt.deadline, r.expires_at);
        // Late: 10 s before its end, the seats are kept 2 minutes from now.
        let now = r.expires_at - Duration::seconds(10);
        let late = begin(&r, now);
        assert_eq!(late.reservation.expires_at, now + Duration::minutes(2));
        assert!(late.seats.iter().all(|s| matches!(
            s,
            SeatState::Held { until, .. } if *until == now + Duration::minutes(2)
        )));
        assert_eq!(
            late.attempt.key,
            PaymentAttempt::charge_key(late.attempt.id)
        );
        assert!(late.attempt.is_pending());
    }

    #[test]
    fn beginning_is_refused_for_others_twice_after_the_end_and_for_lost_seats() {
        let r = held();
        let code = |res: Result<BeginDecision, Error>| res.map(|_| ()).map_err(|e| e.code());
        let go = |user, now, states: &[SeatState], attempts: &[PaymentAttempt]| {
            begin_provider_payment(
                user,
                now,
                Duration::minutes(2),
                &sale(),
                &r,
                states,
                attempts,
                AttemptId::new(),
            )
        };
        assert_eq!(
            code(go(UserId(2), t0(), &seats(&r), &[])),
            Err(ErrorCode::Forbidden)
        );
        let first = begin(&r, t0());
        assert_eq!(
            code(go(r.user_id, t0(), &seats(&r), &[first.attempt])),
            Err(ErrorCode::InvalidState)
        );
        assert_eq!(
            code(go(r.user_id, r.expires_at, &seats(&r), &[])),
            Err(ErrorCode::HoldExpired)
        );
        let mut lost = seats(&r);
        lost[1] = SeatState::Held {
            reservation: ReservationId::new(),
            until: r.expires_at,
        };
        assert_eq!(
            code(go(r.user_id, t0(), &lost, &[])),
            Err(ErrorCode::HoldExpired)
        );
    }

    #[test]
    fn a_capture_in_time_confirms_and_sells_and_a_second_answer_changes_nothing() {
        let r = held();
        let b = begin(&r, t0());
        let now = t0() + Duration::seconds(3);
        let settled = settle_charge(
            &b.attempt,
            &captured(),
            &sale(),
            &b.reservation,
            &b.seats,
            Points(50),
            now,
            PaymentId::new(),
            AttemptId::new(),
        )
        .expect("settle");
        let ChargeSettlement::Confirmed {
            reservation,
            payment,
            seats,
            attempt,
            ..
        } = settled
        else {
            panic!("expected confirmed, got {settled:?}");
        };
        assert_eq!(reservation.status, ReservationStatus::Confirmed);
        assert_eq!(reservation.payment_id, Some(payment.id));
        assert_eq!(payment.amount, r.amount);
        assert_eq!(payment.balance, Points(50), "points untouched");
        assert!(matches!(payment.method, PaymentMethod::Provider { .. }));
        assert!(seats.iter().all(|s| matches!(s, SeatState::Sold { .. })));
        assert!(!attempt.is_pending());
        let again = settle_charge(
            &attempt,
            &captured(),
            &sale(),
            &reservation,
            &seats,
            Points(50),
            now,
            PaymentId::new(),
            AttemptId::new(),
        )
        .expect("again");
        assert_eq!(again, ChargeSettlement::AlreadySettled);
    }

    #[test]
    fn a_capture_after_the_hold_ended_is_refunded_with_the_reason() {
        let r = held();
        let b = begin(&r, t0());
        let after = b.attempt.deadline;
        let settled = settle_charge(
            &b.attempt,
            &captured(),
            &sale(),
            &b.reservation,
            &b.seats,
            Points(0),
            after,
            PaymentId::new(),
            AttemptId::new(),
        )
        .expect("settle");
        let ChargeSettlement::RefundDue {
            attempt, refund, ..
        } = settled
        else {
            panic!("expected a refund, got {settled:?}");
        };
        assert!(matches!(attempt.state, AttemptState::Succeeded { .. }));
        assert_eq!(refund.kind, AttemptKind::Refund);
        assert_eq!(refund.amount, r.amount);
        assert_eq!(refund.charge_key.as_deref(), Some(attempt.key.as_str()));
        assert_eq!(refund.reason, Some(RefundReason::SeatsNotKept));
        assert!(refund.is_pending());
        // A seat taken by another buyer (the hold ran out and was re-held) is also not kept.
        let mut taken = b.seats.clone();
        taken[0] = SeatState::Sold {
            reservation: ReservationId::new(),
        };
        let settled = settle_charge(
            &b.attempt,
            &captured(),
            &sale(),
            &b.reservation,
            &taken,
            Points(0),
            t0(),
            PaymentId::new(),
            AttemptId::new(),
        )
        .expect("settle");
        assert!(matches!(settled, ChargeSettlement::RefundDue { .. }));
    }

    #[test]
    fn a_decline_releases_the_seats_and_takes_nothing() {
        let r = held();
        let b = begin(&r, t0());
        let settled = settle_charge(
            &b.attempt,
            &ChargeOutcome::Declined {
                reason: "card declined".into(),
            },
            &sale(),
            &b.reservation,
            &b.seats,
            Points(0),
            t0(),
            PaymentId::new(),
            AttemptId::new(),
        )
        .expect("settle");
        let ChargeSettlement::Released {
            reservation,
            seats,
            attempt,
            ..
        } = settled
        else {
            panic!("expected released, got {settled:?}");
        };
        assert_eq!(
            reservation.map(|r| (r.status, r.refunded_amount)),
            Some((ReservationStatus::Cancelled, Points::ZERO))
        );
        assert!(seats.iter().all(|s| *s == SeatState::Available));
        assert!(matches!(attempt.state, AttemptState::Failed { .. }));
    }

    #[test]
    fn points_pay_and_cancel_wait_for_a_charge_in_flight() {
        let b = begin(&held(), t0());
        let in_flight = [b.attempt.clone()];
        assert!(check_no_charge_in_flight(&in_flight, Action::Cancel).is_err());
        let settled = PaymentAttempt {
            state: AttemptState::Failed {
                reason: "declined".into(),
            },
            ..b.attempt
        };
        assert!(check_no_charge_in_flight(&[settled], Action::Cancel).is_ok());
    }

    #[test]
    fn refunds_are_of_captured_charges_and_settle_once() {
        let b = begin(&held(), t0());
        assert!(refund_on_cancel(&b.attempt, t0(), AttemptId::new()).is_err());
        let charge = PaymentAttempt {
            state: AttemptState::Succeeded {
                reference: "ch_1".into(),
            },
            ..b.attempt
        };
        let (refund, _) = refund_on_cancel(&charge, t0(), AttemptId::new()).expect("refund");
        assert_eq!(refund.reason, Some(RefundReason::Cancelled));
        let outcome = RefundOutcome::Refunded {
            reference: "re_1".into(),
        };
        let (done, _) = settle_refund(&refund, &outcome)
            .expect("settle")
            .expect("first answer");
        assert!(matches!(done.state, AttemptState::Succeeded { .. }));
        assert_eq!(settle_refund(&done, &outcome).expect("again"), None);
    }

    #[test]
    fn recovery_never_reads_an_unknown_outcome_as_a_failure() {
        let b = begin(&held(), t0());
        let a = &b.attempt;
        let before = a.deadline - Duration::seconds(1);
        assert_eq!(
            recovery_step(a, &ChargeStatus::Unknown, before),
            Recovery::Wait
        );
        assert_eq!(
            recovery_step(a, &ChargeStatus::Pending, before),
            Recovery::Wait
        );
        assert_eq!(
            recovery_step(a, &ChargeStatus::Unknown, a.deadline),
            Recovery::Void
        );
        assert_eq!(
            recovery_step(a, &ChargeStatus::Done(captured()), before),
            Recovery::Settle(captured())
        );
        let refund = refund_attempt(a, RefundReason::Cancelled, t0(), AttemptId::new());
        assert_eq!(
            recovery_step(&refund, &ChargeStatus::Unknown, t0()),
            Recovery::RetryRefund
        );
    }

    #[test]
    fn a_capture_after_the_sale_ended_is_refunded_and_the_hold_released() {
        let r = held();
        let b = begin(&r, t0());
        let closed = SaleWindow {
            starts_at: t0() + Duration::days(30),
            opens_at: None,
            closes_at: Some(t0() + Duration::seconds(1)),
        };
        let settled = settle_charge(
            &b.attempt,
            &captured(),
            &closed,
            &b.reservation,
            &b.seats,
            Points(0),
            t0() + Duration::seconds(2),
            PaymentId::new(),
            AttemptId::new(),
        )
        .expect("settle");
        let ChargeSettlement::RefundDue {
            reservation, seats, ..
        } = settled
        else {
            panic!("expected a refund, got {settled:?}");
        };
        assert_eq!(
            reservation.map(|r| r.status),
            Some(ReservationStatus::Cancelled),
            "the hold is released with the refund, so it can never also be paid"
        );
        assert!(seats.iter().all(|s| *s == SeatState::Available));
    }

    #[test]
    fn a_capture_reported_after_a_decline_is_refunded_not_kept() {
        let r = held();
        let b = begin(&r, t0());
        let declined = PaymentAttempt {
            state: AttemptState::Failed {
                reason: "declined".into(),
            },
            ..b.attempt.clone()
        };
        let released = Reservation {
            status: ReservationStatus::Cancelled,
            ..b.reservation.clone()
        };
        let free = vec![SeatState::Available; 2];
        let settled = settle_charge(
            &declined,
            &captured(),
            &sale(),
            &released,
            &free,
            Points(0),
            t0(),
            PaymentId::new(),
            AttemptId::new(),
        )
        .expect("settle");
        let ChargeSettlement::RefundDue {
            attempt,
            refund,
            reservation,
            ..
        } = settled
        else {
            panic!("expected a refund, got {settled:?}");
        };
        assert!(matches!(attempt.state, AttemptState::Succeeded { .. }));
        assert_eq!(refund.amount, r.amount);
        assert_eq!(reservation, None, "a cancelled reservation stays cancelled");
        // A decline reported after a capture changes nothing.
        let sold = PaymentAttempt {
            state: AttemptState::Succeeded {
                reference: "ch_1".into(),
            },
            ..b.attempt
        };
        let decline = ChargeOutcome::Declined {
            reason: "late".into(),
        };
        assert_eq!(
            settle_charge(
                &sold,
                &decline,
                &sale(),
                &b.reservation,
                &b.seats,
                Points(0),
                t0(),
                PaymentId::new(),
                AttemptId::new(),
            )
            .expect("settle"),
            ChargeSettlement::AlreadySettled
        );
    }

    #[test]
    fn a_decline_never_frees_the_seats_of_a_reservation_that_is_not_held() {
        let b = begin(&held(), t0());
        let confirmed = Reservation {
            status: ReservationStatus::Confirmed,
            ..b.reservation.clone()
        };
        let sold: Vec<SeatState> = b
            .seats
            .iter()
            .map(|_| SeatState::Sold {
                reservation: confirmed.id,
            })
            .collect();
        let settled = settle_charge(
            &b.attempt,
            &ChargeOutcome::Declined {
                reason: "declined".into(),
            },
            &sale(),
            &confirmed,
            &sold,
            Points(0),
            t0(),
            PaymentId::new(),
            AttemptId::new(),
        );
        assert_eq!(settled.map_err(|e| e.code()), Err(ErrorCode::InvalidState));
    }

    #[test]
    fn a_bound_that_is_not_positive_or_overflows_is_refused() {
        let r = held();
        for bound in [Duration::zero(), Duration::seconds(-1), Duration::MAX] {
            let got = begin_provider_payment(
                r.user_id,
                t0(),
                bound,
                &sale(),
                &r,
                &seats(&r),
                &[],
                AttemptId::new(),
            );
            assert_eq!(
                got.map(|_| ()).map_err(|e| e.code()),
                Err(ErrorCode::InvalidRequest)
            );
        }
    }

    #[test]
    fn a_refunded_charge_no_longer_pays_the_reservation() {
        let b = begin(&held(), t0());
        let charge = PaymentAttempt {
            state: AttemptState::Succeeded {
                reference: "ch_1".into(),
            },
            ..b.attempt
        };
        assert!(paying_charge(std::slice::from_ref(&charge)).is_some());
        let refund = refund_attempt(&charge, RefundReason::SeatsNotKept, t0(), AttemptId::new());
        assert!(paying_charge(&[charge, refund]).is_none());
    }
}
