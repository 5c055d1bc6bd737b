//! The behavioural tests of the conformance suites, one `pub async fn` each, in files named for
//! what they cover: `queue.rs` holds the queue suite's cases, `fencing.rs` the store's fencing
//! check, `provider.rs` and `saga.rs` the provider-payment suite's, and every other file the store suite's.

use chrono::Duration;

use crate::service::ServiceConfig;

mod cancels;
mod caps;
mod catalog;
mod fencing;
mod holds;
mod idempotency;
mod payments;
mod provider;
mod queue;
mod races;
mod records;
mod saga;
mod sale;

pub use cancels::*;
pub use caps::*;
pub use catalog::*;
pub use fencing::*;
pub use holds::*;
pub use idempotency::*;
pub use payments::*;
pub use provider::*;
pub use queue::*;
pub use races::*;
pub use records::*;
pub use saga::*;
pub use sale::*;

/// How long a hold lasts in the suite's services.
fn ttl() -> Duration {
    ServiceConfig::default().hold_ttl
}

/// Await every task, in order; a task that panicked fails the test.
async fn join_all<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("task panicked"));
    }
    out
}
