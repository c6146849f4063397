//! Monotonic time from the generic timer's counter.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::cpu;

static FREQ: AtomicU64 = AtomicU64::new(0);
static BOOT_COUNT: AtomicU64 = AtomicU64::new(0);

/// Records the counter frequency and the boot instant.
pub fn init() {
    FREQ.store(cpu::counter_frequency().max(1), Ordering::Relaxed);
    BOOT_COUNT.store(cpu::counter(), Ordering::Relaxed);
}

/// Counter ticks per second.
pub fn frequency() -> u64 {
    FREQ.load(Ordering::Relaxed).max(1)
}

/// Nanoseconds since `init`.
pub fn now_ns() -> u64 {
    ticks_to_ns(cpu::counter().saturating_sub(BOOT_COUNT.load(Ordering::Relaxed)))
}

/// Converts counter ticks to nanoseconds without overflow for centuries of uptime.
pub fn ticks_to_ns(ticks: u64) -> u64 {
    (u128::from(ticks) * 1_000_000_000 / u128::from(frequency())) as u64
}

/// The counter value at `ns` since boot.
pub fn ns_to_counter(ns: u64) -> u64 {
    let ticks = (u128::from(ns) * u128::from(frequency()) / 1_000_000_000) as u64;
    BOOT_COUNT.load(Ordering::Relaxed).saturating_add(ticks)
}

/// Nanoseconds since boot of the counter at QEMU start (the counter starts at 0 on
/// reset), i.e. how long firmware and early boot took before `init`.
pub fn boot_offset_ns() -> u64 {
    ticks_to_ns(BOOT_COUNT.load(Ordering::Relaxed))
}
