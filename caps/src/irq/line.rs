//! `IrqLine<S>`: the owner's side of an interrupt line, as type states.
//!
//! `Masked` (fresh) -> `Armed` -> `Draining` -> `Armed` with a `Quiesced` proof; every
//! transition consumes the line, so a line cannot be unmasked twice or re-armed without
//! evidence that its device is quiet. Dropping a line in any state masks it and frees its
//! INTID.

use core::fmt;
use core::marker::PhantomData;

use super::{ARMED, DRAINING, FIRED, FREE, IrqChip, LineSlot, LineStatus, Owner, status_of};
use crate::msi::{MsiMessage, MsiVector};
use crate::napi::Quiesced;
use crate::sealed::Sealed;
use crate::sync::Ordering;

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
    pub(super) slot: &'static LineSlot,
    pub(super) chip: &'static dyn IrqChip,
    pub(super) intid: u32,
    pub(super) msi: Option<MsiVector>,
    pub(super) _state: PhantomData<S>,
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
