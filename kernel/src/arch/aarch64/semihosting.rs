//! ARM semihosting `SYS_EXIT`: how a test boot tells QEMU its exit status.
//!
//! QEMU started with `-semihosting` exits with the given status (ARM IHI 0071,
//! SYS_EXIT with an ADP_Stopped_ApplicationExit block on AArch64). Without
//! `-semihosting` the HLT would trap, so callers fall back to PSCI SYSTEM_OFF.

use core::arch::asm;

const SYS_EXIT: u64 = 0x18;
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;

/// Exits QEMU with `status`. Returns only if semihosting is unavailable.
pub fn exit(status: u32) {
    let block = [ADP_STOPPED_APPLICATION_EXIT, u64::from(status)];
    // SAFETY: HLT #0xF000 is the AArch64 semihosting call; it reads the two-word
    // parameter block we pass in x1 and never returns when QEMU implements it.
    unsafe {
        asm!("hlt #0xf000", in("x0") SYS_EXIT, in("x1") block.as_ptr(), options(nostack));
    }
}
