//! MSI vectors: an allocator per MSI frame and the vector capability it mints.
//!
//! Devices must never share a vector by accident, so every MSI target (a GICv2m frame's SPI
//! range from `MSI_TYPER`, or the ITS's LPI range) gets one `VectorAllocator`, a lock-free
//! bitmap that cannot hand out a vector twice, and a vector is returned only by dropping its
//! `MsiVector`. An allocator is carved from the `IrqControl` that owns those INTIDs
//! (`IrqControl::msi_vectors`, once per INTID), so no second allocator over the same range
//! can exist, and that control mints lines only for its own allocators' vectors. The
//! allocator works from any context without a lock.

use core::fmt;

use abi::Error;

use crate::sync::{AtomicU64, Ordering};

/// Largest range one allocator covers (13 LPI ID bits: 8192 LPIs; a v2m frame has fewer).
#[cfg(not(any(loom, kani)))]
pub const MAX_VECTORS: usize = 8192;
/// Largest range one allocator covers (loom and Kani: two bitmap words, enough to cross
/// one). The search touches only the words of its range; 126 more would only be state the
/// model checker carries through every step.
#[cfg(any(loom, kani))]
pub const MAX_VECTORS: usize = 128;
const WORDS: usize = MAX_VECTORS / 64;

/// An MSI target's vector range, as its hardware describes it: what
/// `IrqControl::msi_vectors` turns into an allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiRange {
    /// First INTID.
    pub base: u32,
    /// Number of vectors (at most [`MAX_VECTORS`]).
    pub count: u32,
    /// Doorbell physical address (`MSI_SETSPI_NS` or `GITS_TRANSLATER`).
    pub doorbell: u64,
    /// What the data payload carries.
    pub data: MsiData,
}

/// What the MSI data payload carries for this MSI target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsiData {
    /// The INTID itself (GICv2m: the SPI number written to `MSI_SETSPI_NS`).
    Intid,
    /// The offset from the range base (GICv3 ITS: the EventID mapped to the LPI by MAPTI).
    Index,
}

/// The address/data pair a device writes to raise the vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiMessage {
    /// Doorbell physical address (`MSI_SETSPI_NS` or `GITS_TRANSLATER`).
    pub address: u64,
    /// Data payload.
    pub data: u32,
}

/// An all-free bitmap (a constant array: no loop for a model checker to unwind).
#[cfg(not(loom))]
fn empty_bitmap() -> [AtomicU64; WORDS] {
    [const { AtomicU64::new(0) }; WORDS]
}

/// An all-free bitmap (loom: its atomics are not `const`).
#[cfg(loom)]
fn empty_bitmap() -> [AtomicU64; WORDS] {
    core::array::from_fn(|_| AtomicU64::new(0))
}

/// How `alloc` claims a free bit it saw: set `bit` in `word` if it still reads `seen`,
/// otherwise hand back what it reads now.
pub type ClaimBit = fn(word: &AtomicU64, seen: u64, bit: u64) -> Result<(), u64>;

/// The real claim: one compare-exchange, so two allocators racing for one bit cannot both
/// win it (the loser retries from the word's new value).
fn claim_bit(word: &AtomicU64, seen: u64, bit: u64) -> Result<(), u64> {
    word.compare_exchange_weak(seen, seen | bit, Ordering::AcqRel, Ordering::Relaxed)
        .map(drop)
}

/// Hands out INTIDs in `[base, base + count)`, each at most once until returned.
pub struct VectorAllocator {
    base: u32,
    count: u32,
    doorbell: u64,
    data: MsiData,
    /// The `IrqControl` this range was carved from (its address): the only one that mints
    /// lines for these vectors.
    control: usize,
    release: Option<fn(u32)>,
    bits: [AtomicU64; WORDS],
}

impl VectorAllocator {
    /// An allocator over `range` for the control identified by `control`; `EINVAL` if
    /// `count` exceeds `MAX_VECTORS` or the range overflows `u32`. Only
    /// `IrqControl::msi_vectors` makes one.
    pub(crate) fn new(range: MsiRange, control: usize) -> Result<Self, Error> {
        let MsiRange {
            base,
            count,
            doorbell,
            data,
        } = range;
        if count as usize > MAX_VECTORS || base.checked_add(count).is_none() {
            return Err(Error::EINVAL);
        }
        Ok(VectorAllocator {
            base,
            count,
            doorbell,
            data,
            control,
            release: None,
            bits: empty_bitmap(),
        })
    }

    /// Calls `hook(intid)` whenever a vector is returned, before it can be handed out
    /// again (the ITS unmaps the event there: DISCARD).
    #[must_use]
    pub fn with_release_hook(mut self, hook: fn(u32)) -> Self {
        self.release = Some(hook);
        self
    }

    /// First INTID of the range.
    pub fn base(&self) -> u32 {
        self.base
    }

    /// Number of vectors in the range.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Allocates the lowest free vector; `ENOSPC` when all are in use.
    pub fn alloc(&'static self) -> Result<MsiVector, Error> {
        self.alloc_claiming(claim_bit)
    }

    /// `alloc` with the bit-claiming step replaced, so a model can run the real search
    /// loop with a broken claim (a load-then-store instead of a compare-exchange) and show
    /// the check catches it. Only with feature `verification-hooks`.
    #[cfg(feature = "verification-hooks")]
    pub fn alloc_with_claim(&'static self, claim: ClaimBit) -> Result<MsiVector, Error> {
        self.alloc_claiming(claim)
    }

    /// Marks bitmap word `word` as `bits` (vectors held elsewhere), so a model checker can
    /// start next to a word boundary instead of after 64 allocations. Only with feature
    /// `verification-hooks`.
    #[cfg(feature = "verification-hooks")]
    pub fn preset_for_model(&self, word: usize, bits: u64) {
        self.bits[word].store(bits, Ordering::Relaxed);
    }

    fn alloc_claiming(&'static self, claim: ClaimBit) -> Result<MsiVector, Error> {
        let words = (self.count as usize).div_ceil(64);
        for (w, word) in self.bits[..words].iter().enumerate() {
            let mut cur = word.load(Ordering::Relaxed);
            loop {
                let bit = (!cur).trailing_zeros() as usize;
                let index = w * 64 + bit;
                if bit == 64 || index >= self.count as usize {
                    break;
                }
                match claim(word, cur, 1 << bit) {
                    Ok(()) => {
                        return Ok(MsiVector {
                            alloc: self,
                            index: index as u32,
                        });
                    }
                    Err(now) => cur = now,
                }
            }
        }
        Err(Error::ENOSPC)
    }

    /// Vectors currently handed out.
    pub fn in_use(&self) -> usize {
        self.bits
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones() as usize)
            .sum()
    }

    /// Whether the vector at `index` (offset from base) is allocated.
    pub fn is_allocated(&self, index: u32) -> bool {
        let (w, b) = (index as usize / 64, index % 64);
        index < self.count && self.bits[w].load(Ordering::Relaxed) & (1 << b) != 0
    }

    fn free(&self, index: u32) {
        let (w, b) = (index as usize / 64, index % 64);
        self.bits[w].fetch_and(!(1 << b), Ordering::Release);
    }
}

/// One allocated MSI vector: an INTID plus the message that raises it.
///
/// Not `Clone`. Dropping it returns the vector to its allocator; bind it to a line with
/// `IrqControl::mint_msi`, which then owns it.
#[must_use = "dropping a vector returns it to the allocator"]
pub struct MsiVector {
    alloc: &'static VectorAllocator,
    index: u32,
}

impl MsiVector {
    /// The control whose allocator handed this vector out.
    pub(crate) fn control(&self) -> usize {
        self.alloc.control
    }

    /// The SPI or LPI INTID.
    pub fn intid(&self) -> u32 {
        self.alloc.base + self.index
    }

    /// The doorbell address and data to program into the device's MSI/MSI-X entry.
    pub fn message(&self) -> MsiMessage {
        let data = match self.alloc.data {
            MsiData::Intid => self.intid(),
            MsiData::Index => self.index,
        };
        MsiMessage {
            address: self.alloc.doorbell,
            data,
        }
    }
}

impl Drop for MsiVector {
    fn drop(&mut self) {
        if let Some(hook) = self.alloc.release {
            hook(self.intid());
        }
        self.alloc.free(self.index);
    }
}

impl fmt::Debug for MsiVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsiVector")
            .field("intid", &self.intid())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{FakeGic, leak};
    use crate::irq::{ControlToken, IrqControl, Owner, Trigger};
    use std::vec::Vec;

    fn control<const N: usize>(base: u32) -> &'static IrqControl<N> {
        let gic = leak(FakeGic::new());
        leak(IrqControl::new(ControlToken::take(gic).unwrap(), base))
    }

    fn range(base: u32, count: u32, doorbell: u64, data: MsiData) -> MsiRange {
        MsiRange {
            base,
            count,
            doorbell,
            data,
        }
    }

    fn v2m(count: u32) -> &'static VectorAllocator {
        let ctl = control::<256>(32);
        leak(
            ctl.msi_vectors(range(80, count, 0x0802_0040, MsiData::Intid))
                .unwrap(),
        )
    }

    #[test]
    fn allocates_each_vector_once_then_exhausts() {
        let a = v2m(70);
        let vs: Vec<_> = (0..70).map(|_| a.alloc().unwrap()).collect();
        let mut ids: Vec<_> = vs.iter().map(MsiVector::intid).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 70);
        assert!(ids.iter().all(|&i| (80..150).contains(&i)));
        assert_eq!(a.alloc().unwrap_err(), Error::ENOSPC);
        assert_eq!(a.in_use(), 70);
    }

    /// An allocator reports the range it was carved with, and a vector shows its INTID.
    #[test]
    fn range_and_vectors_show_their_intids() {
        let a = v2m(70);
        assert_eq!((a.base(), a.count()), (80, 70));
        let v = a.alloc().unwrap();
        assert_eq!(std::format!("{v:?}"), "MsiVector { intid: 80 }");
    }

    #[test]
    fn drop_returns_the_vector() {
        let a = v2m(2);
        let x = a.alloc().unwrap();
        let y = a.alloc().unwrap();
        let freed = x.intid();
        drop(x);
        assert!(!a.is_allocated(freed - 80));
        let z = a.alloc().unwrap();
        assert_eq!(z.intid(), freed);
        assert_ne!(z.intid(), y.intid());
    }

    #[test]
    fn message_encodings() {
        let a = v2m(4);
        let v = a.alloc().unwrap();
        assert_eq!(
            v.message(),
            MsiMessage {
                address: 0x0802_0040,
                data: 80
            }
        );
        let lpis = control::<8192>(8192);
        let its = leak(
            lpis.msi_vectors(range(8192, 8192, 0x0808_0040, MsiData::Index))
                .unwrap(),
        );
        let _first = its.alloc().unwrap();
        let l = its.alloc().unwrap();
        assert_eq!((l.intid(), l.message().data), (8193, 1));
    }

    /// `is_allocated` answers for any index, held or not: past the range it is false, also
    /// for a range of `MAX_VECTORS` whose bitmap has no word for index `count`.
    #[test]
    fn is_allocated_is_false_past_the_range() {
        let lpis = control::<8192>(8192);
        let r = range(8192, MAX_VECTORS as u32, 0x0808_0040, MsiData::Index);
        let full = leak(lpis.msi_vectors(r).unwrap());
        let v = full.alloc().unwrap();
        assert!(full.is_allocated(0) && !full.is_allocated(1));
        for past in [MAX_VECTORS as u32, MAX_VECTORS as u32 + 64, u32::MAX] {
            assert!(!full.is_allocated(past), "index {past}");
        }
        let small = v2m(3);
        let held: Vec<_> = (0..3).map(|_| small.alloc().unwrap()).collect();
        assert!((0..3).all(|i| small.is_allocated(i)) && !small.is_allocated(3));
        drop((v, held));
    }

    #[test]
    fn release_hook_runs_before_the_vector_is_free_again() {
        use std::sync::Mutex;
        static SEEN: Mutex<Vec<(u32, bool)>> = Mutex::new(Vec::new());
        static ALLOC: std::sync::OnceLock<&'static VectorAllocator> = std::sync::OnceLock::new();
        fn hook(intid: u32) {
            let still_held = ALLOC.get().unwrap().is_allocated(intid - 8192);
            SEEN.lock().unwrap().push((intid, still_held));
        }
        let ctl = control::<16>(8192);
        let a = leak(
            ctl.msi_vectors(range(8192, 16, 0x0809_0040, MsiData::Index))
                .unwrap()
                .with_release_hook(hook),
        );
        assert!(ALLOC.set(a).is_ok());
        let v = a.alloc().unwrap();
        let w = a.alloc().unwrap();
        drop(w);
        drop(v);
        assert_eq!(*SEEN.lock().unwrap(), [(8193, true), (8192, true)]);
        assert_eq!(a.in_use(), 0);
    }

    #[test]
    fn rejects_bad_ranges() {
        let ctl = control::<8192>(0);
        let r = |base, count| range(base, count, 0, MsiData::Intid);
        assert_eq!(ctl.msi_vectors(r(0, 8193)).err(), Some(Error::EINVAL));
        assert_eq!(ctl.msi_vectors(r(u32::MAX, 2)).err(), Some(Error::EINVAL));
        assert_eq!(
            ctl.msi_vectors(r(8190, 4)).err(),
            Some(Error::EINVAL),
            "past the control"
        );
        let empty = leak(ctl.msi_vectors(r(64, 0)).unwrap());
        assert_eq!(empty.alloc().unwrap_err(), Error::ENOSPC);
    }

    #[test]
    fn a_range_is_carved_once_and_never_over_a_wired_line() {
        let ctl = control::<64>(32);
        let r = |base, count| range(base, count, 0x0802_0040, MsiData::Intid);
        let a = leak(ctl.msi_vectors(r(40, 8)).unwrap());
        assert_eq!(
            ctl.msi_vectors(r(40, 8)).err(),
            Some(Error::EBUSY),
            "same range"
        );
        assert_eq!(
            ctl.msi_vectors(r(44, 8)).err(),
            Some(Error::EBUSY),
            "overlap"
        );
        let wired = ctl.mint(60, Trigger::Level, Owner(1)).unwrap();
        assert_eq!(
            ctl.msi_vectors(r(56, 8)).err(),
            Some(Error::EBUSY),
            "over a wired line"
        );
        let b = leak(ctl.msi_vectors(r(48, 8)).unwrap());
        assert!(
            ctl.mint(52, Trigger::Edge, Owner(1)).is_err(),
            "reserved INTIDs are not wired lines"
        );
        drop(wired);
        let (va, vb) = (a.alloc().unwrap(), b.alloc().unwrap());
        assert_eq!((va.intid(), vb.intid()), (40, 48));
        let line = ctl.mint_msi(va, Owner(1)).unwrap();
        assert_eq!(line.intid(), 40);
        // A vector from another control's allocator is refused, and handed back.
        let other = control::<64>(32);
        let foreign = leak(other.msi_vectors(r(48, 8)).unwrap()).alloc().unwrap();
        let (back, e) = ctl.mint_msi(foreign, Owner(1)).unwrap_err();
        assert_eq!((back.intid(), e), (48, Error::EINVAL));
        drop(vb);
    }

    #[test]
    fn concurrent_allocation_never_duplicates() {
        let a = v2m(256 - 48);
        let got: Vec<Vec<u32>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let vs: Vec<_> = (0..52).map(|_| a.alloc().unwrap()).collect();
                        let ids = vs.iter().map(MsiVector::intid).collect();
                        core::mem::forget(vs);
                        ids
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all: Vec<u32> = got.into_iter().flatten().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 208);
    }
}
