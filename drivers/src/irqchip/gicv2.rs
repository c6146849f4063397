//! GICv2 driver: memory-mapped distributor and CPU interface (IHI 0048B).
//!
//! QEMU `virt` with `gic-version=2` (and GIC-400 boards) expose the whole GIC as
//! two MMIO blocks: the distributor (GICD), shared by all CPUs with the SGI/PPI
//! registers banked per CPU, and the CPU interface (GICC), also banked, through
//! which a CPU acknowledges and completes interrupts. This driver leaves
//! interrupts in the group firmware gave them and enables bit 0 of both control
//! registers, which is Group 0 on a GIC without Security Extensions (signalled as
//! IRQ since `GICC_CTLR.FIQEn` = 0) and Group 1 in the Non-secure view of one
//! with them — the same choice Linux makes. See `docs/interrupts.md`.

mod regs;

use core::sync::atomic::{AtomicU8, Ordering};

use self::regs::*;
use super::{
    DEFAULT_PRIORITY, FIRST_SPI, InterruptController, Trigger, bit_of, icfgr_reg, icfgr_update,
    is_sgi, replicate_byte, typer_lines, typer_max_intid,
};
use crate::mmio::Mmio;
use crate::reg::{Access, Readable, Reg};

/// Most CPU interfaces a GICv2 supports (`CPUTargetList` is 8 bits).
const MAX_CPUS: usize = 8;

/// A GICv2: distributor plus this CPU's view of the CPU interface.
pub struct GicV2 {
    gicd: Mmio<Gicd>,
    gicc: Mmio<Gicc>,
    /// For each CPU interface and SGI, the source CPU of the SGI currently
    /// acknowledged: `GICC_EOIR` must echo it (IHI 0048B §4.4.5).
    sgi_source: [[AtomicU8; 16]; MAX_CPUS],
    /// The one `IrqControl` of this distributor (`caps::irq::ControlToken`).
    pub(super) claim: caps::irq::ControlClaim,
}

impl GicV2 {
    /// Wraps a GICv2 whose distributor is mapped at `gicd_base` and CPU interface
    /// at `gicc_base` (virtual addresses).
    ///
    /// # Safety
    /// Both bases are mapped device memory (Device-nGnRE or stricter) of at least
    /// 4 KiB each, valid for the life of the value, and exclusively owned by it.
    #[must_use]
    pub const unsafe fn new(gicd_base: usize, gicc_base: usize) -> Self {
        Self {
            // SAFETY: the caller gives us exclusive 4 KiB device mappings at both bases.
            gicd: unsafe { Mmio::new(gicd_base) },
            // SAFETY: as above.
            gicc: unsafe { Mmio::new(gicc_base) },
            sgi_source: [const { [const { AtomicU8::new(0) }; 16] }; MAX_CPUS],
            claim: caps::irq::ControlClaim::new(),
        }
    }

    fn lines(&self) -> u32 {
        typer_lines(self.gicd.read(GICD_TYPER)).min(super::SPECIAL_START)
    }

    fn valid(&self, intid: u32) -> bool {
        let ok = intid <= self.max_intid();
        debug_assert!(ok, "GICv2: INTID {intid} out of range");
        ok
    }

    /// This CPU's interface bit, read from the banked `GICD_ITARGETSR0..7`.
    /// A uniprocessor implementation may read as zero; it is then CPU 0.
    fn cpu_mask(&self) -> u8 {
        for word in 0..8 {
            let m = fold_cpu_mask(self.gicd.read(GICD_ITARGETSR.word(word)));
            if m != 0 {
                return m;
            }
        }
        1
    }

    fn cpu_index(&self) -> usize {
        self.cpu_mask().trailing_zeros() as usize
    }

    fn read_bit<F: Readable<Value = u32>>(&self, bank: Reg<[F; 32]>, intid: u32) -> bool {
        let (reg, bit) = bit_of(bank, intid);
        self.gicd.read(reg) & bit != 0
    }
}

impl InterruptController for GicV2 {
    fn init(&self) {
        self.gicd.write(GICD_CTLR, 0);
        let lines = self.lines() as usize;
        for n in (FIRST_SPI as usize / 32)..lines.div_ceil(32) {
            self.gicd.clear(GICD_ICENABLER.at(n), u32::MAX);
            self.gicd.clear(GICD_ICPENDR.at(n), u32::MAX);
            self.gicd.clear(GICD_ICACTIVER.at(n), u32::MAX);
        }
        let targets = replicate_byte(self.cpu_mask());
        for n in (FIRST_SPI as usize / 4)..lines / 4 {
            let prio = replicate_byte(DEFAULT_PRIORITY);
            self.gicd.write(GICD_IPRIORITYR.word(n), prio);
            self.gicd.write(GICD_ITARGETSR.word(n), targets);
        }
        // All SPIs level-sensitive until a driver says otherwise (Linux does the same).
        for n in (FIRST_SPI as usize / 16)..lines.div_ceil(16) {
            self.gicd.write(GICD_ICFGR.at(n), 0);
        }
        self.gicd.write(GICD_CTLR, GicdCtlr::ENABLE.bits());
    }

    fn init_cpu(&self) {
        // Banked bank 0: PPIs off until registered, SGIs on (they may be RAO anyway).
        self.gicd.clear(GICD_ICENABLER.at(0), 0xffff_0000);
        self.gicd.set(GICD_ISENABLER.at(0), 0x0000_ffff);
        self.gicd.clear(GICD_ICACTIVER.at(0), u32::MAX);
        for n in 0..FIRST_SPI as usize / 4 {
            let prio = replicate_byte(DEFAULT_PRIORITY);
            self.gicd.write(GICD_IPRIORITYR.word(n), prio);
        }
        self.gicc.write(GICC_PMR, 0xff);
        self.gicc.write(GICC_BPR, 0);
        self.gicc.modify(GICC_CTLR, |ctlr| {
            let bypass = GiccCtlr::from_bits_retain(ctlr) & GiccCtlr::BYPASS_MASK;
            (bypass | GiccCtlr::ENABLE).bits()
        });
    }

    fn enable(&self, intid: u32) {
        if self.valid(intid) {
            let (reg, bit) = bit_of(GICD_ISENABLER, intid);
            self.gicd.set(reg, bit);
        }
    }

    fn disable(&self, intid: u32) {
        // GICv2 has no RWP: the write takes effect before later accesses complete.
        if self.valid(intid) {
            let (reg, bit) = bit_of(GICD_ICENABLER, intid);
            self.gicd.clear(reg, bit);
        }
    }

    fn set_priority(&self, intid: u32, prio: u8) {
        if self.valid(intid) {
            self.gicd.write(GICD_IPRIORITYR.at(intid as usize), prio);
        }
    }

    fn set_trigger(&self, intid: u32, trigger: Trigger) {
        if is_sgi(intid) || !self.valid(intid) {
            return;
        }
        let (n, _) = icfgr_reg(intid);
        self.gicd
            .modify(GICD_ICFGR.at(n), |old| icfgr_update(old, intid, trigger));
    }

    fn ack(&self) -> u32 {
        let iar = Iar::from_bits(self.gicc.read(GICC_IAR));
        let intid = iar.intid();
        if is_sgi(intid) {
            self.sgi_source[self.cpu_index()][intid as usize].store(iar.cpuid(), Ordering::Relaxed);
        }
        intid
    }

    fn eoi(&self, intid: u32) {
        let mut eoir = Iar::new().with_intid(intid);
        if is_sgi(intid) {
            let src = self.sgi_source[self.cpu_index()][intid as usize].load(Ordering::Relaxed);
            eoir.set_cpuid(src);
        }
        self.gicc.write(GICC_EOIR, eoir.into_bits());
    }

    fn clear_pending(&self, intid: u32) {
        if self.valid(intid) && !is_sgi(intid) {
            let (reg, bit) = bit_of(GICD_ICPENDR, intid);
            self.gicd.clear(reg, bit);
        }
    }

    fn set_pending(&self, intid: u32) {
        if !self.valid(intid) {
            return;
        }
        if is_sgi(intid) {
            // GICD_ISPENDR0 SGI bits are WI; SPENDSGIR sets one (SGI, source) pair.
            let shift = 8 * (intid % 4);
            let word = u32::from(self.cpu_mask()) << shift;
            self.gicd.set(GICD_SPENDSGIR.at((intid / 4) as usize), word);
        } else {
            let (reg, bit) = bit_of(GICD_ISPENDR, intid);
            self.gicd.set(reg, bit);
        }
    }

    fn is_pending(&self, intid: u32) -> bool {
        if !self.valid(intid) {
            return false;
        }
        if is_sgi(intid) {
            // One byte per SGI: the CPU interfaces it is pending from.
            let word = self.gicd.read(GICD_SPENDSGIR.at((intid / 4) as usize));
            (word >> (8 * (intid % 4))) & 0xff != 0
        } else {
            self.read_bit(GICD_ISPENDR, intid)
        }
    }

    fn is_enabled(&self, intid: u32) -> bool {
        self.valid(intid) && self.read_bit(GICD_ISENABLER, intid)
    }

    fn send_sgi_self(&self, sgi: u32) {
        debug_assert!(is_sgi(sgi));
        let sgir = Sgir::new()
            .with_intid((sgi & 0xf) as u8)
            .with_filter(SgiFilter::SelfOnly);
        self.gicd.write(GICD_SGIR, sgir.into_bits());
    }

    fn sgi_target(&self) -> u64 {
        u64::from(self.cpu_mask())
    }

    fn send_sgi(&self, sgi: u32, target: u64) {
        debug_assert!(is_sgi(sgi));
        let sgir = Sgir::new()
            .with_intid((sgi & 0xf) as u8)
            .with_target_list(target as u8)
            .with_filter(SgiFilter::TargetList);
        self.gicd.write(GICD_SGIR, sgir.into_bits());
    }

    fn max_intid(&self) -> u32 {
        typer_max_intid(self.gicd.read(GICD_TYPER))
    }

    fn version(&self) -> u8 {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmio::fake;

    fn gic() -> (GicV2, std::boxed::Box<[fake::Frame]>) {
        let mut mem = fake::frames(2);
        fake::w32(&mut mem, GICD_TYPER.offset(), 0x08); // 288 lines, like QEMU virt
        fake::w32(&mut mem, GICD_ITARGETSR.offset(), 0x0202_0202); // we are CPU interface 1
        let base = fake::base(&mut mem);
        // SAFETY: `mem` outlives the driver in every test and is touched only through it.
        let gic = unsafe { GicV2::new(base, base + 0x10000) };
        (gic, mem)
    }

    #[test]
    fn enable_writes_one_bit_only() {
        let (gic, mem) = gic();
        gic.enable(40);
        gic.disable(33);
        assert_eq!(fake::r32(&mem, 0x104), 1 << 8);
        assert_eq!(fake::r32(&mem, 0x184), 1 << 1);
        assert!(gic.is_enabled(40));
        assert_eq!(gic.max_intid(), 287);
    }

    #[test]
    fn priority_trigger_pending() {
        let (gic, mem) = gic();
        gic.set_priority(34, 0x80);
        assert_eq!(fake::r32(&mem, 0x420), 0x0080_0000);
        gic.set_trigger(33, Trigger::Edge);
        assert_eq!(fake::r32(&mem, 0xc08), 0b1000);
        gic.set_trigger(33, Trigger::Level);
        assert_eq!(fake::r32(&mem, 0xc08), 0);
        gic.set_pending(45);
        assert_eq!(fake::r32(&mem, 0x204), 1 << 13);
        assert!(gic.is_pending(45));
        // SGI 6: SPENDSGIR1 byte 2, bit of the source (our) CPU interface.
        gic.set_pending(6);
        assert_eq!(fake::r32(&mem, 0xf24), 0x02 << 16);
        assert!(gic.is_pending(6));
    }

    #[test]
    fn init_routes_spis_to_self() {
        let (gic, mem) = gic();
        gic.init();
        assert_eq!(fake::r32(&mem, 0x000), 1);
        assert_eq!(fake::r32(&mem, 0x820), 0x0202_0202);
        assert_eq!(fake::r32(&mem, 0x91c), 0x0202_0202); // INTIDs 284..=287
        assert_eq!(fake::r32(&mem, 0x920), 0); // beyond the 288 lines
        assert_eq!(fake::r32(&mem, 0x420), 0xa0a0_a0a0);
        assert_eq!(fake::r32(&mem, 0x184), u32::MAX);
        gic.init_cpu();
        assert_eq!(fake::r32(&mem, 0x10000 + 0x4), 0xff);
        assert_eq!(fake::r32(&mem, 0x10000), 1);
    }

    #[test]
    fn sgis_go_to_the_target_cpu_interface() {
        let (gic, mem) = gic();
        assert_eq!(gic.sgi_target(), 0b10); // banked ITARGETSR says interface 1
        gic.send_sgi(0, 0b100);
        assert_eq!(fake::r32(&mem, 0xf00), 0x0004_0000); // TargetList filter, CPU 2, SGI 0
    }

    #[test]
    fn sgi_eoi_echoes_source() {
        let (gic, mut mem) = gic();
        fake::w32(&mut mem, 0x10000 + 0xc, (5 << 10) | 3); // IAR: SGI 3 from CPU 5
        assert_eq!(gic.ack(), 3);
        gic.eoi(3);
        assert_eq!(fake::r32(&mem, 0x10000 + 0x10), (5 << 10) | 3);
        gic.send_sgi_self(3);
        assert_eq!(fake::r32(&mem, 0xf00), 0x0200_0003);
    }
}
