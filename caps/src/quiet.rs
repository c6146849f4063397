//! Quiet checks: the one way a line without a ring earns its `Quiesced` proof.
//!
//! Re-arming a line whose device still has work that will not raise a fresh interrupt loses
//! that work: a level line whose source was never serviced, a UART whose FIFO still holds
//! bytes after the interrupt was cleared, a timer still asserting. So the proof that a line
//! may be re-armed must come from reading the device, after its final re-enable, never from
//! a caller's `bool` or closure. Each device kind implements [`QuietCheck`] once, next to its
//! registers: `enable` is the final re-enable (clear the interrupt at the device, switch the
//! timer off), `is_quiet` reads the state the device raises interrupts on (FIFO level,
//! status register, timer control). Only [`quiesce`] calls them, in that order with a full
//! fence between, because both take a [`Seal`] nobody outside this crate can make.
//!
//! Implementing the trait is `unsafe`: the implementation *is* the promise that it reads the
//! device, and a lying one would void every proof minted from it. That is why `caps`, which
//! otherwise has no unsafe code, declares it (see docs/caps.md "The unsafe items").
//!
//! A ring's line earns its proof differently: `napi::Quiesce::enable_and_recheck` reads the
//! used ring itself, which is the state a virtqueue raises interrupts on.

use crate::irq::{Draining, IrqLine};
use crate::napi::Quiesced;

/// Made only by this crate: the argument that keeps [`QuietCheck`]'s and
/// `dma::DmaIdle`'s methods uncallable elsewhere, so they run only inside this crate's
/// minting paths, in order.
pub struct Seal(());

impl Seal {
    pub(crate) fn new() -> Self {
        Seal(())
    }
}

/// Reads one device to decide whether the line it signals on may be re-armed.
///
/// # Safety
/// `is_quiet` must read the device state its interrupt is raised on, after `enable` ran, and
/// return `true` only if no unprocessed work remains that would not raise a fresh interrupt
/// once the line is unmasked: for a level source, that the source is deasserted; for an edge
/// source, that any later event will send a new edge (which the GIC latches while the line
/// is masked). `enable` must perform the device's final interrupt re-enable (or nothing, if
/// the device has none). An implementation that answers without reading its device, or
/// reads state other than what raises the interrupt, makes `IrqLine::rearm` unmask a line
/// whose work is lost.
#[allow(
    unsafe_code,
    reason = "an unsafe trait: its implementation is the promise (docs/caps.md)"
)]
pub unsafe trait QuietCheck {
    /// The device's final interrupt re-enable before the recheck (clear its interrupt, switch
    /// a timer off). Called by [`quiesce`] only.
    fn enable(&self, _seal: &Seal) {}

    /// After `enable` and a full fence: whether the device is quiet (see the trait's safety
    /// contract). Called by [`quiesce`] only.
    fn is_quiet(&self, seal: &Seal) -> bool;
}

// SAFETY: forwards both calls to `T`, whose own contract covers them.
#[allow(unsafe_code, reason = "forwarding impl of the unsafe trait")]
unsafe impl<T: QuietCheck + ?Sized> QuietCheck for &T {
    fn enable(&self, seal: &Seal) {
        (**self).enable(seal);
    }
    fn is_quiet(&self, seal: &Seal) -> bool {
        (**self).is_quiet(seal)
    }
}

// SAFETY: a shared line (PCI INTx) is quiet when every device sharing it is: `enable` runs
// each member's re-enable, `is_quiet` asks each member (all of them, so none is skipped). An
// empty set has no device to read and never counts as quiet.
#[allow(unsafe_code, reason = "combining impl of the unsafe trait")]
unsafe impl<T: QuietCheck> QuietCheck for [T] {
    fn enable(&self, seal: &Seal) {
        for member in self {
            member.enable(seal);
        }
    }
    fn is_quiet(&self, seal: &Seal) -> bool {
        !self.is_empty() && self.iter().all(|member| member.is_quiet(seal))
    }
}

/// The enable → fence → recheck step for a line whose device has no ring (a UART's receive
/// FIFO, the timer, a PCI device's status register, a virtio configuration change): runs
/// `check`'s final re-enable, issues a full fence, then reads the device. Quiet: the proof
/// `IrqLine<Draining>::rearm` needs, with the line; otherwise the line comes back to keep
/// draining. The proof is bound to this line (`rearm` checks the INTID).
pub fn quiesce<C: QuietCheck + ?Sized>(
    line: IrqLine<Draining>,
    check: &C,
) -> Result<(Quiesced, IrqLine<Draining>), IrqLine<Draining>> {
    let seal = Seal(());
    check.enable(&seal);
    crate::sync::fence(crate::sync::Ordering::SeqCst);
    if check.is_quiet(&seal) {
        Ok((Quiesced::new(&line), line))
    } else {
        Err(line)
    }
}

/// Whether `check` reads quiet right now, without re-enabling anything or minting a proof:
/// for routing (which sharer of an INTx line is asserting), never for re-arming.
pub fn peek<C: QuietCheck + ?Sized>(check: &C) -> bool {
    check.is_quiet(&Seal(()))
}

#[cfg(test)]
mod tests {
    use core::cell::Cell;
    use std::vec::Vec;

    use super::*;
    use crate::fakes::FakeGic;
    use crate::irq::{Owner, Trigger};

    /// A level source: asserting while `pending`; `enable` acknowledges one event.
    struct Level {
        pending: Cell<u32>,
        log: Cell<Vec<&'static str>>,
    }

    impl Level {
        fn new(pending: u32) -> Self {
            Level {
                pending: Cell::new(pending),
                log: Cell::new(Vec::new()),
            }
        }
        fn note(&self, what: &'static str) {
            let mut l = self.log.take();
            l.push(what);
            self.log.set(l);
        }
    }

    // SAFETY: a test device: `is_quiet` reads its (fake) pending state after `enable`.
    #[allow(unsafe_code, reason = "a test device implements the unsafe trait")]
    unsafe impl QuietCheck for Level {
        fn enable(&self, _: &Seal) {
            self.note("enable");
            self.pending.set(self.pending.get().saturating_sub(1));
        }
        fn is_quiet(&self, _: &Seal) -> bool {
            self.note("read");
            self.pending.get() == 0
        }
    }

    fn fired(intid: u32) -> (&'static FakeGic, IrqLine<Draining>) {
        let (gic, ctl) = crate::fakes::fake_control::<4>(60);
        let line = ctl.mint(intid, Trigger::Level, Owner(3)).unwrap().arm();
        gic.raise(intid);
        let _ = gic.deliver(ctl, 0, 1);
        (gic, line.try_take().ok().unwrap())
    }

    #[test]
    fn quiesce_enables_then_reads_and_mints_only_when_quiet() {
        let (gic, line) = fired(61);
        let dev = Level::new(2);
        let line = quiesce(line, &dev).unwrap_err();
        assert_eq!(
            dev.log.take(),
            ["enable", "read"],
            "enable runs before the read"
        );
        assert!(gic.is_masked(61), "not quiet: still masked");
        let (quiet, line) = quiesce(line, &dev).expect("second event acknowledged");
        let line = line.rearm(quiet);
        assert!(!gic.is_masked(61));
        drop(line);
        assert!(gic.is_masked(61));
    }

    #[test]
    fn a_shared_line_is_quiet_only_when_every_member_is() {
        let (_, line) = fired(62);
        let devs = [Level::new(1), Level::new(2)];
        let line = quiesce(line, &devs[..]).unwrap_err();
        assert!(!peek(&devs[1]) && peek(&devs[0]));
        let (_quiet, line) = quiesce(line, &devs[..]).expect("both acknowledged");
        let none: [Level; 0] = [];
        assert!(
            quiesce(line, &none[..]).is_err(),
            "no member: nothing was read"
        );
    }

    /// Sharers held by reference (`[&T]`, through the forwarding impl for `&T`) are
    /// re-enabled and read like owned ones: each reference reaches its device.
    #[test]
    fn a_shared_line_of_borrowed_members_reaches_every_device() {
        let (_, line) = fired(63);
        let (a, b) = (Level::new(1), Level::new(2));
        let members = [&a, &b];
        let line = quiesce(line, &members[..]).unwrap_err();
        assert_eq!(a.log.take(), ["enable", "read"]);
        assert!(peek(&members[0]) && !peek(&members[1]));
        let (_quiet, _line) = quiesce(line, &members[..]).expect("both acknowledged");
        assert_eq!(b.pending.get(), 0);
    }
}
