//! The pure half of `capstan.efi`: ACPI tables in, a device tree out.
//!
//! Parallels Desktop and VMware Fusion boot guests only through UEFI and
//! describe them only with ACPI. `capstan.efi` reads the firmware's ACPI
//! tables and memory map, writes the device tree the kernel already knows how
//! to read, and enters the same kernel image the `-kernel` path boots. Every
//! parser here works on bytes behind a [`acpi::Memory`], so the host tests run
//! them against tables captured from QEMU's EDK2 (`scripts/dump-acpi`) and
//! hand-built ones of the Parallels and VMware shapes. See docs/boot.md.
#![no_std]

extern crate alloc;
#[cfg(any(test, feature = "fixtures"))]
extern crate std;

pub mod acpi;
pub mod aml;
pub mod cmdline;
pub mod describe;
pub mod devicetree;
pub mod fdtw;
pub mod memmap;
pub mod platform;
pub mod report;

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
#[cfg(any(test, feature = "fixtures"))]
pub mod shapes;
#[cfg(test)]
mod tests;
