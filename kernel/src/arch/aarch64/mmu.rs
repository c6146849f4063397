//! The kernel's address space: the image and a linear map of RAM and devices, in TTBR1.
//!
//! The kernel lives only in the upper half (TTBR1_EL1), so the lower half (TTBR0_EL1)
//! belongs entirely to the running process and no process ever has a kernel mapping.
//! Two regions: the image at its link address (`IMAGE_VA`, wherever it was loaded in
//! physical memory: text RX, rodata R, data/BSS RW-NX, the boot stack's guard
//! unmapped), and the linear map, where physical address `pa` appears at
//! `LINEAR_BASE + pa` (RAM read-write never-executable, devices nGnRE) — page tables,
//! frames, DMA buffers, kernel stacks and MMIO are all reached through it.
//!
//! The boot assembly turns the MMU on with a minimal table (the image in 2 MiB blocks,
//! plus an identity alias in TTBR0 so the switch is survivable); [`enable`] then builds
//! the real table with `aarch64-paging` and swaps TTBR1 with break-before-make, running
//! from the identity alias while TTBR1 points at an empty table. After that TTBR0 holds
//! an empty table whenever no process runs. Everything added later (RAM, devices) lands
//! on unmapped VAs of the live table, which needs no break-before-make.

use aarch64_paging::Mapping;
use aarch64_paging::descriptor::{El1Attributes as Attr, PhysicalAddress};
use aarch64_paging::mair::{Mair, MairAttribute, NormalMemory};
use aarch64_paging::paging::{Constraints, El1And0, MemoryRegion, PageTable, Translation, VaRange};
use core::arch::asm;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::sections;
use crate::sync::IrqLock;

/// Where physical address 0 appears in the linear map (TTBR1 covers the top 256 TiB).
pub const LINEAR_BASE: usize = 0xFFFF_8000_0000_0000;
/// Largest physical address the linear map reaches (48-bit PA, 128 TiB window).
pub const LINEAR_LIMIT: usize = 1 << 47;

/// MAIR index 0: device nGnRE, index 1: normal write-back, index 2: normal non-cacheable.
pub const MAIR: Mair = Mair::EMPTY
    .with_attribute(0, MairAttribute::DEVICE_NGNRE)
    .with_attribute(
        1,
        MairAttribute::normal(
            NormalMemory::WriteBackNonTransientReadWriteAllocate,
            NormalMemory::WriteBackNonTransientReadWriteAllocate,
        ),
    )
    .with_attribute(
        2,
        MairAttribute::normal(NormalMemory::NonCacheable, NormalMemory::NonCacheable),
    );

/// TCR_EL1 without IPS: 48-bit VA in both halves (T0SZ = T1SZ = 16), 4 KiB granules
/// (TG0 = 0, TG1 = 0b10), inner-shareable write-back walks for both, ASID from TTBR0
/// (A1 = 0), 16-bit ASIDs (AS). IPS is filled in from ID_AA64MMFR0_EL1 (boot assembly).
pub const TCR_BASE: u64 = 16
    | (1 << 8)
    | (1 << 10)
    | (3 << 12)
    | (16 << 16)
    | (1 << 24)
    | (1 << 26)
    | (3 << 28)
    | (0b10 << 30)
    | (1 << 36);
/// SCTLR_EL1: M, C, SA, SA0, I plus the v8.0 RES1 bits (the boot map: no WXN yet).
pub const SCTLR_BOOT: u64 = 0x30D0_0800 | 1 | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 12);
/// The final SCTLR_EL1 adds WXN (writable ⇒ never executable).
pub const SCTLR: u64 = SCTLR_BOOT | (1 << 19);

const ROOT_LEVEL: usize = 0;

/// How a range is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Kernel text: read-only, executable at EL1.
    Text,
    /// Read-only data, never executable.
    ReadOnly,
    /// Read-write normal memory, never executable.
    ReadWrite,
    /// Device registers (nGnRE), never executable.
    Device,
}

impl Kind {
    /// Attributes for the kernel half: never accessible or executable at EL0.
    fn attributes(self) -> Attr {
        let normal = Attr::VALID | Attr::ACCESSED | Attr::INNER_SHAREABLE;
        let xn = Attr::UXN | Attr::PXN;
        match self {
            Kind::Text => normal | Attr::ATTRIBUTE_INDEX_1 | Attr::READ_ONLY | Attr::UXN,
            Kind::ReadOnly => normal | Attr::ATTRIBUTE_INDEX_1 | Attr::READ_ONLY | xn,
            Kind::ReadWrite => normal | Attr::ATTRIBUTE_INDEX_1 | xn,
            Kind::Device => Attr::VALID | Attr::ACCESSED | Attr::ATTRIBUTE_INDEX_0 | xn,
        }
    }
}

/// A mapping request failed (address out of range or conflicting with a live entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapFailed {
    /// Start of the range (physical for the linear map).
    pub start: usize,
    /// End of the range (exclusive).
    pub end: usize,
}

/// Physical address of the image's first byte (recorded by [`init`]).
static IMAGE_PHYS: AtomicUsize = AtomicUsize::new(0);

/// The linear-map address of physical address `pa`.
pub const fn phys_to_virt(pa: usize) -> usize {
    LINEAR_BASE + pa
}

/// The physical address behind kernel virtual address `va` (image or linear map).
pub fn virt_to_phys(va: usize) -> usize {
    let img = sections::image();
    if (img.start..img.end).contains(&va) {
        va - img.start + IMAGE_PHYS.load(Ordering::Relaxed)
    } else {
        va.wrapping_sub(LINEAR_BASE)
    }
}

/// Page tables for the kernel's own maps: table pages come from the heap (in the image
/// early, from the linear map once it grew), their physical address through
/// [`virt_to_phys`].
#[derive(Debug, Default)]
pub struct KernelTables;

impl Translation<Attr> for KernelTables {
    fn allocate_table(&mut self) -> (NonNull<PageTable<Attr>>, PhysicalAddress) {
        let table = PageTable::<Attr>::new();
        (
            table,
            PhysicalAddress(virt_to_phys(table.as_ptr() as usize)),
        )
    }

    unsafe fn deallocate_table(&mut self, page_table: NonNull<PageTable<Attr>>) {
        // SAFETY: `page_table` came from `PageTable::new` (a global-allocator page) in
        // `allocate_table` and is no longer referenced by any table (the caller's contract).
        unsafe {
            alloc::alloc::dealloc(
                page_table.as_ptr().cast(),
                core::alloc::Layout::new::<PageTable<Attr>>(),
            );
        }
    }

    fn physical_to_virtual(&self, pa: PhysicalAddress) -> NonNull<PageTable<Attr>> {
        let img = sections::image();
        let base = IMAGE_PHYS.load(Ordering::Relaxed);
        let va = if (base..base + (img.end - img.start)).contains(&pa.0) {
            pa.0 - base + img.start
        } else {
            phys_to_virt(pa.0)
        };
        NonNull::new(va as *mut PageTable<Attr>).expect("a table's VA is never null")
    }
}

type KernelMap = Mapping<KernelTables, El1And0>;

struct Map(KernelMap);

// SAFETY: the page table is only reached through the `MAP` lock; the raw pointers inside
// point at heap pages owned by the map, not at per-thread data.
unsafe impl Send for Map {}

static MAP: IrqLock<Option<Map>> = IrqLock::new(None);

/// Values a secondary CPU loads to join the kernel's address space.
#[derive(Debug, Clone, Copy)]
pub struct MmuRegs {
    /// TTBR0_EL1 while coming up: the boot identity map of the image.
    pub ttbr0_boot: u64,
    /// TTBR1_EL1: the kernel map.
    pub ttbr1: u64,
    /// TCR_EL1.
    pub tcr: u64,
    /// MAIR_EL1.
    pub mair: u64,
    /// SCTLR_EL1.
    pub sctlr: u64,
}

static REGS: IrqLock<Option<MmuRegs>> = IrqLock::new(None);

unsafe extern "C" {
    /// Boot tables (boot assembly): the identity map of the image, and an empty table.
    static boot_l0_id: u8;
    static empty_table: u8;
    /// Swaps TTBR1 to `x0` with break-before-make, from the identity alias (`x1` = the
    /// physical-minus-virtual offset of the image).
    fn replace_ttbr1(ttbr1: u64, phys_offset: u64);
}

/// Records where the boot loader put the image (first Rust code, before any translation).
pub fn init(image_phys: usize) {
    IMAGE_PHYS.store(image_phys, Ordering::Relaxed);
}

/// Physical address of the empty table TTBR0 holds when no process runs.
pub fn empty_ttbr0() -> u64 {
    virt_to_phys(&raw const empty_table as usize) as u64
}

/// Builds the kernel map — the image sections `ranges` (virtual, in the image) — and
/// switches TTBR1 to it, leaving TTBR0 on the empty table.
pub fn enable(ranges: &[(usize, usize, Kind)]) -> Result<(), MapFailed> {
    let mut map =
        KernelMap::with_asid_and_va_range(KernelTables, 0, ROOT_LEVEL, El1And0, VaRange::Upper);
    for &(start, end, kind) in ranges {
        map.map_range(
            &MemoryRegion::new(start, end),
            PhysicalAddress(virt_to_phys(start)),
            kind.attributes(),
            Constraints::empty(),
        )
        .map_err(|_| MapFailed { start, end })?;
    }
    let ttbr1 = map.root_address().0 as u64;
    let offset = IMAGE_PHYS
        .load(Ordering::Relaxed)
        .wrapping_sub(sections::image().start);
    // SAFETY: the new table maps the whole image at the same addresses as the boot table
    // (stricter permissions only), so the code, stack and heap stay reachable; the swap
    // runs from the identity alias with TTBR1 on an empty table in between
    // (break-before-make), then invalidates the TLB.
    unsafe { replace_ttbr1(ttbr1, offset as u64) };
    map.mark_active();
    let empty = empty_ttbr0();
    let sctlr = if pan_supported() {
        PAN.store(true, Ordering::Relaxed);
        SCTLR & !SCTLR_SPAN
    } else {
        SCTLR
    };
    // SAFETY: an empty TTBR0 table unmaps the lower half, which nothing uses from here on
    // (the kernel runs from TTBR1); the SCTLR write only adds WXN (and, with PAN, clears
    // SPAN) to what is already on.
    unsafe {
        asm!("msr ttbr0_el1, {0}", "isb", "tlbi vmalle1", "dsb nsh", "isb",
             "msr sctlr_el1, {1}", "isb", in(reg) empty, in(reg) sctlr, options(nostack));
    }
    set_pan();
    let tcr: u64;
    // SAFETY: reads a system register.
    unsafe { asm!("mrs {0}, tcr_el1", out(reg) tcr, options(nomem, nostack)) };
    *REGS.lock() = Some(MmuRegs {
        ttbr0_boot: virt_to_phys(&raw const boot_l0_id as usize) as u64,
        ttbr1,
        tcr,
        mair: MAIR.0,
        sctlr,
    });
    *MAP.lock() = Some(Map(map));
    Ok(())
}

/// SCTLR_EL1.SPAN: when clear, taking an exception to EL1 sets PSTATE.PAN.
const SCTLR_SPAN: u64 = 1 << 23;
/// PSTATE.PAN's position in SPSR and in the PAN register.
pub const PSTATE_PAN: u64 = 1 << 22;
/// Whether Privileged Access Never is on (the CPU has it: ARMv8.1).
static PAN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether this CPU implements PAN (ID_AA64MMFR1_EL1.PAN, bits 23:20).
fn pan_supported() -> bool {
    let mmfr1: u64;
    // SAFETY: reads an ID register.
    unsafe { asm!("mrs {0}, id_aa64mmfr1_el1", out(reg) mmfr1, options(nomem, nostack)) };
    (mmfr1 >> 20) & 0xf != 0
}

/// Whether PAN is on: the kernel cannot touch user pages except through the
/// unprivileged user-copy accessors.
pub fn pan() -> bool {
    PAN.load(Ordering::Relaxed)
}

/// Sets PSTATE.PAN on this CPU if PAN is on (every later exception entry sets it again,
/// as SCTLR_EL1.SPAN is clear).
pub fn set_pan() {
    if pan() {
        // SAFETY: writes the PAN register (S3_0_C4_C2_3, ARMv8.1): privileged loads and
        // stores to EL0-accessible pages fault from now on; the kernel reaches user memory
        // only with LDTR/STTR (`usercopy`), which PAN does not affect.
        unsafe { asm!("msr s3_0_c4_c2_3, {0}", "isb", in(reg) PSTATE_PAN, options(nostack)) };
    }
}

/// Maps physical `[start, end)` into the linear map with `kind`; returns its virtual
/// address. The range must not overlap an existing mapping with other attributes.
pub fn map(start: usize, end: usize, kind: Kind) -> Result<usize, MapFailed> {
    let failed = MapFailed { start, end };
    if end > LINEAR_LIMIT || start > end {
        return Err(failed);
    }
    let mut guard = MAP.lock();
    let map = guard.as_mut().ok_or(failed.clone())?;
    map.0
        .map_range(
            &MemoryRegion::new(phys_to_virt(start), phys_to_virt(end)),
            PhysicalAddress(start & !0xfff),
            kind.attributes(),
            Constraints::empty(),
        )
        .map_err(|_| failed)?;
    Ok(phys_to_virt(start))
}

/// The register values secondary CPUs load (None before [`enable`]).
pub fn regs() -> Option<MmuRegs> {
    *REGS.lock()
}
