//! Base Address Registers: sizing, and writing an assigned address back.
//!
//! With `-kernel` boot no firmware programs BARs, so the kernel must size each
//! one (PCI Local Bus 3.0 §6.2.5.1: write all-ones with decode disabled, read back
//! the mask) before `assign` can place it. This module knows the register
//! encoding only; where a BAR goes (host windows, bridge windows) is `window` and
//! `assign`.

use super::config::{Bdf, Command, ConfigAccess, reg};

/// Address space a BAR or window decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// I/O space.
    Io,
    /// 32-bit memory space.
    Mem32,
    /// 64-bit memory space.
    Mem64,
}

/// `I/O`, `mem32` or `mem64`, as the logs and the probe report print it.
impl core::fmt::Display for Space {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Space::Io => "I/O",
            Space::Mem32 => "mem32",
            Space::Mem64 => "mem64",
        })
    }
}

/// One Base Address Register after sizing (and perhaps assignment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// `None` if the slot is unimplemented or is the upper half of a 64-bit BAR.
    pub space: Option<Space>,
    /// Prefetchable bit (memory BARs only).
    pub prefetchable: bool,
    /// Decode size in bytes (a power of two), 0 if unimplemented.
    pub size: u64,
    /// PCI bus address programmed into the BAR; `None` until assigned.
    pub pci_addr: Option<u64>,
    /// CPU physical address of the same bytes; `None` until assigned.
    pub cpu_addr: Option<u64>,
}

impl Bar {
    /// An unimplemented slot.
    pub const UNUSED: Bar = Bar {
        space: None,
        prefetchable: false,
        size: 0,
        pci_addr: None,
        cpu_addr: None,
    };

    /// Whether the slot decodes anything.
    pub fn is_implemented(&self) -> bool {
        self.space.is_some() && self.size != 0
    }
}

/// Low bits of a BAR (PCI 3.0 §6.2.5.1): bit 0 I/O, [2:1] type, bit 3 prefetch.
const BAR_IO: u32 = 1;
const BAR_TYPE_64: u32 = 0b100;
const BAR_PREFETCH: u32 = 0b1000;

fn bar_off(index: usize) -> u16 {
    reg::BAR0 + 4 * index as u16
}

/// Sizes the first `count` BARs of `bdf` (6 for type 0, 2 for type 1).
///
/// Memory and I/O decode are turned off while all-ones sit in a BAR — otherwise
/// the function would briefly claim a huge window — and the command register and
/// every original BAR value are restored afterwards. A firmware assignment that
/// was present becomes `pci_addr` (CPU address still unknown until assignment).
pub fn size_bars<C: ConfigAccess + ?Sized>(access: &C, bdf: Bdf, count: usize) -> [Bar; 6] {
    let mut bars = [Bar::UNUSED; 6];
    let cmd = access.command(bdf);
    access.set_command(bdf, cmd - (Command::MEMORY_SPACE | Command::IO_SPACE));
    let mut i = 0;
    while i < count.min(6) {
        let off = bar_off(i);
        let orig = access.read32(bdf, off);
        access.write32(bdf, off, u32::MAX);
        let mask = access.read32(bdf, off);
        access.write32(bdf, off, orig);
        if mask == 0 || (mask == u32::MAX && orig == u32::MAX) {
            i += 1;
            continue;
        }
        if orig & BAR_IO != 0 {
            let m = u64::from(mask & !0x3);
            bars[i] = sized(Space::Io, false, m, u64::from(orig & !0x3));
            i += 1;
            continue;
        }
        let prefetchable = orig & BAR_PREFETCH != 0;
        let is64 = orig & 0b110 == BAR_TYPE_64;
        if !is64 {
            let m = u64::from(mask & !0xf);
            bars[i] = sized(Space::Mem32, prefetchable, m, u64::from(orig & !0xf));
            i += 1;
            continue;
        }
        if i + 1 >= count.min(6) {
            // A 64-bit BAR in the last slot is malformed (PCI 3.0 §6.2.5.1); skip it.
            break;
        }
        let hi = bar_off(i + 1);
        let orig_hi = access.read32(bdf, hi);
        access.write32(bdf, hi, u32::MAX);
        let mask_hi = access.read32(bdf, hi);
        access.write32(bdf, hi, orig_hi);
        let m = u64::from(mask_hi) << 32 | u64::from(mask & !0xf);
        let addr = u64::from(orig_hi) << 32 | u64::from(orig & !0xf);
        bars[i] = sized(Space::Mem64, prefetchable, m, addr);
        i += 2;
    }
    access.set_command(bdf, cmd);
    bars
}

fn sized(space: Space, prefetchable: bool, mask: u64, addr: u64) -> Bar {
    // Size = lowest writable address bit (robust to I/O BARs that decode 16 bits).
    let size = mask & mask.wrapping_neg();
    if size == 0 {
        return Bar::UNUSED;
    }
    Bar {
        space: Some(space),
        prefetchable,
        size,
        pci_addr: (addr != 0).then_some(addr),
        cpu_addr: None,
    }
}

/// Writes bus address `pci` into BAR `index` of `bdf` (both halves of a 64-bit BAR),
/// keeping the read-only type bits, with decode off for the write.
pub(crate) fn write_bar<C: ConfigAccess + ?Sized>(
    access: &C,
    bdf: Bdf,
    index: usize,
    bar: &Bar,
    pci: u64,
) {
    let cmd = access.command(bdf);
    access.set_command(bdf, cmd - (Command::MEMORY_SPACE | Command::IO_SPACE));
    let off = bar_off(index);
    let low_bits = access.read32(bdf, off)
        & if bar.space == Some(Space::Io) {
            0x3
        } else {
            0xf
        };
    access.write32(bdf, off, pci as u32 | low_bits);
    if bar.space == Some(Space::Mem64) {
        access.write32(bdf, off + 4, (pci >> 32) as u32);
    }
    access.set_command(bdf, cmd);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::fake::{FakeBar, FakeConfigSpace};

    fn b(bus: u8, dev: u8, func: u8) -> Bdf {
        Bdf::new(bus, dev, func).unwrap()
    }

    #[test]
    fn sizes_every_bar_kind_with_decode_off() {
        let cfg = FakeConfigSpace::new();
        let bdf = b(0, 1, 0);
        cfg.add_endpoint(bdf, 0x1af4, 0x1000, [2, 0, 0]);
        cfg.set_bar(bdf, 0, FakeBar::Io { size: 0x20 });
        cfg.set_bar(
            bdf,
            1,
            FakeBar::Mem32 {
                size: 0x1000,
                prefetchable: false,
            },
        );
        cfg.set_bar(
            bdf,
            2,
            FakeBar::Mem64 {
                size: 1 << 33,
                prefetchable: true,
            },
        );
        cfg.set_bar(
            bdf,
            5,
            FakeBar::Mem32 {
                size: 0x4000_0000,
                prefetchable: true,
            },
        );
        // Firmware left decode on: sizing must switch it off and restore it.
        cfg.set_command(bdf, Command::MEMORY_SPACE | Command::IO_SPACE);
        let bars = size_bars(&cfg, bdf, 6);
        assert_eq!(cfg.decode_violations(), 0);
        assert_eq!(cfg.command(bdf), Command::MEMORY_SPACE | Command::IO_SPACE);
        assert_eq!((bars[0].space, bars[0].size), (Some(Space::Io), 0x20));
        assert_eq!((bars[1].space, bars[1].size), (Some(Space::Mem32), 0x1000));
        assert_eq!(
            (bars[2].space, bars[2].size, bars[2].prefetchable),
            (Some(Space::Mem64), 1 << 33, true)
        );
        assert!(!bars[3].is_implemented() && !bars[4].is_implemented());
        assert_eq!((bars[5].size, bars[5].prefetchable), (0x4000_0000, true));
        assert!(bars.iter().all(|b| b.pci_addr.is_none()));
        // Registers restored to their pre-sizing values.
        assert_eq!(cfg.read32(bdf, reg::BAR0 + 8), 0b1100);
        assert_eq!(cfg.read32(bdf, reg::BAR0 + 12), 0);
    }

    #[test]
    fn sixty_four_bit_bar_in_last_slot_is_ignored() {
        let cfg = FakeConfigSpace::new();
        let bdf = b(0, 1, 0);
        cfg.add_endpoint(bdf, 0x1af4, 0x1000, [2, 0, 0]);
        cfg.set_bar(
            bdf,
            5,
            FakeBar::Mem64 {
                size: 0x1000,
                prefetchable: false,
            },
        );
        assert!(size_bars(&cfg, bdf, 6).iter().all(|b| !b.is_implemented()));
    }
}
