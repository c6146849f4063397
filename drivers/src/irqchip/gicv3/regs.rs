//! GICv3 distributor (GICD) register layout and field encodings.
//!
//! Layout-only struct checked against IHI 0069H Table 12-25 at compile time;
//! all access goes through [`crate::mmio::Mmio`] with the typed accessors of
//! `crate::reg`, each field typed by its access. With affinity routing enabled
//! (`GICD_CTLR.ARE_NS` = 1) the SGI/PPI banks here are RES0 and the per-CPU copies
//! live in each redistributor (`redist.rs`); SPIs are routed by `GICD_IROUTER`
//! affinity rather than the GICv2 `ITARGETSR` bit masks.

use core::mem::{offset_of, size_of};

use bitflags::bitflags;

use crate::irqchip::gicd::{GicdBanks, GicdSgi};
use crate::reg;
use crate::reg::{ReadOnly, ReadWrite, Reg, WriteOnly};

/// Distributor register block, IHI 0069H §12.8 (Table 12-25). 64 KiB.
#[repr(C)]
pub(crate) struct Gicd {
    /// `GICD_CTLR`, §12.9.4.
    pub ctlr: ReadWrite<u32>,
    /// `GICD_TYPER`, §12.9.38.
    pub typer: ReadOnly<u32>,
    /// `GICD_IIDR`, §12.9.22.
    pub iidr: ReadOnly<u32>,
    /// `GICD_TYPER2`, §12.9.39.
    pub typer2: ReadOnly<u32>,
    /// `GICD_STATUSR`, §12.9.37.
    pub statusr: ReadWrite<u32>,
    _reserved0: [u32; 11],
    /// `GICD_SETSPI_NSR`, §12.9.35 (write-only).
    pub setspi_nsr: WriteOnly<u32>,
    _reserved1: u32,
    /// `GICD_CLRSPI_NSR`, §12.9.2 (write-only).
    pub clrspi_nsr: WriteOnly<u32>,
    _reserved2: u32,
    /// `GICD_SETSPI_SR`, §12.9.36 (write-only).
    pub setspi_sr: WriteOnly<u32>,
    _reserved3: u32,
    /// `GICD_CLRSPI_SR`, §12.9.3 (write-only).
    pub clrspi_sr: WriteOnly<u32>,
    _reserved4: [u32; 9],
    /// `IGROUPR` .. `ICFGR`, §12.9.10 and following (shared with GICv2: `irqchip/gicd.rs`).
    pub banks: GicdBanks,
    /// `GICD_IGRPMODR<n>`, §12.9.15.
    pub igrpmodr: [ReadWrite<u32>; 32],
    _reserved7: [u32; 32],
    /// `NSACR` .. `SPENDSGIR`, §12.9.18 and following.
    pub sgi: GicdSgi,
    _reserved9: [u32; 20],
    /// `GICD_INMIR<n>`, §12.9.17 (GICv3.3 NMIs).
    pub inmir: [ReadWrite<u32>; 32],
    /// Extended SPI range registers (`*_E`), unused.
    _reserved10: [u32; 0x1400],
    /// `GICD_IROUTER<n>`, §12.9.23; entries 0..=31 are reserved.
    pub irouter: [ReadWrite<u64>; 1020],
    _reserved11: [u32; 0x1ffc],
    /// Identification registers; `GICD_PIDR2` (ArchRev in [7:4]) is `id[6]`, §12.1.13.
    pub id: [ReadOnly<u32>; 12],
}

/// `GICD_TYPER.LPIS` (§12.9.38).
pub(crate) const GICD_TYPER_LPIS: u32 = 1 << 17;

pub(crate) use crate::irqchip::gicd::{
    GICD_ICACTIVER, GICD_ICENABLER, GICD_ICFGR, GICD_ICPENDR, GICD_IGROUPR, GICD_IPRIORITYR,
    GICD_ISENABLER, GICD_ISPENDR,
};
/// `GICD_CTLR`.
pub(crate) const GICD_CTLR: Reg<ReadWrite<u32>> = reg!(Gicd, ctlr);
/// `GICD_TYPER`.
pub(crate) const GICD_TYPER: Reg<ReadOnly<u32>> = reg!(Gicd, typer);
/// `GICD_IGRPMODR<n>`.
pub(crate) const GICD_IGRPMODR: Reg<[ReadWrite<u32>; 32]> = reg!(Gicd, igrpmodr);
/// `GICD_IROUTER<n>`, indexed by INTID.
pub(crate) const GICD_IROUTER: Reg<[ReadWrite<u64>; 1020]> = reg!(Gicd, irouter);
/// `GICD_PIDR2`.
pub(crate) const GICD_PIDR2: Reg<ReadOnly<u32>> = reg!(Gicd, id).at(6);

const _: () = assert!(GICD_CTLR.offset() == 0x0000);
const _: () = assert!(GICD_TYPER.offset() == 0x0004);
const _: () = assert!(offset_of!(Gicd, typer2) == 0x000c);
const _: () = assert!(offset_of!(Gicd, setspi_nsr) == 0x0040);
const _: () = assert!(offset_of!(Gicd, clrspi_sr) == 0x0058);
const _: () = assert!(offset_of!(Gicd, banks) == crate::irqchip::gicd::BANKS);
const _: () = assert!(GICD_IGRPMODR.offset() == 0x0d00);
const _: () = assert!(offset_of!(Gicd, sgi) == crate::irqchip::gicd::SGI);
const _: () = assert!(offset_of!(Gicd, inmir) == 0x0f80);
const _: () = assert!(GICD_IROUTER.offset() == 0x6000);
const _: () = assert!(GICD_PIDR2.offset() == 0xffe8);
const _: () = assert!(size_of::<Gicd>() == 0x10000);

bitflags! {
    /// `GICD_CTLR`, IHI 0069H §12.9.4. The bit meanings differ between the
    /// Non-secure view of a two-security-state GIC (DS = 0) and a single-state one
    /// (DS = 1), but the bits we write line up: bit 0 is EnableGrp1 (NS view) or
    /// EnableGrp0 (DS = 1), bit 1 is EnableGrp1A or EnableGrp1, bit 4 is ARE_NS or
    /// ARE. Writing `ARE_NS | ENABLE_G1A | ENABLE_G1` is right in both views.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct GicdCtlr: u32 {
        /// EnableGrp1 (NS view) / EnableGrp0 (DS = 1).
        const ENABLE_G1 = 1 << 0;
        /// EnableGrp1A (NS view) / EnableGrp1 (DS = 1).
        const ENABLE_G1A = 1 << 1;
        /// ARE_NS (NS view) / ARE (DS = 1): affinity routing.
        const ARE_NS = 1 << 4;
        /// DS: security disabled; reads as 0 in the NS view of a DS = 0 GIC.
        const DS = 1 << 6;
        /// RWP: a write to CTLR or ICENABLER is still in flight.
        const RWP = 1 << 31;
    }
}

/// `GICD_IROUTER` value routing to the PE with this `MPIDR_EL1` (IRM = 0):
/// Aff3 in [39:32], Aff2..Aff0 in [23:0], exactly where MPIDR_EL1 keeps them
/// (IHI 0069H §12.9.23).
pub(crate) const fn irouter_for_mpidr(mpidr: u64) -> u64 {
    mpidr & 0xff_00ff_ffff
}

/// ArchRev from a `GICD_PIDR2` / `GICR_PIDR2` value: 3 for GICv3, 4 for GICv4.
pub(crate) const fn pidr2_arch_rev(pidr2: u32) -> u8 {
    ((pidr2 >> 4) & 0xf) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irouter_encoding() {
        // MPIDR_EL1 with U/MT/RES1 bits set: only the affinity fields survive.
        let mpidr = (0x12 << 32) | (1 << 31) | (1 << 30) | (1 << 24) | 0x03_0201;
        assert_eq!(irouter_for_mpidr(mpidr), (0x12 << 32) | 0x03_0201);
        assert_eq!(irouter_for_mpidr(0x8000_0000), 0);
        // IRM (bit 31) must be clear: routing to one PE, not "any".
        assert_eq!(irouter_for_mpidr(u64::MAX) & (1 << 31), 0);
    }

    #[test]
    fn ctlr_value() {
        let v = (GicdCtlr::ARE_NS | GicdCtlr::ENABLE_G1A | GicdCtlr::ENABLE_G1).bits();
        assert_eq!(v, 0x13);
        assert_eq!(pidr2_arch_rev(0x3b), 3);
        assert_eq!(pidr2_arch_rev(0x4b), 4);
    }

    #[test]
    fn irouter_index() {
        // IROUTER<32> (first SPI) sits at 0x6100.
        assert_eq!(GICD_IROUTER.at(32).offset(), 0x6100);
    }
}
