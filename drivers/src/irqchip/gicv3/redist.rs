//! GICv3 redistributors: frame layout, and finding this CPU's by affinity.
//!
//! Each PE has a redistributor made of an RD_base frame (control, wake, LPIs)
//! and an SGI_base frame 64 KiB above it holding the SGI/PPI registers that
//! the distributor bank held in GICv2 (IHI 0069H §12.10–§12.11). Firmware lists
//! them as one or more contiguous regions, but the order is not the CPU order
//! (VMware and Parallels differ from QEMU), so a CPU finds its own by walking
//! the frames and comparing `GICR_TYPER.Affinity_Value` with its `MPIDR_EL1`,
//! stopping at `GICR_TYPER.Last` (§12.11.37). A GICv4 redistributor with VLPIS
//! has two more frames (VLPI, reserved), so the stride is 256 KiB, not 128 KiB.
//! This is a register module: the only `unsafe` is in handing out frames.

use core::marker::PhantomData;
use core::mem::{offset_of, size_of};

use bitfield_struct::bitfield;
use bitflags::bitflags;

use super::regs::pidr2_arch_rev;
use crate::mmio::Mmio;
use crate::reg;
use crate::reg::{Access, ReadOnly, ReadWrite, Reg, W1c, W1s, WriteOnly};

/// RD_base frame, IHI 0069H §12.10 (Table 12-27). 64 KiB.
#[repr(C)]
pub(crate) struct GicrRd {
    /// `GICR_CTLR`, §12.11.2.
    pub ctlr: ReadWrite<u32>,
    /// `GICR_IIDR`, §12.11.16.
    pub iidr: ReadOnly<u32>,
    /// `GICR_TYPER`, §12.11.37.
    pub typer: ReadOnly<u64>,
    /// `GICR_STATUSR`, §12.11.35.
    pub statusr: ReadWrite<u32>,
    /// `GICR_WAKER`, §12.11.43.
    pub waker: ReadWrite<u32>,
    /// `GICR_MPAMIDR`.
    pub mpamidr: ReadOnly<u32>,
    /// `GICR_PARTIDR`.
    pub partidr: ReadWrite<u32>,
    _reserved0: [u32; 8],
    /// `GICR_SETLPIR`, §12.11.34 (write-only).
    pub setlpir: WriteOnly<u64>,
    /// `GICR_CLRLPIR`, §12.11.3 (write-only).
    pub clrlpir: WriteOnly<u64>,
    _reserved1: [u64; 4],
    /// `GICR_PROPBASER`, §12.11.32.
    pub propbaser: ReadWrite<u64>,
    /// `GICR_PENDBASER`, §12.11.30.
    pub pendbaser: ReadWrite<u64>,
    _reserved2: [u64; 4],
    /// `GICR_INVLPIR`, §12.11.19 (write-only).
    pub invlpir: WriteOnly<u64>,
    _reserved3: u64,
    /// `GICR_INVALLR`, §12.11.18 (write-only).
    pub invallr: WriteOnly<u64>,
    _reserved4: u64,
    /// `GICR_SYNCR`, §12.11.36.
    pub syncr: ReadOnly<u32>,
    _reserved5: [u32; 0x3fc3],
    /// Identification registers; `GICR_PIDR2` is `id[6]`.
    pub id: [ReadOnly<u32>; 12],
}

/// SGI_base frame, IHI 0069H §12.10 (Table 12-28). 64 KiB.
#[repr(C)]
pub(crate) struct GicrSgi {
    _reserved0: [u32; 32],
    /// `GICR_IGROUPR0`, §12.11.12.
    pub igroupr0: ReadWrite<u32>,
    _reserved1: [u32; 31],
    /// `GICR_ISENABLER0`, §12.11.26 (write-one-to-set).
    pub isenabler0: W1s<u32>,
    _reserved2: [u32; 31],
    /// `GICR_ICENABLER0`, §12.11.7 (write-one-to-clear; completion via `GICR_CTLR.RWP`).
    pub icenabler0: W1c<u32>,
    _reserved3: [u32; 31],
    /// `GICR_ISPENDR0`, §12.11.30 (write-one-to-set).
    pub ispendr0: W1s<u32>,
    _reserved4: [u32; 31],
    /// `GICR_ICPENDR0`, §12.11.9 (write-one-to-clear).
    pub icpendr0: W1c<u32>,
    _reserved5: [u32; 31],
    /// `GICR_ISACTIVER0`, §12.11.24 (write-one-to-set).
    pub isactiver0: W1s<u32>,
    _reserved6: [u32; 31],
    /// `GICR_ICACTIVER0`, §12.11.5 (write-one-to-clear).
    pub icactiver0: W1c<u32>,
    _reserved7: [u32; 31],
    /// `GICR_IPRIORITYR<n>`, §12.11.21 (byte-accessible).
    pub ipriorityr: [ReadWrite<u8>; 32],
    _reserved8: [u32; 0x1f8],
    /// `GICR_ICFGR0` (SGIs, read-only: writes ignored) and `GICR_ICFGR1` (PPIs), §12.11.8.
    pub icfgr: [ReadWrite<u32>; 2],
    _reserved9: [u32; 62],
    /// `GICR_IGRPMODR0`, §12.11.15.
    pub igrpmodr0: ReadWrite<u32>,
    _reserved10: [u32; 63],
    /// `GICR_NSACR`, §12.11.28.
    pub nsacr: ReadWrite<u32>,
    _reserved11: [u32; 0x3c7f],
}

/// One redistributor as seen by this driver: RD_base then SGI_base.
#[repr(C)]
pub(crate) struct GicrFrames {
    /// RD_base.
    pub rd: GicrRd,
    /// SGI_base = RD_base + 64 KiB.
    pub sgi: GicrSgi,
}

pub(crate) const GICR_CTLR: Reg<ReadWrite<u32>> = reg!(GicrFrames, rd.ctlr);
pub(crate) const GICR_TYPER: Reg<ReadOnly<u64>> = reg!(GicrFrames, rd.typer);
pub(crate) const GICR_WAKER: Reg<ReadWrite<u32>> = reg!(GicrFrames, rd.waker);
pub(crate) const GICR_PROPBASER: Reg<ReadWrite<u64>> = reg!(GicrFrames, rd.propbaser);
pub(crate) const GICR_PENDBASER: Reg<ReadWrite<u64>> = reg!(GicrFrames, rd.pendbaser);
pub(crate) const GICR_PIDR2: Reg<ReadOnly<u32>> = reg!(GicrFrames, rd.id).at(6);
pub(crate) const GICR_IGROUPR0: Reg<ReadWrite<u32>> = reg!(GicrFrames, sgi.igroupr0);
pub(crate) const GICR_ISENABLER0: Reg<W1s<u32>> = reg!(GicrFrames, sgi.isenabler0);
pub(crate) const GICR_ICENABLER0: Reg<W1c<u32>> = reg!(GicrFrames, sgi.icenabler0);
pub(crate) const GICR_ISPENDR0: Reg<W1s<u32>> = reg!(GicrFrames, sgi.ispendr0);
pub(crate) const GICR_ICPENDR0: Reg<W1c<u32>> = reg!(GicrFrames, sgi.icpendr0);
pub(crate) const GICR_ICACTIVER0: Reg<W1c<u32>> = reg!(GicrFrames, sgi.icactiver0);
pub(crate) const GICR_IPRIORITYR: Reg<[ReadWrite<u8>; 32]> = reg!(GicrFrames, sgi.ipriorityr);
pub(crate) const GICR_ICFGR: Reg<[ReadWrite<u32>; 2]> = reg!(GicrFrames, sgi.icfgr);
pub(crate) const GICR_IGRPMODR0: Reg<ReadWrite<u32>> = reg!(GicrFrames, sgi.igrpmodr0);

const SGI_BASE: usize = 0x1_0000;
const _: () = assert!(GICR_CTLR.offset() == 0x0000);
const _: () = assert!(offset_of!(GicrRd, iidr) == 0x0004);
const _: () = assert!(GICR_TYPER.offset() == 0x0008);
const _: () = assert!(GICR_WAKER.offset() == 0x0014);
const _: () = assert!(offset_of!(GicrRd, setlpir) == 0x0040);
const _: () = assert!(offset_of!(GicrRd, propbaser) == 0x0070);
const _: () = assert!(offset_of!(GicrRd, pendbaser) == 0x0078);
const _: () = assert!(offset_of!(GicrRd, invlpir) == 0x00a0);
const _: () = assert!(offset_of!(GicrRd, invallr) == 0x00b0);
const _: () = assert!(offset_of!(GicrRd, syncr) == 0x00c0);
const _: () = assert!(GICR_PIDR2.offset() == 0xffe8);
const _: () = assert!(size_of::<GicrRd>() == 0x10000);
const _: () = assert!(GICR_IGROUPR0.offset() == SGI_BASE + 0x0080);
const _: () = assert!(GICR_ISENABLER0.offset() == SGI_BASE + 0x0100);
const _: () = assert!(GICR_ICENABLER0.offset() == SGI_BASE + 0x0180);
const _: () = assert!(GICR_ISPENDR0.offset() == SGI_BASE + 0x0200);
const _: () = assert!(GICR_ICPENDR0.offset() == SGI_BASE + 0x0280);
const _: () = assert!(offset_of!(GicrSgi, isactiver0) == 0x0300);
const _: () = assert!(GICR_ICACTIVER0.offset() == SGI_BASE + 0x0380);
const _: () = assert!(GICR_IPRIORITYR.offset() == SGI_BASE + 0x0400);
const _: () = assert!(GICR_ICFGR.offset() == SGI_BASE + 0x0c00);
const _: () = assert!(GICR_IGRPMODR0.offset() == SGI_BASE + 0x0d00);
const _: () = assert!(offset_of!(GicrSgi, nsacr) == 0x0e00);
const _: () = assert!(size_of::<GicrSgi>() == 0x10000);
const _: () = assert!(size_of::<GicrFrames>() == 0x20000);

/// `GICR_TYPER`, IHI 0069H §12.11.37.
#[bitfield(u64)]
#[derive(PartialEq, Eq)]
pub(crate) struct GicrTyper {
    /// PLPIS: physical LPIs supported.
    pub plpis: bool,
    /// VLPIS: virtual LPIs supported — two extra 64 KiB frames (GICv4).
    pub vlpis: bool,
    /// Dirty.
    pub dirty: bool,
    /// DirectLPI.
    pub direct_lpi: bool,
    /// Last: the final redistributor of this region.
    pub last: bool,
    /// DPGS.
    pub dpgs: bool,
    /// MPAM.
    pub mpam: bool,
    /// RVPEID.
    pub rvpeid: bool,
    /// Processor_Number (for ITS target addressing when `GITS_TYPER.PTA` = 0).
    pub processor_number: u16,
    /// CommonLPIAff.
    #[bits(2)]
    pub common_lpi_aff: u8,
    /// VSGI.
    pub vsgi: bool,
    /// PPInum.
    #[bits(5)]
    pub ppi_num: u8,
    /// Affinity_Value: Aff3.Aff2.Aff1.Aff0 of the PE this redistributor serves.
    pub affinity: u32,
}

impl GicrTyper {
    /// Distance to the next redistributor: 128 KiB, or 256 KiB with VLPIS (GICv4).
    pub(crate) const fn stride(self) -> usize {
        if self.vlpis() { 0x4_0000 } else { 0x2_0000 }
    }
}

/// `GICR_PROPBASER` (§12.11.32): the LPI configuration table at `pa` (4 KiB
/// aligned) covering INTIDs below 2^`id_bits`; inner write-back, inner shareable.
pub const fn propbaser(pa: u64, id_bits: u32) -> u64 {
    (pa & 0x000f_ffff_ffff_f000) | (0b01 << 10) | (0b111 << 7) | ((id_bits as u64 - 1) & 0x1f)
}

/// `GICR_PENDBASER` (§12.11.30): the LPI pending table at `pa` (64 KiB aligned),
/// known to be zeroed (PTZ); inner write-back, inner shareable.
pub const fn pendbaser(pa: u64) -> u64 {
    (1 << 62) | (pa & 0x000f_ffff_ffff_0000) | (0b01 << 10) | (0b111 << 7)
}

/// The 32-bit affinity (Aff3.Aff2.Aff1.Aff0) of an `MPIDR_EL1` value, in the
/// format of `GICR_TYPER.Affinity_Value`.
pub(crate) const fn mpidr_affinity(mpidr: u64) -> u32 {
    (((mpidr >> 8) & 0xff00_0000) | (mpidr & 0x00ff_ffff)) as u32
}

bitflags! {
    /// `GICR_WAKER`, IHI 0069H §12.11.43.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct GicrWaker: u32 {
        /// ProcessorSleep: 1 = the PE is asleep, interrupts are not forwarded.
        const PROCESSOR_SLEEP = 1 << 1;
        /// ChildrenAsleep: the interface to the PE is quiescent.
        const CHILDREN_ASLEEP = 1 << 2;
    }
}

bitflags! {
    /// `GICR_CTLR`, IHI 0069H §12.11.2.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct GicrCtlr: u32 {
        /// EnableLPIs.
        const ENABLE_LPIS = 1 << 0;
        /// RWP: a write to `GICR_ICENABLER0` (or CTLR) is still in flight.
        const RWP = 1 << 3;
        /// UWP: upstream write pending.
        const UWP = 1 << 31;
    }
}

/// Most frames we look at in one region (e.g. 512 PEs); keeps the walk bounded
/// even if `Last` is never set.
const MAX_FRAMES: usize = 512;

/// The redistributor region(s) firmware described, as one contiguous window.
pub(crate) struct Redistributors {
    base: usize,
    len: usize,
}

/// One redistributor (RD_base + SGI_base) inside a [`Redistributors`] window.
pub(crate) struct Redist<'a> {
    pub(crate) regs: Mmio<GicrFrames>,
    _region: PhantomData<&'a Redistributors>,
}

impl Redistributors {
    /// # Safety
    /// `base..base + len` is mapped device memory holding GICv3 redistributor
    /// frames, valid for the life of the value and owned by it.
    pub(crate) const unsafe fn new(base: usize, len: usize) -> Self {
        Self { base, len }
    }

    /// The redistributor whose frame starts `offset` bytes into the window.
    fn frame(&self, offset: usize) -> Option<Redist<'_>> {
        if offset.checked_add(size_of::<GicrFrames>())? > self.len {
            return None;
        }
        // SAFETY: the whole 128 KiB frame lies inside the window `new` was promised,
        // and `Redist` borrows `self`, so it cannot outlive the mapping.
        let regs = unsafe { Mmio::new(self.base + offset) };
        Some(Redist {
            regs,
            _region: PhantomData,
        })
    }

    /// Walks the frames for the one serving the PE with `affinity`
    /// (see [`mpidr_affinity`]). `None` if the window ends, a frame does not
    /// identify as GICv3/v4 (`GICR_PIDR2.ArchRev`), or `Last` is reached first.
    pub(crate) fn find(&self, affinity: u32) -> Option<Redist<'_>> {
        let mut offset = 0;
        for _ in 0..MAX_FRAMES {
            let rd = self.frame(offset)?;
            if !matches!(pidr2_arch_rev(rd.regs.read(GICR_PIDR2)), 3 | 4) {
                return None;
            }
            let typer = GicrTyper::from_bits(rd.regs.read(GICR_TYPER));
            if typer.affinity() == affinity {
                return Some(rd);
            }
            if typer.last() {
                return None;
            }
            offset += typer.stride();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmio::fake;

    #[test]
    fn typer_fields() {
        let t = GicrTyper::from_bits((0x0102_0304 << 32) | (7 << 8) | 0b1_0011);
        assert!(t.plpis() && t.vlpis() && t.last() && !t.dirty());
        assert_eq!(t.processor_number(), 7);
        assert_eq!(t.affinity(), 0x0102_0304);
        assert_eq!(t.stride(), 0x4_0000);
        assert_eq!(GicrTyper::new().stride(), 0x2_0000);
    }

    #[test]
    fn lpi_table_registers() {
        assert_eq!(
            propbaser(0x4000_2000, 14),
            0x4000_2000 | (1 << 10) | (7 << 7) | 13
        );
        assert_eq!(
            pendbaser(0x4001_0000),
            (1 << 62) | 0x4001_0000 | (1 << 10) | (7 << 7)
        );
        // Unaligned low bits never leak into the attribute fields.
        assert_eq!(pendbaser(0x4001_ffff) & 0xffff, pendbaser(0) & 0xffff);
    }

    #[test]
    fn affinity_from_mpidr() {
        // Aff3 = 0x01 at [39:32], Aff2.Aff1.Aff0 = 02.03.04; bit 31 RES1 and MT ignored.
        let mpidr = (0x01 << 32) | (1 << 31) | (1 << 24) | 0x02_0304;
        assert_eq!(mpidr_affinity(mpidr), 0x0102_0304);
        assert_eq!(mpidr_affinity(0x8000_0001), 1);
        let t = GicrTyper::new().with_affinity(mpidr_affinity(mpidr));
        assert_eq!(t.affinity(), 0x0102_0304);
    }

    fn put(mem: &mut [fake::Frame], frame: usize, typer: GicrTyper) {
        fake::w32(mem, frame + GICR_PIDR2.offset(), 0x3b);
        fake::w64(mem, frame + GICR_TYPER.offset(), typer.into_bits());
    }

    #[test]
    fn walk_by_affinity_not_index() {
        // Four redistributors listed out of CPU order; the second is GICv4 (VLPIS).
        let mut mem = fake::frames(12);
        put(
            &mut mem,
            0x0_0000,
            GicrTyper::new().with_affinity(0x0000_0102),
        );
        put(
            &mut mem,
            0x2_0000,
            GicrTyper::new().with_affinity(0x0000_0000).with_vlpis(true),
        );
        put(
            &mut mem,
            0x6_0000,
            GicrTyper::new().with_affinity(0x0000_0001),
        );
        put(
            &mut mem,
            0x8_0000,
            GicrTyper::new().with_affinity(0x0100_0000).with_last(true),
        );
        // A frame past `Last` must never be considered.
        put(
            &mut mem,
            0xa_0000,
            GicrTyper::new().with_affinity(0x0000_0007),
        );
        let base = fake::base(&mut mem);
        // SAFETY: `mem` outlives `rds` and is accessed only through it here.
        let rds = unsafe { Redistributors::new(base, 12 * 0x1_0000) };
        let at = |aff| rds.find(aff).map(|r| r.regs.read(GICR_TYPER) as u32);
        assert!(at(0x0102).is_some());
        assert!(at(0x0000).is_some());
        assert_eq!(rds.find(1).map(|r| r.regs.read(GICR_TYPER) >> 32), Some(1));
        assert!(at(0x0100_0000).is_some());
        assert!(at(0x0000_0007).is_none());
        assert!(at(0x0000_0003).is_none());
    }

    #[test]
    fn walk_stops_at_window_end_and_bad_frames() {
        let mut mem = fake::frames(4);
        put(&mut mem, 0x0_0000, GicrTyper::new().with_affinity(5));
        put(&mut mem, 0x2_0000, GicrTyper::new().with_affinity(6));
        let base = fake::base(&mut mem);
        // SAFETY: as above; the window is shorter than the buffer.
        let rds = unsafe { Redistributors::new(base, 0x3_0000) };
        assert!(rds.find(5).is_some());
        assert!(
            rds.find(6).is_none(),
            "second frame does not fit the window"
        );
        // SAFETY: as above.
        let rds = unsafe { Redistributors::new(base + 0x1_0000, 0x2_0000) };
        assert!(
            rds.find(0).is_none(),
            "a frame without GICv3 PIDR2 stops the walk"
        );
    }
}
