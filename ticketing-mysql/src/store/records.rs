//! Reservations, idempotency records and outbox events inside a command's transaction.

use chrono::{DateTime, Utc};
use sqlx::{MySqlConnection, Row};
use ticketing_core::{
    DomainEvent, Error, EventKind, IdempotencyKey, IdempotencyRecord, Reservation, ReservationId,
    Result, StoredOutcome,
};

use super::sql_lists::{in_list, values};
use super::{ID_CHUNK, MySqlStore, commit, limit_param};
use crate::error::{Fail, MySqlError};
use crate::rows::{self, micros};

impl MySqlStore {
    pub(super) async fn replay(
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

    pub(super) async fn remember(
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

    pub(super) async fn emit(
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

    pub(super) async fn update_reservation(
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

    pub(super) async fn fetch_reservation(
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
}

/// An idempotency record from a row of `fingerprint`, `outcome`.
pub(super) fn record(row: &sqlx::mysql::MySqlRow) -> Result<IdempotencyRecord, MySqlError> {
    let outcome: String = row.try_get("outcome")?;
    Ok(IdempotencyRecord {
        fingerprint: row.try_get("fingerprint")?,
        outcome: rows::from_json("idempotency_keys.outcome", &outcome)?,
    })
}

/// A table [`MySqlStore::prune_table`] forgets old rows of.
#[derive(Debug, Clone, Copy)]
pub(super) enum Pruned {
    /// Idempotency records made before the instant.
    Keys,
    /// Outbox events acknowledged before the instant.
    Events,
}

impl MySqlStore {
    /// Forget up to `limit` old rows of `table`, at most [`ID_CHUNK`] per READ COMMITTED
    /// transaction: lock them (`FOR UPDATE SKIP LOCKED`, rows only) and delete exactly those,
    /// as PostgreSQL's prune does; a range `DELETE ... ORDER BY ... LIMIT` would take next-key
    /// locks that hold up every command's insert. Returns how many were forgotten.
    pub(super) async fn prune_table(
        &self,
        table: Pruned,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64> {
        let mut forgotten = 0;
        let mut left = limit;
        while left > 0 {
            let chunk = left.min(ID_CHUNK);
            let (found, deleted) = retrying!(self, self.try_prune(table, before, chunk))?;
            forgotten += deleted;
            left -= found;
            if found < chunk {
                break;
            }
        }
        Ok(forgotten)
    }

    /// One pruning transaction: how many rows were found, how many deleted.
    async fn try_prune(
        &self,
        table: Pruned,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<(usize, u64), Fail> {
        let mut tx = self.begin().await?;
        let select = match table {
            Pruned::Keys => sql!("idempotency_prune"),
            Pruned::Events => sql!("outbox_prune"),
        };
        let rows = sqlx::query(select)
            .bind(micros(before))
            .bind(limit_param(limit))
            .fetch_all(&mut *tx)
            .await?;
        if rows.is_empty() {
            commit(tx).await?;
            return Ok((0, 0));
        }
        let deleted = match table {
            Pruned::Keys => {
                let mut q = values(sql!("idempotency_prune_delete"), rows.len(), 2);
                for row in &rows {
                    let user: i64 = row.try_get("user_id").map_err(MySqlError::from)?;
                    let key: Vec<u8> = row.try_get("idem_key").map_err(MySqlError::from)?;
                    q = q.bind(user).bind(key);
                }
                q.execute(&mut *tx).await?
            }
            Pruned::Events => {
                let seqs = rows
                    .iter()
                    .map(|r| r.try_get::<i64, _>("seq"))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(MySqlError::from)?;
                in_list(sql!("outbox_prune_delete"), &seqs)
                    .execute(&mut *tx)
                    .await?
            }
        };
        commit(tx).await?;
        Ok((rows.len(), deleted.rows_affected()))
    }
}
