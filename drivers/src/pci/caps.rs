//! Capability-list walks: legacy (PCI 3.0 §6.7) and extended (PCIe 4.0 §7.6).
//!
//! MSI, MSI-X and the PCIe capability are found by following linked lists the
//! device itself supplies. A broken or hostile device can make such a list
//! loop or point outside its region, so every walk is bounded: a visited
//! bitmap catches loops, pointers are range-checked, and the result is a
//! [`CapListError`] value that the kernel logs before skipping the device —
//! never a hang or a panic.

use core::fmt;

use super::config::{Bdf, ConfigAccess, STATUS_CAP_LIST, reg};

/// Legacy capability IDs (PCI Code and ID Assignment 1.11 §2).
pub mod id {
    /// Power management.
    pub const PM: u8 = 0x01;
    /// MSI (PCI 3.0 §6.8.1).
    pub const MSI: u8 = 0x05;
    /// Vendor specific (virtio uses it).
    pub const VENDOR: u8 = 0x09;
    /// PCI Express (PCIe 4.0 §7.5.3).
    pub const PCIE: u8 = 0x10;
    /// MSI-X (PCI 3.0 §6.8.2).
    pub const MSIX: u8 = 0x11;
}

/// Most legacy capabilities one function can have: one per dword in 0x40..=0xFC.
pub const MAX_LEGACY: usize = 48;

/// Why a capability list was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapListError {
    /// A pointer led back to a capability already visited.
    Loop {
        /// The offending pointer.
        at: u16,
    },
    /// A pointer left the legal region (0x40..=0xFC legacy, 0x100..=0xFFC extended).
    OutOfRange {
        /// The offending pointer.
        at: u16,
    },
}

impl fmt::Display for CapListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapListError::Loop { at } => write!(f, "capability list loops at {at:#x}"),
            CapListError::OutOfRange { at } => {
                write!(f, "capability pointer {at:#x} out of range")
            }
        }
    }
}

/// One legacy capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    /// Capability ID.
    pub id: u8,
    /// Offset of its header in configuration space.
    pub offset: u16,
}

/// One extended capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtCapability {
    /// Extended capability ID (PCIe 4.0 §7.6.3, bits [15:0]).
    pub id: u16,
    /// Capability version (bits [19:16]).
    pub version: u8,
    /// Offset of its header.
    pub offset: u16,
}

/// Iterator over a legacy capability list; yields `Err` once and then stops.
pub struct LegacyCaps<'a, C: ConfigAccess + ?Sized> {
    access: &'a C,
    bdf: Bdf,
    next: u16,
    visited: u64,
    done: bool,
}

impl<C: ConfigAccess + ?Sized> Iterator for LegacyCaps<'_, C> {
    type Item = Result<Capability, CapListError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.next == 0 {
            return None;
        }
        let at = self.next;
        // PCI 3.0 §6.7: the low two bits are reserved; software masks them.
        let ptr = at & 0xfc;
        if !(0x40..=0xfc).contains(&ptr) {
            self.done = true;
            return Some(Err(CapListError::OutOfRange { at }));
        }
        let bit = 1u64 << ((ptr - 0x40) / 4);
        if self.visited & bit != 0 {
            self.done = true;
            return Some(Err(CapListError::Loop { at }));
        }
        self.visited |= bit;
        let hdr = self.access.read16(self.bdf, ptr);
        self.next = hdr >> 8;
        Some(Ok(Capability {
            id: hdr as u8,
            offset: ptr,
        }))
    }
}

/// Walks the legacy capability list of `bdf` (empty if status bit 4 is clear).
pub fn legacy<C: ConfigAccess + ?Sized>(access: &C, bdf: Bdf) -> LegacyCaps<'_, C> {
    let has = access.read16(bdf, reg::STATUS) & STATUS_CAP_LIST != 0;
    let first = if has {
        u16::from(access.read8(bdf, reg::CAP_PTR))
    } else {
        0
    };
    LegacyCaps {
        access,
        bdf,
        next: first,
        visited: 0,
        done: false,
    }
}

/// Offset of the first legacy capability `cap_id`, or `None`; the whole list is
/// validated first, so a broken list is reported even if `cap_id` precedes the
/// break.
pub fn find<C: ConfigAccess + ?Sized>(
    access: &C,
    bdf: Bdf,
    cap_id: u8,
) -> Result<Option<u16>, CapListError> {
    let mut found = None;
    for cap in legacy(access, bdf) {
        let cap = cap?;
        if cap.id == cap_id && found.is_none() {
            found = Some(cap.offset);
        }
    }
    Ok(found)
}

/// Iterator over the extended capability list (PCIe functions only).
pub struct ExtendedCaps<'a, C: ConfigAccess + ?Sized> {
    access: &'a C,
    bdf: Bdf,
    next: u16,
    visited: [u64; 16],
    done: bool,
}

impl<C: ConfigAccess + ?Sized> Iterator for ExtendedCaps<'_, C> {
    type Item = Result<ExtCapability, CapListError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.next == 0 {
            return None;
        }
        let at = self.next;
        if !(0x100..=0xffc).contains(&at) || !at.is_multiple_of(4) {
            self.done = true;
            return Some(Err(CapListError::OutOfRange { at }));
        }
        let dword = usize::from(at / 4);
        let (w, b) = (dword / 64, dword % 64);
        if self.visited[w] & (1 << b) != 0 {
            self.done = true;
            return Some(Err(CapListError::Loop { at }));
        }
        self.visited[w] |= 1 << b;
        let hdr = self.access.read32(self.bdf, at);
        // An all-zero or all-ones header at 0x100 means no extended capabilities.
        if hdr == 0 || hdr == u32::MAX {
            self.done = true;
            return None;
        }
        // PCIe 4.0 §7.6.3: next pointer [31:20], low two bits reserved-zero.
        self.next = (hdr >> 20) as u16 & !3;
        Some(Ok(ExtCapability {
            id: hdr as u16,
            version: ((hdr >> 16) & 0xf) as u8,
            offset: at,
        }))
    }
}

/// Walks the extended capability list of `bdf`, starting at 0x100. Call it
/// only for PCIe functions (those with a PCIe capability): on conventional PCI
/// behind ECAM the region reads as zero or all-ones and yields nothing.
pub fn extended<C: ConfigAccess + ?Sized>(access: &C, bdf: Bdf) -> ExtendedCaps<'_, C> {
    ExtendedCaps {
        access,
        bdf,
        next: reg::EXT_CAP_START,
        visited: [0; 16],
        done: false,
    }
}

/// What the scan records about a function's capabilities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSummary {
    /// Offset of the MSI capability.
    pub msi: Option<u16>,
    /// Offset of the MSI-X capability.
    pub msix: Option<u16>,
    /// Offset of the PCI Express capability.
    pub pcie: Option<u16>,
    /// Number of legacy capabilities.
    pub legacy_count: u8,
    /// Number of extended capabilities.
    pub extended_count: u8,
}

/// Walks both lists and summarises them; any broken list fails the whole function.
pub fn summarize<C: ConfigAccess + ?Sized>(
    access: &C,
    bdf: Bdf,
) -> Result<CapSummary, CapListError> {
    let mut s = CapSummary::default();
    for cap in legacy(access, bdf) {
        let cap = cap?;
        s.legacy_count += 1;
        let slot = match cap.id {
            id::MSI => &mut s.msi,
            id::MSIX => &mut s.msix,
            id::PCIE => &mut s.pcie,
            _ => continue,
        };
        slot.get_or_insert(cap.offset);
    }
    if s.pcie.is_some() {
        for cap in extended(access, bdf) {
            cap?;
            s.extended_count = s.extended_count.saturating_add(1);
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::fake::FakeConfigSpace;
    use std::vec::Vec;

    fn dev() -> (FakeConfigSpace, Bdf) {
        let cfg = FakeConfigSpace::new();
        let bdf = Bdf::new(0, 3, 0).unwrap();
        cfg.add_endpoint(bdf, 0x1af4, 0x1000, [0x02, 0x00, 0x00]);
        (cfg, bdf)
    }

    #[test]
    fn walks_a_normal_list() {
        let (cfg, bdf) = dev();
        cfg.add_cap(bdf, 0x40, id::PM);
        cfg.add_msix(bdf, 0x98, 3, (1, 0), (1, 0x800));
        cfg.add_msi(bdf, 0x50, 0, true, false);
        cfg.add_cap(bdf, 0x84, id::VENDOR);
        let ids: Vec<_> = legacy(&cfg, bdf).map(|c| c.unwrap()).collect();
        let want = [
            (id::PM, 0x40),
            (id::MSIX, 0x98),
            (id::MSI, 0x50),
            (id::VENDOR, 0x84),
        ];
        assert_eq!(ids.len(), 4);
        for (c, (i, o)) in ids.iter().zip(want) {
            assert_eq!((c.id, c.offset), (i, o));
        }
        assert_eq!(find(&cfg, bdf, id::MSI), Ok(Some(0x50)));
        assert_eq!(find(&cfg, bdf, id::PCIE), Ok(None));
        let s = summarize(&cfg, bdf).unwrap();
        assert_eq!(
            (s.msi, s.msix, s.pcie, s.legacy_count),
            (Some(0x50), Some(0x98), None, 4)
        );
    }

    #[test]
    fn no_list_when_status_bit_clear() {
        let (cfg, bdf) = dev();
        // A pointer without the status bit is ignored (PCI 3.0 §6.7).
        cfg.poke8(bdf, reg::CAP_PTR, 0x40);
        assert_eq!(legacy(&cfg, bdf).count(), 0);
    }

    #[test]
    fn hostile_loop_is_detected() {
        let (cfg, bdf) = dev();
        cfg.add_cap(bdf, 0x40, id::PM);
        cfg.add_cap(bdf, 0x50, id::VENDOR);
        cfg.add_cap(bdf, 0x60, id::MSI);
        // 0x60 → 0x44 with reserved low bits set: still 0x40 after masking.
        cfg.poke8(bdf, 0x61, 0x43);
        let items: Vec<_> = legacy(&cfg, bdf).collect();
        assert_eq!(items.len(), 4, "three caps then one error, then stop");
        assert_eq!(items[3], Err(CapListError::Loop { at: 0x43 }));
        assert_eq!(
            find(&cfg, bdf, id::PM),
            Err(CapListError::Loop { at: 0x43 })
        );
        assert!(summarize(&cfg, bdf).is_err());
        // A self-loop too.
        cfg.poke8(bdf, 0x41, 0x40);
        assert_eq!(
            find(&cfg, bdf, id::MSI),
            Err(CapListError::Loop { at: 0x40 })
        );
    }

    #[test]
    fn every_dword_linked_to_the_next_is_fine_then_loops() {
        // The longest legal list: 48 caps, last one points back to the first.
        let (cfg, bdf) = dev();
        for i in 0..48u16 {
            cfg.add_cap(bdf, 0x40 + 4 * i, id::VENDOR);
        }
        assert_eq!(legacy(&cfg, bdf).filter(Result::is_ok).count(), 48);
        cfg.poke8(bdf, 0xfd, 0x40);
        let n = legacy(&cfg, bdf).count();
        assert_eq!(n, 49);
    }

    #[test]
    fn out_of_range_pointers() {
        let (cfg, bdf) = dev();
        cfg.add_cap(bdf, 0x40, id::PM);
        cfg.poke8(bdf, 0x41, 0x20); // into the header
        assert_eq!(
            find(&cfg, bdf, 0x99),
            Err(CapListError::OutOfRange { at: 0x20 })
        );
        cfg.poke8(bdf, reg::CAP_PTR, 0x3c);
        assert_eq!(
            find(&cfg, bdf, 0x99),
            Err(CapListError::OutOfRange { at: 0x3c })
        );
    }

    #[test]
    fn extended_list_and_its_hostile_forms() {
        let (cfg, bdf) = dev();
        cfg.add_cap(bdf, 0x40, id::PCIE);
        cfg.add_ext_cap(bdf, 0x100, 0x0001, 2); // AER
        cfg.add_ext_cap(bdf, 0x148, 0x0003, 1); // serial number
        cfg.add_ext_cap(bdf, 0x200, 0x000b, 1); // vendor specific
        let caps: Vec<_> = extended(&cfg, bdf).map(|c| c.unwrap()).collect();
        assert_eq!(caps.len(), 3);
        assert_eq!((caps[1].id, caps[1].version, caps[1].offset), (3, 1, 0x148));
        assert_eq!(summarize(&cfg, bdf).unwrap().extended_count, 3);
        // Loop: 0x200 → 0x148.
        cfg.poke32(bdf, 0x200, 0x1481_000b);
        let last = extended(&cfg, bdf).last().unwrap();
        assert_eq!(last, Err(CapListError::Loop { at: 0x148 }));
        // Pointer back into legacy space.
        cfg.poke32(bdf, 0x200, 0x0801_000b);
        let last = extended(&cfg, bdf).last().unwrap();
        assert_eq!(last, Err(CapListError::OutOfRange { at: 0x80 }));
        assert!(summarize(&cfg, bdf).is_err());
    }

    #[test]
    fn absent_extended_space_yields_nothing() {
        let (cfg, bdf) = dev();
        assert_eq!(extended(&cfg, bdf).count(), 0);
        cfg.poke32(bdf, 0x100, u32::MAX);
        assert_eq!(extended(&cfg, bdf).count(), 0);
    }
}
