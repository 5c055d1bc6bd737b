//! Payments through a provider in the memory store (docs/payments.md): each step under the
//! owner's book lock (and the seats'), decided by `rules::provider`.

use ticketing_core::provider::{
    AttemptState, BeginPaymentCommand, ChargeOutcome, ChargeSettled, PaymentAttempt,
    SettleChargeCommand, SettleRefundCommand,
};
use ticketing_core::rules::{self, ChargeSettlement};
use ticketing_core::{AttemptId, Error, ReservationId, Result, StoredOutcome, UserId};

use super::{MemoryStore, UserBook, sale_window};
use crate::sync::{lock, read, write};

impl UserBook {
    /// The attempts of one reservation.
    pub(super) fn attempts_of(&self, reservation: ReservationId) -> Vec<PaymentAttempt> {
        self.attempts
            .iter()
            .filter(|a| a.reservation_id == reservation)
            .cloned()
            .collect()
    }

    /// One attempt, by id; `not_found` if this book has none such.
    fn attempt(&self, id: AttemptId) -> Result<PaymentAttempt> {
        self.attempts
            .iter()
            .find(|a| a.id == id)
            .cloned()
            .ok_or_else(|| Error::not_found("payment attempt", id))
    }

    /// Add or replace an attempt (by id).
    fn keep(&mut self, attempt: PaymentAttempt) {
        match self.attempts.iter_mut().find(|a| a.id == attempt.id) {
            Some(old) => *old = attempt,
            None => self.attempts.push(attempt),
        }
    }
}

impl MemoryStore {
    fn attempt_owner(&self, id: AttemptId) -> Result<UserId> {
        read(&self.inner.attempt_owners)
            .get(&id)
            .copied()
            .ok_or_else(|| Error::not_found("payment attempt", id))
    }

    /// Record an attempt as stored: its owner, for lookups by id, and whether it is pending,
    /// for the recovery job. Called after every write of an attempt.
    pub(super) fn note_attempt(&self, attempt: &PaymentAttempt) {
        if !read(&self.inner.attempt_owners).contains_key(&attempt.id) {
            write(&self.inner.attempt_owners).insert(attempt.id, attempt.user_id);
        }
        let mut pending = lock(&self.inner.pending_attempts);
        let at = (attempt.created_at, attempt.id);
        if attempt.is_pending() {
            pending.insert(at, attempt.user_id);
        } else {
            pending.remove(&at);
        }
    }

    pub(super) fn begin_provider(&self, cmd: BeginPaymentCommand) -> Result<PaymentAttempt> {
        let owner = self.owner(cmd.reservation_id)?;
        if owner != cmd.user_id {
            return Err(Error::Forbidden);
        }
        let catalog = read(&self.inner.catalog);
        let book = self.book(owner);
        let mut book = lock(&book);
        let reservation = book
            .reservations
            .get(&cmd.reservation_id)
            .cloned()
            .ok_or_else(|| Error::not_found("reservation", cmd.reservation_id))?;
        if let Some(outcome) = book.replay(cmd.idempotency.as_ref())? {
            // The attempt as it stands now (it may have been settled since).
            let first = outcome.into_attempt()?;
            return Ok(book.attempt(first.id).unwrap_or(first));
        }
        let sale = sale_window(&catalog, reservation.option_id)?;
        let attempts = book.attempts_of(reservation.id);
        let cells = self.inner.seats.cells(&reservation.seat_ids)?;
        let d = self.inner.seats.transact_decision(&cells, None, |states| {
            let d = rules::begin_provider_payment(
                cmd.user_id,
                cmd.now,
                cmd.bound,
                &sale,
                &reservation,
                states,
                &attempts,
                cmd.attempt_id,
            )?;
            let next = d.seats.clone();
            Ok((d, next))
        })?;
        book.reservations
            .insert(d.reservation.id, d.reservation.clone());
        book.keep(d.attempt.clone());
        self.note_attempt(&d.attempt);
        let key = book.remember(
            cmd.idempotency,
            StoredOutcome::Attempt {
                attempt: d.attempt.clone(),
            },
        );
        self.log_key(cmd.now, owner, key);
        self.emit(cmd.now, d.event);
        drop(catalog);
        Ok(d.attempt)
    }

    pub(super) fn settle_provider_charge(&self, cmd: SettleChargeCommand) -> Result<ChargeSettled> {
        let owner = self.attempt_owner(cmd.attempt_id)?;
        // As in `pay`: the catalog first (a sale window change waits for the settlement).
        let catalog = read(&self.inner.catalog);
        let book = self.book(owner);
        let mut book = lock(&book);
        let attempt = book.attempt(cmd.attempt_id)?;
        // A second answer that agrees with the first touches nothing, not even the seats.
        let contradicts = matches!(
            (&attempt.state, &cmd.outcome),
            (AttemptState::Failed { .. }, ChargeOutcome::Captured { .. })
        );
        if !attempt.is_pending() && !contradicts {
            return Ok(ChargeSettled::AlreadySettled(attempt));
        }
        let reservation = book
            .reservations
            .get(&attempt.reservation_id)
            .cloned()
            .ok_or_else(|| Error::not_found("reservation", attempt.reservation_id))?;
        let balance = book.balance;
        let sale = sale_window(&catalog, reservation.option_id)?;
        let cells = self.inner.seats.cells(&reservation.seat_ids)?;
        let settled = self.inner.seats.transact_decision(&cells, None, |states| {
            let s = rules::settle_charge(
                &attempt,
                &cmd.outcome,
                &sale,
                &reservation,
                states,
                balance,
                cmd.now,
                cmd.payment_id,
                cmd.refund_id,
            )?;
            let next = s.next_seats(states);
            Ok((s, next))
        })?;
        let settled = match settled {
            ChargeSettlement::AlreadySettled => ChargeSettled::AlreadySettled(attempt),
            ChargeSettlement::Confirmed {
                reservation,
                payment,
                attempt,
                event,
                ..
            } => {
                book.reservations.insert(reservation.id, reservation);
                self.note_attempt(&attempt);
                book.keep(attempt);
                self.emit(cmd.now, event);
                ChargeSettled::Confirmed(payment)
            }
            ChargeSettlement::Released {
                reservation,
                attempt,
                events,
                ..
            } => {
                if let Some(r) = reservation {
                    book.reservations.insert(r.id, r);
                }
                book.keep(attempt.clone());
                self.note_attempt(&attempt);
                for event in events {
                    self.emit(cmd.now, event);
                }
                ChargeSettled::Released(attempt)
            }
            ChargeSettlement::RefundDue {
                attempt,
                refund,
                reservation,
                events,
                ..
            } => {
                if let Some(r) = reservation {
                    book.reservations.insert(r.id, r);
                }
                self.note_attempt(&attempt);
                book.keep(attempt);
                book.keep(refund.clone());
                self.note_attempt(&refund);
                for event in events {
                    self.emit(cmd.now, event);
                }
                ChargeSettled::RefundDue(refund)
            }
        };
        drop(catalog);
        Ok(settled)
    }

    pub(super) fn settle_provider_refund(
        &self,
        cmd: SettleRefundCommand,
    ) -> Result<PaymentAttempt> {
        let owner = self.attempt_owner(cmd.attempt_id)?;
        let book = self.book(owner);
        let mut book = lock(&book);
        let attempt = book.attempt(cmd.attempt_id)?;
        match rules::settle_refund(&attempt, &cmd.outcome)? {
            None => Ok(attempt),
            Some((settled, event)) => {
                book.keep(settled.clone());
                self.note_attempt(&settled);
                self.emit(cmd.now, event);
                Ok(settled)
            }
        }
    }

    pub(super) fn provider_attempt(&self, id: AttemptId) -> Result<PaymentAttempt> {
        let owner = self.attempt_owner(id)?;
        let book = self.book(owner);
        let book = lock(&book);
        book.attempt(id)
    }

    pub(super) fn pending_provider_attempts(&self, limit: usize) -> Vec<PaymentAttempt> {
        // The index first (a leaf lock, released), then each owner's book.
        let oldest: Vec<(AttemptId, UserId)> = lock(&self.inner.pending_attempts)
            .iter()
            .take(limit)
            .map(|((_, id), user)| (*id, *user))
            .collect();
        oldest
            .into_iter()
            .filter_map(|(id, user)| {
                let book = self.existing_book(user)?;
                let attempt = lock(&book).attempt(id).ok()?;
                attempt.is_pending().then_some(attempt)
            })
            .collect()
    }
}
