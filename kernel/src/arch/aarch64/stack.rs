//! Kernel stacks with guard pages, carved from one arena mapped at boot.
//!
//! Each slot is an unmapped guard page followed by the stack, so an overflow
//! faults (and the fault report names the guard) instead of corrupting the
//! neighbour. The arena is mapped once, page by page, before anything else lives
//! in it; slots are recycled through an atomic bitmap.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Bytes of stack per kernel thread.
pub const STACK_SIZE: usize = 512 * 1024;
/// One guard page below each stack.
pub const GUARD_SIZE: usize = 4096;
/// Slot stride in the arena.
pub const SLOT_SIZE: usize = STACK_SIZE + GUARD_SIZE;
/// Number of kernel stacks (one bitmap word).
pub const SLOTS: usize = 64;
/// Bytes the arena needs.
pub const ARENA_SIZE: usize = SLOTS * SLOT_SIZE;

static ARENA_BASE: AtomicUsize = AtomicUsize::new(0);
static USED: AtomicU64 = AtomicU64::new(0);

/// A kernel stack; dropping it returns the slot.
#[derive(Debug)]
pub struct KernelStack {
    slot: usize,
}

impl KernelStack {
    /// Lowest usable address (just above the guard page).
    pub fn bottom(&self) -> usize {
        ARENA_BASE.load(Ordering::Relaxed) + self.slot * SLOT_SIZE + GUARD_SIZE
    }
    /// Initial stack pointer (16-byte aligned, one past the top).
    pub fn top(&self) -> usize {
        self.bottom() + STACK_SIZE
    }
    /// The guard page's address.
    pub fn guard(&self) -> usize {
        self.bottom() - GUARD_SIZE
    }
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        USED.fetch_and(!(1 << self.slot), Ordering::AcqRel);
    }
}

/// Maps the arena at physical `base` (ARENA_SIZE bytes of free RAM) into the linear
/// map: stacks RW, guards unmapped.
pub fn init(base: usize) -> Result<(), super::mmu::MapFailed> {
    for slot in 0..SLOTS {
        let stack = base + slot * SLOT_SIZE + GUARD_SIZE;
        super::mmu::map(stack, stack + STACK_SIZE, super::mmu::Kind::ReadWrite)?;
    }
    ARENA_BASE.store(super::mmu::phys_to_virt(base), Ordering::Release);
    Ok(())
}

/// Takes a free stack, or `None` when all slots are in use.
pub fn alloc() -> Option<KernelStack> {
    if ARENA_BASE.load(Ordering::Acquire) == 0 {
        return None;
    }
    let mut used = USED.load(Ordering::Relaxed);
    loop {
        let slot = (!used).trailing_zeros() as usize;
        if slot >= SLOTS {
            return None;
        }
        match USED.compare_exchange_weak(
            used,
            used | 1 << slot,
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(_) => return Some(KernelStack { slot }),
            Err(now) => used = now,
        }
    }
}

/// Which slot's guard page contains `addr`, if any (for fault reports).
pub fn guard_hit(addr: usize) -> Option<usize> {
    let base = ARENA_BASE.load(Ordering::Relaxed);
    if base == 0 || addr < base || addr >= base + ARENA_SIZE {
        return None;
    }
    let offset = addr - base;
    (offset % SLOT_SIZE < GUARD_SIZE).then_some(offset / SLOT_SIZE)
}

/// Stacks in use.
pub fn in_use() -> u32 {
    USED.load(Ordering::Relaxed).count_ones()
}

/// Writes a thread's first trap frame at the top of `stack` — EL1h, IRQs unmasked,
/// resuming at `entry` — and returns its address for the scheduler.
pub fn initial_frame(stack: &KernelStack, entry: usize) -> usize {
    use super::vectors::TrapFrame;
    write_frame(
        stack,
        TrapFrame {
            elr: entry as u64,
            // EL1h with Debug and SError masked, IRQ and FIQ unmasked.
            spsr: 0x305,
            ..TrapFrame::default()
        },
    )
}

/// Writes a user thread's first trap frame at the top of `stack`: the exception return
/// goes to EL0 (SPSR EL0t, every interrupt unmasked) at `entry` with `sp` as its stack
/// pointer and `arg` in x0. Exceptions from EL0 then land at the top of this stack
/// again (SP_EL1 is the frame's end after the return).
pub fn initial_user_frame(stack: &KernelStack, entry: u64, sp: u64, arg: u64) -> usize {
    use super::vectors::TrapFrame;
    let mut frame = TrapFrame {
        elr: entry,
        sp_el0: sp,
        spsr: 0,
        ..TrapFrame::default()
    };
    frame.x[0] = arg;
    write_frame(stack, frame)
}

fn write_frame(stack: &KernelStack, frame: super::vectors::TrapFrame) -> usize {
    let addr = stack.top() - core::mem::size_of_val(&frame);
    let ptr = core::ptr::with_exposed_provenance_mut::<super::vectors::TrapFrame>(addr);
    // SAFETY: `addr` is inside this stack slot (mapped RW, owned by `stack`, not yet
    // running) and 16-byte aligned (top is page aligned, the frame is 288 bytes).
    unsafe { ptr.write(frame) };
    addr
}

/// Base of the stack arena (0 before `init`).
pub fn guard_base() -> usize {
    ARENA_BASE.load(Ordering::Relaxed)
}
