//! Kernel stacks with guard pages, carved from one arena mapped at boot.
//!
//! Each slot is an unmapped guard page followed by the stack, so an overflow
//! faults (and the fault report names the guard) instead of corrupting the
//! neighbour. Two sizes share the arena: kernel threads get 512 KiB (bringing
//! virtio-net up moves its driver tables by value), user threads 64 KiB (their
//! system calls keep buffers on the heap), so a few hundred processes fit where a
//! few dozen kernel threads would. The arena is mapped once, page by page, before
//! anything else lives in it; slots are recycled through atomic bitmaps.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// One guard page below each stack.
pub const GUARD_SIZE: usize = 4096;

/// Which kind of thread a stack is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Kernel threads (drivers, the network task, CPU bring-up): 512 KiB.
    Kernel,
    /// User threads (their kernel side runs system calls): 64 KiB.
    User,
}

impl Class {
    /// Bytes of stack.
    pub const fn size(self) -> usize {
        match self {
            Class::Kernel => 512 * 1024,
            Class::User => 64 * 1024,
        }
    }

    /// Slots of this class.
    pub const fn slots(self) -> usize {
        match self {
            Class::Kernel => 32,
            Class::User => 256,
        }
    }

    const fn slot_size(self) -> usize {
        self.size() + GUARD_SIZE
    }

    /// Offset of the class's first slot in the arena.
    const fn offset(self) -> usize {
        match self {
            Class::Kernel => 0,
            Class::User => Class::Kernel.slots() * Class::Kernel.slot_size(),
        }
    }

    const fn bitmap(self) -> &'static [AtomicU64] {
        match self {
            Class::Kernel => &KERNEL_USED,
            Class::User => &USER_USED,
        }
    }
}

/// Bytes the arena needs.
pub const ARENA_SIZE: usize = Class::User.offset() + Class::User.slots() * Class::User.slot_size();
/// Stacks in all.
pub const SLOTS: usize = Class::Kernel.slots() + Class::User.slots();

static ARENA_BASE: AtomicUsize = AtomicUsize::new(0);
static KERNEL_USED: [AtomicU64; 1] = [const { AtomicU64::new(0) }; 1];
static USER_USED: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// A kernel stack; dropping it returns the slot.
#[derive(Debug)]
pub struct KernelStack {
    class: Class,
    slot: usize,
}

impl KernelStack {
    /// Lowest usable address (just above the guard page).
    pub fn bottom(&self) -> usize {
        ARENA_BASE.load(Ordering::Relaxed)
            + self.class.offset()
            + self.slot * self.class.slot_size()
            + GUARD_SIZE
    }
    /// Initial stack pointer (16-byte aligned, one past the top).
    pub fn top(&self) -> usize {
        self.bottom() + self.class.size()
    }
    /// The guard page's address.
    pub fn guard(&self) -> usize {
        self.bottom() - GUARD_SIZE
    }
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        self.class.bitmap()[self.slot / 64].fetch_and(!(1 << (self.slot % 64)), Ordering::AcqRel);
    }
}

/// Maps the arena at physical `base` (ARENA_SIZE bytes of free RAM) into the linear
/// map: stacks RW, guards unmapped.
pub fn init(base: usize) -> Result<(), super::mmu::MapFailed> {
    for class in [Class::Kernel, Class::User] {
        for slot in 0..class.slots() {
            let stack = base + class.offset() + slot * class.slot_size() + GUARD_SIZE;
            super::mmu::map(stack, stack + class.size(), super::mmu::Kind::ReadWrite)?;
        }
    }
    ARENA_BASE.store(super::mmu::phys_to_virt(base), Ordering::Release);
    Ok(())
}

/// Takes a free stack of `class`, or `None` when all its slots are in use.
pub fn alloc(class: Class) -> Option<KernelStack> {
    if ARENA_BASE.load(Ordering::Acquire) == 0 {
        return None;
    }
    for (w, word) in class.bitmap().iter().enumerate() {
        let mut used = word.load(Ordering::Relaxed);
        loop {
            let bit = (!used).trailing_zeros() as usize;
            if bit >= 64 || w * 64 + bit >= class.slots() {
                break;
            }
            match word.compare_exchange_weak(
                used,
                used | 1 << bit,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(KernelStack {
                        class,
                        slot: w * 64 + bit,
                    });
                }
                Err(now) => used = now,
            }
        }
    }
    None
}

/// Which stack's guard page contains `addr`, if any (for fault reports): its class and
/// slot.
pub fn guard_hit(addr: usize) -> Option<(Class, usize)> {
    let base = ARENA_BASE.load(Ordering::Relaxed);
    if base == 0 || addr < base || addr >= base + ARENA_SIZE {
        return None;
    }
    let offset = addr - base;
    let class = if offset < Class::User.offset() {
        Class::Kernel
    } else {
        Class::User
    };
    let within = offset - class.offset();
    (within % class.slot_size() < GUARD_SIZE).then_some((class, within / class.slot_size()))
}

/// Stacks in use: (kernel, user).
pub fn in_use() -> (u32, u32) {
    let count = |b: &[AtomicU64]| {
        b.iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones())
            .sum()
    };
    (count(&KERNEL_USED), count(&USER_USED))
}

/// Writes a thread's first trap frame at the top of `stack` — EL1h, IRQs unmasked,
/// resuming at `entry` — and returns its address for the scheduler.
pub fn initial_frame(stack: &KernelStack, entry: usize) -> usize {
    use super::vectors::TrapFrame;
    write_frame(
        stack,
        TrapFrame {
            elr: entry as u64,
            // EL1h with Debug and SError masked, IRQ and FIQ unmasked; PAN on if the CPU
            // has it (an exception return restores PSTATE from here).
            spsr: 0x305
                | if super::mmu::pan() {
                    super::mmu::PSTATE_PAN
                } else {
                    0
                },
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
