//! `IrqControl`: the one authority over a chip's INTIDs, and the hard-IRQ dispatch.
//!
//! It mints lines (each INTID at most once until its line is dropped), carves MSI vector
//! ranges out of its INTIDs, and runs the ISR side of the protocol: mask, mark `Fired`,
//! count, EOI, name the owner. Lines and the ISR meet only in the per-INTID `LineSlot`
//! atomics, so dispatch takes no lock.

use core::marker::PhantomData;

use abi::Error;

use super::{
    ARMED, ControlToken, FIRED, FREE, IrqChip, IrqLine, LineSlot, LineStatus, MASKED, MAX_CPUS,
    Masked, Owner, Trigger, status_of,
};
use crate::lock::IrqsMasked;
use crate::msi::{MsiRange, MsiVector, VectorAllocator};
use crate::sync::{AtomicU64, Ordering};

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
