//! Domain types: the catalog, seats, reservations, payments, the points ledger and events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{
    AttemptId, ConcertId, EventId, OptionId, PaymentId, ReservationId, SeatId, UserId,
};
use crate::money::Points;
use crate::provider::RefundReason;

/// A concert: one title at one venue, performed on one or more dated [`ShowOption`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concert {
    /// Its id.
    pub id: ConcertId,
    /// The title.
    pub title: String,
    /// Where it takes place.
    pub venue: String,
}

impl Concert {
    /// A concert.
    pub fn new(id: ConcertId, title: impl Into<String>, venue: impl Into<String>) -> Self {
        Self {
            id,
            title: title.into(),
            venue: venue.into(),
        }
    }
}

/// One dated performance of a concert, with its own seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowOption {
    /// Its id.
    pub id: OptionId,
    /// The concert it belongs to.
    pub concert_id: ConcertId,
    /// When it starts.
    pub starts_at: DateTime<Utc>,
    /// When its seats go on sale; `None`: on sale from the moment it is added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_opens_at: Option<DateTime<Utc>>,
    /// When the sale ends; `None`: when the show starts. See [`crate::rules::check_sale`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_closes_at: Option<DateTime<Utc>>,
}

impl ShowOption {
    /// An option on sale from now until it starts.
    pub fn new(id: OptionId, concert_id: ConcertId, starts_at: DateTime<Utc>) -> Self {
        Self {
            id,
            concert_id,
            starts_at,
            sale_opens_at: None,
            sale_closes_at: None,
        }
    }

    /// Its sale window, as stored.
    pub fn sale_window(&self) -> SaleWindow {
        SaleWindow {
            starts_at: self.starts_at,
            opens_at: self.sale_opens_at,
            closes_at: self.sale_closes_at,
        }
    }
}

/// When an option's seats may be held and paid for, as stored: read it through
/// [`crate::rules::check_sale`], which says what an open end means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleWindow {
    /// When the show starts (the sale's end when `closes_at` is `None`).
    pub starts_at: DateTime<Utc>,
    /// The first instant of the sale, if it has one.
    pub opens_at: Option<DateTime<Utc>>,
    /// The first instant after the sale, if not the show's start.
    pub closes_at: Option<DateTime<Utc>>,
}

/// A show option with its seat counts at a given instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionSummary {
    /// The option.
    pub option: ShowOption,
    /// How many seats it has.
    pub total_seats: u64,
    /// How many of them are available now (expired holds count as available).
    pub available_seats: u64,
}

/// A priced seat of one show option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    /// Its id.
    pub id: SeatId,
    /// The option it belongs to.
    pub option_id: OptionId,
    /// The label printed on the ticket, e.g. `A-1`.
    pub seat_no: String,
    /// The price grade, e.g. `VIP`.
    pub grade: String,
    /// Its price.
    pub price: Points,
}

impl Seat {
    /// A seat of `option_id`, numbered `seat_no` in `grade`, priced `price`.
    pub fn new(
        id: SeatId,
        option_id: OptionId,
        seat_no: impl Into<String>,
        grade: impl Into<String>,
        price: Points,
    ) -> Self {
        Self {
            id,
            option_id,
            seat_no: seat_no.into(),
            grade: grade.into(),
            price,
        }
    }
}

/// The stored state of a seat. Use [`crate::rules::effective_seat_state`] to read it at an
/// instant: a hold whose time has passed is available, whatever is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeatState {
    /// Free to hold.
    Available,
    /// Held by a reservation until `until` (exclusive: at `until` it is available again).
    Held {
        /// The holding reservation.
        reservation: ReservationId,
        /// When the hold ends.
        until: DateTime<Utc>,
    },
    /// Sold to a confirmed reservation.
    Sold {
        /// The confirmed reservation.
        reservation: ReservationId,
    },
}

/// The status of a seat as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SeatStatus {
    /// Free to hold.
    Available,
    /// Held by an unexpired hold.
    Held,
    /// Sold.
    Sold,
}

impl SeatStatus {
    /// The lowercase name used in messages and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            SeatStatus::Available => "available",
            SeatStatus::Held => "held",
            SeatStatus::Sold => "sold",
        }
    }
}

impl SeatState {
    /// The client-visible status of this (already effective) state.
    pub fn status(&self) -> SeatStatus {
        match self {
            SeatState::Available => SeatStatus::Available,
            SeatState::Held { .. } => SeatStatus::Held,
            SeatState::Sold { .. } => SeatStatus::Sold,
        }
    }

    /// The reservation holding or owning the seat, if any.
    pub fn reservation(&self) -> Option<ReservationId> {
        match self {
            SeatState::Available => None,
            SeatState::Held { reservation, .. } | SeatState::Sold { reservation } => {
                Some(*reservation)
            }
        }
    }
}

/// A seat with its effective status at the instant it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatView {
    /// The seat.
    pub seat: Seat,
    /// Its status then.
    pub status: SeatStatus,
}

/// The status of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// Seats are held until `expires_at`.
    Held,
    /// Paid; the seats are sold.
    Confirmed,
    /// Cancelled by its owner (with a refund if it was confirmed).
    Cancelled,
    /// The hold's time ran out before payment.
    Expired,
}

impl ReservationStatus {
    /// The lowercase name used in messages and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Held => "held",
            ReservationStatus::Confirmed => "confirmed",
            ReservationStatus::Cancelled => "cancelled",
            ReservationStatus::Expired => "expired",
        }
    }
}

/// One hold of one or more seats of one option by one user, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Its id.
    pub id: ReservationId,
    /// The buyer.
    pub user_id: UserId,
    /// The show option.
    pub option_id: OptionId,
    /// The seats, in ascending id order.
    pub seat_ids: Vec<SeatId>,
    /// The stored status; read it through [`crate::rules::effective_status`].
    pub status: ReservationStatus,
    /// The sum of the seats' prices.
    pub amount: Points,
    /// When the hold ends if unpaid.
    pub expires_at: DateTime<Utc>,
    /// When the hold was placed.
    pub created_at: DateTime<Utc>,
    /// The payment that confirmed it, if any.
    pub payment_id: Option<PaymentId>,
    /// Points given back on cancellation (0 for an unpaid hold).
    pub refunded_amount: Points,
}

/// How a reservation was paid.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PaymentMethod {
    /// With points from the wallet, debited in the same atomic step.
    #[default]
    Points,
    /// Through a payment provider; `reference` is the provider's id of the charge.
    Provider {
        /// The charge attempt.
        attempt_id: AttemptId,
        /// The provider's id of the charge.
        reference: String,
    },
}

/// A payment that confirmed a reservation, with the balance left after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Its id.
    pub id: PaymentId,
    /// The reservation it confirmed.
    pub reservation_id: ReservationId,
    /// The payer.
    pub user_id: UserId,
    /// The points deducted.
    pub amount: Points,
    /// The payer's balance right after the payment.
    pub balance: Points,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// How (points unless said otherwise: records written before providers existed).
    #[serde(default)]
    pub method: PaymentMethod,
}

/// A user's points balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Whose.
    pub user_id: UserId,
    /// How many points.
    pub balance: Points,
}

/// What happened to an aggregate; appended to the outbox in the same atomic step as the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// Seats were held.
    HoldPlaced {
        /// The reservation.
        reservation_id: ReservationId,
        /// Who.
        user_id: UserId,
        /// Which seats.
        seat_ids: Vec<SeatId>,
    },
    /// A hold was paid and its seats sold (`hold_confirmed` in events stored before the name
    /// was made one with paying's, which are still read).
    #[serde(alias = "hold_confirmed")]
    HoldPaid {
        /// The reservation.
        reservation_id: ReservationId,
        /// The payment.
        payment_id: PaymentId,
        /// How much.
        amount: Points,
    },
    /// A reservation was cancelled; `refunded` points went back to the user.
    ReservationCancelled {
        /// The reservation.
        reservation_id: ReservationId,
        /// Points refunded.
        refunded: Points,
    },
    /// A hold ran out of time and its seats were freed in storage.
    HoldExpired {
        /// The reservation.
        reservation_id: ReservationId,
    },
    /// Points were charged to a wallet.
    PointsCharged {
        /// Whose.
        user_id: UserId,
        /// How many.
        amount: Points,
    },
    /// A payment through a provider began: the reservation's seats are kept for it until
    /// `until`, and the provider is asked for `amount` under the attempt's key.
    ProviderPaymentStarted {
        /// The reservation.
        reservation_id: ReservationId,
        /// The charge attempt.
        attempt_id: AttemptId,
        /// How much.
        amount: Points,
        /// The seats are kept until then.
        until: DateTime<Utc>,
    },
    /// A provider declined (or a void ended) a charge: nothing was taken, the seats were
    /// released.
    ProviderPaymentFailed {
        /// The reservation.
        reservation_id: ReservationId,
        /// The charge attempt.
        attempt_id: AttemptId,
        /// The provider's reason.
        reason: String,
    },
    /// A refund through a provider began (a cancel, or a charge captured too late).
    ProviderRefundStarted {
        /// The reservation.
        reservation_id: ReservationId,
        /// The refund attempt.
        attempt_id: AttemptId,
        /// How much.
        amount: Points,
        /// Why.
        reason: RefundReason,
    },
    /// A provider answered a refund.
    ProviderRefundSettled {
        /// The reservation.
        reservation_id: ReservationId,
        /// The refund attempt.
        attempt_id: AttemptId,
        /// Whether the money went back (`false`: refused, an operator must look at it).
        refunded: bool,
    },
}

impl EventKind {
    /// The reservation the event is about, if any.
    pub fn reservation_id(&self) -> Option<ReservationId> {
        match self {
            EventKind::HoldPlaced { reservation_id, .. }
            | EventKind::HoldPaid { reservation_id, .. }
            | EventKind::ReservationCancelled { reservation_id, .. }
            | EventKind::HoldExpired { reservation_id }
            | EventKind::ProviderPaymentStarted { reservation_id, .. }
            | EventKind::ProviderPaymentFailed { reservation_id, .. }
            | EventKind::ProviderRefundStarted { reservation_id, .. }
            | EventKind::ProviderRefundSettled { reservation_id, .. } => Some(*reservation_id),
            EventKind::PointsCharged { .. } => None,
        }
    }
}

/// A domain event with its identity and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// Unique id; consumers de-duplicate by it.
    pub id: EventId,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
}

impl DomainEvent {
    /// A new event with a fresh id.
    pub fn new(at: DateTime<Utc>, kind: EventKind) -> Self {
        Self {
            id: EventId::new(),
            at,
            kind,
        }
    }
}

/// An outbox row: an event and its position in the store's total order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// Position, strictly increasing in append order.
    pub seq: u64,
    /// The event.
    pub event: DomainEvent,
}

/// A whole catalog to seed a store with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// The concerts.
    pub concerts: Vec<Concert>,
    /// Their options.
    pub options: Vec<ShowOption>,
    /// Their seats.
    pub seats: Vec<Seat>,
}

impl Catalog {
    /// A catalog of these concerts, options and seats (seed it with
    /// [`TicketStore::seed`](crate::TicketStore::seed)).
    pub fn new(concerts: Vec<Concert>, options: Vec<ShowOption>, seats: Vec<Seat>) -> Self {
        Self {
            concerts,
            options,
            seats,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events written before paying had one name read as that name: a relay reading an old
    /// outbox row, or a consumer reading an old stream entry, still understands it.
    #[test]
    fn a_hold_paid_event_is_written_as_such_and_the_old_name_still_reads() {
        let event = EventKind::HoldPaid {
            reservation_id: ReservationId::new(),
            payment_id: PaymentId::new(),
            amount: Points(10),
        };
        let json = serde_json::to_string(&event).expect("json");
        assert!(json.contains(r#""type":"hold_paid""#), "{json}");
        let old = json.replace("hold_paid", "hold_confirmed");
        assert_eq!(
            serde_json::from_str::<EventKind>(&old).expect("old name"),
            event
        );
    }
}
