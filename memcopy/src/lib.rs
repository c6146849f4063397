//! `memcpy` and `memmove` for Capstan's bare-metal aarch64 targets (the kernel and the user
//! programs).
//!
//! The toolchain's own (compiler-builtins', portable Rust) copies word by word only when
//! source and destination are equally aligned; otherwise it loads aligned words and shifts
//! them together, which under QEMU's TCG runs about three times slower (`netbench`'s
//! `memcpy skewed` line: 1.0 GB/s against 2.9 GB/s). Misaligned pairs are the common case
//! on the network path: a frame behind virtio-net's 12-byte header copied into a slot behind
//! a 16-byte one, or into smoltcp's ring at whatever offset it has reached. AArch64 loads
//! any alignment from normal memory in one access (SCTLR_EL1.A is clear in Capstan, and the
//! MMU is on before the first Rust code runs), so these align the destination and then copy
//! sixteen bytes per load pair whatever the source's alignment. The targets are built with
//! `strict-align` (the compiler splits a `read_unaligned` into bytes), so the unaligned
//! load is one `ldp` in inline assembly.
//!
//! Never use these on device memory (an unaligned access to it faults); nothing in Capstan
//! copies MMIO with `memcpy` (registers go through volatile accessors).
//!
//! `#![no_builtins]` keeps the compiler from turning these loops back into calls to
//! `memcpy`. The symbols are exported only for `target_os = "none"` on aarch64: host builds
//! (the tests) keep the host's C library and call [`copy_forward`] and [`copy_backward`]
//! directly.

#![no_std]
#![no_builtins]

/// Bytes copied per step of the main loop (two load pairs, then two store pairs).
const STEP: usize = 32;
const WORD: usize = 8;

/// The two words at `p`, whatever its alignment.
///
/// # Safety
///
/// `p` must be valid for 16 bytes of reads, in normal memory.
#[inline(always)]
unsafe fn load2(p: *const u8) -> (u64, u64) {
    #[cfg(target_arch = "aarch64")]
    {
        let (a, b);
        // SAFETY: the caller's promise; an unaligned `ldp` from normal memory is one
        // access with SCTLR_EL1.A clear.
        unsafe {
            core::arch::asm!(
                "ldp {a}, {b}, [{p}]",
                p = in(reg) p,
                a = out(reg) a,
                b = out(reg) b,
                options(nostack, readonly, preserves_flags)
            );
        }
        (a, b)
    }
    #[cfg(not(target_arch = "aarch64"))]
    // SAFETY: the caller's promise.
    unsafe {
        let p = p.cast::<u64>();
        (p.read_unaligned(), p.add(1).read_unaligned())
    }
}

/// Stores two words at `p`.
///
/// # Safety
///
/// `p` must be 8-aligned and valid for 16 bytes of writes.
#[inline(always)]
unsafe fn store2(p: *mut u8, (a, b): (u64, u64)) {
    let p = p.cast::<u64>();
    // SAFETY: the caller's promise (aligned: plain stores, a `stp`).
    unsafe {
        p.write(a);
        p.add(1).write(b);
    }
}

/// Copies `n` bytes from `src` to `dest`, lowest address first.
///
/// # Safety
///
/// `src` must be valid for `n` bytes of reads and `dest` for `n` bytes of writes, both in
/// normal memory. They may overlap only if `dest` is at or below `src`.
pub unsafe fn copy_forward(dest: *mut u8, src: *const u8, n: usize) {
    let mut i = 0;
    // Align the destination: its stores then never straddle a cache line or a page.
    let head = dest.align_offset(WORD).min(n);
    while i < head {
        // SAFETY: i < n: inside both ranges (the caller's promise).
        unsafe { dest.add(i).write(src.add(i).read()) };
        i += 1;
    }
    while n - i >= STEP {
        // SAFETY: bytes i..i + STEP are inside both ranges. All four words are loaded
        // before any is stored, and the stores land at or below the loads' addresses
        // (dest <= src), so an overlapping move reads each byte before it is overwritten.
        // `dest + i` is 8-aligned (the head loop aligned it).
        unsafe {
            let (lo, hi) = (load2(src.add(i)), load2(src.add(i + 16)));
            store2(dest.add(i), lo);
            store2(dest.add(i + 16), hi);
        }
        i += STEP;
    }
    while n - i >= 2 * WORD {
        // SAFETY: bytes i..i + 16 are inside both ranges, `dest + i` 8-aligned; loaded
        // before stored.
        unsafe { store2(dest.add(i), load2(src.add(i))) };
        i += 2 * WORD;
    }
    while i < n {
        // SAFETY: i < n.
        unsafe { dest.add(i).write(src.add(i).read()) };
        i += 1;
    }
}

/// Copies `n` bytes from `src` to `dest`, highest address first.
///
/// # Safety
///
/// `src` must be valid for `n` bytes of reads and `dest` for `n` bytes of writes, both in
/// normal memory. They may overlap only if `dest` is at or above `src`.
pub unsafe fn copy_backward(dest: *mut u8, src: *const u8, n: usize) {
    let mut left = n;
    // Align the destination's end: the word stores below then land on word boundaries.
    let tail = dest.addr().wrapping_add(n) % WORD;
    let tail = tail.min(n);
    while n - left < tail {
        left -= 1;
        // SAFETY: left < n.
        unsafe { dest.add(left).write(src.add(left).read()) };
    }
    while left >= STEP {
        left -= STEP;
        // SAFETY: bytes left..left + STEP are inside both ranges; all loaded before any is
        // stored, and the stores land at or above the loads (dest >= src).
        // `dest + left` is 8-aligned (the tail loop aligned the end).
        unsafe {
            let (lo, hi) = (load2(src.add(left)), load2(src.add(left + 16)));
            store2(dest.add(left + 16), hi);
            store2(dest.add(left), lo);
        }
    }
    while left >= 2 * WORD {
        left -= 2 * WORD;
        // SAFETY: bytes left..left + 16 are inside both ranges, `dest + left` 8-aligned;
        // loaded before stored.
        unsafe { store2(dest.add(left), load2(src.add(left))) };
    }
    while left > 0 {
        left -= 1;
        // SAFETY: left < n.
        unsafe { dest.add(left).write(src.add(left).read()) };
    }
}

/// The C `memcpy` every copy in the kernel and the user programs compiles to.
///
/// # Safety
///
/// As C's: `src` and `dest` valid for `n` bytes, in normal memory, not overlapping.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's promise; disjoint ranges may be copied in either direction.
    unsafe { copy_forward(dest, src, n) };
    dest
}

/// The C `memmove` (overlapping copies: `ptr::copy`, `Vec` and `VecDeque` moves).
///
/// # Safety
///
/// As C's: `src` and `dest` valid for `n` bytes, in normal memory.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's promise; the direction is the one that reads each byte before
    // it is overwritten.
    unsafe {
        if dest.addr().wrapping_sub(src.addr()) >= n {
            copy_forward(dest, src, n);
        } else {
            copy_backward(dest, src, n);
        }
    }
    dest
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    /// Every length to 3 steps and every alignment of both ends: the copy is exact and
    /// touches nothing outside the destination.
    #[test]
    fn copies_are_exact_at_every_length_and_alignment() {
        let src = pattern(200);
        for n in 0..=3 * STEP + WORD + 3 {
            for so in 0..WORD {
                for dof in 0..WORD {
                    for forward in [true, false] {
                        let mut dst = std::vec![0xEEu8; 200];
                        // SAFETY: both ranges are inside their vectors (offsets < 8, n < 110).
                        unsafe {
                            let (d, s) = (dst.as_mut_ptr().add(dof + 8), src.as_ptr().add(so));
                            if forward {
                                copy_forward(d, s, n);
                            } else {
                                copy_backward(d, s, n);
                            }
                        }
                        assert_eq!(
                            &dst[dof + 8..dof + 8 + n],
                            &src[so..so + n],
                            "n {n} {so}/{dof}"
                        );
                        assert!(dst[..dof + 8].iter().all(|&b| b == 0xEE), "before, n {n}");
                        assert!(
                            dst[dof + 8 + n..].iter().all(|&b| b == 0xEE),
                            "after, n {n}"
                        );
                    }
                }
            }
        }
    }

    proptest! {
        /// Overlapping moves in the direction `memmove` picks give what `copy_within` gives.
        #[test]
        fn overlapping_moves_match_copy_within(len in 0usize..600, from in 0usize..600, to in 0usize..600) {
            let mut want = pattern(1300);
            want.copy_within(from..from + len, to);
            let mut got = pattern(1300);
            let p = got.as_mut_ptr();
            // SAFETY: from + len and to + len are below 1200 < 1300.
            unsafe {
                let (d, s) = (p.add(to), p.add(from).cast_const());
                if d.addr().wrapping_sub(s.addr()) >= len {
                    copy_forward(d, s, len);
                } else {
                    copy_backward(d, s, len);
                }
            }
            prop_assert_eq!(got, want);
        }
    }
}
