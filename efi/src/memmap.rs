//! The UEFI memory map as the kernel's RAM: usable ranges, merged.
//!
//! After `ExitBootServices` the kernel may use conventional memory, the boot
//! services' code and data, and the loader's own pages (its image and the
//! device tree it wrote are carved out by the kernel as holes). Runtime
//! services, ACPI tables and NVS, reserved and MMIO ranges are never RAM to it.
//! UEFI 2.10 §7.2.3 (`EFI_MEMORY_TYPE`). This runs after `ExitBootServices`,
//! so it allocates nothing.

/// `EFI_MEMORY_TYPE` values used here.
pub mod ty {
    /// Reserved.
    pub const RESERVED: u32 = 0;
    /// The loader's code.
    pub const LOADER_CODE: u32 = 1;
    /// The loader's data.
    pub const LOADER_DATA: u32 = 2;
    /// Boot services code.
    pub const BOOT_SERVICES_CODE: u32 = 3;
    /// Boot services data.
    pub const BOOT_SERVICES_DATA: u32 = 4;
    /// Runtime services code.
    pub const RUNTIME_SERVICES_CODE: u32 = 5;
    /// Runtime services data.
    pub const RUNTIME_SERVICES_DATA: u32 = 6;
    /// Free memory.
    pub const CONVENTIONAL: u32 = 7;
    /// Memory with errors.
    pub const UNUSABLE: u32 = 8;
    /// ACPI tables, reclaimable after reading.
    pub const ACPI_RECLAIM: u32 = 9;
    /// ACPI NVS.
    pub const ACPI_NVS: u32 = 10;
    /// Memory-mapped I/O.
    pub const MMIO: u32 = 11;
    /// Memory-mapped I/O port space.
    pub const MMIO_PORT_SPACE: u32 = 12;
    /// Itanium PAL code.
    pub const PAL_CODE: u32 = 13;
    /// Persistent memory.
    pub const PERSISTENT: u32 = 14;
}

/// A short name for a memory type.
pub fn type_name(t: u32) -> &'static str {
    match t {
        ty::RESERVED => "reserved",
        ty::LOADER_CODE => "loader-code",
        ty::LOADER_DATA => "loader-data",
        ty::BOOT_SERVICES_CODE => "boot-code",
        ty::BOOT_SERVICES_DATA => "boot-data",
        ty::RUNTIME_SERVICES_CODE => "runtime-code",
        ty::RUNTIME_SERVICES_DATA => "runtime-data",
        ty::CONVENTIONAL => "conventional",
        ty::UNUSABLE => "unusable",
        ty::ACPI_RECLAIM => "acpi-reclaim",
        ty::ACPI_NVS => "acpi-nvs",
        ty::MMIO => "mmio",
        ty::MMIO_PORT_SPACE => "mmio-port",
        ty::PAL_CODE => "pal-code",
        ty::PERSISTENT => "persistent",
        _ => "other",
    }
}

/// Whether the kernel may use memory of type `t` once boot services have exited.
pub fn usable(t: u32) -> bool {
    matches!(
        t,
        ty::LOADER_CODE
            | ty::LOADER_DATA
            | ty::BOOT_SERVICES_CODE
            | ty::BOOT_SERVICES_DATA
            | ty::CONVENTIONAL
    )
}

/// Whether ACPI tables may be read from memory of type `t` (RAM of any kind the
/// firmware describes, never MMIO or unusable memory).
pub fn readable(t: u32) -> bool {
    matches!(
        t,
        ty::RESERVED
            | ty::LOADER_CODE
            | ty::LOADER_DATA
            | ty::BOOT_SERVICES_CODE
            | ty::BOOT_SERVICES_DATA
            | ty::RUNTIME_SERVICES_CODE
            | ty::RUNTIME_SERVICES_DATA
            | ty::CONVENTIONAL
            | ty::ACPI_RECLAIM
            | ty::ACPI_NVS
            | ty::PERSISTENT
    )
}

/// One descriptor: type, physical start, 4 KiB pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desc {
    /// `EFI_MEMORY_TYPE`.
    pub ty: u32,
    /// Physical start.
    pub start: u64,
    /// Number of 4 KiB pages.
    pub pages: u64,
}

impl Desc {
    /// One past the last byte (saturating).
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.pages.saturating_mul(4096))
    }
}

/// Merges the usable descriptors (`descs` sorted by start) into `[start, end)` ranges
/// in `out`; returns how many ranges did not fit.
pub fn ram_ranges(descs: impl Iterator<Item = Desc>, out: &mut [(u64, u64)]) -> (usize, usize) {
    let mut n = 0;
    let mut dropped = 0;
    for d in descs.filter(|d| usable(d.ty) && d.pages > 0) {
        if n > 0 && out[n - 1].1 == d.start {
            out[n - 1].1 = d.end();
        } else if n < out.len() {
            out[n] = (d.start, d.end());
            n += 1;
        } else {
            dropped += 1;
        }
    }
    (n, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ty: u32, start: u64, pages: u64) -> Desc {
        Desc { ty, start, pages }
    }

    #[test]
    fn merges_usable_and_skips_runtime_and_acpi() {
        let map = [
            d(ty::CONVENTIONAL, 0x4000_0000, 0x100),
            d(ty::BOOT_SERVICES_DATA, 0x4010_0000, 0x10),
            d(ty::LOADER_DATA, 0x4011_0000, 0x10),
            d(ty::RUNTIME_SERVICES_DATA, 0x4012_0000, 1),
            d(ty::ACPI_RECLAIM, 0x4012_1000, 1),
            d(ty::CONVENTIONAL, 0x4012_2000, 2),
            d(ty::MMIO, 0x0900_0000, 1),
        ];
        let mut out = [(0, 0); 4];
        let (n, dropped) = ram_ranges(map.into_iter(), &mut out);
        assert_eq!(dropped, 0);
        assert_eq!(
            &out[..n],
            &[(0x4000_0000, 0x4012_0000), (0x4012_2000, 0x4012_4000)]
        );
    }

    #[test]
    fn overflow_is_counted() {
        let map = (0..5).map(|i| d(ty::CONVENTIONAL, i * 0x10_0000, 1));
        let mut out = [(0, 0); 3];
        assert_eq!(ram_ranges(map, &mut out), (3, 2));
    }

    #[test]
    fn tables_are_readable_but_not_ram() {
        assert!(readable(ty::ACPI_RECLAIM) && !usable(ty::ACPI_RECLAIM));
        assert!(!readable(ty::MMIO));
        assert!(usable(ty::BOOT_SERVICES_CODE));
    }
}
