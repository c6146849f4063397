//! Copying to and from user memory with unprivileged loads and stores.
//!
//! Every access to a user address goes through `LDTR`/`STTR` (ARM DDI 0487, C6.2:
//! "load/store register, unprivileged"), which the MMU checks with EL0's permissions:
//! a kernel address, an unmapped page, or a read-only page for a store fault exactly
//! as they would for the process itself. Such a fault inside these routines is not a
//! kernel bug: the sync handler sees the faulting PC inside [`fixup`]'s range and
//! resumes at the routine's failure exit, which returns `EFAULT` to the syscall. So a
//! bad pointer can never make the kernel read or write anything the process could not.

use core::arch::global_asm;

global_asm!(
    r#"
.section .text.usercopy, "ax"
.global usercopy_start
usercopy_start:

// x0 = kernel destination, x1 = user source, x2 = length -> x0 = 0, or 1 on a fault
.global copy_from_user_asm
copy_from_user_asm:
    cmp     x2, #8
    b.lo    2f
1:  ldtr    x3, [x1]
    str     x3, [x0], #8
    add     x1, x1, #8
    sub     x2, x2, #8
    cmp     x2, #8
    b.hs    1b
2:  cbz     x2, 4f
3:  ldtrb   w3, [x1]
    strb    w3, [x0], #1
    add     x1, x1, #1
    subs    x2, x2, #1
    b.ne    3b
4:  mov     x0, #0
    ret

// x0 = user destination, x1 = kernel source, x2 = length -> x0 = 0, or 1 on a fault
.global copy_to_user_asm
copy_to_user_asm:
    cmp     x2, #8
    b.lo    6f
5:  ldr     x3, [x1], #8
    sttr    x3, [x0]
    add     x0, x0, #8
    sub     x2, x2, #8
    cmp     x2, #8
    b.hs    5b
6:  cbz     x2, 8f
7:  ldrb    w3, [x1], #1
    sttrb   w3, [x0]
    add     x0, x0, #1
    subs    x2, x2, #1
    b.ne    7b
8:  mov     x0, #0
    ret

.global usercopy_end
usercopy_end:

.global usercopy_fault
usercopy_fault:
    mov     x0, #1
    ret
"#
);

unsafe extern "C" {
    fn copy_from_user_asm(dst: *mut u8, src: usize, len: usize) -> u64;
    fn copy_to_user_asm(dst: usize, src: *const u8, len: usize) -> u64;
    static usercopy_start: u8;
    static usercopy_end: u8;
    static usercopy_fault: u8;
}

/// A user access faulted (bad address or permission): `EFAULT` for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault;

/// Copies `dst.len()` bytes from user address `src` (of the running process).
pub fn copy_from_user(dst: &mut [u8], src: usize) -> Result<(), Fault> {
    // SAFETY: `dst` is a valid kernel buffer of that length; the source is only read with
    // LDTR, which faults (into `fixup`) instead of reading what EL0 may not.
    match unsafe { copy_from_user_asm(dst.as_mut_ptr(), src, dst.len()) } {
        0 => Ok(()),
        _ => Err(Fault),
    }
}

/// Copies `src` to user address `dst` (of the running process).
pub fn copy_to_user(dst: usize, src: &[u8]) -> Result<(), Fault> {
    // SAFETY: `src` is a valid kernel buffer; the destination is only written with STTR,
    // which faults (into `fixup`) instead of writing where EL0 may not.
    match unsafe { copy_to_user_asm(dst, src.as_ptr(), src.len()) } {
        0 => Ok(()),
        _ => Err(Fault),
    }
}

/// Called by the sync handler for a data abort taken at EL1: if the faulting PC is
/// inside a user-copy routine, the resume address (its failure exit).
pub fn fixup(elr: u64) -> Option<u64> {
    let start = &raw const usercopy_start as u64;
    let end = &raw const usercopy_end as u64;
    (start..end)
        .contains(&elr)
        .then_some(&raw const usercopy_fault as u64)
}
