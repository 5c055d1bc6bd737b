//! Payments through a provider (docs/payments.md): each step one transaction under the
//! owner's per-user lock (and the seats'), decided by `rules::provider`; the provider is called
//! between them, never inside one.

use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use ticketing_core::provider::{
    AttemptState, BeginPaymentCommand, ChargeOutcome, ChargeSettled, PaymentAttempt,
    SettleChargeCommand, SettleRefundCommand,
};
use ticketing_core::rules::{self, ChargeSettlement};
use ticketing_core::{AttemptId, Error, ReservationId, Result, SeatId, SeatState, StoredOutcome};

use super::{PgStore, commit, ids};
use crate::error::Fail;

impl PgStore {
    /// The attempts of one reservation, oldest first.
    pub(super) async fn attempts_of(
        &self,
        conn: &mut PgConnection,
        id: ReservationId,
    ) -> Result<Vec<PaymentAttempt>, Fail> {
        let rows = sqlx::query(sql!("attempts_of_reservation"))
            .bind(id.0)
            .fetch_all(&mut *conn)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<Json<PaymentAttempt>, _>("body").map(|j| j.0))
            .collect::<Result<_, _>>()?)
    }

    /// One attempt; `not_found` for an unknown one.
    pub(super) async fn attempt(
        &self,
        conn: &mut PgConnection,
        id: AttemptId,
    ) -> Result<PaymentAttempt, Fail> {
        let row = sqlx::query(sql!("attempt_get"))
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| Error::not_found("payment attempt", id))?;
        Ok(row.try_get::<Json<PaymentAttempt>, _>("body")?.0)
    }

    /// Insert an attempt, or store its new state.
    pub(super) async fn keep_attempt(
        &self,
        conn: &mut PgConnection,
        a: &PaymentAttempt,
    ) -> Result<(), Fail> {
        sqlx::query(sql!("attempt_upsert"))
            .bind(a.id.0)
            .bind(a.reservation_id.0)
            .bind(a.user_id.0)
            .bind(&a.key)
            .bind(a.is_pending())
            .bind(a.created_at)
            .bind(Json(a))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    pub(super) async fn try_begin_provider(
        &self,
        cmd: &BeginPaymentCommand,
    ) -> Result<PaymentAttempt, Fail> {
        let mut tx = self.begin().await?;
        self.lock_owner(&mut tx, cmd.reservation_id, cmd.user_id)
            .await?;
        if let Some(outcome) = self.replay(&mut tx, cmd.idempotency.as_ref()).await? {
            // The attempt as it stands now (it may have been settled since).
            let first = outcome.into_attempt()?;
            return self.attempt(&mut tx, first.id).await;
        }
        let reservation = self
            .fetch_reservation(&mut tx, cmd.reservation_id, true)
            .await?;
        let attempts = self.attempts_of(&mut tx, reservation.id).await?;
        let d = self
            .on_seats(&mut tx, &reservation, None, |states, sale| {
                let d = rules::begin_provider_payment(
                    cmd.user_id,
                    cmd.now,
                    cmd.bound,
                    sale,
                    &reservation,
                    states,
                    &attempts,
                    cmd.attempt_id,
                )?;
                let next = d.seats.clone();
                Ok((d, next))
            })
            .await?;
        sqlx::query(sql!("reservation_extend"))
            .bind(d.reservation.id.0)
            .bind(d.reservation.expires_at)
            .execute(&mut *tx)
            .await?;
        self.keep_attempt(&mut tx, &d.attempt).await?;
        self.emit(&mut tx, cmd.now, d.event).await?;
        let outcome = StoredOutcome::Attempt {
            attempt: d.attempt.clone(),
        };
        self.remember(&mut tx, cmd.idempotency.as_ref(), outcome, cmd.now)
            .await?;
        commit(tx).await?;
        Ok(d.attempt)
    }

    /// Settle a charge. `seats_lost`: a first try found a seat sold under another reservation
    /// (the schema's last line of defence, which rules cannot see): the reservation's seats are
    /// then decided as lost, so a capture is refunded instead of failing again forever.
    pub(super) async fn try_settle_charge(
        &self,
        cmd: &SettleChargeCommand,
        seats_lost: bool,
    ) -> Result<ChargeSettled, Fail> {
        let mut tx = self.begin().await?;
        let owner = self.attempt(&mut tx, cmd.attempt_id).await?.user_id;
        let balance = self.lock_wallet(&mut tx, owner).await?;
        // Read again under the owner's lock: a concurrent settle of it has finished.
        let attempt = self.attempt(&mut tx, cmd.attempt_id).await?;
        // A second answer that agrees with the first touches nothing, not even the seats.
        let contradicts = matches!(
            (&attempt.state, &cmd.outcome),
            (AttemptState::Failed { .. }, ChargeOutcome::Captured { .. })
        );
        if !attempt.is_pending() && !contradicts {
            return Ok(ChargeSettled::AlreadySettled(attempt));
        }
        let reservation = self
            .fetch_reservation(&mut tx, attempt.reservation_id, true)
            .await?;
        // The seats sold under another reservation, by the sales table (last-defence retry).
        let mut sold_elsewhere = std::collections::HashMap::new();
        if seats_lost {
            let rows = sqlx::query(sql!("sales_of_seats"))
                .bind(ids(&reservation.seat_ids))
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                let seat: i64 = row.try_get("seat_id")?;
                let owner: uuid::Uuid = row.try_get("reservation_id")?;
                if owner != reservation.id.0 {
                    sold_elsewhere.insert(SeatId(seat), ReservationId(owner));
                }
            }
        }
        let settled = self
            .on_seats(&mut tx, &reservation, None, |states, sale| {
                let lost: Vec<SeatState>;
                let states = if seats_lost {
                    // Sold where the sales table says so (never offered again), else freed.
                    lost = states
                        .iter()
                        .zip(&reservation.seat_ids)
                        .map(|(s, seat)| match sold_elsewhere.get(seat) {
                            Some(other) => SeatState::Sold {
                                reservation: *other,
                            },
                            None => rules::release_seat(*s, reservation.id),
                        })
                        .collect();
                    &lost
                } else {
                    states
                };
                let s = rules::settle_charge(
                    &attempt,
                    &cmd.outcome,
                    sale,
                    &reservation,
                    states,
                    balance,
                    cmd.now,
                    cmd.payment_id,
                    cmd.refund_id,
                )?;
                let next = s.next_seats(states);
                Ok((s, next))
            })
            .await?;
        let settled = match settled {
            ChargeSettlement::AlreadySettled => ChargeSettled::AlreadySettled(attempt),
            ChargeSettlement::Confirmed {
                reservation: confirmed,
                payment,
                attempt,
                event,
                ..
            } => {
                sqlx::query(sql!("payment_insert_provider"))
                    .bind(payment.id.0)
                    .bind(payment.reservation_id.0)
                    .bind(payment.user_id.0)
                    .bind(payment.amount.0)
                    .bind(payment.balance.0)
                    .bind(payment.created_at)
                    .execute(&mut *tx)
                    .await?;
                self.sell(&mut tx, &confirmed).await?;
                self.update_reservation(&mut tx, &confirmed).await?;
                self.keep_attempt(&mut tx, &attempt).await?;
                self.emit(&mut tx, cmd.now, event).await?;
                ChargeSettled::Confirmed(payment)
            }
            ChargeSettlement::Released {
                reservation: released,
                attempt,
                events,
                ..
            } => {
                if let Some(r) = released {
                    self.update_reservation(&mut tx, &r).await?;
                }
                self.keep_attempt(&mut tx, &attempt).await?;
                for event in events {
                    self.emit(&mut tx, cmd.now, event).await?;
                }
                ChargeSettled::Released(attempt)
            }
            ChargeSettlement::RefundDue {
                attempt,
                refund,
                reservation: released,
                events,
                ..
            } => {
                if let Some(r) = released {
                    self.update_reservation(&mut tx, &r).await?;
                }
                self.keep_attempt(&mut tx, &attempt).await?;
                self.keep_attempt(&mut tx, &refund).await?;
                for event in events {
                    self.emit(&mut tx, cmd.now, event).await?;
                }
                ChargeSettled::RefundDue(refund)
            }
        };
        commit(tx).await?;
        Ok(settled)
    }

    pub(super) async fn try_settle_refund(
        &self,
        cmd: &SettleRefundCommand,
    ) -> Result<PaymentAttempt, Fail> {
        let mut tx = self.begin().await?;
        let owner = self.attempt(&mut tx, cmd.attempt_id).await?.user_id;
        self.lock_user(&mut tx, owner).await?;
        let attempt = self.attempt(&mut tx, cmd.attempt_id).await?;
        match rules::settle_refund(&attempt, &cmd.outcome)? {
            None => Ok(attempt),
            Some((settled, event)) => {
                self.keep_attempt(&mut tx, &settled).await?;
                self.emit(&mut tx, cmd.now, event).await?;
                commit(tx).await?;
                Ok(settled)
            }
        }
    }

    pub(super) async fn read_attempt(&self, id: AttemptId) -> Result<PaymentAttempt, Fail> {
        let mut conn = self.pool.acquire().await?;
        self.attempt(&mut conn, id).await
    }

    pub(super) async fn read_attempts_of(
        &self,
        id: ReservationId,
    ) -> Result<Vec<PaymentAttempt>, Fail> {
        let mut conn = self.pool.acquire().await?;
        self.attempts_of(&mut conn, id).await
    }

    pub(super) async fn read_pending_attempts(
        &self,
        limit: usize,
    ) -> Result<Vec<PaymentAttempt>, Fail> {
        let rows = sqlx::query(sql!("attempts_pending"))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<Json<PaymentAttempt>, _>("body").map(|j| j.0))
            .collect::<Result<_, _>>()?)
    }
}
