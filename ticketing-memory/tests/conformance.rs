//! The whole conformance suite, once per seat-guarding strategy.
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
}

#[cfg(feature = "optimistic")]
mod optimistic {
    use ticketing_core::testkit::{TestBackend, queue_config};
    use ticketing_memory::{MemoryQueue, MemoryStore};

    async fn backend() -> Option<TestBackend> {
        Some(TestBackend::new(
            MemoryStore::optimistic(),
            MemoryQueue::new(queue_config()),
        ))
    }

    ticketing_core::conformance_suite!(backend);
}
