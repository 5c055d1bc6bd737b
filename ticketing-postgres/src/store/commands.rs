//! One transaction per command: load, lock, let `rules` decide, store (the per-command path).

use ticketing_core::rules::{self, Action};
use ticketing_core::{
    AttemptId, Balance, CancelCommand, ChargeCommand, HoldCommand, PayCommand, Payment, PaymentId,
    Reservation, ReservationStatus, Result, Seat, SeatState, StoredOutcome,
};

use super::{PgStore, commit, ids};
use crate::error::Fail;

impl PgStore {
    pub(super) async fn try_hold(&self, cmd: &HoldCommand) -> Result<Reservation, Fail> {
        let mut tx = self.begin().await?;
        self.lock_user(&mut tx, cmd.user_id).await?;
        if let Some(outcome) = self.replay(&mut tx, cmd.idempotency.as_ref()).await? {
            return Ok(outcome.into_hold()?);
        }
        // Negative control: the window read before the seats are locked (stale under a change).
        #[cfg(ticketing_control = "stale_window")]
        let early = self.sale_window(&mut tx, cmd.option_id).await?;
        let owned = match cmd.max_seats_per_user {
            Some(_) => {
                let owned: i64 = sqlx::query_scalar(sql!("user_seat_count"))
                    .bind(cmd.user_id.0)
                    .bind(cmd.option_id.0)
                    .bind(cmd.now)
                    .fetch_one(&mut *tx)
                    .await?;
                owned.max(0) as u64
            }
            None => 0,
        };
        let rows = self.load_seats(&mut tx, &cmd.seat_ids, true).await?;
        #[cfg(not(ticketing_control = "stale_window"))]
        let sale = self.sale_window(&mut tx, cmd.option_id).await?;
        #[cfg(ticketing_control = "stale_window")]
        let sale = early;
        let seats: Vec<&Seat> = rows.iter().map(|r| &r.seat).collect();
        let states: Vec<SeatState> = rows.iter().map(|r| r.state).collect();
        let d = rules::decide_hold(cmd, &sale, &seats, &states, owned)?;
        self.write_seats(&mut tx, &rows, &d.seats, cmd.fence)
            .await?;
        let reservation = d.reservation;
        sqlx::query(sql!("reservation_insert"))
            .bind(reservation.id.0)
            .bind(reservation.user_id.0)
            .bind(reservation.option_id.0)
            .bind(ids(&reservation.seat_ids))
            .bind(reservation.amount.0)
            .bind(reservation.expires_at)
            .bind(reservation.created_at)
            .execute(&mut *tx)
            .await?;
        self.emit(&mut tx, cmd.now, d.event).await?;
        let outcome = StoredOutcome::Hold(reservation.clone());
        self.remember(&mut tx, cmd.idempotency.as_ref(), outcome, cmd.now)
            .await?;
        commit(tx).await?;
        Ok(reservation)
    }

    pub(super) async fn try_pay(&self, cmd: &PayCommand) -> Result<Payment, Fail> {
        let mut tx = self.begin().await?;
        let balance = self
            .lock_owner(&mut tx, cmd.reservation_id, cmd.user_id)
            .await?;
        if let Some(outcome) = self.replay(&mut tx, cmd.idempotency.as_ref()).await? {
            return Ok(outcome.into_payment()?);
        }
        let reservation = self
            .fetch_reservation(&mut tx, cmd.reservation_id, true)
            .await?;
        // Refusals that need no seat come first (no seat lock taken for them).
        rules::transition(&reservation, Action::Pay, cmd.now)?;
        let attempts = self.attempts_of(&mut tx, reservation.id).await?;
        rules::check_no_charge_in_flight(&attempts, Action::Pay)?;
        let d = self
            .on_seats(&mut tx, &reservation, cmd.fence, |states, sale| {
                let id = PaymentId::new();
                let d = rules::decide_pay(cmd, sale, &reservation, balance, states, id)?;
                let next = d.seats.clone();
                Ok((d, next))
            })
            .await?;
        let payment = d.payment;
        self.set_balance(&mut tx, cmd.user_id, payment.balance)
            .await?;
        sqlx::query(sql!("payment_insert"))
            .bind(payment.id.0)
            .bind(payment.reservation_id.0)
            .bind(payment.user_id.0)
            .bind(payment.amount.0)
            .bind(payment.balance.0)
            .bind(payment.created_at)
            .execute(&mut *tx)
            .await?;
        self.sell(&mut tx, &reservation).await?;
        self.update_reservation(&mut tx, &d.reservation).await?;
        self.ledger(
            &mut tx,
            cmd.user_id,
            "payment",
            payment.amount,
            Some(payment.id.0),
            cmd.now,
        )
        .await?;
        self.emit(&mut tx, cmd.now, d.event).await?;
        let outcome = StoredOutcome::Payment(payment.clone());
        self.remember(&mut tx, cmd.idempotency.as_ref(), outcome, cmd.now)
            .await?;
        commit(tx).await?;
        Ok(payment)
    }

    pub(super) async fn try_cancel(&self, cmd: &CancelCommand) -> Result<Reservation, Fail> {
        let mut tx = self.begin().await?;
        let balance = self
            .lock_owner(&mut tx, cmd.reservation_id, cmd.user_id)
            .await?;
        if let Some(outcome) = self.replay(&mut tx, cmd.idempotency.as_ref()).await? {
            return Ok(outcome.into_cancel()?);
        }
        let reservation = self
            .fetch_reservation(&mut tx, cmd.reservation_id, true)
            .await?;
        rules::transition(&reservation, Action::Cancel, cmd.now)?;
        let attempts = self.attempts_of(&mut tx, reservation.id).await?;
        rules::check_no_charge_in_flight(&attempts, Action::Cancel)?;
        // Paid through a provider: the money goes back through it, not to the wallet; decided
        // with the seats, so nothing is written unless all of it is.
        let charge = rules::charge_to_refund(&attempts, &reservation);
        let refund_id = AttemptId::new();
        let (d, refund) = self
            .on_seats(&mut tx, &reservation, cmd.fence, |states, sale| {
                let decided = rules::decide_cancel_refunding(
                    cmd,
                    sale,
                    &reservation,
                    balance,
                    states,
                    charge,
                    refund_id,
                )?;
                let next = decided.0.seats.clone();
                Ok((decided, next))
            })
            .await?;

        if reservation.status == ReservationStatus::Confirmed {
            sqlx::query(sql!("sales_delete"))
                .bind(reservation.id.0)
                .execute(&mut *tx)
                .await?;
        }
        self.update_reservation(&mut tx, &d.reservation).await?;
        if d.refund.is_positive() {
            self.set_balance(&mut tx, cmd.user_id, d.balance).await?;
            self.ledger(
                &mut tx,
                cmd.user_id,
                "refund",
                d.refund,
                Some(d.reservation.id.0),
                cmd.now,
            )
            .await?;
        }
        self.emit(&mut tx, cmd.now, d.event).await?;
        if let Some((refund, event)) = refund {
            self.keep_attempt(&mut tx, &refund).await?;
            self.emit(&mut tx, cmd.now, event).await?;
        }
        let outcome = StoredOutcome::Cancel(d.reservation.clone());
        self.remember(&mut tx, cmd.idempotency.as_ref(), outcome, cmd.now)
            .await?;
        commit(tx).await?;
        Ok(d.reservation)
    }

    pub(super) async fn try_charge(&self, cmd: &ChargeCommand) -> Result<Balance, Fail> {
        let mut tx = self.begin().await?;
        let balance = self.lock_wallet(&mut tx, cmd.user_id).await?;
        if let Some(outcome) = self.replay(&mut tx, cmd.idempotency.as_ref()).await? {
            return Ok(outcome.into_charge()?);
        }
        let d = rules::decide_charge(cmd, balance)?;
        self.set_balance(&mut tx, cmd.user_id, d.balance.balance)
            .await?;
        self.ledger(&mut tx, cmd.user_id, "charge", cmd.amount, None, cmd.now)
            .await?;
        self.emit(&mut tx, cmd.now, rules::ChargeDecision::event(cmd))
            .await?;
        let outcome = StoredOutcome::Charge(d.balance);
        self.remember(&mut tx, cmd.idempotency.as_ref(), outcome, cmd.now)
            .await?;
        commit(tx).await?;
        Ok(d.balance)
    }
}
