//! The distributor registers GICv2 and GICv3 share: one layout, one set of offsets.
//!
//! The two distributors differ in their first 128 bytes (GICv3 adds `TYPER2`, `STATUSR`
//! and the message-based SPI registers), at 0xd00 (GICv3's `IGRPMODR` where GICv2 has an
//! implementation-defined block) and after 0xf30 (GICv3's `INMIR`, `IROUTER`, 64 KiB in
//! all). The banks in between, from `IGROUPR` to `ICFGR` and from `NSACR` to `SPENDSGIR`,
//! are the same registers at the same offsets in both (IHI 0048B §4.1.2 Table 4-1,
//! IHI 0069H §12.8 Table 12-25). They are laid out here once; `gicv2/regs.rs` and
//! `gicv3/regs.rs` embed them and check at compile time that they sit where this file says.
//! Each field is typed by its access (`crate::reg`): the set-enable, clear-enable,
//! set/clear-pending and set/clear-active banks are write-one-to-set or -clear, written
//! only with `set`/`clear` of the bits meant and never read-modify-written; `GICD_SGIR`
//! is write-only.

use core::mem::size_of;

use crate::reg;
use crate::reg::{ReadWrite, Reg, W1c, W1s, WriteOnly};

/// The banked per-INTID registers at 0x080..0xd00.
#[repr(C)]
pub(crate) struct GicdBanks {
    /// `GICD_IGROUPR<n>` (v2 §4.3.4, v3 §12.9.10).
    pub igroupr: [ReadWrite<u32>; 32],
    /// `GICD_ISENABLER<n>` (v2 §4.3.5, v3 §12.9.26), write-one-to-set.
    pub isenabler: [W1s<u32>; 32],
    /// `GICD_ICENABLER<n>` (v2 §4.3.6, v3 §12.9.7), write-one-to-clear.
    pub icenabler: [W1c<u32>; 32],
    /// `GICD_ISPENDR<n>` (v2 §4.3.7, v3 §12.9.28), write-one-to-set.
    pub ispendr: [W1s<u32>; 32],
    /// `GICD_ICPENDR<n>` (v2 §4.3.8, v3 §12.9.9), write-one-to-clear.
    pub icpendr: [W1c<u32>; 32],
    /// `GICD_ISACTIVER<n>` (v2 §4.3.9, v3 §12.9.24), write-one-to-set.
    pub isactiver: [W1s<u32>; 32],
    /// `GICD_ICACTIVER<n>` (v2 §4.3.10, v3 §12.9.5), write-one-to-clear.
    pub icactiver: [W1c<u32>; 32],
    /// `GICD_IPRIORITYR<n>` (v2 §4.3.11, v3 §12.9.19), byte-accessible.
    pub ipriorityr: [ReadWrite<u8>; 1020],
    _reserved0: u32,
    /// `GICD_ITARGETSR<n>` (v2 §4.3.12; v3 §12.9.34, RES0 with affinity routing).
    pub itargetsr: [ReadWrite<u8>; 1020],
    _reserved1: u32,
    /// `GICD_ICFGR<n>` (v2 §4.3.13, v3 §12.9.6).
    pub icfgr: [ReadWrite<u32>; 64],
}

/// The SGI and security registers at 0xe00..0xf30.
#[repr(C)]
pub(crate) struct GicdSgi {
    /// `GICD_NSACR<n>` (v2 §4.3.14, v3 §12.9.18).
    pub nsacr: [ReadWrite<u32>; 64],
    /// `GICD_SGIR` (v2 §4.3.15; v3 §12.9.30, legacy only), write-only.
    pub sgir: WriteOnly<u32>,
    _reserved0: [u32; 3],
    /// `GICD_CPENDSGIR<n>` (v2 §4.3.16, v3 §12.9.8), write-one-to-clear.
    pub cpendsgir: [W1c<u32>; 4],
    /// `GICD_SPENDSGIR<n>` (v2 §4.3.17, v3 §12.9.31), write-one-to-set.
    pub spendsgir: [W1s<u32>; 4],
}

/// Where [`GicdBanks`] starts in both distributors.
pub(crate) const BANKS: usize = 0x080;
/// Where [`GicdSgi`] starts in both distributors.
pub(crate) const SGI: usize = 0xe00;

/// `GICD_IGROUPR<n>`.
pub(crate) const GICD_IGROUPR: Reg<[ReadWrite<u32>; 32]> =
    reg!(GicdBanks, igroupr).offset_by(BANKS);
/// `GICD_ISENABLER<n>`.
pub(crate) const GICD_ISENABLER: Reg<[W1s<u32>; 32]> = reg!(GicdBanks, isenabler).offset_by(BANKS);
/// `GICD_ICENABLER<n>`.
pub(crate) const GICD_ICENABLER: Reg<[W1c<u32>; 32]> = reg!(GicdBanks, icenabler).offset_by(BANKS);
/// `GICD_ISPENDR<n>`.
pub(crate) const GICD_ISPENDR: Reg<[W1s<u32>; 32]> = reg!(GicdBanks, ispendr).offset_by(BANKS);
/// `GICD_ICPENDR<n>`.
pub(crate) const GICD_ICPENDR: Reg<[W1c<u32>; 32]> = reg!(GicdBanks, icpendr).offset_by(BANKS);
/// `GICD_ISACTIVER<n>`.
pub(crate) const GICD_ISACTIVER: Reg<[W1s<u32>; 32]> = reg!(GicdBanks, isactiver).offset_by(BANKS);
/// `GICD_ICACTIVER<n>`.
pub(crate) const GICD_ICACTIVER: Reg<[W1c<u32>; 32]> = reg!(GicdBanks, icactiver).offset_by(BANKS);
/// `GICD_IPRIORITYR<n>`, by byte (one per INTID) or by word ([`Reg::word`]).
pub(crate) const GICD_IPRIORITYR: Reg<[ReadWrite<u8>; 1020]> =
    reg!(GicdBanks, ipriorityr).offset_by(BANKS);
/// `GICD_ITARGETSR<n>`, by byte or by word.
pub(crate) const GICD_ITARGETSR: Reg<[ReadWrite<u8>; 1020]> =
    reg!(GicdBanks, itargetsr).offset_by(BANKS);
/// `GICD_ICFGR<n>`.
pub(crate) const GICD_ICFGR: Reg<[ReadWrite<u32>; 64]> = reg!(GicdBanks, icfgr).offset_by(BANKS);
/// `GICD_NSACR<n>`.
pub(crate) const GICD_NSACR: Reg<[ReadWrite<u32>; 64]> = reg!(GicdSgi, nsacr).offset_by(SGI);
/// `GICD_SGIR`.
pub(crate) const GICD_SGIR: Reg<WriteOnly<u32>> = reg!(GicdSgi, sgir).offset_by(SGI);
/// `GICD_CPENDSGIR<n>`.
pub(crate) const GICD_CPENDSGIR: Reg<[W1c<u32>; 4]> = reg!(GicdSgi, cpendsgir).offset_by(SGI);
/// `GICD_SPENDSGIR<n>`.
pub(crate) const GICD_SPENDSGIR: Reg<[W1s<u32>; 4]> = reg!(GicdSgi, spendsgir).offset_by(SGI);

const _: () = assert!(GICD_IGROUPR.offset() == 0x080);
const _: () = assert!(GICD_ISENABLER.offset() == 0x100);
const _: () = assert!(GICD_ICENABLER.offset() == 0x180);
const _: () = assert!(GICD_ISPENDR.offset() == 0x200);
const _: () = assert!(GICD_ICPENDR.offset() == 0x280);
const _: () = assert!(GICD_ISACTIVER.offset() == 0x300);
const _: () = assert!(GICD_ICACTIVER.offset() == 0x380);
const _: () = assert!(GICD_IPRIORITYR.offset() == 0x400);
const _: () = assert!(GICD_ITARGETSR.offset() == 0x800);
const _: () = assert!(GICD_ICFGR.offset() == 0xc00);
const _: () = assert!(BANKS + size_of::<GicdBanks>() == 0xd00);
const _: () = assert!(GICD_NSACR.offset() == 0xe00);
const _: () = assert!(GICD_SGIR.offset() == 0xf00);
const _: () = assert!(GICD_CPENDSGIR.offset() == 0xf10);
const _: () = assert!(GICD_SPENDSGIR.offset() == 0xf20);
const _: () = assert!(SGI + size_of::<GicdSgi>() == 0xf30);
