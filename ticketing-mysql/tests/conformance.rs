//! The store conformance suite (and the store's fencing check) on a real MySQL / MariaDB
//! server, for each strategy. The waiting queue is not MySQL's: its suite runs with the memory
//! and Redis queues.

mod common;

use ticketing_core::testkit::TestBackend;
use ticketing_mysql::MySqlConfig;

/// A store on a fresh database, with a pool of at most four connections (the server's
/// connections are shared by every test running at once).
async fn backend(config: MySqlConfig) -> Option<TestBackend> {
    let store = common::fresh_store(config.with_max_connections(common::TEST_POOL)).await?;
    Some(TestBackend::store_only(store))
}

#[cfg(feature = "pessimistic")]
mod pessimistic {
    use ticketing_mysql::{LockWait, MySqlConfig, MySqlStrategy};

    async fn backend() -> Option<ticketing_core::testkit::TestBackend> {
        super::backend(
            MySqlConfig::default().with_strategy(MySqlStrategy::Pessimistic {
                lock_wait: LockWait::Wait,
            }),
        )
        .await
    }

    ticketing_core::store_suite!(backend; #[cfg_attr(ticketing_no_mysql, ignore = "needs MYSQL_URL (a MySQL/MariaDB server)")]);
    ticketing_core::fencing_conformance!(backend; #[cfg_attr(ticketing_no_mysql, ignore = "needs MYSQL_URL (a MySQL/MariaDB server)")]);
    ticketing_core::provider_suite!(backend; #[cfg_attr(ticketing_no_mysql, ignore = "needs MYSQL_URL (a MySQL/MariaDB server)")]);
}

#[cfg(feature = "pessimistic")]
mod pessimistic_nowait {
    use ticketing_mysql::{LockWait, MySqlConfig, MySqlStrategy};

    async fn backend() -> Option<ticketing_core::testkit::TestBackend> {
        super::backend(
            MySqlConfig::default().with_strategy(MySqlStrategy::Pessimistic {
                lock_wait: LockWait::NoWait,
            }),
        )
        .await
    }

    ticketing_core::store_suite!(backend; #[cfg_attr(ticketing_no_mysql, ignore = "needs MYSQL_URL (a MySQL/MariaDB server)")]);
    ticketing_core::fencing_conformance!(backend; #[cfg_attr(ticketing_no_mysql, ignore = "needs MYSQL_URL (a MySQL/MariaDB server)")]);
    ticketing_core::provider_suite!(backend; #[cfg_attr(ticketing_no_mysql, ignore = "needs MYSQL_URL (a MySQL/MariaDB server)")]);
}

#[cfg(feature = "optimistic")]
mod optimistic {
    use ticketing_mysql::{MySqlConfig, MySqlStrategy};

    async fn backend() -> Option<ticketing_core::testkit::TestBackend> {
        super::backend(MySqlConfig::default().with_strategy(MySqlStrategy::Optimistic)).await
    }

    ticketing_core::store_suite!(backend; #[cfg_attr(ticketing_no_mysql, ignore = "needs MYSQL_URL (a MySQL/MariaDB server)")]);
    ticketing_core::fencing_conformance!(backend; #[cfg_attr(ticketing_no_mysql, ignore = "needs MYSQL_URL (a MySQL/MariaDB server)")]);
    ticketing_core::provider_suite!(backend; #[cfg_attr(ticketing_no_mysql, ignore = "needs MYSQL_URL (a MySQL/MariaDB server)")]);
}
