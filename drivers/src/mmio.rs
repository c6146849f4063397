//! Volatile access to one memory-mapped register block, never by reference.
//!
//! Every driver register struct (`Gicd`, `Gicc`, `GicrRd`, `Uart`, ...) is a
//! `#[repr(C)]` layout used only for `offset_of!`; the bytes behind it are device
//! memory, so no `&`/`&mut` to them may exist (a reference would let the compiler
//! assume ordinary memory semantics). [`Mmio`] owns the base pointer and performs
//! single-copy-atomic accesses at checked offsets. On aarch64 the accesses are
//! plain `ldr`/`str` with no writeback addressing, because a hypervisor that traps
//! MMIO (KVM, VMware, Parallels) can only emulate accesses whose syndrome is valid
//! (ESR_EL2.ISV = 1), and LLVM may otherwise pick post-indexed or paired forms for
//! `read_volatile`. This is the same reasoning as Google's `safe-mmio`, which we do
//! not use because its writes need `&mut` and our `InterruptController` is shared
//! (`&self`, `Sync`) across CPUs.
//!
//! A layout whose fields are typed by access (`ReadOnly<u32>`, `W1c<u32>`, ...) is reached
//! through [`reg`]: `reg!` names a field, and `reg::Access` reads, writes, read-modify-writes,
//! sets or clears it only where the hardware allows (the GIC blocks, virtio's common
//! configuration). The other blocks still use the offset accessors below.

pub mod reg;

use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ptr::NonNull;

/// Exclusive handle on a mapped register block laid out as `T`.
pub(crate) struct Mmio<T> {
    base: NonNull<u8>,
    _layout: PhantomData<*mut T>,
}

// SAFETY: `Mmio` only performs volatile device accesses through a pointer whose
// exclusive ownership the constructor's caller handed over; registers have no thread affinity.
unsafe impl<T> Send for Mmio<T> {}
// SAFETY: as for `Send`; concurrent single-copy-atomic register accesses are well defined.
unsafe impl<T> Sync for Mmio<T> {}

impl<T> Mmio<T> {
    /// Wraps the register block at virtual address `base`.
    ///
    /// # Safety
    /// `base` is non-null, aligned for `T`, and the virtual address of at least
    /// `size_of::<T>()` bytes of device memory (Device-nGnRE or stricter) that stay
    /// mapped for the life of the handle and are accessed by no one else except
    /// through this handle (or device-level side effects the driver accounts for).
    pub(crate) const unsafe fn new(base: usize) -> Self {
        let ptr = base as *mut u8;
        // SAFETY: the caller promises `base` is non-null.
        let base = unsafe { NonNull::new_unchecked(ptr) };
        Self {
            base,
            _layout: PhantomData,
        }
    }

    /// Pointer to a `U` register at byte `offset`; panics if it leaves the block.
    fn ptr<U>(&self, offset: usize) -> *mut U {
        assert!(
            offset.is_multiple_of(align_of::<U>()) && offset + size_of::<U>() <= size_of::<T>(),
            "register offset outside block"
        );
        self.base.as_ptr().wrapping_add(offset).cast()
    }

    /// Reads the 8-bit register at `offset`.
    pub(crate) fn read8(&self, offset: usize) -> u8 {
        let p = self.ptr::<u8>(offset);
        // SAFETY: `ptr` checked that `p` lies inside the block `new` was promised.
        unsafe { raw::read8(p) }
    }

    /// Writes the 8-bit register at `offset`.
    pub(crate) fn write8(&self, offset: usize, value: u8) {
        let p = self.ptr::<u8>(offset);
        // SAFETY: `ptr` checked that `p` lies inside the block `new` was promised.
        unsafe { raw::write8(p, value) }
    }

    /// Reads the 16-bit register at `offset`.
    pub(crate) fn read16(&self, offset: usize) -> u16 {
        let p = self.ptr::<u16>(offset);
        // SAFETY: `ptr` checked that `p` is aligned and inside the promised block.
        unsafe { raw::read16(p) }
    }

    /// Writes the 16-bit register at `offset`.
    pub(crate) fn write16(&self, offset: usize, value: u16) {
        let p = self.ptr::<u16>(offset);
        // SAFETY: `ptr` checked that `p` is aligned and inside the promised block.
        unsafe { raw::write16(p, value) }
    }

    /// Reads the 32-bit register at `offset`.
    pub(crate) fn read32(&self, offset: usize) -> u32 {
        let p = self.ptr::<u32>(offset);
        // SAFETY: `ptr` checked that `p` is aligned and inside the promised block.
        unsafe { raw::read32(p) }
    }

    /// Writes the 32-bit register at `offset`.
    pub(crate) fn write32(&self, offset: usize, value: u32) {
        let p = self.ptr::<u32>(offset);
        // SAFETY: `ptr` checked that `p` is aligned and inside the promised block.
        unsafe { raw::write32(p, value) }
    }

    /// Reads the 64-bit register at `offset`.
    pub(crate) fn read64(&self, offset: usize) -> u64 {
        let p = self.ptr::<u64>(offset);
        // SAFETY: `ptr` checked that `p` is aligned and inside the promised block.
        unsafe { raw::read64(p) }
    }

    /// Writes the 64-bit register at `offset`.
    pub(crate) fn write64(&self, offset: usize, value: u64) {
        let p = self.ptr::<u64>(offset);
        // SAFETY: `ptr` checked that `p` is aligned and inside the promised block.
        unsafe { raw::write64(p, value) }
    }
}

// The typed accessors (`reg::Access`) on a block: each load or store is one access of the
// field's width at its checked offset.
reg::forward_raw_access!([T] Mmio<T>, read64, write64);

/// Register access by byte offset, 32 and 64 bits wide: what a device driver is written
/// against (edu, the ITS), so its host tests plug in a model of the device. [`MmioRegs`] is
/// the real one. (The virtio windows have their own `RegWindow`: their sizes come from the
/// device at run time and an access outside reads all-ones instead of panicking.)
pub trait Registers {
    /// Reads the 32-bit register at `offset`.
    fn read32(&self, offset: usize) -> u32;
    /// Writes the 32-bit register at `offset`.
    fn write32(&self, offset: usize, value: u32);
    /// Reads the 64-bit register at `offset`.
    fn read64(&self, offset: usize) -> u64;
    /// Writes the 64-bit register at `offset`.
    fn write64(&self, offset: usize, value: u64);
}

/// A device's register block mapped at a virtual address, laid out as `T`: the real
/// [`Registers`] (`edu::EduMmio`, `its::regs::ItsMmio`).
pub struct MmioRegs<T> {
    regs: Mmio<T>,
}

impl<T> MmioRegs<T> {
    /// Wraps the register block mapped at virtual address `base`.
    ///
    /// # Safety
    /// `base` maps at least `size_of::<T>()` bytes of the device's registers as device memory
    /// (with its decode enabled), aligned for `T`, for the life of the value, and nothing else
    /// accesses them.
    #[must_use]
    pub const unsafe fn new(base: usize) -> Self {
        MmioRegs {
            // SAFETY: the caller hands over an exclusive device mapping of the block.
            regs: unsafe { Mmio::new(base) },
        }
    }
}

impl<T> Registers for MmioRegs<T> {
    fn read32(&self, offset: usize) -> u32 {
        self.regs.read32(offset)
    }
    fn write32(&self, offset: usize, value: u32) {
        self.regs.write32(offset, value)
    }
    fn read64(&self, offset: usize) -> u64 {
        self.regs.read64(offset)
    }
    fn write64(&self, offset: usize, value: u64) {
        self.regs.write64(offset, value)
    }
}

/// Single-instruction accessors; `asm!` on aarch64 so every access has a valid ISV. The one
/// home of the crate's device-register loads and stores: `Mmio` and the virtio windows
/// (`virtio::regs::MmioWindow`) both go through it. Little-endian CPU.
#[cfg(target_arch = "aarch64")]
pub(crate) mod raw {
    use core::arch::asm;

    /// # Safety
    /// `p` is a valid device-register address for a 1-byte access.
    pub(crate) unsafe fn read8(p: *mut u8) -> u8 {
        let v: u32;
        // SAFETY: the caller guarantees `p` is a mapped register; a load has no other effect.
        unsafe {
            asm!(
                "ldrb {v:w}, [{p}]",
                p = in(reg) p,
                v = out(reg) v,
                options(nostack, preserves_flags),
            )
        };
        v as u8
    }

    /// # Safety
    /// `p` is a valid device-register address for a 1-byte access.
    pub(crate) unsafe fn write8(p: *mut u8, v: u8) {
        // SAFETY: the caller guarantees `p` is a mapped register.
        unsafe {
            asm!(
                "strb {v:w}, [{p}]",
                p = in(reg) p,
                v = in(reg) u32::from(v),
                options(nostack, preserves_flags),
            )
        };
    }

    /// # Safety
    /// `p` is a valid, aligned device-register address for a 2-byte access.
    pub(crate) unsafe fn read16(p: *mut u16) -> u16 {
        let v: u32;
        // SAFETY: the caller guarantees `p` is a mapped, aligned register.
        unsafe {
            asm!(
                "ldrh {v:w}, [{p}]",
                p = in(reg) p,
                v = out(reg) v,
                options(nostack, preserves_flags),
            )
        };
        v as u16
    }

    /// # Safety
    /// `p` is a valid, aligned device-register address for a 2-byte access.
    pub(crate) unsafe fn write16(p: *mut u16, v: u16) {
        // SAFETY: the caller guarantees `p` is a mapped, aligned register.
        unsafe {
            asm!(
                "strh {v:w}, [{p}]",
                p = in(reg) p,
                v = in(reg) u32::from(v),
                options(nostack, preserves_flags),
            )
        };
    }

    /// # Safety
    /// `p` is a valid, aligned device-register address for a 4-byte access.
    pub(crate) unsafe fn read32(p: *mut u32) -> u32 {
        let v: u32;
        // SAFETY: the caller guarantees `p` is a mapped, aligned register.
        unsafe {
            asm!(
                "ldr {v:w}, [{p}]",
                p = in(reg) p,
                v = out(reg) v,
                options(nostack, preserves_flags),
            )
        };
        v
    }

    /// # Safety
    /// `p` is a valid, aligned device-register address for a 4-byte access.
    pub(crate) unsafe fn write32(p: *mut u32, v: u32) {
        // SAFETY: the caller guarantees `p` is a mapped, aligned register.
        unsafe {
            asm!(
                "str {v:w}, [{p}]",
                p = in(reg) p,
                v = in(reg) v,
                options(nostack, preserves_flags),
            )
        };
    }

    /// # Safety
    /// `p` is a valid, aligned device-register address for an 8-byte access.
    pub(crate) unsafe fn read64(p: *mut u64) -> u64 {
        let v: u64;
        // SAFETY: the caller guarantees `p` is a mapped, aligned register.
        unsafe {
            asm!(
                "ldr {v:x}, [{p}]",
                p = in(reg) p,
                v = out(reg) v,
                options(nostack, preserves_flags),
            )
        };
        v
    }

    /// # Safety
    /// `p` is a valid, aligned device-register address for an 8-byte access.
    pub(crate) unsafe fn write64(p: *mut u64, v: u64) {
        // SAFETY: the caller guarantees `p` is a mapped, aligned register.
        unsafe {
            asm!(
                "str {v:x}, [{p}]",
                p = in(reg) p,
                v = in(reg) v,
                options(nostack, preserves_flags),
            )
        };
    }
}

/// Host builds (unit tests against fake register memory) use plain volatile access.
#[cfg(not(target_arch = "aarch64"))]
pub(crate) mod raw {
    /// # Safety
    /// `p` is valid for a 1-byte read.
    pub(crate) unsafe fn read8(p: *mut u8) -> u8 {
        // SAFETY: forwarded from the caller.
        unsafe { p.read_volatile() }
    }

    /// # Safety
    /// `p` is valid for a 1-byte write.
    pub(crate) unsafe fn write8(p: *mut u8, v: u8) {
        // SAFETY: forwarded from the caller.
        unsafe { p.write_volatile(v) }
    }

    /// # Safety
    /// `p` is valid and aligned for a 2-byte read.
    pub(crate) unsafe fn read16(p: *mut u16) -> u16 {
        // SAFETY: forwarded from the caller.
        unsafe { p.read_volatile() }
    }

    /// # Safety
    /// `p` is valid and aligned for a 2-byte write.
    pub(crate) unsafe fn write16(p: *mut u16, v: u16) {
        // SAFETY: forwarded from the caller.
        unsafe { p.write_volatile(v) }
    }

    /// # Safety
    /// `p` is valid and aligned for a 4-byte read.
    pub(crate) unsafe fn read32(p: *mut u32) -> u32 {
        // SAFETY: forwarded from the caller.
        unsafe { p.read_volatile() }
    }

    /// # Safety
    /// `p` is valid and aligned for a 4-byte write.
    pub(crate) unsafe fn write32(p: *mut u32, v: u32) {
        // SAFETY: forwarded from the caller.
        unsafe { p.write_volatile(v) }
    }

    /// # Safety
    /// `p` is valid and aligned for an 8-byte read.
    pub(crate) unsafe fn read64(p: *mut u64) -> u64 {
        // SAFETY: forwarded from the caller.
        unsafe { p.read_volatile() }
    }

    /// # Safety
    /// `p` is valid and aligned for an 8-byte write.
    pub(crate) unsafe fn write64(p: *mut u64, v: u64) {
        // SAFETY: forwarded from the caller.
        unsafe { p.write_volatile(v) }
    }
}

/// Fake register memory for host tests: a zeroed, page-aligned buffer.
#[cfg(test)]
pub(crate) mod fake {
    use std::boxed::Box;
    use std::vec;

    /// One 64 KiB GIC/UART frame worth of fake registers.
    #[repr(C, align(65536))]
    pub(crate) struct Frame(pub [u8; 0x10000]);

    /// `n` contiguous zeroed frames; keep the box alive while a driver uses it.
    pub(crate) fn frames(n: usize) -> Box<[Frame]> {
        let mut v = vec::Vec::with_capacity(n);
        v.resize_with(n, || Frame([0; 0x10000]));
        v.into_boxed_slice()
    }

    /// Base address of the buffer, for the drivers' `new`.
    pub(crate) fn base(f: &mut [Frame]) -> usize {
        f.as_mut_ptr() as usize
    }

    /// Reads a `u32` at byte `off` of the fake memory.
    pub(crate) fn r32(f: &[Frame], off: usize) -> u32 {
        let b = &f[off / 0x10000].0[off % 0x10000..][..4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Writes a `u32` at byte `off` of the fake memory.
    pub(crate) fn w32(f: &mut [Frame], off: usize, v: u32) {
        f[off / 0x10000].0[off % 0x10000..][..4].copy_from_slice(&v.to_le_bytes());
    }

    /// Writes a `u64` at byte `off` of the fake memory.
    pub(crate) fn w64(f: &mut [Frame], off: usize, v: u64) {
        f[off / 0x10000].0[off % 0x10000..][..8].copy_from_slice(&v.to_le_bytes());
    }
}
