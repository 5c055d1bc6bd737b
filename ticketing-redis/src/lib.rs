//! # ticketing-redis
//!
//! Redis backends of `ticketing`, on redis-rs (tokio, `ConnectionManager`, scripts run by SHA):
//!
//! - [`RedisLockManager`] (feature `distributed-lock`): leases several seat keys at once, all or
//!   none, with a fencing token from per-key counters; released by compare-and-delete. Pair it
//!   with [`ticketing_core::FencedStore`] so a holder whose lease lapsed can never write.
//! - [`RedisQueue`] (feature `queue`): the waiting room on sorted sets; enqueue, status and
//!   admission are single Lua scripts, so several admitters never over-admit.
//! - [`RedisEventPublisher`] (feature `events`): publishes outbox events to a Redis Stream.
//!
//! Each takes a [`RedisConnection`]: one server ([`connect`], a `ConnectionManager`) or a Redis
//! Cluster ([`connect_cluster`]). Every key starts with a configurable prefix (without `{`) and
//! carries a hash tag — `{opt:<id>}` for seat locks, `{c:<id>}` for a concert's queue — so the
//! keys a script touches together share a Cluster slot; the lock, queue and store suites run on
//! a three-node cluster in `tests/cluster.rs`. The Lua scripts live in `lua/`.
//!
//! ```no_run
//! # async fn run() -> Result<(), ticketing_core::Error> {
//! use ticketing_core::QueueConfig;
//! let conn = ticketing_redis::connect("redis://127.0.0.1:6379").await?;
//! let queue = ticketing_redis::RedisQueue::new(conn.clone(), "ticketing:", QueueConfig::default());
//! let locks = ticketing_redis::RedisLockManager::new(conn, "ticketing:");
//! # let _ = (queue, locks);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod connection;
#[cfg(feature = "events")]
mod events;
#[cfg(feature = "distributed-lock")]
mod lock;
#[cfg(feature = "queue")]
mod queue;

use redis::aio::ConnectionManager;
use ticketing_core::Error;

pub use connection::RedisConnection;
#[cfg(feature = "events")]
pub use events::RedisEventPublisher;
#[cfg(feature = "distributed-lock")]
pub use lock::RedisLockManager;
#[cfg(feature = "queue")]
pub use queue::RedisQueue;

/// Connect to `url` with a connection manager (reconnects by itself; cheap to clone). With the
/// `tls` feature a `rediss://` URL is TLS, the server's certificate checked against the webpki
/// roots ([`connect_with_root_ca`] for a private CA).
pub async fn connect(url: &str) -> Result<ConnectionManager, Error> {
    let client = redis::Client::open(url).map_err(|e| Error::backend("redis URL", false, e))?;
    manage(client).await
}

/// Connect to a `rediss://` `url` whose certificate is checked against `root_ca_pem` (a PEM
/// certificate of the CA that signed the server's) instead of the webpki roots.
#[cfg(feature = "tls")]
pub async fn connect_with_root_ca(
    url: &str,
    root_ca_pem: &[u8],
) -> Result<ConnectionManager, Error> {
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(root_ca_pem.to_vec()),
    };
    let client = redis::Client::build_with_tls(url, certificates)
        .map_err(|e| Error::backend("redis URL or CA certificate", false, e))?;
    manage(client).await
}

/// Connect to a Redis Cluster through any of its nodes (`redis://host:port` each; the others
/// are discovered).
pub async fn connect_cluster<T: redis::IntoConnectionInfo>(
    nodes: impl IntoIterator<Item = T>,
) -> Result<RedisConnection, Error> {
    let client = redis::cluster::ClusterClient::new(nodes)
        .map_err(|e| Error::backend("redis cluster node URLs", false, e))?;
    let conn = client
        .get_async_connection()
        .await
        .map_err(|e| Error::backend("connecting to the redis cluster", true, e))?;
    Ok(RedisConnection::Cluster(conn))
}

async fn manage(client: redis::Client) -> Result<ConnectionManager, Error> {
    client
        .get_connection_manager()
        .await
        .map_err(|e| Error::backend("connecting to redis", true, e))
}

/// Map a Redis error, keeping it as the source.
pub(crate) fn backend(e: redis::RedisError) -> Error {
    let retryable = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error();
    Error::backend("redis", retryable, e)
}
