//! Interrupt lines as capabilities: `IrqControl` mints, `IrqLine<S>` holds.
//!
//! An interrupt line is the one resource the ISR and a task both touch, so its protocol is
//! split in two: the task side is the type state of `IrqLine<Masked|Armed|Draining>` (each
//! transition consumes the line), and the ISR side is `IrqControl::handle_irq`, which only
//! masks, marks the line `Fired`, counts and names the owner to notify (DESIGN.md "Interrupt
//! line states"). The shared per-line state is a few atomics in a `LineSlot`, so the ISR never
//! takes a lock and a loom model can run over this code (see `sync.rs`).

use core::fmt;
use core::marker::PhantomData;

use abi::Error;

use crate::lock::IrqsMasked;
use crate::msi::{MsiMessage, MsiRange, MsiVector, VectorAllocator};
use crate::napi::Quiesced;
use crate::sealed::Sealed;
use crate::sync::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

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

/// What `IrqControl::handle_irq` did with an interrupt. EOI has already been signalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "the owner must be notified"]
pub enum Dispatch {
    /// An armed line fired: it is masked and `Fired`; wake `owner`.
    Notify {
        /// Who to wake.
        owner: Owner,
        /// The INTID that fired.
        intid: u32,
    },
    /// No armed line for this INTID: counted as unowned and masked, nobody to wake.
    Unowned {
        /// The INTID that fired.
        intid: u32,
    },
}

/// A snapshot of one line's counters, for `/proc/interrupts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineStats {
    /// Current kernel-side state.
    pub status: LineStatus,
    /// Registered owner (meaningless when `Free`).
    pub owner: Owner,
    /// Edge or level.
    pub trigger: Trigger,
    /// Deliveries to the owner, per CPU.
    pub per_cpu: [u64; MAX_CPUS],
    /// Deliveries that found the line not armed (masked, draining or unminted).
    pub spurious: u64,
}

/// Mints `IrqLine<Masked>` for the INTIDs `[base, base + N)` of one interrupt controller, at
/// most once per INTID until the line is dropped, and dispatches their interrupts. One per
/// chip: making one takes the chip's `ControlToken`. MSI vector allocators are carved from
/// it ([`IrqControl::msi_vectors`]), so it is the one authority over its INTIDs.
///
/// Lives in a `static` in the kernel (`const fn new`); lines hold `&'static` references to it.
pub struct IrqControl<const N: usize> {
    chip: &'static dyn IrqChip,
    base: u32,
    slots: [LineSlot; N],
    unowned: AtomicU64,
}

impl<const N: usize> IrqControl<N> {
    /// The control for INTIDs `[base, base + N)` of the chip whose token this is.
    #[cfg(not(loom))]
    pub const fn new(token: ControlToken, base: u32) -> Self {
        IrqControl {
            chip: token.chip,
            base,
            slots: [const { LineSlot::new() }; N],
            unowned: AtomicU64::new(0),
        }
    }

    /// The control for INTIDs `[base, base + N)` of the token's chip (loom: not `const`).
    #[cfg(loom)]
    pub fn new(token: ControlToken, base: u32) -> Self {
        IrqControl {
            chip: token.chip,
            base,
            slots: core::array::from_fn(|_| LineSlot::new()),
            unowned: AtomicU64::new(0),
        }
    }

    fn slot(&self, intid: u32) -> Option<&LineSlot> {
        let i = intid.checked_sub(self.base)? as usize;
        self.slots.get(i)
    }

    /// Whether `intid` is in this control's range.
    pub fn covers(&self, intid: u32) -> bool {
        self.slot(intid).is_some()
    }

    /// Reserves `[range.base, range.base + range.count)` (inside this control) for one MSI
    /// target's vector allocator and returns it. Each INTID is reserved at most once, and
    /// never while a wired line holds it: `EBUSY` (nothing reserved) otherwise, `EINVAL`
    /// outside the range. Reserved INTIDs are minted only through `mint_msi`.
    pub fn msi_vectors(&'static self, range: MsiRange) -> Result<VectorAllocator, Error> {
        let end = range.base.checked_add(range.count).ok_or(Error::EINVAL)?;
        if range.count > 0 && (self.slot(range.base).is_none() || self.slot(end - 1).is_none()) {
            return Err(Error::EINVAL);
        }
        let alloc = VectorAllocator::new(range, self.identity())?;
        for (n, intid) in (range.base..end).enumerate() {
            let slot = self.slot(intid).ok_or(Error::EINVAL)?;
            let free = slot.state.load(Ordering::Acquire) == FREE;
            if !free || slot.msi.swap(true, Ordering::AcqRel) {
                // Undo what this call reserved (the slot that refused is someone else's).
                for undo in range.base..range.base + n as u32 {
                    if let Some(s) = self.slot(undo) {
                        s.msi.store(false, Ordering::Release);
                    }
                }
                if !free {
                    slot.msi.store(false, Ordering::Release);
                }
                return Err(Error::EBUSY);
            }
        }
        Ok(alloc)
    }

    /// This control's identity, which the allocators it carves record.
    fn identity(&self) -> usize {
        core::ptr::from_ref(self).addr()
    }

    /// Mints the line for a wired interrupt, configured and masked.
    ///
    /// `EINVAL` if `intid` is outside the range, `EBUSY` if a line for it already exists or
    /// it is reserved for MSI vectors.
    pub fn mint(
        &'static self,
        intid: u32,
        trigger: Trigger,
        owner: Owner,
    ) -> Result<IrqLine<Masked>, Error> {
        let slot = self.slot(intid).ok_or(Error::EINVAL)?;
        if slot.msi.load(Ordering::Acquire) {
            return Err(Error::EBUSY);
        }
        self.claim(slot, intid, trigger, owner)
    }

    fn claim(
        &'static self,
        slot: &'static LineSlot,
        intid: u32,
        trigger: Trigger,
        owner: Owner,
    ) -> Result<IrqLine<Masked>, Error> {
        slot.state
            .compare_exchange(FREE, MASKED, Ordering::AcqRel, Ordering::Acquire)
            .map_err(|_| Error::EBUSY)?;
        slot.owner.store(owner.0, Ordering::Relaxed);
        slot.level
            .store(u8::from(trigger == Trigger::Level), Ordering::Relaxed);
        self.chip.mask(intid);
        self.chip.configure(intid, trigger);
        Ok(IrqLine {
            slot,
            chip: self.chip,
            intid,
            msi: None,
            _state: PhantomData,
        })
    }

    /// Mints the line for an allocated MSI vector (edge-triggered); the line owns the vector
    /// and returns it to its allocator when dropped. `EINVAL` for a vector of an allocator
    /// this control did not carve. On error the vector is handed back.
    pub fn mint_msi(
        &'static self,
        vector: MsiVector,
        owner: Owner,
    ) -> Result<IrqLine<Masked>, (MsiVector, Error)> {
        let intid = vector.intid();
        let slot = match self.slot(intid) {
            Some(slot)
                if vector.control() == self.identity() && slot.msi.load(Ordering::Acquire) =>
            {
                slot
            }
            _ => return Err((vector, Error::EINVAL)),
        };
        match self.claim(slot, intid, Trigger::Edge, owner) {
            Ok(mut line) => {
                line.msi = Some(vector);
                Ok(line)
            }
            Err(e) => Err((vector, e)),
        }
    }

    /// The hard-IRQ path, called with the acknowledged INTID (GICC_IAR / ICC_IAR1_EL1).
    ///
    /// Masks the INTID at the chip *before* publishing `Fired` (so the owner can never rearm
    /// and then have the ISR's mask land after its unmask), counts the delivery on `cpu`,
    /// records `now` as the first-fire time, then signals EOI itself: EOI always happens here,
    /// the caller only notifies the returned owner. An INTID with no armed line is counted as
    /// unowned and left masked, so it cannot storm. Takes no lock, allocates nothing. Runs in
    /// the exception path, with IRQs masked (`masked`).
    pub fn handle_irq(&self, intid: u32, cpu: usize, now: u64, _masked: &IrqsMasked) -> Dispatch {
        self.chip.mask(intid);
        let dispatch = match self.slot(intid) {
            Some(slot) if slot.state.load(Ordering::Acquire) == ARMED => {
                slot.fired_at.store(now, Ordering::Relaxed);
                match slot
                    .state
                    .compare_exchange(ARMED, FIRED, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        slot.count[cpu % MAX_CPUS].fetch_add(1, Ordering::Relaxed);
                        let owner = Owner(slot.owner.load(Ordering::Relaxed));
                        Dispatch::Notify { owner, intid }
                    }
                    Err(_) => self.spurious(Some(slot), intid),
                }
            }
            slot => self.spurious(slot, intid),
        };
        self.chip.eoi(intid);
        dispatch
    }

    fn spurious(&self, slot: Option<&LineSlot>, intid: u32) -> Dispatch {
        if let Some(slot) = slot {
            slot.spurious.fetch_add(1, Ordering::Relaxed);
        }
        self.unowned.fetch_add(1, Ordering::Relaxed);
        Dispatch::Unowned { intid }
    }

    /// Counters of `intid`, or `None` outside the range.
    pub fn stats(&self, intid: u32) -> Option<LineStats> {
        let slot = self.slot(intid)?;
        Some(LineStats {
            status: status_of(slot.state.load(Ordering::Acquire)),
            owner: Owner(slot.owner.load(Ordering::Relaxed)),
            trigger: if slot.level.load(Ordering::Relaxed) != 0 {
                Trigger::Level
            } else {
                Trigger::Edge
            },
            per_cpu: core::array::from_fn(|c| slot.count[c].load(Ordering::Relaxed)),
            spurious: slot.spurious.load(Ordering::Relaxed),
        })
    }

    /// Interrupts that found no armed line (unminted, masked or draining).
    pub fn unowned(&self) -> u64 {
        self.unowned.load(Ordering::Relaxed)
    }
}

/// Type state of an `IrqLine`. Sealed: the three states below are all there is.
pub trait LineState: Sealed {}

/// Masked at the chip and never armed: fresh from `IrqControl::mint`. The one state `arm`
/// (which needs no proof) leaves.
#[derive(Debug)]
pub struct Masked;
/// Unmasked; the ISR may fire it at any moment.
#[derive(Debug)]
pub struct Armed;
/// Masked after having been armed: the ISR masked it and the owner took it, or the owner
/// masked it. Drain the source, then `rearm` with proof; nothing else unmasks it.
#[derive(Debug)]
pub struct Draining;

impl Sealed for Masked {}
impl Sealed for Armed {}
impl Sealed for Draining {}
impl LineState for Masked {}
impl LineState for Armed {}
impl LineState for Draining {}

/// A capability for one interrupt line in state `S`.
///
/// Not `Clone`; each transition consumes it. Dropping a line in any state masks the INTID at
/// the chip, marks the slot free (so the INTID can be minted again) and, for an MSI line, then
/// returns the vector to its allocator.
#[must_use = "dropping a line masks it and frees the INTID"]
pub struct IrqLine<S: LineState> {
    slot: &'static LineSlot,
    chip: &'static dyn IrqChip,
    intid: u32,
    msi: Option<MsiVector>,
    _state: PhantomData<S>,
}

impl<S: LineState> IrqLine<S> {
    /// The INTID (never shown to user space).
    pub fn intid(&self) -> u32 {
        self.intid
    }

    /// The registered owner.
    pub fn owner(&self) -> Owner {
        Owner(self.slot.owner.load(Ordering::Relaxed))
    }

    /// The doorbell address/data to program into MSI/MSI-X, for an MSI line.
    pub fn msi_message(&self) -> Option<MsiMessage> {
        self.msi.as_ref().map(MsiVector::message)
    }

    /// Kernel-side status right now (may be `Fired` while the type says `Armed`).
    pub fn status(&self) -> LineStatus {
        status_of(self.slot.state.load(Ordering::Acquire))
    }

    /// Re-types the line without running `Drop`.
    fn into_state<T: LineState>(mut self) -> IrqLine<T> {
        let next = IrqLine {
            slot: self.slot,
            chip: self.chip,
            intid: self.intid,
            msi: self.msi.take(),
            _state: PhantomData,
        };
        core::mem::forget(self);
        next
    }

    /// Publishes `Armed` and only then unmasks, so an interrupt that fires at once finds the
    /// line armed.
    fn unmask_as_armed(self) -> IrqLine<Armed> {
        self.slot.state.store(ARMED, Ordering::Release);
        self.chip.unmask(self.intid);
        self.into_state()
    }
}

impl IrqLine<Masked> {
    /// `Masked` -> `Armed`: unmask at the chip. `Masked` is only ever a fresh line (minted and
    /// never armed); a line that was armed once comes back to `Armed` only through
    /// `IrqLine<Draining>::rearm`, with proof that its device is quiet.
    pub fn arm(self) -> IrqLine<Armed> {
        self.unmask_as_armed()
    }

    /// Changes the owner to notify (e.g. after `cap_grant`). Only while masked, so the ISR
    /// can never notify a half-updated owner.
    pub fn set_owner(&mut self, owner: Owner) {
        self.slot.owner.store(owner.0, Ordering::Release);
    }
}

impl IrqLine<Armed> {
    /// `Armed` -> `Draining`: the owner masks its line (polling mode, teardown). The device
    /// may have work whose interrupt this swallows, so the line is `Draining` from here: only
    /// `rearm(Quiesced)` or drop leaves it, never a proof-free `arm`. A notification the ISR
    /// posted meanwhile is stale. A pending edge stays latched in the GIC.
    pub fn mask(self) -> IrqLine<Draining> {
        self.chip.mask(self.intid);
        self.slot.state.store(DRAINING, Ordering::Release);
        self.into_state()
    }

    /// Whether the ISR has fired the line since it was armed.
    pub fn has_fired(&self) -> bool {
        self.slot.state.load(Ordering::Acquire) == FIRED
    }

    /// `Armed` -> `Draining` if the ISR has fired the line (it is then already masked);
    /// otherwise hands the armed line back. Blocking waits are the kernel's: it sleeps on the
    /// owner's notification and calls this when woken.
    pub fn try_take(self) -> Result<IrqLine<Draining>, IrqLine<Armed>> {
        match self
            .slot
            .state
            .compare_exchange(FIRED, DRAINING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(self.into_state()),
            Err(_) => Err(self),
        }
    }
}

impl IrqLine<Draining> {
    /// `Draining` -> `Armed`: unmask, given proof that the source is quiet (device interrupts
    /// re-enabled and its queue rechecked empty). A latched edge fires again at once.
    ///
    /// The proof is not tied to one line by type; `Quiesce::enable_and_recheck` returns it
    /// together with the line it belongs to, and it records that line's INTID.
    ///
    /// # Panics
    /// If `quiet` was minted for another line: a driver bug (it would unmask this line on
    /// the evidence of another device), never something a device or user can cause.
    pub fn rearm(self, quiet: Quiesced) -> IrqLine<Armed> {
        // A plain `assert!` with a literal message: no formatting machinery on this path.
        assert!(
            quiet.intid() == self.intid,
            "IrqLine::rearm given another line's Quiesced proof"
        );
        self.unmask_as_armed()
    }

    /// The `now` passed to `handle_irq` when the line fired (ABI `irq_wait` returns it).
    pub fn fired_at(&self) -> u64 {
        self.slot.fired_at.load(Ordering::Relaxed)
    }
}

impl<S: LineState> Drop for IrqLine<S> {
    fn drop(&mut self) {
        // Mask before freeing: a re-mint must find the INTID masked. The MSI vector (if any)
        // is dropped after this body, i.e. after the slot is free.
        self.chip.mask(self.intid);
        self.slot.state.store(FREE, Ordering::Release);
    }
}

impl<S: LineState> fmt::Debug for IrqLine<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqLine")
            .field("intid", &self.intid)
            .field("state", &core::any::type_name::<S>())
            .finish()
    }
}

/// A line in whichever state, for tables (`CSpace`) that hold lines of mixed states.
#[derive(Debug)]
pub enum AnyIrqLine {
    /// A masked line.
    Masked(IrqLine<Masked>),
    /// An armed line (kernel status `Armed` or `Fired`).
    Armed(IrqLine<Armed>),
    /// A draining line.
    Draining(IrqLine<Draining>),
}

impl AnyIrqLine {
    /// The INTID.
    pub fn intid(&self) -> u32 {
        match self {
            AnyIrqLine::Masked(l) => l.intid(),
            AnyIrqLine::Armed(l) => l.intid(),
            AnyIrqLine::Draining(l) => l.intid(),
        }
    }

    /// Masks the line whatever its state (teardown step 2): a fresh line stays `Masked`, one
    /// that was ever armed is `Draining` (only `rearm` with proof, or drop, leaves it).
    pub fn mask(self) -> AnyIrqLine {
        match self {
            AnyIrqLine::Armed(l) => AnyIrqLine::Draining(l.mask()),
            masked => masked,
        }
    }
}

#[cfg(test)]
mod tests {
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
