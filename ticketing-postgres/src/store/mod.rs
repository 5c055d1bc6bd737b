//! The PostgreSQL [`TicketStore`]. Every rule comes from `ticketing_core::rules`; SQL only
//! loads, locks and stores.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgPool, Row};
use ticketing_core::provider::{
    BeginPaymentCommand, ChargeSettled, PaymentAttempt, SettleChargeCommand, SettleRefundCommand,
};
use ticketing_core::rules;
use ticketing_core::{
    AttemptId, Balance, CancelCommand, Catalog, ChargeCommand, Concert, ConcertId, DomainEvent,
    Error, HoldCommand, IdempotencyRecord, OptionId, OptionSummary, OutboxRecord, PayCommand,
    Payment, Points, Reservation, ReservationId, Result, SeatId, SeatView, ShowOption,
    StoredOutcome, TicketStore, UserId, async_trait,
};

#[cfg(feature = "pessimistic")]
use crate::LockWait;
use crate::PgConfig;
#[cfg(feature = "pessimistic")]
use crate::PgStrategy;
use crate::batch::{Batcher, Command, Outcome};
use crate::error::{Fail, commit_refused, db};
use crate::rows;

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
                    tracing::debug!(target: "ticketing::postgres", error = %e, retries, "retries exhausted");
                    break Err(e);
                }
                Err(Fail::Retry(e)) => {
                    retries += 1;
                    tracing::debug!(target: "ticketing::postgres", error = %e, retries, "transaction retried");
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
mod wallet;

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

    async fn pay(&self, cmd: PayCommand) -> Result<Payment> {
        if let Some(batcher) = &self.batcher {
            return match batcher.submit(Command::Pay(cmd)).await? {
                Outcome::Pay(p) => Ok(p),
                _ => Err(mismatch()),
            };
        }
        retrying!(self, self.try_pay(&cmd))
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
