//! A process's memory: its address space and the regions mapped in it.
//!
//! Every user page is backed by frames the region owns and mapped eagerly (no demand
//! paging, so a fault from EL0 is never a valid access and always ends the process).
//! Regions never overlap and carry one access mode each (W^X: read-only, read-write, or
//! read-execute). The layout is fixed: the executable's segments where its ELF file
//! says (inside `USER_MIN..USER_IMAGE_END`), `mem_map` regions in a window above it, and
//! the stack just below the top of the user half with an unmapped guard page under it.
//! Dropping a `Memory` frees every frame and page table at once (docs/process.md).

use alloc::vec::Vec;

use abi::Error;

use super::elf::{Access, LoadPlan};
use crate::arch::mmu::phys_to_virt;
use crate::arch::uspace::{AddressSpace, MapRefused, UserAccess};
use crate::mem::frames::{self, FRAME};

/// First address `mem_map` hands out.
pub const MMAP_BASE: usize = 0x10_0000_0000;
/// End of the `mem_map` window.
pub const MMAP_END: usize = 0x7000_0000_0000;
/// One past the stack's top page.
pub const STACK_TOP: usize = 0x7fff_ffff_0000;
/// Bytes of stack (mapped at spawn), above one unmapped guard page.
pub const STACK_SIZE: usize = 256 * 1024;
/// Most memory one process may have mapped (image, stack, `mem_map`).
pub const MEMORY_LIMIT: usize = 256 << 20;
/// Largest single `mem_map` request.
pub const MAX_MAP: usize = 64 << 20;
/// Largest run of frames allocated at once (1 MiB); bigger regions take several runs.
const MAX_RUN: usize = 256;

/// What a region is for (`/proc/<pid>/status`, and whether `mem_unmap` may touch it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionKind {
    /// A segment of the executable.
    Image,
    /// The stack.
    Stack,
    /// The stack's guard page (reserved, never mapped).
    Guard,
    /// `mem_map`.
    Anonymous,
    /// A device's registers (`mmio_map`): not memory the region owns.
    Mmio,
    /// A DMA buffer (`dma_alloc`): its frames belong to the `DmaRegion` capability, which
    /// frees or quarantines them only after the device stopped (docs/user-drivers.md).
    Dma,
    /// A network interface's frame area (`netif_open`): its frames belong to the `NetIf`
    /// capability, which drops them only after this mapping is gone.
    NetIf,
}

impl RegionKind {
    /// Whether the region's frames are someone else's (it maps, never frees them).
    fn is_foreign(self) -> bool {
        matches!(self, RegionKind::Mmio | RegionKind::Dma | RegionKind::NetIf)
    }
}

/// A run of physically contiguous frames (a power of two, as the allocator hands out).
#[derive(Debug)]
struct Run {
    pa: usize,
    frames: usize,
}

/// One mapped range.
#[derive(Debug)]
pub struct Region {
    /// First page.
    pub va: usize,
    /// Bytes (page multiple).
    pub len: usize,
    /// Page permissions.
    pub access: UserAccess,
    /// What it is.
    pub kind: RegionKind,
    runs: Vec<Run>,
}

impl Drop for Region {
    fn drop(&mut self) {
        for r in self.runs.drain(..) {
            frames::free(r.pa, r.frames);
        }
    }
}

/// A process's address space and regions.
pub struct Memory {
    space: AddressSpace,
    regions: Vec<Region>,
    mapped: usize,
}

impl Memory {
    /// An empty address space; `ENOMEM` without a free ASID or frame.
    pub fn new() -> Result<Memory, Error> {
        Ok(Memory {
            space: AddressSpace::new().ok_or(Error::ENOMEM)?,
            regions: Vec::new(),
            mapped: 0,
        })
    }

    /// The TTBR0 value that runs this space.
    pub fn ttbr0(&self) -> u64 {
        self.space.ttbr0()
    }

    /// The space's ASID.
    pub fn asid(&self) -> u16 {
        self.space.asid()
    }

    /// Bytes mapped.
    pub fn mapped(&self) -> usize {
        self.mapped
    }

    /// Frames the page tables hold.
    pub fn table_pages(&self) -> usize {
        self.space.table_pages()
    }

    /// The regions, in address order.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    fn overlaps(&self, va: usize, len: usize) -> bool {
        self.regions
            .iter()
            .any(|r| va < r.va + r.len && r.va < va + len)
    }

    /// Allocates zeroed frames for `len` bytes, maps them at `va` with `access`, and
    /// records the region. Nothing changes on error.
    fn add(
        &mut self,
        va: usize,
        len: usize,
        access: UserAccess,
        kind: RegionKind,
    ) -> Result<&Region, Error> {
        self.add_backed(va, len, access, kind, None)
    }

    /// `add`, or with `foreign` (a physical address) maps those frames instead of fresh
    /// ones: the region then never frees them. MMIO is not counted against the limit.
    fn add_backed(
        &mut self,
        va: usize,
        len: usize,
        access: UserAccess,
        kind: RegionKind,
        foreign: Option<usize>,
    ) -> Result<&Region, Error> {
        if len == 0
            || !va.is_multiple_of(FRAME)
            || !len.is_multiple_of(FRAME)
            || self.overlaps(va, len)
        {
            return Err(Error::EINVAL);
        }
        let counted = if kind == RegionKind::Mmio { 0 } else { len };
        if self.mapped + counted > MEMORY_LIMIT {
            return Err(Error::ENOMEM);
        }
        let mut region = Region {
            va,
            len,
            access,
            kind,
            runs: Vec::new(),
        };
        if let Some(pa) = foreign {
            self.space.map(va, pa, len, access).map_err(|e| {
                let _ = self.space.unmap(va, len);
                match e {
                    MapRefused::NoMemory => Error::ENOMEM,
                    MapRefused::Range => Error::EINVAL,
                }
            })?;
            self.mapped += counted;
        } else if kind != RegionKind::Guard {
            let mut at = va;
            let mut left = len / FRAME;
            while left > 0 {
                let run = alloc_run(left)?;
                zero(run.pa, run.frames);
                let bytes = run.frames * FRAME;
                let pa = run.pa;
                region.runs.push(run);
                self.space.map(at, pa, bytes, access).map_err(|e| {
                    let _ = self.space.unmap(va, at - va);
                    match e {
                        MapRefused::NoMemory => Error::ENOMEM,
                        MapRefused::Range => Error::EINVAL,
                    }
                })?;
                at += bytes;
                left -= bytes / FRAME;
            }
            self.mapped += len;
        }
        let pos = self.regions.partition_point(|r| r.va < va);
        self.regions.insert(pos, region);
        Ok(&self.regions[pos])
    }

    /// Maps the executable's segments and copies their bytes from `file`.
    pub fn load(&mut self, file: &[u8], plan: &LoadPlan) -> Result<(), Error> {
        for seg in &plan.segments {
            let access = match seg.access {
                Access::Read => UserAccess::Read,
                Access::ReadWrite => UserAccess::ReadWrite,
                Access::ReadExecute => UserAccess::ReadExecute,
            };
            let bytes = file
                .get(seg.file_offset as usize..(seg.file_offset + seg.file_len) as usize)
                .ok_or(Error::ENOEXEC)?;
            let region = self.add(
                seg.vaddr as usize,
                seg.mem_len as usize,
                access,
                RegionKind::Image,
            )?;
            region.write(seg.copy_at as usize, bytes);
        }
        Ok(())
    }

    /// Maps the stack (and reserves its guard page); returns the region.
    pub fn add_stack(&mut self) -> Result<&Region, Error> {
        let base = STACK_TOP - STACK_SIZE;
        self.add(base - FRAME, FRAME, UserAccess::Read, RegionKind::Guard)?;
        self.add(base, STACK_SIZE, UserAccess::ReadWrite, RegionKind::Stack)
    }

    /// `mem_map`: `len` bytes (rounded up to pages) of zeroed memory, placed first-fit in
    /// the mapping window.
    pub fn map_anonymous(&mut self, len: usize, access: UserAccess) -> Result<usize, Error> {
        if len == 0 || len > MAX_MAP {
            return Err(Error::EINVAL);
        }
        let len = len.next_multiple_of(FRAME);
        let at = self.place(len)?;
        self.add(at, len, access, RegionKind::Anonymous)
            .map(|r| r.va)
    }

    /// Maps `len` bytes at physical `pa` that the caller owns (a device's registers, a
    /// DMA buffer), placed first-fit in the mapping window; returns the address. The
    /// region never frees them: `unmap_foreign` removes the mapping and the owner frees.
    pub fn map_foreign(
        &mut self,
        pa: usize,
        len: usize,
        access: UserAccess,
        kind: RegionKind,
    ) -> Result<usize, Error> {
        if !kind.is_foreign() || len == 0 || len > MAX_MAP || !pa.is_multiple_of(FRAME) {
            return Err(Error::EINVAL);
        }
        let len = len.next_multiple_of(FRAME);
        let at = self.place(len)?;
        self.add_backed(at, len, access, kind, Some(pa))
            .map(|r| r.va)
    }

    /// Removes the foreign mapping that starts at `va` (its TLB entries go with it).
    pub fn unmap_foreign(&mut self, va: usize) -> Result<(), Error> {
        let pos = self
            .regions
            .iter()
            .position(|r| r.va == va && r.kind.is_foreign())
            .ok_or(Error::EINVAL)?;
        let r = &self.regions[pos];
        self.space.unmap(va, r.len).map_err(|_| Error::EINVAL)?;
        if r.kind != RegionKind::Mmio {
            self.mapped -= r.len;
        }
        self.regions.remove(pos);
        Ok(())
    }

    /// First-fit room for `len` bytes in the mapping window.
    fn place(&self, len: usize) -> Result<usize, Error> {
        let mut at = MMAP_BASE;
        for r in self.regions.iter().filter(|r| r.va + r.len > MMAP_BASE) {
            if r.va >= at + len {
                break;
            }
            at = at.max(r.va + r.len);
        }
        if at + len > MMAP_END {
            return Err(Error::ENOMEM);
        }
        Ok(at)
    }

    /// `mem_unmap`: removes a whole `mem_map` region (`EINVAL` for anything else).
    pub fn unmap_anonymous(&mut self, va: usize, len: usize) -> Result<(), Error> {
        let pos = self
            .regions
            .iter()
            .position(|r| r.va == va && r.len == len.next_multiple_of(FRAME))
            .filter(|&i| self.regions[i].kind == RegionKind::Anonymous)
            .ok_or(Error::EINVAL)?;
        self.space
            .unmap(va, self.regions[pos].len)
            .map_err(|_| Error::EINVAL)?;
        self.mapped -= self.regions[pos].len;
        self.regions.remove(pos); // its frames go back as it drops, after the unmap
        Ok(())
    }
}

impl Region {
    /// Writes `bytes` at `offset` into the region's frames (before the process runs).
    pub fn write(&self, offset: usize, bytes: &[u8]) {
        let end = offset + bytes.len();
        let mut run_start = 0;
        for run in &self.runs {
            let run_end = run_start + run.frames * FRAME;
            let (from, to) = (offset.max(run_start), end.min(run_end));
            if from < to {
                let dst = phys_to_virt(run.pa) + (from - run_start);
                let src = &bytes[from - offset..to - offset];
                let ptr = core::ptr::with_exposed_provenance_mut::<u8>(dst);
                // SAFETY: `[dst, dst + src.len())` lies inside this run's frames, which the
                // region owns and the linear map maps read-write; `src` does not overlap them.
                unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), ptr, src.len()) };
            }
            run_start = run_end;
        }
    }
}

/// Frees regions and page tables (the drop order matters only for the TLB: the space
/// invalidates its ASID when it drops, after the regions returned their frames — no CPU
/// runs the space by then).
impl Drop for Memory {
    fn drop(&mut self) {
        self.regions.clear();
    }
}

/// Takes the largest power-of-two run of at most `want` frames (and `MAX_RUN`) that the
/// allocator can give, trying smaller ones when memory is fragmented.
fn alloc_run(want: usize) -> Result<Run, Error> {
    let mut frames = want.min(MAX_RUN);
    if !frames.is_power_of_two() {
        frames = frames.next_power_of_two() / 2;
    }
    loop {
        if let Ok(pa) = frames::alloc(frames) {
            return Ok(Run { pa, frames });
        }
        if frames == 1 {
            return Err(Error::ENOMEM);
        }
        frames /= 2;
    }
}

fn zero(pa: usize, frames: usize) {
    let ptr = core::ptr::with_exposed_provenance_mut::<u8>(phys_to_virt(pa));
    // SAFETY: the run was just taken from the allocator (nobody else uses it) and is mapped
    // read-write in the linear map.
    unsafe { ptr.write_bytes(0, frames * FRAME) };
}
