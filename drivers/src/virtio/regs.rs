//! Register windows for virtio: bounded 8/16/32-bit volatile accesses.
//!
//! virtio 1.2 §4.1.3.1 requires every field to be accessed with its natural
//! width (16-bit fields with 16-bit accesses), which the crate's `Mmio` helper
//! does not offer, and the windows a virtio PCI function exposes (common,
//! notify, ISR and device configuration, or the legacy BAR0 block) have sizes
//! that the device reports at run time. [`RegWindow`] is what the transports
//! are written against, so host tests plug in fake devices; [`MmioWindow`] is
//! the real one, the only `unsafe` in `virtio/`, doing its loads and stores through the
//! crate's one set of register accessors (`crate::mmio::raw`). An access outside the window
//! or misaligned for its width reads all-ones and drops writes, like an absent
//! PCI function, rather than panicking: offsets partly come from the device.

use core::ptr::NonNull;

use crate::mmio::raw;

/// Register access to one virtio window (offsets are bytes from its start).
pub trait RegWindow {
    /// Window length in bytes.
    fn len(&self) -> usize;
    /// Whether the window has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// 8-bit read.
    fn read8(&self, off: usize) -> u8;
    /// 16-bit little-endian read.
    fn read16(&self, off: usize) -> u16;
    /// 32-bit little-endian read.
    fn read32(&self, off: usize) -> u32;
    /// 8-bit write.
    fn write8(&self, off: usize, v: u8);
    /// 16-bit little-endian write.
    fn write16(&self, off: usize, v: u16);
    /// 32-bit little-endian write.
    fn write32(&self, off: usize, v: u32);
    /// A 64-bit field as two 32-bit reads, low half first (virtio 1.2 §4.1.3.1).
    fn read64_split(&self, off: usize) -> u64 {
        let low = self.read32(off);
        u64::from(self.read32(off + 4)) << 32 | u64::from(low)
    }
    /// A 64-bit field as two 32-bit writes, low half first (virtio 1.2 §4.1.3.1).
    fn write64_split(&self, off: usize, v: u64) {
        self.write32(off, v as u32);
        self.write32(off + 4, (v >> 32) as u32);
    }
}

// The typed accessors (`crate::reg::Access`) on a window, for the register layouts of
// virtio structures (`pci::CommonCfg`).
crate::reg::forward_raw_access!([W: RegWindow + ?Sized] W, read64_split, write64_split);

/// A memory-mapped window (a BAR region, or the CPU mapping of an I/O BAR).
pub struct MmioWindow {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the window only performs volatile device accesses through a mapping whose exclusive
// use the constructor's caller handed over; registers have no thread affinity.
unsafe impl Send for MmioWindow {}
// SAFETY: as for `Send`; concurrent single-copy-atomic register accesses are well defined.
unsafe impl Sync for MmioWindow {}

impl MmioWindow {
    /// Wraps `len` bytes of device registers mapped at virtual address `base`.
    ///
    /// # Safety
    /// `base` is non-null and maps `len` bytes of a virtio structure (a BAR
    /// range located by [`super::pci::VirtioPciCaps`], or legacy BAR0) as
    /// device memory, valid for the life of the value, with memory or I/O
    /// decode enabled, and no one else accesses those registers meanwhile.
    #[must_use]
    pub const unsafe fn new(base: usize, len: usize) -> Self {
        // SAFETY: the caller promises `base` is non-null.
        let base = unsafe { NonNull::new_unchecked(base as *mut u8) };
        MmioWindow { base, len }
    }

    /// The address of a `width`-byte access at `off`, if inside and aligned.
    fn at(&self, off: usize, width: usize) -> Option<*mut u8> {
        let end = off.checked_add(width)?;
        (end <= self.len && off.is_multiple_of(width)).then(|| self.base.as_ptr().wrapping_add(off))
    }
}

impl RegWindow for MmioWindow {
    fn len(&self) -> usize {
        self.len
    }
    fn read8(&self, off: usize) -> u8 {
        // SAFETY: `at` checked the byte lies inside the window `new` was promised.
        self.at(off, 1)
            .map_or(u8::MAX, |p| unsafe { raw::read8(p) })
    }
    fn read16(&self, off: usize) -> u16 {
        // SAFETY: `at` checked the access is aligned and inside the window.
        self.at(off, 2)
            .map_or(u16::MAX, |p| unsafe { raw::read16(p.cast()) })
    }
    fn read32(&self, off: usize) -> u32 {
        // SAFETY: `at` checked the access is aligned and inside the window.
        self.at(off, 4)
            .map_or(u32::MAX, |p| unsafe { raw::read32(p.cast()) })
    }
    fn write8(&self, off: usize, v: u8) {
        if let Some(p) = self.at(off, 1) {
            // SAFETY: `at` checked the byte lies inside the window.
            unsafe { raw::write8(p, v) }
        }
    }
    fn write16(&self, off: usize, v: u16) {
        if let Some(p) = self.at(off, 2) {
            // SAFETY: `at` checked the access is aligned and inside the window.
            unsafe { raw::write16(p.cast(), v) }
        }
    }
    fn write32(&self, off: usize, v: u32) {
        if let Some(p) = self.at(off, 4) {
            // SAFETY: `at` checked the access is aligned and inside the window.
            unsafe { raw::write32(p.cast(), v) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_natural_width_accesses() {
        let mut mem = std::vec![0u32; 8];
        // SAFETY: `mem` is 32 bytes, 4-aligned, outlives `w`, and only `w` touches it.
        let w = unsafe { MmioWindow::new(mem.as_mut_ptr() as usize, 32) };
        w.write32(0, 0x1122_3344);
        w.write16(6, 0xbeef);
        w.write8(9, 0x5a);
        assert_eq!(
            (w.read32(0), w.read16(2), w.read8(0)),
            (0x1122_3344, 0x1122, 0x44)
        );
        assert_eq!((w.read16(6), w.read8(9)), (0xbeef, 0x5a));
        // Outside or misaligned: all-ones, writes dropped.
        assert_eq!(
            (w.read32(30), w.read16(3), w.read8(32)),
            (u32::MAX, u16::MAX, u8::MAX)
        );
        w.write32(29, 1);
        w.write16(usize::MAX, 1);
        w.write64_split(16, 0x0102_0304_0506_0708);
        assert_eq!((w.read32(16), w.read32(20)), (0x0506_0708, 0x0102_0304));
        assert_eq!(w.read64_split(16), 0x0102_0304_0506_0708);
        assert_eq!(mem[7], 0);
    }
}
