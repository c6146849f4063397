//! DMA regions whose type says who may touch them: the CPU or the device.
//!
//! A buffer the device may write must not be read (or freed) by the CPU, and the cache and
//! ordering work (clean before the device reads, invalidate before the CPU reads) must not be
//! forgotten. `DmaRegion<Cpu>` becomes `DmaRegion<Device>` only by being posted to a ring
//! (`Vring::post`), and returns only through a completion the ring validated; the fences live
//! in those two transitions. Memory itself comes from the platform's `DmaHal`, which owns
//! every `unsafe` (physical addresses, mapping) so this crate stays safe code.

use core::fmt;
use core::marker::PhantomData;

use abi::Error;

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
pub trait DmaHal: Sync {
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
            _state: PhantomData,
        })
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

/// Proof that a device finished the transfer a region was lent for. Minted only by
/// [`transfer_done`], so a lent region comes back only after the driver's device-status
/// check passed. Not `Clone`.
#[derive(Debug)]
#[must_use = "pass it to DmaRegion::reclaim"]
pub struct TransferDone {
    _private: (),
}

/// Fences, then asks the device (through the driver's `device_idle` check, e.g. a DMA
/// engine's busy bit) whether the transfer is over. `Some` is the proof `reclaim` needs.
pub fn transfer_done(device_idle: impl FnOnce() -> bool) -> Option<TransferDone> {
    crate::sync::fence(crate::sync::Ordering::SeqCst);
    device_idle().then_some(TransferDone { _private: () })
}

impl<H: DmaHal + 'static> DmaRegion<H, Cpu> {
    /// Lends the region to a device for one transfer the driver programs with `paddr()`
    /// (devices without rings, e.g. a DMA engine): clean + fence, and no CPU access until
    /// [`DmaRegion::reclaim`].
    pub fn lend(self) -> DmaRegion<H, Device> {
        self.into_device()
    }
}

impl<H: DmaHal + 'static> DmaRegion<H, Device> {
    /// Takes a lent region back once the transfer is proven finished (fence + invalidate).
    pub fn reclaim(self, _done: TransferDone) -> DmaRegion<H, Cpu> {
        self.into_cpu()
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
    use crate::fakes::{FakeDmaHal, leak};

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
    fn lend_and_reclaim_need_a_finished_transfer() {
        let hal = leak(FakeDmaHal::new(0x4000_0000));
        let pool = DmaPool::new(hal, u64::MAX);
        let mut r = pool.alloc(16, 8).unwrap();
        r.bytes_mut()[0] = 7;
        let lent = r.lend();
        assert!(transfer_done(|| false).is_none());
        let back = lent.reclaim(transfer_done(|| true).unwrap());
        assert_eq!(back.bytes()[0], 7);
    }
}
