//! Seats: loading (and locking) them in id order, writing their next states under the fencing
//! and version checks, and the sale window read after them.

use sqlx::PgConnection;
use ticketing_core::rules;
use ticketing_core::{
    Error, FencingToken, OptionId, Reservation, Result, SaleWindow, SeatId, SeatState,
};

use super::{PgStore, ids, lost_race};
#[cfg(feature = "pessimistic")]
use crate::LockWait;
use crate::PgStrategy;
use crate::error::{Fail, code};
use crate::rows::{self, SeatRow};

impl PgStore {
    /// Load (and, pessimistically, lock) seats in id order; missing ids are `not_found`.
    pub(super) async fn load_seats(
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
    pub(super) async fn write_seats(
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
    pub(super) async fn on_seats<D>(
        &self,
        conn: &mut PgConnection,
        reservation: &Reservation,
        fence: Option<FencingToken>,
        decide: impl FnOnce(&[SeatState], &SaleWindow) -> Result<(D, Vec<SeatState>)>,
    ) -> Result<D, Fail> {
        let wanted = &reservation.seat_ids;
        let rows = self.load_seats(conn, wanted, false).await?;
        let sale = self.sale_window(conn, reservation.option_id).await?;
        let seat = |r: &SeatRow| (r.seat.id, r.state);
        let (d, next) = decide(&rules::states_in_order(&rows, seat, wanted)?, &sale)?;
        let next = rules::in_loaded_order(&rows, seat, wanted, &next);
        self.write_seats(conn, &rows, &next, fence).await?;
        Ok(d)
    }

    /// An option's sale window, read in the command's transaction after its seats are loaded
    /// (and, pessimistically, locked); `not_found` for an unknown option. Changing a window
    /// locks and bumps the version of every seat of the option (`option_sale_set.sql`), so a
    /// command either finishes before the change (it waits for the command's seat locks, or
    /// the command's compare-and-set fails and it is retried) or reads the new window.
    pub(super) async fn sale_window(
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

    /// Record the sale of a reservation's seats. The sales table's key is the schema's last
    /// line of defence against a double sale: a seat already sold is `seat_unavailable`.
    pub(super) async fn sell(
        &self,
        conn: &mut PgConnection,
        reservation: &Reservation,
    ) -> Result<(), Fail> {
        match sqlx::query(sql!("sales_insert"))
            .bind(ids(&reservation.seat_ids))
            .bind(reservation.id.0)
            .execute(&mut *conn)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if code(&e).as_deref() == Some("23505") => Err(Error::SeatUnavailable {
                seats: reservation.seat_ids.clone(),
            }
            .into()),
            Err(e) => Err(e.into()),
        }
    }
}
