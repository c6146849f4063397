//! `CSpace`: a process's capability table, named by generation-checked handles.
//!
//! User space names capabilities by `abi::Handle` (index + generation + tag), never by
//! pointer, so a stale or forged handle fails with `EBADH` instead of aliasing whatever now
//! sits in the slot. A slot's generation is bumped on every free and a slot whose generation
//! would wrap is retired, so a freed handle never resolves again. The table is generic over
//! the kernel's object type (an enum of everything a process can hold) and fixed-size, so it
//! never allocates.

use abi::handle::{GENERATION_MAX, MAX_SLOTS};
use abi::{CapType, Error, Handle, Rights};

use crate::dma::{DmaHal, DmaRegion, DmaState};
use crate::irq::{AnyIrqLine, IrqLine, LineState};
use crate::msi::MsiVector;

/// Something a `CSpace` can hold.
pub trait Capability {
    /// Its type, checked by every typed lookup.
    fn cap_type(&self) -> CapType;
}

impl<S: LineState> Capability for IrqLine<S> {
    fn cap_type(&self) -> CapType {
        CapType::IrqLine
    }
}

impl Capability for AnyIrqLine {
    fn cap_type(&self) -> CapType {
        CapType::IrqLine
    }
}

impl Capability for MsiVector {
    fn cap_type(&self) -> CapType {
        CapType::MsiVector
    }
}

impl<H: DmaHal + 'static, S: DmaState> Capability for DmaRegion<H, S> {
    fn cap_type(&self) -> CapType {
        CapType::DmaRegion
    }
}

/// Whether a capability of this type is linear: moved by `cap_grant`, never copied.
pub const fn is_linear(t: CapType) -> bool {
    !matches!(t, CapType::File | CapType::Notification | CapType::Power)
}

/// Teardown order (ABI.md "Teardown"): lines are masked first, then devices stop bus
/// mastering, then their windows and DMA go, then vectors return. Lower goes first.
pub const fn teardown_rank(t: CapType) -> u8 {
    match t {
        CapType::IrqLine => 0,
        CapType::Device => 1,
        CapType::MmioWindow => 2,
        CapType::Vring | CapType::DmaRegion => 3,
        CapType::MsiVector => 4,
        CapType::File
        | CapType::Socket
        | CapType::Notification
        | CapType::Power
        | CapType::NetIf => 5,
    }
}

const LAST_RANK: u8 = 5;

enum Slot<O> {
    Empty,
    Full(O, Rights),
    /// Generation exhausted: never used again.
    Retired,
}

/// A fixed-size capability table of `N` slots (`N <= 4096`).
pub struct CSpace<O: Capability, const N: usize> {
    slots: [Slot<O>; N],
    generations: [u32; N],
    len: usize,
}

impl<O: Capability, const N: usize> Default for CSpace<O, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O: Capability, const N: usize> CSpace<O, N> {
    const FITS: () = assert!(N <= MAX_SLOTS, "a handle indexes at most 4096 slots");

    /// An empty table.
    pub fn new() -> Self {
        let () = Self::FITS;
        CSpace {
            slots: core::array::from_fn(|_| Slot::Empty),
            generations: [0; N],
            len: 0,
        }
    }

    /// An empty table whose slots start at the given generations (each clamped to
    /// `GENERATION_MAX`), so a model checker can reach slot retirement in a few steps instead
    /// of 2^19 frees. Only with feature `verification-hooks` (used by `verification/`).
    #[cfg(feature = "verification-hooks")]
    pub fn with_generations(generations: [u32; N]) -> Self {
        let mut cs = Self::new();
        cs.generations = generations.map(|g| g.min(GENERATION_MAX));
        cs
    }

    /// Capabilities held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no capability is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `obj` with `rights` in the lowest free slot. On `ENOSPC` the object is handed
    /// back.
    pub fn insert(&mut self, obj: O, rights: Rights) -> Result<Handle, (O, Error)> {
        let Some(i) = self.slots.iter().position(|s| matches!(s, Slot::Empty)) else {
            return Err((obj, Error::ENOSPC));
        };
        self.slots[i] = Slot::Full(obj, rights);
        self.len += 1;
        Ok(self.handle(i))
    }

    fn handle(&self, i: usize) -> Handle {
        Handle::new(i, self.generations[i]).expect("index < N <= 4096, generation <= max")
    }

    /// Resolves a handle to its slot index: `EBADH` unless tagged, in range, live and of the
    /// current generation.
    fn resolve(&self, h: Handle) -> Result<usize, Error> {
        let i = h.index();
        let live = h.is_tagged()
            && i < N
            && self.generations[i] == h.generation()
            && matches!(self.slots[i], Slot::Full(..));
        if live { Ok(i) } else { Err(Error::EBADH) }
    }

    fn check(&self, h: Handle, ty: CapType, need: Rights) -> Result<usize, Error> {
        let i = self.resolve(h)?;
        let Slot::Full(obj, rights) = &self.slots[i] else {
            return Err(Error::EBADH);
        };
        if obj.cap_type() != ty {
            return Err(Error::EWRONGTYPE);
        }
        if !rights.contains(need) {
            return Err(Error::EACCES);
        }
        Ok(i)
    }

    /// The object behind `h`, which must be of type `ty` and hold at least `need`.
    pub fn get(&self, h: Handle, ty: CapType, need: Rights) -> Result<&O, Error> {
        let i = self.check(h, ty, need)?;
        match &self.slots[i] {
            Slot::Full(obj, _) => Ok(obj),
            _ => Err(Error::EBADH),
        }
    }

    /// Mutable access to the object behind `h` (same checks as `get`).
    pub fn get_mut(&mut self, h: Handle, ty: CapType, need: Rights) -> Result<&mut O, Error> {
        let i = self.check(h, ty, need)?;
        match &mut self.slots[i] {
            Slot::Full(obj, _) => Ok(obj),
            _ => Err(Error::EBADH),
        }
    }

    /// Type and rights of the capability behind `h` (`cap_info`).
    pub fn info(&self, h: Handle) -> Result<(CapType, Rights), Error> {
        match &self.slots[self.resolve(h)?] {
            Slot::Full(obj, rights) => Ok((obj.cap_type(), *rights)),
            _ => Err(Error::EBADH),
        }
    }

    /// Runs a consuming transition (`IrqLine` state changes) on the object in place: the
    /// handle stays valid. `f` returns the object to store back and a result.
    ///
    /// While `f` runs the slot is vacated; if `f` panics (the object is then dropped by the
    /// unwind), the slot is freed as by `remove`, generation bumped, so the old handle never
    /// resolves to whatever is stored there next.
    pub fn update<R>(
        &mut self,
        h: Handle,
        ty: CapType,
        need: Rights,
        f: impl FnOnce(O) -> (O, R),
    ) -> Result<R, Error> {
        let i = self.check(h, ty, need)?;
        let Slot::Full(obj, rights) = core::mem::replace(&mut self.slots[i], Slot::Empty) else {
            return Err(Error::EBADH);
        };
        let vacated = Vacated::new(self, i);
        let (obj, r) = f(obj);
        let cs = vacated.refill();
        cs.slots[i] = Slot::Full(obj, rights);
        Ok(r)
    }

    /// Drops rights in place (`cap_replace`); asking for rights not held is `EACCES`.
    pub fn restrict(&mut self, h: Handle, rights: Rights) -> Result<(), Error> {
        let i = self.resolve(h)?;
        match &mut self.slots[i] {
            Slot::Full(_, held) if held.contains(rights) => {
                *held = rights;
                Ok(())
            }
            Slot::Full(..) => Err(Error::EACCES),
            _ => Err(Error::EBADH),
        }
    }

    /// Frees slot `i`, bumping its generation, or retiring it if the generation is spent.
    fn free(&mut self, i: usize) -> Option<(O, Rights)> {
        let next = if self.generations[i] >= GENERATION_MAX {
            Slot::Retired
        } else {
            self.generations[i] += 1;
            Slot::Empty
        };
        match core::mem::replace(&mut self.slots[i], next) {
            Slot::Full(obj, rights) => {
                self.len -= 1;
                Some((obj, rights))
            }
            _ => None,
        }
    }

    /// Removes the capability (`cap_drop`); the handle goes stale. The caller drops the object
    /// (which has its own documented `Drop`).
    pub fn remove(&mut self, h: Handle) -> Result<O, Error> {
        let i = self.resolve(h)?;
        self.free(i).map(|(o, _)| o).ok_or(Error::EBADH)
    }

    /// Moves the capability behind `h` to `to` with `rights` (a subset of those held; the
    /// source needs `TRANSFER`). The old handle goes stale; returns the new one. On any error
    /// both tables are unchanged.
    pub fn grant<const M: usize>(
        &mut self,
        h: Handle,
        to: &mut CSpace<O, M>,
        rights: Rights,
    ) -> Result<Handle, Error> {
        let i = self.resolve(h)?;
        let Slot::Full(_, held) = &self.slots[i] else {
            return Err(Error::EBADH);
        };
        if !held.contains(Rights::TRANSFER) || !held.contains(rights) {
            return Err(Error::EACCES);
        }
        if to.len == M || !to.slots.iter().any(|s| matches!(s, Slot::Empty)) {
            return Err(Error::ENOSPC);
        }
        let (obj, _) = self.free(i).ok_or(Error::EBADH)?;
        to.insert(obj, rights).map_err(|_| Error::ENOSPC)
    }

    /// Copies a non-linear capability to `to` (`cap_grant` with `COPY`); linear ones are
    /// `EPERM`.
    pub fn copy_to<const M: usize>(
        &self,
        h: Handle,
        to: &mut CSpace<O, M>,
        rights: Rights,
    ) -> Result<Handle, Error>
    where
        O: Clone,
    {
        let Slot::Full(obj, held) = &self.slots[self.resolve(h)?] else {
            return Err(Error::EBADH);
        };
        if !held.contains(Rights::TRANSFER) || !held.contains(rights) {
            return Err(Error::EACCES);
        }
        if is_linear(obj.cap_type()) {
            return Err(Error::EPERM);
        }
        to.insert(obj.clone(), rights).map_err(|(_, e)| e)
    }

    /// Every capability held: its handle, type and rights, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Handle, CapType, Rights)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| match s {
            Slot::Full(obj, rights) => Some((self.handle(i), obj.cap_type(), *rights)),
            _ => None,
        })
    }

    /// Empties the table in teardown order (`teardown_rank`: lines, devices, MMIO, DMA,
    /// vectors, the rest). Every yielded slot is freed; capabilities not yet yielded when the
    /// iterator is dropped stay in the table.
    pub fn revoke_all(&mut self) -> RevokeAll<'_, O, N> {
        RevokeAll {
            cs: self,
            rank: 0,
            pos: 0,
        }
    }
}

/// A slot emptied for `CSpace::update`'s closure. Dropped without `refill` (the closure
/// unwound), it frees the slot properly: generation bumped (or slot retired), count down.
struct Vacated<'a, O: Capability, const N: usize> {
    cs: Option<&'a mut CSpace<O, N>>,
    i: usize,
}

impl<'a, O: Capability, const N: usize> Vacated<'a, O, N> {
    fn new(cs: &'a mut CSpace<O, N>, i: usize) -> Self {
        Vacated { cs: Some(cs), i }
    }

    /// The closure returned: hand the table back to store the object again.
    fn refill(mut self) -> &'a mut CSpace<O, N> {
        self.cs.take().expect("refilled once")
    }
}

impl<O: Capability, const N: usize> Drop for Vacated<'_, O, N> {
    fn drop(&mut self) {
        if let Some(cs) = self.cs.take() {
            // The slot holds `Empty` and still counts in `len`: free it as `remove` would
            // (`free` of an emptied slot bumps the generation but leaves `len` alone).
            let _ = cs.free(self.i);
            cs.len -= 1;
        }
    }
}

/// Iterator returned by `CSpace::revoke_all`.
pub struct RevokeAll<'a, O: Capability, const N: usize> {
    cs: &'a mut CSpace<O, N>,
    rank: u8,
    pos: usize,
}

impl<O: Capability, const N: usize> Iterator for RevokeAll<'_, O, N> {
    type Item = O;

    fn next(&mut self) -> Option<O> {
        while self.rank <= LAST_RANK {
            while self.pos < N {
                let i = self.pos;
                self.pos += 1;
                if let Slot::Full(obj, _) = &self.cs.slots[i]
                    && teardown_rank(obj.cap_type()) == self.rank
                {
                    return self.cs.free(i).map(|(o, _)| o);
                }
            }
            self.rank += 1;
            self.pos = 0;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[derive(Debug, Clone, PartialEq)]
    struct Obj(CapType, u32);
    impl Capability for Obj {
        fn cap_type(&self) -> CapType {
            self.0
        }
    }

    const ALL: Rights = Rights::all();

    #[test]
    fn insert_get_typed() {
        let mut cs: CSpace<Obj, 4> = CSpace::new();
        let h = cs.insert(Obj(CapType::DmaRegion, 1), ALL).unwrap();
        assert_eq!(cs.get(h, CapType::DmaRegion, Rights::DMA).unwrap().1, 1);
        assert_eq!(
            cs.get(h, CapType::IrqLine, Rights::empty()).unwrap_err(),
            Error::EWRONGTYPE
        );
        let r = cs.insert(Obj(CapType::IrqLine, 2), Rights::IRQ).unwrap();
        assert_eq!(
            cs.get(r, CapType::IrqLine, Rights::ACK).unwrap_err(),
            Error::EACCES
        );
        assert_eq!(cs.info(r).unwrap(), (CapType::IrqLine, Rights::IRQ));
    }

    #[test]
    fn stale_and_forged_handles_fail() {
        let mut cs: CSpace<Obj, 4> = CSpace::new();
        let h = cs.insert(Obj(CapType::File, 1), ALL).unwrap();
        assert_eq!(cs.remove(h).unwrap().1, 1);
        assert_eq!(
            cs.get(h, CapType::File, Rights::empty()).unwrap_err(),
            Error::EBADH
        );
        let h2 = cs.insert(Obj(CapType::File, 2), ALL).unwrap();
        assert_eq!(h2.index(), h.index(), "slot reused");
        assert_ne!(h2, h);
        assert_eq!(
            cs.remove(h).unwrap_err(),
            Error::EBADH,
            "stale handle does not alias"
        );
        let untagged = Handle(h2.raw() & !(1 << 31));
        assert_eq!(cs.info(untagged).unwrap_err(), Error::EBADH);
        assert_eq!(
            cs.info(Handle::new(4, 0).unwrap()).unwrap_err(),
            Error::EBADH
        );
        assert_eq!(
            cs.info(Handle::new(3, 0).unwrap()).unwrap_err(),
            Error::EBADH,
            "empty"
        );
    }

    #[test]
    fn full_table_hands_object_back() {
        let mut cs: CSpace<Obj, 1> = CSpace::new();
        let _h = cs.insert(Obj(CapType::File, 1), ALL).unwrap();
        let (o, e) = cs.insert(Obj(CapType::File, 2), ALL).unwrap_err();
        assert_eq!((o.1, e), (2, Error::ENOSPC));
    }

    #[test]
    fn generation_wrap_retires_slot() {
        let mut cs: CSpace<Obj, 2> = CSpace::new();
        cs.generations[0] = GENERATION_MAX;
        let h = cs.insert(Obj(CapType::File, 1), ALL).unwrap();
        assert_eq!(h.generation(), GENERATION_MAX);
        cs.remove(h).unwrap();
        let h2 = cs.insert(Obj(CapType::File, 2), ALL).unwrap();
        assert_eq!(h2.index(), 1, "slot 0 retired");
        assert_eq!(cs.info(h).unwrap_err(), Error::EBADH);
        assert!(
            cs.insert(Obj(CapType::File, 3), ALL).is_err(),
            "only one usable slot left"
        );
    }

    #[test]
    fn grant_moves_and_checks_rights() {
        let mut a: CSpace<Obj, 4> = CSpace::new();
        let mut b: CSpace<Obj, 4> = CSpace::new();
        let h = a
            .insert(Obj(CapType::IrqLine, 9), Rights::IRQ | Rights::TRANSFER)
            .unwrap();
        assert_eq!(
            a.grant(h, &mut b, Rights::MAP).unwrap_err(),
            Error::EACCES,
            "no upgrade"
        );
        let nh = a.grant(h, &mut b, Rights::IRQ).unwrap();
        assert_eq!(a.info(h).unwrap_err(), Error::EBADH, "old handle stale");
        assert_eq!(b.get(nh, CapType::IrqLine, Rights::IRQ).unwrap().1, 9);
        assert_eq!(
            b.grant(nh, &mut a, Rights::IRQ).unwrap_err(),
            Error::EACCES,
            "no TRANSFER"
        );
        assert!(a.is_empty() && b.len() == 1);
    }

    #[test]
    fn grant_to_full_table_changes_nothing() {
        let mut a: CSpace<Obj, 2> = CSpace::new();
        let mut b: CSpace<Obj, 1> = CSpace::new();
        let _ = b.insert(Obj(CapType::File, 0), ALL).unwrap();
        let h = a.insert(Obj(CapType::DmaRegion, 1), ALL).unwrap();
        assert_eq!(a.grant(h, &mut b, ALL).unwrap_err(), Error::ENOSPC);
        assert!(a.info(h).is_ok());
    }

    #[test]
    fn copy_only_plain_objects() {
        let mut a: CSpace<Obj, 4> = CSpace::new();
        let mut b: CSpace<Obj, 4> = CSpace::new();
        let f = a.insert(Obj(CapType::File, 1), ALL).unwrap();
        let d = a.insert(Obj(CapType::Device, 2), ALL).unwrap();
        let c = a.copy_to(f, &mut b, Rights::READ).unwrap();
        assert!(a.info(f).is_ok() && b.info(c).is_ok());
        assert_eq!(a.copy_to(d, &mut b, ALL).unwrap_err(), Error::EPERM);
    }

    #[test]
    fn update_keeps_handle() {
        let mut cs: CSpace<Obj, 2> = CSpace::new();
        let h = cs.insert(Obj(CapType::IrqLine, 1), ALL).unwrap();
        let r = cs
            .update(h, CapType::IrqLine, Rights::IRQ, |o| (Obj(o.0, o.1 + 1), 5))
            .unwrap();
        assert_eq!((r, cs.get(h, CapType::IrqLine, ALL).unwrap().1), (5, 2));
        cs.restrict(h, Rights::IRQ).unwrap();
        assert_eq!(cs.restrict(h, Rights::ACK).unwrap_err(), Error::EACCES);
    }

    #[test]
    fn update_that_panics_frees_the_slot_and_stales_the_handle() {
        let mut cs: CSpace<Obj, 1> = CSpace::new();
        let h = cs.insert(Obj(CapType::IrqLine, 1), ALL).unwrap();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = cs.update(h, CapType::IrqLine, Rights::IRQ, |_| -> (Obj, ()) {
                panic!("transition failed")
            });
        }));
        assert!(unwound.is_err());
        assert_eq!((cs.len(), cs.info(h).unwrap_err()), (0, Error::EBADH));
        let again = cs.insert(Obj(CapType::IrqLine, 2), ALL).unwrap();
        assert_eq!(again.index(), h.index(), "the one slot is reused");
        assert_ne!(again, h, "with a new generation");
        assert_eq!(
            cs.info(h).unwrap_err(),
            Error::EBADH,
            "the old handle stays stale"
        );
    }

    #[test]
    fn revoke_all_in_teardown_order() {
        let mut cs: CSpace<Obj, 8> = CSpace::new();
        let kinds = [
            CapType::DmaRegion,
            CapType::MsiVector,
            CapType::Device,
            CapType::IrqLine,
            CapType::File,
            CapType::IrqLine,
            CapType::MmioWindow,
        ];
        let hs: Vec<_> = kinds
            .iter()
            .map(|&k| cs.insert(Obj(k, 0), ALL).unwrap())
            .collect();
        let order: Vec<_> = cs.revoke_all().map(|o| o.0).collect();
        assert_eq!(
            order,
            [
                CapType::IrqLine,
                CapType::IrqLine,
                CapType::Device,
                CapType::MmioWindow,
                CapType::DmaRegion,
                CapType::MsiVector,
                CapType::File
            ]
        );
        assert!(cs.is_empty());
        assert!(hs.iter().all(|&h| cs.info(h).is_err()));
    }

    /// `iter` lists every held capability (handle, type, rights) in slot order, and only
    /// those: the kernel's /proc listing and teardown walk it.
    #[test]
    fn iter_lists_what_is_held_in_slot_order() {
        let mut cs: CSpace<Obj, 4> = CSpace::new();
        let a = cs.insert(Obj(CapType::File, 1), ALL).unwrap();
        let b = cs.insert(Obj(CapType::IrqLine, 2), Rights::IRQ).unwrap();
        let c = cs.insert(Obj(CapType::DmaRegion, 3), Rights::DMA).unwrap();
        cs.remove(b).unwrap();
        let listed: Vec<_> = cs.iter().collect();
        assert_eq!(
            listed,
            [
                (a, CapType::File, ALL),
                (c, CapType::DmaRegion, Rights::DMA)
            ]
        );
        assert_eq!(CSpace::<Obj, 4>::new().iter().count(), 0);
    }

    #[test]
    fn is_empty_and_get_mut() {
        let mut cs: CSpace<Obj, 2> = CSpace::new();
        assert!(cs.is_empty());
        let h = cs.insert(Obj(CapType::File, 1), ALL).unwrap();
        assert!(!cs.is_empty());
        cs.get_mut(h, CapType::File, Rights::empty()).unwrap().1 = 7;
        assert_eq!(cs.get(h, CapType::File, ALL).unwrap().1, 7);
    }

    #[test]
    fn grant_to_a_table_whose_only_free_slot_is_retired_changes_nothing() {
        let mut a: CSpace<Obj, 1> = CSpace::new();
        let mut b: CSpace<Obj, 1> = CSpace::new();
        b.generations[0] = GENERATION_MAX;
        let gone = b.insert(Obj(CapType::File, 0), ALL).unwrap();
        b.remove(gone).unwrap(); // retired: `len` is 0, but no slot is free
        let h = a.insert(Obj(CapType::DmaRegion, 1), ALL).unwrap();
        assert_eq!(a.grant(h, &mut b, ALL).unwrap_err(), Error::ENOSPC);
        assert_eq!(
            a.get(h, CapType::DmaRegion, ALL).unwrap().1,
            1,
            "still here"
        );
    }

    #[test]
    fn copy_needs_transfer_and_the_rights_asked_for() {
        let mut a: CSpace<Obj, 4> = CSpace::new();
        let mut b: CSpace<Obj, 4> = CSpace::new();
        let no_transfer = a.insert(Obj(CapType::File, 1), Rights::READ).unwrap();
        assert_eq!(
            a.copy_to(no_transfer, &mut b, Rights::READ).unwrap_err(),
            Error::EACCES
        );
        let f = a
            .insert(Obj(CapType::File, 2), Rights::READ | Rights::TRANSFER)
            .unwrap();
        assert_eq!(
            a.copy_to(f, &mut b, Rights::MAP).unwrap_err(),
            Error::EACCES,
            "no upgrade"
        );
        assert!(b.is_empty());
    }

    #[cfg(feature = "verification-hooks")]
    #[test]
    fn with_generations_starts_slots_there_clamped() {
        let mut cs: CSpace<Obj, 2> = CSpace::with_generations([5, GENERATION_MAX + 3]);
        let h = cs.insert(Obj(CapType::File, 1), ALL).unwrap();
        assert_eq!(h.generation(), 5);
        let h2 = cs.insert(Obj(CapType::File, 2), ALL).unwrap();
        assert_eq!(h2.generation(), GENERATION_MAX);
    }
}
