//! The kernel heap: `talc` behind an IRQ-masking lock, grown from free frames.
//!
//! A small static arena lets the page-table builder allocate before the frame
//! allocator exists; `grow` then hands the heap a run of frames. The lock masks
//! IRQs so a thread preempted inside `alloc` cannot deadlock the next one (no
//! allocation happens in hard-IRQ context anyway). Exhaustion returns null, which
//! `try_reserve`-style callers see as an error value.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{NonNull, null_mut};
use core::sync::atomic::{AtomicUsize, Ordering};
use talc::base::Talc;
use talc::base::binning::DefaultBinning;
use talc::source::Manual;

use crate::sync::IrqLock;

const INITIAL_SIZE: usize = 1 << 20;

#[repr(C, align(4096))]
struct Arena([u8; INITIAL_SIZE]);

static mut INITIAL_ARENA: Arena = Arena([0; INITIAL_SIZE]);

/// Talc's state: raw pointers into memory the heap owns.
struct TalcState(Talc<Manual, DefaultBinning>);

// SAFETY: the pointers refer to heap memory, not to thread-local data; the state is only
// reached through the `IrqLock`, one CPU at a time.
unsafe impl Send for TalcState {}

struct KernelHeap {
    talc: IrqLock<TalcState>,
    in_use: AtomicUsize,
    size: AtomicUsize,
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap {
    talc: IrqLock::new(TalcState(Talc::new(Manual))),
    in_use: AtomicUsize::new(0),
    size: AtomicUsize::new(0),
};

// SAFETY: allocate/deallocate forward to talc under its IrqLock (IRQs masked); talc
// upholds the GlobalAlloc contract for memory it was given by `claim`.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: layout comes from the caller per GlobalAlloc's contract.
        let ptr = unsafe { self.talc.lock().0.allocate(layout) };
        match ptr {
            Some(p) => {
                self.in_use.fetch_add(layout.size(), Ordering::Relaxed);
                p.as_ptr()
            }
            None => null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr/layout were returned by `alloc` above, per GlobalAlloc's contract.
        unsafe { self.talc.lock().0.deallocate(ptr, layout) };
        self.in_use.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

fn claim(base: *mut u8, size: usize) -> bool {
    // SAFETY: callers pass memory nobody else uses for the rest of the kernel's life.
    let ok = unsafe { HEAP.talc.lock().0.claim(base, size) }.is_some();
    if ok {
        HEAP.size.fetch_add(size, Ordering::Relaxed);
    }
    ok
}

/// Gives the heap its static boot arena. Call once, first thing in `kernel_main`.
pub fn init() {
    claim((&raw mut INITIAL_ARENA).cast::<u8>(), INITIAL_SIZE);
}

/// Adds physical `[start, start + len)` — free RAM the frame allocator gave up for good,
/// reached through the linear map.
pub fn grow(start: usize, len: usize) -> bool {
    let va = super::mmu::phys_to_virt(start);
    match NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(va)) {
        Some(p) => claim(p.as_ptr(), len),
        None => false,
    }
}

/// (bytes in use, bytes managed).
pub fn stats() -> (usize, usize) {
    (
        HEAP.in_use.load(Ordering::Relaxed),
        HEAP.size.load(Ordering::Relaxed),
    )
}
