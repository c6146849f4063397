//! Interrupt controllers: one trait, a GICv2 and a GICv3 driver behind it.
//!
//! The kernel's interrupt plumbing (registration table, exception path, tests)
//! is written once against [`InterruptController`]; which GIC sits underneath is
//! decided at boot from the device tree or MADT. The helpers in this file are the
//! register-bank index math the two distributors share (GICv2 IHI 0048B §4.3,
//! GICv3 IHI 0069H §12.9), kept pure so the host tests can pin them down.
//! Design notes: `docs/interrupts.md`.

mod gicd;
pub mod gicv2;
pub mod gicv3;
pub mod its;
pub mod v2m;

pub use gicv2::GicV2;
pub use gicv3::GicV3;

use crate::reg::Reg;

/// How a line signals (edge: `GICD_ICFGR` Int_config bit 1 = 1; level: 0). Shared with the
/// capability layer so a minted line and the GIC agree.
pub use caps::irq::Trigger;

/// Operations every GIC driver offers the kernel.
///
/// Per-CPU operations (`init_cpu`, `ack`, `eoi`, `send_sgi_self`, and every
/// SGI/PPI operation, INTID < 32) act on the calling CPU and must run with
/// preemption disabled. Configuration of shared state (`set_trigger` on SPIs,
/// which read-modify-writes `GICD_ICFGR`) must be serialised by the caller, as the
/// kernel's registration-table lock does.
pub trait InterruptController: Sync {
    /// Distributor/global init (boot CPU, once): disable all SPIs, default priority,
    /// route SPIs to CPU0 (v2: ITARGETSR; v3: IROUTER affinity of the boot CPU),
    /// enable groups.
    fn init(&self);
    /// Per-CPU init: CPU interface / redistributor wake, PMR = 0xff, BPR 0, enable
    /// group 1 (v3: ICC_SRE_EL1.SRE=1, ICC_IGRPEN1_EL1=1, ICC_CTLR_EL1.EOImode=0).
    fn init_cpu(&self);
    /// Unmask `intid` (`ISENABLER`, write-one-to-set).
    fn enable(&self, intid: u32);
    /// Mask `intid` (`ICENABLER`, write-one-to-clear) and wait for it to take effect.
    fn disable(&self, intid: u32);
    /// Set the priority byte of `intid` (lower is more urgent).
    fn set_priority(&self, intid: u32, prio: u8);
    /// Configure edge or level for `intid`; ignored for SGIs, which are always edge.
    fn set_trigger(&self, intid: u32, trigger: Trigger);
    /// Acknowledge: returns the INTID (1020..=1023 are special/spurious).
    fn ack(&self) -> u32;
    /// End of interrupt (priority drop and deactivate, EOImode 0) for an acked INTID.
    fn eoi(&self, intid: u32);
    /// Make an interrupt pending (SPI via ISPENDR; PPI/SGI via the redistributor on
    /// v3 or the GICD banked registers on v2) — used by tests.
    fn set_pending(&self, intid: u32);
    /// Clear a pending (not yet acknowledged) interrupt (`GICD_ICPENDR` /
    /// `GICR_ICPENDR0`, write-one). Only for handing an MSI vector to a *new* owner:
    /// never to "reset" an owner's own edge, which would lose it.
    fn clear_pending(&self, intid: u32);
    /// Whether `intid` is pending.
    fn is_pending(&self, intid: u32) -> bool;
    /// Whether `intid` is enabled (forwarded when pending).
    fn is_enabled(&self, intid: u32) -> bool;
    /// Send SGI `sgi` (0..=15) to the calling CPU only.
    fn send_sgi_self(&self, sgi: u32);
    /// The calling CPU's address for SGIs, to give to [`Self::send_sgi`] on another CPU
    /// (v2: its CPU-interface bit from the banked `GICD_ITARGETSR`; v3: its `MPIDR_EL1`).
    fn sgi_target(&self) -> u64;
    /// Send SGI `sgi` (0..=15) to the CPU whose [`Self::sgi_target`] is `target`.
    fn send_sgi(&self, sgi: u32, target: u64);
    /// Highest SPI INTID the distributor implements (from `GICD_TYPER.ITLinesNumber`).
    fn max_intid(&self) -> u32;
    /// GIC architecture version: 2, 3 or 4.
    fn version(&self) -> u8;
}

/// First LPI INTID.
pub const FIRST_LPI: u32 = 8192;

/// INTIDs below this are banked per CPU (SGIs 0..=15, PPIs 16..=31).
pub const FIRST_SPI: u32 = 32;
/// INTIDs 1020..=1023 are special: 1023 means spurious / nothing pending.
pub const SPECIAL_START: u32 = 1020;
/// Returned by `ack` when nothing is pending.
pub const SPURIOUS: u32 = 1023;
/// Priority written to every line at init: the middle of the range, below 0xff
/// so PMR = 0xff lets it through, and leaving room for more urgent lines.
pub const DEFAULT_PRIORITY: u8 = 0xa0;

/// Whether `intid` is an SGI (0..=15).
pub const fn is_sgi(intid: u32) -> bool {
    intid < 16
}

/// Whether `intid` is banked per CPU (SGI or PPI).
pub const fn is_private(intid: u32) -> bool {
    intid < FIRST_SPI
}

/// Register index and bit mask of `intid` in a one-bit-per-INTID bank
/// (`IGROUPR`, `ISENABLER`, `ICENABLER`, `ISPENDR`, `ICPENDR`, ...).
pub(crate) const fn bit_reg(intid: u32) -> (usize, u32) {
    ((intid / 32) as usize, 1 << (intid % 32))
}

/// The register of a one-bit-per-INTID `bank` holding `intid`'s bit, and that bit.
pub(crate) const fn bit_of<F, const N: usize>(bank: Reg<[F; N]>, intid: u32) -> (Reg<F>, u32) {
    let (n, bit) = bit_reg(intid);
    (bank.at(n), bit)
}

/// Register index and shift of the 2-bit `Int_config` field of `intid` in `ICFGR`.
pub(crate) const fn icfgr_reg(intid: u32) -> (usize, u32) {
    ((intid / 16) as usize, (intid % 16) * 2)
}

/// New `ICFGR` word: only bit 1 of the pair (edge = 1) changes; bit 0 is
/// reserved/IMPLEMENTATION DEFINED on both GIC versions and is preserved.
pub(crate) const fn icfgr_update(old: u32, intid: u32, trigger: Trigger) -> u32 {
    let (_, shift) = icfgr_reg(intid);
    let bit = 0b10 << shift;
    match trigger {
        Trigger::Edge => old | bit,
        Trigger::Level => old & !bit,
    }
}

/// Number of interrupt lines the distributor supports: 32 × (ITLinesNumber + 1),
/// `GICD_TYPER` bits [4:0] (IHI 0048B §4.3.2, IHI 0069H §12.9.38).
pub(crate) const fn typer_lines(typer: u32) -> u32 {
    32 * ((typer & 0x1f) + 1)
}

/// Highest usable INTID for a `GICD_TYPER` value, capped below the special range.
pub(crate) const fn typer_max_intid(typer: u32) -> u32 {
    let last = typer_lines(typer) - 1;
    if last >= SPECIAL_START {
        SPECIAL_START - 1
    } else {
        last
    }
}

/// A byte replicated into all four lanes of a word (`IPRIORITYR`, `ITARGETSR`).
pub(crate) const fn replicate_byte(b: u8) -> u32 {
    (b as u32) * 0x0101_0101
}

/// Every GIC is the capability layer's `IrqChip`: `IrqControl` masks, unmasks, configures
/// and EOIs lines through it.
macro_rules! impl_irq_chip {
    ($($gic:ty),*) => {$(
        // SAFETY: `disable` writes `GICD_ICENABLER` (write-one-to-clear) and waits for
        // `RWP`/the write to take effect, so the INTID is no longer forwarded when it
        // returns; `enable` (`ISENABLER`) leaves the pending state alone, so a latched edge
        // fires (IHI 0048B §4.3.5, IHI 0069H §12.9.9); the claim is a field of the one
        // driver value per distributor (its constructor is `unsafe` on exclusive mappings).
        unsafe impl caps::irq::IrqChip for $gic {
            fn control_claim(&self) -> &caps::irq::ControlClaim {
                &self.claim
            }
            fn mask(&self, intid: u32) {
                self.disable(intid);
            }
            fn unmask(&self, intid: u32) {
                self.enable(intid);
            }
            fn configure(&self, intid: u32, trigger: Trigger) {
                self.set_trigger(intid, trigger);
                self.set_priority(intid, DEFAULT_PRIORITY);
            }
            fn eoi(&self, intid: u32) {
                InterruptController::eoi(self, intid);
            }
        }
    )*};
}

impl_irq_chip!(GicV2, GicV3);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_reg_math() {
        assert_eq!(bit_reg(0), (0, 1));
        assert_eq!(bit_reg(31), (0, 1 << 31));
        assert_eq!(bit_reg(32), (1, 1));
        assert_eq!(bit_reg(40), (1, 1 << 8));
        assert_eq!(bit_reg(1019), (31, 1 << 27));
    }

    #[test]
    fn icfgr_math() {
        assert_eq!(icfgr_reg(0), (0, 0));
        assert_eq!(icfgr_reg(15), (0, 30));
        assert_eq!(icfgr_reg(16), (1, 0));
        assert_eq!(icfgr_reg(33), (2, 2));
        assert_eq!(icfgr_reg(47), (2, 30));
        // Edge sets bit 1 of the pair only; level clears it; bit 0 survives.
        assert_eq!(icfgr_update(0, 33, Trigger::Edge), 0b1000);
        assert_eq!(icfgr_update(0xffff_ffff, 33, Trigger::Level), !0b1000);
        assert_eq!(icfgr_update(0b0100, 33, Trigger::Edge), 0b1100);
        assert_eq!(icfgr_update(0, 47, Trigger::Edge), 1 << 31);
    }

    #[test]
    fn typer_decode() {
        assert_eq!(typer_lines(0), 32);
        assert_eq!(typer_max_intid(0), 31);
        // QEMU virt: ITLinesNumber = 8 → 288 lines.
        assert_eq!(typer_max_intid(0x08), 287);
        assert_eq!(typer_max_intid(0x1f), 1019);
        // Only bits [4:0] count.
        assert_eq!(typer_max_intid(0xffff_ffe0 | 0x08), 287);
    }

    #[test]
    fn classify() {
        assert!(is_sgi(15) && !is_sgi(16));
        assert!(is_private(31) && !is_private(32));
        assert_eq!(replicate_byte(0xa0), 0xa0a0_a0a0);
        assert_eq!(replicate_byte(0x01), 0x0101_0101);
    }
}
