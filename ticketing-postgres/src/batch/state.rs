//! A batch's loaded rows and the decision of its commands, one after another in arrival order,
//! each by `ticketing_core::rules`, over what the commands before it left. Nothing here does
//! I/O: the batch loads (and locks) rows into a [`State`], applies its commands, and writes what
//! [`State`] says changed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use ticketing_core::provider::PaymentAttempt;
use ticketing_core::rules::{self, Action};
use ticketing_core::{
    AttemptId, Balance, CancelCommand, ChargeCommand, DomainEvent, Error, EventKind, FencingToken,
    HoldCommand, IdempotencyKey, IdempotencyRecord, OptionId, PayCommand, Payment, PaymentId,
    Points, Reservation, ReservationId, ReservationStatus, SaleWindow, Seat, SeatId, SeatState,
    StoredOutcome, UserId,
};

/// One command of a batch.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    Hold(HoldCommand),
    Pay(PayCommand),
    Cancel(CancelCommand),
    Charge(ChargeCommand),
}

/// The answer to one command.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Hold(Reservation),
    Pay(Payment),
    Cancel(Reservation),
    Charge(Balance),
}

impl Command {
    /// The user whose per-user lock serialises the command (the payer or canceller must own the
    /// reservation, or the command is refused without touching anything).
    pub(crate) fn user(&self) -> UserId {
        match self {
            Command::Hold(c) => c.user_id,
            Command::Pay(c) => c.user_id,
            Command::Cancel(c) => c.user_id,
            Command::Charge(c) => c.user_id,
        }
    }

    /// The reservation it names, for payments and cancels.
    pub(crate) fn reservation(&self) -> Option<ReservationId> {
        match self {
            Command::Pay(c) => Some(c.reservation_id),
            Command::Cancel(c) => Some(c.reservation_id),
            Command::Hold(_) | Command::Charge(_) => None,
        }
    }

    /// The idempotency key it carries.
    pub(crate) fn key(&self) -> Option<&IdempotencyKey> {
        match self {
            Command::Hold(c) => c.idempotency.as_ref(),
            Command::Pay(c) => c.idempotency.as_ref(),
            Command::Charge(c) => c.idempotency.as_ref(),
            Command::Cancel(c) => c.idempotency.as_ref(),
        }
    }
}

/// A seat as loaded (and locked) by the batch.
#[derive(Debug, Clone)]
pub(crate) struct SeatSlot {
    pub seat: Seat,
    pub state: SeatState,
    pub fence: Option<FencingToken>,
}

/// A ledger entry to insert.
#[derive(Debug, Clone)]
pub(crate) struct LedgerEntry {
    pub user_id: UserId,
    pub kind: &'static str,
    pub amount: Points,
    pub reference: Option<uuid::Uuid>,
    pub at: DateTime<Utc>,
}

/// The rows a batch loaded, then changed by its commands.
#[derive(Debug, Default, Clone)]
pub(crate) struct State {
    /// Locked wallets.
    pub wallets: HashMap<UserId, Points>,
    /// Locked reservations (named ones, and the live ones of capped holders), then the new ones.
    pub reservations: HashMap<ReservationId, Reservation>,
    /// The status each loaded reservation had when it was loaded.
    pub loaded_status: HashMap<ReservationId, ReservationStatus>,
    /// Locked seats.
    pub seats: BTreeMap<SeatId, SeatSlot>,
    /// Seats that exist but were skipped because another transaction had them locked (NOWAIT).
    pub skipped: HashSet<SeatId>,
    /// The sale windows of the options the batch's holds name and of the reservations its
    /// payments and cancels name (an option absent here does not exist).
    pub options: HashMap<OptionId, SaleWindow>,
    /// Idempotency records found, then the ones written by this batch.
    pub keys: HashMap<(UserId, String), IdempotencyRecord>,
    /// The provider payment attempts of the named reservations (their owners' wallets are
    /// locked), then the refunds this batch's cancels recorded.
    pub attempts: HashMap<ReservationId, Vec<PaymentAttempt>>,

    /// What changed, for the write phase.
    pub dirty_wallets: BTreeSet<UserId>,
    pub dirty_seats: BTreeSet<SeatId>,
    pub created: Vec<ReservationId>,
    pub updated: BTreeSet<ReservationId>,
    pub payments: Vec<Payment>,
    pub ledger: Vec<LedgerEntry>,
    pub events: Vec<DomainEvent>,
    pub new_keys: Vec<(IdempotencyKey, StoredOutcome, DateTime<Utc>)>,
    pub new_attempts: Vec<PaymentAttempt>,
}

impl State {
    /// Decide and apply one command. A refusal changes nothing.
    pub(crate) fn apply(&mut self, cmd: &Command) -> Result<Outcome, Error> {
        match cmd {
            Command::Hold(c) => self.hold(c).map(Outcome::Hold),
            Command::Pay(c) => self.pay(c).map(Outcome::Pay),
            Command::Cancel(c) => self.cancel(c).map(Outcome::Cancel),
            Command::Charge(c) => self.charge(c).map(Outcome::Charge),
        }
    }

    fn replay(&self, key: Option<&IdempotencyKey>) -> Result<Option<StoredOutcome>, Error> {
        let Some(key) = key else { return Ok(None) };
        match self.keys.get(&(key.user_id, key.key.clone())) {
            None => Ok(None),
            Some(record) => record.replay(&key.fingerprint).map(Some),
        }
    }

    fn remember(
        &mut self,
        key: Option<&IdempotencyKey>,
        outcome: StoredOutcome,
        now: DateTime<Utc>,
    ) {
        if let Some(key) = key {
            self.keys.insert(
                (key.user_id, key.key.clone()),
                IdempotencyRecord {
                    fingerprint: key.fingerprint.clone(),
                    outcome: outcome.clone(),
                },
            );
            self.new_keys.push((key.clone(), outcome, now));
        }
    }

    fn balance(&self, user: UserId) -> Result<Points, Error> {
        self.wallets
            .get(&user)
            .copied()
            .ok_or_else(|| Error::invalid("the batch did not lock this wallet"))
    }

    /// The locked seats of `ids`, refusing a stale fencing token.
    fn slots(
        &self,
        ids: &[SeatId],
        fence: Option<FencingToken>,
    ) -> Result<(Vec<&Seat>, Vec<SeatState>), Error> {
        let skipped: Vec<SeatId> = ids
            .iter()
            .filter(|id| self.skipped.contains(id))
            .copied()
            .collect();
        if !skipped.is_empty() {
            return Err(Error::SeatUnavailable { seats: skipped });
        }
        let mut seats = Vec::with_capacity(ids.len());
        let mut states = Vec::with_capacity(ids.len());
        for id in ids {
            let slot = self
                .seats
                .get(id)
                .ok_or_else(|| Error::not_found("seat", id))?;
            if !rules::fence_allows(slot.fence, fence) {
                return Err(Error::LockLost);
            }
            // The column is a BIGINT: refuse a token it cannot hold here, for this command
            // alone, rather than fail the batch's write.
            crate::rows::fence_param(fence)?;
            seats.push(&slot.seat);
            states.push(slot.state);
        }
        Ok((seats, states))
    }

    fn set_seats(&mut self, ids: &[SeatId], next: &[SeatState], fence: Option<FencingToken>) {
        for (id, state) in ids.iter().zip(next) {
            if let Some(slot) = self.seats.get_mut(id) {
                slot.state = *state;
                slot.fence = slot.fence.max(fence);
                self.dirty_seats.insert(*id);
            }
        }
    }

    fn emit(&mut self, at: DateTime<Utc>, kind: EventKind) {
        self.events.push(DomainEvent::new(at, kind));
    }

    /// The sale window of an option the batch loaded; `not_found` for one that does not exist.
    fn sale_window(&self, option: OptionId) -> Result<SaleWindow, Error> {
        self.options
            .get(&option)
            .copied()
            .ok_or_else(|| Error::not_found("option", option))
    }

    /// The reservation a payment or cancel names, owned by `user`.
    fn owned(&self, id: ReservationId, user: UserId) -> Result<Reservation, Error> {
        let r = self
            .reservations
            .get(&id)
            .ok_or_else(|| Error::not_found("reservation", id))?;
        if r.user_id != user {
            return Err(Error::Forbidden);
        }
        Ok(r.clone())
    }

    fn hold(&mut self, cmd: &HoldCommand) -> Result<Reservation, Error> {
        if let Some(outcome) = self.replay(cmd.idempotency.as_ref())? {
            return outcome.into_hold();
        }
        let (seats, states) = self.slots(&cmd.seat_ids, cmd.fence)?;
        let sale = self.sale_window(cmd.option_id)?;
        let owned = rules::seats_owned(
            self.reservations
                .values()
                .filter(|r| r.user_id == cmd.user_id),
            cmd.option_id,
            cmd.now,
        );
        let d = rules::decide_hold(cmd, &sale, &seats, &states, owned)?;
        self.set_seats(&cmd.seat_ids, &d.seats, cmd.fence);
        let reservation = d.reservation;
        self.reservations
            .insert(reservation.id, reservation.clone());
        self.created.push(reservation.id);
        self.emit(cmd.now, d.event);
        let outcome = StoredOutcome::Hold(reservation.clone());
        self.remember(cmd.idempotency.as_ref(), outcome, cmd.now);
        Ok(reservation)
    }

    fn pay(&mut self, cmd: &PayCommand) -> Result<Payment, Error> {
        let reservation = self.owned(cmd.reservation_id, cmd.user_id)?;
        if let Some(outcome) = self.replay(cmd.idempotency.as_ref())? {
            return outcome.into_payment();
        }
        rules::transition(&reservation, Action::Pay, cmd.now)?;
        rules::check_no_charge_in_flight(self.attempts_of(reservation.id), Action::Pay)?;
        let balance = self.balance(cmd.user_id)?;
        let (_, states) = self.slots(&reservation.seat_ids, cmd.fence)?;
        let sale = self.sale_window(reservation.option_id)?;
        let id = PaymentId::new();
        let d = rules::decide_pay(cmd, &sale, &reservation, balance, &states, id)?;
        self.set_seats(&reservation.seat_ids, &d.seats, cmd.fence);
        self.wallets.insert(cmd.user_id, d.payment.balance);
        self.dirty_wallets.insert(cmd.user_id);
        self.touch(d.reservation);
        self.payments.push(d.payment.clone());
        // The ledger records movements of points: a free seat moves none.
        if d.payment.amount.is_positive() {
            self.ledger.push(LedgerEntry {
                user_id: cmd.user_id,
                kind: "payment",
                amount: d.payment.amount,
                reference: Some(d.payment.id.0),
                at: cmd.now,
            });
        }
        self.emit(cmd.now, d.event);
        let outcome = StoredOutcome::Payment(d.payment.clone());
        self.remember(cmd.idempotency.as_ref(), outcome, cmd.now);
        Ok(d.payment)
    }

    fn cancel(&mut self, cmd: &CancelCommand) -> Result<Reservation, Error> {
        let reservation = self.owned(cmd.reservation_id, cmd.user_id)?;
        if let Some(outcome) = self.replay(cmd.idempotency.as_ref())? {
            return outcome.into_cancel();
        }
        rules::transition(&reservation, Action::Cancel, cmd.now)?;
        let attempts = self.attempts_of(reservation.id);
        rules::check_no_charge_in_flight(attempts, Action::Cancel)?;
        // Paid through a provider: refunded through it, not to the wallet.
        let charge = rules::charge_to_refund(attempts, &reservation).cloned();
        let balance = self.balance(cmd.user_id)?;
        let (_, states) = self.slots(&reservation.seat_ids, cmd.fence)?;
        let sale = self.sale_window(reservation.option_id)?;
        let (d, refund) = rules::decide_cancel_refunding(
            cmd,
            &sale,
            &reservation,
            balance,
            &states,
            charge.as_ref(),
            AttemptId::new(),
        )?;
        self.set_seats(&reservation.seat_ids, &d.seats, cmd.fence);
        if d.refund.is_positive() {
            self.wallets.insert(cmd.user_id, d.balance);
            self.dirty_wallets.insert(cmd.user_id);
            self.ledger.push(LedgerEntry {
                user_id: cmd.user_id,
                kind: "refund",
                amount: d.refund,
                reference: Some(reservation.id.0),
                at: cmd.now,
            });
        }
        self.touch(d.reservation.clone());
        self.emit(cmd.now, d.event);
        if let Some((refund, event)) = refund {
            self.emit(cmd.now, event);
            self.attempts
                .entry(refund.reservation_id)
                .or_default()
                .push(refund.clone());
            self.new_attempts.push(refund);
        }
        let outcome = StoredOutcome::Cancel(d.reservation.clone());
        self.remember(cmd.idempotency.as_ref(), outcome, cmd.now);
        Ok(d.reservation)
    }

    fn charge(&mut self, cmd: &ChargeCommand) -> Result<Balance, Error> {
        if let Some(outcome) = self.replay(cmd.idempotency.as_ref())? {
            return outcome.into_charge();
        }
        let balance = self.balance(cmd.user_id)?;
        let d = rules::decide_charge(cmd, balance)?;
        self.wallets.insert(cmd.user_id, d.balance.balance);
        self.dirty_wallets.insert(cmd.user_id);
        self.ledger.push(LedgerEntry {
            user_id: cmd.user_id,
            kind: "charge",
            amount: cmd.amount,
            reference: None,
            at: cmd.now,
        });
        self.emit(cmd.now, rules::ChargeDecision::event(cmd));
        self.remember(
            cmd.idempotency.as_ref(),
            StoredOutcome::Charge(d.balance),
            cmd.now,
        );
        Ok(d.balance)
    }

    /// The attempts of a reservation (none for most).
    fn attempts_of(&self, id: ReservationId) -> &[PaymentAttempt] {
        self.attempts.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Store a changed reservation: new ones are inserted in their final state, loaded ones
    /// updated.
    fn touch(&mut self, r: Reservation) {
        if self.loaded_status.contains_key(&r.id) {
            self.updated.insert(r.id);
        }
        self.reservations.insert(r.id, r);
    }

    /// Seat sales to delete (reservations that were confirmed when loaded and are not now) and
    /// to insert (reservations confirmed now and not when loaded).
    pub(crate) fn sales(&self) -> (Vec<ReservationId>, Vec<(SeatId, ReservationId)>) {
        let confirmed = ReservationStatus::Confirmed;
        let mut gone = Vec::new();
        let mut sold = Vec::new();
        for id in self.updated.iter().chain(&self.created) {
            let Some(r) = self.reservations.get(id) else {
                continue;
            };
            let was = self.loaded_status.get(id).copied() == Some(confirmed);
            let is = r.status == confirmed;
            if was && !is {
                gone.push(*id);
            }
            if is && !was {
                sold.extend(r.seat_ids.iter().map(|s| (*s, *id)));
            }
        }
        (gone, sold)
    }
}

/// The negative control of the batch tests, compiled only with
/// `--cfg ticketing_control="batch_snapshot"` (see `scripts/controls.sh`): every command is
/// decided on the rows as the batch loaded them, not on what the commands before it left (the
/// mistake of a batch that only shares the transaction). `tests/batch.rs` must fail with it.
#[cfg(ticketing_control = "batch_snapshot")]
pub(crate) fn apply_on_snapshot(
    state: &mut State,
    cmds: &[&Command],
) -> Vec<Result<Outcome, Error>> {
    let base = state.clone();
    cmds.iter()
        .map(|cmd| {
            let mut own = base.clone();
            let answer = own.apply(cmd);
            for id in &own.dirty_seats {
                if let Some(slot) = own.seats.get(id) {
                    state.seats.insert(*id, slot.clone());
                    state.dirty_seats.insert(*id);
                }
            }
            for user in &own.dirty_wallets {
                if let Some(b) = own.wallets.get(user) {
                    state.wallets.insert(*user, *b);
                    state.dirty_wallets.insert(*user);
                }
            }
            for id in own.created.iter().chain(&own.updated) {
                if let Some(r) = own.reservations.get(id) {
                    state.reservations.insert(*id, r.clone());
                }
            }
            state.created.extend(own.created);
            state.updated.extend(own.updated);
            state.payments.extend(own.payments);
            state.ledger.extend(own.ledger);
            state.events.extend(own.events);
            state.new_keys.extend(own.new_keys);
            state.new_attempts.extend(own.new_attempts);
            answer
        })
        .collect()
}
