//! FP/SIMD state of user threads: q0-q31, FPCR, FPSR, saved and restored on switches.
//!
//! The kernel is built soft-float and never touches these registers, so they always
//! hold the state of the last user thread that ran on this CPU. The scheduler saves it
//! when a user thread is switched out and restores the next user thread's before it
//! runs (eager: 528 bytes each way, only on switches between user threads; see
//! docs/process.md for the measured cost). Kernel threads skip both.

use core::arch::asm;

/// One thread's FP/SIMD registers.
#[repr(C, align(16))]
#[derive(Debug, Clone, Copy, Default)]
pub struct FpState {
    q: [u128; 32],
    fpcr: u64,
    fpsr: u64,
}

const _: () = assert!(core::mem::size_of::<FpState>() == 528);

/// Stores this CPU's FP/SIMD registers into `s`.
pub fn save(s: &mut FpState) {
    let p = core::ptr::from_mut(s);
    // SAFETY: `p` points at a 16-byte aligned FpState of 528 bytes; the stores stay inside
    // it (q registers at 0..512, FPCR at 512, FPSR at 520). FP is enabled at EL1 (CPACR).
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "stp q0, q1, [{p}, #0]",
            "stp q2, q3, [{p}, #32]",
            "stp q4, q5, [{p}, #64]",
            "stp q6, q7, [{p}, #96]",
            "stp q8, q9, [{p}, #128]",
            "stp q10, q11, [{p}, #160]",
            "stp q12, q13, [{p}, #192]",
            "stp q14, q15, [{p}, #224]",
            "stp q16, q17, [{p}, #256]",
            "stp q18, q19, [{p}, #288]",
            "stp q20, q21, [{p}, #320]",
            "stp q22, q23, [{p}, #352]",
            "stp q24, q25, [{p}, #384]",
            "stp q26, q27, [{p}, #416]",
            "stp q28, q29, [{p}, #448]",
            "stp q30, q31, [{p}, #480]",
            "mrs {t}, fpcr",
            "str {t}, [{p}, #512]",
            "mrs {t}, fpsr",
            "str {t}, [{p}, #520]",
            p = in(reg) p,
            t = out(reg) _,
            options(nostack),
        );
    }
}

/// Loads this CPU's FP/SIMD registers from `s`.
pub fn restore(s: &FpState) {
    let p = core::ptr::from_ref(s);
    // SAFETY: as in `save`, reading instead; the loaded values only matter to the user
    // thread about to run (the kernel never uses FP/SIMD).
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "ldp q0, q1, [{p}, #0]",
            "ldp q2, q3, [{p}, #32]",
            "ldp q4, q5, [{p}, #64]",
            "ldp q6, q7, [{p}, #96]",
            "ldp q8, q9, [{p}, #128]",
            "ldp q10, q11, [{p}, #160]",
            "ldp q12, q13, [{p}, #192]",
            "ldp q14, q15, [{p}, #224]",
            "ldp q16, q17, [{p}, #256]",
            "ldp q18, q19, [{p}, #288]",
            "ldp q20, q21, [{p}, #320]",
            "ldp q22, q23, [{p}, #352]",
            "ldp q24, q25, [{p}, #384]",
            "ldp q26, q27, [{p}, #416]",
            "ldp q28, q29, [{p}, #448]",
            "ldp q30, q31, [{p}, #480]",
            "ldr {t}, [{p}, #512]",
            "msr fpcr, {t}",
            "ldr {t}, [{p}, #520]",
            "msr fpsr, {t}",
            p = in(reg) p,
            t = out(reg) _,
            options(nostack),
        );
    }
}
