//! Fault-tolerant memory probes: a store or load that may fault and reports it.
//!
//! Tests check MMU permissions by writing to rodata and expecting a permission
//! fault. The probe's faulting instruction has a known address; the sync
//! handler sees ELR at it, records the fault and resumes at the return path
//! with `x0 = 1` (the Linux exception-table idea, for three instructions). The
//! 32-bit load is how the kernel checks that a device or RAM range the firmware
//! describes answers at all before using it.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

global_asm!(
    r#"
.section .text.probe, "ax"
.global probe_store_u64
probe_store_u64:                    // x0 = address, x1 = value -> x0 = 0 ok / 1 fault
    mov     x2, x0
    mov     x0, #0
.global probe_store_insn
probe_store_insn:
    str     x1, [x2]
.global probe_resume
probe_resume:
    ret

.global probe_load_u64
probe_load_u64:                     // x0 = address -> x0 = 0 ok / 1 fault, x1 = value
    mov     x2, x0
    mov     x0, #0
    mov     x1, #0
.global probe_load_insn
probe_load_insn:
    ldr     x1, [x2]
    b       probe_resume

.global probe_load_u32
probe_load_u32:                     // x0 = address -> x0 = 0 ok / 1 fault, x1 = value
    mov     x2, x0
    mov     x0, #0
    mov     x1, #0
.global probe_load32_insn
probe_load32_insn:
    ldr     w1, [x2]
    b       probe_resume
"#
);

/// What `probe_load_u64` returns in x0 and x1.
#[repr(C)]
struct Loaded {
    faulted: u64,
    value: u64,
}

unsafe extern "C" {
    fn probe_store_u64(addr: usize, value: u64) -> u64;
    fn probe_load_u32(addr: usize) -> Loaded;
    fn probe_load_u64(addr: usize) -> Loaded;
    static probe_store_insn: u8;
    static probe_load_insn: u8;
    static probe_load32_insn: u8;
    static probe_resume: u8;
}

/// The last fault a probe absorbed: (ESR, FAR).
static LAST_ESR: AtomicU64 = AtomicU64::new(0);
static LAST_FAR: AtomicU64 = AtomicU64::new(0);

/// A fault absorbed by a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeFault {
    /// The exception syndrome of the fault.
    pub esr: u64,
    /// The faulting address.
    pub far: u64,
}

/// Stores `value` at `addr`; returns the fault instead of dying if the store aborts.
pub fn try_store_u64(addr: usize, value: u64) -> Result<(), ProbeFault> {
    // SAFETY: the callee performs one store that either succeeds or faults into the
    // sync handler, which resumes us through `probe_resume`. Callers only aim it at
    // memory whose permissions they are testing and whose content is not relied upon.
    let faulted = unsafe { probe_store_u64(addr, value) };
    result(faulted)
}

/// Loads the 32-bit register at `addr` (4-byte aligned, mapped); returns the fault
/// instead of dying if the load aborts — how the kernel checks that a device the
/// firmware describes answers at all (QEMU 7.2's ACPI describes an ITS even with
/// `its=off`).
pub fn try_load_u32(addr: usize) -> Result<u32, ProbeFault> {
    // SAFETY: the callee performs one aligned load that either completes or faults
    // into the sync handler, which resumes us through `probe_resume` with x0 = 1.
    // Callers aim it at mapped device registers whose read has no side effect.
    let r = unsafe { probe_load_u32(addr) };
    result(r.faulted).map(|()| r.value as u32)
}

/// Loads the 8 bytes at `addr` with a privileged load; returns the fault instead of dying
/// if it aborts (tests aim it at memory whose permissions they check, e.g. user pages
/// under PAN).
pub fn try_load_u64(addr: usize) -> Result<u64, ProbeFault> {
    // SAFETY: the callee performs one load that either succeeds or faults into the sync
    // handler, which resumes through `probe_resume` with x0 = 1.
    let r = unsafe { probe_load_u64(addr) };
    result(r.faulted).map(|()| r.value)
}

fn result(faulted: u64) -> Result<(), ProbeFault> {
    if faulted == 0 {
        Ok(())
    } else {
        Err(ProbeFault {
            esr: LAST_ESR.load(Ordering::Relaxed),
            far: LAST_FAR.load(Ordering::Relaxed),
        })
    }
}

/// Called by the sync handler: if `elr` is a probe instruction, absorb the fault and
/// return the resume address and the value for `x0`.
pub fn fixup(elr: u64, esr: u64, far: u64) -> Option<u64> {
    let store = &raw const probe_store_insn as u64;
    let load = &raw const probe_load_insn as u64;
    let load32 = &raw const probe_load32_insn as u64;
    if elr != store && elr != load && elr != load32 {
        return None;
    }
    LAST_ESR.store(esr, Ordering::Relaxed);
    LAST_FAR.store(far, Ordering::Relaxed);
    Some(&raw const probe_resume as u64)
}

/// Stores zero at `addr` with no fault fixup: a fault is reported as an unexpected
/// exception. Only the harness self-test (`crash=fault`) uses it, aimed at read-only data.
pub fn store_unchecked(addr: usize) {
    // SAFETY: used only on a read-only kernel static, so the store faults before it can
    // change memory; the sync handler reports the fault and stops the machine.
    unsafe { core::arch::asm!("str xzr, [{0}]", in(reg) addr, options(nostack)) }
}
