//! The global allocator: `talc` over memory from `mem_map`, grown on demand.
//!
//! A process starts with no heap; the first allocation maps a chunk (at least 64 KiB,
//! more for a large request) and hands it to talc. Memory is never returned to the
//! kernel before exit (exit frees the whole address space at once).

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{NonNull, null_mut};

use talc::base::Talc;
use talc::base::binning::DefaultBinning;
use talc::source::Manual;

use crate::mem::{self, PROT_READ, PROT_WRITE};

const CHUNK: usize = 64 * 1024;

struct State(Talc<Manual, DefaultBinning>);

// SAFETY: talc's raw pointers refer to this process's heap memory; the state is only
// reached through the mutex below.
unsafe impl Send for State {}

// The workspace's clippy.toml refuses plain spin locks because a kernel interrupt handler
// could spin on one its own CPU holds. A process at EL0 takes no interrupts (nor signals):
// nothing can preempt a holder on its own thread and take the lock again.
#[allow(
    clippy::disallowed_types,
    reason = "user space has no interrupt handlers"
)]
struct Heap(spin::Mutex<State>);

#[global_allocator]
#[allow(
    clippy::disallowed_types,
    reason = "user space has no interrupt handlers"
)]
static HEAP: Heap = Heap(spin::Mutex::new(State(Talc::new(Manual))));

// SAFETY: allocation and deallocation go to talc under one lock; talc upholds the
// GlobalAlloc contract for the memory it was given, which `mem_map` mapped for good.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut state = self.0.lock();
        // SAFETY: `layout` comes from the caller per GlobalAlloc's contract.
        if let Some(p) = unsafe { state.0.allocate(layout) } {
            return p.as_ptr();
        }
        let want = (layout.size() + layout.align() + 4096).next_multiple_of(CHUNK);
        let Ok(addr) = mem::map(want, PROT_READ | PROT_WRITE) else {
            return null_mut();
        };
        let Some(base) = NonNull::new(addr as *mut u8) else {
            return null_mut();
        };
        // SAFETY: the kernel just mapped `want` bytes at `base` for this process only.
        if unsafe { state.0.claim(base.as_ptr(), want) }.is_none() {
            return null_mut();
        }
        // SAFETY: as above.
        unsafe { state.0.allocate(layout) }.map_or(null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` and `layout` come from `alloc` above.
        unsafe { self.0.lock().0.deallocate(ptr, layout) }
    }
}
