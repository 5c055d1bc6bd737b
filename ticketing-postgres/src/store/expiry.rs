//! The sweeper: due holds expired in short set-based transactions that skip locked seats.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ticketing_core::rules::{self, Action};
use ticketing_core::{
    DomainEvent, Error, EventKind, Reservation, ReservationId, Result, SeatId, SeatState,
};

use super::{PgStore, commit, ids};
use crate::error::Fail;
use crate::rows::{self, SeatRow};

impl PgStore {
    /// Expire up to `limit` due holds in one short transaction of set-based statements.
    /// Returns the expired ids and how many due holds were selected (a hold whose seats another
    /// transaction has locked is selected but left for a later sweep).
    pub(super) async fn try_expire(
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
}
