//! GICv3 ITS register layout, `GITS_TYPER` / `GITS_BASER<n>` fields, access.
//!
//! The ITS control frame (IHI 0069H §12.19, Table 12-32) is 64 KiB, followed by
//! the translation frame whose `GITS_TRANSLATER` is the doorbell devices write
//! their MSIs to. Register access goes through `crate::mmio::Registers` so the
//! driver can run against the real frame ([`ItsMmio`]) or, in the host tests, a
//! fake ITS that processes the command queue when `GITS_CWRITER` is written.

use core::mem::{offset_of, size_of};

use bitfield_struct::bitfield;

use crate::mmio::MmioRegs;

/// ITS control frame plus translation frame, IHI 0069H §12.19. 128 KiB.
#[repr(C)]
pub struct ItsRegs {
    /// `GITS_CTLR`, §12.19.6.
    pub ctlr: u32,
    /// `GITS_IIDR`, §12.19.8.
    pub iidr: u32,
    /// `GITS_TYPER`, §12.19.14.
    pub typer: u64,
    _reserved0: [u64; 14],
    /// `GITS_CBASER`, §12.19.2.
    pub cbaser: u64,
    /// `GITS_CWRITER`, §12.19.5.
    pub cwriter: u64,
    /// `GITS_CREADR`, §12.19.4.
    pub creadr: u64,
    _reserved1: [u64; 13],
    /// `GITS_BASER<n>`, §12.19.1.
    pub baser: [u64; 8],
    _reserved2: [u32; 0x3fa4],
    /// Identification registers; `GITS_PIDR2` is `id[6]`.
    pub id: [u32; 12],
    _reserved3: [u32; 0x10],
    /// `GITS_TRANSLATER` (translation frame + 0x40), §12.19.15. Doorbell only.
    pub translater: u32,
    _reserved4: [u32; 0x3fef],
}

/// `GITS_CTLR`.
pub const GITS_CTLR: usize = offset_of!(ItsRegs, ctlr);
/// `GITS_TYPER`.
pub const GITS_TYPER: usize = offset_of!(ItsRegs, typer);
/// `GITS_CBASER`.
pub const GITS_CBASER: usize = offset_of!(ItsRegs, cbaser);
/// `GITS_CWRITER`.
pub const GITS_CWRITER: usize = offset_of!(ItsRegs, cwriter);
/// `GITS_CREADR`.
pub const GITS_CREADR: usize = offset_of!(ItsRegs, creadr);
/// `GITS_BASER0`.
pub const GITS_BASER: usize = offset_of!(ItsRegs, baser);
/// `GITS_TRANSLATER`: the MSI doorbell, 0x10040 from the ITS base.
pub const GITS_TRANSLATER: usize = offset_of!(ItsRegs, translater);

const _: () = assert!(GITS_CTLR == 0x0000);
const _: () = assert!(offset_of!(ItsRegs, iidr) == 0x0004);
const _: () = assert!(GITS_TYPER == 0x0008);
const _: () = assert!(GITS_CBASER == 0x0080);
const _: () = assert!(GITS_CWRITER == 0x0088);
const _: () = assert!(GITS_CREADR == 0x0090);
const _: () = assert!(GITS_BASER == 0x0100);
const _: () = assert!(offset_of!(ItsRegs, id) + 6 * 4 == 0xffe8);
const _: () = assert!(GITS_TRANSLATER == 0x1_0040);
const _: () = assert!(size_of::<ItsRegs>() == 0x2_0000);

/// `GITS_CTLR.Enabled`.
pub const CTLR_ENABLED: u32 = 1 << 0;
/// `GITS_CTLR.Quiescent`.
pub const CTLR_QUIESCENT: u32 = 1 << 31;
/// `GITS_CREADR.Stalled`: a command error stopped the queue.
pub const CREADR_STALLED: u64 = 1 << 0;
/// Queue offsets in `GITS_CWRITER`/`GITS_CREADR` are bits [19:5].
pub const QUEUE_OFFSET_MASK: u64 = 0xf_ffe0;

/// `GITS_TYPER`, IHI 0069H §12.19.14.
#[bitfield(u64)]
#[derive(PartialEq, Eq)]
pub struct GitsTyper {
    /// Physical LPIs supported.
    pub physical: bool,
    /// Virtual LPIs supported (GICv4).
    pub virt: bool,
    /// Cumulative collections table.
    pub cct: bool,
    #[bits(1)]
    __: u8,
    /// ITT_entry_size: bytes per ITT entry, minus one.
    #[bits(4)]
    pub itt_entry_size: u8,
    /// ID_bits: EventID bits, minus one.
    #[bits(5)]
    pub id_bits: u8,
    /// Devbits: DeviceID bits, minus one.
    #[bits(5)]
    pub devbits: u8,
    /// SEIS.
    pub seis: bool,
    /// PTA: 1 = RDbase is a physical address, 0 = a processor number.
    pub pta: bool,
    #[bits(4)]
    __: u8,
    /// HCC: collections held in the ITS itself, without a table.
    pub hcc: u8,
    /// CIDbits: collection ID bits minus one (when CIL = 1).
    #[bits(4)]
    pub cid_bits: u8,
    /// CIL: CIDbits is valid (else 16 bits).
    pub cil: bool,
    #[bits(27)]
    __: u32,
}

/// `GITS_BASER<n>.Type`, IHI 0069H §12.19.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableType {
    /// Not implemented.
    None,
    /// Device table.
    Devices,
    /// vPE table (GICv4): not used.
    Vpes,
    /// Collection table.
    Collections,
    /// Reserved encodings.
    Reserved(u8),
}

impl TableType {
    /// Decodes the 3-bit Type field.
    pub const fn from_bits(v: u8) -> Self {
        match v {
            0 => TableType::None,
            1 => TableType::Devices,
            2 => TableType::Vpes,
            4 => TableType::Collections,
            r => TableType::Reserved(r),
        }
    }
}

/// `GITS_BASER<n>`, IHI 0069H §12.19.1.
#[bitfield(u64)]
#[derive(PartialEq, Eq)]
pub struct GitsBaser {
    /// Size: pages allocated, minus one.
    pub size: u8,
    /// Page_Size: 0 = 4 KiB, 1 = 16 KiB, 2/3 = 64 KiB.
    #[bits(2)]
    pub page_size: u8,
    /// Shareability.
    #[bits(2)]
    pub shareability: u8,
    /// Physical_Address bits [47:12].
    #[bits(36)]
    pub pa: u64,
    /// Entry_Size: bytes per entry, minus one (read-only).
    #[bits(5)]
    pub entry_size: u8,
    /// OuterCache.
    #[bits(3)]
    pub outer_cache: u8,
    /// Type (read-only).
    #[bits(3)]
    pub ty: u8,
    /// InnerCache.
    #[bits(3)]
    pub inner_cache: u8,
    /// Indirect: two-level table.
    pub indirect: bool,
    /// Valid.
    pub valid: bool,
}

impl GitsBaser {
    /// Page size in bytes.
    pub const fn page_bytes(self) -> usize {
        match self.page_size() {
            0 => 0x1000,
            1 => 0x4000,
            _ => 0x1_0000,
        }
    }
}

/// Page_Size encoding for `bytes`.
pub const fn page_size_field(bytes: usize) -> u8 {
    match bytes {
        0x1000 => 0,
        0x4000 => 1,
        _ => 2,
    }
}

/// Normal memory, inner write-back read/write-allocate (InnerCache 0b111).
pub const CACHE_WAWB: u8 = 0b111;
/// Inner Shareable.
pub const INNER_SHAREABLE: u8 = 0b01;

/// `GITS_CBASER` for a queue of `pages` 4 KiB pages at `pa` (§12.19.2).
pub const fn cbaser(pa: u64, pages: usize) -> u64 {
    (1 << 63)
        | ((CACHE_WAWB as u64) << 59)
        | (pa & 0x000f_ffff_ffff_f000)
        | ((INNER_SHAREABLE as u64) << 10)
        | ((pages as u64 - 1) & 0xff)
}

/// The real ITS frame.
pub type ItsMmio = MmioRegs<ItsRegs>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typer_matches_qemu() {
        // QEMU 7.2: Physical, ITT entry 12 bytes, 16 EventID bits, 16 DeviceID bits,
        // CIL with 16 collection bits, PTA = 0.
        let t = GitsTyper::new()
            .with_physical(true)
            .with_itt_entry_size(11)
            .with_id_bits(15)
            .with_devbits(15)
            .with_cil(true)
            .with_cid_bits(15);
        let raw = t.into_bits();
        assert_eq!(raw & 0xff, 0xb1);
        assert_eq!((raw >> 8) & 0x1f, 15);
        assert_eq!((raw >> 13) & 0x1f, 15);
        assert_eq!(raw >> 32, 0x1f);
        assert!(!GitsTyper::from_bits(raw).pta());
        assert!(GitsTyper::from_bits(1 << 19).pta());
        assert_eq!(GitsTyper::from_bits(0xab << 24).hcc(), 0xab);
    }

    #[test]
    fn baser_fields() {
        let b =
            GitsBaser::from_bits((1 << 63) | (4 << 56) | (7 << 48) | (2 << 8) | 0x4_1234_5000 | 3);
        assert!(b.valid() && !b.indirect());
        assert_eq!(TableType::from_bits(b.ty()), TableType::Collections);
        assert_eq!(b.entry_size(), 7);
        assert_eq!(b.page_bytes(), 0x1_0000);
        assert_eq!(b.pa() << 12, 0x4_1234_5000);
        assert_eq!(b.size(), 3);
        assert_eq!(TableType::from_bits(1), TableType::Devices);
        assert_eq!(TableType::from_bits(3), TableType::Reserved(3));
        assert_eq!(page_size_field(0x4000), 1);
    }

    #[test]
    fn cbaser_encoding() {
        let v = cbaser(0x4008_0000, 1);
        assert_eq!(v, (1 << 63) | (7 << 59) | 0x4008_0000 | (1 << 10));
        assert_eq!(cbaser(0x4008_0000, 4) & 0xff, 3);
    }
}
