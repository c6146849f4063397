//! Monotonic time from the generic timer's counter.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::cpu;
use crate::timescale::Scale;

static FREQ: AtomicU64 = AtomicU64::new(0);
static BOOT_COUNT: AtomicU64 = AtomicU64::new(0);
/// The factors of ticks → ns and ns → ticks (rounded up: a deadline never fires early),
/// set by `init` (0 before: the conversions divide).
static TO_NS: AtomicU64 = AtomicU64::new(0);
static TO_TICKS: AtomicU64 = AtomicU64::new(0);

/// Records the counter frequency and the boot instant.
pub fn init() {
    let freq = cpu::counter_frequency().max(1);
    FREQ.store(freq, Ordering::Relaxed);
    TO_NS.store(
        Scale::new(1_000_000_000, freq, false).mult(),
        Ordering::Relaxed,
    );
    TO_TICKS.store(
        Scale::new(freq, 1_000_000_000, true).mult(),
        Ordering::Relaxed,
    );
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
    match TO_NS.load(Ordering::Relaxed) {
        0 => (u128::from(ticks) * 1_000_000_000 / u128::from(frequency())) as u64,
        mult => Scale::with_mult(mult, false).apply(ticks),
    }
}

/// The counter value at `ns` since boot.
pub fn ns_to_counter(ns: u64) -> u64 {
    let ticks = match TO_TICKS.load(Ordering::Relaxed) {
        0 => (u128::from(ns) * u128::from(frequency()) / 1_000_000_000) as u64,
        mult => Scale::with_mult(mult, true).apply(ns),
    };
    BOOT_COUNT.load(Ordering::Relaxed).saturating_add(ticks)
}

/// Nanoseconds since boot of the counter at QEMU start (the counter starts at 0 on
/// reset), i.e. how long firmware and early boot took before `init`.
pub fn boot_offset_ns() -> u64 {
    ticks_to_ns(BOOT_COUNT.load(Ordering::Relaxed))
}
