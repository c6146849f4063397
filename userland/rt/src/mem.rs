//! Memory: `mem_map` and `mem_unmap` (W^X: never writable and executable at once).

use abi::Sysnum;
pub use abi::proc::{PROT_EXEC, PROT_READ, PROT_WRITE};

use crate::sys;

/// Maps `len` bytes (rounded up to pages) of zeroed memory with `prot`; returns the
/// address.
pub fn map(len: usize, prot: u32) -> crate::Result<usize> {
    sys::call3(Sysnum::MemMap, 0, len as u64, u64::from(prot)).map(|r| r[0] as usize)
}

/// Unmaps `[addr, addr + len)`, which an earlier `map` returned.
pub fn unmap(addr: usize, len: usize) -> crate::Result<()> {
    sys::call2(Sysnum::MemUnmap, addr as u64, len as u64).map(|_| ())
}
