//! The JSON shapes of API.md.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ticketing::{
    Balance, Concert, OptionSummary, Payment, QueueStatus, QueueTicket, Reservation, SeatView,
};
use utoipa::ToSchema;
use uuid::Uuid;

pub mod admin;
pub mod int;

/// The body of `POST /queue/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EnqueueBody {
    /// The user who joins.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::dto::int::int")]
    pub user_id: i64,
    /// The concert whose line they join.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::dto::int::int")]
    pub concert_id: i64,
}

/// A queue token and its place.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// The token: send it as `X-Queue-Token` once admitted.
    pub token: String,
    /// Whose token.
    pub user_id: i64,
    /// For which concert.
    pub concert_id: i64,
    /// `waiting`, `admitted` or `expired`.
    pub status: &'static str,
    /// Place in the line while waiting (1 is next), else 0.
    pub position: u64,
    /// Estimated seconds until admission while waiting, else 0.
    pub estimated_wait_seconds: u64,
    /// When the admission ends, if admitted.
    pub admitted_until: Option<DateTime<Utc>>,
}

impl From<QueueTicket> for TokenView {
    fn from(t: QueueTicket) -> Self {
        let (status, position, admitted_until) = match t.status {
            QueueStatus::Waiting { position } => ("waiting", position, None),
            QueueStatus::Admitted { until } => ("admitted", 0, Some(until)),
            // The contract knows three states: a token that ended early is over too.
            QueueStatus::Expired | QueueStatus::Done => ("expired", 0, None),
            // A state a later library version adds: said as the contract's nearest, and logged
            // so that the server is taught it.
            other => {
                tracing::warn!(status = ?other, "a queue status the API does not know");
                ("expired", 0, None)
            }
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

/// A concert.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConcertView {
    /// The concert's id.
    pub id: i64,
    /// Its title.
    pub title: String,
    /// Where.
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

/// A dated option of a concert, with its seat counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct OptionView {
    /// The option's id.
    pub id: i64,
    /// Its concert.
    pub concert_id: i64,
    /// When the show starts.
    pub starts_at: DateTime<Utc>,
    /// When its seats go on sale (holds before are `409 sale_not_open`); null: on sale now.
    pub sale_opens_at: Option<DateTime<Utc>>,
    /// When the sale ends (holds and payments from then on are `409 sale_closed`): the show's
    /// start unless the operator set another instant.
    pub sale_closes_at: DateTime<Utc>,
    /// Seats of the option.
    pub total_seats: u64,
    /// Of which available now.
    pub available_seats: u64,
}

impl From<OptionSummary> for OptionView {
    fn from(o: OptionSummary) -> Self {
        Self {
            id: o.option.id.0,
            concert_id: o.option.concert_id.0,
            starts_at: o.option.starts_at,
            sale_opens_at: o.option.sale_opens_at,
            sale_closes_at: ticketing::rules::sale_end(&o.option.sale_window()),
            total_seats: o.total_seats,
            available_seats: o.available_seats,
        }
    }
}

/// The query of `GET .../seats`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SeatQuery {
    /// `all` for every seat; `available` (the default) for the available ones.
    pub status: Option<SeatFilter>,
}

/// Which seats a seat map lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeatFilter {
    /// The available ones.
    Available,
    /// Every seat.
    All,
}

/// An option's availability in a compact form a client can poll cheaply (with `If-None-Match`:
/// `304` while nothing changed): the seats are those of `GET .../seats?status=all`, in that
/// order (ascending seat id), and seat `i` is available when bit `i` of `bitmap` is set
/// (byte `i / 8`, most significant bit first).
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityView {
    /// The option.
    pub option_id: i64,
    /// Seats of the option.
    pub seats: u64,
    /// Of which available.
    pub available: u64,
    /// One bit per seat, base64 (standard alphabet, padded).
    pub bitmap: String,
}

/// A seat with its status.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatViewDto {
    /// The seat's id.
    pub id: i64,
    /// Its option.
    pub option_id: i64,
    /// Its label, e.g. `A-1`.
    pub seat_no: String,
    /// Its grade, e.g. `R`.
    pub grade: String,
    /// Its price in points.
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
            status: v.status.as_str(),
        }
    }
}

/// The body of `POST /reservations`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct HoldBody {
    /// The user who holds.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::dto::int::int")]
    pub user_id: i64,
    /// The option whose seats are held.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::dto::int::int")]
    pub option_id: i64,
    /// The seats, all held or none (1 to 100, each of this option).
    #[serde(deserialize_with = "crate::dto::int::ints")]
    pub seat_ids: Vec<i64>,
}

/// A body naming the user who acts.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserBody {
    /// The user who acts.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::dto::int::int")]
    pub user_id: i64,
}

/// A reservation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationView {
    /// The reservation's id.
    pub id: Uuid,
    /// Whose.
    pub user_id: i64,
    /// For which option.
    pub option_id: i64,
    /// Its seats, ascending.
    pub seat_ids: Vec<i64>,
    /// `held`, `confirmed`, `cancelled` or `expired`.
    pub status: &'static str,
    /// The sum of its seats' prices, in points.
    pub amount: i64,
    /// When the hold ends unless paid.
    pub expires_at: DateTime<Utc>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Points paid back by a cancel.
    pub refunded_amount: i64,
}

impl From<Reservation> for ReservationView {
    fn from(r: Reservation) -> Self {
        Self {
            id: r.id.0,
            user_id: r.user_id.0,
            option_id: r.option_id.0,
            seat_ids: r.seat_ids.iter().map(|s| s.0).collect(),
            status: r.status.as_str(),
            amount: r.amount.0,
            expires_at: r.expires_at,
            created_at: r.created_at,
            refunded_amount: r.refunded_amount.0,
        }
    }
}

/// The body of `POST /payments`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PayBody {
    /// The user who pays (the reservation's owner).
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::dto::int::int")]
    pub user_id: i64,
    /// The hold to pay.
    pub reservation_id: Uuid,
    /// How: `points` (default; debited from the wallet with the sale, atomically) or
    /// `provider` (charged by the configured payment provider: docs/payments.md).
    #[serde(default)]
    pub method: PayMethod,
}

/// How a hold is paid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayMethod {
    /// Points from the wallet.
    #[default]
    Points,
    /// The payment provider.
    Provider,
}

/// A provider payment whose outcome is not known yet (`202`): the seats are kept until
/// `deadline`; the webhook or the recovery job settles it. Retry with the same
/// `Idempotency-Key` to learn the outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentPendingView {
    /// The payment attempt.
    pub attempt_id: Uuid,
    /// The reservation being paid.
    pub reservation_id: Uuid,
    /// Who pays.
    pub user_id: i64,
    /// The amount charged.
    pub amount: i64,
    /// Always `pending`.
    pub status: &'static str,
    /// Until when the seats are kept for the provider's answer.
    pub deadline: chrono::DateTime<chrono::Utc>,
}

impl From<ticketing::provider::PaymentAttempt> for PaymentPendingView {
    fn from(a: ticketing::provider::PaymentAttempt) -> Self {
        Self {
            attempt_id: a.id.0,
            reservation_id: a.reservation_id.0,
            user_id: a.user_id.0,
            amount: a.amount.0,
            status: "pending",
            deadline: a.deadline,
        }
    }
}

/// The body of the provider's webhook: the idempotency key of the charge it has news of. The
/// news itself is not trusted: the provider is asked for the key's outcome.
#[derive(Debug, Deserialize, ToSchema)]
pub struct WebhookBody {
    /// The charge's idempotency key (`charge-<uuid>`).
    #[schema(max_length = 200)]
    pub key: String,
}

/// A payment attempt as it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// The attempt.
    pub id: Uuid,
    /// `charge` or `refund`.
    pub kind: &'static str,
    /// `pending`, `succeeded` or `failed`.
    pub state: &'static str,
}

impl From<ticketing::provider::PaymentAttempt> for AttemptView {
    fn from(a: ticketing::provider::PaymentAttempt) -> Self {
        use ticketing::provider::{AttemptKind, AttemptState};
        Self {
            id: a.id.0,
            kind: match a.kind {
                AttemptKind::Charge => "charge",
                AttemptKind::Refund => "refund",
            },
            state: match a.state {
                AttemptState::Pending => "pending",
                AttemptState::Succeeded { .. } => "succeeded",
                AttemptState::Failed { .. } => "failed",
            },
        }
    }
}

/// A payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    /// The payment's id.
    pub id: Uuid,
    /// The reservation paid.
    pub reservation_id: Uuid,
    /// Who paid.
    pub user_id: i64,
    /// Points debited.
    pub amount: i64,
    /// Always `paid`.
    pub status: &'static str,
    /// The balance after the payment.
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

/// The body of `POST /point/charge`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChargeBody {
    /// Whose wallet.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::dto::int::int")]
    pub user_id: i64,
    /// Points to add (positive).
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::dto::int::int")]
    pub amount: i64,
}

/// A user's balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    /// Whose.
    pub user_id: i64,
    /// Points held.
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

/// An error answer (RFC 9457 problem details, `application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemView {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened, for people.
    pub detail: String,
    /// The stable machine code.
    pub code: String,
}
