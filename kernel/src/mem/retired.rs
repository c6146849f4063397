//! Retired DMA memory: frames a user driver's device may have written, poisoned and held a
//! while before they go back to the frame allocator, so a late device write is caught.
//!
//! Without an IOMMU nothing stops a device from writing memory it was once given. The
//! teardown order (docs/user-drivers.md) frees a DMA buffer only after the kernel read that
//! the device stopped; this module checks that claim from the other side. Every freed user
//! DMA buffer is filled with a pattern derived from its address and kept for at least
//! [`HOLD_NS`] (or until [`CAPACITY`] newer ones push it out); when it leaves, the pattern is
//! compared word for word. A mismatch means a device wrote memory the kernel had already
//! freed: it is counted and logged, never ignored. `/proc/dma` shows the counts.

use alloc::collections::VecDeque;
use core::sync::atomic::{AtomicU64, Ordering};

use caps::dma::DmaBuffer;

use crate::arch::dma::FrameBuffer;
use crate::sync::IrqLock;

/// How long a retired buffer stays poisoned before it is checked and freed: longer than
/// any transfer a device started before its driver died takes to land (edu's take 100 ms).
pub const HOLD_NS: u64 = 1_000_000_000;
/// Most buffers held at once; an older one is checked and freed early to make room.
pub const CAPACITY: usize = 256;

struct Held {
    buf: FrameBuffer,
    since_ns: u64,
}

static PEN: IrqLock<VecDeque<Held>> = IrqLock::new(VecDeque::new());
static CHECKED: AtomicU64 = AtomicU64::new(0);
static VIOLATIONS: AtomicU64 = AtomicU64::new(0);

/// The poison word at byte offset `off` of the buffer at `pa`.
fn poison_word(pa: u64, off: usize) -> u64 {
    0xdead_d0a5_0000_0000 ^ (pa + off as u64)
}

/// Poisons `buf` and holds it; frees (after checking) whatever is due.
pub fn retire(mut buf: FrameBuffer) {
    let pa = buf.paddr();
    for (i, word) in buf.bytes_mut().chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&poison_word(pa, i * 8).to_le_bytes());
    }
    crate::arch::cpu::dsb_sy();
    let now = crate::time::now_ns();
    let due = {
        let mut pen = PEN.lock();
        let _ = pen.try_reserve(1);
        pen.push_back(Held { buf, since_ns: now });
        take_due(&mut pen, now)
    };
    due.into_iter().for_each(check_and_free);
}

/// Checks and frees every held buffer now, whatever its age (tests, after the devices that
/// could write them are known to be stopped). Returns (checked so far, violations so far).
pub fn flush() -> (u64, u64) {
    let all: alloc::vec::Vec<Held> = PEN.lock().drain(..).collect();
    all.into_iter().for_each(check_and_free);
    counts()
}

/// Checks and frees the buffers held long enough (called from `/proc/dma` and each retire).
pub fn sweep() {
    let due = take_due(&mut PEN.lock(), crate::time::now_ns());
    due.into_iter().for_each(check_and_free);
}

/// (buffers checked, violations found), since boot.
pub fn counts() -> (u64, u64) {
    (
        CHECKED.load(Ordering::Relaxed),
        VIOLATIONS.load(Ordering::Relaxed),
    )
}

/// Buffers and bytes held now.
pub fn held() -> (usize, usize) {
    let pen = PEN.lock();
    (pen.len(), pen.iter().map(|h| h.buf.len()).sum())
}

fn take_due(pen: &mut VecDeque<Held>, now: u64) -> alloc::vec::Vec<Held> {
    let mut due = alloc::vec::Vec::new();
    while let Some(front) = pen.front() {
        if pen.len() <= CAPACITY && now.saturating_sub(front.since_ns) < HOLD_NS {
            break;
        }
        due.extend(pen.pop_front());
    }
    due
}

fn check_and_free(held: Held) {
    let pa = held.buf.paddr();
    let mut first_bad = None;
    crate::arch::cpu::dsb_sy();
    for (i, word) in held.buf.bytes().chunks_exact(8).enumerate() {
        let v = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        if v != poison_word(pa, i * 8) {
            first_bad = Some(i * 8);
            break;
        }
    }
    CHECKED.fetch_add(1, Ordering::Relaxed);
    if let Some(off) = first_bad {
        VIOLATIONS.fetch_add(1, Ordering::Relaxed);
        log::error!(
            "DMA: a device wrote freed memory: buffer {pa:#x} ({} bytes) changed at offset {off:#x}",
            held.buf.len()
        );
    }
    // `held.buf` drops here: its frames go back to the allocator.
}
