//! The MySQL / MariaDB [`TicketStore`]. Every rule comes from `ticketing_core::rules`; SQL only
//! loads, locks and stores.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, MySql, MySqlConnection, MySqlPool, Row};
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
use crate::error::{Fail, MySqlError, commit_refused, db, lock_not_available, number, row};
use crate::rows::{self, SeatRow, micros, micros_opt};
use crate::{MySqlConfig, MySqlStrategy};

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

/// The MySQL / MariaDB store. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
    config: MySqlConfig,
}

/// Due holds expired per transaction.
const EXPIRY_CHUNK: usize = 64;
/// Rows per multi-row `INSERT` when seeding (MySQL allows 65,535 placeholders a statement).
const SEED_CHUNK: usize = 1_000;
/// Ids per `IN (...)` list when acknowledging outbox events.
const ACK_CHUNK: usize = 1_000;

type Tx = sqlx::Transaction<'static, MySql>;

/// `n` placeholders, comma separated.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// A statement whose `{ids}` is expanded to `n` placeholders (MySQL has no array parameters).
fn with_ids(sql: &'static str, n: usize) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql.replace("{ids}", &placeholders(n)))
}

/// A statement whose `{values}` is expanded to `rows` rows of `columns` placeholders.
fn with_values(sql: &'static str, rows: usize, columns: usize) -> AssertSqlSafe<String> {
    let row = format!("({})", placeholders(columns));
    AssertSqlSafe(sql.replace("{values}", &vec![row; rows].join(", ")))
}

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

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl MySqlStore {
    /// A store over an existing pool (run [`crate::migrate`] on it first). Its connections
    /// should have a short `innodb_lock_wait_timeout` (see [`MySqlConfig::pool`]); every
    /// command sets its own isolation level (READ COMMITTED).
    pub fn new(pool: MySqlPool, config: MySqlConfig) -> Self {
        Self { pool, config }
    }

    /// The pool.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// The configuration.
    pub fn config(&self) -> &MySqlConfig {
        &self.config
    }

    async fn begin(&self) -> Result<Tx, Fail> {
        Ok(self.pool.begin_with(sql!("command_begin")).await?)
    }

    /// Load (and, pessimistically, lock) seats in id order; missing ids are `not_found`.
    async fn load_seats(
        &self,
        conn: &mut MySqlConnection,
        seat_ids: &[SeatId],
        for_hold: bool,
    ) -> Result<Vec<SeatRow>, Fail> {
        if seat_ids.is_empty() {
            return Err(Error::invalid("seat_ids must not be empty").into());
        }
        let query = match self.config.strategy {
            #[cfg(feature = "pessimistic")]
            MySqlStrategy::Pessimistic {
                lock_wait: LockWait::NoWait,
            } if for_hold => sql!("seats_lock_nowait"),
            #[cfg(feature = "pessimistic")]
            MySqlStrategy::Pessimistic { .. } => sql!("seats_lock"),
            #[cfg(feature = "optimistic")]
            MySqlStrategy::Optimistic => sql!("seats_read"),
        };
        let mut wanted = ids(seat_ids);
        wanted.sort_unstable();
        let mut q = sqlx::query(with_ids(query, wanted.len()));
        for id in &wanted {
            q = q.bind(*id);
        }
        let rows = match q.fetch_all(&mut *conn).await {
            Ok(rows) => rows,
            // NOWAIT, or the lock wait timed out: someone holds a lock on one of the seats.
            Err(e) if for_hold && lock_not_available(&e) => {
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
        conn: &mut MySqlConnection,
        rows: &[SeatRow],
        next: &[SeatState],
        fence: Option<FencingToken>,
    ) -> Result<(), Fail> {
        if !rows.iter().all(|r| rules::fence_allows(r.fence, fence)) {
            return Err(Error::LockLost.into());
        }
        let fence = rows::fence_param(fence)?;
        let mut written = 0;
        for (row, state) in rows.iter().zip(next) {
            let (status, reservation, until) = rows::seat_columns(*state);
            written += sqlx::query(sql!("seat_write"))
                .bind(status)
                .bind(reservation)
                .bind(until)
                .bind(fence)
                .bind(fence)
                .bind(fence)
                .bind(row.seat.id.0)
                .bind(row.version)
                .execute(&mut *conn)
                .await?
                .rows_affected();
        }
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
        conn: &mut MySqlConnection,
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
        conn: &mut MySqlConnection,
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
    async fn lock_user(&self, conn: &mut MySqlConnection, user: UserId) -> Result<Points, Fail> {
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
        conn: &mut MySqlConnection,
        key: Option<&IdempotencyKey>,
    ) -> Result<Option<StoredOutcome>, Fail> {
        let Some(key) = key else { return Ok(None) };
        let row = sqlx::query(sql!("idempotency_get"))
            .bind(key.user_id.0)
            .bind(key.key.as_bytes())
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some(record(&row)?.replay(&key.fingerprint)?)),
        }
    }

    async fn remember(
        &self,
        conn: &mut MySqlConnection,
        key: Option<&IdempotencyKey>,
        outcome: StoredOutcome,
        now: DateTime<Utc>,
    ) -> Result<(), Fail> {
        if let Some(key) = key {
            sqlx::query(sql!("idempotency_put"))
                .bind(key.user_id.0)
                .bind(key.key.as_bytes())
                .bind(&key.fingerprint)
                .bind(rows::to_json("an idempotency outcome", &outcome)?)
                .bind(micros(now))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    async fn emit(
        &self,
        conn: &mut MySqlConnection,
        at: DateTime<Utc>,
        kind: EventKind,
    ) -> Result<(), Fail> {
        let event = DomainEvent::new(at, kind);
        sqlx::query(sql!("outbox_insert"))
            .bind(event.id.0)
            .bind(micros(at))
            .bind(rows::to_json("an outbox event", &event)?)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn ledger(
        &self,
        conn: &mut MySqlConnection,
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
                .bind(micros(at))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    async fn set_balance(
        &self,
        conn: &mut MySqlConnection,
        user: UserId,
        balance: Points,
    ) -> Result<(), Fail> {
        sqlx::query(sql!("wallet_set"))
            .bind(balance.0)
            .bind(user.0)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn update_reservation(
        &self,
        conn: &mut MySqlConnection,
        r: &Reservation,
    ) -> Result<(), Fail> {
        sqlx::query(sql!("reservation_update"))
            .bind(r.status.as_str())
            .bind(r.payment_id.map(|p| p.0))
            .bind(r.refunded_amount.0)
            .bind(r.id.0)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn fetch_reservation(
        &self,
        conn: &mut MySqlConnection,
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
    /// locks and bumps the version of every seat of the option (`option_sale_fence.sql`), so a
    /// command either finishes before the change (it waits for the command's seat locks, or
    /// the command's compare-and-set fails and it is retried) or reads the new window.
    async fn sale_window(
        &self,
        conn: &mut MySqlConnection,
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
        let owned = match cmd.max_seats_per_user {
            Some(_) => {
                let owned: i64 = sqlx::query_scalar(sql!("user_seat_count"))
                    .bind(cmd.user_id.0)
                    .bind(cmd.option_id.0)
                    .bind(micros(cmd.now))
                    .fetch_one(&mut *tx)
                    .await?;
                owned.max(0) as u64
            }
            None => 0,
        };
        let rows = self.load_seats(&mut tx, &cmd.seat_ids, true).await?;
        // After the seat locks: a window change either waited for them or bumped the versions.
        let sale = self.sale_window(&mut tx, cmd.option_id).await?;
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
            .bind(rows::seat_ids_json(&reservation.seat_ids))
            .bind(i64::try_from(reservation.seat_ids.len()).unwrap_or(i64::MAX))
            .bind(reservation.amount.0)
            .bind(micros(reservation.expires_at))
            .bind(micros(reservation.created_at))
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
            .bind(micros(payment.created_at))
            .execute(&mut *tx)
            .await?;
        let seats = &reservation.seat_ids;
        let mut sales = sqlx::query(with_values(sql!("sales_insert"), seats.len(), 2));
        for seat in seats {
            sales = sales.bind(seat.0).bind(reservation.id.0);
        }
        if let Err(e) = sales.execute(&mut *tx).await {
            // The schema's last line of defence: the seat is already sold.
            return Err(match number(&e) {
                Some(1062) => Error::SeatUnavailable {
                    seats: seats.clone(),
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

    /// Expire up to `limit` due holds in one short transaction. Returns the expired ids and how
    /// many due holds were selected (a hold whose seats another transaction has locked is
    /// selected but left for a later sweep).
    async fn try_expire(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<(Vec<ReservationId>, usize), Fail> {
        let mut tx = self.begin().await?;
        let due = sqlx::query(sql!("reservations_due"))
            .bind(micros(now))
            .bind(limit_param(limit))
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
        let mut q = sqlx::query(with_ids(sql!("seats_lock_skip"), wanted.len()));
        for id in &wanted {
            q = q.bind(*id);
        }
        let rows = q
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
        for row in &rows {
            let next = ready
                .iter()
                .fold(row.state, |state, r| rules::release_seat(state, r.id));
            if next != row.state {
                let (status, owner, until) = rows::seat_columns(next);
                sqlx::query(sql!("seat_release"))
                    .bind(status)
                    .bind(owner)
                    .bind(until)
                    .bind(row.seat.id.0)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let expired: Vec<ReservationId> = ready.iter().map(|r| r.id).collect();
        let mut q = sqlx::query(with_ids(sql!("reservations_expire"), expired.len()));
        for id in &expired {
            q = q.bind(id.0);
        }
        q.execute(&mut *tx).await?;
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
        let mut q = sqlx::query(with_values(sql!("outbox_insert_many"), events.len(), 3));
        for event in &events {
            q = q
                .bind(event.id.0)
                .bind(micros(event.at))
                .bind(rows::to_json("an outbox event", event)?);
        }
        q.execute(&mut *tx).await?;
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

    /// Seed in one transaction: ids taken, negative prices, options of unknown concerts and
    /// seats of unknown options are refused by the schema's keys and checks, and the whole
    /// transaction is rolled back.
    async fn try_seed(&self, catalog: &Catalog) -> Result<(), Fail> {
        for o in &catalog.options {
            rules::validate_sale_window(&o.sale_window())?;
        }
        let mut tx = self.begin().await?;
        for chunk in catalog.concerts.chunks(SEED_CHUNK) {
            let mut q = sqlx::query(with_values(sql!("seed_concerts"), chunk.len(), 3));
            for c in chunk {
                q = q.bind(c.id.0).bind(&c.title).bind(&c.venue);
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in catalog.options.chunks(SEED_CHUNK) {
            let mut q = sqlx::query(with_values(sql!("seed_options"), chunk.len(), 5));
            for o in chunk {
                q = q
                    .bind(o.id.0)
                    .bind(o.concert_id.0)
                    .bind(micros(o.starts_at))
                    .bind(micros_opt(o.sale_opens_at))
                    .bind(micros_opt(o.sale_closes_at));
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in catalog.seats.chunks(SEED_CHUNK) {
            let mut q = sqlx::query(with_values(sql!("seed_seats"), chunk.len(), 5));
            for s in chunk {
                q = q
                    .bind(s.id.0)
                    .bind(s.option_id.0)
                    .bind(&s.seat_no)
                    .bind(&s.grade)
                    .bind(s.price.0);
            }
            q.execute(&mut *tx).await?;
        }
        commit(tx).await?;
        Ok(())
    }

    /// Set a window: bump (and so lock, in id order) every seat of the option, then the window,
    /// in one transaction (see `sale_window`).
    async fn try_set_sale_window(
        &self,
        option: OptionId,
        opens_at: Option<DateTime<Utc>>,
        closes_at: Option<DateTime<Utc>>,
    ) -> Result<ShowOption, Fail> {
        let mut tx = self.begin().await?;
        sqlx::query(sql!("option_sale_fence"))
            .bind(option.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql!("option_sale_set"))
            .bind(micros_opt(opens_at))
            .bind(micros_opt(closes_at))
            .bind(option.0)
            .execute(&mut *tx)
            .await?;
        // Read back rather than trust the row count: MySQL counts changed rows, and setting the
        // window it already has changes none.
        let row = sqlx::query(sql!("option"))
            .bind(option.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("option", option))?;
        let stored = rows::option(&row)?;
        commit(tx).await?;
        Ok(stored)
    }
}

/// An idempotency record from a row of `fingerprint`, `outcome`.
fn record(row: &sqlx::mysql::MySqlRow) -> Result<IdempotencyRecord, MySqlError> {
    let outcome: String = row.try_get("outcome")?;
    Ok(IdempotencyRecord {
        fingerprint: row.try_get("fingerprint")?,
        outcome: rows::from_json("idempotency_keys.outcome", &outcome)?,
    })
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

/// Commit a command's transaction. A commit the server refused did not happen; one that got
/// no answer (a lost or killed connection) may have.
async fn commit(tx: Tx) -> Result<(), Fail> {
    tx.commit().await.map_err(|e| {
        if commit_refused(&e) {
            return Fail::from(e);
        }
        Fail::Err(Error::OutcomeUnknown {
            message: "the commit got no answer: it may have happened; retry with the same \
                      idempotency key"
                .into(),
            source: Some(MySqlError::from(e).into()),
        })
    })
}

fn done<T>(r: Result<T, Fail>) -> Result<T> {
    r.map_err(|f| match f {
        Fail::Retry(e) | Fail::Err(e) => e,
    })
}

#[async_trait]
impl TicketStore for MySqlStore {
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
            .map_err(row)
    }

    async fn concert(&self, concert: ConcertId) -> Result<Concert> {
        let found = sqlx::query(sql!("concert"))
            .bind(concert.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("concert", concert))?;
        rows::concert(&found).map_err(row)
    }

    async fn options(&self, concert: ConcertId, now: DateTime<Utc>) -> Result<Vec<OptionSummary>> {
        self.concert(concert).await?;
        let rows = sqlx::query(sql!("options_of_concert"))
            .bind(micros(now))
            .bind(concert.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                let total: i64 = r.try_get("total")?;
                let available: i64 = r.try_get("available")?;
                Ok(OptionSummary {
                    option: rows::option(r)?,
                    total_seats: total.max(0) as u64,
                    available_seats: available.max(0) as u64,
                })
            })
            .collect::<Result<_, MySqlError>>()
            .map_err(row)
    }

    async fn option(&self, option: OptionId) -> Result<ShowOption> {
        let found = sqlx::query(sql!("option"))
            .bind(option.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("option", option))?;
        rows::option(&found).map_err(row)
    }

    async fn set_sale_window(
        &self,
        option: OptionId,
        opens_at: Option<DateTime<Utc>>,
        closes_at: Option<DateTime<Utc>>,
    ) -> Result<ShowOption> {
        // An option's start never changes, so the window is checked against the one read.
        rules::with_sale_window(&self.option(option).await?, opens_at, closes_at)?;
        retrying!(self, self.try_set_sale_window(option, opens_at, closes_at))
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
            .map(|r| {
                let r = rows::seat(r)?;
                Ok(SeatView {
                    status: rules::effective_seat_state(r.state, now).status(),
                    seat: r.seat,
                })
            })
            .collect::<Result<_, MySqlError>>()
            .map_err(row)
    }

    async fn hold(&self, cmd: HoldCommand) -> Result<Reservation> {
        retrying!(self, self.try_hold(&cmd))
    }

    async fn confirm(&self, cmd: ConfirmCommand) -> Result<Payment> {
        retrying!(self, self.try_confirm(&cmd))
    }

    async fn cancel(&self, cmd: CancelCommand) -> Result<Reservation> {
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
            let last = seen < chunk || ids.is_empty();
            expired.extend(ids);
            if last {
                break;
            }
        }
        Ok(expired)
    }

    async fn reservation(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation> {
        let found = sqlx::query(sql!("reservation_get"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("reservation", id))?;
        let r = rows::reservation(&found).map_err(row)?;
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
            .map(|r| rows::reservation(r).map(|r| rules::effective(&r, now)))
            .collect::<Result<_, _>>()
            .map_err(row)
    }

    async fn charge(&self, cmd: ChargeCommand) -> Result<Balance> {
        if !cmd.amount.is_positive() {
            return Err(Error::invalid("amount must be positive"));
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
        let found = sqlx::query(sql!("idempotency_get"))
            .bind(user.0)
            .bind(key.as_bytes())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        found.map(|r| record(&r)).transpose().map_err(row)
    }

    async fn outbox_read(&self, after: u64, limit: usize) -> Result<Vec<OutboxRecord>> {
        let rows = sqlx::query(sql!("outbox_read"))
            .bind(i64::try_from(after).unwrap_or(i64::MAX))
            .bind(limit_param(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.try_get("seq")?;
                let payload: String = r.try_get("payload")?;
                Ok(OutboxRecord {
                    seq: seq.max(0) as u64,
                    event: rows::from_json("outbox.payload", &payload)?,
                })
            })
            .collect::<Result<_, MySqlError>>()
            .map_err(row)
    }

    async fn outbox_ack(&self, seqs: &[u64]) -> Result<()> {
        // A seq beyond i64 cannot be in the table: leave it out.
        let seqs: Vec<i64> = seqs.iter().filter_map(|s| i64::try_from(*s).ok()).collect();
        for chunk in seqs.chunks(ACK_CHUNK) {
            let mut q = sqlx::query(with_ids(sql!("outbox_ack"), chunk.len()));
            for seq in chunk {
                q = q.bind(*seq);
            }
            q.execute(&self.pool).await.map_err(db)?;
        }
        Ok(())
    }

    async fn prune(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        let keys = sqlx::query(sql!("idempotency_prune"))
            .bind(micros(before))
            .bind(limit_param(limit))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        let events = sqlx::query(sql!("outbox_prune"))
            .bind(micros(before))
            .bind(limit_param(limit))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_expand_to_placeholders() {
        let q = with_ids("SELECT 1 FROM t WHERE id IN ({ids})", 3);
        assert_eq!(q.0, "SELECT 1 FROM t WHERE id IN (?, ?, ?)");
        let q = with_values("INSERT INTO t (a, b) VALUES {values}", 2, 2);
        assert_eq!(q.0, "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
    }
}
