//! # ticketing
//!
//! Sell a fixed stock of concert seats to far more buyers than seats, in a burst, without ever
//! selling a seat twice or losing a point of anyone's money.
//!
//! This facade re-exports [`ticketing_core`] (domain, state machine, traits, service, errors)
//! and, behind features, the backends: `memory` (default) as `memory`, `postgres` as
//! `postgres`, `mysql` (MySQL / MariaDB) as `mysql`, `redis` as `redis`.
//!
//! ```
//! use std::sync::Arc;
//! use ticketing::memory::{MemoryQueue, MemoryStore};
//! use ticketing::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! let store = Arc::new(MemoryStore::pessimistic());
//! store.seed(&demo_catalog(1, 4, Points(50_000))).await?;
//! let queue = Arc::new(MemoryQueue::new(QueueConfig::default()));
//! let service = TicketingService::new(store, ServiceConfig::default()).with_queue(queue);
//!
//! // Join the waiting room, get admitted, hold two seats, pay with points.
//! let (ticket, _) = service.enqueue(UserId(7), ConcertId(1)).await?;
//! let (other, _) = service.enqueue(UserId(8), ConcertId(1)).await?;
//! service.admit().await?;
//! service.charge(ChargeRequest::new(UserId(7), Points(100_000))).await?;
//! let hold = service
//!     .hold(
//!         HoldRequest::new(UserId(7), OptionId(1), [SeatId(1), SeatId(2)])
//!             .with_queue_token(ticket.token.clone())
//!             .with_idempotency_key("order-1".to_owned()),
//!     )
//!     .await?;
//! let payment = service
//!     .pay(PayRequest::new(UserId(7), hold.id).with_queue_token(ticket.token))
//!     .await?;
//! assert_eq!(payment.balance, Points(0));
//!
//! // Nobody else can take a sold seat.
//! let err = service
//!     .hold(HoldRequest::new(UserId(8), OptionId(1), [SeatId(2)]).with_queue_token(other.token))
//!     .await
//!     .unwrap_err();
//! assert_eq!(err.code().as_str(), "seat_unavailable");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub use ticketing_core::*;

/// The embedded in-process backend.
#[cfg(feature = "memory")]
pub use ticketing_memory as memory;

/// The PostgreSQL backend.
#[cfg(feature = "postgres")]
pub use ticketing_postgres as postgres;

/// The MySQL / MariaDB backend.
#[cfg(feature = "mysql")]
pub use ticketing_mysql as mysql;

/// The Redis backends: distributed lock, waiting queue, event stream.
#[cfg(feature = "redis")]
pub use ticketing_redis as redis;

mod demo;
pub use demo::demo_catalog;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
