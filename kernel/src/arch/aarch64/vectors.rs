//! The exception vector table and the trap frame it builds.
//!
//! All 16 vectors (ARM DDI 0487 D1.10.2) save every general register plus
//! ELR/SPSR/ESR/FAR into a `TrapFrame` on the current stack and call
//! `trap::dispatch`, which returns the frame to resume. Returning a different
//! frame is how the scheduler switches threads: every context switch happens on
//! this one exception-return path.

use core::arch::global_asm;

/// Registers saved on exception entry. Layout is shared with the assembly below.
#[repr(C)]
#[derive(Debug, Default, Clone)]
pub struct TrapFrame {
    /// x0..x30.
    pub x: [u64; 31],
    /// SP_EL0 of the interrupted context.
    pub sp_el0: u64,
    /// Exception link register: where `eret` resumes.
    pub elr: u64,
    /// Saved program status: the interrupted PSTATE.
    pub spsr: u64,
    /// Exception syndrome (meaningful for synchronous exceptions).
    pub esr: u64,
    /// Fault address (meaningful for aborts).
    pub far: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 288);
const _: () = assert!(core::mem::offset_of!(TrapFrame, sp_el0) == 248);
const _: () = assert!(core::mem::offset_of!(TrapFrame, elr) == 256);
const _: () = assert!(core::mem::offset_of!(TrapFrame, esr) == 272);

/// Which of the 16 vectors was taken, as `kind = 4 * source + type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorKind(pub u64);

impl VectorKind {
    /// 0 = sync, 1 = IRQ, 2 = FIQ, 3 = SError.
    pub fn exception_type(self) -> u64 {
        self.0 & 3
    }
    /// 0 = current EL with SP_EL0, 1 = current EL with SP_ELx, 2 = lower EL AArch64,
    /// 3 = lower EL AArch32.
    pub fn source(self) -> u64 {
        self.0 >> 2
    }
    /// Human-readable name for reports.
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 16] = [
            "sync/EL1t",
            "irq/EL1t",
            "fiq/EL1t",
            "serror/EL1t",
            "sync/EL1h",
            "irq/EL1h",
            "fiq/EL1h",
            "serror/EL1h",
            "sync/EL0-64",
            "irq/EL0-64",
            "fiq/EL0-64",
            "serror/EL0-64",
            "sync/EL0-32",
            "irq/EL0-32",
            "fiq/EL0-32",
            "serror/EL0-32",
        ];
        NAMES[(self.0 & 15) as usize]
    }
}

global_asm!(
    r#"
.macro VECTOR kind
.balign 0x80
    sub     sp, sp, #288
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       trap_common
.endm

.section .text.vectors, "ax"
.balign 2048
.global exception_vectors
exception_vectors:
    VECTOR 0
    VECTOR 1
    VECTOR 2
    VECTOR 3
    VECTOR 4
    VECTOR 5
    VECTOR 6
    VECTOR 7
    VECTOR 8
    VECTOR 9
    VECTOR 10
    VECTOR 11
    VECTOR 12
    VECTOR 13
    VECTOR 14
    VECTOR 15

trap_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, sp_el0
    stp     x30, x2, [sp, #240]
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x2, x3, [sp, #256]
    mrs     x2, esr_el1
    mrs     x3, far_el1
    stp     x2, x3, [sp, #272]
    mov     x1, x0
    mov     x0, sp
    bl      handle_trap
.global trap_return
trap_return:
    mov     sp, x0                  // the frame to resume (maybe another thread's)
    ldp     x2, x3, [sp, #256]
    msr     elr_el1, x2
    msr     spsr_el1, x3
    ldp     x30, x2, [sp, #240]
    msr     sp_el0, x2
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #288
    eret
"#
);

/// Called by `trap_common` with the frame it pushed; returns the frame to resume.
#[unsafe(no_mangle)]
extern "C" fn handle_trap(frame: *mut TrapFrame, kind: u64) -> *mut TrapFrame {
    // SAFETY: `trap_common` passes the frame it just built on this CPU's current stack;
    // nothing else references it while the handler runs (IRQs are masked on entry).
    let frame_ref = unsafe { &mut *frame };
    let resume = crate::trap::dispatch(frame_ref, VectorKind(kind));
    // SAFETY: `resume` is the saved frame of the thread the scheduler chose to run here
    // (this one or another, not running on any other CPU), on its kernel stack.
    crate::trap::before_return(unsafe { &mut *resume });
    resume
}
