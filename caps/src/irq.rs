//! Interrupt lines as capabilities: `IrqControl` mints, `IrqLine<S>` holds.
//!
//! An interrupt line is the one resource the ISR and a task both touch, so its protocol is
//! split in two: the task side is the type state of `IrqLine<Masked|Armed|Draining>` (each
//! transition consumes the line), and the ISR side is `IrqControl::handle_irq`, which only
//! masks, marks the line `Fired`, counts and names the owner to notify (DESIGN.md "Interrupt
//! line states"). The shared per-line state is a few atomics in a `LineSlot`, so the ISR never
//! takes a lock and a loom model can run over this code (see `sync.rs`).
//!
//! This file holds the vocabulary both sides share (the chip trait, the control token,
//! the per-INTID `LineSlot`); `control.rs` is `IrqControl` and the ISR side, `line.rs`
//! the `IrqLine` type states.

mod control;
mod line;

use core::fmt;

use crate::sync::{AtomicBool, AtomicU8, AtomicU32, AtomicU64};

pub use control::{Dispatch, IrqControl, LineStats};
pub use line::{AnyIrqLine, Armed, Draining, IrqLine, LineState, Masked};

/// Interrupt-controller operations that platform code (GICv2, GICv3, the ITS) implements.
///
/// All are called with an INTID the `IrqControl` covers. `mask`/`unmask` must be idempotent.
///
/// # Safety
/// `mask` must return only once the INTID is no longer forwarded to a CPU (so the ISR's mask
/// lands before it publishes `Fired`), `unmask` must leave a latched edge pending so it fires
/// (no edge is lost), and `control_claim` must return the same claim for the life of the
/// chip, one per interrupt controller in hardware: the one `IrqControl` of the chip rests on
/// it. A chip that broke any of these would let two owners hold one INTID, or lose
/// interrupts the type states say cannot be lost.
#[allow(
    unsafe_code,
    reason = "an unsafe trait: its implementation is the promise (docs/caps.md)"
)]
pub unsafe trait IrqChip: Sync {
    /// The chip's one-time right to an `IrqControl` (see [`ControlToken::take`]).
    fn control_claim(&self) -> &ControlClaim;
    /// Disable forwarding of `intid` (GICD_ICENABLER / LPI config). A pending edge stays pending.
    fn mask(&self, intid: u32);
    /// Enable forwarding of `intid`; a latched pending interrupt fires at once.
    fn unmask(&self, intid: u32);
    /// Set edge or level triggering (GICD_ICFGR); called once at mint, line masked.
    fn configure(&self, intid: u32, trigger: Trigger);
    /// Signal end of interrupt (GICC_EOIR / ICC_EOIR1_EL1, EOImode 0).
    fn eoi(&self, intid: u32);
}

/// Held by a chip: whether its `IrqControl` has been made. Lives in the chip driver's
/// state, next to the registers, for as long as the chip.
#[derive(Debug, Default)]
pub struct ControlClaim {
    // `core`, not `crate::sync`: chips live in statics, which loom atomics cannot.
    taken: core::sync::atomic::AtomicBool,
}

impl ControlClaim {
    /// Not yet taken.
    pub const fn new() -> Self {
        ControlClaim {
            taken: core::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// The right to make the one `IrqControl` of a chip, taken once from the chip's claim.
#[must_use = "pass it to IrqControl::new"]
pub struct ControlToken {
    chip: &'static dyn IrqChip,
}

impl ControlToken {
    /// The chip's control token, the first time it is asked for; `None` ever after, so a
    /// second `IrqControl` (a second owner of every INTID) cannot be made.
    pub fn take(chip: &'static dyn IrqChip) -> Option<ControlToken> {
        let claim = &chip.control_claim().taken;
        (!claim.swap(true, core::sync::atomic::Ordering::AcqRel)).then_some(ControlToken { chip })
    }
}

impl fmt::Debug for ControlToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ControlToken")
    }
}

/// How an interrupt is signalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Edge (every MSI, most SPIs on QEMU virt).
    Edge,
    /// Level (PCI INTx; may be shared).
    Level,
}

/// `edge` or `level`, as the logs and reports print it.
impl core::fmt::Display for Trigger {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Trigger::Edge => "edge",
            Trigger::Level => "level",
        })
    }
}

/// Opaque token naming who is notified when a line fires; the kernel maps it to a task or a
/// process notification bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Owner(pub u32);

/// Per-CPU delivery counters kept per line.
pub const MAX_CPUS: usize = 8;

const FREE: u8 = 0;
const MASKED: u8 = 1;
const ARMED: u8 = 2;
const FIRED: u8 = 3;
const DRAINING: u8 = 4;

/// The kernel-side state of a line (ABI.md "User interrupt states"): one more than the type
/// states, because the ISR moves `Armed` to `Fired` behind the owner's back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineStatus {
    /// Not minted.
    Free,
    /// Minted, masked at the chip.
    Masked,
    /// Unmasked; the device may signal.
    Armed,
    /// The ISR masked it and notified the owner, who has not taken it yet.
    Fired,
    /// Taken by the owner; masked until rearmed.
    Draining,
}

fn status_of(raw: u8) -> LineStatus {
    match raw {
        MASKED => LineStatus::Masked,
        ARMED => LineStatus::Armed,
        FIRED => LineStatus::Fired,
        DRAINING => LineStatus::Draining,
        _ => LineStatus::Free,
    }
}

/// Shared state of one INTID: written by the owner's transitions and by the ISR.
pub struct LineSlot {
    state: AtomicU8,
    /// Reserved for a `VectorAllocator` carved from this control: minted only by `mint_msi`.
    msi: AtomicBool,
    owner: AtomicU32,
    level: AtomicU8,
    fired_at: AtomicU64,
    count: [AtomicU64; MAX_CPUS],
    spurious: AtomicU64,
}

#[cfg(not(loom))]
impl LineSlot {
    const fn new() -> Self {
        LineSlot {
            state: AtomicU8::new(FREE),
            msi: AtomicBool::new(false),
            owner: AtomicU32::new(0),
            level: AtomicU8::new(0),
            fired_at: AtomicU64::new(0),
            count: [const { AtomicU64::new(0) }; MAX_CPUS],
            spurious: AtomicU64::new(0),
        }
    }
}

#[cfg(loom)]
impl LineSlot {
    fn new() -> Self {
        LineSlot {
            state: AtomicU8::new(FREE),
            msi: AtomicBool::new(false),
            owner: AtomicU32::new(0),
            level: AtomicU8::new(0),
            fired_at: AtomicU64::new(0),
            count: core::array::from_fn(|_| AtomicU64::new(0)),
            spurious: AtomicU64::new(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use abi::Error;

    use super::*;
    use crate::fakes::{FakeCpu, FakeGic, GicEvent, fake_control, leak};
    use crate::lock::with_irqs_masked;

    fn setup() -> (&'static FakeGic, &'static IrqControl<64>) {
        fake_control(32)
    }

    #[test]
    fn a_chip_has_one_control() {
        let gic = leak(FakeGic::new());
        let token = ControlToken::take(gic).expect("first");
        assert!(
            ControlToken::take(gic).is_none(),
            "a second control is refused"
        );
        let ctl: &'static IrqControl<8> = leak(IrqControl::new(token, 32));
        assert!(ctl.covers(39));
        assert!(
            ControlToken::take(leak(FakeGic::new())).is_some(),
            "another chip has its own"
        );
    }

    #[test]
    fn mint_configures_masked_and_only_once() {
        let (gic, ctl) = setup();
        let line = ctl.mint(40, Trigger::Level, Owner(7)).unwrap();
        assert!(
            gic.events()
                .contains(&GicEvent::Configure(40, Trigger::Level))
        );
        assert!(gic.is_masked(40));
        assert_eq!(
            ctl.mint(40, Trigger::Edge, Owner(8)).unwrap_err(),
            Error::EBUSY
        );
        assert_eq!(ctl.stats(40).unwrap().status, LineStatus::Masked);
        assert_eq!(ctl.stats(40).unwrap().trigger, Trigger::Level);
        drop(line);
        assert_eq!(ctl.stats(40).unwrap().status, LineStatus::Free);
        let again = ctl.mint(40, Trigger::Edge, Owner(9)).unwrap();
        assert_eq!(again.owner(), Owner(9));
    }

    #[test]
    fn mint_out_of_range_is_einval() {
        let (_, ctl) = setup();
        assert_eq!(
            ctl.mint(31, Trigger::Edge, Owner(0)).unwrap_err(),
            Error::EINVAL
        );
        assert_eq!(
            ctl.mint(96, Trigger::Edge, Owner(0)).unwrap_err(),
            Error::EINVAL
        );
        assert!(ctl.covers(95) && !ctl.covers(96));
    }

    #[test]
    fn full_cycle_arm_fire_take_rearm() {
        let (gic, ctl) = setup();
        let armed = ctl.mint(33, Trigger::Edge, Owner(3)).unwrap().arm();
        assert!(!gic.is_masked(33));
        let armed = armed.try_take().expect_err("not fired yet");
        assert!(!armed.has_fired());
        gic.raise(33);
        let d = gic.deliver(ctl, 1, 1234);
        assert_eq!(
            d,
            [Dispatch::Notify {
                owner: Owner(3),
                intid: 33
            }]
        );
        assert!(gic.is_masked(33), "ISR masks");
        assert_eq!(gic.eoi_count(33), 1, "ISR signals EOI");
        assert!(armed.has_fired());
        assert_eq!(armed.status(), LineStatus::Fired);
        let draining = armed.try_take().unwrap();
        assert_eq!(draining.fired_at(), 1234);
        assert_eq!(ctl.stats(33).unwrap().per_cpu[1], 1);
        let quiet = crate::napi::Quiesced::new_for_test(&draining);
        let armed = draining.rearm(quiet);
        assert!(!gic.is_masked(33));
        assert_eq!(armed.status(), LineStatus::Armed);
    }

    #[test]
    #[should_panic(expected = "another line's Quiesced proof")]
    fn rearm_with_another_lines_proof_panics() {
        let (gic, ctl) = setup();
        let a = ctl.mint(35, Trigger::Edge, Owner(1)).unwrap().arm();
        let b = ctl.mint(36, Trigger::Edge, Owner(1)).unwrap().arm();
        gic.raise(35);
        gic.raise(36);
        let _ = gic.deliver(ctl, 0, 0);
        let _ = gic.deliver(ctl, 0, 0);
        let (a, b) = (a.try_take().unwrap(), b.try_take().unwrap());
        let quiet_b = crate::napi::Quiesced::new_for_test(&b);
        let _ = a.rearm(quiet_b);
    }

    #[test]
    fn edge_while_masked_stays_pending_and_fires_on_rearm() {
        let (gic, ctl) = setup();
        let armed = ctl.mint(34, Trigger::Edge, Owner(1)).unwrap().arm();
        gic.raise(34);
        assert_eq!(gic.deliver(ctl, 0, 0).len(), 1);
        let draining = armed.try_take().unwrap();
        gic.raise(34);
        assert!(
            gic.deliver(ctl, 0, 0).is_empty(),
            "masked: latched, not delivered"
        );
        let quiet = crate::napi::Quiesced::new_for_test(&draining);
        let armed = draining.rearm(quiet);
        assert_eq!(
            gic.deliver(ctl, 0, 0),
            [Dispatch::Notify {
                owner: Owner(1),
                intid: 34
            }]
        );
        assert!(armed.try_take().is_ok());
    }

    #[test]
    fn unowned_interrupts_are_counted_masked_and_eoied() {
        let (gic, ctl) = setup();
        let isr = |intid| with_irqs_masked::<FakeCpu, _>(|m| ctl.handle_irq(intid, 0, 0, m));
        assert_eq!(isr(50), Dispatch::Unowned { intid: 50 });
        assert_eq!(isr(7), Dispatch::Unowned { intid: 7 }, "out of range");
        let masked = ctl.mint(51, Trigger::Edge, Owner(1)).unwrap();
        assert_eq!(isr(51), Dispatch::Unowned { intid: 51 });
        assert_eq!(ctl.unowned(), 3);
        assert_eq!(ctl.stats(51).unwrap().spurious, 1);
        assert!(gic.is_masked(50) && gic.is_masked(51));
        assert_eq!(gic.eoi_count(50), 1);
        drop(masked);
    }

    #[test]
    fn masking_an_armed_line_makes_it_draining_and_drop_masks() {
        let (gic, ctl) = setup();
        let d = ctl.mint(35, Trigger::Edge, Owner(1)).unwrap().arm().mask();
        assert!(gic.is_masked(35));
        assert_eq!(d.status(), LineStatus::Draining, "not a fresh Masked line");
        let quiet = crate::napi::Quiesced::new_for_test(&d);
        let armed = d.rearm(quiet);
        gic.raise(35);
        let _ = gic.deliver(ctl, 0, 0);
        let d = armed.try_take().unwrap();
        let AnyIrqLine::Draining(d) = AnyIrqLine::Draining(d).mask() else {
            panic!("a draining line stays draining")
        };
        assert_eq!(d.status(), LineStatus::Draining);
        let m = ctl.mint(37, Trigger::Edge, Owner(1)).unwrap();
        assert!(matches!(
            AnyIrqLine::Masked(m).mask(),
            AnyIrqLine::Masked(_)
        ));
        let fired_then_masked = {
            let a = ctl.mint(38, Trigger::Edge, Owner(1)).unwrap().arm();
            gic.raise(38);
            let _ = gic.deliver(ctl, 0, 0);
            a.mask()
        };
        assert_eq!(fired_then_masked.status(), LineStatus::Draining);
        drop(d);
        assert!(gic.is_masked(35));
        assert_eq!(ctl.stats(35).unwrap().status, LineStatus::Free);
    }

    #[test]
    fn set_owner_changes_who_is_notified() {
        let (gic, ctl) = setup();
        let mut m = ctl.mint(36, Trigger::Edge, Owner(1)).unwrap();
        m.set_owner(Owner(2));
        let _armed = m.arm();
        gic.raise(36);
        assert_eq!(
            gic.deliver(ctl, 0, 0),
            [Dispatch::Notify {
                owner: Owner(2),
                intid: 36
            }]
        );
    }

    #[test]
    fn a_late_spurious_interrupt_does_not_touch_a_taken_line() {
        let (gic, ctl) = setup();
        let armed = ctl.mint(45, Trigger::Edge, Owner(1)).unwrap().arm();
        gic.raise(45);
        let _ = gic.deliver(ctl, 0, 1234);
        let d = armed.try_take().unwrap();
        let isr = with_irqs_masked::<FakeCpu, _>(|m| ctl.handle_irq(45, 0, 9999, m));
        assert_eq!(isr, Dispatch::Unowned { intid: 45 });
        assert_eq!(d.fired_at(), 1234, "the first fire's time stays");
    }

    /// What the kernel's logs, `/proc` and teardown read off a line: its INTID in any state
    /// (`AnyIrqLine`), its MSI message (none for a wired line), its `Debug` form, and the
    /// trigger as the reports print it.
    #[test]
    fn a_line_reports_its_intid_message_and_trigger() {
        let (_, ctl) = setup();
        let masked = AnyIrqLine::Masked(ctl.mint(40, Trigger::Edge, Owner(1)).unwrap());
        let armed = ctl.mint(41, Trigger::Level, Owner(1)).unwrap().arm();
        let draining = ctl.mint(42, Trigger::Edge, Owner(1)).unwrap().arm().mask();
        assert_eq!(armed.msi_message(), None, "a wired line has no message");
        let shown = std::format!("{draining:?}");
        assert!(
            shown.starts_with("IrqLine { intid: 42, state: ") && shown.contains("Draining"),
            "{shown}"
        );
        let any = [
            masked,
            AnyIrqLine::Armed(armed),
            AnyIrqLine::Draining(draining),
        ];
        assert_eq!(any.each_ref().map(AnyIrqLine::intid), [40, 41, 42]);
        let range = crate::msi::MsiRange {
            base: 60,
            count: 4,
            doorbell: 0x0802_0040,
            data: crate::msi::MsiData::Intid,
        };
        let vectors = leak(ctl.msi_vectors(range).unwrap());
        let v = vectors.alloc().unwrap();
        let message = v.message();
        let line = ctl.mint_msi(v, Owner(1)).unwrap();
        assert_eq!(line.msi_message(), Some(message));
        assert_eq!(message.data, 60);
        assert_eq!(
            (
                std::format!("{}", Trigger::Edge),
                std::format!("{}", Trigger::Level)
            ),
            ("edge".into(), "level".into())
        );
    }

    #[test]
    fn a_refused_range_reserves_nothing() {
        let (_, ctl) = setup(); // INTIDs 32..96
        let r = |base, count| crate::msi::MsiRange {
            base,
            count,
            doorbell: 0,
            data: crate::msi::MsiData::Intid,
        };
        assert_eq!(
            ctl.msi_vectors(r(94, 4)).err(),
            Some(Error::EINVAL),
            "runs past"
        );
        assert_eq!(
            ctl.msi_vectors(r(30, 4)).err(),
            Some(Error::EINVAL),
            "starts before"
        );
        assert!(
            ctl.msi_vectors(r(94, 2)).is_ok(),
            "94, 95 were not left reserved"
        );
        let _carved = ctl.msi_vectors(r(60, 4)).unwrap();
        let wired = ctl.mint(52, Trigger::Level, Owner(1)).unwrap();
        assert_eq!(ctl.msi_vectors(r(48, 8)).err(), Some(Error::EBUSY));
        assert!(
            ctl.mint(48, Trigger::Edge, Owner(1)).is_ok(),
            "48 was released"
        );
        assert_eq!(
            ctl.mint(60, Trigger::Edge, Owner(1)).err(),
            Some(Error::EBUSY),
            "another allocator's INTIDs stay reserved"
        );
        drop(wired);
        assert!(
            ctl.msi_vectors(r(49, 7)).is_ok(),
            "49..56 were all released"
        );
        let t = ControlToken::take(leak(FakeGic::new())).unwrap();
        assert_eq!(std::format!("{t:?}"), "ControlToken");
    }
}
