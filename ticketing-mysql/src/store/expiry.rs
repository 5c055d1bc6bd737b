//! The sweeper: due holds expired in short transactions that skip locked seats.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ticketing_core::rules::{self, Action};
use ticketing_core::{DomainEvent, EventKind, Reservation, ReservationId, SeatId};

use super::sql_lists::{in_list, values};
use super::{EXPIRY_SEATS, MySqlStore, commit, ids, limit_param};
use crate::error::Fail;
use crate::rows::{self, SeatRow, micros};

/// What one sweeper transaction did.
pub(super) struct Expired {
    /// The holds it expired.
    pub(super) ids: Vec<ReservationId>,
    /// The due holds it took (expired, or left because another transaction locks a seat).
    pub(super) selected: usize,
    /// Whether due holds were left out for the seat bound.
    pub(super) more: bool,
}

impl MySqlStore {
    /// Expire up to `limit` due holds in one short transaction, taken in order while their
    /// seats add up to at most [`EXPIRY_SEATS`] (the first always). Returns the expired ids,
    /// how many due holds were taken (a hold whose seats another transaction has locked is
    /// taken but left for a later sweep) and whether due holds were left out for the seat
    /// bound (the caller goes on with another transaction).
    pub(super) async fn try_expire(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Expired, Fail> {
        let mut tx = self.begin().await?;
        let mut due = sqlx::query(sql!("reservations_due"))
            .bind(micros(now))
            .bind(limit_param(limit))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(rows::reservation)
            .collect::<Result<Vec<_>, _>>()?;
        let mut seats = 0;
        let taken = due
            .iter()
            .take_while(|r| {
                seats += r.seat_ids.len();
                seats <= EXPIRY_SEATS
            })
            .count()
            .max(1)
            .min(due.len());
        let more = taken < due.len();
        due.truncate(taken);
        let selected = due.len();
        let due: Vec<Reservation> = due
            .into_iter()
            .filter(|r| rules::transition(r, Action::Expire, now).is_ok())
            .collect();
        if due.is_empty() {
            return Ok(Expired {
                ids: Vec::new(),
                selected,
                more,
            });
        }
        let mut wanted: Vec<i64> = due.iter().flat_map(|r| ids(&r.seat_ids)).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let rows = in_list(sql!("seats_lock_skip"), &wanted)
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
            return Ok(Expired {
                ids: Vec::new(),
                selected,
                more,
            });
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
        let expired_ids: Vec<uuid::Uuid> = expired.iter().map(|id| id.0).collect();
        in_list(sql!("reservations_expire"), &expired_ids)
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
        let mut q = values(sql!("outbox_insert_many"), events.len(), 3);
        for event in &events {
            q = q
                .bind(event.id.0)
                .bind(micros(event.at))
                .bind(rows::to_json("an outbox event", event)?);
        }
        q.execute(&mut *tx).await?;
        commit(tx).await?;
        Ok(Expired {
            ids: expired,
            selected,
            more,
        })
    }
}
