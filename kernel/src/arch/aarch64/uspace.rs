//! A user address space: the lower half (TTBR0) of one process, tagged with an ASID.
//!
//! Each process gets its own `aarch64-paging` table for the lower half, whose table
//! pages come from the frame allocator (reached through the linear map), and a 16-bit
//! ASID, so switching processes is one TTBR0 write with no TLB flush. Every user page
//! is non-global (ASID-tagged), never executable at EL1 (PXN) and never writable and
//! executable at once; the caller (the process layer) decides what to map and owns the
//! frames behind it. Dropping the space frees its tables, invalidates its ASID in every
//! CPU's TLB and only then lets the ASID be reused.

use aarch64_paging::Mapping;
use aarch64_paging::descriptor::{El1Attributes as Attr, PhysicalAddress};
use aarch64_paging::paging::{Constraints, El1And0, MemoryRegion, PageTable, Translation, VaRange};
use core::arch::asm;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::mmu::phys_to_virt;
use crate::mem::frames::{self, FRAME};

/// What user code may do with a page (W^X: never write and execute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAccess {
    /// Read-only data.
    Read,
    /// Read-write data, never executable.
    ReadWrite,
    /// Code: read and execute, never writable.
    ReadExecute,
    /// A device's registers (a user driver's `mmio_map`): read-write, device memory
    /// (nGnRE, uncached, never speculated), never executable.
    Device,
}

impl UserAccess {
    fn attributes(self) -> Attr {
        let user = Attr::VALID | Attr::ACCESSED | Attr::USER | Attr::NON_GLOBAL | Attr::PXN;
        let base = user | Attr::INNER_SHAREABLE | Attr::ATTRIBUTE_INDEX_1;
        match self {
            UserAccess::Device => user | Attr::ATTRIBUTE_INDEX_0 | Attr::UXN,
            UserAccess::Read => base | Attr::READ_ONLY | Attr::UXN,
            UserAccess::ReadWrite => base | Attr::UXN,
            UserAccess::ReadExecute => base | Attr::READ_ONLY,
        }
    }
}

/// Table pages from the frame allocator, zeroed, addressed through the linear map.
///
/// `aarch64-paging` cannot fail a table allocation, so frames are reserved before each
/// change ([`AddressSpace::map`] takes the worst case up front and returns the rest):
/// running out of memory is an error for the caller, never a panic.
#[derive(Debug, Default)]
pub struct UserTables {
    pages: usize,
    reserve: core::cell::RefCell<alloc::vec::Vec<usize>>,
}

/// Frames held by user page tables, all spaces together (for `/proc/meminfo`).
static TABLE_FRAMES: AtomicUsize = AtomicUsize::new(0);

impl UserTables {
    /// Takes `n` frames from the allocator into the reserve; `false` (and none kept) if
    /// there are not that many.
    fn reserve(&self, n: usize) -> bool {
        let mut pool = self.reserve.borrow_mut();
        while pool.len() < n {
            match frames::alloc(1) {
                Ok(pa) => pool.push(pa),
                Err(_) => {
                    pool.drain(..).for_each(|pa| frames::free(pa, 1));
                    return false;
                }
            }
        }
        true
    }

    /// Gives unused reserved frames back.
    fn release(&self) {
        self.reserve
            .borrow_mut()
            .drain(..)
            .for_each(|pa| frames::free(pa, 1));
    }
}

impl Translation<Attr> for UserTables {
    fn allocate_table(&mut self) -> (NonNull<PageTable<Attr>>, PhysicalAddress) {
        // Every change reserves the worst case first (see the type's note); a missing
        // frame here is a bug in that bound, not an input the kernel did not control.
        let pa = self
            .reserve
            .get_mut()
            .pop()
            .expect("page-table frames are reserved before every change");
        let va = phys_to_virt(pa);
        let ptr = core::ptr::with_exposed_provenance_mut::<u8>(va);
        // SAFETY: the frame came from the allocator into this space's reserve (nobody else
        // uses it) and is mapped read-write in the linear map at `va`.
        unsafe { ptr.write_bytes(0, FRAME) };
        self.pages += 1;
        TABLE_FRAMES.fetch_add(1, Ordering::Relaxed);
        (
            NonNull::new(ptr.cast()).expect("linear map addresses are never null"),
            PhysicalAddress(pa),
        )
    }

    unsafe fn deallocate_table(&mut self, page_table: NonNull<PageTable<Attr>>) {
        frames::free(page_table.as_ptr() as usize - phys_to_virt(0), 1);
        self.pages -= 1;
        TABLE_FRAMES.fetch_sub(1, Ordering::Relaxed);
    }

    fn physical_to_virtual(&self, pa: PhysicalAddress) -> NonNull<PageTable<Attr>> {
        NonNull::new(phys_to_virt(pa.0) as *mut PageTable<Attr>)
            .expect("linear map addresses are never null")
    }
}

/// Most table pages mapping `[va, va + len)` can need: one per level-3 table it touches
/// (512 pages each), one per level-2 table (1 GiB), one per level-1 table (512 GiB), and
/// the root.
fn tables_needed(va: usize, len: usize) -> usize {
    let span = |shift: u32| ((va + len - 1) >> shift) - (va >> shift) + 1;
    span(21) + span(30) + span(39) + 1
}

/// Frames held by user page tables now.
pub fn table_frames() -> usize {
    TABLE_FRAMES.load(Ordering::Relaxed)
}

/// ASIDs 1..=`MAX_ASID` (0 is the kernel's: the empty TTBR0 when no process runs).
const MAX_ASID: usize = 255;
static ASIDS: [AtomicU64; MAX_ASID.div_ceil(64) + 1] = [const { AtomicU64::new(0) }; 5];

fn alloc_asid() -> Option<u16> {
    for asid in 1..=MAX_ASID {
        let (word, bit) = (asid / 64, 1u64 << (asid % 64));
        if ASIDS[word].fetch_or(bit, Ordering::AcqRel) & bit == 0 {
            return Some(asid as u16);
        }
    }
    None
}

fn free_asid(asid: u16) {
    let asid = usize::from(asid);
    ASIDS[asid / 64].fetch_and(!(1 << (asid % 64)), Ordering::AcqRel);
}

/// Why a mapping change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapRefused {
    /// The range is empty, outside the lower half, or conflicts with a live entry.
    Range,
    /// No frames for the page tables.
    NoMemory,
}

/// One process's lower-half translation.
pub struct AddressSpace {
    map: Mapping<UserTables, El1And0>,
    asid: u16,
}

// SAFETY: the table's raw pointers refer to frames this space owns; a space is used by one
// thread at a time (the process layer keeps it behind a lock), never shared unsynchronised.
unsafe impl Send for AddressSpace {}

impl AddressSpace {
    /// An empty space with a fresh ASID; `None` when all ASIDs are in use or there is no
    /// frame for the root table.
    pub fn new() -> Option<Self> {
        let tables = UserTables::default();
        if !tables.reserve(1) {
            return None;
        }
        let Some(asid) = alloc_asid() else {
            tables.release();
            return None;
        };
        let map =
            Mapping::with_asid_and_va_range(tables, usize::from(asid), 0, El1And0, VaRange::Lower);
        // Treat the table as live from the start: every unmap then invalidates the TLB.
        map.mark_active();
        Some(AddressSpace { map, asid })
    }

    /// The TTBR0_EL1 value that runs this space.
    pub fn ttbr0(&self) -> u64 {
        self.map.root_address().0 as u64 | (u64::from(self.asid) << 48)
    }

    /// The space's ASID.
    pub fn asid(&self) -> u16 {
        self.asid
    }

    /// Maps `[va, va + len)` to physical `[pa, pa + len)` with `access` (page aligned,
    /// `len` > 0). `NoMemory` if the page tables cannot grow.
    pub fn map(
        &mut self,
        va: usize,
        pa: usize,
        len: usize,
        access: UserAccess,
    ) -> Result<(), MapRefused> {
        self.change(va, len, PhysicalAddress(pa), access.attributes())
    }

    /// Unmaps `[va, va + len)` (page aligned); the TLB entries go with it.
    pub fn unmap(&mut self, va: usize, len: usize) -> Result<(), MapRefused> {
        self.change(va, len, PhysicalAddress(0), Attr::empty())
    }

    fn change(
        &mut self,
        va: usize,
        len: usize,
        pa: PhysicalAddress,
        attr: Attr,
    ) -> Result<(), MapRefused> {
        if len == 0 || va.checked_add(len).is_none_or(|end| end > 1 << 48) {
            return Err(MapRefused::Range);
        }
        if !self.map.translation().reserve(tables_needed(va, len)) {
            return Err(MapRefused::NoMemory);
        }
        let r = self.map.map_range(
            &MemoryRegion::new(va, va + len),
            pa,
            attr,
            Constraints::NO_BLOCK_MAPPINGS,
        );
        self.map.translation().release();
        r.map_err(|_| MapRefused::Range)
    }

    /// Frames this space's page tables hold.
    pub fn table_pages(&self) -> usize {
        self.map.translation().pages
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        // SAFETY: TLBI ASIDE1IS drops this ASID's entries on every CPU; the DSB waits for it.
        // No CPU runs the space any more (the process layer switched them away first).
        unsafe {
            asm!("dsb ishst", "tlbi aside1is, {0}", "dsb ish", "isb",
                 in(reg) u64::from(self.asid) << 48, options(nostack));
        }
        self.map.mark_inactive();
        free_asid(self.asid);
        // The `Mapping` drops after this and frees every table page.
    }
}
