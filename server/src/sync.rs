//! Lock helpers.
//!
//! The gateway's locks guard plain maps and are held only for operations that do not panic,
//! so a poisoned lock still holds consistent data: take it instead of failing.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}
