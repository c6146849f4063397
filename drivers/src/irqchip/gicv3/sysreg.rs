//! GICv3 CPU interface system registers (ICC_*_EL1) and `MPIDR_EL1`.
//!
//! With `ICC_SRE_EL1.SRE` = 1 the CPU interface is not memory-mapped: a PE
//! acknowledges, completes and sends SGIs through these registers (IHI 0069H
//! §12.2). They are written by hand rather than taken from `aarch64-cpu`, which
//! does not cover the ICC group. Accesses touch no memory, so the wrappers are
//! safe functions; the `unsafe` is only the `asm!`. On other architectures (host
//! unit tests) they are inert: reads give 0, except SRE (1, enabled) and IAR
//! (1023, spurious).

#[cfg(target_arch = "aarch64")]
use core::arch::asm;

use bitfield_struct::bitfield;
use bitflags::bitflags;

/// Defines a read and/or write accessor for one system register.
macro_rules! sysreg {
    ($(#[$m:meta])* read $name:ident, $enc:literal, $host:expr) => {
        $(#[$m])*
        #[inline]
        pub(crate) fn $name() -> u64 {
            #[cfg(target_arch = "aarch64")]
            {
                let v: u64;
                // SAFETY: reading this system register at EL1 has no memory effect.
                unsafe {
                    asm!(
                        concat!("mrs {}, ", $enc),
                        out(reg) v,
                        options(nomem, nostack, preserves_flags),
                    )
                };
                v
            }
            #[cfg(not(target_arch = "aarch64"))]
            {
                $host
            }
        }
    };
    ($(#[$m:meta])* write $name:ident, $enc:literal) => {
        $(#[$m])*
        #[inline]
        pub(crate) fn $name(v: u64) {
            #[cfg(target_arch = "aarch64")]
            // SAFETY: writing this GIC CPU-interface register changes interrupt
            // state only; it does not touch memory the compiler knows about.
            unsafe {
                asm!(concat!("msr ", $enc, ", {}"), in(reg) v, options(nostack, preserves_flags))
            };
            #[cfg(not(target_arch = "aarch64"))]
            let _ = v;
        }
    };
}

sysreg!(
    /// `MPIDR_EL1`: this PE's affinity (Arm ARM D23.2.100).
    read mpidr_el1, "mpidr_el1", 0
);
sysreg!(
    /// `ICC_SRE_EL1`, IHI 0069H §12.2.21.
    read icc_sre_el1, "S3_0_C12_C12_5", 1
);
sysreg!(
    /// `ICC_SRE_EL1`, IHI 0069H §12.2.21.
    write set_icc_sre_el1, "S3_0_C12_C12_5"
);
sysreg!(
    /// `ICC_PMR_EL1`, IHI 0069H §12.2.19.
    write set_icc_pmr_el1, "S3_0_C4_C6_0"
);
sysreg!(
    /// `ICC_BPR1_EL1`, IHI 0069H §12.2.5.
    write set_icc_bpr1_el1, "S3_0_C12_C12_3"
);
sysreg!(
    /// `ICC_CTLR_EL1`, IHI 0069H §12.2.6.
    read icc_ctlr_el1, "S3_0_C12_C12_4", 0
);
sysreg!(
    /// `ICC_CTLR_EL1`, IHI 0069H §12.2.6.
    write set_icc_ctlr_el1, "S3_0_C12_C12_4"
);
sysreg!(
    /// `ICC_IGRPEN1_EL1`, IHI 0069H §12.2.16.
    write set_icc_igrpen1_el1, "S3_0_C12_C12_7"
);
sysreg!(
    /// `ICC_IAR1_EL1`, IHI 0069H §12.2.14: reading acknowledges.
    read icc_iar1_el1, "S3_0_C12_C12_0", 1023
);
sysreg!(
    /// `ICC_EOIR1_EL1`, IHI 0069H §12.2.10.
    write set_icc_eoir1_el1, "S3_0_C12_C12_1"
);
sysreg!(
    /// `ICC_SGI1R_EL1`, IHI 0069H §12.2.23.
    write set_icc_sgi1r_el1, "S3_0_C12_C11_5"
);
sysreg!(
    /// `ICC_IAR0_EL1`, IHI 0069H §12.2.13: acknowledges a Group 0 interrupt (one that
    /// arrived as FIQ on a GIC with two security states).
    read icc_iar0_el1, "S3_0_C12_C8_0", 1023
);
sysreg!(
    /// `ICC_EOIR0_EL1`, IHI 0069H §12.2.9.
    write set_icc_eoir0_el1, "S3_0_C12_C8_1"
);
sysreg!(
    /// `ICC_BPR0_EL1`, IHI 0069H §12.2.4.
    write set_icc_bpr0_el1, "S3_0_C12_C8_3"
);
sysreg!(
    /// `ICC_IGRPEN0_EL1`, IHI 0069H §12.2.15.
    write set_icc_igrpen0_el1, "S3_0_C12_C12_6"
);

/// Instruction synchronization barrier: makes a CPU-interface register write
/// take effect before what follows (IHI 0069H §12.1.6).
#[inline]
pub(crate) fn isb() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a barrier has no memory-safety effect.
    unsafe {
        asm!("isb", options(nostack, preserves_flags))
    };
}

bitflags! {
    /// `ICC_SRE_EL1`, IHI 0069H §12.2.21.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct IccSre: u64 {
        /// SRE: use the system-register interface.
        const SRE = 1 << 0;
        /// DFB: disable FIQ bypass.
        const DFB = 1 << 1;
        /// DIB: disable IRQ bypass.
        const DIB = 1 << 2;
    }
}

bitflags! {
    /// `ICC_CTLR_EL1`, IHI 0069H §12.2.6 (the writable control bits).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct IccCtlr: u64 {
        /// CBPR: one binary point for both groups.
        const CBPR = 1 << 0;
        /// EOImode: 1 splits priority drop (EOIR) from deactivation (DIR). Kept 0.
        const EOI_MODE = 1 << 1;
        /// PMHE: priority-mask hint.
        const PMHE = 1 << 6;
    }
}

/// `ICC_SGI1R_EL1`, IHI 0069H §12.2.23.
#[bitfield(u64)]
#[derive(PartialEq, Eq)]
pub(crate) struct Sgi1r {
    /// TargetList: bit n = the PE with Aff0 = RS × 16 + n.
    pub target_list: u16,
    /// Aff1 of the targets.
    pub aff1: u8,
    /// SGI INTID.
    #[bits(4)]
    pub intid: u8,
    #[bits(4)]
    __: u8,
    /// Aff2 of the targets.
    pub aff2: u8,
    /// IRM: 1 = all PEs but self.
    pub irm: bool,
    #[bits(3)]
    __: u8,
    /// RS: range selector, Aff0 / 16.
    #[bits(4)]
    pub rs: u8,
    /// Aff3 of the targets.
    pub aff3: u8,
    #[bits(8)]
    __: u8,
}

impl Sgi1r {
    /// SGI `intid` to exactly the PE with this `MPIDR_EL1`.
    pub(crate) const fn to_mpidr(intid: u8, mpidr: u64) -> Self {
        let aff0 = (mpidr & 0xff) as u8;
        Self::new()
            .with_intid(intid & 0xf)
            .with_target_list(1 << (aff0 % 16))
            .with_rs(aff0 / 16)
            .with_aff1((mpidr >> 8) as u8)
            .with_aff2((mpidr >> 16) as u8)
            .with_aff3((mpidr >> 32) as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgi1r_self() {
        // CPU 0 of QEMU virt (MPIDR 0x8000_0000): TargetList bit 0.
        assert_eq!(Sgi1r::to_mpidr(1, 0x8000_0000).into_bits(), (1 << 24) | 1);
        // Aff0 = 0x13: RS = 1, TargetList bit 3. Aff1 = 2, Aff2 = 3, Aff3 = 4.
        let v = Sgi1r::to_mpidr(15, (4 << 32) | 0x03_0213).into_bits();
        assert_eq!(
            v,
            (4 << 48) | (1 << 44) | (3 << 32) | (15 << 24) | (2 << 16) | (1 << 3)
        );
        assert!(!Sgi1r::from_bits(v).irm());
    }

    #[test]
    fn icc_bits() {
        assert_eq!(IccCtlr::EOI_MODE.bits(), 2);
        assert_eq!(IccSre::SRE.bits(), 1);
    }

    #[test]
    #[cfg(not(target_arch = "aarch64"))]
    fn host_stubs_are_inert() {
        assert_eq!(icc_iar1_el1(), 1023);
        set_icc_eoir1_el1(5);
        isb();
    }
}
