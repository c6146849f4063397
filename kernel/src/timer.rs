//! The generic timer as tick and timeout source, tickless when idle.
//!
//! The scheduler asks for the next deadline it cares about (a time slice when
//! others wait to run, the earliest timeout, or the periodic polling tick when a
//! boot option turned one on); with none, the timer is switched off and the idle
//! thread sleeps in WFI until a device interrupts.

use caps::irq::{AnyIrqLine, IrqLine, Masked};
use caps::lock::IrqsMasked;
use caps::quiet::quiesce;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::cpu;
use crate::cmdline;
use crate::sync::IrqLock;
use crate::time;

/// The timer's interrupt line, held by the tick itself (it runs in IRQ context).
static LINE: IrqLock<Option<AnyIrqLine>> = IrqLock::new(None);
/// Ticks whose source did not read back quiet (the line then stays masked).
static NOT_QUIET: AtomicU64 = AtomicU64::new(0);

/// The compare value each CPU's timer holds, or `UNSET` (off, or not known: the next
/// `program` writes). Only that CPU touches its entry, with IRQs masked.
static ARMED: [AtomicU64; cpu::MAX_CPUS] = [const { AtomicU64::new(UNSET) }; cpu::MAX_CPUS];
const UNSET: u64 = u64::MAX;

/// The timer's PPI (u32::MAX before `init`).
static INTID: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(u32::MAX);

/// Takes ownership of the timer's line and arms it.
pub fn init(line: IrqLine<Masked>) {
    INTID.store(line.intid(), Ordering::Relaxed);
    *LINE.lock() = Some(AnyIrqLine::Armed(line.arm()));
}

/// The timer's PPI, once `init` ran.
pub fn intid() -> Option<u32> {
    match INTID.load(Ordering::Relaxed) {
        u32::MAX => None,
        i => Some(i),
    }
}

/// A secondary CPU's tick. The PPI is banked: each CPU has its own timer and its own
/// enable bit, while the capability layer keeps one line per INTID (the boot CPU's).
/// So on the other CPUs the kernel-owned tick is handled here directly: the timer is
/// switched off (its level output drops: the source is quiet) and the scheduler
/// reprograms it on the way out; the PPI stays enabled on this CPU. IRQ context only
/// (`_masked`).
pub fn on_secondary_interrupt(_masked: &IrqsMasked) {
    TICKS.fetch_add(1, Ordering::Relaxed);
    cpu::timer_disable();
    disarmed();
}

static TICKS: AtomicU64 = AtomicU64::new(0);
static PERIOD_NS: AtomicU64 = AtomicU64::new(0);

/// The periodic tick's period in ns (0: tickless).
pub fn period_ns() -> u64 {
    PERIOD_NS.load(Ordering::Relaxed)
}

/// Sets the periodic tick's period in ns as `period_ns` read it (0: tickless).
pub fn set_period_ns(period: u64) {
    PERIOD_NS.store(period, Ordering::Relaxed);
}

/// Turns on a periodic tick at `hz` (0 = off; tickless). Rates above
/// `cmdline::MAX_HZ` are clamped there, so a tick never rounds to "off".
pub fn set_periodic_hz(hz: u64) {
    let period = if hz == 0 { 0 } else { cmdline::period_ns(hz) };
    PERIOD_NS.store(period, Ordering::Relaxed);
}

/// The next periodic tick after `now`, if a periodic tick is configured.
pub fn periodic_deadline(now: u64) -> Option<u64> {
    let period = PERIOD_NS.load(Ordering::Relaxed);
    (period != 0).then(|| (now / period + 1) * period)
}

/// Makes this CPU's timer fire by `deadline_ns` (since boot); `None`: no deadline.
///
/// A timer already set to fire no later is left alone, and so is one set when no deadline
/// is wanted any more: it fires early, once, the scheduler finds nothing due and programs
/// the real deadline. The scheduler calls this on every switch, wait and wake-up, mostly
/// with a deadline that only moved later (a task's "in a second" timeout), and a timer
/// write is costly under emulation (QEMU re-sorts its timer list and wakes its main loop:
/// 7–12 µs a write measured, a fifth of a UDP echo's CPU time). IRQs masked.
pub fn program(deadline_ns: Option<u64>) {
    let armed = &ARMED[cpu::index() % ARMED.len()];
    let current = armed.load(Ordering::Relaxed);
    let Some(ns) = deadline_ns else {
        if current == UNSET {
            cpu::timer_disable();
        }
        return;
    };
    let want = time::ns_to_counter(ns).min(UNSET - 1);
    if current <= want {
        return;
    }
    armed.store(want, Ordering::Relaxed);
    cpu::timer_set_deadline(want);
}

/// Records that this CPU's timer was switched off outside `program` (its interrupt).
fn disarmed() {
    ARMED[cpu::index() % ARMED.len()].store(UNSET, Ordering::Relaxed);
}

/// Timer interrupt (the IRQ path already masked the line): silence the level PPI by
/// disabling the timer, which is the proof the source is quiet, and re-arm the line. The
/// scheduler reprograms the next deadline on the way out. IRQ context only (`_masked`).
pub fn on_interrupt(_masked: &IrqsMasked) {
    TICKS.fetch_add(1, Ordering::Relaxed);
    // `quiesce` below switches the timer off (or finds it not quiet): either way the
    // scheduler must program it afresh on the way out.
    disarmed();
    let mut slot = LINE.lock();
    *slot = match slot.take() {
        Some(AnyIrqLine::Armed(line)) => Some(match line.try_take() {
            Ok(draining) => match quiesce(draining, &cpu::PhysicalTimer) {
                Ok((quiet, line)) => AnyIrqLine::Armed(line.rearm(quiet)),
                Err(line) => {
                    NOT_QUIET.fetch_add(1, Ordering::Relaxed);
                    AnyIrqLine::Draining(line)
                }
            },
            Err(armed) => AnyIrqLine::Armed(armed),
        }),
        other => other,
    };
}

/// Ticks whose timer did not read back disabled (0 unless the hardware misbehaves).
pub fn not_quiet() -> u64 {
    NOT_QUIET.load(Ordering::Relaxed)
}

/// Timer interrupts taken so far.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}
