//! Memory shared with a user process: frames the kernel reads and writes through its linear
//! map while a process maps the same frames and writes them at the same time.
//!
//! Nothing the process writes can be trusted or held still: the kernel reads a `u32` index
//! with one acquire load and publishes its own with one release store (the process does the
//! same on its side), and copies frame bytes out before it looks at them, so a process that
//! rewrites a slot under the kernel changes only the copy's contents, which are checked like
//! any frame from the wire. Every access is bounds-checked against the area.

use core::sync::atomic::{AtomicU32, Ordering};

use abi::Error;

use crate::mem::frames::{self, FRAME};

/// A run of zeroed frames shared with one process (`netif_open`'s area). Dropping it frees
/// the frames: the owner drops it only after the process's mapping is gone.
#[derive(Debug)]
pub struct SharedArea {
    paddr: usize,
    len: usize,
}

impl SharedArea {
    /// `len` bytes (whole frames), zeroed. `ENOMEM` if no run of frames is free.
    pub fn new(len: usize) -> Result<SharedArea, Error> {
        if len == 0 {
            return Err(Error::EINVAL);
        }
        let len = len.next_multiple_of(FRAME);
        let paddr = frames::alloc(len / FRAME).map_err(|_| Error::ENOMEM)?;
        let area = SharedArea { paddr, len };
        // SAFETY: the frames were just taken from the allocator: nobody else maps them yet,
        // and the linear map covers them read-write for `len` bytes.
        unsafe { core::ptr::write_bytes(area.ptr(0), 0, len) };
        Ok(area)
    }

    /// Physical address of byte 0 (what the process's mapping points at).
    pub fn paddr(&self) -> usize {
        self.paddr
    }

    fn ptr(&self, off: usize) -> *mut u8 {
        core::ptr::with_exposed_provenance_mut::<u8>(super::mmu::phys_to_virt(self.paddr + off))
    }

    fn word(&self, off: usize) -> Option<&AtomicU32> {
        if !off.is_multiple_of(4) || off.checked_add(4)? > self.len {
            return None;
        }
        // SAFETY: 4-aligned and inside the area, which lives as long as `&self`; every access
        // to the word, the process's included, is a single-copy-atomic 32-bit access.
        Some(unsafe { AtomicU32::from_ptr(self.ptr(off).cast()) })
    }

    /// The `u32` at `off` (an acquire load: what the writer stored before it is visible).
    /// 0 if `off` is misaligned or outside the area.
    pub fn load(&self, off: usize) -> u32 {
        self.word(off).map_or(0, |w| w.load(Ordering::Acquire))
    }

    /// Stores `v` at `off` (a release store: what the kernel wrote before is visible
    /// first). Ignored if `off` is misaligned or outside the area.
    pub fn store(&self, off: usize, v: u32) {
        if let Some(w) = self.word(off) {
            w.store(v, Ordering::Release);
        }
    }

    /// Copies `out.len()` bytes from `off` out of the area; `false` (nothing copied) if the
    /// range is not inside it.
    pub fn read(&self, off: usize, out: &mut [u8]) -> bool {
        if off.checked_add(out.len()).is_none_or(|end| end > self.len) {
            return false;
        }
        // SAFETY: the range is inside the area; the process may write it concurrently, which
        // only changes the bytes copied (they are checked after the copy, never trusted).
        unsafe { core::ptr::copy_nonoverlapping(self.ptr(off), out.as_mut_ptr(), out.len()) };
        true
    }

    /// Appends `len` bytes from `off` to `out` (no zero-filling first); `false` (nothing
    /// appended) if the range is not inside the area or `out` cannot grow by `len`.
    pub fn read_append(&self, off: usize, len: usize, out: &mut alloc::vec::Vec<u8>) -> bool {
        if off.checked_add(len).is_none_or(|end| end > self.len) || out.try_reserve(len).is_err() {
            return false;
        }
        // SAFETY: the source range is inside the area (the process may write it concurrently,
        // which only changes the bytes copied); `out` has room for `len` more bytes, which
        // are initialised by the copy before the length covers them.
        unsafe {
            let end = out.as_mut_ptr().add(out.len());
            core::ptr::copy_nonoverlapping(self.ptr(off), end, len);
            out.set_len(out.len() + len);
        }
        true
    }

    /// Copies `data` into the area at `off`; `false` (nothing written) if the range is not
    /// inside it.
    pub fn write(&self, off: usize, data: &[u8]) -> bool {
        if off.checked_add(data.len()).is_none_or(|end| end > self.len) {
            return false;
        }
        // SAFETY: the range is inside the area; the process sees the bytes once the release
        // store of the index that hands the slot over follows.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr(off), data.len()) };
        true
    }
}

impl Drop for SharedArea {
    fn drop(&mut self) {
        frames::free(self.paddr, self.len / FRAME);
    }
}
