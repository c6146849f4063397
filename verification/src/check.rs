//! Property checks that a deliberately broken variant can fail for one reason only.
//!
//! A broken variant (a validator without the in-flight check, a driver without the recheck)
//! is kept to show a property can fail. Proved with `#[kani::should_panic]`, any failing
//! check would do, including one the bug merely disturbs, so such a proof says little. Here
//! a harness names the check it expects to fail ([`expect_failure`]); every other check
//! becomes an assumption, and the expected one, when it fails, marks a `kani::cover` and
//! ends the path. The harness then verifies (no other check can fail first) and its cover
//! must be satisfied (the expected check does fail somewhere): exactly "fails for the
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

/// Makes the calling harness a broken-variant harness expecting `e` to fail.
pub fn expect_failure(e: Expect) {
    EXPECT.store(e as u8, Ordering::SeqCst);
}

#[cfg_attr(
    not(kani),
    allow(dead_code, reason = "only Kani harnesses expect a failure")
)]
fn expected() -> Option<&'static str> {
    match EXPECT.load(Ordering::SeqCst) {
        1 => Some(LOST_NOTIFICATION),
        2 => Some(NOT_IN_FLIGHT),
        _ => None,
    }
}

/// Checks `cond`, named `msg` (see the module docs for broken-variant harnesses).
pub fn that(cond: bool, msg: &'static str) {
    #[cfg(kani)]
    if let Some(intended) = expected() {
        if msg == intended {
            if !cond {
                kani::cover!(true, "the intended check fails");
                kani::assume(false);
            }
        } else {
            kani::assume(cond);
        }
        return;
    }
    assert!(cond, "{}", msg);
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
