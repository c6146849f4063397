//! Image header and the first instructions: EL2→EL1, stack, BSS, vectors.
//!
//! QEMU's `-kernel` loader recognises the Linux arm64 Image header
//! (Documentation/arch/arm64/booting.rst), loads us at RAM base + `text_offset`
//! and jumps here with the DTB address in `x0`; the UEFI loader (`capstan.efi`)
//! copies the same Image wherever the firmware gave it memory and enters the same
//! way. The image is linked as a static PIE, so the first thing the boot CPU does
//! is apply its own `R_AARCH64_RELATIVE` relocations for wherever it landed
//! (docs/boot.md "Where the image runs"). Everything before `kernel_main` is
//! assembly because there is no stack yet, and it uses only PC-relative
//! addressing (no literal pools, which would need relocating themselves).
//! Secondary CPUs arrive through PSCI `CPU_ON` at `secondary_entry` with a
//! pointer to their start context.

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
    .quad   0xa                     // flags: little endian, 4 KiB pages, placed anywhere
    .quad   0, 0, 0                 // res2..res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5 (PE header offset: none)

.section .text.boot, "ax"
primary_entry:
    mov     x19, x0                 // keep the DTB pointer across setup
    // Only the boot CPU enters here (the boot protocol starts secondaries through
    // PSCI CPU_ON at secondary_entry), whatever its MPIDR: UEFI firmware may boot on
    // a CPU whose affinity is not 0.
    bl      drop_to_el1
    bl      relocate
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
0:  cmp     x1, x2
    b.hs    1f
    stp     xzr, xzr, [x1], #16
    b       0b
1:  bl      invalidate_image
    adrp    x1, __boot_stack_top
    add     x1, x1, :lo12:__boot_stack_top
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

// Applies the image's R_AARCH64_RELATIVE relocations for the address it runs at:
// *(offset + delta) = addend + delta, with delta = where _start is minus where it was
// linked. The linker leaves the relocated words zero (no --apply-dynamic-relocs), so this
// runs even at the link address. Any other relocation type is a build error caught here:
// the boot CPU parks rather than run with a wrong pointer. MMU off: every access is an
// aligned 8-byte load or store. Clobbers x1-x7.
relocate:
    adrp    x1, _start
    add     x1, x1, :lo12:_start
    movz    x2, #:abs_g3:__link_base
    movk    x2, #:abs_g2_nc:__link_base
    movk    x2, #:abs_g1_nc:__link_base
    movk    x2, #:abs_g0_nc:__link_base
    sub     x3, x1, x2              // delta
    adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
2:  cmp     x1, x2
    b.hs    4f
    ldp     x4, x5, [x1], #16       // r_offset, r_info
    ldr     x6, [x1], #8            // r_addend
    cmp     x5, #0x403              // R_AARCH64_RELATIVE, no symbol
    b.ne    3f
    add     x6, x6, x3
    str     x6, [x4, x3]
    b       2b
3:  wfe                             // unknown relocation: a build bug
    b       3b
4:  ret

// Discards any cache line of the image that a loader running with caches on may have
// left (or the CPU speculatively refetched) before BSS and the relocated words were
// written here with the MMU off: those writes went to memory, and a stale line would
// hide them once caches are on. DC IVAC by the smallest line size (CTR_EL0.DminLine).
invalidate_image:
    mrs     x3, ctr_el0
    ubfx    x3, x3, #16, #4
    mov     x2, #4
    lsl     x2, x2, x3              // line size in bytes
    adrp    x1, __image_start
    add     x1, x1, :lo12:__image_start
    adrp    x4, __image_end
    add     x4, x4, :lo12:__image_end
5:  cmp     x1, x4
    b.hs    6f
    dc      ivac, x1
    add     x1, x1, x2
    b       5b
6:  dsb     sy
    ret

// Vectors, FP/SIMD access for EL0 later, IRQs stay masked until the GIC is up.
common_el1_setup:
    adrp    x1, exception_vectors
    add     x1, x1, :lo12:exception_vectors
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
