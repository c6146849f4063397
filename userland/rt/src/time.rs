//! Time: the monotonic clock, sleeping, and the process's notification word.

use abi::{Handle, Sysnum};

use crate::sys;

/// "No deadline": block until the event.
pub const FOREVER: u64 = u64::MAX;

/// Monotonic nanoseconds since boot.
pub fn now() -> u64 {
    sys::call0(Sysnum::ClockNow).map_or(0, |r| r[0])
}

/// Sleeps until `deadline` (monotonic ns).
pub fn sleep_until(deadline: u64) {
    let _ = sys::call1(Sysnum::SleepUntil, deadline);
}

/// Sleeps for `ns` nanoseconds.
pub fn sleep_ns(ns: u64) {
    sleep_until(now().saturating_add(ns));
}

/// Waits until one of the `mask` bits of this process's notification word is set, or
/// `deadline`; returns (and clears) the bits that were set.
pub fn notify_wait(mask: u64, deadline: u64) -> crate::Result<u64> {
    sys::call2(Sysnum::NotifyWait, mask, deadline).map(|r| r[0])
}

/// Sets `bits` in the notification word that capability `h` names.
pub fn notify_post(h: Handle, bits: u64) -> crate::Result<()> {
    sys::call2(Sysnum::NotifyPost, u64::from(h.raw()), bits).map(|_| ())
}

/// A capability for this process's own notification word, to grant to another process
/// so it can wake this one.
pub fn notify_cap() -> crate::Result<Handle> {
    sys::call0(Sysnum::NotifyCap).map(|r| Handle(r[0] as u32))
}

/// The virtual counter (CNTVCT_EL0), readable without a system call.
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: the kernel enables EL0 reads of the virtual counter (CNTKCTL_EL1.EL0VCTEN);
    // the ISB keeps the read from being speculated before earlier instructions.
    unsafe { core::arch::asm!("isb", "mrs {0}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// The counter's frequency in Hz (CNTFRQ_EL0).
pub fn counter_frequency() -> u64 {
    let v: u64;
    // SAFETY: readable at EL0 whenever a counter is (see `counter`).
    unsafe { core::arch::asm!("mrs {0}, cntfrq_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// Counter ticks to nanoseconds.
pub fn ticks_to_ns(ticks: u64) -> u64 {
    (u128::from(ticks) * 1_000_000_000 / u128::from(counter_frequency().max(1))) as u64
}
