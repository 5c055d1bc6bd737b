//! # ticketing-core
//!
//! The heart of `ticketing`: sell a fixed stock of seats to far more buyers than seats, never
//! selling a seat twice and never losing a point of anyone's money.
//!
//! - [`rules`]: the pure state machine of seats and reservations; the only place the rules live.
//! - [`TicketStore`], [`LockManager`], [`WaitingQueue`], [`Clock`]: the traits backends implement
//!   (object-safe, `Send + Sync + Debug + 'static`).
//! - [`TicketingService`]: validation, queue admission, per-user caps and idempotency keys in
//!   front of exactly one atomic store call.
//! - [`Error`] with a stable [`ErrorCode`] per variant.
//! - `testkit` (feature): the conformance suites every backend runs, one per trait.
//!
//! Backends live in their own crates (`ticketing-memory`, ...); the `ticketing` facade
//! re-exports them and shows the whole flow. The rules themselves need no backend:
//!
//! ```
//! use chrono::{Duration, Utc};
//! use ticketing_core::{ReservationId, SeatState, rules};
//!
//! let now = Utc::now();
//! let mine = ReservationId::new();
//! let held = rules::hold_seat(SeatState::Available, mine, now + Duration::minutes(5), now)
//!     .expect("an available seat can be held");
//! // Someone else is turned away while the hold lasts...
//! assert!(rules::hold_seat(held, ReservationId::new(), now, now).is_err());
//! // ...and gets the seat the instant it ends, whether or not a sweeper ran.
//! let later = now + Duration::minutes(5);
//! assert!(rules::hold_seat(held, ReservationId::new(), later, later).is_ok());
//! ```
#![forbid(unsafe_code)]

pub mod background;
mod clock;
mod domain;
mod error;
mod fenced;
mod idempotency;
mod ids;
mod lock;
mod money;
pub mod provider;
mod queue;
pub mod rules;
mod service;
mod setters;
mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use background::{EventSink, ExpirySweeper, OutboxRelay, RetentionPruner};
pub use clock::{Clock, ManualClock, SystemClock};
pub use domain::{
    Balance, Catalog, Concert, DomainEvent, EventKind, OptionSummary, OutboxRecord, Payment,
    PaymentMethod, Reservation, ReservationStatus, SaleWindow, Seat, SeatState, SeatStatus,
    SeatView, ShowOption,
};
pub use error::{BoxError, Error, ErrorCode, Result};
pub use fenced::{FencedStore, SOLD_HINT, Sleep, seat_key};
pub use idempotency::{IdempotencyKey, IdempotencyRecord, MAX_KEY_LEN, StoredOutcome};
pub use ids::{
    AttemptId, ConcertId, EventId, FencingToken, OptionId, ParseIdError, PaymentId, ReservationId,
    SeatId, UserId,
};
pub use lock::{Acquired, Lease, LockManager};
pub use money::Points;
pub use queue::{
    ENDED, QueueConfig, QueueEntry, QueueLength, QueueStatus, QueueTicket, QueueToken, WaitingQueue,
};
pub use service::{
    CancelRequest, ChargeRequest, HoldRequest, PayRequest, ProviderPayment, RecoveryReport,
    ServiceConfig, TicketingService,
};
pub use store::{CancelCommand, ChargeCommand, HoldCommand, PayCommand, TicketStore};

/// Re-exported so backends name the same `async_trait` the traits use.
pub use async_trait::async_trait;
