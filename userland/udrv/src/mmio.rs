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

    /// Reads the 8-bit register at `offset`.
    ///
    /// # Panics
    /// If the register is not inside the window.
    pub fn read8(&self, offset: usize) -> u8 {
        let p = self.at(offset, 1) as *const u8;
        // SAFETY: as for `read32`, with 1 byte checked.
        #[allow(unsafe_code, reason = "a register inside the mapped window")]
        unsafe {
            p.read_volatile()
        }
    }

    /// Writes the 8-bit register at `offset`.
    ///
    /// # Panics
    /// As [`Mmio::read8`].
    pub fn write8(&self, offset: usize, value: u8) {
        let p = self.at(offset, 1) as *mut u8;
        // SAFETY: as for `read32`, with 1 byte checked.
        #[allow(unsafe_code, reason = "a register inside the mapped window")]
        unsafe {
            p.write_volatile(value)
        }
    }

    /// Reads the 16-bit register at `offset`.
    ///
    /// # Panics
    /// If `offset` is not 2-byte aligned or the register is not inside the window.
    pub fn read16(&self, offset: usize) -> u16 {
        let p = self.at(offset, 2) as *const u16;
        // SAFETY: as for `read32`, with 2 bytes checked.
        #[allow(unsafe_code, reason = "a register inside the mapped window")]
        unsafe {
            p.read_volatile()
        }
    }

    /// Writes the 16-bit register at `offset`.
    ///
    /// # Panics
    /// As [`Mmio::read16`].
    pub fn write16(&self, offset: usize, value: u16) {
        let p = self.at(offset, 2) as *mut u16;
        // SAFETY: as for `read32`, with 2 bytes checked.
        #[allow(unsafe_code, reason = "a register inside the mapped window")]
        unsafe {
            p.write_volatile(value)
        }
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

/// Normal memory this process shares with another party that reads and writes it at the
/// same time: a virtqueue's rings (the device) or a network interface's frame area (the
/// kernel, on another CPU). Every access is bounds- and alignment-checked (offsets come
/// from a layout, so a bad one is a driver bug and panics, as in [`Mmio`]) and no reference
/// to the memory is ever made. Words are volatile; the indices the two sides hand each
/// other go through [`SharedMem::load_acquire32`] and [`SharedMem::store_release32`]; bulk
/// bytes (`copy_in`, `copy_out`) are plain copies ordered by those index accesses.
pub struct SharedMem {
    base: usize,
    len: usize,
}

impl SharedMem {
    /// Memory a `DevSys` call mapped: `len` read-write bytes at `base`, 8-byte aligned,
    /// mapped for as long as this value's owner keeps the capability it came with.
    pub(crate) fn mapped(base: usize, len: usize) -> Self {
        SharedMem { base, len }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address of `size` bytes at `offset`, checked (`align` bytes alignment).
    fn at(&self, offset: usize, size: usize, align: usize) -> usize {
        assert!(
            offset.is_multiple_of(align)
                && offset.checked_add(size).is_some_and(|end| end <= self.len),
            "SharedMem: {size} bytes at {offset:#x} outside the {:#x}-byte area or misaligned",
            self.len
        );
        self.base + offset
    }

    /// Little-endian 16 bits at `offset`.
    pub fn read16(&self, offset: usize) -> u16 {
        let p = self.at(offset, 2, 2) as *const u16;
        #[allow(
            unsafe_code,
            reason = "memory the kernel mapped, shared with a device or the kernel"
        )]
        // SAFETY: `mapped`'s caller vouched for `len` mapped bytes at `base` (8-byte
        // aligned) while the owner lives; `at` checked the range and alignment. Volatile:
        // the other side writes it concurrently.
        let v = unsafe { p.read_volatile() };
        u16::from_le(v)
    }

    /// Little-endian 32 bits at `offset`.
    pub fn read32(&self, offset: usize) -> u32 {
        let p = self.at(offset, 4, 4) as *const u32;
        #[allow(
            unsafe_code,
            reason = "memory the kernel mapped, shared with a device or the kernel"
        )]
        // SAFETY: as for `read16`, 4 bytes checked.
        let v = unsafe { p.read_volatile() };
        u32::from_le(v)
    }

    /// Writes little-endian 16 bits at `offset`.
    pub fn write16(&self, offset: usize, v: u16) {
        let p = self.at(offset, 2, 2) as *mut u16;
        #[allow(
            unsafe_code,
            reason = "memory the kernel mapped, shared with a device or the kernel"
        )]
        // SAFETY: as for `read16`.
        unsafe {
            p.write_volatile(v.to_le())
        }
    }

    /// Writes little-endian 32 bits at `offset`.
    pub fn write32(&self, offset: usize, v: u32) {
        let p = self.at(offset, 4, 4) as *mut u32;
        #[allow(
            unsafe_code,
            reason = "memory the kernel mapped, shared with a device or the kernel"
        )]
        // SAFETY: as for `read16`, 4 bytes checked.
        unsafe {
            p.write_volatile(v.to_le())
        }
    }

    /// Writes little-endian 64 bits at `offset`.
    pub fn write64(&self, offset: usize, v: u64) {
        let p = self.at(offset, 8, 8) as *mut u64;
        #[allow(
            unsafe_code,
            reason = "memory the kernel mapped, shared with a device or the kernel"
        )]
        // SAFETY: as for `read16`, 8 bytes checked.
        unsafe {
            p.write_volatile(v.to_le())
        }
    }

    /// An index the other side published: 32 bits at `offset`, an acquire load (what it
    /// wrote before publishing is visible after this).
    pub fn load_acquire32(&self, offset: usize) -> u32 {
        let p = self.at(offset, 4, 4) as *mut u32;
        #[allow(
            unsafe_code,
            reason = "memory the kernel mapped, shared with the kernel"
        )]
        // SAFETY: as for `read16`, 4 bytes checked and 4-aligned; every access this process
        // makes to an index word goes through these two atomic accessors.
        let a = unsafe { core::sync::atomic::AtomicU32::from_ptr(p) };
        a.load(core::sync::atomic::Ordering::Acquire)
    }

    /// Publishes an index: 32 bits at `offset`, a release store (everything written before
    /// is visible to the other side once it reads this).
    pub fn store_release32(&self, offset: usize, v: u32) {
        let p = self.at(offset, 4, 4) as *mut u32;
        #[allow(
            unsafe_code,
            reason = "memory the kernel mapped, shared with the kernel"
        )]
        // SAFETY: as for `load_acquire32`.
        let a = unsafe { core::sync::atomic::AtomicU32::from_ptr(p) };
        a.store(v, core::sync::atomic::Ordering::Release)
    }

    /// Copies `dst.len()` bytes from `offset` out, as one `memcpy`.
    ///
    /// Not volatile, unlike the index accesses: the bytes are read only after an acquire
    /// load of the index that handed them over, and nothing writes them until we hand
    /// them back (the kernel copies the other way the same way). Byte-wise volatile loads
    /// were most of a user NIC driver's time under QEMU.
    pub fn copy_out(&self, offset: usize, dst: &mut [u8]) {
        let p = self.at(offset, dst.len(), 1) as *const u8;
        #[allow(
            unsafe_code,
            reason = "memory the kernel mapped, shared with a device or the kernel"
        )]
        // SAFETY: `at` checked that all `dst.len()` bytes are inside the mapping, which
        // cannot overlap `dst` (a Rust allocation of this process); by the protocol no one
        // writes them while we read (see above).
        unsafe {
            core::ptr::copy_nonoverlapping(p, dst.as_mut_ptr(), dst.len())
        }
    }

    /// Copies `src` in at `offset`, as one `memcpy` (the release store of the index that
    /// hands the bytes over orders them before it).
    pub fn copy_in(&self, offset: usize, src: &[u8]) {
        let p = self.at(offset, src.len(), 1) as *mut u8;
        #[allow(
            unsafe_code,
            reason = "memory the kernel mapped, shared with a device or the kernel"
        )]
        // SAFETY: as for `copy_out`; the bytes are ours until the index store.
        unsafe {
            core::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len())
        }
    }
}

impl fmt::Debug for SharedMem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMem")
            .field("base", &format_args!("{:#x}", self.base))
            .field("len", &format_args!("{:#x}", self.len))
            .finish()
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
    fn copies_at_any_offset_and_length_keep_every_byte() {
        let backing = alloc::vec![0u64; 0x200];
        let mem = super::SharedMem::mapped(backing.as_ptr() as usize, 0x1000);
        let src: alloc::vec::Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
        for off in 0..9 {
            for len in [0, 1, 7, 8, 9, 15, 16, 17, 63, 200] {
                mem.copy_in(0x100, &[0xee; 216]);
                mem.copy_in(0x100 + off, &src[..len]);
                let mut back = [0u8; 216];
                mem.copy_out(0x100, &mut back);
                assert_eq!(&back[off..off + len], &src[..len], "off {off} len {len}");
                assert!(back[..off].iter().all(|&b| b == 0xee));
                assert!(back[off + len..].iter().all(|&b| b == 0xee));
                let mut part = alloc::vec![0u8; len];
                mem.copy_out(0x100 + off, &mut part);
                assert_eq!(part, &src[..len]);
            }
        }
    }

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
