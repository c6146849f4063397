//! The kernel's identity map: W^X kernel image, RW-NX RAM, nGnRE devices.
//!
//! Built with `aarch64-paging` (a maintained, host-tested table builder) rather
//! than by hand. The MMU goes on early, mapping only the image and the DTB,
//! because with the MMU off every access is Device memory and an unaligned load
//! (DTB parsing does them) would fault. RAM and devices are added to the live
//! table afterwards; they never overlap existing entries, so no break-before-make
//! sequence is needed. Unmapped pages below each kernel stack are its guard.

use crate::sync::IrqLock;
use aarch64_paging::descriptor::El1Attributes as Attr;
use aarch64_paging::idmap::IdMap;
use aarch64_paging::mair::{Mair, MairAttribute, NormalMemory};
use aarch64_paging::paging::{El1And0, MemoryRegion};
use core::arch::asm;

/// MAIR index 0: device nGnRE, index 1: normal write-back, index 2: normal non-cacheable.
const MAIR: Mair = Mair::EMPTY
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

/// 48-bit VA (T0SZ 16, root level 0), 4 KiB granule, inner-shareable write-back walks,
/// TTBR1 walks disabled (EPD1). IPS is filled in from ID_AA64MMFR0_EL1.
const TCR_BASE: u64 = 16 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23);
/// SCTLR_EL1: M, C, SA, SA0, I, WXN (writable ⇒ never executable) plus the v8.0 RES1 bits.
const SCTLR: u64 = 0x30D0_0800 | 1 | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 12) | (1 << 19);

const ROOT_LEVEL: usize = 0;
const ASID: usize = 1;

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
    /// Start of the range.
    pub start: usize,
    /// End of the range (exclusive).
    pub end: usize,
}

struct KernelMap(IdMap<El1And0>);

// SAFETY: the page table is only reached through the `MAP` lock; the raw pointers inside
// point at heap pages owned by the map, not at per-thread data.
unsafe impl Send for KernelMap {}

static MAP: IrqLock<Option<KernelMap>> = IrqLock::new(None);

/// Values a secondary CPU loads to join the kernel's address space.
#[derive(Debug, Clone, Copy)]
pub struct MmuRegs {
    /// TTBR0_EL1 (root table | ASID).
    pub ttbr0: u64,
    /// TCR_EL1.
    pub tcr: u64,
    /// MAIR_EL1.
    pub mair: u64,
    /// SCTLR_EL1.
    pub sctlr: u64,
}

static REGS: IrqLock<Option<MmuRegs>> = IrqLock::new(None);

fn tcr() -> u64 {
    let mmfr0: u64;
    // SAFETY: reads an ID register.
    unsafe { asm!("mrs {0}, id_aa64mmfr0_el1", out(reg) mmfr0, options(nomem, nostack)) }
    let pa_range = (mmfr0 & 0xf).min(5); // 5 = 48 bits; larger encodings need LPA
    TCR_BASE | (pa_range << 32)
}

/// Creates the kernel map with `ranges` mapped and turns the MMU and caches on.
pub fn enable(ranges: &[(usize, usize, Kind)]) -> Result<(), MapFailed> {
    let mut map = IdMap::with_asid(ASID, ROOT_LEVEL, El1And0);
    for &(start, end, kind) in ranges {
        map.map_range(&MemoryRegion::new(start, end), kind.attributes())
            .map_err(|_| MapFailed { start, end })?;
    }
    let tcr = tcr();
    // SAFETY: MAIR and TCR describe the table built above; the MMU is still off so
    // changing them has no effect until SCTLR.M is set.
    unsafe {
        asm!("msr mair_el1, {0}", "msr tcr_el1, {1}", "isb",
             in(reg) MAIR.0, in(reg) tcr, options(nostack));
    }
    // SAFETY: the map covers the running image (text, rodata, data, BSS, boot stack) and
    // the DTB, which is everything the code after this point touches until more is mapped.
    unsafe { map.activate() };
    // SAFETY: turning on translation with an identity map keeps every address the same;
    // the ISB makes the next instruction fetch go through the new translation.
    unsafe {
        asm!("dsb sy", "msr sctlr_el1, {0}", "isb", in(reg) SCTLR, options(nostack));
    }
    let ttbr0 = map.root_address().0 as u64 | ((ASID as u64) << 48);
    *REGS.lock() = Some(MmuRegs {
        ttbr0,
        tcr,
        mair: MAIR.0,
        sctlr: SCTLR,
    });
    *MAP.lock() = Some(KernelMap(map));
    Ok(())
}

/// Adds `[start, end)` to the live map. The range must not overlap an existing mapping
/// with different attributes.
pub fn map(start: usize, end: usize, kind: Kind) -> Result<(), MapFailed> {
    let mut guard = MAP.lock();
    let map = guard.as_mut().ok_or(MapFailed { start, end })?;
    map.0
        .map_range(&MemoryRegion::new(start, end), kind.attributes())
        .map_err(|_| MapFailed { start, end })?;
    // SAFETY: barriers only; they make the new descriptors visible to the table walker
    // before any access through them.
    unsafe { asm!("dsb ishst", "isb", options(nostack)) };
    Ok(())
}

/// The register values secondary CPUs load (None before [`enable`]).
pub fn regs() -> Option<MmuRegs> {
    *REGS.lock()
}
