//! Time: the monotonic clock, sleeping, and the process's notification word.

use abi::Sysnum;

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
