//! `IrqSafe<T>`: a spin lock that masks IRQs first, and the `IrqsMasked` token.
//!
//! A spin lock shared with interrupt context deadlocks if the ISR interrupts its own CPU while
//! the lock is held; masking IRQs before taking it rules that out. The guard carries an
//! `IrqsMasked` token that is not `Send`, so "IRQs are masked on this CPU" cannot leak to
//! another thread, and functions that need masked IRQs take `&IrqsMasked`. The DAIF access is
//! behind `IrqMaskOps` (kernel: `mrs/msr daif` in its arch code; tests: `FakeCpu`), chosen as a
//! type parameter so no global hook and no `unsafe` is needed here.

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

/// Save-and-mask / restore of the CPU's IRQ mask (DAIF.I on aarch64).
///
/// # Safety
/// `save_and_mask` must return only once IRQs are masked on the current CPU (and return the
/// previous state), and `restore` must put back exactly a state `save_and_mask` returned.
/// Every `IrqsMasked` token and every `IrqSafe` guard rests on this: a no-op implementation
/// would hand out tokens with interrupts on, and an ISR could then spin forever on a lock its
/// own CPU holds. This is caps' one `unsafe` item that is not about a device (docs/caps.md).
#[allow(
    unsafe_code,
    reason = "an unsafe trait: its implementation is the promise (docs/caps.md)"
)]
pub unsafe trait IrqMaskOps {
    /// The saved state (the DAIF value).
    type Saved: Copy;
    /// Saves the current mask state, then masks IRQs.
    fn save_and_mask() -> Self::Saved;
    /// Restores a state returned by `save_and_mask`.
    fn restore(saved: Self::Saved);
}

/// Proof that IRQs are masked on the current CPU for as long as the borrow lasts.
/// Not `Send`/`Sync` (the mask is per CPU).
#[derive(Debug)]
pub struct IrqsMasked {
    _not_send: PhantomData<*const ()>,
}

impl IrqsMasked {
    fn new() -> Self {
        IrqsMasked {
            _not_send: PhantomData,
        }
    }
}

/// Restores the saved mask state on drop.
struct Restore<A: IrqMaskOps>(A::Saved);

impl<A: IrqMaskOps> Drop for Restore<A> {
    fn drop(&mut self) {
        A::restore(self.0);
    }
}

/// Runs `f` with IRQs masked (e.g. in an exception handler, or around per-CPU state), then
/// restores the previous state. Nests.
pub fn with_irqs_masked<A: IrqMaskOps, R>(f: impl FnOnce(&IrqsMasked) -> R) -> R {
    let _restore = Restore::<A>(A::save_and_mask());
    f(&IrqsMasked::new())
}

/// State shared with interrupt context. Reachable only through `lock()`.
#[allow(
    clippy::disallowed_types,
    reason = "IrqSafe is the one place a spin lock may be used: it masks IRQs first"
)]
pub struct IrqSafe<T, A: IrqMaskOps> {
    inner: spin::Mutex<T>,
    _ops: PhantomData<fn() -> A>,
}

#[allow(
    clippy::disallowed_types,
    reason = "IrqSafe is the one place a spin lock may be used: it masks IRQs first"
)]
impl<T, A: IrqMaskOps> IrqSafe<T, A> {
    /// Wraps `value`.
    pub const fn new(value: T) -> Self {
        IrqSafe {
            inner: spin::Mutex::new(value),
            _ops: PhantomData,
        }
    }

    /// Saves DAIF, masks IRQs, then takes the lock.
    pub fn lock(&self) -> IrqSafeGuard<'_, T, A> {
        let restore = Restore(A::save_and_mask());
        IrqSafeGuard {
            guard: self.inner.lock(),
            _restore: restore,
            token: IrqsMasked::new(),
        }
    }

    /// Like `lock`, but gives up (restoring DAIF) if the lock is held.
    pub fn try_lock(&self) -> Option<IrqSafeGuard<'_, T, A>> {
        let restore = Restore(A::save_and_mask());
        let guard = self.inner.try_lock()?;
        Some(IrqSafeGuard {
            guard,
            _restore: restore,
            token: IrqsMasked::new(),
        })
    }

    /// Exclusive access without locking: `&mut self` proves nobody else, ISR included, can
    /// reach the value.
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }
}

/// Access to an `IrqSafe` value with IRQs masked. Dropping it releases the lock, then
/// restores DAIF (fields drop in declaration order). Not `Send`.
#[must_use = "dropping the guard unlocks at once"]
#[allow(
    clippy::disallowed_types,
    reason = "IrqSafe is the one place a spin lock may be used: it masks IRQs first"
)]
pub struct IrqSafeGuard<'a, T, A: IrqMaskOps> {
    guard: spin::MutexGuard<'a, T>,
    _restore: Restore<A>,
    token: IrqsMasked,
}

impl<T, A: IrqMaskOps> IrqSafeGuard<'_, T, A> {
    /// The proof that IRQs are masked, for functions that require it.
    pub fn token(&self) -> &IrqsMasked {
        &self.token
    }

    /// The value and the proof together, for functions that need both (`&mut` state shared
    /// with an ISR, and the token that says the ISR cannot run on this CPU meanwhile).
    pub fn parts(&mut self) -> (&mut T, &IrqsMasked) {
        (&mut self.guard, &self.token)
    }
}

impl<T, A: IrqMaskOps> Deref for IrqSafeGuard<'_, T, A> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T, A: IrqMaskOps> DerefMut for IrqSafeGuard<'_, T, A> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::FakeCpu;

    fn needs_masked(_: &IrqsMasked) -> bool {
        !FakeCpu::irqs_enabled()
    }

    #[test]
    fn lock_masks_and_drop_restores() {
        FakeCpu::set_irqs_enabled(true);
        let s: IrqSafe<u32, FakeCpu> = IrqSafe::new(1);
        {
            let mut g = s.lock();
            assert!(!FakeCpu::irqs_enabled());
            assert!(needs_masked(g.token()));
            *g += 1;
        }
        assert!(FakeCpu::irqs_enabled());
        assert_eq!(*s.lock(), 2);
    }

    #[test]
    fn nesting_keeps_irqs_masked_until_outermost_drop() {
        FakeCpu::set_irqs_enabled(true);
        let a: IrqSafe<u8, FakeCpu> = IrqSafe::new(0);
        let b: IrqSafe<u8, FakeCpu> = IrqSafe::new(0);
        let ga = a.lock();
        {
            let _gb = b.lock();
            assert!(!FakeCpu::irqs_enabled());
        }
        assert!(
            !FakeCpu::irqs_enabled(),
            "inner restore keeps the outer mask"
        );
        drop(ga);
        assert!(FakeCpu::irqs_enabled());
    }

    #[test]
    fn lock_released_before_daif_restored() {
        FakeCpu::set_irqs_enabled(true);
        static S: IrqSafe<u8, FakeCpu> = IrqSafe::new(0);
        FakeCpu::on_restore(|| assert!(S.inner.try_lock().is_some(), "lock already free"));
        drop(S.lock());
        FakeCpu::clear_on_restore();
        assert!(FakeCpu::irqs_enabled());
    }

    #[test]
    fn try_lock_fails_when_held_and_restores() {
        FakeCpu::set_irqs_enabled(true);
        let s: IrqSafe<u8, FakeCpu> = IrqSafe::new(0);
        let g = s.lock();
        assert!(s.try_lock().is_none());
        assert!(
            !FakeCpu::irqs_enabled(),
            "failed try_lock restored to the held state"
        );
        drop(g);
        assert!(FakeCpu::irqs_enabled());
    }

    #[test]
    fn with_irqs_masked_nests() {
        FakeCpu::set_irqs_enabled(true);
        with_irqs_masked::<FakeCpu, _>(|t| {
            assert!(needs_masked(t));
            with_irqs_masked::<FakeCpu, _>(needs_masked);
            assert!(!FakeCpu::irqs_enabled());
        });
        assert!(FakeCpu::irqs_enabled());
    }

    #[test]
    fn parts_gives_the_value_and_the_token() {
        FakeCpu::set_irqs_enabled(true);
        let s: IrqSafe<u8, FakeCpu> = IrqSafe::new(1);
        let mut g = s.lock();
        let (v, token) = g.parts();
        *v += 1;
        assert!(needs_masked(token));
        drop(g);
        assert_eq!(*s.lock(), 2);
    }

    #[test]
    fn get_mut_needs_no_lock() {
        let mut s: IrqSafe<u8, FakeCpu> = IrqSafe::new(3);
        *s.get_mut() = 4;
        assert_eq!(*s.lock(), 4);
    }
}
