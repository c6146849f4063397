//! `IrqLock`: the kernel's lock for state shared with interrupt context.
//!
//! Taking it masks IRQs on this CPU first and restores the previous mask after
//! the inner spin lock is released, so an interrupt handler can never spin on a
//! lock its own CPU holds, and a preempted thread never holds one.

use core::ops::{Deref, DerefMut};

use crate::arch::cpu::{self, Daif};

/// A spin lock that masks IRQs while held.
pub struct IrqLock<T> {
    inner: spin::Mutex<T>,
}

/// Proof that the lock is held (and IRQs masked); dropping it unlocks, then restores DAIF.
pub struct IrqLockGuard<'a, T> {
    guard: Option<spin::MutexGuard<'a, T>>,
    daif: Daif,
}

impl<T> IrqLock<T> {
    /// A new unlocked lock.
    pub const fn new(value: T) -> Self {
        IrqLock {
            inner: spin::Mutex::new(value),
        }
    }

    /// Masks IRQs and takes the lock.
    pub fn lock(&self) -> IrqLockGuard<'_, T> {
        let daif = cpu::save_and_mask_irqs();
        IrqLockGuard {
            guard: Some(self.inner.lock()),
            daif,
        }
    }
}

impl<T> Deref for IrqLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard
            .as_deref()
            .unwrap_or_else(|| unreachable!("guard taken only in drop"))
    }
}

impl<T> DerefMut for IrqLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("guard taken only in drop"))
    }
}

impl<T> Drop for IrqLockGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.guard.take());
        cpu::restore_daif(self.daif);
    }
}
