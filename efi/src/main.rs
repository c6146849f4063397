//! `capstan.efi`: the UEFI loader that boots Capstan where there is no device tree.
//!
//! Entered by the firmware at EL1 (or EL2) with the MMU on. It reads its load
//! options or `\capstan.txt` (the kernel command line), the memory map and the
//! ACPI tables; turns
//! them into a device tree ([`efi`] crate); copies the kernel image it carries
//! to pages of its own; exits boot services; writes the final memory map into
//! the tree; and enters the kernel exactly as QEMU's `-kernel` does (Linux arm64
//! boot protocol: MMU and data cache off, device tree in x0). Until
//! `ExitBootServices` every error is printed on the firmware console, so a
//! machine the kernel cannot run on says why. See docs/boot.md.
#![cfg_attr(target_os = "uefi", no_std, no_main)]

#[cfg(target_os = "uefi")]
mod firmware;
#[cfg(target_os = "uefi")]
mod handoff;

/// Host builds compile only the library (for `cargo test`); the loader is the UEFI
/// application.
#[cfg(not(target_os = "uefi"))]
fn main() {}
