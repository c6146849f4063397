//! User processes: executables, address spaces, the syscall layer, lifecycle.
//!
//! The pure parts (checking an ELF file, checking user pointers) build on the host
//! for their tests; the rest is kernel-only. See docs/process.md.

pub mod elf;
