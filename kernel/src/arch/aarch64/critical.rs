//! The `critical-section` crate's implementation: the same DAIF masking as `IrqLock`.
//!
//! Crates such as `heapless` use `critical_section::with` for their own shared
//! state; on Capstan that masks IRQs on this CPU exactly like `caps::lock::IrqSafe`.
//! Only the boot CPU schedules (secondaries are parked), so masking is enough; when
//! secondaries run kernel code this becomes an `IrqSafe<()>`-backed global lock.

use super::cpu;

struct KernelCriticalSection;
critical_section::set_impl!(KernelCriticalSection);

// SAFETY: `acquire` masks IRQs on this CPU and returns the previous DAIF; `release` restores
// exactly that value, so nested sections restore in LIFO order as the crate requires.
unsafe impl critical_section::Impl for KernelCriticalSection {
    unsafe fn acquire() -> critical_section::RawRestoreState {
        cpu::save_and_mask_irqs().raw()
    }

    unsafe fn release(state: critical_section::RawRestoreState) {
        cpu::restore_daif(cpu::Daif::from_raw(state));
    }
}
