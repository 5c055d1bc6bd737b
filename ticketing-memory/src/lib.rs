//! # ticketing-memory
//!
//! The embedded backend of `ticketing`: a [`MemoryStore`] (seats guarded pessimistically or
//! optimistically, chosen at construction), a [`MemoryLockManager`] with fencing tokens and a
//! [`MemoryQueue`] waiting room. Nothing is kept across restarts; it is the default backend
//! and the oracle the other backends are compared with.
//!
//! ```
//! use std::sync::Arc;
//! use ticketing_core::*;
//! use ticketing_memory::MemoryStore;
//!
//! # tokio_test();
//! # fn tokio_test() {
//! # let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
//! # rt.block_on(async {
//! let store = Arc::new(MemoryStore::optimistic());
//! store
//!     .seed(&Catalog {
//!         concerts: vec![Concert { id: ConcertId(1), title: "Live".into(), venue: "Hall".into() }],
//!         options: vec![ShowOption::new(OptionId(10), ConcertId(1), chrono::Utc::now() + chrono::Duration::days(30))],
//!         seats: vec![Seat { id: SeatId(100), option_id: OptionId(10), seat_no: "A-1".into(), grade: "R".into(), price: Points(5_000) }],
//!     })
//!     .await?;
//! let service = TicketingService::new(store, ServiceConfig::default());
//! service.charge(ChargeRequest::new(UserId(7), Points(5_000))).await?;
//! let hold = service
//!     .hold(HoldRequest::new(UserId(7), OptionId(10), [SeatId(100)]))
//!     .await?;
//! let payment = service
//!     .pay(PayRequest::new(UserId(7), hold.id))
//!     .await?;
//! assert_eq!(payment.balance, Points(0));
//! # Ok::<_, Error>(())
//! # }).expect("example runs");
//! # }
//! ```
#![forbid(unsafe_code)]

mod lock;
mod queue;
pub mod seat_table;
mod store;
mod sync;

pub use lock::MemoryLockManager;
pub use queue::MemoryQueue;
pub use seat_table::Strategy;
pub use store::{MemoryStore, StoreSizes};
