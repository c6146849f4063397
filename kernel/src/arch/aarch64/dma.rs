//! The DMA module: physical memory a device may read and write.
//!
//! Implements `caps::dma::DmaHal` over the frame allocator. RAM is mapped write-back
//! cacheable in the linear map (the CPU's view; devices get the physical address), and PCI DMA on the supported platforms (QEMU virt,
//! Parallels/VMware virtual PCIe) is cache coherent, so the "sync" operations are
//! ordering barriers, not cache maintenance. The DMA mask is honoured: a device
//! that cannot reach any RAM (QEMU `edu`'s default 28-bit mask on `virt`, whose
//! RAM starts at 1 GiB) gets `ERANGE`, never a silently truncated address.

use abi::Error;
use caps::dma::{DmaBuffer, DmaHal};
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::mem::frames::{self, FRAME};
use crate::sync::IrqLock;

/// A run of frames owned by one DMA buffer; dropping it frees the frames.
#[derive(Debug)]
pub struct FrameBuffer {
    paddr: usize,
    len: usize,
    frames: usize,
}

impl DmaBuffer for FrameBuffer {
    fn paddr(&self) -> u64 {
        self.paddr as u64
    }

    fn len(&self) -> usize {
        self.len
    }

    fn bytes(&self) -> &[u8] {
        let ptr = core::ptr::with_exposed_provenance::<u8>(super::mmu::phys_to_virt(self.paddr));
        // SAFETY: the frames are mapped RW in the linear map, owned by this buffer alone (taken from
        // the frame allocator), and live until it drops; `&self` bars concurrent `&mut`.
        unsafe { core::slice::from_raw_parts(ptr, self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        let ptr =
            core::ptr::with_exposed_provenance_mut::<u8>(super::mmu::phys_to_virt(self.paddr));
        // SAFETY: as in `bytes`, and `&mut self` makes this the only reference.
        unsafe { core::slice::from_raw_parts_mut(ptr, self.len) }
    }
}

impl Drop for FrameBuffer {
    fn drop(&mut self) {
        frames::free(self.paddr, self.frames);
        LIVE.0.fetch_sub(1, Ordering::Relaxed);
        LIVE.1.fetch_sub(self.len, Ordering::Relaxed);
    }
}

/// Buffers handed out and not yet freed (quarantined ones included): (count, bytes).
static LIVE: (AtomicUsize, AtomicUsize) = (AtomicUsize::new(0), AtomicUsize::new(0));

/// DMA buffers alive now: (count, bytes), quarantined ones included.
pub fn live() -> (usize, usize) {
    (
        LIVE.0.load(Ordering::Relaxed),
        LIVE.1.load(Ordering::Relaxed),
    )
}

/// The kernel's DMA HAL (one instance: [`HAL`]).
pub struct KernelDma {
    quarantined: AtomicUsize,
    held: IrqLock<heapless::Vec<FrameBuffer, 64>>,
}

/// The kernel's DMA memory source.
pub static HAL: KernelDma = KernelDma {
    quarantined: AtomicUsize::new(0),
    held: IrqLock::new(heapless::Vec::new()),
};

impl KernelDma {
    /// Bytes kept out of circulation because a device might still write them.
    pub fn quarantined(&self) -> usize {
        self.quarantined.load(Ordering::Relaxed)
    }

    /// The quarantined buffers: (physical address, bytes). Beyond the table's 64 slots a
    /// buffer is leaked rather than freed and only counted in `quarantined`.
    pub fn quarantined_regions(&self) -> heapless::Vec<(usize, usize), 64> {
        self.held.lock().iter().map(|b| (b.paddr, b.len)).collect()
    }
}

// SAFETY: buffers are whole frames from the frame allocator, identity mapped (bus address =
// CPU physical address on the supported platforms, no IOMMU), checked against the mask
// before they are handed out and owned by their `FrameBuffer` alone; DMA is cache coherent
// there, so the syncs are the `dsb sy` ordering the device's and the CPU's accesses; a
// quarantined buffer is kept in `held` (or leaked), never freed.
unsafe impl DmaHal for KernelDma {
    type Buffer = FrameBuffer;

    fn allocate(&self, len: usize, align: usize, mask: u64) -> Result<FrameBuffer, Error> {
        if len == 0 || !align.is_power_of_two() {
            return Err(Error::EINVAL);
        }
        let count = len.div_ceil(FRAME).max(align.div_ceil(FRAME));
        let paddr = frames::alloc(count).map_err(|_| Error::ENOMEM)?;
        let buf = FrameBuffer {
            paddr,
            len,
            frames: count,
        };
        LIVE.0.fetch_add(1, Ordering::Relaxed);
        LIVE.1.fetch_add(len, Ordering::Relaxed);
        let last = (paddr + count * FRAME - 1) as u64;
        if last > mask || paddr % align != 0 {
            return Err(Error::ERANGE); // `buf` drops: frames go back
        }
        let mut buf = buf;
        buf.bytes_mut().fill(0);
        Ok(buf)
    }

    fn sync_for_device(&self, _buf: &FrameBuffer) {
        // CPU writes must be visible to the (coherent) device before it is told to look.
        super::cpu::dsb_sy();
    }

    fn sync_for_cpu(&self, _buf: &FrameBuffer) {
        // The device's writes, signalled by an interrupt or status read, before our reads.
        super::cpu::dsb_sy();
    }

    fn quarantine(&self, buf: FrameBuffer) {
        self.quarantined.fetch_add(buf.len, Ordering::Relaxed);
        if let Err(buf) = self.held.lock().push(buf) {
            // Out of quarantine slots: leak rather than free memory a device may write.
            core::mem::forget(buf);
        }
    }
}

/// Virtqueue memory in a DMA buffer: the caps `RingMemory` over volatile accesses.
///
/// Dropped, it is quarantined like a buffer the device holds (the device may still write
/// the used ring), unless `Vring::release` passed on the proof that the device stopped.
pub struct DmaRing {
    /// `Some` until dropped.
    buf: Option<FrameBuffer>,
    device_stopped: bool,
}

impl DmaRing {
    /// `len` bytes of zeroed, page-aligned ring memory below `mask`.
    pub fn new(len: usize, mask: u64) -> Result<DmaRing, Error> {
        Ok(DmaRing {
            buf: Some(HAL.allocate(len, 4096, mask)?),
            device_stopped: false,
        })
    }

    fn buf(&self) -> &FrameBuffer {
        self.buf
            .as_ref()
            .expect("DmaRing holds its buffer until dropped")
    }

    fn ptr<T>(&self, off: usize) -> *mut T {
        assert!(
            off + core::mem::size_of::<T>() <= self.buf().len,
            "ring offset out of bounds"
        );
        core::ptr::with_exposed_provenance_mut::<T>(
            super::mmu::phys_to_virt(self.buf().paddr) + off,
        )
    }
}

impl Drop for DmaRing {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take()
            && !self.device_stopped
        {
            HAL.quarantine(buf);
        }
    }
}

impl caps::vring::RingMemory for DmaRing {
    fn paddr(&self) -> u64 {
        self.buf().paddr as u64
    }

    fn len(&self) -> usize {
        self.buf().len
    }

    fn read_u16(&self, off: usize) -> u16 {
        // SAFETY: `ptr` checked the offset against the buffer, which this ring owns; the
        // caps layout only passes naturally aligned offsets; the device writes concurrently,
        // hence volatile.
        u16::from_le(unsafe { self.ptr::<u16>(off).read_volatile() })
    }

    fn read_u32(&self, off: usize) -> u32 {
        // SAFETY: as in `read_u16`.
        u32::from_le(unsafe { self.ptr::<u32>(off).read_volatile() })
    }

    fn write_u16(&self, off: usize, v: u16) {
        // SAFETY: as in `read_u16`.
        unsafe { self.ptr::<u16>(off).write_volatile(v.to_le()) }
    }

    fn write_u32(&self, off: usize, v: u32) {
        // SAFETY: as in `read_u16`.
        unsafe { self.ptr::<u32>(off).write_volatile(v.to_le()) }
    }

    fn write_u64(&self, off: usize, v: u64) {
        // SAFETY: as in `read_u16`.
        unsafe { self.ptr::<u64>(off).write_volatile(v.to_le()) }
    }

    fn device_stopped(&mut self, _done: &caps::dma::TransferDone) {
        self.device_stopped = true;
    }

    fn fence(&self, kind: caps::vring::Fence) {
        use caps::vring::Fence;
        // SAFETY: barriers only (virtio_rmb/wmb/mb on the outer-shareable domain).
        unsafe {
            match kind {
                Fence::Read => core::arch::asm!("dmb oshld", options(nostack)),
                Fence::Write => core::arch::asm!("dmb oshst", options(nostack)),
                Fence::Full => core::arch::asm!("dmb osh", options(nostack)),
            }
        }
    }
}
