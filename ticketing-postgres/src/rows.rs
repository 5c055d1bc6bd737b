//! Rows to domain values.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use ticketing_core::{
    Concert, ConcertId, Error, FencingToken, OptionId, PaymentId, Points, Reservation,
    ReservationId, ReservationStatus, SaleWindow, Seat, SeatId, SeatState, ShowOption, UserId,
};
use uuid::Uuid;

pub(crate) fn concert(row: &PgRow) -> Result<Concert, sqlx::Error> {
    Ok(Concert {
        id: ConcertId(row.try_get("id")?),
        title: row.try_get("title")?,
        venue: row.try_get("venue")?,
    })
}

pub(crate) fn option(row: &PgRow) -> Result<ShowOption, sqlx::Error> {
    Ok(ShowOption {
        id: OptionId(row.try_get("id")?),
        concert_id: ConcertId(row.try_get("concert_id")?),
        starts_at: row.try_get("starts_at")?,
        sale_opens_at: row.try_get("sale_opens_at")?,
        sale_closes_at: row.try_get("sale_closes_at")?,
    })
}

/// A sale window from a row of `starts_at`, `sale_opens_at`, `sale_closes_at`.
pub(crate) fn sale_window(row: &PgRow) -> Result<SaleWindow, sqlx::Error> {
    Ok(SaleWindow {
        starts_at: row.try_get("starts_at")?,
        opens_at: row.try_get("sale_opens_at")?,
        closes_at: row.try_get("sale_closes_at")?,
    })
}

/// A seat row with its guarded state.
#[derive(Debug, Clone)]
pub(crate) struct SeatRow {
    pub seat: Seat,
    pub state: SeatState,
    pub version: i64,
    pub fence: Option<FencingToken>,
}

fn corrupt(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("inconsistent row: {what}").into())
}

pub(crate) fn seat(row: &PgRow) -> Result<SeatRow, sqlx::Error> {
    seat_at(row, "id")
}

/// A seat from a row whose seat id is in column `id_column`.
pub(crate) fn seat_at(row: &PgRow, id_column: &str) -> Result<SeatRow, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let reservation: Option<Uuid> = row.try_get("reservation_id")?;
    let until: Option<DateTime<Utc>> = row.try_get("held_until")?;
    let state = match (status.as_str(), reservation, until) {
        ("available", _, _) => SeatState::Available,
        ("held", Some(r), Some(until)) => SeatState::Held {
            reservation: ReservationId(r),
            until,
        },
        ("sold", Some(r), _) => SeatState::Sold {
            reservation: ReservationId(r),
        },
        _ => return Err(corrupt("seat status")),
    };
    let fence: Option<i64> = row.try_get("fence")?;
    Ok(SeatRow {
        seat: Seat {
            id: SeatId(row.try_get(id_column)?),
            option_id: OptionId(row.try_get("option_id")?),
            seat_no: row.try_get("seat_no")?,
            grade: row.try_get("grade")?,
            price: Points(row.try_get("price")?),
        },
        state,
        version: row.try_get("version")?,
        fence: fence.map(|f| FencingToken(f as u64)),
    })
}

/// The columns a seat state is written as: status, reservation, held_until.
pub(crate) fn seat_columns(
    state: SeatState,
) -> (&'static str, Option<Uuid>, Option<DateTime<Utc>>) {
    match state {
        SeatState::Available => ("available", None, None),
        SeatState::Held { reservation, until } => ("held", Some(reservation.0), Some(until)),
        SeatState::Sold { reservation } => ("sold", Some(reservation.0), None),
    }
}

pub(crate) fn status_str(s: ReservationStatus) -> &'static str {
    s.as_str()
}

pub(crate) fn reservation(row: &PgRow) -> Result<Reservation, sqlx::Error> {
    reservation_at(row, "id")
}

/// A reservation from a row whose reservation id is in column `id_column`.
pub(crate) fn reservation_at(row: &PgRow, id_column: &str) -> Result<Reservation, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let status = match status.as_str() {
        "held" => ReservationStatus::Held,
        "confirmed" => ReservationStatus::Confirmed,
        "cancelled" => ReservationStatus::Cancelled,
        "expired" => ReservationStatus::Expired,
        _ => return Err(corrupt("reservation status")),
    };
    let seat_ids: Vec<i64> = row.try_get("seat_ids")?;
    let payment: Option<Uuid> = row.try_get("payment_id")?;
    Ok(Reservation {
        id: ReservationId(row.try_get(id_column)?),
        user_id: UserId(row.try_get("user_id")?),
        option_id: OptionId(row.try_get("option_id")?),
        seat_ids: seat_ids.into_iter().map(SeatId).collect(),
        status,
        amount: Points(row.try_get("amount")?),
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        payment_id: payment.map(PaymentId),
        refunded_amount: Points(row.try_get("refunded_amount")?),
    })
}

/// A fencing token as the BIGINT column holds it.
pub(crate) fn fence_param(fence: Option<FencingToken>) -> Result<Option<i64>, Error> {
    fence
        .map(|f| i64::try_from(f.0).map_err(|_| Error::invalid("fencing token out of range")))
        .transpose()
}
