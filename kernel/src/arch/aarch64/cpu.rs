//! CPU primitives: DAIF masking, barriers, WFI, IDs and the generic timer.
//!
//! Each function wraps one or two instructions; the rest of the kernel calls
//! these instead of writing `asm!` (STYLE.md: unsafe stays in `arch/`). System
//! registers go through `aarch64-cpu`'s typed registers and fields (timer, counter,
//! IDs, the CPU index in TPIDR_EL1, DAIF reads) and its barrier and hint instructions.
//! Hand-written, each with its reason: the IRQ mask and unmask (`msr daifset/daifclr`,
//! one instruction each, and not `nomem` as the crate's register writes are: the
//! compiler must not move a critical section's memory accesses across them), the
//! address-space switch (`msr ttbr0_el1` + `isb`, not `nomem` for the same reason: the
//! lower half's memory changes under it), the cache maintenance by address, and the
//! test breakpoint and kernel call (instructions the trap handler decodes).

use core::arch::asm;

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    CNTFRQ_EL0, CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTPCT_EL0, CurrentEL, DAIF, ID_AA64ISAR0_EL1,
    MIDR_EL1, MPIDR_EL1, Readable, TPIDR_EL1, Writeable,
};

/// Saved interrupt mask state (the DAIF register), restored by [`restore_daif`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Daif(u64);

impl Daif {
    /// The raw register value (for `critical-section`'s restore state).
    pub fn raw(self) -> u64 {
        self.0
    }
    /// Rebuilds a value returned by [`Daif::raw`].
    pub fn from_raw(raw: u64) -> Self {
        Daif(raw)
    }
}

/// Masks IRQs (and FIQs, which may carry group-1 interrupts when GICD_CTLR.DS = 0) and
/// returns the previous state.
#[inline(always)]
pub fn save_and_mask_irqs() -> Daif {
    let daif: u64;
    // SAFETY: reading DAIF and setting the I and F bits only changes this CPU's interrupt
    // mask; it cannot break memory safety. Not `nomem`: the compiler must not move the
    // critical section's memory accesses (the lock's acquire included) above the mask.
    unsafe {
        asm!("mrs {0}, daif", "msr daifset, #3", out(reg) daif, options(nostack));
    }
    Daif(daif)
}

/// Restores a state returned by [`save_and_mask_irqs`].
#[inline(always)]
pub fn restore_daif(daif: Daif) {
    // SAFETY: writes back a DAIF value read earlier on this CPU; `nomem` is not set so
    // the compiler does not move memory accesses of the critical section past it.
    unsafe { asm!("msr daif, {0}", in(reg) daif.0, options(nostack)) }
}

/// Unmasks IRQs and FIQs on this CPU.
#[inline(always)]
pub fn enable_irqs() {
    // SAFETY: clearing the I/F masks lets pending interrupts in; handlers are installed
    // before any caller enables them (VBAR is set in boot assembly).
    unsafe { asm!("msr daifclr, #3", options(nostack)) }
}

/// Whether IRQs are currently masked.
pub fn irqs_masked() -> bool {
    DAIF.is_set(DAIF::I)
}

/// Waits for an interrupt (tickless idle).
#[inline(always)]
pub fn wait_for_interrupt() {
    aarch64_cpu::asm::wfi();
}

/// Wakes CPUs waiting in WFE.
pub fn send_event() {
    barrier::dsb(barrier::SY);
    aarch64_cpu::asm::sev();
}

/// Full-system data synchronisation barrier.
pub fn dsb_sy() {
    barrier::dsb(barrier::SY);
}

/// Cleans and invalidates the data cache lines covering `[addr, addr + len)` to the point
/// of coherency, so a CPU running with its MMU off reads what we wrote.
pub fn clean_dcache_range(addr: usize, len: usize) {
    let mut line = addr & !63;
    while line < addr + len {
        // SAFETY: DC CIVAC on an address we own only writes back cached data.
        unsafe { asm!("dc civac, {0}", in(reg) line, options(nostack)) }
        line += 64;
    }
    dsb_sy();
}

/// Loads TTBR0_EL1 (the lower half's root table | ASID << 48) and synchronises. Entries
/// of other ASIDs stay in the TLB; the caller invalidates an ASID before reusing it.
pub fn set_ttbr0(value: u64) {
    // SAFETY: TTBR0 maps only the lower half, which the kernel never executes from or
    // relies on; the value is an empty table or a live process's table.
    unsafe { asm!("msr ttbr0_el1, {0}", "isb", in(reg) value, options(nostack)) }
}

/// Most CPUs the kernel runs on (per-CPU tables are sized by it).
pub const MAX_CPUS: usize = 8;

/// The TTBR0_EL1 value this CPU runs on.
pub fn ttbr0() -> u64 {
    let value: u64;
    // SAFETY: reads a system register.
    unsafe { asm!("mrs {0}, ttbr0_el1", out(reg) value, options(nomem, nostack)) };
    value
}

/// Loads the empty lower half for a kernel thread, keeping the ASID this CPU holds.
///
/// A kernel thread never touches the lower half, so which ASID tags the (empty) table
/// does not matter to it; keeping the last process's ASID means a switch back to that
/// process changes only the table, not the ASID. TLB entries of the ASID stay valid for
/// that process's own table, and the empty table adds none (it has no valid entries), so
/// nothing conflicts; an ASID is invalidated everywhere before it is reused
/// (`AddressSpace`'s drop), as before. The gain: a TLB that is not tagged by ASID (QEMU's
/// software TLB flushes on every ASID change) keeps its entries across a process → kernel
/// thread → same process round trip, the one every system call that wakes a kernel task
/// and waits for its answer makes.
pub fn set_ttbr0_kernel(empty: u64) {
    const ASID: u64 = 0xFFFF << 48;
    set_ttbr0(empty | (ttbr0() & ASID));
}

/// This CPU's kernel index (0 = the boot CPU), kept in TPIDR_EL1.
#[inline(always)]
pub fn index() -> usize {
    TPIDR_EL1.get() as usize
}

/// Records this CPU's kernel index (once, as the CPU comes up).
pub fn set_index(i: usize) {
    // TPIDR_EL1 is a scratch register for the kernel's own use; nothing else reads it.
    TPIDR_EL1.set(i as u64);
}

/// MPIDR_EL1 affinity bits (Aff3..Aff0) of this CPU.
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// The main ID register (implementer, part, revision).
pub fn midr() -> u64 {
    MIDR_EL1.get()
}

/// The exception level the kernel runs at (1 after boot).
pub fn current_el() -> u64 {
    CurrentEL.read(CurrentEL::EL)
}

/// Generic timer frequency in Hz (CNTFRQ_EL0).
pub fn counter_frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// The physical count (CNTPCT_EL0), ordered after earlier instructions.
pub fn counter() -> u64 {
    // The ISB keeps the read from being speculated ahead of earlier instructions.
    barrier::isb(barrier::SY);
    CNTPCT_EL0.get()
}

/// Programs the EL1 physical timer to fire at absolute count `deadline` and enables it.
pub fn timer_set_deadline(deadline: u64) {
    CNTP_CVAL_EL0.set(deadline);
    CNTP_CTL_EL0.write(CNTP_CTL_EL0::ENABLE::SET + CNTP_CTL_EL0::IMASK::CLEAR);
    barrier::isb(barrier::SY);
}

/// Whether the EL1 physical timer is enabled (CNTP_CTL_EL0.ENABLE).
pub fn timer_enabled() -> bool {
    CNTP_CTL_EL0.is_set(CNTP_CTL_EL0::ENABLE)
}

/// Disables the EL1 physical timer (its PPI deasserts).
pub fn timer_disable() {
    CNTP_CTL_EL0.write(CNTP_CTL_EL0::ENABLE::CLEAR);
    barrier::isb(barrier::SY);
}

/// This CPU's EL1 physical timer as the source of its PPI, for `caps::quiet::quiesce`.
#[derive(Debug)]
pub struct PhysicalTimer;

// SAFETY: the timer's PPI is a level, asserted while CNTP_CTL_EL0 has ENABLE = 1,
// ISTATUS = 1 and IMASK = 0 (Arm ARM D11.2.4). `enable` switches the timer off, which drops
// the level; `is_quiet` reads CNTP_CTL_EL0.ENABLE back from this CPU. The next deadline is
// programmed after the line is re-armed and raises a fresh level when it expires.
unsafe impl caps::quiet::QuietCheck for PhysicalTimer {
    fn enable(&self, _: &caps::quiet::Seal) {
        timer_disable();
    }
    fn is_quiet(&self, _: &caps::quiet::Seal) -> bool {
        !timer_enabled()
    }
}

/// Executes `brk #0x100` — the kernel's test breakpoint, which the trap handler counts
/// and steps over.
pub fn test_breakpoint() {
    // SAFETY: the sync handler recognises BRK #0x100 and resumes at the next instruction.
    unsafe { asm!("brk #0x100", options(nomem, nostack)) }
}

/// A kernel call: `svc #0` from EL1 with an operation and two arguments, handled by
/// the scheduler (yield, wait, sleep, exit). Results are read back from the scheduler.
pub fn kernel_call(op: u64, a1: u64, a2: u64) {
    // SAFETY: the sync handler treats SVC #0 from EL1 as a scheduler call; the trap
    // frame saves and restores every general register, so nothing is clobbered.
    unsafe { asm!("svc #0", in("x0") op, in("x1") a1, in("x2") a2, options(nostack)) }
}

/// The instruction-set features user programs may want to know about, by the names
/// Linux's `/proc/cpuinfo` uses (ID_AA64ISAR0_EL1, Arm ARM D19.2.61): `aes`, `pmull`,
/// `sha1`, `sha2`, `sha512`, `crc32`, `atomics`. EL0 cannot read ID registers itself.
pub fn isa_features() -> heapless::Vec<&'static str, 8> {
    let isar0 = ID_AA64ISAR0_EL1.get();
    let field = |shift: u32| (isar0 >> shift) & 0xf;
    let mut out = heapless::Vec::new();
    for (name, shift, min) in [
        ("aes", 4, 1),
        ("pmull", 4, 2),
        ("sha1", 8, 1),
        ("sha2", 12, 1),
        ("sha512", 12, 2),
        ("crc32", 16, 1),
        ("atomics", 20, 2),
    ] {
        if field(shift) >= min {
            let _ = out.push(name);
        }
    }
    out
}
