//! The kernel's IRQ-safe lock: `caps::lock::IrqSafe` over this CPU's DAIF.
//!
//! Every piece of kernel state touched from interrupt context lives in an
//! `IrqLock`. Taking it masks IRQs first and restores the previous mask after
//! the inner spin lock is released (docs/caps.md), so an interrupt handler can
//! never spin on a lock its own CPU holds, and a preempted thread never holds one.

use caps::lock::{IrqMaskOps, IrqSafe};

use crate::arch::cpu::{self, Daif};

/// DAIF save/mask/restore for `caps::lock`.
#[derive(Debug)]
pub struct ArchIrqs;

// SAFETY: `save_and_mask_irqs` reads DAIF and then sets DAIF.I (and F) with `msr daifset`,
// which takes effect before the next instruction, so IRQs are masked on this CPU when it
// returns; `restore_daif` writes back exactly the DAIF value it is given.
unsafe impl IrqMaskOps for ArchIrqs {
    type Saved = Daif;

    fn save_and_mask() -> Daif {
        cpu::save_and_mask_irqs()
    }

    fn restore(saved: Daif) {
        cpu::restore_daif(saved);
    }
}

/// A spin lock that masks IRQs while held.
pub type IrqLock<T> = IrqSafe<T, ArchIrqs>;
