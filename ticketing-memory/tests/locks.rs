//! The lock-manager suite on the in-process lock manager (judging lease ends by the real clock).

use std::sync::Arc;

use ticketing_core::{LockManager, SystemClock};
use ticketing_memory::MemoryLockManager;

async fn manager() -> Option<Arc<dyn LockManager>> {
    Some(Arc::new(MemoryLockManager::new(Arc::new(SystemClock))))
}

ticketing_core::lock_manager_suite!(manager);
