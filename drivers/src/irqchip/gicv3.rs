//! GICv3/v4 driver: distributor, redistributors, system-register CPU interface.
//!
//! QEMU `virt` with `gic-version=3`, VMware and Parallels guests all present a
//! GICv3, but they differ where the spec leaves room: whether `GICD_CTLR.DS` is
//! 0 or 1, the order of redistributor frames, and what they tolerate (VMware
//! kills a guest that uses split EOI). The driver therefore runs affinity routing
//! (`ARE_NS`), puts every line in Non-secure Group 1, uses EOImode 0 only, and
//! finds each CPU's redistributor by affinity. IHI 0069H section numbers are
//! cited throughout; see `docs/interrupts.md`.

mod redist;
mod regs;

pub use self::redist::{pendbaser, propbaser};
mod sysreg;

use core::hint::spin_loop;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use self::redist::*;
use self::regs::*;
use self::sysreg::*;
use super::{
    DEFAULT_PRIORITY, FIRST_SPI, InterruptController, Trigger, bit_of, icfgr_reg, icfgr_update,
    is_private, is_sgi, replicate_byte, typer_lines, typer_max_intid,
};
use crate::mmio::Mmio;
use crate::reg::{Access, Readable, Reg};

/// Polls of a "write pending" or "asleep" bit before giving up.
const WAIT_LIMIT: u32 = 100_000;

/// Why a GICv3 initialisation step did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// `GICD_CTLR.RWP` or `GICR_CTLR.RWP` stayed set (IHI 0069H §12.9.4, §12.11.2).
    RegisterWritePending,
    /// `GICR_WAKER.ChildrenAsleep` stayed set after clearing ProcessorSleep (§12.11.43).
    RedistributorAsleep,
    /// No redistributor frame matches this CPU's `MPIDR_EL1` affinity (§12.11.37).
    NoRedistributor,
    /// `ICC_SRE_EL1.SRE` reads 0 after being set: EL2 denies the system-register
    /// interface (`ICC_SRE_EL2.Enable` = 0), so ICC_* accesses would trap (§12.2.21).
    SystemRegistersDisabled,
    /// LPIs requested but `GICD_TYPER.LPIS` or `GICR_TYPER.PLPIS` is 0 (§12.9.38).
    LpisUnsupported,
    /// `GICR_CTLR.EnableLPIs` is already 1 (firmware or a previous kernel left the
    /// tables programmed; they may be read-only now, §12.11.2).
    LpisAlreadyEnabled,
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            InitError::RegisterWritePending => "a register write never completed (RWP stayed set)",
            InitError::RedistributorAsleep => "the redistributor did not wake up",
            InitError::NoRedistributor => "no redistributor matches this CPU",
            InitError::SystemRegistersDisabled => "the GIC system registers are disabled (by EL2)",
            InitError::LpisUnsupported => "the GIC does not support LPIs",
            InitError::LpisAlreadyEnabled => {
                "LPIs are already enabled (firmware or a previous kernel left them on)"
            }
        })
    }
}

/// A GICv3 or GICv4: distributor plus the redistributor region.
pub struct GicV3 {
    gicd: Mmio<Gicd>,
    gicr: Redistributors,
    failures: AtomicU32,
    /// The one `IrqControl` of this distributor (`caps::irq::ControlToken`).
    pub(super) claim: caps::irq::ControlClaim,
    /// `GICD_CTLR.DS` read 0 at init: Group 0 interrupts (which we cannot move to
    /// Group 1) arrive as FIQ and are acknowledged and completed through the Group 0
    /// registers.
    group0: AtomicBool,
}

/// Which end-of-interrupt register completes an interrupt (IHI 0069H §12.2.9/10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EoiGroup {
    /// `ICC_EOIR0_EL1`.
    Group0,
    /// `ICC_EOIR1_EL1`.
    Group1,
}

/// The EOI register for `intid` when Group 0 is in use (`group0`), given its
/// `IGROUPR` bit as the Non-secure view reads it (RAZ for Group 0). LPIs are always
/// Non-secure Group 1.
pub const fn eoi_group(group0: bool, intid: u32, igroup_bit: bool) -> EoiGroup {
    if group0 && intid < super::FIRST_LPI && !igroup_bit {
        EoiGroup::Group0
    } else {
        EoiGroup::Group1
    }
}

impl GicV3 {
    /// Wraps a GICv3 with its distributor at `gicd_base` and the redistributor
    /// region at `gicr_base..gicr_base + gicr_region_len` (virtual addresses).
    ///
    /// # Safety
    /// `gicd_base` maps the 64 KiB distributor and `gicr_base` maps
    /// `gicr_region_len` bytes of redistributor frames, all as device memory,
    /// valid for the life of the value and exclusively owned by it.
    #[must_use]
    pub const unsafe fn new(gicd_base: usize, gicr_base: usize, gicr_region_len: usize) -> Self {
        Self {
            // SAFETY: the caller gives us the exclusive 64 KiB distributor mapping.
            gicd: unsafe { Mmio::new(gicd_base) },
            // SAFETY: the caller gives us the exclusive redistributor-region mapping.
            gicr: unsafe { Redistributors::new(gicr_base, gicr_region_len) },
            failures: AtomicU32::new(0),
            claim: caps::irq::ControlClaim::new(),
            group0: AtomicBool::new(false),
        }
    }

    /// Whether the GIC has a single security state (`GICD_CTLR.DS` = 1). When 0,
    /// Group 0 belongs to the Secure world and arrives as FIQ; we use Group 1 only.
    pub fn security_disabled(&self) -> bool {
        GicdCtlr::from_bits_retain(self.gicd.read(GICD_CTLR)).contains(GicdCtlr::DS)
    }

    /// How many `init`/`init_cpu`/per-CPU operations failed since boot (the trait
    /// methods cannot return errors; use [`GicV3::try_init`] to see why).
    pub fn failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    fn note<T>(&self, r: Result<T, InitError>) -> Option<T> {
        r.inspect_err(|_| {
            self.failures.fetch_add(1, Ordering::Relaxed);
        })
        .ok()
    }

    fn valid(&self, intid: u32) -> bool {
        let ok = intid <= self.max_intid();
        debug_assert!(ok, "GICv3: INTID {intid} out of range");
        ok
    }

    fn wait_gicd_rwp(&self) -> Result<(), InitError> {
        for _ in 0..WAIT_LIMIT {
            if !GicdCtlr::from_bits_retain(self.gicd.read(GICD_CTLR)).contains(GicdCtlr::RWP) {
                return Ok(());
            }
            spin_loop();
        }
        Err(InitError::RegisterWritePending)
    }

    /// This CPU's redistributor, found by affinity on every call (configuration
    /// paths only; the hot path — ack/EOI — uses system registers).
    fn this_redist(&self) -> Result<Redist<'_>, InitError> {
        self.gicr
            .find(mpidr_affinity(mpidr_el1()))
            .ok_or(InitError::NoRedistributor)
    }

    /// Distributor initialisation (boot CPU, once), IHI 0069H §4.1 / §12.9.4.
    pub fn try_init(&self) -> Result<(), InitError> {
        self.gicd.write(GICD_CTLR, 0);
        self.wait_gicd_rwp()?;
        let lines = typer_lines(self.gicd.read(GICD_TYPER)).min(super::SPECIAL_START) as usize;
        for n in (FIRST_SPI as usize / 32)..lines.div_ceil(32) {
            self.gicd.clear(GICD_ICENABLER.at(n), u32::MAX);
            self.gicd.clear(GICD_ICPENDR.at(n), u32::MAX);
            self.gicd.clear(GICD_ICACTIVER.at(n), u32::MAX);
            // Non-secure Group 1 (IGROUPR = 1, IGRPMODR = 0). Under DS = 0 these are
            // Secure-owned bits and our writes are ignored: firmware decides.
            self.gicd.write(GICD_IGROUPR.at(n), u32::MAX);
            self.gicd.write(GICD_IGRPMODR.at(n), 0);
        }
        for n in (FIRST_SPI as usize / 4)..lines / 4 {
            let prio = replicate_byte(DEFAULT_PRIORITY);
            self.gicd.write(GICD_IPRIORITYR.word(n), prio);
        }
        for n in (FIRST_SPI as usize / 16)..lines.div_ceil(16) {
            self.gicd.write(GICD_ICFGR.at(n), 0);
        }
        self.wait_gicd_rwp()?;
        let ctlr = GicdCtlr::ARE_NS | GicdCtlr::ENABLE_G1A | GicdCtlr::ENABLE_G1;
        self.gicd.write(GICD_CTLR, ctlr.bits());
        self.wait_gicd_rwp()?;
        // IROUTER is only meaningful once ARE is set (§12.9.23).
        let route = irouter_for_mpidr(mpidr_el1());
        for intid in FIRST_SPI as usize..lines {
            self.gicd.write(GICD_IROUTER.at(intid), route);
        }
        Ok(())
    }

    /// Per-CPU initialisation: wake the redistributor, configure SGIs/PPIs, turn
    /// on the system-register CPU interface (IHI 0069H §12.11.43, §12.2).
    pub fn try_init_cpu(&self) -> Result<(), InitError> {
        let rd = self.this_redist()?;
        rd.regs.modify(GICR_WAKER, |waker| {
            (GicrWaker::from_bits_retain(waker) - GicrWaker::PROCESSOR_SLEEP).bits()
        });
        wait_clear(
            || rd.regs.read(GICR_WAKER),
            GicrWaker::CHILDREN_ASLEEP.bits(),
        )
        .map_err(|()| InitError::RedistributorAsleep)?;

        rd.regs.write(GICR_IGROUPR0, u32::MAX);
        rd.regs.write(GICR_IGRPMODR0, 0);
        rd.regs.clear(GICR_ICACTIVER0, u32::MAX);
        rd.regs.clear(GICR_ICENABLER0, 0xffff_0000); // PPIs off until registered
        rd.regs.set(GICR_ISENABLER0, 0x0000_ffff); // SGIs on
        for n in 0..FIRST_SPI as usize / 4 {
            let prio = replicate_byte(DEFAULT_PRIORITY);
            rd.regs.write(GICR_IPRIORITYR.word(n), prio);
        }
        wait_gicr_rwp(&rd)?;

        set_icc_sre_el1(icc_sre_el1() | IccSre::SRE.bits());
        isb();
        if !IccSre::from_bits_retain(icc_sre_el1()).contains(IccSre::SRE) {
            return Err(InitError::SystemRegistersDisabled);
        }
        set_icc_pmr_el1(0xff);
        set_icc_bpr1_el1(0);
        // EOImode 0 only: a split drop/deactivate (EOImode 1) kills a VMware guest.
        set_icc_ctlr_el1(icc_ctlr_el1() & !IccCtlr::EOI_MODE.bits());
        set_icc_igrpen1_el1(1);
        if !self.security_disabled() {
            // Two security states (VMware): lines the firmware left in Group 0 cannot be
            // moved (IGROUPR is Secure-owned) and arrive as FIQ; take them too.
            set_icc_bpr0_el1(0);
            set_icc_igrpen0_el1(1);
            self.group0.store(true, Ordering::Relaxed);
        }
        isb();
        Ok(())
    }
}

impl GicV3 {
    /// Whether Group 0 interrupts are taken too (`GICD_CTLR.DS` read 0 at `init_cpu`).
    pub fn group0_in_use(&self) -> bool {
        self.group0.load(Ordering::Relaxed)
    }

    /// INTID bits the distributor supports when it has LPIs (`GICD_TYPER.LPIS`,
    /// `IDbits` + 1, §12.9.38), else `None`.
    pub fn lpi_id_bits(&self) -> Option<u32> {
        let typer = self.gicd.read(GICD_TYPER);
        (typer & GICD_TYPER_LPIS != 0).then_some(((typer >> 19) & 0x1f) + 1)
    }

    /// Points this CPU's redistributor at the LPI tables and sets
    /// `GICR_CTLR.EnableLPIs` (§12.11.2, §12.11.30, §12.11.32); returns its
    /// `GICR_TYPER.Processor_Number`, the ITS collection target when
    /// `GITS_TYPER.PTA` = 0.
    pub fn try_enable_lpis(&self, propbaser: u64, pendbaser: u64) -> Result<u16, InitError> {
        if self.lpi_id_bits().is_none() {
            return Err(InitError::LpisUnsupported);
        }
        let rd = self.this_redist()?;
        let typer = GicrTyper::from_bits(rd.regs.read(GICR_TYPER));
        if !typer.plpis() {
            return Err(InitError::LpisUnsupported);
        }
        let ctlr = GicrCtlr::from_bits_retain(rd.regs.read(GICR_CTLR));
        if ctlr.contains(GicrCtlr::ENABLE_LPIS) {
            return Err(InitError::LpisAlreadyEnabled);
        }
        rd.regs.write(GICR_PROPBASER, propbaser);
        rd.regs.write(GICR_PENDBASER, pendbaser);
        rd.regs
            .write(GICR_CTLR, (ctlr | GicrCtlr::ENABLE_LPIS).bits());
        wait_gicr_rwp(&rd)?;
        Ok(typer.processor_number())
    }
}

fn wait_clear(read: impl Fn() -> u32, mask: u32) -> Result<(), ()> {
    for _ in 0..WAIT_LIMIT {
        if read() & mask == 0 {
            return Ok(());
        }
        spin_loop();
    }
    Err(())
}

fn wait_gicr_rwp(rd: &Redist<'_>) -> Result<(), InitError> {
    wait_clear(|| rd.regs.read(GICR_CTLR), GicrCtlr::RWP.bits())
        .map_err(|()| InitError::RegisterWritePending)
}

impl InterruptController for GicV3 {
    fn init(&self) {
        self.note(self.try_init());
    }

    fn init_cpu(&self) {
        self.note(self.try_init_cpu());
    }

    fn enable(&self, intid: u32) {
        if !self.valid(intid) {
            return;
        }
        let (reg, bit) = bit_of(GICD_ISENABLER, intid);
        if is_private(intid) {
            if let Some(rd) = self.note(self.this_redist()) {
                rd.regs.set(GICR_ISENABLER0, bit);
            }
        } else {
            self.gicd.set(reg, bit);
        }
    }

    fn disable(&self, intid: u32) {
        if !self.valid(intid) {
            return;
        }
        let (reg, bit) = bit_of(GICD_ICENABLER, intid);
        if is_private(intid) {
            if let Some(rd) = self.note(self.this_redist()) {
                rd.regs.clear(GICR_ICENABLER0, bit);
                self.note(wait_gicr_rwp(&rd));
            }
        } else {
            self.gicd.clear(reg, bit);
            self.note(self.wait_gicd_rwp());
        }
    }

    fn set_priority(&self, intid: u32, prio: u8) {
        if !self.valid(intid) {
            return;
        }
        if is_private(intid) {
            if let Some(rd) = self.note(self.this_redist()) {
                rd.regs.write(GICR_IPRIORITYR.at(intid as usize), prio);
            }
        } else {
            self.gicd.write(GICD_IPRIORITYR.at(intid as usize), prio);
        }
    }

    fn set_trigger(&self, intid: u32, trigger: Trigger) {
        if is_sgi(intid) || !self.valid(intid) {
            return;
        }
        let (n, _) = icfgr_reg(intid);
        if is_private(intid) {
            if let Some(rd) = self.note(self.this_redist()) {
                rd.regs
                    .modify(GICR_ICFGR.at(n), |old| icfgr_update(old, intid, trigger));
            }
        } else {
            self.gicd
                .modify(GICD_ICFGR.at(n), |old| icfgr_update(old, intid, trigger));
        }
    }

    fn ack(&self) -> u32 {
        // INTID is [23:0]; with 16-bit INTIDs the upper bits read as zero.
        let intid = (icc_iar1_el1() & 0x00ff_ffff) as u32;
        if intid == super::SPURIOUS && self.group0_in_use() {
            // Entered through the FIQ vector: the interrupt is Group 0.
            return (icc_iar0_el1() & 0x00ff_ffff) as u32;
        }
        intid
    }

    fn eoi(&self, intid: u32) {
        // EOImode 0: this both drops the running priority and deactivates.
        let group0 = self.group0_in_use();
        // Only read IGROUPR when it matters (DS = 0, not an LPI).
        let igroup_bit = !group0
            || intid >= super::FIRST_LPI
            || self.read_bit(GICD_IGROUPR, GICR_IGROUPR0, intid);
        match eoi_group(group0, intid, igroup_bit) {
            EoiGroup::Group0 => set_icc_eoir0_el1(u64::from(intid)),
            EoiGroup::Group1 => set_icc_eoir1_el1(u64::from(intid)),
        }
        isb();
    }

    fn clear_pending(&self, intid: u32) {
        if !self.valid(intid) {
            return;
        }
        let (reg, bit) = bit_of(GICD_ICPENDR, intid);
        if is_private(intid) {
            if let Some(rd) = self.note(self.this_redist()) {
                rd.regs.clear(GICR_ICPENDR0, bit);
            }
        } else {
            self.gicd.clear(reg, bit);
        }
    }

    fn set_pending(&self, intid: u32) {
        if !self.valid(intid) {
            return;
        }
        let (reg, bit) = bit_of(GICD_ISPENDR, intid);
        if is_private(intid) {
            if let Some(rd) = self.note(self.this_redist()) {
                rd.regs.set(GICR_ISPENDR0, bit);
            }
        } else {
            self.gicd.set(reg, bit);
        }
    }

    fn is_pending(&self, intid: u32) -> bool {
        self.read_bit(GICD_ISPENDR, GICR_ISPENDR0, intid)
    }

    fn is_enabled(&self, intid: u32) -> bool {
        self.read_bit(GICD_ISENABLER, GICR_ISENABLER0, intid)
    }

    fn send_sgi_self(&self, sgi: u32) {
        debug_assert!(is_sgi(sgi));
        set_icc_sgi1r_el1(Sgi1r::to_mpidr(sgi as u8, mpidr_el1()).into_bits());
        isb();
    }

    fn sgi_target(&self) -> u64 {
        mpidr_el1()
    }

    fn send_sgi(&self, sgi: u32, target: u64) {
        debug_assert!(is_sgi(sgi));
        set_icc_sgi1r_el1(Sgi1r::to_mpidr(sgi as u8, target).into_bits());
        isb();
    }

    fn max_intid(&self) -> u32 {
        typer_max_intid(self.gicd.read(GICD_TYPER))
    }

    fn version(&self) -> u8 {
        match pidr2_arch_rev(self.gicd.read(GICD_PIDR2)) {
            4 => 4,
            _ => 3,
        }
    }
}

impl GicV3 {
    /// `intid`'s bit: in the redistributor's `gicr_reg` for an SGI or PPI, else in the
    /// distributor's `gicd_bank`.
    fn read_bit<F: Readable<Value = u32>>(
        &self,
        gicd_bank: Reg<[F; 32]>,
        gicr_reg: Reg<F>,
        intid: u32,
    ) -> bool {
        if !self.valid(intid) {
            return false;
        }
        let (reg, bit) = bit_of(gicd_bank, intid);
        if is_private(intid) {
            self.note(self.this_redist())
                .is_some_and(|rd| rd.regs.read(gicr_reg) & bit != 0)
        } else {
            self.gicd.read(reg) & bit != 0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmio::fake;

    /// Distributor in frame 0, two redistributors (affinity 1, then 0) from frame 1.
    fn gic() -> (GicV3, std::boxed::Box<[fake::Frame]>) {
        let mut mem = fake::frames(5);
        fake::w32(&mut mem, GICD_TYPER.offset(), 0x08);
        fake::w32(&mut mem, GICD_PIDR2.offset(), 0x3b);
        for (i, aff) in [(0u64, 1u64), (1, 0)] {
            let f = 0x1_0000 + i as usize * 0x2_0000;
            fake::w32(&mut mem, f + GICR_PIDR2.offset(), 0x3b);
            fake::w64(&mut mem, f + GICR_TYPER.offset(), (aff << 32) | (i << 4));
            fake::w32(&mut mem, f + GICR_WAKER.offset(), 0b110);
        }
        let base = fake::base(&mut mem);
        // SAFETY: `mem` outlives the driver in every test and is used only through it.
        let gic = unsafe { GicV3::new(base, base + 0x1_0000, 0x4_0000) };
        (gic, mem)
    }

    // The host `mpidr_el1` stub reads 0, so "this CPU" is the second frame.
    const RD: usize = 0x1_0000 + 0x2_0000;

    #[test]
    fn spi_ops_hit_distributor() {
        let (gic, mem) = gic();
        gic.enable(40);
        assert_eq!(fake::r32(&mem, 0x104), 1 << 8);
        gic.disable(40);
        assert_eq!(fake::r32(&mem, 0x184), 1 << 8);
        gic.set_trigger(47, Trigger::Edge);
        assert_eq!(fake::r32(&mem, 0xc08), 1 << 31);
        gic.set_priority(33, 0x40);
        assert_eq!(fake::r32(&mem, 0x420), 0x4000);
        gic.set_pending(64);
        assert!(gic.is_pending(64));
        assert_eq!(gic.version(), 3);
        assert_eq!(gic.max_intid(), 287);
        assert_eq!(gic.failures(), 0);
    }

    #[test]
    fn private_ops_hit_own_redistributor() {
        let (gic, mem) = gic();
        gic.enable(27);
        assert_eq!(fake::r32(&mem, RD + GICR_ISENABLER0.offset()), 1 << 27);
        assert_eq!(
            fake::r32(&mem, 0x1_0000 + GICR_ISENABLER0.offset()),
            0,
            "other CPU's frame"
        );
        gic.set_pending(3);
        assert_eq!(fake::r32(&mem, RD + GICR_ISPENDR0.offset()), 1 << 3);
        gic.set_trigger(30, Trigger::Edge);
        assert_eq!(fake::r32(&mem, RD + GICR_ICFGR.offset() + 4), 1 << 29);
        gic.set_priority(30, 0x10);
        assert_eq!(
            fake::r32(&mem, RD + GICR_IPRIORITYR.offset() + 28),
            0x0010_0000
        );
        assert!(gic.is_enabled(27));
        assert_eq!(gic.failures(), 0);
    }

    #[test]
    fn init_routes_and_enables() {
        let (gic, mem) = gic();
        gic.init();
        assert_eq!(fake::r32(&mem, 0x0), 0x13);
        assert_eq!(fake::r32(&mem, 0x84), u32::MAX);
        assert_eq!(fake::r32(&mem, 0x6100), 0); // IROUTER32 → affinity 0
        gic.init_cpu();
        // The fake never clears ChildrenAsleep: a bounded wait, then a recorded failure.
        assert_eq!(fake::r32(&mem, RD + GICR_WAKER.offset()), 0b100);
        assert_eq!(gic.try_init_cpu(), Err(InitError::RedistributorAsleep));
        assert_eq!(gic.failures(), 1);
    }

    #[test]
    fn init_cpu_completes_when_awake() {
        let (gic, mut mem) = gic();
        fake::w32(&mut mem, RD + GICR_WAKER.offset(), 0);
        assert_eq!(gic.try_init_cpu(), Ok(()));
        assert_eq!(fake::r32(&mem, RD + GICR_IGROUPR0.offset()), u32::MAX);
        assert_eq!(fake::r32(&mem, RD + GICR_ICENABLER0.offset()), 0xffff_0000);
        assert!(!gic.security_disabled());
    }

    /// VMware's GIC has two security states (`GICD_CTLR.DS` = 0): Group 0 is taken too
    /// (its interrupts arrive as FIQ), completed through EOIR0. QEMU's has one (DS = 1):
    /// Group 1 only.
    #[test]
    fn two_security_states_take_group0_as_fiq() {
        let (gic, mut mem) = gic();
        fake::w32(&mut mem, RD + GICR_WAKER.offset(), 0);
        assert_eq!(gic.try_init_cpu(), Ok(()));
        assert!(gic.group0_in_use());
        let (gic1, mut mem1) = gic_ds1();
        fake::w32(&mut mem1, RD + GICR_WAKER.offset(), 0);
        assert_eq!(gic1.try_init_cpu(), Ok(()));
        assert!(!gic1.group0_in_use());
        // The EOI register follows the line's group as the Non-secure view reads it.
        assert_eq!(eoi_group(true, 40, false), EoiGroup::Group0);
        assert_eq!(eoi_group(true, 40, true), EoiGroup::Group1);
        assert_eq!(eoi_group(false, 40, false), EoiGroup::Group1);
        assert_eq!(
            eoi_group(true, 8192, false),
            EoiGroup::Group1,
            "LPIs are Group 1"
        );
        // The host IAR stubs read spurious: nothing pending in either group.
        assert_eq!(gic.ack(), super::super::SPURIOUS);
        drop(mem);
    }

    /// The same GIC with `GICD_CTLR.DS` = 1 (QEMU).
    fn gic_ds1() -> (GicV3, std::boxed::Box<[fake::Frame]>) {
        let (_, mut mem) = gic();
        fake::w32(&mut mem, GICD_CTLR.offset(), GicdCtlr::DS.bits());
        let base = fake::base(&mut mem);
        // SAFETY: `mem` outlives the driver in the test and is used only through it.
        let gic = unsafe { GicV3::new(base, base + 0x1_0000, 0x4_0000) };
        (gic, mem)
    }
}
