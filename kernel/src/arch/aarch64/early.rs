//! Reading the DTB the boot loader left in memory.
//!
//! The blob is outside the image, at whatever physical address `x0` held; these two
//! functions map it read-only into the linear map and turn it into a slice.

use super::mmu::{self, Kind};

/// Reads the first 8 bytes of the DTB header at physical `addr` (magic and total size),
/// if the address is plausible (non-zero, 8-byte aligned as the DT spec requires, inside
/// the linear map).
pub fn dtb_header(addr: usize) -> Option<[u8; 8]> {
    if addr == 0 || !addr.is_multiple_of(8) {
        return None;
    }
    let va = mmu::map(addr, addr + 8, Kind::ReadOnly).ok()?;
    let ptr = core::ptr::with_exposed_provenance::<[u8; 8]>(va);
    // SAFETY: the boot protocol says x0 holds the DTB's physical address, now mapped
    // read-only at `va`; an aligned 8-byte read of RAM cannot fault. A bogus address in
    // RAM reads garbage that the magic check rejects.
    Some(unsafe { ptr.read_volatile() })
}

/// The DTB at physical `addr` as a slice, mapped read-only for the kernel's lifetime.
pub fn dtb_slice(addr: usize, len: usize) -> Option<&'static [u8]> {
    let va = mmu::map(addr, addr + len, Kind::ReadOnly).ok()?;
    let ptr = core::ptr::with_exposed_provenance::<u8>(va);
    // SAFETY: `[addr, addr + len)` is the DTB blob (size from its validated header),
    // mapped read-only at `va` and reserved from the frame allocator, so it stays valid
    // and unmodified for the kernel's lifetime.
    Some(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// The initial RAM disk at physical `[addr, addr + len)`, mapped read-only for the
/// kernel's lifetime (its frames are kept out of the allocator).
pub fn initrd_slice(addr: usize, len: usize) -> Option<&'static [u8]> {
    let va = mmu::map(addr, addr + len, Kind::ReadOnly).ok()?;
    let ptr = core::ptr::with_exposed_provenance::<u8>(va);
    // SAFETY: the range is the initrd the boot loader placed (from `/chosen`), mapped
    // read-only at `va` and never given to the frame allocator, so it stays valid and
    // unmodified.
    Some(unsafe { core::slice::from_raw_parts(ptr, len) })
}
