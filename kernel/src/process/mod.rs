//! User processes: executables, address spaces, the syscall layer, lifecycle.
//!
//! The pure parts (checking an ELF file, checking user pointers) build on the host
//! for their tests; the rest is kernel-only. See docs/process.md.

#![cfg_attr(
    target_os = "none",
    allow(
        dead_code,
        reason = "the loader that uses it lands with address spaces (next)"
    )
)]

pub mod elf;
