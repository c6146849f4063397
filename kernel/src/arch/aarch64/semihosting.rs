//! ARM semihosting: how a test boot tells QEMU its exit status, and the last
//! output channel when no UART is known.
//!
//! QEMU started with `-semihosting` exits with the given status (ARM IHI 0071,
//! SYS_EXIT with an ADP_Stopped_ApplicationExit block on AArch64). Without
//! `-semihosting` the HLT is an undefined instruction: the trap handler recognises it
//! (`is_call_at`), marks semihosting unavailable and steps over it, so `exit` returns
//! once and callers fall back to PSCI SYSTEM_OFF instead of faulting again.
//! [`write`] (SYS_WRITE0) is what a boot without a device tree, or one that fails
//! before its console UART is mapped, says its last words through (docs/boot.md
//! "Early failures"); without semihosting it traps once and is silent after.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

use super::sections;

const SYS_EXIT: u64 = 0x18;
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;
/// `HLT #0xF000` (ARM DDI 0487, C6.2.111: 0xd4400000 | imm16 << 5).
const HLT_SEMIHOSTING: u32 = 0xd440_0000 | (0xf000 << 5);

static UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// Exits QEMU with `status`. Returns only if semihosting is unavailable.
pub fn exit(status: u32) {
    if !available() {
        return;
    }
    let block = [ADP_STOPPED_APPLICATION_EXIT, u64::from(status)];
    // SAFETY: HLT #0xF000 is the AArch64 semihosting call; it reads the two-word
    // parameter block we pass in x1 and never returns when QEMU implements it. Without
    // semihosting it traps and the handler steps over it (see the module note).
    unsafe {
        asm!("hlt #0xf000", in("x0") SYS_EXIT, in("x1") block.as_ptr(), options(nostack));
    }
}

const SYS_WRITE0: u64 = 0x04;

/// Writes `text` to the semihosting console (QEMU: its stderr). Returns false if
/// semihosting is unavailable.
pub fn write(text: &str) -> bool {
    for chunk in text.as_bytes().chunks(127) {
        if !available() {
            return false;
        }
        let mut buf = [0u8; 128];
        buf[..chunk.len()].copy_from_slice(chunk);
        // SAFETY: HLT #0xF000 with SYS_WRITE0 makes the host read the NUL-terminated
        // string at x1 (our stack buffer, NUL after at most 127 bytes); without
        // semihosting it traps and the handler steps over it (see the module note).
        unsafe {
            asm!("hlt #0xf000", in("x0") SYS_WRITE0, in("x1") buf.as_ptr(), options(nostack));
        }
    }
    available()
}

/// Whether semihosting calls work (false once one trapped).
pub fn available() -> bool {
    !UNAVAILABLE.load(Ordering::Relaxed)
}

/// Whether the kernel instruction at `pc` is a semihosting call: the trap handler asks
/// when an undefined-instruction exception comes from EL1.
pub fn is_call_at(pc: u64) -> bool {
    let img = sections::image();
    let pc = pc as usize;
    if !(img.start..img.text_end).contains(&pc) || !pc.is_multiple_of(4) {
        return false;
    }
    // SAFETY: `pc` is 4-aligned inside the kernel's text, which is mapped readable
    // for the kernel's whole life.
    let insn = unsafe { core::ptr::read_volatile(pc as *const u32) };
    insn == HLT_SEMIHOSTING
}

/// Records that a semihosting call trapped (QEMU runs without `-semihosting`).
pub fn mark_unavailable() {
    UNAVAILABLE.store(true, Ordering::Relaxed);
}
