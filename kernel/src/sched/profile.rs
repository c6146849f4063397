//! A sampling profiler: the interrupted PC at every interrupt exit, while it is on.
//!
//! `profile=HZ` on the command line turns it on at boot with a periodic tick of that rate
//! (so an idle or busy CPU is sampled alike); `/proc/profile` takes the samples gathered
//! since the last read, and `scripts/profile` names their functions (docs/profiling.md). A
//! sample is the PC; one from user space carries its address space's ASID in bits 48..63,
//! which the listing maps to the program. Code that runs with interrupts masked is
//! sampled where it unmasks them, and under QEMU an interrupt is taken where a
//! translation block ends (after an `isb`, a system-register or device access), so the
//! profile credits such places with the time before them: read it for where the time
//! goes by function, not by instruction.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::arch::cpu;
use crate::arch::vectors::TrapFrame;

/// Samples kept between two reads (8 s of one CPU at 8 kHz); later ones are counted.
const MAX_SAMPLES: usize = 65_536;

static ON: AtomicBool = AtomicBool::new(false);
static HZ: AtomicU64 = AtomicU64::new(0);
static SAMPLES: [AtomicU64; MAX_SAMPLES] = [const { AtomicU64::new(0) }; MAX_SAMPLES];
static NEXT: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Starts sampling on every CPU's tick, `hz` times a second.
pub fn start(hz: u64) {
    HZ.store(hz, Ordering::Relaxed);
    ON.store(true, Ordering::Release);
}

/// Stops sampling (the samples stay until the next `take`).
pub fn stop() {
    ON.store(false, Ordering::Release);
}

/// The sampling rate, if the profiler is on.
pub fn rate() -> Option<u64> {
    ON.load(Ordering::Acquire)
        .then(|| HZ.load(Ordering::Relaxed))
}

/// Records where `frame` was interrupted (IRQ exit path; lock-free).
pub(super) fn record(frame: &TrapFrame) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let user = frame.elr < 1 << 48;
    let tag = if user { cpu::ttbr0() & 0xFFFF << 48 } else { 0 };
    let i = NEXT.fetch_add(1, Ordering::Relaxed);
    match SAMPLES.get(i) {
        Some(slot) => slot.store(frame.elr | tag, Ordering::Relaxed),
        None => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The samples since the last call, and how many did not fit; starts afresh.
pub fn take() -> (Vec<u64>, u64) {
    let n = NEXT.load(Ordering::Relaxed).min(MAX_SAMPLES);
    let taken = SAMPLES[..n]
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .collect();
    // A sample recorded while this ran may be lost or read twice: a profile, not a count.
    NEXT.store(0, Ordering::Relaxed);
    (taken, DROPPED.swap(0, Ordering::Relaxed))
}
