//! `DmaRegion<S>`: DMA memory whose type says who may touch it, the CPU or the device.
//!
//! A buffer the device may write must not be read by the CPU, and the CPU's writes must
//! be ordered before the device is told to read them. `Device::dma_alloc` gives a
//! `DmaRegion<Cpu>`: its bytes are the CPU's. `lend` (a full fence) turns it into a
//! `DmaRegion<Device>`, whose bytes nobody can reach; it comes back only through
//! `reclaim`, which reads the device's own DMA-engine-idle state ([`DmaIdle`], a sealed
//! method as for the quiet check) between two fences, and only for the device the region
//! was allocated for. This mirrors the kernel's `caps::dma`. The bus address is readable
//! in both states; program the device with it only after `lend`.
//!
//! Dropping a region in either state drops its capability (`cap_drop`): the kernel unmaps
//! it, and decides whether the memory can be freed (the device stopped) or must wait for
//! a reset (docs/abi.md "Teardown").

use core::fmt;
use core::marker::PhantomData;

use abi::Handle;
use abi::dev::{DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE};

use crate::sealed::Sealed;
use crate::{DevSys, DeviceId, Seal};

/// Which way the device moves data through a region (`dma_alloc`'s `dir`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaDir {
    /// The device reads the memory.
    ToDevice,
    /// The device writes the memory.
    FromDevice,
    /// Both.
    Bidirectional,
}

impl DmaDir {
    /// The ABI's encoding (`abi::dev::DMA_*`).
    pub fn as_abi(self) -> u32 {
        match self {
            DmaDir::ToDevice => DMA_TO_DEVICE,
            DmaDir::FromDevice => DMA_FROM_DEVICE,
            DmaDir::Bidirectional => DMA_BIDIRECTIONAL,
        }
    }

    /// Whether the device may read the memory.
    pub fn device_reads(self) -> bool {
        self != DmaDir::FromDevice
    }

    /// Whether the device may write the memory.
    pub fn device_writes(self) -> bool {
        self != DmaDir::ToDevice
    }
}

/// Who owns a [`DmaRegion`] now. Sealed.
pub trait DmaState: Sealed {}

/// The CPU owns the region: read and write its bytes.
#[derive(Debug)]
pub struct Cpu;
/// The device owns the region (it was lent): no CPU access to its bytes.
#[derive(Debug)]
pub struct Device;

impl Sealed for Cpu {}
impl Sealed for Device {}
impl DmaState for Cpu {}
impl DmaState for Device {}

/// Reads one device to decide whether it performs DMA now.
///
/// # Safety
/// `dma_device` must return the [`DeviceId`] of the device `dma_idle` reads (its
/// `Device::id`), the same for the life of the value; `dma_idle` must read that device and
/// return `true` only if it issues no DMA now and will issue none before the driver starts
/// a new transfer (edu: DMA command register bit 0 clear). An implementation that answers
/// without reading its device lets the CPU read memory the device is still writing.
#[allow(
    unsafe_code,
    reason = "an unsafe trait: the implementation is the promise"
)]
pub unsafe trait DmaIdle {
    /// The identity of the device `dma_idle` reads.
    fn dma_device(&self) -> DeviceId;
    /// After a full fence: whether the device does no DMA now. Called by
    /// [`DmaRegion::reclaim`] only (nobody else has a [`Seal`]).
    fn dma_idle(&self, seal: &Seal) -> bool;
}

/// A DMA region capability in state `S` (`Cpu` or `Device`), whose calls go through `B`.
///
/// Not `Clone` or `Copy`. Dropping it drops the capability (the kernel unmaps it).
#[must_use = "dropping a region drops its capability"]
pub struct DmaRegion<S: DmaState, B: DevSys> {
    sys: B,
    handle: Handle,
    addr: usize,
    bus: u64,
    len: usize,
    dir: DmaDir,
    device: DeviceId,
    _state: PhantomData<S>,
}

/// Whether `[bus, bus + len)` lies at or below a `mask_bits`-bit DMA mask (`len` > 0).
pub(crate) fn reaches(bus: u64, len: usize, mask_bits: u8) -> bool {
    let mask = match mask_bits {
        64.. => u64::MAX,
        bits => (1u64 << bits) - 1,
    };
    let last = (len as u64).checked_sub(1).and_then(|l| bus.checked_add(l));
    last.is_some_and(|l| l <= mask)
}

impl<B: DevSys> DmaRegion<Cpu, B> {
    /// A region `Device::dma_alloc` just received from the kernel (`DevSys` vouches for
    /// `addr`, `len` and `bus`).
    pub(crate) fn mint(
        sys: B,
        handle: Handle,
        addr: usize,
        bus: u64,
        len: usize,
        dir: DmaDir,
        device: DeviceId,
    ) -> Self {
        DmaRegion {
            sys,
            handle,
            addr,
            bus,
            len,
            dir,
            device,
            _state: PhantomData,
        }
    }

    /// The contents.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `DevSys::dma_alloc` promised `len` readable bytes at `addr`, used by
        // nothing else in this process and mapped until `cap_drop(handle)`, which only
        // `Drop` calls; the borrow of `self` keeps the region alive. In state `Cpu` the
        // device was never given the region, or `reclaim` read it idle.
        #[allow(unsafe_code, reason = "memory the kernel mapped for this region")]
        unsafe {
            core::slice::from_raw_parts(self.addr as *const u8, self.len)
        }
    }

    /// The contents.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `bytes`; the mutable borrow of `self` makes this the only view.
        #[allow(unsafe_code, reason = "memory the kernel mapped for this region")]
        unsafe {
            core::slice::from_raw_parts_mut(self.addr as *mut u8, self.len)
        }
    }

    /// Lends the region to its device for transfers the driver programs with
    /// [`DmaRegion::bus_addr`]: a full fence (the CPU's writes reach memory before any
    /// register write that starts the device), and no CPU access until `reclaim`.
    pub fn lend(self) -> DmaRegion<Device, B> {
        self.sys.fence();
        self.retype()
    }
}

impl<B: DevSys> DmaRegion<Device, B> {
    /// Takes the region back once `idle`, which must read the device the region was
    /// allocated for, reports that device's DMA engine idle: fence, read, fence (the
    /// read is ordered before the CPU's reads of the bytes). Otherwise (still busy, or
    /// another device's check) the region comes back unchanged.
    pub fn reclaim<D: DmaIdle + ?Sized>(self, idle: &D) -> Result<DmaRegion<Cpu, B>, Self> {
        if idle.dma_device() != self.device {
            return Err(self);
        }
        self.sys.fence();
        if !idle.dma_idle(&Seal(())) {
            return Err(self);
        }
        self.sys.fence();
        Ok(self.retype())
    }
}

impl<B: DevSys> DmaRegion<Device, B> {
    /// Back to the CPU without reading the device: only for a buffer the device handed
    /// back through a virtqueue's used ring, after the ring validated the element and
    /// ordered the read of the used index before this (`udrv::vring`).
    pub(crate) fn completed(self) -> DmaRegion<Cpu, B> {
        self.retype()
    }

    /// Memory shared with the device from here on (a virtqueue's rings): volatile access
    /// only, for as long as this region lives.
    pub(crate) fn shared(&self) -> crate::mmio::SharedMem {
        crate::mmio::SharedMem::mapped(self.addr, self.len)
    }

    /// Where the region is mapped in this process, for a buffer pool that hands its
    /// slices to the CPU one at a time (`udrv::pool`); mapped until the region drops.
    pub(crate) fn mapped_at(&self) -> usize {
        self.addr
    }
}

impl<S: DmaState, B: DevSys> DmaRegion<S, B> {
    /// The bus address of byte 0 (what the device is programmed with, once lent).
    pub fn bus_addr(&self) -> u64 {
        self.bus
    }

    /// Length in bytes (as asked of `dma_alloc`; never 0).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty (never, for a region from `dma_alloc`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The direction it was allocated for.
    pub fn dir(&self) -> DmaDir {
        self.dir
    }

    /// The device it was allocated for.
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// The capability's handle.
    pub fn handle(&self) -> Handle {
        self.handle
    }

    /// The backend (for the fences of a ring built on the region).
    pub(crate) fn sys(&self) -> B {
        self.sys
    }

    fn retype<T: DmaState>(self) -> DmaRegion<T, B> {
        let next = DmaRegion {
            sys: self.sys,
            handle: self.handle,
            addr: self.addr,
            bus: self.bus,
            len: self.len,
            dir: self.dir,
            device: self.device,
            _state: PhantomData,
        };
        // Every field was copied into `next`; forgetting only skips the `cap_drop`.
        core::mem::forget(self);
        next
    }
}

impl<S: DmaState, B: DevSys> Drop for DmaRegion<S, B> {
    fn drop(&mut self) {
        self.sys.cap_drop(self.handle);
    }
}

impl<S: DmaState, B: DevSys> fmt::Debug for DmaRegion<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaRegion")
            .field("handle", &self.handle)
            .field("bus", &format_args!("{:#x}", self.bus))
            .field("len", &self.len)
            .field("dir", &self.dir)
            .field("state", &core::any::type_name::<S>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use core::cell::Cell;

    use abi::Error;

    use super::*;
    use crate::fake::FakeKernel;

    /// A DMA engine: busy while `busy`.
    struct Engine<'a> {
        id: DeviceId,
        busy: Cell<bool>,
        kernel: &'a FakeKernel,
    }

    // SAFETY: a test device: `dma_idle` reads its (fake) busy bit.
    #[allow(unsafe_code, reason = "a test device implements the unsafe trait")]
    unsafe impl DmaIdle for Engine<'_> {
        fn dma_device(&self) -> DeviceId {
            self.id
        }
        fn dma_idle(&self, _: &Seal) -> bool {
            self.kernel.note("idle?");
            !self.busy.get()
        }
    }

    #[test]
    fn a_lent_region_comes_back_only_when_its_device_reads_idle() {
        let (k, device) = FakeKernel::with_device();
        let (_, other) = FakeKernel::with_device();
        let mut region = device.dma_alloc(100, DmaDir::ToDevice, 40).unwrap();
        assert_eq!(region.bytes(), &[0u8; 100][..], "zeroed");
        region.bytes_mut().fill(0x5a);
        let (h, bus) = (region.handle(), region.bus_addr());
        k.clear_log();
        let lent = region.lend();
        assert_eq!(k.log(), ["fence"]);
        assert_eq!(
            k.dma_bytes(h)[..100],
            [0x5a; 100],
            "the device sees the writes"
        );
        let engine = Engine {
            id: device.id(),
            busy: Cell::new(true),
            kernel: k,
        };
        let lent = lent.reclaim(&engine).expect_err("the transfer runs");
        let stranger = Engine {
            id: other.id(),
            busy: Cell::new(false),
            kernel: k,
        };
        k.clear_log();
        let lent = lent
            .reclaim(&stranger)
            .expect_err("another device's idle engine proves nothing");
        assert_eq!(k.log(), [] as [&str; 0], "not even read");
        engine.busy.set(false);
        let back = lent.reclaim(&engine).expect("idle: back to the CPU");
        assert_eq!(k.log(), ["fence", "idle?", "fence"]);
        assert_eq!(
            (back.bus_addr(), back.len(), back.dir()),
            (bus, 100, DmaDir::ToDevice)
        );
        assert_eq!(back.bytes()[99], 0x5a);
        drop(back);
        assert!(k.dropped(h));
    }

    #[test]
    fn dropping_a_lent_region_drops_its_capability() {
        let (k, device) = FakeKernel::with_device();
        let lent = device.dma_alloc(8, DmaDir::FromDevice, 64).unwrap().lend();
        let h = lent.handle();
        drop(lent);
        assert!(k.dropped(h));
    }

    #[test]
    fn allocation_arguments_and_the_kernels_answer_are_checked() {
        let (k, device) = FakeKernel::with_device();
        assert_eq!(
            device.dma_alloc(0, DmaDir::ToDevice, 40).err(),
            Some(Error::EINVAL)
        );
        assert_eq!(
            device.dma_alloc(8, DmaDir::ToDevice, 0).err(),
            Some(Error::EINVAL)
        );
        assert_eq!(
            device.dma_alloc(8, DmaDir::ToDevice, 65).err(),
            Some(Error::EINVAL)
        );
        // The fake's memory sits at bus 0x4000_0000 and up: 30 bits cannot reach it,
        // and a kernel that answered anyway is caught and its region dropped.
        k.lie_about_masks(true);
        assert_eq!(
            device.dma_alloc(8, DmaDir::ToDevice, 30).err(),
            Some(Error::ERANGE)
        );
        assert!(k.dropped(k.last_handle()));
        k.lie_about_masks(false);
        assert_eq!(
            device.dma_alloc(8, DmaDir::ToDevice, 30).err(),
            Some(Error::ERANGE)
        );
        assert!(device.dma_alloc(8, DmaDir::Bidirectional, 31).is_ok());
        assert_eq!(k.last_dir(), abi::dev::DMA_BIDIRECTIONAL);
    }

    #[test]
    fn reach_is_inclusive_and_overflow_safe() {
        assert!(reaches(0xfff, 1, 12));
        assert!(!reaches(0xfff, 2, 12));
        assert!(reaches(0, 1 << 12, 12));
        assert!(reaches(u64::MAX, 1, 64));
        assert!(!reaches(u64::MAX, 2, 64));
        assert!(!reaches(0, 0, 64));
        assert!(!reaches(1 << 40, 16, 40));
    }

    #[test]
    fn directions_encode_as_the_abi_says() {
        assert_eq!(DmaDir::ToDevice.as_abi(), DMA_TO_DEVICE);
        assert_eq!(DmaDir::FromDevice.as_abi(), DMA_FROM_DEVICE);
        assert!(DmaDir::ToDevice.device_reads() && !DmaDir::ToDevice.device_writes());
        assert!(DmaDir::Bidirectional.device_reads() && DmaDir::Bidirectional.device_writes());
    }
}
