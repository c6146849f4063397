//! The syscall layer's counters, kept apart from it so that `/proc/stat` (procfs) reads
//! them without importing the layer that serves its own `read` calls.

use core::sync::atomic::{AtomicU64, Ordering};

use abi::Error;

/// Call numbers counted one by one: every `Sysnum` value is below this.
const NUMBERS: usize = 0x80;
/// Error numbers counted one by one (index = -errno).
const ERRNOS: usize = 32;

static TOTAL: AtomicU64 = AtomicU64::new(0);
static CALLS: [AtomicU64; NUMBERS] = [const { AtomicU64::new(0) }; NUMBERS];
static UNKNOWN: AtomicU64 = AtomicU64::new(0);
static ERRORS: [AtomicU64; ERRNOS] = [const { AtomicU64::new(0) }; ERRNOS];

/// Counts a call by its raw number (`x8`); `known` is whether it names a `Sysnum`.
pub fn call(number: u64, known: bool) {
    TOTAL.fetch_add(1, Ordering::Relaxed);
    if let Some(c) = usize::try_from(number).ok().and_then(|n| CALLS.get(n)) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    if !known {
        UNKNOWN.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a failed call.
pub fn error(e: Error) {
    ERRORS[(-e.as_i32()) as usize % ERRNOS].fetch_add(1, Ordering::Relaxed);
}

/// All calls counted.
pub fn calls() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

/// Calls with an unknown number.
pub fn unknown() -> u64 {
    UNKNOWN.load(Ordering::Relaxed)
}

/// Failed calls with `e`.
pub fn errors_of(e: Error) -> u64 {
    ERRORS[(-e.as_i32()) as usize % ERRNOS].load(Ordering::Relaxed)
}

/// All failed calls.
pub fn errors() -> u64 {
    ERRORS.iter().map(|c| c.load(Ordering::Relaxed)).sum()
}
