//! The MySQL / MariaDB [`TicketStore`]. Every rule comes from `ticketing_core::rules`; SQL only
//! loads, locks and stores.

use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlPool, Row};
use ticketing_core::provider::{
    BeginPaymentCommand, ChargeSettled, PaymentAttempt, SettleChargeCommand, SettleRefundCommand,
};
use ticketing_core::rules;
use ticketing_core::{
    AttemptId, Balance, CancelCommand, Catalog, ChargeCommand, Concert, ConcertId, Error,
    HoldCommand, IdempotencyRecord, OptionId, OptionSummary, OutboxRecord, PayCommand, Payment,
    Points, Reservation, ReservationId, Result, SeatId, SeatView, ShowOption, TicketStore, UserId,
    async_trait,
};

use crate::MySqlConfig;
use crate::error::{Fail, MySqlError, commit_refused, db, row};
use crate::rows::{self, micros};

macro_rules! sql {
    ($name:literal) => {
        include_str!(concat!("../../sql/", $name, ".sql"))
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
                Err(Fail::Retry(e)) if retries >= $self.config.max_retries => {
                    tracing::debug!(target: "ticketing::mysql", error = %e, retries, "retries exhausted");
                    break Err(e);
                }
                Err(Fail::Retry(e)) => {
                    retries += 1;
                    tracing::debug!(target: "ticketing::mysql", error = %e, retries, "transaction retried");
                }
            }
        }
    }};
}

mod commands;
mod expiry;
mod provider;
mod records;
mod seats;
mod seed;
mod sql_lists;
mod wallet;

/// The MySQL / MariaDB store. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
    config: MySqlConfig,
}

/// Due holds selected per sweeper transaction (the `IN (...)` list of the holds it expires).
const EXPIRY_CHUNK: usize = 64;
/// Seats freed per sweeper transaction at most (the `IN (...)` list of the seats it locks): the
/// due holds selected are taken in order while their seats fit (the first always fits: a hold
/// has at most [`crate::MAX_SEATS_PER_COMMAND`] seats).
const EXPIRY_SEATS: usize = 1_024;
/// Rows per multi-row `INSERT` when seeding (MySQL allows 65,535 placeholders a statement).
const SEED_CHUNK: usize = 1_000;
/// Ids per `IN (...)` list when acknowledging outbox events, and rows per pruning transaction.
const ID_CHUNK: usize = 1_000;

const _: () = assert!(EXPIRY_SEATS >= crate::MAX_SEATS_PER_COMMAND);

pub(super) type Tx = sqlx::Transaction<'static, MySql>;

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

/// Refuse a command over more than [`crate::MAX_SEATS_PER_COMMAND`] seats (`invalid_request`).
fn too_many_seats(seats: usize) -> Result<()> {
    if seats > crate::MAX_SEATS_PER_COMMAND {
        return Err(Error::invalid(format!(
            "at most {} seats a hold (got {seats})",
            crate::MAX_SEATS_PER_COMMAND
        )));
    }
    Ok(())
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

    pub(super) async fn begin(&self) -> Result<Tx, Fail> {
        Ok(self.pool.begin_with(sql!("command_begin")).await?)
    }
}

/// Commit a command's transaction. A commit the server refused did not happen; one that got
/// no answer (a lost or killed connection) may have.
pub(super) async fn commit(tx: Tx) -> Result<(), Fail> {
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
        // Before any SQL: the seats' list is a statement's placeholders.
        too_many_seats(cmd.seat_ids.len())?;
        retrying!(self, self.try_hold(&cmd))
    }

    async fn pay(&self, cmd: PayCommand) -> Result<Payment> {
        retrying!(self, self.try_pay(&cmd))
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
            let expiry::Expired {
                ids,
                selected: seen,
                more,
            } = match retrying!(self, self.try_expire(now, chunk)) {
                Ok(done) => done,
                // The chunks before were committed: report them; the next sweep retries the
                // rest (and meets the error again if it lasts).
                Err(_) if !expired.is_empty() => break,
                Err(e) => return Err(e),
            };
            selected += seen;
            // Fewer due than asked (and none left out for the seat bound), or every selected
            // hold's seats locked by others (they would be selected again at once): the rest
            // waits for the next sweep.
            let last = (seen < chunk && !more) || ids.is_empty();
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
        found.map(|r| records::record(&r)).transpose().map_err(row)
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
        for chunk in seqs.chunks(ID_CHUNK) {
            sql_lists::in_list(sql!("outbox_ack"), chunk)
                .execute(&self.pool)
                .await
                .map_err(db)?;
        }
        Ok(())
    }

    async fn prune(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        let keys = self
            .prune_table(records::Pruned::Keys, before, limit)
            .await?;
        let events = self
            .prune_table(records::Pruned::Events, before, limit)
            .await?;
        Ok(keys + events)
    }

    async fn health(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn begin_provider_payment(&self, cmd: BeginPaymentCommand) -> Result<PaymentAttempt> {
        retrying!(self, self.try_begin_provider(&cmd))
    }

    async fn settle_charge(&self, cmd: SettleChargeCommand) -> Result<ChargeSettled> {
        match retrying!(self, self.try_settle_charge(&cmd, false)) {
            // A seat already sold under another reservation: refund, never fail forever.
            Err(Error::SeatUnavailable { .. }) => {
                retrying!(self, self.try_settle_charge(&cmd, true))
            }
            settled => settled,
        }
    }

    async fn settle_refund(&self, cmd: SettleRefundCommand) -> Result<PaymentAttempt> {
        retrying!(self, self.try_settle_refund(&cmd))
    }

    async fn payment_attempt(&self, id: AttemptId) -> Result<PaymentAttempt> {
        done(self.read_attempt(id).await)
    }

    async fn reservation_attempts(&self, id: ReservationId) -> Result<Vec<PaymentAttempt>> {
        done(self.read_attempts_of(id).await)
    }

    async fn pending_attempts(&self, limit: usize) -> Result<Vec<PaymentAttempt>> {
        done(self.read_pending_attempts(limit).await)
    }
}
