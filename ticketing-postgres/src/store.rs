//! The PostgreSQL [`TicketStore`]. Every rule comes from `ticketing_core::rules`; SQL only
//! loads, locks and stores.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Row};
use ticketing_core::rules::{self, Action};
use ticketing_core::{
    Balance, CancelCommand, Catalog, ChargeCommand, Concert, ConcertId, ConfirmCommand,
    DomainEvent, Error, EventKind, FencingToken, HoldCommand, IdempotencyKey, IdempotencyRecord,
    OptionId, OptionSummary, OutboxRecord, Payment, PaymentId, Points, Reservation, ReservationId,
    ReservationStatus, Result, SaleWindow, Seat, SeatId, SeatState, SeatView, ShowOption,
    StoredOutcome, TicketStore, UserId, async_trait,
};
use uuid::Uuid;

#[cfg(feature = "pessimistic")]
use crate::LockWait;
use crate::batch::{Batcher, Command, Outcome};
use crate::error::{Fail, code, commit_refused, db};
use crate::rows::{self, SeatRow};
use crate::{PgConfig, PgStrategy};

macro_rules! sql {
    ($name:literal) => {
        include_str!(concat!("../sql/", $name, ".sql"))
    };
}

/// Run a transaction attempt again while it reports [`Fail::Retry`], at most `max_retries`
/// more times.
macro_rules! retrying {
    ($self:ident, $attempt:expr) => {{
        let mut retries = 0;
        loop {
            match $attempt.await {
                Ok(v) => break Ok(v),
                Err(Fail::Err(e)) => break Err(e),
                Err(Fail::Retry(e)) if retries >= $self.config.max_retries => break Err(e),
                Err(Fail::Retry(_)) => retries += 1,
            }
        }
    }};
}

/// The PostgreSQL store. Cheap to clone (the pool and the option cache are shared).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    config: PgConfig,
    /// The group-commit queue, when [`PgConfig::batch`] is set.
    batcher: Option<Arc<Batcher>>,
}

/// Due holds expired per transaction.
const EXPIRY_CHUNK: usize = 64;

fn ids(seats: &[SeatId]) -> Vec<i64> {
    seats.iter().map(|s| s.0).collect()
}

fn lost_race() -> Fail {
    Fail::Retry(Error::Unavailable {
        message: "seats changed while being written; retries exhausted".into(),
        retryable: true,
        source: None,
    })
}

impl PgStore {
    /// A store over an existing pool (run [`crate::migrate`] on it first). Its connections
    /// should have a `lock_timeout` (see [`PgConfig::connect_options`]).
    pub fn new(pool: PgPool, config: PgConfig) -> Self {
        let batcher = config.batch.map(|batch| {
            #[cfg(feature = "pessimistic")]
            let skip_locked = matches!(
                config.strategy,
                PgStrategy::Pessimistic {
                    lock_wait: LockWait::NoWait
                }
            );
            #[cfg(not(feature = "pessimistic"))]
            let skip_locked = false;
            Arc::new(Batcher::new(pool.clone(), batch, skip_locked))
        });
        Self {
            pool,
            config,
            batcher,
        }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The configuration.
    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// Counters of the group-commit mode (`None` when it is off).
    pub fn batch_stats(&self) -> Option<crate::BatchStats> {
        self.batcher.as_ref().map(|b| b.stats())
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, Fail> {
        Ok(self
            .pool
            .begin_with(sqlx::AssertSqlSafe(sql!("command_begin")))
            .await?)
    }

    /// Load (and, pessimistically, lock) seats in id order; missing ids are `not_found`.
    async fn load_seats(
        &self,
        conn: &mut PgConnection,
        seat_ids: &[SeatId],
        for_hold: bool,
    ) -> Result<Vec<SeatRow>, Fail> {
        let query = match self.config.strategy {
            #[cfg(feature = "pessimistic")]
            PgStrategy::Pessimistic {
                lock_wait: LockWait::NoWait,
            } if for_hold => sql!("seats_lock_nowait"),
            #[cfg(feature = "pessimistic")]
            PgStrategy::Pessimistic { .. } => sql!("seats_lock"),
            #[cfg(feature = "optimistic")]
            PgStrategy::Optimistic => sql!("seats_read"),
        };
        let mut wanted = ids(seat_ids);
        wanted.sort_unstable();
        let rows = match sqlx::query(query).bind(&wanted).fetch_all(&mut *conn).await {
            Ok(rows) => rows,
            // NOWAIT: someone holds a lock on one of the seats right now.
            Err(e) if for_hold && code(&e).as_deref() == Some("55P03") => {
                return Err(Fail::Err(Error::SeatUnavailable {
                    seats: seat_ids.to_vec(),
                }));
            }
            Err(e) => return Err(e.into()),
        };
        let rows = rows.iter().map(rows::seat).collect::<Result<Vec<_>, _>>()?;
        if let Some(missing) = wanted
            .iter()
            .find(|id| !rows.iter().any(|r| r.seat.id.0 == **id))
        {
            return Err(Error::not_found("seat", missing).into());
        }
        Ok(rows)
    }

    /// Refuse a stale fencing token, then store the new states, each only if its version is
    /// unchanged; a lost compare-and-set asks for a retry of the whole transaction.
    async fn write_seats(
        &self,
        conn: &mut PgConnection,
        rows: &[SeatRow],
        next: &[SeatState],
        fence: Option<FencingToken>,
    ) -> Result<(), Fail> {
        if !rows.iter().all(|r| rules::fence_allows(r.fence, fence)) {
            return Err(Error::LockLost.into());
        }
        let mut statuses = Vec::with_capacity(next.len());
        let mut reservations = Vec::with_capacity(next.len());
        let mut untils = Vec::with_capacity(next.len());
        for state in next {
            let (status, reservation, until) = rows::seat_columns(*state);
            statuses.push(status);
            reservations.push(reservation);
            untils.push(until);
        }
        let written = sqlx::query(sql!("seats_write"))
            .bind(rows.iter().map(|r| r.seat.id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
            .bind(statuses)
            .bind(reservations)
            .bind(untils)
            .bind(rows::fence_param(fence)?)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if written == rows.len() as u64 {
            Ok(())
        } else {
            Err(lost_race())
        }
    }

    /// Load (and, pessimistically, lock) a reservation's seats, then read its option's sale
    /// window, let `decide` turn the seats' states (in the reservation's order) and the window
    /// into a decision and the seats' next states, and store those.
    async fn on_seats<D>(
        &self,
        conn: &mut PgConnection,
        reservation: &Reservation,
        fence: Option<FencingToken>,
        decide: impl FnOnce(&[SeatState], &SaleWindow) -> Result<(D, Vec<SeatState>)>,
    ) -> Result<D, Fail> {
        let wanted = &reservation.seat_ids;
        let rows = self.load_seats(conn, wanted, false).await?;
        let sale = self.sale_window(conn, reservation.option_id).await?;
        let (d, next) = decide(&states_in_order(&rows, wanted)?, &sale)?;
        self.write_seats(conn, &rows, &in_row_order(&rows, wanted, &next), fence)
            .await?;
        Ok(d)
    }

    /// Check that `user` owns the reservation (`forbidden` otherwise), then lock the user as
    /// [`Self::lock_user`] does; returns the balance.
    async fn lock_owner(
        &self,
        conn: &mut PgConnection,
        id: ReservationId,
        user: UserId,
    ) -> Result<Points, Fail> {
        let peek = self.fetch_reservation(conn, id, false).await?;
        if peek.user_id != user {
            return Err(Error::Forbidden.into());
        }
        self.lock_user(conn, user).await
    }

    /// Lock the user's wallet row (creating it at 0 if there is none); returns the balance.
    /// An existing wallet is locked without being written.
    async fn lock_user(&self, conn: &mut PgConnection, user: UserId) -> Result<Points, Fail> {
        let lock = || sqlx::query_scalar::<_, i64>(sql!("wallet_lock")).bind(user.0);
        if let Some(balance) = lock().fetch_optional(&mut *conn).await? {
            return Ok(Points(balance));
        }
        sqlx::query(sql!("wallet_create"))
            .bind(user.0)
            .execute(&mut *conn)
            .await?;
        Ok(Points(lock().fetch_one(&mut *conn).await?))
    }

    async fn replay(
        &self,
        conn: &mut PgConnection,
        key: Option<&IdempotencyKey>,
    ) -> Result<Option<StoredOutcome>, Fail> {
        let Some(key) = key else { return Ok(None) };
        let row = sqlx::query(sql!("idempotency_get"))
            .bind(key.user_id.0)
            .bind(&key.key)
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let record = IdempotencyRecord {
                    fingerprint: row.try_get("fingerprint")?,
                    outcome: row.try_get::<Json<StoredOutcome>, _>("outcome")?.0,
                };
                Ok(Some(record.replay(&key.fingerprint)?))
            }
        }
    }

    async fn remember(
        &self,
        conn: &mut PgConnection,
        key: Option<&IdempotencyKey>,
        outcome: StoredOutcome,
        now: DateTime<Utc>,
    ) -> Result<(), Fail> {
        if let Some(key) = key {
            sqlx::query(sql!("idempotency_put"))
                .bind(key.user_id.0)
                .bind(&key.key)
                .bind(&key.fingerprint)
                .bind(Json(outcome))
                .bind(now)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    async fn emit(
        &self,
        conn: &mut PgConnection,
        at: DateTime<Utc>,
        kind: EventKind,
    ) -> Result<(), Fail> {
        let event = DomainEvent::new(at, kind);
        sqlx::query(sql!("outbox_insert"))
            .bind(event.id.0)
            .bind(at)
            .bind(Json(&event))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn ledger(
        &self,
        conn: &mut PgConnection,
        user: UserId,
        kind: &str,
        amount: Points,
        reference: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<(), Fail> {
        if amount.is_positive() {
            sqlx::query(sql!("ledger_insert"))
                .bind(user.0)
                .bind(kind)
                .bind(amount.0)
                .bind(reference)
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    async fn set_balance(
        &self,
        conn: &mut PgConnection,
        user: UserId,
        balance: Points,
    ) -> Result<(), Fail> {
        sqlx::query(sql!("wallet_set"))
            .bind(user.0)
            .bind(balance.0)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn update_reservation(
        &self,
        conn: &mut PgConnection,
        r: &Reservation,
    ) -> Result<(), Fail> {
        sqlx::query(sql!("reservation_update"))
            .bind(r.id.0)
            .bind(rows::status_str(r.status))
            .bind(r.payment_id.map(|p| p.0))
            .bind(r.refunded_amount.0)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn fetch_reservation(
        &self,
        conn: &mut PgConnection,
        id: ReservationId,
        lock: bool,
    ) -> Result<Reservation, Fail> {
        let query = if lock {
            sql!("reservation_lock")
        } else {
            sql!("reservation_get")
        };
        let row = sqlx::query(query)
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| Error::not_found("reservation", id))?;
        Ok(rows::reservation(&row)?)
    }

    /// An option's sale window, read in the command's transaction after its seats are loaded
    /// (and, pessimistically, locked); `not_found` for an unknown option. Changing a window
    /// locks and bumps the version of every seat of the option (`option_sale_set.sql`), so a
    /// command either finishes before the change (it waits for the command's seat locks, or
    /// the command's compare-and-set fails and it is retried) or reads the new window.
    async fn sale_window(
        &self,
        conn: &mut PgConnection,
        option: OptionId,
    ) -> Result<SaleWindow, Fail> {
        let row = sqlx::query(sql!("option_sale"))
            .bind(option.0)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| Error::not_found("option", option))?;
        Ok(rows::sale_window(&row)?)
    }

    async fn try_hold(&self, cmd: &HoldCommand) -> Result<Reservation, Fail> {
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

    async fn try_confirm(&self, cmd: &ConfirmCommand) -> Result<Payment, Fail> {
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
        rules::transition(&reservation, Action::Confirm, cmd.now)?;
        let d = self
            .on_seats(&mut tx, &reservation, cmd.fence, |states, sale| {
                let id = PaymentId::new();
                let d = rules::decide_confirm(cmd, sale, &reservation, balance, states, id)?;
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
        if let Err(e) = sqlx::query(sql!("sales_insert"))
            .bind(ids(&reservation.seat_ids))
            .bind(reservation.id.0)
            .execute(&mut *tx)
            .await
        {
            // The schema's last line of defence: the seat is already sold.
            return Err(match code(&e).as_deref() {
                Some("23505") => Error::SeatUnavailable {
                    seats: reservation.seat_ids.clone(),
                }
                .into(),
                _ => e.into(),
            });
        }
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

    async fn try_cancel(&self, cmd: &CancelCommand) -> Result<Reservation, Fail> {
        let mut tx = self.begin().await?;
        let balance = self
            .lock_owner(&mut tx, cmd.reservation_id, cmd.user_id)
            .await?;
        let reservation = self
            .fetch_reservation(&mut tx, cmd.reservation_id, true)
            .await?;
        rules::transition(&reservation, Action::Cancel, cmd.now)?;
        let d = self
            .on_seats(&mut tx, &reservation, cmd.fence, |states, sale| {
                let d = rules::decide_cancel(cmd, sale, &reservation, balance, states)?;
                let next = d.seats.clone();
                Ok((d, next))
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
        commit(tx).await?;
        Ok(d.reservation)
    }

    /// Expire up to `limit` due holds in one short transaction of set-based statements.
    /// Returns the expired ids and how many due holds were selected (a hold whose seats another
    /// transaction has locked is selected but left for a later sweep).
    async fn try_expire(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<(Vec<ReservationId>, usize), Fail> {
        let mut tx = self.begin().await?;
        let due = sqlx::query(sql!("reservations_due"))
            .bind(now)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(rows::reservation)
            .collect::<Result<Vec<_>, _>>()?;
        let selected = due.len();
        let due: Vec<Reservation> = due
            .into_iter()
            .filter(|r| rules::transition(r, Action::Expire, now).is_ok())
            .collect();
        if due.is_empty() {
            return Ok((Vec::new(), selected));
        }
        let mut wanted: Vec<i64> = due.iter().flat_map(|r| ids(&r.seat_ids)).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let rows = sqlx::query(sql!("seats_lock_skip"))
            .bind(&wanted)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(rows::seat)
            .collect::<Result<Vec<_>, _>>()?;
        let locked: HashMap<SeatId, &SeatRow> = rows.iter().map(|r| (r.seat.id, r)).collect();
        let ready: Vec<&Reservation> = due
            .iter()
            .filter(|r| r.seat_ids.iter().all(|s| locked.contains_key(s)))
            .collect();
        if ready.is_empty() {
            return Ok((Vec::new(), selected));
        }
        let mut changed: Vec<(&SeatRow, SeatState)> = Vec::new();
        for row in &rows {
            let next = ready
                .iter()
                .fold(row.state, |state, r| rules::release_seat(state, r.id));
            if next != row.state {
                changed.push((row, next));
            }
        }
        if !changed.is_empty() {
            let mut statuses = Vec::with_capacity(changed.len());
            let mut owners = Vec::with_capacity(changed.len());
            let mut untils = Vec::with_capacity(changed.len());
            let mut fences = Vec::with_capacity(changed.len());
            for (row, state) in &changed {
                let (status, owner, until) = rows::seat_columns(*state);
                statuses.push(status);
                owners.push(owner);
                untils.push(until);
                fences.push(rows::fence_param(row.fence)?);
            }
            sqlx::query(sql!("seats_write_many"))
                .bind(changed.iter().map(|(r, _)| r.seat.id.0).collect::<Vec<_>>())
                .bind(statuses)
                .bind(owners)
                .bind(untils)
                .bind(fences)
                .execute(&mut *tx)
                .await?;
        }
        let expired: Vec<ReservationId> = ready.iter().map(|r| r.id).collect();
        sqlx::query(sql!("reservations_expire"))
            .bind(expired.iter().map(|r| r.0).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        let events: Vec<DomainEvent> = expired
            .iter()
            .map(|id| {
                DomainEvent::new(
                    now,
                    EventKind::HoldExpired {
                        reservation_id: *id,
                    },
                )
            })
            .collect();
        let payloads = events
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::backend("encoding outbox events", false, e))?;
        sqlx::query(sql!("outbox_insert_many"))
            .bind(events.iter().map(|e| e.id.0).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.at).collect::<Vec<_>>())
            .bind(payloads)
            .execute(&mut *tx)
            .await?;
        commit(tx).await?;
        Ok((expired, selected))
    }

    async fn try_charge(&self, cmd: &ChargeCommand) -> Result<Balance, Fail> {
        let mut tx = self.begin().await?;
        let balance = self.lock_user(&mut tx, cmd.user_id).await?;
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

    async fn try_seed(&self, catalog: &Catalog) -> Result<(), Fail> {
        for o in &catalog.options {
            rules::validate_sale_window(&o.sale_window())?;
        }
        let mut tx = self.begin().await?;
        let c = &catalog.concerts;
        sqlx::query(sql!("seed_concerts"))
            .bind(c.iter().map(|c| c.id.0).collect::<Vec<_>>())
            .bind(c.iter().map(|c| c.title.clone()).collect::<Vec<_>>())
            .bind(c.iter().map(|c| c.venue.clone()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        let o = &catalog.options;
        sqlx::query(sql!("seed_options"))
            .bind(o.iter().map(|o| o.id.0).collect::<Vec<_>>())
            .bind(o.iter().map(|o| o.concert_id.0).collect::<Vec<_>>())
            .bind(o.iter().map(|o| o.starts_at).collect::<Vec<_>>())
            .bind(o.iter().map(|o| o.sale_opens_at).collect::<Vec<_>>())
            .bind(o.iter().map(|o| o.sale_closes_at).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        let s = &catalog.seats;
        sqlx::query(sql!("seed_seats"))
            .bind(s.iter().map(|s| s.id.0).collect::<Vec<_>>())
            .bind(s.iter().map(|s| s.option_id.0).collect::<Vec<_>>())
            .bind(s.iter().map(|s| s.seat_no.clone()).collect::<Vec<_>>())
            .bind(s.iter().map(|s| s.grade.clone()).collect::<Vec<_>>())
            .bind(s.iter().map(|s| s.price.0).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        commit(tx).await?;
        Ok(())
    }
}

/// The states of `rows` (loaded in id order) in the order of `wanted`.
fn states_in_order(rows: &[SeatRow], wanted: &[SeatId]) -> Result<Vec<SeatState>, Fail> {
    wanted
        .iter()
        .map(|id| {
            rows.iter()
                .find(|r| r.seat.id == *id)
                .map(|r| r.state)
                .ok_or_else(|| Error::not_found("seat", id).into())
        })
        .collect()
}

/// `next` (in the order of `wanted`) rearranged into the order of `rows`.
fn in_row_order(rows: &[SeatRow], wanted: &[SeatId], next: &[SeatState]) -> Vec<SeatState> {
    rows.iter()
        .map(|r| {
            wanted
                .iter()
                .position(|id| *id == r.seat.id)
                .and_then(|i| next.get(i).copied())
                .unwrap_or(r.state)
        })
        .collect()
}

/// Commit a command's transaction. A commit the server refused (serialization, a deferred
/// constraint) did not happen; one that got no answer (a lost connection) may have.
async fn commit(tx: sqlx::Transaction<'static, sqlx::Postgres>) -> Result<(), Fail> {
    tx.commit().await.map_err(|e| {
        if commit_refused(&e) {
            return Fail::from(e);
        }
        Fail::Err(Error::OutcomeUnknown {
            message: "the commit got no answer: it may have happened; retry with the same \
                      idempotency key"
                .into(),
            source: Some(e.into()),
        })
    })
}

/// A batch answers each command with the outcome of its own kind; anything else is a bug.
fn mismatch() -> Error {
    Error::Unavailable {
        message: "a batch answered a command with another command's outcome".into(),
        retryable: false,
        source: None,
    }
}

fn done<T>(r: Result<T, Fail>) -> Result<T> {
    r.map_err(|f| match f {
        Fail::Retry(e) | Fail::Err(e) => e,
    })
}

#[async_trait]
impl TicketStore for PgStore {
    async fn seed(&self, catalog: &Catalog) -> Result<()> {
        done(self.try_seed(catalog).await)
    }

    async fn concerts(&self) -> Result<Vec<Concert>> {
        let rows = sqlx::query(sql!("concerts"))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(rows::concert)
            .collect::<Result<_, _>>()
            .map_err(db)
    }

    async fn concert(&self, concert: ConcertId) -> Result<Concert> {
        let row = sqlx::query(sql!("concert"))
            .bind(concert.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("concert", concert))?;
        rows::concert(&row).map_err(db)
    }

    async fn options(&self, concert: ConcertId, now: DateTime<Utc>) -> Result<Vec<OptionSummary>> {
        self.concert(concert).await?;
        let rows = sqlx::query(sql!("options_of_concert"))
            .bind(concert.0)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| {
                let total: i64 = row.try_get("total")?;
                let available: i64 = row.try_get("available")?;
                Ok(OptionSummary {
                    option: rows::option(row)?,
                    total_seats: total.max(0) as u64,
                    available_seats: available.max(0) as u64,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db)
    }

    async fn option(&self, option: OptionId) -> Result<ShowOption> {
        let row = sqlx::query(sql!("option"))
            .bind(option.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("option", option))?;
        rows::option(&row).map_err(db)
    }

    async fn set_sale_window(
        &self,
        option: OptionId,
        opens_at: Option<DateTime<Utc>>,
        closes_at: Option<DateTime<Utc>>,
    ) -> Result<ShowOption> {
        // An option's start never changes, so the window is checked against the one read. The
        // change waits for the commands deciding on the option's seats (see `sale_window`).
        rules::with_sale_window(&self.option(option).await?, opens_at, closes_at)?;
        let row = sqlx::query(sql!("option_sale_set"))
            .bind(option.0)
            .bind(opens_at)
            .bind(closes_at)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("option", option))?;
        rows::option(&row).map_err(db)
    }

    async fn seats(&self, option: OptionId, now: DateTime<Utc>) -> Result<Vec<SeatView>> {
        let rows = sqlx::query(sql!("seats_of_option"))
            .bind(option.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        if rows.is_empty() {
            // No seats: an option without any, or no option at all.
            self.option(option).await?;
        }
        rows.iter()
            .map(|row| {
                let r = rows::seat(row)?;
                Ok(SeatView {
                    status: rules::effective_seat_state(r.state, now).status(),
                    seat: r.seat,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db)
    }

    async fn hold(&self, cmd: HoldCommand) -> Result<Reservation> {
        if let Some(batcher) = &self.batcher {
            return match batcher.submit(Command::Hold(cmd)).await? {
                Outcome::Hold(r) => Ok(r),
                _ => Err(mismatch()),
            };
        }
        retrying!(self, self.try_hold(&cmd))
    }

    async fn confirm(&self, cmd: ConfirmCommand) -> Result<Payment> {
        if let Some(batcher) = &self.batcher {
            return match batcher.submit(Command::Confirm(cmd)).await? {
                Outcome::Confirm(p) => Ok(p),
                _ => Err(mismatch()),
            };
        }
        retrying!(self, self.try_confirm(&cmd))
    }

    async fn cancel(&self, cmd: CancelCommand) -> Result<Reservation> {
        if let Some(batcher) = &self.batcher {
            return match batcher.submit(Command::Cancel(cmd)).await? {
                Outcome::Cancel(r) => Ok(r),
                _ => Err(mismatch()),
            };
        }
        retrying!(self, self.try_cancel(&cmd))
    }

    async fn expire_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<ReservationId>> {
        // Small transactions: each holds its seat locks only for a few statements.
        let mut expired = Vec::new();
        let mut selected = 0;
        while selected < limit {
            let chunk = (limit - selected).min(EXPIRY_CHUNK);
            let (ids, seen) = match retrying!(self, self.try_expire(now, chunk)) {
                Ok(done) => done,
                // The chunks before were committed: report them; the next sweep retries the
                // rest (and meets the error again if it lasts).
                Err(_) if !expired.is_empty() => break,
                Err(e) => return Err(e),
            };
            selected += seen;
            // Fewer due than asked, or every selected hold's seats locked by others (they would
            // be selected again at once): the rest waits for the next sweep.
            if seen < chunk || ids.is_empty() {
                expired.extend(ids);
                break;
            }
            expired.extend(ids);
        }
        Ok(expired)
    }

    async fn reservation(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation> {
        let row = sqlx::query(sql!("reservation_read"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("reservation", id))?;
        let r = rows::reservation(&row).map_err(db)?;
        Ok(rules::effective(&r, now))
    }

    async fn user_reservations(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reservation>> {
        let rows = sqlx::query(sql!("reservations_of_user"))
            .bind(user.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| rows::reservation(row).map(|r| rules::effective(&r, now)))
            .collect::<Result<_, _>>()
            .map_err(db)
    }

    async fn charge(&self, cmd: ChargeCommand) -> Result<Balance> {
        if !cmd.amount.is_positive() {
            return Err(Error::invalid("amount must be positive"));
        }
        if let Some(batcher) = &self.batcher {
            return match batcher.submit(Command::Charge(cmd)).await? {
                Outcome::Charge(b) => Ok(b),
                _ => Err(mismatch()),
            };
        }
        retrying!(self, self.try_charge(&cmd))
    }

    async fn balance(&self, user: UserId) -> Result<Points> {
        let balance: Option<i64> = sqlx::query_scalar(sql!("wallet_balance"))
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(Points(balance.unwrap_or(0)))
    }

    async fn idempotency_record(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        let row = sqlx::query(sql!("idempotency_read"))
            .bind(user.0)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|row| {
            Ok(IdempotencyRecord {
                fingerprint: row.try_get("fingerprint")?,
                outcome: row.try_get::<Json<StoredOutcome>, _>("outcome")?.0,
            })
        })
        .transpose()
        .map_err(db)
    }

    async fn outbox_read(&self, after: u64, limit: usize) -> Result<Vec<OutboxRecord>> {
        let rows = sqlx::query(sql!("outbox_read"))
            .bind(i64::try_from(after).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq")?;
                Ok(OutboxRecord {
                    seq: seq.max(0) as u64,
                    event: row.try_get::<Json<DomainEvent>, _>("payload")?.0,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db)
    }

    async fn outbox_ack(&self, seqs: &[u64]) -> Result<()> {
        // A seq beyond i64 cannot be in the table: leave it out.
        let seqs: Vec<i64> = seqs.iter().filter_map(|s| i64::try_from(*s).ok()).collect();
        sqlx::query(sql!("outbox_ack"))
            .bind(seqs)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn prune(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let keys = sqlx::query(sql!("idempotency_prune"))
            .bind(before)
            .bind(limit)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        let events = sqlx::query(sql!("outbox_prune"))
            .bind(before)
            .bind(limit)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(keys.rows_affected() + events.rows_affected())
    }

    async fn health(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}
