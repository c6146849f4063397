//! PSCI calls (ARM DEN 0022): power off, reset, and starting secondary CPUs.
//!
//! The conduit (HVC or SMC) comes from the DTB's `/psci` node `method`.

use core::arch::asm;
use core::sync::atomic::{AtomicU8, Ordering};

const SYSTEM_OFF: u64 = 0x8400_0008;
const SYSTEM_RESET: u64 = 0x8400_0009;
const CPU_ON_64: u64 = 0xC400_0003;
const PSCI_VERSION: u64 = 0x8400_0000;

/// How PSCI calls reach the firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conduit {
    /// `hvc #0` (QEMU without EL2/EL3 firmware emulates PSCI here).
    Hvc,
    /// `smc #0`.
    Smc,
}

static CONDUIT: AtomicU8 = AtomicU8::new(0);

/// Records the conduit read from the DTB.
pub fn set_conduit(conduit: Conduit) {
    CONDUIT.store(conduit as u8 + 1, Ordering::Relaxed);
}

/// The configured conduit, if the DTB had a `/psci` node.
pub fn conduit() -> Option<Conduit> {
    match CONDUIT.load(Ordering::Relaxed) {
        1 => Some(Conduit::Hvc),
        2 => Some(Conduit::Smc),
        _ => None,
    }
}

/// A PSCI error code (negative values of DEN 0022 §5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PsciError(pub i64);

impl core::fmt::Display for PsciError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self.0 {
            -1 => "not supported (or no PSCI conduit)",
            -2 => "invalid parameters",
            -3 => "denied",
            -4 => "CPU already on",
            -5 => "CPU start pending",
            -6 => "internal failure",
            -7 => "not present",
            -8 => "disabled",
            -9 => "invalid address",
            _ => "unknown error",
        };
        write!(f, "PSCI error {} ({name})", self.0)
    }
}

impl core::fmt::Display for Conduit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Conduit::Hvc => "HVC",
            Conduit::Smc => "SMC",
        })
    }
}

fn call(function: u64, a1: u64, a2: u64, a3: u64) -> Result<u64, PsciError> {
    let Some(conduit) = conduit() else {
        return Err(PsciError(-1));
    };
    let mut r0 = function;
    // SAFETY: an SMCCC call with arguments in x0..x3; firmware clobbers at most x0..x17
    // (SMCCC v1.0), which we declare. The call itself cannot touch our memory except
    // through the addresses it is given (CPU_ON's entry point and context).
    unsafe {
        match conduit {
            Conduit::Hvc => asm!("hvc #0", inout("x0") r0, inout("x1") a1 => _,
                inout("x2") a2 => _, inout("x3") a3 => _, out("x4") _, out("x5") _,
                out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
                out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                out("x16") _, out("x17") _, options(nostack)),
            Conduit::Smc => asm!("smc #0", inout("x0") r0, inout("x1") a1 => _,
                inout("x2") a2 => _, inout("x3") a3 => _, out("x4") _, out("x5") _,
                out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
                out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                out("x16") _, out("x17") _, options(nostack)),
        }
    }
    let signed = r0 as i64;
    if signed < 0 {
        Err(PsciError(signed))
    } else {
        Ok(r0)
    }
}

/// PSCI version as (major, minor).
pub fn version() -> Result<(u16, u16), PsciError> {
    let v = call(PSCI_VERSION, 0, 0, 0)?;
    Ok(((v >> 16) as u16, v as u16))
}

/// Powers the machine off. Returns only on failure.
pub fn system_off() -> PsciError {
    call(SYSTEM_OFF, 0, 0, 0).err().unwrap_or(PsciError(0))
}

/// Resets the machine. Returns only on failure.
pub fn system_reset() -> PsciError {
    call(SYSTEM_RESET, 0, 0, 0).err().unwrap_or(PsciError(0))
}

/// Starts CPU `mpidr` at physical `entry` with `context` in x0.
pub fn cpu_on(mpidr: u64, entry: u64, context: u64) -> Result<(), PsciError> {
    call(CPU_ON_64, mpidr, entry, context).map(|_| ())
}
