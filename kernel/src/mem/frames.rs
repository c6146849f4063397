//! The physical frame allocator over the DTB's RAM, minus everything reserved.
//!
//! A buddy allocator (`buddy_system_allocator`) over 4 KiB frame numbers.
//! Running out is an `OutOfMemory` error the caller handles, never a panic.

use buddy_system_allocator::FrameAllocator;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::memrange::Range;
use crate::sync::IrqLock;

/// Frame size.
pub const FRAME: usize = 4096;

static ALLOC: IrqLock<FrameAllocator<32>> = IrqLock::new(FrameAllocator::new());
static TOTAL: AtomicUsize = AtomicUsize::new(0);
static FREE: AtomicUsize = AtomicUsize::new(0);

/// No run of free frames large enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfMemory;

/// Adds free RAM (rounded inward to frames).
pub fn add(range: Range) {
    let r = range.align_inward(FRAME);
    if r.is_empty() {
        return;
    }
    ALLOC.lock().add_frame(r.start / FRAME, r.end / FRAME);
    let frames = r.len() / FRAME;
    TOTAL.fetch_add(frames, Ordering::Relaxed);
    FREE.fetch_add(frames, Ordering::Relaxed);
}

/// Allocates `count` contiguous frames (aligned to the next power of two); returns the
/// physical address of the first.
pub fn alloc(count: usize) -> Result<usize, OutOfMemory> {
    let first = ALLOC.lock().alloc(count.max(1)).ok_or(OutOfMemory)?;
    FREE.fetch_sub(count.max(1), Ordering::Relaxed);
    Ok(first * FRAME)
}

/// Returns frames from [`alloc`].
pub fn free(addr: usize, count: usize) {
    ALLOC.lock().dealloc(addr / FRAME, count.max(1));
    FREE.fetch_add(count.max(1), Ordering::Relaxed);
}

/// (free frames, total frames).
pub fn stats() -> (usize, usize) {
    (FREE.load(Ordering::Relaxed), TOTAL.load(Ordering::Relaxed))
}
