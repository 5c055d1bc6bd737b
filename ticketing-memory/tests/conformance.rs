//! The store suite once per seat-guarding strategy, and the queue suite once (with the
//! pessimistic store: the queue does not depend on how seats are guarded).
#![cfg(not(loom))]

#[cfg(feature = "pessimistic")]
mod pessimistic {
    use ticketing_core::testkit::{TestBackend, queue_config};
    use ticketing_memory::{MemoryQueue, MemoryStore};

    async fn backend() -> Option<TestBackend> {
        Some(TestBackend::new(
            MemoryStore::pessimistic(),
            MemoryQueue::new(queue_config()),
        ))
    }

    ticketing_core::conformance_suite!(backend);
    ticketing_core::fencing_conformance!(backend);
    ticketing_core::provider_suite!(backend);
}

#[cfg(feature = "optimistic")]
mod optimistic {
    use ticketing_core::testkit::TestBackend;
    use ticketing_memory::MemoryStore;

    async fn backend() -> Option<TestBackend> {
        Some(TestBackend::store_only(MemoryStore::optimistic()))
    }

    ticketing_core::store_suite!(backend);
    ticketing_core::fencing_conformance!(backend);
    ticketing_core::provider_suite!(backend);
}

/// The distributed-lock strategy over the memory store, with the in-process lock manager.
#[cfg(feature = "pessimistic")]
mod distributed_lock {
    use std::sync::Arc;

    use chrono::Duration;
    use ticketing_core::testkit::TestBackend;
    use ticketing_core::{FencedStore, SystemClock};
    use ticketing_memory::{MemoryLockManager, MemoryStore};

    async fn backend() -> Option<TestBackend> {
        let store = FencedStore::new(
            Arc::new(MemoryStore::pessimistic()),
            Arc::new(MemoryLockManager::new(Arc::new(SystemClock))),
            Duration::seconds(5),
        );
        Some(TestBackend::store_only(store))
    }

    ticketing_core::store_suite!(backend);
    ticketing_core::provider_suite!(backend);

    #[tokio::test]
    async fn taken_hints_keep_losers_off_the_store() {
        ticketing_core::testkit::hints::taken_hints_keep_losers_off_the_store(
            Arc::new(MemoryStore::pessimistic()),
            Arc::new(MemoryLockManager::new(Arc::new(SystemClock))),
            ticketing_memory::MemoryQueue::new(ticketing_core::testkit::queue_config()),
        )
        .await;
    }
}
