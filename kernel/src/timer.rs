//! The generic timer as tick and timeout source, tickless when idle.
//!
//! The scheduler asks for the next deadline it cares about (a time slice when
//! others wait to run, the earliest timeout, or the periodic polling tick when a
//! boot option turned one on); with none, the timer is switched off and the idle
//! thread sleeps in WFI until a device interrupts.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::cpu;
use crate::time;

static TICKS: AtomicU64 = AtomicU64::new(0);
static PERIOD_NS: AtomicU64 = AtomicU64::new(0);

/// Turns on a periodic tick at `hz` (0 = off; tickless).
pub fn set_periodic_hz(hz: u64) {
    PERIOD_NS.store(
        1_000_000_000u64.checked_div(hz).unwrap_or(0),
        Ordering::Relaxed,
    );
}

/// The next periodic tick after `now`, if a periodic tick is configured.
pub fn periodic_deadline(now: u64) -> Option<u64> {
    let period = PERIOD_NS.load(Ordering::Relaxed);
    (period != 0).then(|| (now / period + 1) * period)
}

/// Arms the timer for `deadline_ns` (since boot), or disarms it.
pub fn program(deadline_ns: Option<u64>) {
    match deadline_ns {
        Some(ns) => cpu::timer_set_deadline(time::ns_to_counter(ns)),
        None => cpu::timer_disable(),
    }
}

/// Timer interrupt: silence the (level) PPI; the scheduler reprograms it on the way out.
pub fn on_interrupt() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    cpu::timer_disable();
}

/// Timer interrupts taken so far.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}
