//! Property checks that a deliberately broken variant can fail for one reason only.
//!
//! A broken variant (a validator without the in-flight check, a driver without the recheck)
//! is kept to show a property can fail. Proved with `#[kani::should_panic]`, any failing
//! check would do, including one the bug merely disturbs, so such a proof says little. Here
//! a harness names the check it expects to fail ([`expect_failure`]); every other check
//! becomes an assumption up to that point, and when the expected one fails it is recorded
//! ([`intended_failed`]) and every later check is skipped (the bug is caught; what follows is
//! its aftermath). The harness then verifies (no other check can fail first) and covers
//! `intended_failed()` (the expected check does fail somewhere): exactly "fails for the
//! intended assertion, and only it". Outside such a harness, and always under proptest,
//! [`that`] is a plain `assert!`.

use core::sync::atomic::{AtomicU8, Ordering};

/// The check a broken-variant harness expects to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Expect {
    /// Every check must hold (normal harnesses and tests).
    Nothing = 0,
    /// The NAPI protocol's invariant 5b.
    LostNotification = 1,
    /// The used-element validation's in-flight check.
    NotInFlight = 2,
}

/// The message of the `LostNotification` check.
pub const LOST_NOTIFICATION: &str = "lost notification: work pending, line armed, nothing latched";
/// The message of the `NotInFlight` check.
pub const NOT_IN_FLIGHT: &str = "accepted a descriptor that is not in flight";

static EXPECT: AtomicU8 = AtomicU8::new(Expect::Nothing as u8);
static FAILED: AtomicU8 = AtomicU8::new(0);

/// Whether the expected check has failed (a broken-variant harness covers this).
pub fn intended_failed() -> bool {
    FAILED.load(Ordering::SeqCst) != 0
}

/// Makes the calling harness a broken-variant harness expecting `e` to fail.
pub fn expect_failure(e: Expect) {
    EXPECT.store(e as u8, Ordering::SeqCst);
}

/// Checks `cond`, named `msg`: a plain `assert!`, except in a broken-variant harness (see
/// the module docs), where it is an assumption until the expected check has failed.
pub fn that(cond: bool, msg: &'static str) {
    #[cfg(kani)]
    if EXPECT.load(Ordering::SeqCst) != Expect::Nothing as u8 {
        if !intended_failed() {
            kani::assume(cond);
        }
        return;
    }
    assert!(cond, "{}", msg);
}

/// Checks `cond`, named `msg`, the check a broken variant of kind `which` is expected to
/// fail: in that variant's harness its failure is recorded (see the module docs); anywhere
/// else it is [`that`]. (Kinds are compared, not messages: comparing strings would make
/// Kani unwind `memcmp`.)
pub fn expected(cond: bool, which: Expect, msg: &'static str) {
    #[cfg(kani)]
    if EXPECT.load(Ordering::SeqCst) == which as u8 {
        if !cond && !intended_failed() {
            FAILED.store(1, Ordering::SeqCst);
        }
        return;
    }
    #[cfg(not(kani))]
    let _ = which;
    that(cond, msg);
}

/// A value a check says must be there (an `Option` or `Result`), as [`that`].
pub fn some<T>(v: Option<T>, msg: &'static str) -> T {
    that(v.is_some(), msg);
    match v {
        Some(v) => v,
        // Unreachable: `that` panicked, or (broken-variant harness) pruned this path.
        None => panic!("{}", msg),
    }
}

/// Marks an interesting branch that Kani must reach (`kani::cover`; nothing elsewhere).
#[macro_export]
macro_rules! reach {
    ($cond:expr, $msg:literal) => {
        #[cfg(kani)]
        kani::cover!($cond, $msg);
    };
}
