//! # ticketing-mysql
//!
//! The MySQL / MariaDB [`TicketStore`](ticketing_core::TicketStore) of `ticketing`, on sqlx
//! (InnoDB; MariaDB 10.6+ or MySQL 8.0+, for `NOWAIT`, `SKIP LOCKED` and enforced `CHECK`s).
//! Every write is one READ COMMITTED transaction: a hold takes all its seats or none; a payment
//! debits the wallet, sells the seats, records the payment, its outbox event and its
//! idempotency record together; expiry is judged against the instant passed in, never by a
//! background job or the database's clock.
//!
//! Seats are guarded by the [`MySqlStrategy`] chosen at construction:
//! - `Pessimistic` (feature `pessimistic`): `SELECT ... FOR UPDATE` on all requested seats in id
//!   order, either waiting (bounded by `innodb_lock_wait_timeout`) or `NOWAIT`, where the losers
//!   of a hot seat are answered `seat_unavailable` at once.
//! - `Optimistic` (feature `optimistic`): read the seats without locks, decide with the rules,
//!   then write each seat only if its `version` is unchanged; a lost compare-and-set retries the
//!   whole transaction (bounded).
//!
//! Whatever a caller does, the schema refuses corruption: a seat is sold at most once (primary
//! key of `seat_sales`), balances never go negative (`CHECK`), a reservation is paid once.
//!
//! ```no_run
//! use ticketing_mysql::{MySqlConfig, MySqlStore};
//! # async fn run() -> Result<(), ticketing_core::Error> {
//! let store = MySqlStore::connect("mysql://root@127.0.0.1:3306/test", MySqlConfig::default()).await?;
//! ticketing_mysql::migrate(store.pool()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod error;
mod rows;
mod store;

use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{Executor, MySqlPool};
use ticketing_core::Error;

pub use error::MySqlError;
pub use store::MySqlStore;

/// The migrations shipped with this crate.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Create or update the schema in the pool's database.
pub async fn migrate(pool: &MySqlPool) -> Result<(), Error> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|e| Error::backend("running migrations", false, e))
}

/// How seat writes are guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MySqlStrategy {
    /// Row locks on the requested seats, in id order.
    #[cfg(feature = "pessimistic")]
    Pessimistic {
        /// Whether a hold waits for a locked seat or gives up at once.
        lock_wait: LockWait,
    },
    /// Version compare-and-set on the requested seats.
    #[cfg(feature = "optimistic")]
    Optimistic,
}

/// What a hold does when a requested seat is locked by another transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockWait {
    /// Wait for it (bounded by the connection's `innodb_lock_wait_timeout`).
    Wait,
    /// `NOWAIT`: answer `seat_unavailable` at once.
    NoWait,
}

/// Settings of a [`MySqlStore`].
#[derive(Debug, Clone)]
pub struct MySqlConfig {
    /// How seats are guarded.
    pub strategy: MySqlStrategy,
    /// Attempts after the first when a transaction loses a compare-and-set or a deadlock.
    pub max_retries: u32,
    /// Connections in the pool (used by [`MySqlStore::connect`]).
    pub max_connections: u32,
    /// `innodb_lock_wait_timeout` of each connection, rounded up to whole seconds (used by
    /// [`MySqlConfig::pool`]).
    pub lock_timeout: Duration,
    /// How long to wait for a free connection.
    pub acquire_timeout: Duration,
}

impl Default for MySqlConfig {
    fn default() -> Self {
        Self {
            #[cfg(feature = "optimistic")]
            strategy: MySqlStrategy::Optimistic,
            #[cfg(all(feature = "pessimistic", not(feature = "optimistic")))]
            strategy: MySqlStrategy::Pessimistic {
                lock_wait: LockWait::Wait,
            },
            max_retries: 8,
            max_connections: 16,
            lock_timeout: Duration::from_secs(2),
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

impl MySqlConfig {
    /// Connect options for `url` (sqlx's defaults: `time_zone` `+00:00`, utf8mb4).
    pub fn connect_options(&self, url: &str) -> Result<MySqlConnectOptions, Error> {
        url.parse()
            .map_err(|e| Error::backend("parsing the MySQL URL", false, e))
    }

    /// A pool for `options` sized by this configuration, each connection with this
    /// configuration's `innodb_lock_wait_timeout`.
    pub async fn pool(&self, options: MySqlConnectOptions) -> Result<MySqlPool, Error> {
        let secs = self.lock_timeout.as_secs() + u64::from(self.lock_timeout.subsec_nanos() > 0);
        let set = format!("SET SESSION innodb_lock_wait_timeout = {}", secs.max(1));
        MySqlPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .after_connect(move |conn, _meta| {
                let set = set.clone();
                Box::pin(async move {
                    conn.execute(sqlx::AssertSqlSafe(set)).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| Error::backend("connecting to mysql", true, e))
    }
}

impl MySqlStore {
    /// Connect to `url` with a pool sized by `config`.
    pub async fn connect(url: &str, config: MySqlConfig) -> Result<Self, Error> {
        let pool = config.pool(config.connect_options(url)?).await?;
        Ok(Self::new(pool, config))
    }
}
