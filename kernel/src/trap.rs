//! What each exception means: kernel calls, test breakpoints, IRQs, and faults.
//!
//! Called from `arch::vectors` with the saved frame. Anything unexpected gets a
//! decoded report (exception class, ESR, FAR, ELR, registers, which stack guard
//! was hit) and stops the machine cleanly — with a failing status in a test run.

use caps::lock::{IrqsMasked, with_irqs_masked};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::vectors::{TrapFrame, VectorKind};
use crate::arch::{probe, semihosting, stack, usercopy};
use crate::sync::ArchIrqs;
use crate::{console, halt, irq, ktest, sched};

/// The BRK immediate the kernel's tests use; the handler counts it and steps over it.
pub const TEST_BRK: u64 = 0x100;

static BRK_HITS: AtomicU64 = AtomicU64::new(0);

/// How many test breakpoints were taken.
pub fn brk_hits() -> u64 {
    BRK_HITS.load(Ordering::Relaxed)
}

/// Exception class names (ARM DDI 0487, ESR_ELx.EC).
pub fn ec_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "unknown reason",
        0x01 => "WFI/WFE trapped",
        0x07 => "SVE/SIMD/FP access trapped",
        0x0e => "illegal execution state",
        0x15 => "SVC (AArch64)",
        0x18 => "MSR/MRS/system instruction trapped",
        0x20 => "instruction abort from a lower EL",
        0x21 => "instruction abort (same EL)",
        0x22 => "PC alignment fault",
        0x24 => "data abort from a lower EL",
        0x25 => "data abort (same EL)",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x30 | 0x31 => "breakpoint",
        0x32 | 0x33 => "software step",
        0x34 | 0x35 => "watchpoint",
        0x3c => "BRK instruction",
        _ => "other",
    }
}

/// Data/instruction fault status code names (ESR ISS DFSC/IFSC).
fn fault_status(esr: u64) -> &'static str {
    match esr & 0x3f {
        0x04..=0x07 => "translation fault",
        0x09..=0x0b => "access flag fault",
        0x0d..=0x0f => "permission fault",
        0x10 => "synchronous external abort",
        0x21 => "alignment fault",
        _ => "other fault",
    }
}

/// Entry from the vector table. Exception entry masked IRQs; the token says so to the
/// functions that need it (the IRQ path, the scheduler).
pub fn dispatch(frame: &mut TrapFrame, kind: VectorKind) -> *mut TrapFrame {
    with_irqs_masked::<ArchIrqs, _>(|masked| match kind.exception_type() {
        0 => sync(frame, kind, masked),
        1 | 2 => irq::handle(frame, masked),
        _ => fatal(frame, kind),
    })
}

fn sync(frame: &mut TrapFrame, kind: VectorKind, masked: &IrqsMasked) -> *mut TrapFrame {
    let ec = (frame.esr >> 26) & 0x3f;
    let from_el1 = kind.source() <= 1;
    if !from_el1 {
        // From a user process: a system call, or a fault that ends it (never the kernel).
        match ec {
            0x15 => crate::process::syscall::entry(frame),
            _ => crate::process::fault(frame, ec_name(ec), fault_detail(frame, ec)),
        }
        return frame;
    }
    match ec {
        0x15 => return sched::kernel_call(frame, masked),
        // A semihosting call without QEMU's -semihosting: step over it, once.
        0x00 if from_el1 && semihosting::is_call_at(frame.elr) => {
            semihosting::mark_unavailable();
            frame.elr += 4;
        }
        0x3c if frame.esr & 0xffff == TEST_BRK => {
            BRK_HITS.fetch_add(1, Ordering::Relaxed);
            frame.elr += 4;
        }
        0x25 => match probe::fixup(frame.elr, frame.esr, frame.far) {
            Some(resume) => {
                frame.x[0] = 1;
                frame.elr = resume;
            }
            // A user pointer that faulted inside a user copy: `EFAULT` for the syscall.
            None => match usercopy::fixup(frame.elr) {
                Some(resume) => frame.elr = resume,
                None => fatal(frame, kind),
            },
        },
        _ => fatal(frame, kind),
    }
    frame
}

/// What a user fault hit, in words: `"permission fault on write of 0x…"` for aborts.
fn fault_detail(frame: &TrapFrame, ec: u64) -> Option<(&'static str, &'static str)> {
    matches!(ec, 0x20 | 0x21 | 0x24 | 0x25).then(|| {
        let access = if ec == 0x20 || ec == 0x21 {
            "execute"
        } else if frame.esr & (1 << 6) != 0 {
            "write"
        } else {
            "read"
        };
        (fault_status(frame.esr), access)
    })
}

/// Just before an exception return: a user thread whose process was killed ends instead
/// of returning to user space — its frame is redirected to the exit path, which runs on
/// its own kernel stack at EL1.
pub fn before_return(frame: &mut TrapFrame) {
    let to_el0 = frame.spsr & 0xf == 0;
    if to_el0 && sched::current_user_killed() {
        frame.elr = killed_entry as *const () as u64;
        frame.spsr = 0x3c5; // EL1h, all interrupts masked
    }
}

extern "C" fn killed_entry() -> ! {
    crate::process::table::exit_current(crate::process::table::current_kill_status())
}

/// Set while a fatal report is being printed: a fault inside the report (say, a
/// console that is not mapped) must stop the machine, not recurse.
static IN_FATAL: AtomicBool = AtomicBool::new(false);

/// Prints the decoded report (on the console, or before it exists on the early UART
/// or semihosting) and stops.
fn fatal(frame: &TrapFrame, kind: VectorKind) -> ! {
    if IN_FATAL.swap(true, Ordering::AcqRel) {
        halt::halt_quietly();
    }
    let ec = (frame.esr >> 26) & 0x3f;
    let p = console::emergency_fmt;
    p(format_args!(
        "\n*** unexpected exception: {} ({})\n",
        ec_name(ec),
        kind.name()
    ));
    p(format_args!(
        "    ESR {:#018x}  EC {:#04x}  ISS {:#x}\n",
        frame.esr,
        ec,
        frame.esr & 0x1ff_ffff
    ));
    if matches!(ec, 0x20 | 0x21 | 0x24 | 0x25) {
        let wnr = if frame.esr & (1 << 6) != 0 {
            "write"
        } else {
            "read"
        };
        p(format_args!(
            "    {} on {} of {:#x}\n",
            fault_status(frame.esr),
            wnr,
            frame.far
        ));
    }
    p(format_args!(
        "    FAR {:#018x}  ELR {:#018x}  SPSR {:#018x}\n",
        frame.far, frame.elr, frame.spsr
    ));
    if let Some((class, slot)) = stack::guard_hit(frame.far as usize) {
        p(format_args!(
            "    FAR is in the guard page of {} stack {slot}: stack overflow\n",
            match class {
                stack::Class::Kernel => "kernel",
                stack::Class::User => "user",
            }
        ));
    }
    let boot_guard = crate::arch::sections::image().boot_stack_guard as u64;
    if (boot_guard..boot_guard + 4096).contains(&frame.far) {
        p(format_args!(
            "    FAR is in the boot stack's guard page: stack overflow\n"
        ));
    }
    for (i, pair) in frame.x.chunks(2).enumerate() {
        match pair {
            [a, b] => p(format_args!(
                "    x{:<2} {:#018x}  x{:<2} {:#018x}\n",
                2 * i,
                a,
                2 * i + 1,
                b
            )),
            [a] => p(format_args!(
                "    x{:<2} {:#018x}  sp_el0 {:#018x}\n",
                2 * i,
                a,
                frame.sp_el0
            )),
            _ => {}
        }
    }
    ktest::abort_run("unexpected exception");
    halt::halt()
}
