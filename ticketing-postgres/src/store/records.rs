//! Reservations, idempotency records and outbox events inside a command's transaction.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::Row;
use sqlx::types::Json;
use ticketing_core::{
    DomainEvent, Error, EventKind, IdempotencyKey, IdempotencyRecord, Reservation, ReservationId,
    Result, StoredOutcome,
};

use super::PgStore;
use crate::error::Fail;
use crate::rows;

impl PgStore {
    pub(super) async fn replay(
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

    pub(super) async fn remember(
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

    pub(super) async fn emit(
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

    pub(super) async fn update_reservation(
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

    pub(super) async fn fetch_reservation(
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
}
