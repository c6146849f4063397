//! GICv2 register layouts: distributor (GICD) and CPU interface (GICC).
//!
//! The structs exist for their layout only: offsets are taken with `offset_of!`
//! (through `reg!`) and checked against the spec tables at compile time, and all
//! access goes through [`crate::mmio::Mmio`] with the typed accessors of
//! `crate::reg`, each field typed by its access. Spec: ARM IHI 0048B.b, §4.1.2
//! (register map), §4.3 (distributor), §4.4 (CPU interface).

use core::mem::{offset_of, size_of};

use bitfield_struct::bitfield;
use bitflags::bitflags;

use crate::irqchip::gicd::{GicdBanks, GicdSgi};
use crate::reg;
use crate::reg::{ReadOnly, ReadWrite, Reg, WriteOnly};

/// Distributor register block, IHI 0048B §4.3 (Table 4-1). 4 KiB. The banks shared with
/// GICv3 are laid out once in `irqchip/gicd.rs`.
#[repr(C)]
pub(crate) struct Gicd {
    /// `GICD_CTLR`, §4.3.1.
    pub ctlr: ReadWrite<u32>,
    /// `GICD_TYPER`, §4.3.2 (ITLinesNumber in [4:0]).
    pub typer: ReadOnly<u32>,
    /// `GICD_IIDR`, §4.3.3.
    pub iidr: ReadOnly<u32>,
    _reserved0: [u32; 29],
    /// `IGROUPR` .. `ICFGR`, §4.3.4–§4.3.13.
    pub banks: GicdBanks,
    _impdef: [u32; 64],
    /// `NSACR` .. `SPENDSGIR`, §4.3.14–§4.3.17.
    pub sgi: GicdSgi,
    _reserved4: [u32; 40],
    /// Identification registers, §4.3.18 (`ICPIDR2` at 0xFE8).
    pub id: [ReadOnly<u32>; 12],
}

/// CPU interface register block, IHI 0048B §4.4 (Table 4-2). `GICC_DIR` at
/// 0x1000 is not covered: with EOImode 0 it is never used, so 4 KiB suffice.
#[repr(C)]
pub(crate) struct Gicc {
    /// `GICC_CTLR`, §4.4.1.
    pub ctlr: ReadWrite<u32>,
    /// `GICC_PMR`, §4.4.2.
    pub pmr: ReadWrite<u32>,
    /// `GICC_BPR`, §4.4.3.
    pub bpr: ReadWrite<u32>,
    /// `GICC_IAR`, §4.4.4 (reading acknowledges).
    pub iar: ReadOnly<u32>,
    /// `GICC_EOIR`, §4.4.5 (write-only).
    pub eoir: WriteOnly<u32>,
    /// `GICC_RPR`, §4.4.6.
    pub rpr: ReadOnly<u32>,
    /// `GICC_HPPIR`, §4.4.7.
    pub hppir: ReadOnly<u32>,
    /// `GICC_ABPR`, §4.4.8.
    pub abpr: ReadWrite<u32>,
    /// `GICC_AIAR`, §4.4.9.
    pub aiar: ReadOnly<u32>,
    /// `GICC_AEOIR`, §4.4.10 (write-only).
    pub aeoir: WriteOnly<u32>,
    /// `GICC_AHPPIR`, §4.4.11.
    pub ahppir: ReadOnly<u32>,
    _reserved0: [u32; 41],
    /// `GICC_APRn`, §4.4.13.
    pub apr: [ReadWrite<u32>; 4],
    /// `GICC_NSAPRn`, §4.4.14.
    pub nsapr: [ReadWrite<u32>; 4],
    _reserved1: [u32; 3],
    /// `GICC_IIDR`, §4.4.15.
    pub iidr: ReadOnly<u32>,
    _reserved2: [u32; 0x3c0],
}

pub(crate) use crate::irqchip::gicd::{
    GICD_ICACTIVER, GICD_ICENABLER, GICD_ICFGR, GICD_ICPENDR, GICD_IPRIORITYR, GICD_ISENABLER,
    GICD_ISPENDR, GICD_ITARGETSR, GICD_SGIR, GICD_SPENDSGIR,
};
/// `GICD_CTLR`.
pub(crate) const GICD_CTLR: Reg<ReadWrite<u32>> = reg!(Gicd, ctlr);
/// `GICD_TYPER`.
pub(crate) const GICD_TYPER: Reg<ReadOnly<u32>> = reg!(Gicd, typer);
/// `GICC_CTLR`.
pub(crate) const GICC_CTLR: Reg<ReadWrite<u32>> = reg!(Gicc, ctlr);
/// `GICC_PMR`.
pub(crate) const GICC_PMR: Reg<ReadWrite<u32>> = reg!(Gicc, pmr);
/// `GICC_BPR`.
pub(crate) const GICC_BPR: Reg<ReadWrite<u32>> = reg!(Gicc, bpr);
/// `GICC_IAR`.
pub(crate) const GICC_IAR: Reg<ReadOnly<u32>> = reg!(Gicc, iar);
/// `GICC_EOIR`.
pub(crate) const GICC_EOIR: Reg<WriteOnly<u32>> = reg!(Gicc, eoir);

const _: () = assert!(GICD_CTLR.offset() == 0x000);
const _: () = assert!(GICD_TYPER.offset() == 0x004);
const _: () = assert!(offset_of!(Gicd, banks) == crate::irqchip::gicd::BANKS);
const _: () = assert!(offset_of!(Gicd, sgi) == crate::irqchip::gicd::SGI);
const _: () = assert!(offset_of!(Gicd, id) == 0xfd0);
const _: () = assert!(size_of::<Gicd>() == 0x1000);
const _: () = assert!(GICC_CTLR.offset() == 0x00);
const _: () = assert!(GICC_PMR.offset() == 0x04);
const _: () = assert!(GICC_BPR.offset() == 0x08);
const _: () = assert!(GICC_IAR.offset() == 0x0c);
const _: () = assert!(GICC_EOIR.offset() == 0x10);
const _: () = assert!(offset_of!(Gicc, ahppir) == 0x28);
const _: () = assert!(offset_of!(Gicc, apr) == 0xd0);
const _: () = assert!(offset_of!(Gicc, nsapr) == 0xe0);
const _: () = assert!(offset_of!(Gicc, iidr) == 0xfc);
const _: () = assert!(size_of::<Gicc>() == 0x1000);

bitflags! {
    /// `GICD_CTLR`, §4.3.1. Without the Security Extensions (QEMU `virt` without
    /// `secure=on`) bit 0 enables Group 0; in the Non-secure view of a GIC with
    /// them, the same bit enables Group 1. Either way it is the group we own.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct GicdCtlr: u32 {
        /// Forward interrupts of our group from the distributor.
        const ENABLE = 1 << 0;
    }
}

bitflags! {
    /// `GICC_CTLR`, §4.4.1 (Non-secure / no-Security-Extensions view).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct GiccCtlr: u32 {
        /// Signal interrupts of our group to the processor.
        const ENABLE = 1 << 0;
        /// FIQBypDisGrp0.
        const FIQ_BYP_DIS_GRP0 = 1 << 5;
        /// IRQBypDisGrp0.
        const IRQ_BYP_DIS_GRP0 = 1 << 6;
        /// FIQBypDisGrp1.
        const FIQ_BYP_DIS_GRP1 = 1 << 7;
        /// IRQBypDisGrp1.
        const IRQ_BYP_DIS_GRP1 = 1 << 8;
        /// EOImode (bit 9 in this view); kept 0: EOIR both drops priority and deactivates.
        const EOI_MODE = 1 << 9;
    }
}

impl GiccCtlr {
    /// The bypass-disable bits firmware may have set; preserved across our write.
    pub(crate) const BYPASS_MASK: Self = Self::FIQ_BYP_DIS_GRP0
        .union(Self::IRQ_BYP_DIS_GRP0)
        .union(Self::FIQ_BYP_DIS_GRP1)
        .union(Self::IRQ_BYP_DIS_GRP1);
}

/// `GICC_IAR` / `GICC_EOIR` value, §4.4.4–§4.4.5.
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub(crate) struct Iar {
    /// Interrupt ID.
    #[bits(10)]
    pub intid: u32,
    /// For SGIs, the CPU interface that requested it; must be echoed in `GICC_EOIR`.
    #[bits(3)]
    pub cpuid: u8,
    #[bits(19)]
    __: u32,
}

/// `GICD_SGIR` TargetListFilter, §4.3.15.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum SgiFilter {
    /// Forward to the CPUs in CPUTargetList.
    TargetList = 0b00,
    /// Forward to every CPU but the requester.
    AllOthers = 0b01,
    /// Forward only to the requesting CPU.
    SelfOnly = 0b10,
}

impl SgiFilter {
    const fn into_bits(self) -> u8 {
        self as u8
    }

    const fn from_bits(v: u8) -> Self {
        match v {
            0b00 => Self::TargetList,
            0b01 => Self::AllOthers,
            _ => Self::SelfOnly,
        }
    }
}

/// `GICD_SGIR`, §4.3.15 (write-only).
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub(crate) struct Sgir {
    /// SGI number, 0..=15.
    #[bits(4)]
    pub intid: u8,
    #[bits(11)]
    __: u16,
    /// NSATT: with Security Extensions, a Secure write sends only Group 1 SGIs if set.
    pub nsatt: bool,
    /// CPU interface mask, used with `SgiFilter::TargetList`.
    pub target_list: u8,
    /// Which CPUs receive the SGI.
    #[bits(2)]
    pub filter: SgiFilter,
    #[bits(6)]
    __: u8,
}

/// Own CPU-interface mask from an `ITARGETSR0..7` word (each byte holds the
/// reading CPU's own bit), as Linux `gic_get_cpumask` folds it; 0 if unreadable.
pub(crate) const fn fold_cpu_mask(word: u32) -> u8 {
    let m = word | (word >> 16);
    (m | (m >> 8)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iar_decode() {
        let iar = Iar::from_bits((3 << 10) | 5);
        assert_eq!(iar.intid(), 5);
        assert_eq!(iar.cpuid(), 3);
        assert_eq!(Iar::from_bits(0x3ff).intid(), 1023);
        assert_eq!(Iar::new().with_intid(7).with_cpuid(2).into_bits(), 0x807);
    }

    #[test]
    fn sgir_encode() {
        let v = Sgir::new()
            .with_intid(3)
            .with_filter(SgiFilter::SelfOnly)
            .into_bits();
        assert_eq!(v, 0x0200_0003);
        let v = Sgir::new()
            .with_intid(15)
            .with_target_list(0b101)
            .into_bits();
        assert_eq!(v, 0x0005_000f);
        assert_eq!(
            Sgir::new().with_filter(SgiFilter::AllOthers).into_bits(),
            1 << 24
        );
    }

    #[test]
    fn cpu_mask_fold() {
        assert_eq!(fold_cpu_mask(0x0404_0404), 0x04);
        assert_eq!(fold_cpu_mask(0x0000_0001), 0x01);
        assert_eq!(fold_cpu_mask(0x8000_0000), 0x80);
        assert_eq!(fold_cpu_mask(0), 0);
    }

    #[test]
    fn ctlr_bits() {
        assert_eq!(GiccCtlr::BYPASS_MASK.bits(), 0x1e0);
        assert_eq!(GicdCtlr::ENABLE.bits(), 1);
    }
}
