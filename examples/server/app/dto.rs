//! The JSON shapes of API.md.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ticketing::{
    Balance, Concert, OptionSummary, Payment, QueueStatus, QueueTicket, Reservation,
    ReservationStatus, SeatStatus, SeatView,
};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
pub struct EnqueueBody {
    pub user_id: i64,
    pub concert_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub token: String,
    pub user_id: i64,
    pub concert_id: i64,
    /// `waiting`, `admitted` or `expired`.
    pub status: &'static str,
    pub position: u64,
    pub estimated_wait_seconds: u64,
    pub admitted_until: Option<DateTime<Utc>>,
}

impl From<QueueTicket> for TokenView {
    fn from(t: QueueTicket) -> Self {
        let (status, position, admitted_until) = match t.status {
            QueueStatus::Waiting { position } => ("waiting", position, None),
            QueueStatus::Admitted { until } => ("admitted", 0, Some(until)),
            QueueStatus::Expired => ("expired", 0, None),
        };
        Self {
            token: t.token.0,
            user_id: t.user_id.0,
            concert_id: t.concert_id.0,
            status,
            position,
            estimated_wait_seconds: t.estimated_wait_seconds,
            admitted_until,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConcertView {
    pub id: i64,
    pub title: String,
    pub venue: String,
}

impl From<Concert> for ConcertView {
    fn from(c: Concert) -> Self {
        Self {
            id: c.id.0,
            title: c.title,
            venue: c.venue,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OptionView {
    pub id: i64,
    pub concert_id: i64,
    pub starts_at: DateTime<Utc>,
    pub total_seats: u64,
    pub available_seats: u64,
}

impl From<OptionSummary> for OptionView {
    fn from(o: OptionSummary) -> Self {
        Self {
            id: o.option.id.0,
            concert_id: o.option.concert_id.0,
            starts_at: o.option.starts_at,
            total_seats: o.total_seats,
            available_seats: o.available_seats,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SeatQuery {
    /// `all` for every seat; otherwise only available seats.
    pub status: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeatViewDto {
    pub id: i64,
    pub option_id: i64,
    pub seat_no: String,
    pub grade: String,
    pub price: i64,
    /// `available`, `held` or `sold`.
    pub status: &'static str,
}

impl From<SeatView> for SeatViewDto {
    fn from(v: SeatView) -> Self {
        Self {
            id: v.seat.id.0,
            option_id: v.seat.option_id.0,
            seat_no: v.seat.seat_no,
            grade: v.seat.grade,
            price: v.seat.price.0,
            status: match v.status {
                SeatStatus::Available => "available",
                SeatStatus::Held => "held",
                SeatStatus::Sold => "sold",
            },
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct HoldBody {
    pub user_id: i64,
    pub option_id: i64,
    pub seat_ids: Vec<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UserBody {
    pub user_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationView {
    pub id: Uuid,
    pub user_id: i64,
    pub option_id: i64,
    pub seat_ids: Vec<i64>,
    /// `held`, `confirmed`, `cancelled` or `expired`.
    pub status: &'static str,
    pub amount: i64,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub refunded_amount: i64,
}

impl From<Reservation> for ReservationView {
    fn from(r: Reservation) -> Self {
        Self {
            id: r.id.0,
            user_id: r.user_id.0,
            option_id: r.option_id.0,
            seat_ids: r.seat_ids.iter().map(|s| s.0).collect(),
            status: match r.status {
                ReservationStatus::Held => "held",
                ReservationStatus::Confirmed => "confirmed",
                ReservationStatus::Cancelled => "cancelled",
                ReservationStatus::Expired => "expired",
            },
            amount: r.amount.0,
            expires_at: r.expires_at,
            created_at: r.created_at,
            refunded_amount: r.refunded_amount.0,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PayBody {
    pub user_id: i64,
    pub reservation_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub id: Uuid,
    pub reservation_id: Uuid,
    pub user_id: i64,
    pub amount: i64,
    /// Always `paid`.
    pub status: &'static str,
    pub balance: i64,
}

impl From<Payment> for PaymentView {
    fn from(p: Payment) -> Self {
        Self {
            id: p.id.0,
            reservation_id: p.reservation_id.0,
            user_id: p.user_id.0,
            amount: p.amount.0,
            status: "paid",
            balance: p.balance.0,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChargeBody {
    pub user_id: i64,
    pub amount: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    pub user_id: i64,
    pub balance: i64,
}

impl From<Balance> for BalanceView {
    fn from(b: Balance) -> Self {
        Self {
            user_id: b.user_id.0,
            balance: b.balance.0,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemView {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The stable machine code.
    pub code: String,
}
