//! The synchronisation facade: std in normal builds, loom's models under `--cfg loom`
//! (as tokio does), so the loom tests check the very code that ships.

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard, RwLock};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// Lock a mutex. A panic while it was held cannot leave a half-written state behind (every
/// write is computed first and stored in one assignment), so a poisoned lock is still usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Read-lock an `RwLock`, ignoring poison as [`lock`] does.
pub(crate) fn read<T>(m: &RwLock<T>) -> impl std::ops::Deref<Target = T> + '_ {
    m.read().unwrap_or_else(|p| p.into_inner())
}

/// Write-lock an `RwLock`, ignoring poison as [`lock`] does.
pub(crate) fn write<T>(m: &RwLock<T>) -> impl std::ops::DerefMut<Target = T> + '_ {
    m.write().unwrap_or_else(|p| p.into_inner())
}
