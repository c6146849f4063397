//! Image header and the first instructions: EL2→EL1, stack, BSS, vectors.
//!
//! QEMU's `-kernel` loader recognises the Linux arm64 Image header
//! (Documentation/arch/arm64/booting.rst), loads us at RAM base + `text_offset`
//! and jumps here with the DTB address in `x0`. Everything before `kernel_main`
//! is assembly because there is no stack yet. Secondary CPUs arrive through
//! PSCI `CPU_ON` at `secondary_entry` with a pointer to their start context.

use core::arch::global_asm;

global_asm!(
    r#"
.section .text.head, "ax"
.global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0x80000                 // text_offset: linked at RAM base + 512 KiB
    .quad   __image_size            // image_size including BSS
    .quad   0x2                     // flags: little endian, 4 KiB pages, 2 MiB aligned base
    .quad   0, 0, 0                 // res2..res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5 (PE header offset: none)

.section .text.boot, "ax"
primary_entry:
    mov     x19, x0                 // keep the DTB pointer across setup
    mrs     x1, mpidr_el1
    and     x1, x1, #0xffffff
    cbnz    x1, park                // only the boot CPU runs from the image entry
    bl      drop_to_el1
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
0:  cmp     x1, x2
    b.hs    1f
    stp     xzr, xzr, [x1], #16
    b       0b
1:  ldr     x1, =__boot_stack_top
    mov     sp, x1
    bl      common_el1_setup
    mov     x0, x19
    bl      kernel_main
park:
    wfe
    b       park

// If entered at EL2, configure EL1 as AArch64 with timer access and eret to it.
drop_to_el1:
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #2
    b.ne    2f
    mov     x1, #(1 << 31)          // HCR_EL2.RW: EL1 is AArch64
    msr     hcr_el2, x1
    mov     x1, #3                  // CNTHCTL_EL2.EL1PCTEN | EL1PCEN
    msr     cnthctl_el2, x1
    msr     cntvoff_el2, xzr
    mov     x1, #0x3c5              // EL1h, DAIF masked
    msr     spsr_el2, x1
    msr     elr_el2, x30
    eret
2:  ret

// Vectors, FP/SIMD access for EL0 later, IRQs stay masked until the GIC is up.
common_el1_setup:
    ldr     x1, =exception_vectors
    msr     vbar_el1, x1
    mov     x1, #(3 << 20)          // CPACR_EL1.FPEN: no FP traps
    msr     cpacr_el1, x1
    isb
    ret

// x0 = &StartRecord: stack_top, ttbr0, tcr, mair, sctlr, cpu_index
.global secondary_entry
secondary_entry:
    mov     x19, x0
    bl      drop_to_el1
    ldr     x1, [x19, #0]
    mov     sp, x1
    bl      common_el1_setup
    ldr     x1, [x19, #24]
    msr     mair_el1, x1
    ldr     x1, [x19, #16]
    msr     tcr_el1, x1
    ldr     x1, [x19, #8]
    msr     ttbr0_el1, x1
    isb
    tlbi    vmalle1
    dsb     nsh
    ldr     x1, [x19, #32]
    msr     sctlr_el1, x1
    isb
    mov     x0, x19
    bl      secondary_main
    b       park

.section .bss.boot_stack, "aw", %nobits
.balign 4096
.global __boot_stack_guard
__boot_stack_guard:
    .space  4096
    .space  1048576
.global __boot_stack_top
__boot_stack_top:
"#
);

/// The symbol the boot assembly calls once the stack and BSS are ready.
#[unsafe(no_mangle)]
extern "C" fn kernel_main(dtb: usize) -> ! {
    crate::boot::start(dtb)
}
