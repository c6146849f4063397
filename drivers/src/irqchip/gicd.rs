//! The distributor registers GICv2 and GICv3 share: one layout, one set of offsets.
//!
//! The two distributors differ in their first 128 bytes (GICv3 adds `TYPER2`, `STATUSR`
//! and the message-based SPI registers), at 0xd00 (GICv3's `IGRPMODR` where GICv2 has an
//! implementation-defined block) and after 0xf30 (GICv3's `INMIR`, `IROUTER`, 64 KiB in
//! all). The banks in between, from `IGROUPR` to `ICFGR` and from `NSACR` to `SPENDSGIR`,
//! are the same registers at the same offsets in both (IHI 0048B §4.1.2 Table 4-1,
//! IHI 0069H §12.8 Table 12-25). They are laid out here once; `gicv2/regs.rs` and
//! `gicv3/regs.rs` embed them and check at compile time that they sit where this file says.

use core::mem::{offset_of, size_of};

/// The banked per-INTID registers at 0x080..0xd00.
#[repr(C)]
pub(crate) struct GicdBanks {
    /// `GICD_IGROUPR<n>` (v2 §4.3.4, v3 §12.9.10).
    pub igroupr: [u32; 32],
    /// `GICD_ISENABLER<n>` (v2 §4.3.5, v3 §12.9.26), write-one-to-set.
    pub isenabler: [u32; 32],
    /// `GICD_ICENABLER<n>` (v2 §4.3.6, v3 §12.9.7), write-one-to-clear.
    pub icenabler: [u32; 32],
    /// `GICD_ISPENDR<n>` (v2 §4.3.7, v3 §12.9.28), write-one-to-set.
    pub ispendr: [u32; 32],
    /// `GICD_ICPENDR<n>` (v2 §4.3.8, v3 §12.9.9), write-one-to-clear.
    pub icpendr: [u32; 32],
    /// `GICD_ISACTIVER<n>` (v2 §4.3.9, v3 §12.9.24).
    pub isactiver: [u32; 32],
    /// `GICD_ICACTIVER<n>` (v2 §4.3.10, v3 §12.9.5), write-one-to-clear.
    pub icactiver: [u32; 32],
    /// `GICD_IPRIORITYR<n>` (v2 §4.3.11, v3 §12.9.19), byte-accessible.
    pub ipriorityr: [u8; 1020],
    _reserved0: u32,
    /// `GICD_ITARGETSR<n>` (v2 §4.3.12; v3 §12.9.34, RES0 with affinity routing).
    pub itargetsr: [u8; 1020],
    _reserved1: u32,
    /// `GICD_ICFGR<n>` (v2 §4.3.13, v3 §12.9.6).
    pub icfgr: [u32; 64],
}

/// The SGI and security registers at 0xe00..0xf30.
#[repr(C)]
pub(crate) struct GicdSgi {
    /// `GICD_NSACR<n>` (v2 §4.3.14, v3 §12.9.18).
    pub nsacr: [u32; 64],
    /// `GICD_SGIR` (v2 §4.3.15; v3 §12.9.30, legacy only), write-only.
    pub sgir: u32,
    _reserved0: [u32; 3],
    /// `GICD_CPENDSGIR<n>` (v2 §4.3.16, v3 §12.9.8).
    pub cpendsgir: [u32; 4],
    /// `GICD_SPENDSGIR<n>` (v2 §4.3.17, v3 §12.9.31), write-one-to-set.
    pub spendsgir: [u32; 4],
}

/// Where [`GicdBanks`] starts in both distributors.
pub(crate) const BANKS: usize = 0x080;
/// Where [`GicdSgi`] starts in both distributors.
pub(crate) const SGI: usize = 0xe00;

/// `GICD_CTLR`.
pub(crate) const GICD_CTLR: usize = 0x000;
/// `GICD_TYPER`.
pub(crate) const GICD_TYPER: usize = 0x004;
/// `GICD_IGROUPR<n>`.
pub(crate) const GICD_IGROUPR: usize = BANKS + offset_of!(GicdBanks, igroupr);
/// `GICD_ISENABLER<n>`.
pub(crate) const GICD_ISENABLER: usize = BANKS + offset_of!(GicdBanks, isenabler);
/// `GICD_ICENABLER<n>`.
pub(crate) const GICD_ICENABLER: usize = BANKS + offset_of!(GicdBanks, icenabler);
/// `GICD_ISPENDR<n>`.
pub(crate) const GICD_ISPENDR: usize = BANKS + offset_of!(GicdBanks, ispendr);
/// `GICD_ICPENDR<n>`.
pub(crate) const GICD_ICPENDR: usize = BANKS + offset_of!(GicdBanks, icpendr);
/// `GICD_ISACTIVER<n>`.
pub(crate) const GICD_ISACTIVER: usize = BANKS + offset_of!(GicdBanks, isactiver);
/// `GICD_ICACTIVER<n>`.
pub(crate) const GICD_ICACTIVER: usize = BANKS + offset_of!(GicdBanks, icactiver);
/// `GICD_IPRIORITYR<n>`.
pub(crate) const GICD_IPRIORITYR: usize = BANKS + offset_of!(GicdBanks, ipriorityr);
/// `GICD_ITARGETSR<n>`.
pub(crate) const GICD_ITARGETSR: usize = BANKS + offset_of!(GicdBanks, itargetsr);
/// `GICD_ICFGR<n>`.
pub(crate) const GICD_ICFGR: usize = BANKS + offset_of!(GicdBanks, icfgr);
/// `GICD_NSACR<n>`.
pub(crate) const GICD_NSACR: usize = SGI + offset_of!(GicdSgi, nsacr);
/// `GICD_SGIR`.
pub(crate) const GICD_SGIR: usize = SGI + offset_of!(GicdSgi, sgir);
/// `GICD_CPENDSGIR<n>`.
pub(crate) const GICD_CPENDSGIR: usize = SGI + offset_of!(GicdSgi, cpendsgir);
/// `GICD_SPENDSGIR<n>`.
pub(crate) const GICD_SPENDSGIR: usize = SGI + offset_of!(GicdSgi, spendsgir);

const _: () = assert!(GICD_IGROUPR == 0x080);
const _: () = assert!(GICD_ISENABLER == 0x100);
const _: () = assert!(GICD_ICENABLER == 0x180);
const _: () = assert!(GICD_ISPENDR == 0x200);
const _: () = assert!(GICD_ICPENDR == 0x280);
const _: () = assert!(GICD_ISACTIVER == 0x300);
const _: () = assert!(GICD_ICACTIVER == 0x380);
const _: () = assert!(GICD_IPRIORITYR == 0x400);
const _: () = assert!(GICD_ITARGETSR == 0x800);
const _: () = assert!(GICD_ICFGR == 0xc00);
const _: () = assert!(BANKS + size_of::<GicdBanks>() == 0xd00);
const _: () = assert!(GICD_NSACR == 0xe00);
const _: () = assert!(GICD_SGIR == 0xf00);
const _: () = assert!(GICD_CPENDSGIR == 0xf10);
const _: () = assert!(GICD_SPENDSGIR == 0xf20);
const _: () = assert!(SGI + size_of::<GicdSgi>() == 0xf30);
