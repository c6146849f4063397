//! ARM semihosting: how a test boot tells QEMU its exit status, and the last
//! output channel when no UART is known.
//!
//! QEMU started with `-semihosting` exits with the given status (ARM IHI 0071,
//! SYS_EXIT with an ADP_Stopped_ApplicationExit block on AArch64). Without
//! `-semihosting` the HLT would trap, so callers fall back to PSCI SYSTEM_OFF.
//! [`write`] (SYS_WRITE0) is what a boot without a device tree, or one that
//! fails before its console UART is mapped, says its last words through; it
//! goes through the fault-tolerant probe, so without semihosting it is silent
//! rather than a fault loop.

const SYS_EXIT: u64 = 0x18;
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;

/// Exits QEMU with `status`. Returns only if semihosting is unavailable (then at
/// once: the probe remembers that the first call trapped).
pub fn exit(status: u32) {
    let block = [ADP_STOPPED_APPLICATION_EXIT, u64::from(status)];
    let _ = super::probe::semihosting_call(SYS_EXIT, block.as_ptr().cast());
}

const SYS_WRITE0: u64 = 0x04;

/// Writes `text` to the semihosting console (QEMU: its stderr). Returns false if
/// semihosting is absent.
pub fn write(text: &str) -> bool {
    for chunk in text.as_bytes().chunks(127) {
        let mut buf = [0u8; 128];
        buf[..chunk.len()].copy_from_slice(chunk);
        if super::probe::semihosting_call(SYS_WRITE0, buf.as_ptr()).is_none() {
            return false;
        }
    }
    true
}
