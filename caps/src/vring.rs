//! Split virtqueues (virtio 1.2 §2.7): the ring's type states and validated completions.
//!
//! The used ring is written by the device and therefore untrusted: an `id` out of range or not
//! in flight, a `len` past the posted buffer, or a used `idx` running ahead by more than the
//! queue size must be counted and dropped, never panic or index past a buffer. The format
//! itself (layout, wrap-around arithmetic, the checks, `RingMemory`) is in `vring/format.rs`,
//! pure functions proved and tested on their own; this file is the `Vring` capability:
//! `Vring<Armed|Suppressed|Polled>` records whether device interrupts are on, only a ring
//! whose interrupts are off is drained (see `napi.rs`), and buffers move between
//! `DmaRegion<Cpu>` and `DmaRegion<Device>` only through it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::marker::PhantomData;

use abi::Error;

use crate::dma::{Cpu, Device, DmaDevice, DmaHal, DmaIdle, DmaRegion, TransferDone};
use crate::irq::Armed;
use crate::sealed::Sealed;

mod format;
pub use format::*;

/// Ring interrupt state. Sealed.
pub trait RingState: Sealed {}
/// Device interrupts suppressed (`VRING_AVAIL_F_NO_INTERRUPT`, or `used_event` kept behind)
/// for one NAPI round. A `Vring<Suppressed>` exists only inside a `napi::Round` or
/// `napi::Quiesce`, beside the masked line it signals on.
#[derive(Debug)]
pub struct Suppressed;
impl Sealed for Suppressed {}
impl RingState for Suppressed {}
/// Device interrupts suppressed for good: the ring is drained by polling only (a TX ring
/// reclaimed before each send, an RX ring in polling mode). Never armed again, and never
/// part of a `napi::NapiLine`, so no line waits for an interrupt it will not raise.
#[derive(Debug)]
pub struct Polled;
impl Sealed for Polled {}
impl RingState for Polled {}
/// Device interrupts enabled (reuses the line's `Armed` marker).
impl RingState for Armed {}

/// The states whose used ring the driver may drain: device interrupts are off, so a
/// completion popped here never races an interrupt the driver would also handle. Sealed.
pub trait Drainable: RingState {}
impl Drainable for Suppressed {}
impl Drainable for Polled {}

/// Which way the device uses a posted buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufDir {
    /// The device reads it (TX).
    DeviceReads,
    /// The device writes it (RX).
    DeviceWrites,
}

struct InFlight<H: DmaHal + 'static> {
    len: u32,
    cookie: u64,
    region: DmaRegion<H, Device>,
}

/// A buffer the device returned, validated. `len <= region.len()` always holds.
#[derive(Debug)]
pub struct Completion<H: DmaHal + 'static> {
    /// The buffer, back in CPU hands.
    pub region: DmaRegion<H, Cpu>,
    /// Bytes the device wrote (0 for device-read buffers).
    pub len: u32,
    /// The cookie given to `post`.
    pub cookie: u64,
}

impl<H: DmaHal + 'static> Completion<H> {
    /// The bytes the device wrote.
    pub fn data(&self) -> &[u8] {
        let b = self.region.bytes();
        &b[..(self.len as usize).min(b.len())]
    }
}

/// A used element that failed validation; count it. If the descriptor was in flight (only
/// its `len` was bad) its buffer is reclaimed unread in `reclaimed` with its cookie.
#[derive(Debug)]
pub struct Rejected<H: DmaHal + 'static> {
    /// What was wrong.
    pub error: UsedError,
    /// The reclaimed buffer and cookie, if any.
    pub reclaimed: Option<(DmaRegion<H, Cpu>, u64)>,
}

/// One split virtqueue with `Q` entries, in interrupt state `S`.
///
/// Single-descriptor buffers only (see docs/caps.md). Not `Clone`. Dropping a ring drops the
/// in-flight `DmaRegion<Device>`s, which quarantines them (the device may still write).
#[must_use]
pub struct Vring<S: RingState, M: RingMemory, H: DmaHal + 'static, const Q: usize> {
    core: Core<M, H, Q>,
    _state: PhantomData<S>,
}

struct Core<M: RingMemory, H: DmaHal + 'static, const Q: usize> {
    mem: M,
    layout: VringLayout,
    event_idx: bool,
    avail_idx: u16,
    kicked_at: u16,
    last_used: u16,
    broken: bool,
    /// The INTID of the line this ring was bound to by `napi::NapiLine::new`, if any.
    line: Option<u32>,
    /// The device the ring belongs to (`DmaDevice::id`).
    device: u64,
    /// What each descriptor carries while the device has it. On the heap, as is `free`:
    /// every type-state transition moves the ring by value, and a few words move much
    /// faster than `Q` slots (16 KiB at `Q` = 256).
    in_flight: Box<[Option<InFlight<H>>]>,
    free: Box<[u16]>,
    nfree: usize,
}

impl<M: RingMemory, H: DmaHal + 'static, const Q: usize> Vring<Armed, M, H, Q> {
    /// Lays out an empty queue of `device` in `mem` (zeroing indices and flags), interrupts
    /// enabled. `event_idx` says whether `VIRTIO_F_EVENT_IDX` was negotiated. `EINVAL` if `Q`
    /// is not a valid queue size or `mem` is too small.
    pub fn new(mem: M, event_idx: bool, device: &DmaDevice) -> Result<Self, Error> {
        Self::with_layout(mem, VringLayout::new(Q)?, event_idx, device)
    }

    /// As [`Vring::new`] with an explicit layout from [`VringLayout::with_used_align`] (the
    /// legacy interface's 4096-aligned used ring). `EINVAL` unless `layout.size == Q` and the
    /// layout is one `with_used_align` produces.
    pub fn with_layout(
        mem: M,
        layout: VringLayout,
        event_idx: bool,
        device: &DmaDevice,
    ) -> Result<Self, Error> {
        let align = 1 << layout.used.trailing_zeros().min(16);
        if usize::from(layout.size) != Q || VringLayout::with_used_align(Q, align) != Ok(layout) {
            return Err(Error::EINVAL);
        }
        if mem.len() < layout.total {
            return Err(Error::EINVAL);
        }
        for off in [layout.avail, layout.avail + 2, layout.used, layout.used + 2] {
            mem.write_u16(off, 0);
        }
        mem.write_u16(layout.used_event(), 0);
        mem.fence(Fence::Write);
        let in_flight = boxed_slice(Q, |_| None)?;
        let free = boxed_slice(Q, |i| (Q - 1 - i) as u16)?;
        let core = Core {
            mem,
            layout,
            event_idx,
            avail_idx: 0,
            kicked_at: 0,
            last_used: 0,
            broken: false,
            line: None,
            device: device.id(),
            in_flight,
            free,
            nfree: Q,
        };
        Ok(Vring {
            core,
            _state: PhantomData,
        })
    }

    /// Suppresses device interrupts for good: from here the ring is drained by polling only
    /// (`pop_used` on `Vring<Polled>`). For a ring nobody waits on an interrupt for; an
    /// interrupt-driven ring lives in a `napi::NapiLine` and suppresses through `napi::take`.
    pub fn into_polled(self) -> Vring<Polled, M, H, Q> {
        self.suppress().retype()
    }

    /// `Armed` -> `Suppressed`: set `VRING_AVAIL_F_NO_INTERRUPT` (without event index);
    /// with event index, park `used_event` one behind what the driver consumed
    /// ([`Core::park_used_event`]).
    pub(crate) fn suppress(self) -> Vring<Suppressed, M, H, Q> {
        let mut ring = self;
        if ring.core.event_idx {
            ring.core.park_used_event();
        } else {
            let c = &ring.core;
            c.mem.write_u16(c.layout.avail, VRING_AVAIL_F_NO_INTERRUPT);
        }
        ring.retype()
    }
}

impl<S: Drainable, M: RingMemory, H: DmaHal + 'static, const Q: usize> Vring<S, M, H, Q> {
    /// Pops one used element: `None` when nothing is pending (or the ring is broken),
    /// otherwise a validated completion or a rejection to count.
    pub fn pop_used(&mut self) -> Option<Result<Completion<H>, Rejected<H>>> {
        let popped = self.core.pop_used();
        if popped.is_some() && self.core.event_idx {
            self.core.park_used_event();
        }
        popped
    }
}

impl<M: RingMemory, H: DmaHal + 'static, const Q: usize> Vring<Suppressed, M, H, Q> {
    /// Linux `virtqueue_enable_cb`: re-enable device interrupts, full fence, and recheck the
    /// used ring. `Err` (still suppressed) if work arrived in between.
    pub(crate) fn enable_and_check(self) -> Result<Vring<Armed, M, H, Q>, Self> {
        let c = &self.core;
        if c.event_idx {
            c.mem.write_u16(c.layout.used_event(), c.last_used);
        } else {
            c.mem.write_u16(c.layout.avail, 0);
        }
        c.mem.fence(Fence::Full);
        if self.core.has_pending() {
            if !self.core.event_idx {
                let c = &self.core;
                c.mem.write_u16(c.layout.avail, VRING_AVAIL_F_NO_INTERRUPT);
            }
            self.core.mem.fence(Fence::Write);
            return Err(self);
        }
        Ok(self.retype())
    }
}

/// `n` values `f(0)`, … on the heap; `ENOMEM` if the allocation fails.
fn boxed_slice<T>(n: usize, f: impl FnMut(usize) -> T) -> Result<Box<[T]>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::ENOMEM)?;
    v.extend((0..n).map(f));
    Ok(v.into_boxed_slice())
}

impl<S: RingState, M: RingMemory, H: DmaHal + 'static, const Q: usize> Vring<S, M, H, Q> {
    fn retype<T: RingState>(self) -> Vring<T, M, H, Q> {
        Vring {
            core: self.core,
            _state: PhantomData,
        }
    }

    /// Posts one buffer; the region moves to the device. Returns the descriptor id. On error
    /// (`ENOSPC`: queue full, `EBADSTATE`: ring broken, `EINVAL`: too long) the region is
    /// handed back untouched.
    pub fn post(
        &mut self,
        region: DmaRegion<H, Cpu>,
        dir: BufDir,
        cookie: u64,
    ) -> Result<u16, (DmaRegion<H, Cpu>, Error)> {
        let len = region.len();
        self.core.post(region, len, dir, cookie)
    }

    /// Posts only the first `len` bytes of a region (a TX frame in a fixed-size buffer): the
    /// descriptor says `len`, and a completion may claim at most `len`. `EINVAL` if `len` is
    /// 0 or past the region; otherwise as [`Vring::post`].
    pub fn post_prefix(
        &mut self,
        region: DmaRegion<H, Cpu>,
        len: usize,
        dir: BufDir,
        cookie: u64,
    ) -> Result<u16, (DmaRegion<H, Cpu>, Error)> {
        if len == 0 || len > region.len() {
            return Err((region, Error::EINVAL));
        }
        self.core.post(region, len, dir, cookie)
    }

    /// Linux `virtqueue_kick_prepare`: whether the device must be notified of buffers posted
    /// since the last call.
    pub fn kick_needed(&mut self) -> bool {
        self.core.kick_needed()
    }

    /// Whether the device published completions not yet popped.
    pub fn has_pending(&self) -> bool {
        self.core.has_pending()
    }

    /// Descriptors posted and not yet completed.
    pub fn in_flight(&self) -> usize {
        Q - self.core.nfree
    }

    /// Ends the ring once its device does no DMA any more (a virtio device reset whose status
    /// read back 0, virtio 1.2 §2.4): `device` is read here, and must be the device the ring
    /// was made for. Then every buffer still in flight comes back to the CPU (fence +
    /// invalidate) and is freed, instead of being quarantined as a plain drop would, and the
    /// ring memory learns it may be freed too ([`RingMemory::device_stopped`]). Returns how
    /// many buffers were freed; `Err` hands the ring back if the device is another one or
    /// still reads busy (dropping it then quarantines everything).
    pub fn release<D: DmaIdle + ?Sized>(mut self, device: &D) -> Result<usize, Self> {
        let Some(done) = TransferDone::read(device).filter(|d| d.device() == self.core.device)
        else {
            return Err(self);
        };
        self.core.mem.device_stopped(&done);
        let mut freed = 0;
        for slot in self.core.in_flight.iter_mut() {
            if let Some(f) = slot.take() {
                drop(f.region.into_cpu());
                freed += 1;
            }
        }
        Ok(freed)
    }

    /// The identity of the device this ring belongs to (`DmaDevice::id`).
    pub fn device(&self) -> u64 {
        self.core.device
    }

    /// The INTID of the line `napi::NapiLine::new` bound this ring to, if any.
    pub fn bound_line(&self) -> Option<u32> {
        self.core.line
    }

    /// Records the line this ring signals on; a ring is bound once.
    pub(crate) fn bind(&mut self, intid: u32) -> Result<(), Option<u32>> {
        match self.core.line {
            None => {
                self.core.line = Some(intid);
                Ok(())
            }
            other => Err(other),
        }
    }

    /// Whether the device corrupted the used index (the device must be reset).
    pub fn is_broken(&self) -> bool {
        self.core.broken
    }

    /// The layout (offsets of descriptor table, avail and used ring).
    pub fn layout(&self) -> VringLayout {
        self.core.layout
    }

    /// Bus addresses of (descriptor table, avail ring, used ring) for the transport.
    pub fn addresses(&self) -> (u64, u64, u64) {
        let (base, l) = (self.core.mem.paddr(), &self.core.layout);
        (
            base + l.desc as u64,
            base + l.avail as u64,
            base + l.used as u64,
        )
    }
}

impl<M: RingMemory, H: DmaHal + 'static, const Q: usize> Core<M, H, Q> {
    fn post(
        &mut self,
        region: DmaRegion<H, Cpu>,
        len: usize,
        dir: BufDir,
        cookie: u64,
    ) -> Result<u16, (DmaRegion<H, Cpu>, Error)> {
        if self.broken {
            return Err((region, Error::EBADSTATE));
        }
        let Ok(len) = u32::try_from(len) else {
            return Err((region, Error::EINVAL));
        };
        if self.nfree == 0 {
            return Err((region, Error::ENOSPC));
        }
        self.nfree -= 1;
        let id = self.free[self.nfree];
        let (paddr, l) = (region.paddr(), self.layout);
        let flags = if dir == BufDir::DeviceWrites {
            VIRTQ_DESC_F_WRITE
        } else {
            0
        };
        let d = l.desc + 16 * id as usize;
        self.mem.write_u64(d, paddr);
        self.mem.write_u32(d + 8, len);
        self.mem.write_u16(d + 12, flags);
        self.mem.write_u16(d + 14, 0);
        let region = region.into_device();
        self.in_flight[id as usize] = Some(InFlight {
            len,
            cookie,
            region,
        });
        self.mem
            .write_u16(l.avail_ring(ring_slot(self.avail_idx, l.size)), id);
        // virtio 1.2 §2.7.13.3: the ring entry must be visible before the index.
        self.mem.fence(Fence::Write);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.mem.write_u16(l.avail + 2, self.avail_idx);
        Ok(id)
    }

    fn kick_needed(&mut self) -> bool {
        let (old, new) = (self.kicked_at, self.avail_idx);
        self.kicked_at = new;
        if old == new {
            return false;
        }
        // The index write must be visible before we read the device's suppression state.
        self.mem.fence(Fence::Full);
        if self.event_idx {
            vring_need_event(self.mem.read_u16(self.layout.avail_event()), new, old)
        } else {
            self.mem.read_u16(self.layout.used) & VRING_USED_F_NO_NOTIFY == 0
        }
    }

    /// With event index, interrupts stay off only while `used_event` is outside the range
    /// of indices the device's next write covers (virtio 1.2 §2.7.10). A `used_event` left
    /// where it was would be crossed again 65 536 completions later (or at once, on a ring
    /// never armed: it starts at 0), one stray interrupt each time, on a line shared with
    /// other queues. One behind `last_used` it never is: the device's index is at least
    /// `last_used` and at most a queue ahead. Kept there after every pop.
    fn park_used_event(&mut self) {
        self.mem
            .write_u16(self.layout.used_event(), self.last_used.wrapping_sub(1));
    }

    fn has_pending(&self) -> bool {
        !self.broken && self.mem.read_u16(self.layout.used + 2) != self.last_used
    }

    fn pop_used(&mut self) -> Option<Result<Completion<H>, Rejected<H>>> {
        if self.broken {
            return None;
        }
        let used_idx = self.mem.read_u16(self.layout.used + 2);
        match check_used_idx(used_idx, self.last_used, self.layout.size) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(error) => {
                self.broken = true;
                return Some(Err(Rejected {
                    error,
                    reclaimed: None,
                }));
            }
        }
        // Read the index before the element it covers (virtio 1.2 §2.7.14).
        self.mem.fence(Fence::Read);
        let e = self
            .layout
            .used_ring(ring_slot(self.last_used, self.layout.size));
        let (id, len) = (self.mem.read_u32(e), self.mem.read_u32(e + 4));
        self.last_used = self.last_used.wrapping_add(1);
        let in_flight = &self.in_flight;
        let checked = check_used_elem(id, len, self.layout.size, |i| {
            in_flight[i as usize].as_ref().map(|f| f.len)
        });
        Some(match checked {
            Ok(id) => {
                let f = self.take(id);
                Ok(Completion {
                    region: f.region.into_cpu(),
                    len,
                    cookie: f.cookie,
                })
            }
            Err(error @ UsedError::LenTooLong { id, .. }) => {
                let f = self.take(id as u16);
                Err(Rejected {
                    error,
                    reclaimed: Some((f.region.into_cpu(), f.cookie)),
                })
            }
            Err(error) => Err(Rejected {
                error,
                reclaimed: None,
            }),
        })
    }

    /// Removes an id known to be in flight and returns it to the free stack.
    fn take(&mut self, id: u16) -> InFlight<H> {
        let f = self.in_flight[id as usize]
            .take()
            .expect("validated as in flight");
        self.free[self.nfree] = id;
        self.nfree += 1;
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dma::DmaPool;
    use crate::fakes::{FakeDmaEngine, FakeDmaHal, FakeRingMem, FakeVirtqueueDevice, leak};
    use std::vec::Vec;

    type Ring<S> = Vring<S, FakeRingMem, FakeDmaHal, 8>;

    fn setup(event_idx: bool) -> (Ring<Armed>, FakeVirtqueueDevice, DmaPool<FakeDmaHal>) {
        let layout = VringLayout::new(8).unwrap();
        let mem = FakeRingMem::new(layout.total, 0x9000_0000);
        let dev = FakeVirtqueueDevice::new(mem.clone(), layout, event_idx);
        let ring = Vring::new(mem, event_idx, &DmaDevice::new()).unwrap();
        (
            ring,
            dev,
            DmaPool::new(leak(FakeDmaHal::new(0x4000_0000)), u64::MAX),
        )
    }

    #[test]
    fn post_complete_round_trip_many_wraps() {
        let (ring, mut dev, pool) = setup(false);
        let mut ring = ring.into_polled();
        for round in 0..20_000u32 {
            let r = pool.alloc(64, 8).unwrap();
            let id = ring
                .post(r, BufDir::DeviceWrites, u64::from(round))
                .unwrap();
            let (got, _, len, flags) = dev.consume().unwrap();
            assert_eq!((got, len, flags), (id, 64, VIRTQ_DESC_F_WRITE));
            dev.complete(u32::from(id), round % 65);
            let c = ring.pop_used().unwrap().unwrap();
            assert_eq!(
                (c.len, c.cookie, c.data().len()),
                (round % 65, u64::from(round), 64.min(round as usize % 65))
            );
            assert!(ring.pop_used().is_none());
        }
        assert_eq!(ring.in_flight(), 0);
    }

    #[test]
    fn release_after_reset_frees_in_flight_buffers() {
        for release in [true, false] {
            let layout = VringLayout::new(8).unwrap();
            let mem = FakeRingMem::new(layout.total, 0x9000_0000);
            let mut dev = FakeVirtqueueDevice::new(mem.clone(), layout, false);
            let (nic, other) = (FakeDmaEngine::new(), FakeDmaEngine::new());
            let mut ring: Ring<Armed> = Vring::new(mem.clone(), false, nic.device()).unwrap();
            let hal = leak(FakeDmaHal::new(0x4000_0000));
            let pool = DmaPool::new(hal, u64::MAX);
            for _ in 0..5 {
                ring.post(pool.alloc(16, 8).unwrap(), BufDir::DeviceWrites, 0)
                    .unwrap();
            }
            let _ = dev.consume();
            nic.set_busy(true);
            let ring = ring.release(&nic).expect_err("not reset yet: refused");
            let ring = ring.release(&other).expect_err("another device's reset");
            assert_eq!(hal.from_device_count(), 0);
            if release {
                nic.set_busy(false);
                assert_eq!(ring.release(&nic).ok(), Some(5));
                assert_eq!(hal.quarantined(), 0, "released, not quarantined");
                assert_eq!(hal.from_device_count(), 5, "each synced for the CPU");
                assert!(mem.device_stopped_seen(), "the ring memory was told too");
            } else {
                // Without the proof, dropping the ring quarantines what it holds.
                drop(ring);
                assert_eq!(hal.quarantined(), 5);
                assert!(!mem.device_stopped_seen());
            }
        }
    }

    #[test]
    fn full_queue_refuses_and_hands_region_back() {
        let (mut ring, _dev, pool) = setup(false);
        for _ in 0..8 {
            ring.post(pool.alloc(8, 8).unwrap(), BufDir::DeviceReads, 0)
                .unwrap();
        }
        let (back, e) = ring
            .post(pool.alloc(8, 8).unwrap(), BufDir::DeviceReads, 0)
            .unwrap_err();
        assert_eq!((e, back.len()), (Error::ENOSPC, 8));
        assert_eq!(ring.in_flight(), 8);
    }

    #[test]
    fn hostile_used_elements_are_rejected() {
        let (ring, mut dev, pool) = setup(false);
        let mut ring = ring.into_polled();
        let id = ring
            .post(pool.alloc(32, 8).unwrap(), BufDir::DeviceWrites, 7)
            .unwrap();
        dev.publish_raw(99, 0);
        dev.publish_raw(u32::from(id) ^ 1, 0);
        dev.publish_raw(u32::from(id), 33);
        let errs: Vec<_> = core::iter::from_fn(|| ring.pop_used()).collect();
        assert_eq!(errs.len(), 3);
        let e: Vec<_> = errs.into_iter().map(|r| r.unwrap_err()).collect();
        assert_eq!(e[0].error, UsedError::IdOutOfRange { id: 99 });
        assert_eq!(
            e[1].error,
            UsedError::NotInFlight {
                id: u32::from(id) ^ 1
            }
        );
        assert_eq!(
            e[2].error,
            UsedError::LenTooLong {
                id: u32::from(id),
                len: 33,
                posted: 32
            }
        );
        assert_eq!(
            e[2].reclaimed.as_ref().unwrap().1,
            7,
            "buffer reclaimed, not lost"
        );
        assert_eq!(ring.in_flight(), 0);
        // Completing it again is a double completion: not in flight any more.
        dev.publish_raw(u32::from(id), 0);
        assert_eq!(
            ring.pop_used().unwrap().unwrap_err().error,
            UsedError::NotInFlight { id: 0 }
        );
    }

    #[test]
    fn idx_too_far_ahead_breaks_ring_without_consuming() {
        let (ring, mut dev, pool) = setup(false);
        let mut ring = ring.into_polled();
        ring.post(pool.alloc(32, 8).unwrap(), BufDir::DeviceWrites, 0)
            .unwrap();
        dev.bump_used_idx(9);
        let r = ring.pop_used().unwrap().unwrap_err();
        assert_eq!(
            r.error,
            UsedError::IdxTooFarAhead {
                used_idx: 9,
                last_used: 0
            }
        );
        assert!(ring.is_broken() && ring.pop_used().is_none() && !ring.has_pending());
        let (_, e) = ring
            .post(pool.alloc(8, 8).unwrap(), BufDir::DeviceReads, 0)
            .unwrap_err();
        assert_eq!(e, Error::EBADSTATE);
    }

    #[test]
    fn suppress_and_enable_flags_without_event_idx() {
        let (ring, mut dev, pool) = setup(false);
        assert!(dev.wants_interrupt());
        let mut ring = ring.suppress();
        assert!(!dev.wants_interrupt());
        let ring_armed = match ring.enable_and_check() {
            Ok(r) => r,
            Err(_) => panic!("empty ring must enable"),
        };
        assert!(dev.wants_interrupt());
        ring = ring_armed.suppress();
        ring.post(pool.alloc(8, 8).unwrap(), BufDir::DeviceWrites, 0)
            .unwrap();
        dev.service_all(4);
        let ring = ring.enable_and_check().err().expect("work pending: raced");
        assert!(!dev.wants_interrupt(), "re-suppressed after race");
        drop(ring);
    }

    #[test]
    fn event_idx_suppression_and_kick() {
        let (mut ring, mut dev, pool) = setup(true);
        ring.post(pool.alloc(8, 8).unwrap(), BufDir::DeviceWrites, 0)
            .unwrap();
        dev.set_avail_event(0);
        assert!(ring.kick_needed(), "device asked to be told at avail idx 0");
        assert!(!ring.kick_needed(), "nothing new");
        ring.post(pool.alloc(8, 8).unwrap(), BufDir::DeviceWrites, 0)
            .unwrap();
        dev.set_avail_event(5);
        assert!(!ring.kick_needed(), "device not interested before idx 5");
        let mut ring = ring.suppress();
        dev.service_all(1);
        let _ = ring.pop_used().unwrap().unwrap();
        let _ = ring.pop_used().unwrap().unwrap();
        let _armed = ring.enable_and_check().ok().expect("drained");
        assert_eq!(dev.used_event(), 2, "used_event advanced to last_used");
    }

    #[test]
    fn a_polled_ring_with_event_index_never_asks_for_an_interrupt() {
        let (ring, mut dev, pool) = setup(true);
        let mut ring = ring.into_polled();
        // Past a wrap of the 16-bit indices, in batches of up to the queue size: the device's
        // write never covers `used_event` (virtio 1.2 §2.7.10).
        let mut used = 0u16;
        for round in 0..20_000u32 {
            let batch = 1 + round % 8;
            for _ in 0..batch {
                ring.post(pool.alloc(8, 8).unwrap(), BufDir::DeviceReads, 0)
                    .unwrap();
            }
            let old = used;
            dev.service_all(0);
            used = used.wrapping_add(batch as u16);
            assert!(
                !vring_need_event(dev.used_event(), used, old),
                "round {round}: the device would interrupt (used_event {}, {old} -> {used})",
                dev.used_event()
            );
            while let Some(c) = ring.pop_used() {
                drop(c.unwrap());
            }
        }
        assert_eq!(dev.used_event(), used.wrapping_sub(1));
    }

    #[test]
    fn kick_respects_no_notify_flag() {
        let (mut ring, mut dev, pool) = setup(false);
        ring.post(pool.alloc(8, 8).unwrap(), BufDir::DeviceReads, 0)
            .unwrap();
        assert!(ring.kick_needed());
        dev.set_no_notify(true);
        ring.post(pool.alloc(8, 8).unwrap(), BufDir::DeviceReads, 0)
            .unwrap();
        assert!(!ring.kick_needed());
    }

    #[test]
    fn legacy_layout_aligns_used_ring_to_a_page() {
        let l = VringLayout::with_used_align(256, 4096).unwrap();
        assert_eq!((l.desc, l.avail, l.used), (0, 4096, 8192));
        assert_eq!(l.total, 8192 + 6 + 8 * 256);
        assert_eq!(VringLayout::with_used_align(8, 4), VringLayout::new(8));
        assert!(VringLayout::with_used_align(8, 2).is_err());
        assert!(VringLayout::with_used_align(8, 24).is_err());
        let mem = FakeRingMem::new(l.total, 0x9000_0000);
        assert!(
            Vring::<Armed, _, FakeDmaHal, 256>::with_layout(
                mem.clone(),
                l,
                false,
                &DmaDevice::new()
            )
            .is_ok()
        );
        // A layout for another size, or a hand-made one, is refused.
        let other = VringLayout::with_used_align(128, 4096).unwrap();
        assert!(
            Vring::<Armed, _, FakeDmaHal, 256>::with_layout(
                mem.clone(),
                other,
                false,
                &DmaDevice::new()
            )
            .is_err()
        );
        let forged = VringLayout { used: 8200, ..l };
        assert!(
            Vring::<Armed, _, FakeDmaHal, 256>::with_layout(mem, forged, false, &DmaDevice::new())
                .is_err()
        );
    }

    #[test]
    fn legacy_layout_ring_round_trip() {
        let l = VringLayout::with_used_align(8, 4096).unwrap();
        let mem = FakeRingMem::new(l.total, 0x9000_0000);
        let mut dev = FakeVirtqueueDevice::new(mem.clone(), l, false);
        let ring: Ring<Armed> = Vring::with_layout(mem, l, false, &DmaDevice::new()).unwrap();
        let mut ring = ring.into_polled();
        let pool = DmaPool::new(leak(FakeDmaHal::new(0x4000_0000)), u64::MAX);
        for i in 0..20u32 {
            ring.post(
                pool.alloc(16, 8).unwrap(),
                BufDir::DeviceWrites,
                u64::from(i),
            )
            .unwrap();
            assert!(dev.service_one(5));
            let c = ring.pop_used().unwrap().unwrap();
            assert_eq!((c.len, c.cookie), (5, u64::from(i)));
        }
    }

    #[test]
    fn post_prefix_posts_only_the_prefix() {
        let (mut ring, mut dev, pool) = setup(false);
        let r = pool.alloc(64, 8).unwrap();
        let (r, e) = ring.post_prefix(r, 0, BufDir::DeviceReads, 0).unwrap_err();
        assert_eq!(e, Error::EINVAL);
        let (r, e) = ring.post_prefix(r, 65, BufDir::DeviceReads, 0).unwrap_err();
        assert_eq!(e, Error::EINVAL);
        let id = ring.post_prefix(r, 20, BufDir::DeviceReads, 3).unwrap();
        let (got, _, len, flags) = dev.consume().unwrap();
        assert_eq!((got, len, flags), (id, 20, 0));
        // A completion claiming more than the posted prefix is rejected, buffer reclaimed.
        dev.publish_raw(u32::from(id), 21);
        let mut ring = ring.into_polled();
        let rej = ring.pop_used().unwrap().unwrap_err();
        assert_eq!(
            rej.error,
            UsedError::LenTooLong {
                id: u32::from(id),
                len: 21,
                posted: 20
            }
        );
        assert_eq!(rej.reclaimed.unwrap().0.len(), 64);
    }

    /// A prefix as long as the whole region is a valid prefix (only past the end is refused).
    #[test]
    fn post_prefix_may_cover_the_whole_region() {
        let (mut ring, mut dev, pool) = setup(false);
        let id = ring
            .post_prefix(pool.alloc(64, 8).unwrap(), 64, BufDir::DeviceWrites, 0)
            .unwrap();
        let (got, _, len, _) = dev.consume().unwrap();
        assert_eq!((got, len), (id, 64));
    }

    /// Several buffers in flight at once each get their own descriptor: the device reads back
    /// every one's address, length and direction under the id it was posted with.
    #[test]
    fn each_buffer_is_described_in_its_own_descriptor() {
        let (mut ring, mut dev, pool) = setup(false);
        let mut posted = Vec::new();
        for i in 0..8usize {
            let r = pool.alloc(8 * (i + 1), 8).unwrap();
            let (paddr, len) = (r.paddr(), r.len() as u32);
            let dir = [BufDir::DeviceReads, BufDir::DeviceWrites][i % 2];
            let flags = [0, VIRTQ_DESC_F_WRITE][i % 2];
            let id = ring.post(r, dir, 0).unwrap();
            posted.push((id, paddr, len, flags));
        }
        let ids: Vec<_> = posted.iter().map(|p| p.0).collect();
        assert!((0..8).all(|id| ids.contains(&id)), "ids {ids:?}");
        for p in posted {
            assert_eq!(dev.consume(), Some(p));
        }
    }

    /// Ring memory that held another ring (or garbage) starts with its indices and flags
    /// zeroed: nothing available to the device, nothing pending for the driver, interrupts
    /// and notifications wanted.
    #[test]
    fn a_ring_over_dirty_memory_starts_empty() {
        let layout = VringLayout::new(8).unwrap();
        let mem = FakeRingMem::new(layout.total, 0x9000_0000);
        for off in (0..layout.total - 1).step_by(2) {
            mem.write_u16(off, 0xffff);
        }
        let mut dev = FakeVirtqueueDevice::new(mem.clone(), layout, true);
        let mut ring: Ring<Armed> = Vring::new(mem.clone(), true, &DmaDevice::new()).unwrap();
        let l = layout;
        for off in [l.avail, l.avail + 2, l.used, l.used + 2, l.used_event()] {
            assert_eq!(mem.read_u16(off), 0, "offset {off}");
        }
        assert!(!ring.has_pending(), "used idx zeroed");
        assert_eq!(dev.consume(), None, "avail idx zeroed");
        assert_eq!(dev.used_event(), 0, "used_event zeroed");
        let pool = DmaPool::new(leak(FakeDmaHal::new(0x4000_0000)), u64::MAX);
        ring.post(pool.alloc(8, 8).unwrap(), BufDir::DeviceReads, 0)
            .unwrap();
        assert!(dev.consume().is_some(), "exactly the one posted");
        assert_eq!(dev.consume(), None);
    }

    /// A ring reports the device it was made for and the bus addresses of its three parts
    /// (what the transport programs into the device).
    #[test]
    fn a_ring_reports_its_device_and_bus_addresses() {
        let (base, l) = (0x9000_0000, VringLayout::new(8).unwrap());
        let devs = [DmaDevice::new(), DmaDevice::new()];
        let rings = devs.each_ref().map(|d| -> Ring<Armed> {
            Vring::new(FakeRingMem::new(l.total, base), false, d).unwrap()
        });
        assert_eq!(
            rings.each_ref().map(Vring::device),
            devs.each_ref().map(DmaDevice::id)
        );
        assert_eq!(rings[0].addresses(), (base, base + 128, base + 152));
    }

    /// `RingMemory::is_empty` (the default method) is `len() == 0`.
    #[test]
    fn ring_memory_is_empty_only_without_bytes() {
        assert!(FakeRingMem::new(0, 0).is_empty());
        assert!(!FakeRingMem::new(1, 0).is_empty());
    }

    #[test]
    fn new_rejects_small_memory() {
        let mem = FakeRingMem::new(16, 0);
        assert!(Ring::<Armed>::new(mem, false, &DmaDevice::new()).is_err());
    }
}
