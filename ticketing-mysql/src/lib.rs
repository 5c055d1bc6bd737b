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

use chrono::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions, MySqlSslMode};
use sqlx::{Executor, MySqlPool};
use ticketing_core::Error;

pub use error::MySqlError;
pub use store::MySqlStore;

/// The most seats one hold may name (and so one payment or cancel handle): a command over more
/// is refused with `invalid_request` before any SQL. A command's seats are one `IN (...)` list of
/// placeholders, and MySQL allows 65,535 placeholders a statement (error 1390); lists are padded
/// to a power of two, so this bound also bounds how many variants of a statement a connection
/// prepares (the server's `max_prepared_stmt_count`, error 1461).
pub const MAX_SEATS_PER_COMMAND: usize = 1_000;

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
#[non_exhaustive]
pub enum LockWait {
    /// Wait for it (bounded by the connection's `innodb_lock_wait_timeout`).
    Wait,
    /// `NOWAIT`: answer `seat_unavailable` at once.
    NoWait,
}

/// Settings of a [`MySqlStore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// How long to wait for a free connection (at least a millisecond).
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
            lock_timeout: Duration::seconds(2),
            acquire_timeout: Duration::seconds(5),
        }
    }
}

ticketing_core::__with_setters!(MySqlConfig {
    with_strategy => strategy: MySqlStrategy,
    with_max_retries => max_retries: u32,
    with_max_connections => max_connections: u32,
    with_lock_timeout => lock_timeout: Duration,
    with_acquire_timeout => acquire_timeout: Duration,
});

impl MySqlConfig {
    /// Connect options for `url` (sqlx's defaults: `time_zone` `+00:00`, utf8mb4); plain text
    /// unless the URL asks for TLS (`ssl-mode=` or `sslmode=`, with the `tls` feature).
    pub fn connect_options(&self, url: &str) -> Result<MySqlConnectOptions, Error> {
        let options: MySqlConnectOptions = url
            .parse()
            .map_err(|e| Error::backend("parsing the MySQL URL", false, e))?;
        // TLS only when asked for: sqlx's default, `PREFERRED`, falls back to plain text
        // without a word when the server offers no TLS, and checks no certificate when it does.
        Ok(if asks_for_tls(url) {
            options
        } else {
            options.ssl_mode(MySqlSslMode::Disabled)
        })
    }

    /// A pool for `options` sized by this configuration. Each new connection is set up by
    /// `sql/session.sql` (READ COMMITTED, `autocommit`, `STRICT_ALL_TABLES` added to the
    /// server's `sql_mode`) and gets this configuration's `innodb_lock_wait_timeout`.
    pub async fn pool(&self, options: MySqlConnectOptions) -> Result<MySqlPool, Error> {
        // Whole seconds, rounded up, at least one.
        let millis = self.lock_timeout.num_milliseconds();
        let secs = (millis / 1000 + i64::from(millis % 1000 > 0)).max(1);
        MySqlPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(
                self.acquire_timeout
                    .to_std()
                    .unwrap_or_default()
                    .max(std::time::Duration::from_millis(1)),
            )
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    conn.execute(include_str!("../sql/session.sql")).await?;
                    sqlx::query(include_str!("../sql/session_lock_timeout.sql"))
                        .bind(secs)
                        .execute(&mut *conn)
                        .await?;
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

/// Whether a MySQL URL names an SSL mode (`ssl-mode`, or `sslmode`: sqlx reads both).
fn asks_for_tls(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .filter_map(|pair| pair.split('=').next())
            .any(|key| key.eq_ignore_ascii_case("sslmode") || key.eq_ignore_ascii_case("ssl-mode"))
    })
}

#[cfg(test)]
mod tls_tests {
    use super::{MySqlConfig, asks_for_tls};
    use sqlx::mysql::MySqlSslMode;

    /// TLS is used only when the URL names a mode, in either spelling sqlx reads.
    #[test]
    fn a_url_asks_for_tls_only_with_an_ssl_mode() {
        assert!(!asks_for_tls("mysql://u@h/db"));
        assert!(!asks_for_tls("mysql://u@h/db?charset=sslmode"));
        assert!(asks_for_tls("mysql://u@h/db?ssl-mode=required"));
        assert!(asks_for_tls("mysql://u@h/db?a=1&sslmode=verify_identity"));
        assert!(asks_for_tls("mysql://u@h/db?SSL-MODE=disabled"));
    }

    /// Without a mode in the URL, TLS is off explicitly (not sqlx's `PREFERRED`); with one,
    /// the URL's mode is kept.
    #[test]
    fn connect_options_disable_tls_unless_asked() {
        let config = MySqlConfig::default();
        let plain = config
            .connect_options("mysql://u@h/db")
            .expect("a valid URL");
        assert!(format!("{plain:?}").contains("Disabled"), "{plain:?}");
        let asked = config
            .connect_options("mysql://u@h/db?ssl-mode=required")
            .expect("a valid URL");
        assert!(format!("{asked:?}").contains("Required"), "{asked:?}");
        let _ = MySqlSslMode::Disabled;
    }
}
