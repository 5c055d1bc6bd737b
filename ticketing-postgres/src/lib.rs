//! # ticketing-postgres
//!
//! The PostgreSQL [`TicketStore`](ticketing_core::TicketStore) of `ticketing`, on sqlx. Every
//! write is one transaction: a hold takes all its seats or none; a payment debits the wallet,
//! sells the seats, records the payment, its outbox event and its idempotency record together;
//! expiry is decided in SQL and Rust against the instant passed in, never by a background job.
//!
//! Seats are guarded by the [`PgStrategy`] chosen at construction:
//! - `Pessimistic` (feature `pessimistic`): `SELECT ... FOR UPDATE` on all requested seats in id
//!   order, either waiting (bounded by `lock_timeout`) or `NOWAIT`, where the losers of a hot
//!   seat are answered `seat_unavailable` at once.
//! - `Optimistic` (feature `optimistic`): read the seats without locks, decide with the rules,
//!   then one conditional `UPDATE` per step that only writes rows whose `version` is unchanged;
//!   all-or-nothing by checking the row count inside the transaction; bounded retry.
//!
//! Whatever a caller does, the schema refuses corruption: a seat is sold at most once (primary
//! key of `seat_sales`), balances never go negative (`CHECK`), a reservation is paid once.
//!
//! ## Sizing the pool
//! Each operation holds one connection for a few round trips. On a machine with `c` cores
//! running PostgreSQL, throughput peaks near `2c..4c` busy connections; beyond that, waiting for
//! row locks and context switches only add latency. Start with
//! `max_connections = 4 * server cores` per process and lower it when several processes share
//! one server (the sum should stay below the server's `max_connections`). Statements are
//! prepared once per connection and cached (sqlx's statement cache).
//!
//! ```no_run
//! use ticketing_postgres::{PgConfig, PgStore};
//! # async fn run() -> Result<(), ticketing_core::Error> {
//! let store = PgStore::connect("postgres://postgres@127.0.0.1/test", PgConfig::default()).await?;
//! ticketing_postgres::migrate(store.pool()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod batch;
mod clock;
mod error;
mod rows;
mod store;

use chrono::Duration;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use ticketing_core::Error;

pub use batch::{BatchConfig, BatchStats};
pub use clock::DatabaseClock;
pub use store::PgStore;

/// The migrations shipped with this crate.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Create or update the schema in the pool's current schema (its `search_path`).
pub async fn migrate(pool: &PgPool) -> Result<(), Error> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|e| Error::backend("running migrations", false, e))
}

/// How seat writes are guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PgStrategy {
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
#[non_exhaustive]
pub enum LockWait {
    /// Wait for it (bounded by the connection's `lock_timeout`).
    Wait,
    /// `NOWAIT`: answer `seat_unavailable` at once.
    NoWait,
}

/// Settings of a [`PgStore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PgConfig {
    /// How seats are guarded.
    pub strategy: PgStrategy,
    /// Attempts after the first when a transaction loses a compare-and-set, a serialization
    /// check or a deadlock.
    pub max_retries: u32,
    /// Connections in the pool (used by [`PgStore::connect`]).
    pub max_connections: u32,
    /// `lock_timeout` of each connection (used by [`PgStore::connect`]).
    pub lock_timeout: Duration,
    /// How long to wait for a free connection (at least a millisecond).
    pub acquire_timeout: Duration,
    /// Group commit: `Some` runs holds, payments, cancels and charges in shared transactions
    /// (see [`BatchConfig`]); `None` runs each in a transaction of its own.
    ///
    /// In batched mode every batch takes what it needs in one order (its users' per-user locks,
    /// then wallets, reservations, seats, each ascending), whatever the strategy; the strategy decides only whether a
    /// seat another transaction has locked is waited for (`Optimistic`, `Pessimistic { Wait }`)
    /// or skipped and its holds answered `seat_unavailable` at once (`Pessimistic { NoWait }`).
    pub batch: Option<BatchConfig>,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self {
            #[cfg(feature = "optimistic")]
            strategy: PgStrategy::Optimistic,
            #[cfg(all(feature = "pessimistic", not(feature = "optimistic")))]
            strategy: PgStrategy::Pessimistic {
                lock_wait: LockWait::Wait,
            },
            max_retries: 8,
            max_connections: 16,
            lock_timeout: Duration::seconds(2),
            acquire_timeout: Duration::seconds(5),
            batch: None,
        }
    }
}

/// Whether a database URL names an `sslmode` (sqlx also reads `ssl-mode`).
fn asks_for_tls(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .filter_map(|pair| pair.split('=').next())
            .any(|key| key.eq_ignore_ascii_case("sslmode") || key.eq_ignore_ascii_case("ssl-mode"))
    })
}

ticketing_core::__with_setters!(PgConfig {
    with_strategy => strategy: PgStrategy,
    with_max_retries => max_retries: u32,
    with_max_connections => max_connections: u32,
    with_lock_timeout => lock_timeout: Duration,
    with_acquire_timeout => acquire_timeout: Duration,
    with_batch => batch: Option<BatchConfig>,
});

impl PgConfig {
    /// Connect options for `url` with this configuration's `lock_timeout`; plain text unless
    /// the URL (`sslmode=` or `ssl-mode=`) or `PGSSLMODE` asks for TLS.
    pub fn connect_options(&self, url: &str) -> Result<PgConnectOptions, Error> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| Error::backend("parsing the database URL", false, e))?;
        // TLS only when asked for (`sslmode=` or `ssl-mode=` in the URL, or PGSSLMODE):
        // libpq's default, `prefer`, would encrypt without checking anything, and a pool of
        // TLS connections was seen not to recover from a PostgreSQL restart in the middle of
        // a rush (docs/configuration.md, TLS); plain connections do.
        let asked = asks_for_tls(url) || std::env::var_os("PGSSLMODE").is_some();
        let options = if asked {
            options
        } else {
            options.ssl_mode(sqlx::postgres::PgSslMode::Disable)
        };
        Ok(options.options([(
            "lock_timeout",
            format!("{}ms", self.lock_timeout.num_milliseconds().max(1)),
        )]))
    }

    /// A pool for `options` sized by this configuration.
    pub async fn pool(&self, options: PgConnectOptions) -> Result<PgPool, Error> {
        PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(
                self.acquire_timeout
                    .to_std()
                    .unwrap_or_default()
                    .max(std::time::Duration::from_millis(1)),
            )
            .connect_with(options)
            .await
            .map_err(|e| Error::backend("connecting to postgres", true, e))
    }
}

impl PgStore {
    /// Connect to `url` with a pool sized by `config`.
    pub async fn connect(url: &str, config: PgConfig) -> Result<Self, Error> {
        let pool = config.pool(config.connect_options(url)?).await?;
        Ok(Self::new(pool, config))
    }
}

#[cfg(test)]
mod tls_tests {
    use super::asks_for_tls;

    /// TLS is used only when the URL names a mode, in either spelling sqlx reads.
    #[test]
    fn a_url_asks_for_tls_only_with_an_ssl_mode() {
        assert!(!asks_for_tls("postgres://u@h/db"));
        assert!(!asks_for_tls("postgres://u@h/db?application_name=sslmode"));
        assert!(asks_for_tls("postgres://u@h/db?sslmode=require"));
        assert!(asks_for_tls("postgres://u@h/db?a=1&ssl-mode=verify-full"));
        assert!(asks_for_tls("postgres://u@h/db?SSLMODE=disable"));
    }
}
