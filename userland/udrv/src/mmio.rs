//! `Mmio`: a mapped register window with checked volatile access.
//!
//! `mmio_map` maps part of a BAR as device memory. Every access here is volatile (the
//! compiler neither merges, reorders among themselves, nor drops them) and of exactly the
//! width asked for, because a device register may act on the read itself and may not
//! accept a narrower or wider access. Offsets come from the driver's register map, so one
//! outside the window or misaligned (an alignment fault on device memory) is a driver
//! bug: it panics with the offset, like an out-of-range slice index, instead of touching
//! the wrong register. No reference to the window's memory is ever made.

use core::fmt;

/// A register window, `len` bytes from `base`, mapped until the process exits.
///
/// Not `Clone`: one owner drives the registers.
pub struct Mmio {
    base: usize,
    len: usize,
}

impl Mmio {
    /// The window `DevSys::mmio_map` returned (it vouches for `base` and `len`).
    pub(crate) fn mapped(base: usize, len: usize) -> Self {
        Mmio { base, len }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether an access of `size` bytes at `offset` is inside the window and aligned.
    pub fn fits(&self, offset: usize, size: usize) -> bool {
        offset.is_multiple_of(size) && offset.checked_add(size).is_some_and(|end| end <= self.len)
    }

    /// The address of `size` bytes at `offset`, checked.
    fn at(&self, offset: usize, size: usize) -> usize {
        assert!(
            self.fits(offset, size),
            "Mmio: {size}-byte access at {offset:#x} outside the {:#x}-byte window or misaligned",
            self.len
        );
        self.base + offset
    }

    /// Reads the 32-bit register at `offset`.
    ///
    /// # Panics
    /// If `offset` is not 4-byte aligned or the register is not inside the window.
    pub fn read32(&self, offset: usize) -> u32 {
        let p = self.at(offset, 4) as *const u32;
        // SAFETY: `DevSys::mmio_map` promised `len` bytes of device registers at `base`,
        // 8-byte aligned and mapped for the life of the process; `at` checked that the
        // 4 bytes lie inside and are aligned.
        #[allow(unsafe_code, reason = "a register inside the mapped window")]
        unsafe {
            p.read_volatile()
        }
    }

    /// Writes the 32-bit register at `offset`.
    ///
    /// # Panics
    /// As [`Mmio::read32`].
    pub fn write32(&self, offset: usize, value: u32) {
        let p = self.at(offset, 4) as *mut u32;
        // SAFETY: as for `read32`.
        #[allow(unsafe_code, reason = "a register inside the mapped window")]
        unsafe {
            p.write_volatile(value)
        }
    }

    /// Reads the 64-bit register at `offset`.
    ///
    /// # Panics
    /// If `offset` is not 8-byte aligned or the register is not inside the window.
    pub fn read64(&self, offset: usize) -> u64 {
        let p = self.at(offset, 8) as *const u64;
        // SAFETY: as for `read32`, with 8 bytes checked.
        #[allow(unsafe_code, reason = "a register inside the mapped window")]
        unsafe {
            p.read_volatile()
        }
    }

    /// Writes the 64-bit register at `offset`.
    ///
    /// # Panics
    /// As [`Mmio::read64`].
    pub fn write64(&self, offset: usize, value: u64) {
        let p = self.at(offset, 8) as *mut u64;
        // SAFETY: as for `read64`.
        #[allow(unsafe_code, reason = "a register inside the mapped window")]
        unsafe {
            p.write_volatile(value)
        }
    }
}

impl fmt::Debug for Mmio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mmio")
            .field("base", &format_args!("{:#x}", self.base))
            .field("len", &format_args!("{:#x}", self.len))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::fake::FakeKernel;

    #[test]
    fn registers_read_back_what_was_written_at_their_width() {
        let (k, device) = FakeKernel::with_device();
        let regs = device.mmio(0, 0, 0x1000).unwrap();
        assert_eq!(k.last_map(), (0, 0, 0x1000));
        regs.write32(0x8, 0xdead_beef);
        regs.write64(0x98, 0x0123_4567_89ab_cdef);
        assert_eq!(regs.read32(0x8), 0xdead_beef);
        assert_eq!(regs.read64(0x98), 0x0123_4567_89ab_cdef);
        assert_eq!(regs.read32(0x9c), 0x0123_4567, "little-endian halves");
        regs.write32(0xffc, 7);
        assert_eq!(regs.read32(0xffc), 7, "the last register");
        assert!(regs.fits(0xff8, 8) && !regs.fits(0xffc, 8) && !regs.fits(usize::MAX - 3, 4));
    }

    #[test]
    #[should_panic(expected = "outside the 0x1000-byte window")]
    fn a_register_past_the_window_panics() {
        let (_, device) = FakeKernel::with_device();
        let _ = device.mmio(0, 0, 0x1000).unwrap().read32(0x1000);
    }

    #[test]
    #[should_panic(expected = "at 0xffc outside")]
    fn a_wide_register_straddling_the_end_panics() {
        let (_, device) = FakeKernel::with_device();
        device.mmio(0, 0, 0x1000).unwrap().write64(0xffc, 0);
    }

    #[test]
    #[should_panic(expected = "misaligned")]
    fn a_misaligned_register_panics() {
        let (_, device) = FakeKernel::with_device();
        let _ = device.mmio(0, 0, 0x1000).unwrap().read64(0x84);
    }

    #[test]
    fn a_refused_map_is_an_error() {
        let (k, device) = FakeKernel::with_device();
        k.fail_next(abi::Error::EACCES);
        assert_eq!(
            device.mmio(2, 0x3000, 0x1000).err(),
            Some(abi::Error::EACCES)
        );
    }
}
