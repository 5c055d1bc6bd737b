//! The store conformance suite (and the store's fencing check) on real PostgreSQL, for each
//! strategy and mode. The waiting queue is not PostgreSQL's: its suite runs with the memory and
//! Redis queues (the service's gate reads the store only through the trait; it runs over
//! PostgreSQL with the Redis queue in `ticketing-redis/tests/production.rs`).

mod common;

use ticketing_core::testkit::TestBackend;
use ticketing_postgres::PgConfig;

async fn backend(config: PgConfig) -> Option<TestBackend> {
    let store = common::fresh_store(config).await?;
    Some(TestBackend::store_only(store))
}

#[cfg(feature = "pessimistic")]
mod pessimistic {
    use ticketing_postgres::{LockWait, PgConfig, PgStrategy};

    async fn backend() -> Option<ticketing_core::testkit::TestBackend> {
        super::backend(PgConfig::default().with_strategy(PgStrategy::Pessimistic {
            lock_wait: LockWait::Wait,
        }))
        .await
    }

    ticketing_core::store_suite!(backend; #[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL (a PostgreSQL server)")]);
    ticketing_core::fencing_conformance!(backend; #[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL (a PostgreSQL server)")]);
    ticketing_core::provider_suite!(backend; #[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL (a PostgreSQL server)")]);
}

#[cfg(feature = "pessimistic")]
mod pessimistic_nowait {
    use ticketing_postgres::{LockWait, PgConfig, PgStrategy};

    async fn backend() -> Option<ticketing_core::testkit::TestBackend> {
        super::backend(PgConfig::default().with_strategy(PgStrategy::Pessimistic {
            lock_wait: LockWait::NoWait,
        }))
        .await
    }

    ticketing_core::store_suite!(backend; #[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL (a PostgreSQL server)")]);
    ticketing_core::fencing_conformance!(backend; #[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL (a PostgreSQL server)")]);
    ticketing_core::provider_suite!(backend; #[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL (a PostgreSQL server)")]);
}

#[cfg(feature = "optimistic")]
mod optimistic {
    use ticketing_postgres::{PgConfig, PgStrategy};

    async fn backend() -> Option<ticketing_core::testkit::TestBackend> {
        super::backend(PgConfig::default().with_strategy(PgStrategy::Optimistic)).await
    }

    ticketing_core::store_suite!(backend; #[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL (a PostgreSQL server)")]);
    ticketing_core::fencing_conformance!(backend; #[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL (a PostgreSQL server)")]);
    ticketing_core::provider_suite!(backend; #[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL (a PostgreSQL server)")]);
}

/// Group commit, waiting for locked seats (what `Optimistic` and `Pessimistic { Wait }` do in
/// batched mode).
#[cfg(feature = "pessimistic")]
mod batched {
    use ticketing_postgres::{BatchConfig, LockWait, PgConfig, PgStrategy};

    async fn backend() -> Option<ticketing_core::testkit::TestBackend> {
        super::backend(
            PgConfig::default()
                .with_strategy(PgStrategy::Pessimistic {
                    lock_wait: LockWait::Wait,
                })
                .with_batch(Some(BatchConfig::default())),
        )
        .await
    }

    ticketing_core::store_suite!(backend; #[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL (a PostgreSQL server)")]);
    ticketing_core::fencing_conformance!(backend; #[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL (a PostgreSQL server)")]);
    ticketing_core::provider_suite!(backend; #[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL (a PostgreSQL server)")]);
}

/// Group commit, skipping seats another transaction has locked.
#[cfg(feature = "pessimistic")]
mod batched_nowait {
    use ticketing_postgres::{BatchConfig, LockWait, PgConfig, PgStrategy};

    async fn backend() -> Option<ticketing_core::testkit::TestBackend> {
        super::backend(
            PgConfig::default()
                .with_strategy(PgStrategy::Pessimistic {
                    lock_wait: LockWait::NoWait,
                })
                .with_batch(Some(BatchConfig::default())),
        )
        .await
    }

    ticketing_core::store_suite!(backend; #[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL (a PostgreSQL server)")]);
    ticketing_core::fencing_conformance!(backend; #[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL (a PostgreSQL server)")]);
    ticketing_core::provider_suite!(backend; #[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL (a PostgreSQL server)")]);
}
