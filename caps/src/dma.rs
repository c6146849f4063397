//! DMA regions whose type says who may touch them: the CPU or the device.
//!
//! A buffer the device may write must not be read (or freed) by the CPU, and the cache and
//! ordering work (clean before the device reads, invalidate before the CPU reads) must not be
//! forgotten. `DmaRegion<Cpu>` becomes `DmaRegion<Device>` by being posted to a ring
//! (`Vring::post`) or lent to one device (`lend`), and returns only through a completion the
//! ring validated, or once the device that holds it reads back idle ([`DmaIdle`], checked
//! against the [`DmaDevice`] identity the region or ring was given to); the fences live in
//! those transitions. Memory itself comes from the platform's `DmaHal`, which owns every
//! `unsafe` (physical addresses, mapping) so this crate stays safe code.

use core::fmt;
use core::marker::PhantomData;
// Not `crate::sync`: identities are handed out outside any loom model, and a loom atomic
// cannot live in a `static`.
use core::sync::atomic::{AtomicU64, Ordering};

use abi::Error;

use crate::quiet::Seal;
use crate::sealed::Sealed;

/// One allocation of DMA-capable memory, supplied by the platform.
pub trait DmaBuffer {
    /// Device-visible (bus) address of byte 0.
    fn paddr(&self) -> u64;
    /// Length in bytes.
    fn len(&self) -> usize;
    /// Whether the buffer is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The contents, for the CPU.
    fn bytes(&self) -> &[u8];
    /// The contents, for the CPU.
    fn bytes_mut(&mut self) -> &mut [u8];
}

/// Platform DMA operations (kernel: its one DMA module; tests: `FakeDmaHal`).
///
/// # Safety
/// Every buffer `allocate` returns must be memory the device can reach at `paddr()` for
/// `len()` bytes (below `mask`, through whatever translation the bus applies), the same bytes
/// `bytes()` shows the CPU, owned by the buffer alone until it is dropped or quarantined;
/// `sync_for_device` must make the CPU's writes visible to the device (clean, then a
/// barrier) and `sync_for_cpu` the device's writes visible to the CPU (a barrier, then
/// invalidate); `quarantine` must never free or reuse the buffer while the device could still
/// write it. The DMA ownership types (`DmaRegion<Cpu>`/`<Device>`) are only as good as these
/// promises, which the compiler cannot check.
#[allow(
    unsafe_code,
    reason = "an unsafe trait: its implementation is the promise (docs/caps.md)"
)]
pub unsafe trait DmaHal: Sync {
    /// The buffer type this HAL allocates. Dropping one frees it.
    type Buffer: DmaBuffer + Send;
    /// Allocates `len` bytes aligned to `align` whose whole range is at or below `mask` (the
    /// device's DMA mask, e.g. `u32::MAX as u64` for 32-bit devices). `ERANGE` if the mask
    /// cannot be satisfied, `ENOMEM` if memory is short.
    fn allocate(&self, len: usize, align: usize, mask: u64) -> Result<Self::Buffer, Error>;
    /// CPU writes done -> device may read/write: clean caches as needed, then `dmb oshst`.
    fn sync_for_device(&self, buf: &Self::Buffer);
    /// Device done -> CPU may read: `dmb oshld`, invalidate caches as needed.
    fn sync_for_cpu(&self, buf: &Self::Buffer);
    /// The device may still write `buf`: keep it out of circulation until the device is reset
    /// (ABI.md "Teardown", step 5). Never frees it.
    fn quarantine(&self, buf: Self::Buffer);
}

/// Who owns a `DmaRegion` right now. Sealed.
pub trait DmaState: Sealed {
    /// Whether the device may access the memory in this state.
    const DEVICE_OWNED: bool;
}

/// The CPU owns the region: read and write it freely.
#[derive(Debug)]
pub struct Cpu;
/// The device owns the region: no CPU access to its contents.
#[derive(Debug)]
pub struct Device;

impl Sealed for Cpu {}
impl Sealed for Device {}
impl DmaState for Cpu {
    const DEVICE_OWNED: bool = false;
}
impl DmaState for Device {
    const DEVICE_OWNED: bool = true;
}

/// Mints `DmaRegion<Cpu>` for one device, honouring its DMA mask.
pub struct DmaPool<H: DmaHal + 'static> {
    hal: &'static H,
    mask: u64,
}

impl<H: DmaHal + 'static> DmaPool<H> {
    /// A pool for a device that can address up to `mask` (inclusive).
    pub const fn new(hal: &'static H, mask: u64) -> Self {
        DmaPool { hal, mask }
    }

    /// Allocates a CPU-owned region of `len` bytes (`len > 0`, else `EINVAL`). A HAL that
    /// returns memory above the mask is caught here (`ERANGE`) rather than trusted.
    pub fn alloc(&self, len: usize, align: usize) -> Result<DmaRegion<H, Cpu>, Error> {
        if len == 0 || !align.is_power_of_two() {
            return Err(Error::EINVAL);
        }
        let buf = self.hal.allocate(len, align, self.mask)?;
        // Length first: `len > 0`, so a buffer that passes has `buf.len() - 1` in range.
        if buf.len() < len {
            return Err(Error::ERANGE);
        }
        let end = buf.paddr().checked_add(buf.len() as u64 - 1);
        if end.is_none_or(|e| e > self.mask) {
            return Err(Error::ERANGE);
        }
        Ok(DmaRegion {
            hal: self.hal,
            buf: Some(buf),
            lent_to: 0,
            _state: PhantomData,
        })
    }
}

/// The identity of one device that does DMA (one virtio function, one edu): rings and lent
/// regions record it, so the proof that *this* device stopped frees only *its* memory.
/// Every value is unique (a counter), and it is not `Clone`.
#[derive(Debug)]
pub struct DmaDevice {
    id: u64,
}

static NEXT_DEVICE: AtomicU64 = AtomicU64::new(1);

impl DmaDevice {
    /// A fresh identity, equal to no other.
    #[allow(
        clippy::new_without_default,
        reason = "a fresh identity is not a default value"
    )]
    pub fn new() -> Self {
        DmaDevice {
            id: NEXT_DEVICE.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The identity's number (for logs and checks).
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// Reads one device to decide whether it performs DMA right now.
///
/// # Safety
/// `dma_device` must return the identity of the device `dma_idle` reads, the same for the
/// life of the value; `dma_idle` must read that device and return `true` only if it issues
/// no DMA now and will issue none before the driver starts a new transfer (a DMA engine's
/// busy bit clear; a virtio device whose status reads back 0 after a reset, virtio 1.2
/// §2.4). An implementation that answers without reading its device lets the CPU read and
/// free memory the device still writes.
#[allow(
    unsafe_code,
    reason = "an unsafe trait: its implementation is the promise (docs/caps.md)"
)]
pub unsafe trait DmaIdle {
    /// The device's identity.
    fn dma_device(&self) -> &DmaDevice;
    /// After a full fence: whether the device does no DMA now (see the safety contract).
    /// Called by this crate only.
    fn dma_idle(&self, seal: &Seal) -> bool;
}

/// Proof that device `device` does no DMA: minted inside this crate from a [`DmaIdle`] read
/// at the moment it is used (`DmaRegion::reclaim`, `Vring::release`), so it cannot go stale;
/// `RingMemory::device_stopped` receives it. Not `Clone`.
#[derive(Debug)]
pub struct TransferDone {
    device: u64,
}

impl TransferDone {
    /// Reads `dev` (after a full fence): the proof, if it is idle.
    pub(crate) fn read<D: DmaIdle + ?Sized>(dev: &D) -> Option<TransferDone> {
        crate::sync::fence(crate::sync::Ordering::SeqCst);
        dev.dma_idle(&Seal::new()).then(|| TransferDone {
            device: dev.dma_device().id,
        })
    }

    /// The device this proof is about.
    pub fn device(&self) -> u64 {
        self.device
    }
}

/// A DMA buffer capability in state `S` (`Cpu` or `Device`).
///
/// Not `Clone`. Dropping a `DmaRegion<Cpu>` frees the memory; dropping a `DmaRegion<Device>`
/// hands it to `DmaHal::quarantine`, because the device may still write it.
#[must_use = "dropping a region frees (Cpu) or quarantines (Device) it"]
pub struct DmaRegion<H: DmaHal + 'static, S: DmaState> {
    hal: &'static H,
    /// `Some` except while a transition or `Drop` moves the buffer out.
    buf: Option<H::Buffer>,
    /// The device a `lend` gave it to (`DmaDevice::id`), 0 otherwise.
    lent_to: u64,
    _state: PhantomData<S>,
}

impl<H: DmaHal + 'static, S: DmaState> DmaRegion<H, S> {
    fn buf(&self) -> &H::Buffer {
        self.buf
            .as_ref()
            .expect("DmaRegion holds its buffer until dropped")
    }

    /// Device-visible address.
    pub fn paddr(&self) -> u64 {
        self.buf().paddr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.buf().len()
    }

    /// Whether the region has no bytes (never, for a region from `DmaPool`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn retype<T: DmaState>(mut self) -> DmaRegion<H, T> {
        DmaRegion {
            hal: self.hal,
            buf: self.buf.take(),
            lent_to: self.lent_to,
            _state: PhantomData,
        }
    }
}

impl<H: DmaHal + 'static> DmaRegion<H, Cpu> {
    /// The contents.
    pub fn bytes(&self) -> &[u8] {
        self.buf().bytes()
    }

    /// The contents.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.buf
            .as_mut()
            .expect("DmaRegion holds its buffer until dropped")
            .bytes_mut()
    }

    /// Hands the region to the device (clean + fence). Only a ring posting calls this.
    pub(crate) fn into_device(self) -> DmaRegion<H, Device> {
        self.hal.sync_for_device(self.buf());
        self.retype()
    }
}

impl<H: DmaHal + 'static> DmaRegion<H, Device> {
    /// Takes the region back after a validated completion (fence + invalidate).
    pub(crate) fn into_cpu(self) -> DmaRegion<H, Cpu> {
        self.hal.sync_for_cpu(self.buf());
        self.retype()
    }
}

impl<H: DmaHal + 'static> DmaRegion<H, Cpu> {
    /// Lends the region to `device` for one transfer the driver programs with `paddr()`
    /// (devices without rings, e.g. a DMA engine): clean + fence, and no CPU access until
    /// [`DmaRegion::reclaim`] reads that device idle.
    pub fn lend(self, device: &DmaDevice) -> DmaRegion<H, Device> {
        let mut lent = self.into_device();
        lent.lent_to = device.id;
        lent
    }
}

impl<H: DmaHal + 'static> DmaRegion<H, Device> {
    /// Takes a lent region back once `device`, the one it was lent to, reads back idle
    /// (the proof is minted from that read, here): fence + invalidate. Otherwise (still
    /// busy, or another device's check) the region comes back unchanged; dropping it
    /// quarantines it.
    pub fn reclaim<D: DmaIdle + ?Sized>(self, device: &D) -> Result<DmaRegion<H, Cpu>, Self> {
        match TransferDone::read(device) {
            Some(done) if done.device == self.lent_to => Ok(self.into_cpu()),
            _ => Err(self),
        }
    }
}

impl<H: DmaHal + 'static, S: DmaState> Drop for DmaRegion<H, S> {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take()
            && S::DEVICE_OWNED
        {
            self.hal.quarantine(buf);
        }
    }
}

impl<H: DmaHal + 'static, S: DmaState> fmt::Debug for DmaRegion<H, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaRegion")
            .field("paddr", &self.buf.as_ref().map(DmaBuffer::paddr))
            .field("state", &core::any::type_name::<S>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{FakeDmaEngine, FakeDmaHal, leak};

    #[test]
    fn alloc_respects_mask_and_args() {
        let hal = leak(FakeDmaHal::new(0x1_0000_0000));
        let pool32 = DmaPool::new(hal, u32::MAX as u64);
        assert_eq!(pool32.alloc(64, 64).unwrap_err(), Error::ERANGE);
        let pool64 = DmaPool::new(hal, u64::MAX);
        let r = pool64.alloc(64, 64).unwrap();
        assert!(r.paddr() >= 0x1_0000_0000 && r.len() == 64);
        assert_eq!(pool64.alloc(0, 64).unwrap_err(), Error::EINVAL);
        assert_eq!(pool64.alloc(8, 3).unwrap_err(), Error::EINVAL);
    }

    #[test]
    fn lying_hal_above_mask_is_caught() {
        let hal = leak(FakeDmaHal::new(0x8000_0000));
        hal.set_ignore_mask(true);
        let pool = DmaPool::new(hal, 0x7fff_ffff);
        assert_eq!(pool.alloc(64, 8).unwrap_err(), Error::ERANGE);
    }

    #[test]
    fn short_or_empty_buffer_from_the_hal_is_caught() {
        let hal = leak(FakeDmaHal::new(0x4000_0000));
        let pool = DmaPool::new(hal, u64::MAX);
        for short in [0, 63] {
            hal.set_truncate(Some(short));
            assert_eq!(
                pool.alloc(64, 8).unwrap_err(),
                Error::ERANGE,
                "{short} bytes"
            );
        }
        hal.set_truncate(None);
        assert_eq!(pool.alloc(64, 8).unwrap().len(), 64);
    }

    #[test]
    fn transitions_fence_and_drop_semantics() {
        let hal = leak(FakeDmaHal::new(0x4000_0000));
        let pool = DmaPool::new(hal, u64::MAX);
        let mut r = pool.alloc(16, 8).unwrap();
        r.bytes_mut()[0] = 0xaa;
        let d = r.into_device();
        assert_eq!(hal.to_device_count(), 1);
        let c = d.into_cpu();
        assert_eq!(hal.from_device_count(), 1);
        assert_eq!(c.bytes()[0], 0xaa);
        drop(c);
        assert_eq!(hal.quarantined(), 0);
        drop(pool.alloc(16, 8).unwrap().into_device());
        assert_eq!(
            hal.quarantined(),
            1,
            "device-owned memory is never freed by drop"
        );
    }

    #[test]
    fn lend_and_reclaim_need_the_same_device_read_idle() {
        let hal = leak(FakeDmaHal::new(0x4000_0000));
        let pool = DmaPool::new(hal, u64::MAX);
        let (engine, other) = (FakeDmaEngine::new(), FakeDmaEngine::new());
        let mut r = pool.alloc(16, 8).unwrap();
        r.bytes_mut()[0] = 7;
        let lent = r.lend(engine.device());
        engine.set_busy(true);
        let lent = lent.reclaim(&engine).expect_err("busy: still the device's");
        let lent = lent
            .reclaim(&other)
            .expect_err("another device's idle proves nothing");
        engine.set_busy(false);
        let back = lent.reclaim(&engine).expect("idle");
        assert_eq!(back.bytes()[0], 7);
        assert_eq!(hal.from_device_count(), 1, "synced for the CPU once");
        assert!(engine.reads() >= 2, "every reclaim read the device");
    }

    #[test]
    fn every_device_identity_is_new() {
        let (a, b) = (DmaDevice::new(), DmaDevice::new());
        assert_ne!(a.id(), b.id());
        assert_ne!(a.id(), 0, "0 means not lent");
    }

    #[test]
    fn a_buffer_may_end_exactly_at_the_mask() {
        let hal = leak(FakeDmaHal::new(0x1000));
        let pool = DmaPool::new(hal, 0x1000 + 63);
        let r = pool.alloc(64, 64).unwrap();
        assert_eq!((r.paddr(), r.len(), r.is_empty()), (0x1000, 64, false));
        assert_eq!(
            pool.alloc(1, 1).unwrap_err(),
            Error::ERANGE,
            "past the mask"
        );
    }

    #[test]
    fn buffer_emptiness_and_debug() {
        let b = crate::fakes::FakeBuffer::new(0x10, 0);
        assert!(b.is_empty());
        assert!(!crate::fakes::FakeBuffer::new(0x10, 1).is_empty());
        let hal = leak(FakeDmaHal::new(0x4000_0000));
        let r = DmaPool::new(hal, u64::MAX).alloc(8, 8).unwrap();
        let shown = std::format!("{r:?}");
        assert!(
            shown.contains("DmaRegion") && shown.contains("1073741824"),
            "{shown}"
        );
    }
}
