//! Leaving UEFI for the kernel: caches cleaned, MMU off, a jump with x0 = the tree.
//!
//! The kernel expects what QEMU's `-kernel` gives it (Linux
//! `Documentation/arch/arm64/booting.rst`): MMU and data cache off, the image and
//! the device tree cleaned to the point of coherency, interrupts masked, x0 =
//! the tree, x1..x3 = 0. The firmware left the MMU on with an identity map, so
//! this code keeps running at the same address when it turns translation off.
//! Also here: the last-resort message on the console UART for a failure after
//! `ExitBootServices`, when the firmware console is gone.

use core::arch::asm;

use efi::platform::{Serial, SerialKind};

/// Cleans `[start, start + len)` to the point of coherency.
fn clean(start: usize, len: usize) {
    let ctr: u64;
    // SAFETY: reads CTR_EL0, an ID register.
    unsafe { asm!("mrs {0}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    let line = 4usize << ((ctr >> 16) & 0xf);
    let mut at = start & !(line - 1);
    while at < start + len {
        // SAFETY: DC CVAC on memory the loader owns only writes cached data back.
        unsafe { asm!("dc cvac, {0}", in(reg) at, options(nostack)) };
        at += line;
    }
}

/// Enters the kernel image at `entry` with the device tree at `dtb`, after cleaning
/// `ranges` (image and tree) to the point of coherency.
///
/// # Safety
/// Boot services have exited; `entry` is a Capstan image placed `text_offset` above a
/// 2 MiB boundary in memory the memory map gives the kernel; `dtb` is a complete tree;
/// the code and stack of this function are identity-mapped (UEFI guarantees it).
pub unsafe fn enter(entry: usize, dtb: usize, ranges: &[(usize, usize)]) -> ! {
    // SAFETY: masking every exception at the current EL has no memory effect.
    unsafe { asm!("msr daifset, #0xf", options(nomem, nostack)) };
    for &(start, len) in ranges {
        clean(start, len);
    }
    // SAFETY: the data barrier completes the cleaning; then translation and the data
    // cache go off at the current EL (EL2 if the firmware ran there), which keeps the
    // identity-mapped instruction stream valid; the instruction cache is invalidated
    // because it may hold lines of the memory the image was copied into; the jump
    // follows the kernel's boot protocol.
    unsafe {
        asm!(
            "dsb sy",
            "mrs x9, CurrentEL",
            "cmp x9, #8",
            "b.eq 2f",
            "mrs x9, sctlr_el1",
            "bic x9, x9, #1",
            "bic x9, x9, #4",
            "msr sctlr_el1, x9",
            "b 3f",
            "2:",
            "mrs x9, sctlr_el2",
            "bic x9, x9, #1",
            "bic x9, x9, #4",
            "msr sctlr_el2, x9",
            "3:",
            "isb",
            "ic iallu",
            "dsb nsh",
            "isb",
            "mov x1, xzr",
            "mov x2, xzr",
            "mov x3, xzr",
            "br {entry}",
            entry = in(reg) entry,
            in("x0") dtb,
            options(noreturn, nostack),
        )
    }
}

/// Writes `msg` on the console UART by polling (after `ExitBootServices`, when the
/// firmware console is gone), then stops.
pub fn fail_on_uart(serial: &Serial, msg: &str) -> ! {
    let base = serial.base as usize;
    let (data, status, ready_bit, stride) = match serial.kind {
        SerialKind::Pl011 => (0, 0x18, 0, 0),
        SerialKind::Ns16550 { shift, .. } => (0, 5 << shift, 0x20, shift),
    };
    let _ = stride;
    for b in msg.bytes().chain(*b"\r\n") {
        for _ in 0..100_000 {
            // SAFETY: the UART's registers are identity-mapped device memory the
            // firmware described; reading the status register has no side effect.
            let s = unsafe { core::ptr::read_volatile((base + status) as *const u8) };
            let ready = match serial.kind {
                SerialKind::Pl011 => s & 0x20 == 0, // UARTFR.TXFF clear
                SerialKind::Ns16550 { .. } => s & ready_bit != 0, // LSR.THRE
            };
            if ready {
                break;
            }
        }
        // SAFETY: as above; the data register takes one byte.
        unsafe { core::ptr::write_volatile((base + data) as *mut u8, b) };
    }
    loop {
        // SAFETY: WFE only waits.
        unsafe { asm!("wfe", options(nomem, nostack)) };
    }
}
