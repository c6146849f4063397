//! SHA-256 blocks with the CPU's SHA-256 instructions (FEAT_SHA256), when it has them.
//!
//! Every download the kernel checks is hashed, and in software SHA-256 costs more than
//! the rest of the receive path together (~100 MiB/s under QEMU TCG). Armv8 has
//! instructions for it (`SHA256H`, `SHA256H2`, `SHA256SU0/1`), but they work on the
//! SIMD registers, and this kernel is built soft-float: the compiler never touches
//! those registers, exception entry does not save them, and rustc refuses to enable
//! NEON for a function on this target (so `sha2`'s own aarch64 backend cannot be used;
//! it also detects no CPU features without an operating system). The block function
//! here is therefore a small piece of assembly that saves every vector register it
//! uses, computes, and restores them, with interrupts masked so no other code can run
//! on this CPU in between — a user process's or another thread's vector state comes
//! out as it went in (Linux's `kernel_neon_begin`/`end` in miniature). One call hashes
//! at most [`MAX_BLOCKS`] blocks, which bounds the time interrupts stay masked.
//!
//! `net::http::BodyDigest` takes this as its block function when [`available`] says the
//! CPU has the instructions, and `sha2::compress256` otherwise; a kernel test checks the
//! two against each other and against the FIPS 180-4 vectors.

use core::arch::asm;
use core::sync::atomic::{AtomicU8, Ordering};

use super::cpu;

/// Blocks hashed per masked-interrupt section (4 KiB: a few microseconds).
pub const MAX_BLOCKS: usize = 64;

/// SHA-256 round constants (FIPS 180-4 §4.2.2).
static K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// 0 unknown, 1 absent, 2 present.
static PRESENT: AtomicU8 = AtomicU8::new(0);

/// Whether this CPU has the SHA-256 instructions (ID_AA64ISAR0_EL1.SHA2, Arm ARM
/// D19.2.61: 1 = SHA256H/H2/SU0/SU1, 2 = also SHA-512).
pub fn available() -> bool {
    match PRESENT.load(Ordering::Relaxed) {
        0 => {
            let isar0: u64;
            // SAFETY: reading an ID register has no side effects; it exists on every
            // Armv8-A CPU at EL1.
            unsafe { asm!("mrs {0}, id_aa64isar0_el1", out(reg) isar0, options(nomem, nostack)) };
            let yes = (isar0 >> 12) & 0xf >= 1;
            PRESENT.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        v => v == 2,
    }
}

/// Four rounds with the round constants in `$k`, the schedule word group `$w`; with
/// `su` the schedule advances (`$w` becomes w[i+16..i+20] from `$x`, `$y`, `$z`).
macro_rules! rounds {
    ($k:literal, $w:literal, $x:literal, $y:literal, $z:literal, su) => {
        concat!(
            "add v17.4s, ",
            $w,
            ".4s, ",
            $k,
            ".4s\n",
            "sha256su0 ",
            $w,
            ".4s, ",
            $x,
            ".4s\n",
            "mov v18.16b, v0.16b\n",
            "sha256h q0, q1, v17.4s\n",
            "sha256h2 q1, q18, v17.4s\n",
            "sha256su1 ",
            $w,
            ".4s, ",
            $y,
            ".4s, ",
            $z,
            ".4s\n",
        )
    };
    ($k:literal, $w:literal) => {
        concat!(
            "add v17.4s, ",
            $w,
            ".4s, ",
            $k,
            ".4s\n",
            "mov v18.16b, v0.16b\n",
            "sha256h q0, q1, v17.4s\n",
            "sha256h2 q1, q18, v17.4s\n",
        )
    };
}

/// The vector registers the block function uses, saved to and restored from `[{t}]`.
macro_rules! vector_regs {
    ($op:literal) => {
        concat!(
            "mov {t}, {save}\n",
            $op,
            " {{v0.16b, v1.16b, v2.16b, v3.16b}}, [{t}], #64\n",
            $op,
            " {{v4.16b, v5.16b, v6.16b, v7.16b}}, [{t}], #64\n",
            $op,
            " {{v8.16b, v9.16b, v10.16b, v11.16b}}, [{t}], #64\n",
            $op,
            " {{v12.16b, v13.16b, v14.16b, v15.16b}}, [{t}], #64\n",
            $op,
            " {{v16.16b, v17.16b, v18.16b, v19.16b}}, [{t}], #64\n",
            $op,
            " {{v20.16b, v21.16b, v22.16b, v23.16b}}, [{t}], #64\n",
            $op,
            " {{v24.16b, v25.16b, v26.16b, v27.16b}}, [{t}], #64\n",
            $op,
            " {{v28.16b, v29.16b}}, [{t}]\n",
        )
    };
}

/// One 64-byte block from `[{data}]` into the state in v0 (abcd) and v1 (efgh), with the
/// round constants in v8-v15 and v19-v26 (FIPS 180-4 §6.2.2 in groups of four rounds).
macro_rules! block {
    () => {
        concat!(
            "ld1 {{v4.16b, v5.16b, v6.16b, v7.16b}}, [{data}], #64\n",
            "rev32 v4.16b, v4.16b\n",
            "rev32 v5.16b, v5.16b\n",
            "rev32 v6.16b, v6.16b\n",
            "rev32 v7.16b, v7.16b\n",
            "mov v2.16b, v0.16b\n",
            "mov v3.16b, v1.16b\n",
            rounds!("v8", "v4", "v5", "v6", "v7", su),
            rounds!("v9", "v5", "v6", "v7", "v4", su),
            rounds!("v10", "v6", "v7", "v4", "v5", su),
            rounds!("v11", "v7", "v4", "v5", "v6", su),
            rounds!("v12", "v4", "v5", "v6", "v7", su),
            rounds!("v13", "v5", "v6", "v7", "v4", su),
            rounds!("v14", "v6", "v7", "v4", "v5", su),
            rounds!("v15", "v7", "v4", "v5", "v6", su),
            rounds!("v19", "v4", "v5", "v6", "v7", su),
            rounds!("v20", "v5", "v6", "v7", "v4", su),
            rounds!("v21", "v6", "v7", "v4", "v5", su),
            rounds!("v22", "v7", "v4", "v5", "v6", su),
            rounds!("v23", "v4"),
            rounds!("v24", "v5"),
            rounds!("v25", "v6"),
            rounds!("v26", "v7"),
            "add v0.4s, v0.4s, v2.4s\n",
            "add v1.4s, v1.4s, v3.4s\n",
        )
    };
}

/// Hashes whole 64-byte blocks into `state` with the SHA-256 instructions. The caller
/// must have checked [`available`]; `blocks.len()` is a multiple of 64 (a tail is
/// ignored). Interrupts are masked for at most [`MAX_BLOCKS`] blocks at a time.
pub fn compress(state: &mut [u32; 8], blocks: &[u8]) {
    for chunk in blocks.chunks(MAX_BLOCKS * 64) {
        let n = chunk.len() / 64;
        if n == 0 {
            break;
        }
        let daif = cpu::save_and_mask_irqs();
        // Room for the 30 vector registers used (all but v30-v31), saved and restored.
        let mut saved = [0u128; 30];
        // SAFETY: `state` is 32 bytes, `chunk` holds `n` whole blocks, `K` 256 bytes and
        // `saved` 480 bytes, all valid for the accesses below. The vector registers the
        // code uses are saved first and restored last, and interrupts are masked in
        // between, so no other code observes or changes them; the compiler itself keeps
        // nothing in them on this soft-float target. The instructions exist (the caller
        // checked `available`). General registers used are declared as operands.
        unsafe {
            asm!(
                ".arch_extension fp",
                ".arch_extension simd",
                ".arch_extension sha2",
                vector_regs!("st1"),
                "ld1 {{v8.4s, v9.4s, v10.4s, v11.4s}}, [{kbase}], #64",
                "ld1 {{v12.4s, v13.4s, v14.4s, v15.4s}}, [{kbase}], #64",
                "ld1 {{v19.4s, v20.4s, v21.4s, v22.4s}}, [{kbase}], #64",
                "ld1 {{v23.4s, v24.4s, v25.4s, v26.4s}}, [{kbase}]",
                "ld1 {{v0.4s, v1.4s}}, [{state}]",
                "2:",
                block!(),
                "subs {n}, {n}, #1",
                "b.ne 2b",
                "st1 {{v0.4s, v1.4s}}, [{state}]",
                vector_regs!("ld1"),
                state = in(reg) state.as_mut_ptr(),
                data = inout(reg) chunk.as_ptr() => _,
                n = inout(reg) n => _,
                kbase = inout(reg) K.as_ptr() => _,
                save = in(reg) saved.as_mut_ptr(),
                t = out(reg) _,
                options(nostack),
            );
        }
        cpu::restore_daif(daif);
    }
}
