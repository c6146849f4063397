//! Reading the DTB the boot loader left in memory.
//!
//! The blob is outside the image, at whatever address `x0` held; these two
//! functions are where the kernel turns that address into a slice.

/// Reads the first 8 bytes of the DTB header at `addr` (magic and total size), if the
/// address is plausible (non-zero, 8-byte aligned as the DT spec requires).
pub fn dtb_header(addr: usize) -> Option<[u8; 8]> {
    if addr == 0 || !addr.is_multiple_of(8) {
        return None;
    }
    let ptr = core::ptr::with_exposed_provenance::<[u8; 8]>(addr);
    // SAFETY: the boot protocol says x0 holds the DTB's physical address; with the MMU
    // off (identity, device memory) an aligned 8-byte read of RAM cannot fault. A bogus
    // address in RAM reads garbage that the magic check rejects.
    Some(unsafe { ptr.read_volatile() })
}

/// The DTB as a slice, once its range is mapped read-only.
pub fn dtb_slice(addr: usize, len: usize) -> &'static [u8] {
    let ptr = core::ptr::with_exposed_provenance::<u8>(addr);
    // SAFETY: `[addr, addr + len)` is the DTB blob (size from its validated header),
    // mapped read-only by the boot map and reserved from the frame allocator, so it
    // stays valid and unmodified for the kernel's lifetime.
    unsafe { core::slice::from_raw_parts(ptr, len) }
}
