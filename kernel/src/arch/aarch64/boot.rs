//! Image header and the first instructions: EL2→EL1, BSS, boot page tables, MMU on.
//!
//! QEMU's `-kernel` loader recognises the Linux arm64 Image header
//! (Documentation/arch/arm64/booting.rst), loads us at a 2 MiB-aligned RAM address +
//! `text_offset` and jumps here with the MMU off and the DTB address in `x0`;
//! `capstan.efi` places the same Image the same way, wherever UEFI gave it memory
//! (VMware's RAM starts at 0x8000_0000). The
//! kernel is linked in the upper half (`IMAGE_VA`, see `mmu`), so until the MMU is on
//! only PC-relative addressing works (`adr`/`adrp` yield physical addresses). The
//! assembly zeroes BSS, builds two tiny tables — the image at its link address in
//! TTBR1 and an identity alias of it in TTBR0, both in 2 MiB blocks — turns the MMU
//! on, and jumps to the link address; from there on the kernel runs in the upper half
//! and `mmu::enable` replaces the boot tables. Secondary CPUs arrive through PSCI
//! `CPU_ON` at `secondary_entry` (a physical address) with the physical address of
//! their start record.

use core::arch::global_asm;

use super::mmu::{MAIR, SCTLR_BOOT, TCR_BASE};

/// Block descriptor bits for the boot tables: valid block, AttrIndx 1 (normal
/// write-back), inner shareable, access flag, EL1 read-write, never executable at EL0.
const BOOT_BLOCK: u64 = 0x705 | (1 << 54);

global_asm!(
    r#"
.section .text.head, "ax"
.global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0x80000                 // text_offset: 512 KiB above a 2 MiB boundary
    .quad   __image_size            // image_size including BSS
    .quad   0x2                     // flags: little endian, 4 KiB pages, 2 MiB aligned base
    .quad   0, 0, 0                 // res2..res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5 (PE header offset: none)

.section .text.boot, "ax"
primary_entry:
    mov     x19, x0                 // the DTB's physical address
    // Only the boot CPU enters here (the boot protocol starts secondaries through
    // PSCI CPU_ON at secondary_entry), whatever its MPIDR: UEFI firmware may boot on
    // a CPU whose affinity is not 0.
    bl      drop_to_el1
    adrp    x1, __bss_start         // physical: the MMU is off
    adrp    x2, __bss_end
0:  cmp     x1, x2
    b.hs    1f
    stp     xzr, xzr, [x1], #16
    b       0b
1:  adrp    x20, __image_start      // the image's physical address
    bl      build_boot_tables
    bl      invalidate_image
    adrp    x1, boot_l0_id
    adrp    x2, boot_l0_hi
    bl      mmu_on
    ldr     x1, =__boot_stack_top   // link-time (upper-half) addresses from here on
    mov     sp, x1
    ldr     x1, =primary_high
    br      x1
primary_high:
    bl      common_el1_setup
    mov     x0, x19
    mov     x1, x20
    bl      kernel_main
park:
    wfe
    b       park

// x20 = the image's physical address (512 KiB above a 2 MiB boundary). Fills
// boot_l*_hi (image at its link address) and boot_l*_id (identity) with 2 MiB blocks.
build_boot_tables:
    ldr     x4, =__image_end
    ldr     x5, =__image_base_va
    sub     x4, x4, x5
    mov     x6, #0x1fffff
    add     x4, x4, x6
    lsr     x4, x4, #21             // x4 = number of 2 MiB blocks
    sub     x6, x20, #0x80, lsl #12 // x6 = physical base (2 MiB aligned)
    ldr     x7, ={block}
    orr     x7, x7, x6              // first block descriptor
    // Upper half: L0[511] -> L1, L1[510] -> L2, L2[i] = block i (VA 0xffffffff80000000).
    adrp    x0, boot_l0_hi
    adrp    x1, boot_l1_hi
    adrp    x2, boot_l2_hi
    orr     x3, x1, #3
    str     x3, [x0, #(511 * 8)]
    orr     x3, x2, #3
    str     x3, [x1, #(510 * 8)]
    mov     x8, xzr
    mov     x9, x7
2:  str     x9, [x2, x8, lsl #3]
    add     x9, x9, #0x200, lsl #12
    add     x8, x8, #1
    cmp     x8, x4
    b.lo    2b
    // Identity: L0[pa >> 39] -> L1, L1[(pa >> 30) & 511] -> L2, L2[(pa >> 21) & 511 + i].
    adrp    x0, boot_l0_id
    adrp    x1, boot_l1_id
    adrp    x2, boot_l2_id
    lsr     x3, x6, #39
    orr     x10, x1, #3
    str     x10, [x0, x3, lsl #3]
    ubfx    x3, x6, #30, #9
    orr     x10, x2, #3
    str     x10, [x1, x3, lsl #3]
    ubfx    x8, x6, #21, #9
    add     x4, x4, x8
    orr     x9, x7, #(1 << 7)       // read-only: the alias only runs code, and must stay
                                    // executable under SCTLR.WXN (secondaries, the swap)
3:  str     x9, [x2, x8, lsl #3]
    add     x9, x9, #0x200, lsl #12
    add     x8, x8, #1
    cmp     x8, x4
    b.lo    3b
    ret

// Discards any cache line of the image a loader running with caches on (capstan.efi)
// or the CPU's own speculation may have left, before BSS and the boot tables were
// written here with the MMU off: those writes went to memory, and a stale line would
// hide them once caches are on. DC IVAC by the smallest line size (CTR_EL0.DminLine).
invalidate_image:
    mrs     x3, ctr_el0
    ubfx    x3, x3, #16, #4
    mov     x2, #4
    lsl     x2, x2, x3              // line size in bytes
    adrp    x1, __image_start       // physical: the MMU is off
    adrp    x4, __image_end
0:  cmp     x1, x4
    b.hs    1f
    dc      ivac, x1
    add     x1, x1, x2
    b       0b
1:  dsb     sy
    ret

// x1 = TTBR0, x2 = TTBR1 (physical). MAIR, TCR (IPS and 16-bit ASIDs from
// ID_AA64MMFR0_EL1), TLB invalidated, then SCTLR with M, C, I.
mmu_on:
    ldr     x3, ={mair}
    msr     mair_el1, x3
    ldr     x3, ={tcr}
    mrs     x4, id_aa64mmfr0_el1
    and     x5, x4, #0xf
    mov     x6, #5
    cmp     x5, x6
    csel    x5, x5, x6, lo          // PARange, at most 48 bits (5)
    orr     x3, x3, x5, lsl #32
    ubfx    x5, x4, #4, #4          // ASIDBits: 2 = 16 bits
    cmp     x5, #2
    b.eq    4f
    bic     x3, x3, #(1 << 36)      // 8-bit ASIDs only: clear TCR.AS
4:  msr     tcr_el1, x3
    msr     ttbr0_el1, x1
    msr     ttbr1_el1, x2
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    ldr     x3, ={sctlr}
    msr     sctlr_el1, x3
    isb
    ret

// If entered at EL2, configure EL1 as AArch64 with timer access and eret to it.
drop_to_el1:
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #2
    b.ne    5f
    mov     x1, #(1 << 31)          // HCR_EL2.RW: EL1 is AArch64
    msr     hcr_el2, x1
    mov     x1, #3                  // CNTHCTL_EL2.EL1PCTEN | EL1PCEN
    msr     cnthctl_el2, x1
    msr     cntvoff_el2, xzr
    mov     x1, #0x3c5              // EL1h, DAIF masked
    msr     spsr_el2, x1
    msr     elr_el2, x30
    eret
5:  ret

// Vectors, FP/SIMD access for EL0, the virtual counter readable at EL0 (so user code
// can time itself without a system call), IRQs stay masked until the GIC is up.
common_el1_setup:
    ldr     x1, =exception_vectors
    msr     vbar_el1, x1
    mov     x1, #(3 << 20)          // CPACR_EL1.FPEN: no FP traps
    msr     cpacr_el1, x1
    mov     x1, #(1 << 1)           // CNTKCTL_EL1.EL0VCTEN: CNTVCT_EL0 and CNTFRQ_EL0 at EL0
    msr     cntkctl_el1, x1
    isb
    ret

// x0 = physical address of a StartRecord: stack_top, ttbr0, tcr, mair, sctlr, ttbr1,
// record_va, cpu_index (offsets 0..56).
.global secondary_entry
secondary_entry:
    mov     x19, x0
    bl      drop_to_el1
    ldr     x3, [x19, #24]
    msr     mair_el1, x3
    ldr     x3, [x19, #16]
    msr     tcr_el1, x3
    ldr     x1, [x19, #8]
    msr     ttbr0_el1, x1
    ldr     x2, [x19, #40]
    msr     ttbr1_el1, x2
    ldr     x20, [x19, #0]
    ldr     x21, [x19, #48]
    ldr     x22, [x19, #32]
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    msr     sctlr_el1, x22
    isb
    ldr     x1, =secondary_high
    br      x1
secondary_high:
    mov     sp, x20
    bl      common_el1_setup
    mov     x0, x21
    bl      secondary_main
    b       park

// Swaps TTBR1 to x0 with break-before-make. x1 = physical minus virtual address of the
// image: the swap runs from the identity alias (TTBR0 must hold the boot identity map),
// with TTBR1 on an empty table while the TLB is invalidated.
.section .text, "ax"
.global replace_ttbr1
replace_ttbr1:
    adr     x2, 6f
    add     x2, x2, x1
    br      x2
6:  adrp    x3, empty_table         // physical now
    msr     ttbr1_el1, x3
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    msr     ttbr1_el1, x0
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    adr     x2, 7f
    sub     x2, x2, x1
    br      x2
7:  ret

.section .bss.boot_tables, "aw", %nobits
.balign 4096
.global boot_l0_id
.global empty_table
boot_l0_hi: .space 4096
boot_l1_hi: .space 4096
boot_l2_hi: .space 4096
boot_l0_id: .space 4096
boot_l1_id: .space 4096
boot_l2_id: .space 4096
empty_table: .space 4096

.section .bss.boot_stack, "aw", %nobits
.balign 4096
.global __boot_stack_guard
__boot_stack_guard:
    .space  4096
    .space  1048576
.global __boot_stack_top
__boot_stack_top:
"#,
    block = const BOOT_BLOCK,
    mair = const MAIR.0,
    tcr = const TCR_BASE,
    sctlr = const SCTLR_BOOT,
);

/// The symbol the boot assembly calls once the MMU is on and the stack is ready:
/// `dtb` is what the loader left in x0, `image_phys` where the image was loaded.
#[unsafe(no_mangle)]
extern "C" fn kernel_main(dtb: usize, image_phys: usize) -> ! {
    super::mmu::init(image_phys);
    crate::boot::start(dtb)
}
