//! Rows to domain values, and domain values to columns.
//!
//! Instants are stored as BIGINT microseconds since the Unix epoch (UTC): exact, and compared
//! as integers in SQL. Reading one back gives the instant truncated to the microsecond.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::mysql::MySqlRow;
use ticketing_core::{
    Concert, ConcertId, Error, FencingToken, OptionId, PaymentId, Points, Reservation,
    ReservationId, ReservationStatus, SaleWindow, Seat, SeatId, SeatState, ShowOption, UserId,
};
use uuid::Uuid;

use crate::error::MySqlError;

type RowResult<T> = Result<T, MySqlError>;

/// An instant as stored: microseconds since the epoch (earlier sub-microsecond parts dropped,
/// rounding toward the past, so `stored <= now` holds exactly when `instant <= now`).
pub(crate) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// An instant as stored, if any.
pub(crate) fn micros_opt(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(micros)
}

fn instant(us: i64) -> RowResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us).ok_or(MySqlError::Instant(us))
}

fn instant_at(row: &MySqlRow, column: &str) -> RowResult<DateTime<Utc>> {
    instant(row.try_get(column)?)
}

fn instant_opt(row: &MySqlRow, column: &str) -> RowResult<Option<DateTime<Utc>>> {
    row.try_get::<Option<i64>, _>(column)?
        .map(instant)
        .transpose()
}

pub(crate) fn concert(row: &MySqlRow) -> RowResult<Concert> {
    Ok(Concert {
        id: ConcertId(row.try_get("id")?),
        title: row.try_get("title")?,
        venue: row.try_get("venue")?,
    })
}

pub(crate) fn option(row: &MySqlRow) -> RowResult<ShowOption> {
    Ok(ShowOption {
        id: OptionId(row.try_get("id")?),
        concert_id: ConcertId(row.try_get("concert_id")?),
        starts_at: instant_at(row, "starts_at")?,
        sale_opens_at: instant_opt(row, "sale_opens_at")?,
        sale_closes_at: instant_opt(row, "sale_closes_at")?,
    })
}

/// A sale window from a row of `starts_at`, `sale_opens_at`, `sale_closes_at`.
pub(crate) fn sale_window(row: &MySqlRow) -> RowResult<SaleWindow> {
    Ok(SaleWindow {
        starts_at: instant_at(row, "starts_at")?,
        opens_at: instant_opt(row, "sale_opens_at")?,
        closes_at: instant_opt(row, "sale_closes_at")?,
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

pub(crate) fn seat(row: &MySqlRow) -> RowResult<SeatRow> {
    let status: String = row.try_get("status")?;
    let reservation: Option<Uuid> = row.try_get("reservation_id")?;
    let until = instant_opt(row, "held_until")?;
    let state = match (status.as_str(), reservation, until) {
        ("available", _, _) => SeatState::Available,
        ("held", Some(r), Some(until)) => SeatState::Held {
            reservation: ReservationId(r),
            until,
        },
        ("sold", Some(r), _) => SeatState::Sold {
            reservation: ReservationId(r),
        },
        _ => return Err(MySqlError::Corrupt("seat status")),
    };
    let fence: Option<i64> = row.try_get("fence")?;
    Ok(SeatRow {
        seat: Seat {
            id: SeatId(row.try_get("id")?),
            option_id: OptionId(row.try_get("option_id")?),
            seat_no: row.try_get("seat_no")?,
            grade: row.try_get("grade")?,
            price: Points(row.try_get("price")?),
        },
        state,
        version: row.try_get("version")?,
        fence: fence.map(|f| FencingToken(f.max(0) as u64)),
    })
}

/// The columns a seat state is written as: status, reservation, held_until (microseconds).
pub(crate) fn seat_columns(state: SeatState) -> (&'static str, Option<Uuid>, Option<i64>) {
    match state {
        SeatState::Available => ("available", None, None),
        SeatState::Held { reservation, until } => {
            ("held", Some(reservation.0), Some(micros(until)))
        }
        SeatState::Sold { reservation } => ("sold", Some(reservation.0), None),
    }
}

/// A reservation's seat ids as stored: a JSON array.
pub(crate) fn seat_ids_json(ids: &[SeatId]) -> String {
    let ids: Vec<String> = ids.iter().map(|s| s.0.to_string()).collect();
    format!("[{}]", ids.join(","))
}

pub(crate) fn reservation(row: &MySqlRow) -> RowResult<Reservation> {
    let status: String = row.try_get("status")?;
    let status = match status.as_str() {
        "held" => ReservationStatus::Held,
        "confirmed" => ReservationStatus::Confirmed,
        "cancelled" => ReservationStatus::Cancelled,
        "expired" => ReservationStatus::Expired,
        _ => return Err(MySqlError::Corrupt("reservation status")),
    };
    let seat_ids: String = row.try_get("seat_ids")?;
    let seat_ids: Vec<i64> =
        serde_json::from_str(&seat_ids).map_err(|source| MySqlError::Json {
            what: "reservations.seat_ids",
            source,
        })?;
    let payment: Option<Uuid> = row.try_get("payment_id")?;
    Ok(Reservation {
        id: ReservationId(row.try_get("id")?),
        user_id: UserId(row.try_get("user_id")?),
        option_id: OptionId(row.try_get("option_id")?),
        seat_ids: seat_ids.into_iter().map(SeatId).collect(),
        status,
        amount: Points(row.try_get("amount")?),
        expires_at: instant_at(row, "expires_at")?,
        created_at: instant_at(row, "created_at")?,
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

/// A JSON value as stored in a text column.
pub(crate) fn to_json<T: serde::Serialize>(what: &'static str, value: &T) -> RowResult<String> {
    serde_json::to_string(value).map_err(|source| MySqlError::Json { what, source })
}

/// A JSON value from a text column.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    text: &str,
) -> RowResult<T> {
    serde_json::from_str(text).map_err(|source| MySqlError::Json { what, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instants round-trip exactly at microsecond precision, and a sub-microsecond part rounds
    /// toward the past (so SQL's `held_until <= now` agrees with `rules::is_expired`).
    #[test]
    fn instants_are_exact_microseconds() {
        let t = DateTime::from_timestamp_micros(1_790_000_000_123_456).expect("in range");
        assert_eq!(instant(micros(t)).ok(), Some(t));
        let later = t + chrono::Duration::nanoseconds(999);
        assert_eq!(micros(later), micros(t));
        let before = t - chrono::Duration::nanoseconds(1);
        assert_eq!(micros(before), micros(t) - 1);
        assert!(matches!(instant(i64::MAX), Err(MySqlError::Instant(_))));
    }

    #[test]
    fn seat_ids_are_a_json_array() {
        let ids = [SeatId(3), SeatId(10)];
        let text = seat_ids_json(&ids);
        assert_eq!(text, "[3,10]");
        let back: Vec<i64> = from_json("seat_ids", &text).expect("parses");
        assert_eq!(back, vec![3, 10]);
    }
}
