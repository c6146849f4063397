//! PCI configuration space: addresses, the access trait, and ECAM.
//!
//! Every other PCI module (scan, BAR sizing, capability walk, MSI programming)
//! is written against [`ConfigAccess`], so it runs unchanged over the real
//! memory-mapped ECAM window on QEMU `virt` and over the host tests'
//! `FakeConfigSpace`. The ECAM layout is PCIe Base 4.0 §7.2.2 (Enhanced
//! Configuration Access Mechanism): 4 KiB per function, 1 MiB per bus. The
//! register offsets below are the type 0/1 headers of PCI Local Bus 3.0 §6.1
//! and PCI-to-PCI Bridge 1.2 §3.2.

use core::fmt;

use bitflags::bitflags;

use crate::mmio::Mmio;

/// Bus/device/function address of one PCI function (PCI Local Bus 3.0 §3.2.2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    /// Bus number, 0..=255.
    pub bus: u8,
    /// Device (slot) number, 0..=31.
    pub dev: u8,
    /// Function number, 0..=7.
    pub func: u8,
}

impl Bdf {
    /// A BDF; `None` if `dev > 31` or `func > 7`.
    pub const fn new(bus: u8, dev: u8, func: u8) -> Option<Self> {
        if dev < 32 && func < 8 {
            Some(Bdf { bus, dev, func })
        } else {
            None
        }
    }

    /// The 16-bit requester ID (`bus << 8 | dev << 3 | func`), e.g. the ITS DeviceID.
    pub const fn requester_id(self) -> u16 {
        ((self.bus as u16) << 8) | (((self.dev & 0x1f) as u16) << 3) | (self.func & 7) as u16
    }
}

impl Bdf {
    /// Reads `BB:DD.F` in hex as `Display` writes it (`00:02.0`); `None` if malformed.
    pub fn parse(s: &str) -> Option<Bdf> {
        let (bus, rest) = s.split_once(':')?;
        let (dev, func) = rest.split_once('.')?;
        let hex = |t: &str| {
            (!t.is_empty() && t.len() <= 2)
                .then(|| u8::from_str_radix(t, 16).ok())
                .flatten()
        };
        let func = (func.len() == 1)
            .then(|| func.parse::<u8>().ok())
            .flatten()?;
        Bdf::new(hex(bus)?, hex(dev)?, func)
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.dev, self.func)
    }
}

/// Configuration-space register offsets (PCI Local Bus 3.0 §6.1, Figure 6-1).
pub mod reg {
    /// Vendor ID (16 bits); 0xffff means no function is present.
    pub const VENDOR_ID: u16 = 0x00;
    /// Device ID (16 bits).
    pub const DEVICE_ID: u16 = 0x02;
    /// Command register (16 bits), §6.2.2.
    pub const COMMAND: u16 = 0x04;
    /// Status register (16 bits), §6.2.3; bit 4 = capability list present.
    pub const STATUS: u16 = 0x06;
    /// Revision ID (8) then class code: prog-if, subclass, base class.
    pub const REVISION: u16 = 0x08;
    /// Header type (8 bits): [6:0] layout, bit 7 multi-function.
    pub const HEADER_TYPE: u16 = 0x0e;
    /// First Base Address Register, §6.2.5.1.
    pub const BAR0: u16 = 0x10;
    /// Capabilities pointer (8 bits), §6.7.
    pub const CAP_PTR: u16 = 0x34;
    /// Interrupt line (8 bits, software scratch).
    pub const INTERRUPT_LINE: u16 = 0x3c;
    /// Interrupt pin (8 bits): 0 none, 1..=4 INTA#..INTD#.
    pub const INTERRUPT_PIN: u16 = 0x3d;
    /// Type 1: primary bus number (PCI-to-PCI Bridge 1.2 §3.2.5.2).
    pub const PRIMARY_BUS: u16 = 0x18;
    /// Type 1: secondary bus number (§3.2.5.3).
    pub const SECONDARY_BUS: u16 = 0x19;
    /// Type 1: subordinate bus number (§3.2.5.4).
    pub const SUBORDINATE_BUS: u16 = 0x1a;
    /// Type 1: I/O base (8 bits; [7:4] = address bits 15:12, [3:0] = 0 16-bit,
    /// 1 32-bit decode), PCI-to-PCI Bridge 1.2 §3.2.5.6. Shares its dword with the
    /// secondary status register, whose bits are write-one-to-clear.
    pub const IO_BASE: u16 = 0x1c;
    /// Type 1: I/O limit (8 bits, same encoding; the limit is inclusive).
    pub const IO_LIMIT: u16 = 0x1d;
    /// Type 1: memory base (16 bits; [15:4] = address bits 31:20), §3.2.5.8.
    pub const MEMORY_BASE: u16 = 0x20;
    /// Type 1: memory limit (16 bits, same encoding, inclusive).
    pub const MEMORY_LIMIT: u16 = 0x22;
    /// Type 1: prefetchable memory base (16 bits; [15:4] = bits 31:20, [3:0] = 0
    /// 32-bit, 1 64-bit), §3.2.5.9.
    pub const PREF_BASE: u16 = 0x24;
    /// Type 1: prefetchable memory limit (16 bits, same encoding, inclusive).
    pub const PREF_LIMIT: u16 = 0x26;
    /// Type 1: prefetchable base, address bits 63:32, §3.2.5.10.
    pub const PREF_BASE_UPPER: u16 = 0x28;
    /// Type 1: prefetchable limit, address bits 63:32.
    pub const PREF_LIMIT_UPPER: u16 = 0x2c;
    /// Type 1: I/O base, address bits 31:16 (16 bits), §3.2.5.7.
    pub const IO_BASE_UPPER: u16 = 0x30;
    /// Type 1: I/O limit, address bits 31:16 (16 bits).
    pub const IO_LIMIT_UPPER: u16 = 0x32;
    /// First extended capability (PCIe Base 4.0 §7.6).
    pub const EXT_CAP_START: u16 = 0x100;
}

/// Status bit 4: the function implements a capability list (PCI 3.0 §6.2.3).
pub const STATUS_CAP_LIST: u16 = 1 << 4;
/// Status bit 3: the function's INTx is asserted internally (PCI 3.0 §6.2.3).
pub const STATUS_INTERRUPT: u16 = 1 << 3;
/// Header type bit 7: the device implements functions 1..=7 (PCI 3.0 §6.2.1).
pub const HEADER_MULTIFUNCTION: u8 = 0x80;

bitflags! {
    /// Command register bits (PCI Local Bus 3.0 §6.2.2, PCIe Base 4.0 §7.5.1.1.3).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Command: u16 {
        /// I/O Space enable.
        const IO_SPACE = 1 << 0;
        /// Memory Space enable.
        const MEMORY_SPACE = 1 << 1;
        /// Bus Master enable (the function may issue DMA and MSI writes).
        const BUS_MASTER = 1 << 2;
        /// Interrupt Disable: the function may not assert INTx.
        const INTX_DISABLE = 1 << 10;
    }
}

/// Reads and writes of configuration space.
///
/// `offset` is a byte offset into the function's 4 KiB space; `read32`/`write32`
/// use it dword-aligned (the low two bits are ignored). Absent functions read
/// as all-ones and ignore writes, as on real hardware (PCIe 4.0 §2.3.2).
pub trait ConfigAccess {
    /// Reads the dword at `offset & !3`.
    fn read32(&self, bdf: Bdf, offset: u16) -> u32;
    /// Writes the dword at `offset & !3`.
    fn write32(&self, bdf: Bdf, offset: u16, value: u32);

    /// Reads the 16-bit field at `offset` (must be 2-byte aligned).
    fn read16(&self, bdf: Bdf, offset: u16) -> u16 {
        (self.read32(bdf, offset & !3) >> ((offset & 2) * 8)) as u16
    }

    /// Reads the byte at `offset`.
    fn read8(&self, bdf: Bdf, offset: u16) -> u8 {
        (self.read32(bdf, offset & !3) >> ((offset & 3) * 8)) as u8
    }

    /// Writes the 16-bit field at `offset` by read-modify-write of its dword.
    ///
    /// Writing `COMMAND` (or a bridge's I/O base and limit) leaves the `STATUS` (or
    /// secondary status) half zero: its bits are read-only or write-one-to-clear
    /// (PCI 3.0 §6.2.3), so writing back what was read would clear latched error bits.
    fn write16(&self, bdf: Bdf, offset: u16, value: u16) {
        let shift = (offset & 2) * 8;
        let aligned = offset & !3;
        let old = if offset == reg::COMMAND || offset == reg::IO_BASE {
            0
        } else {
            self.read32(bdf, aligned) & !(0xffff << shift)
        };
        self.write32(bdf, aligned, old | (u32::from(value) << shift));
    }

    /// Reads `COMMAND` as flags (unknown bits are kept).
    fn command(&self, bdf: Bdf) -> Command {
        Command::from_bits_retain(self.read16(bdf, reg::COMMAND))
    }

    /// Writes `COMMAND`.
    fn set_command(&self, bdf: Bdf, cmd: Command) {
        self.write16(bdf, reg::COMMAND, cmd.bits());
    }
}

impl<C: ConfigAccess + ?Sized> ConfigAccess for &C {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        (**self).read32(bdf, offset)
    }
    fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
        (**self).write32(bdf, offset, value)
    }
}

/// Byte offset of a configuration register inside an ECAM window whose first
/// bus is bus 0 (PCIe Base 4.0 §7.2.2, Table 7-1).
pub const fn ecam_offset(bdf: Bdf, offset: u16) -> usize {
    ((bdf.bus as usize) << 20)
        | (((bdf.dev & 0x1f) as usize) << 15)
        | (((bdf.func & 7) as usize) << 12)
        | (offset as usize & 0xffc)
}

/// Layout marker for a full 256-bus ECAM window (never instantiated).
struct EcamWindow {
    _bytes: [u8; 256 << 20],
}

/// Memory-mapped ECAM configuration access (`pci-host-ecam-generic`).
pub struct Ecam {
    regs: Mmio<EcamWindow>,
    bus_start: u8,
    bus_end: u8,
}

impl Ecam {
    /// Wraps the ECAM window mapped at virtual address `base`, whose first 1 MiB
    /// is bus `bus_start` (the DT `bus-range`), covering buses up to `bus_end`.
    ///
    /// # Safety
    /// `base` is the virtual address of `(bus_end - bus_start + 1) << 20` bytes of
    /// device memory mapping the host bridge's ECAM `reg`, valid for the life of
    /// the value, and no other code accesses configuration space while it exists.
    #[must_use]
    pub const unsafe fn new(base: usize, bus_start: u8, bus_end: u8) -> Self {
        Ecam {
            // SAFETY: the caller hands over an exclusive mapping of the window;
            // every access below is bounded to the buses it covers.
            regs: unsafe { Mmio::new(base) },
            bus_start,
            bus_end,
        }
    }

    fn offset(&self, bdf: Bdf, offset: u16) -> Option<usize> {
        if bdf.bus < self.bus_start || bdf.bus > self.bus_end {
            return None;
        }
        let rel = Bdf {
            bus: bdf.bus - self.bus_start,
            ..bdf
        };
        Some(ecam_offset(rel, offset))
    }

    /// The buses this window decodes.
    pub fn bus_range(&self) -> (u8, u8) {
        (self.bus_start, self.bus_end)
    }
}

impl ConfigAccess for Ecam {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        match self.offset(bdf, offset) {
            Some(off) => self.regs.read32(off),
            None => u32::MAX,
        }
    }

    fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
        if let Some(off) = self.offset(bdf, offset) {
            self.regs.write32(off, value);
        }
    }
}

/// The quiet check of one function's share of an INTx line: its Interrupt Status bit.
pub struct IntxStatus<'a, A: ConfigAccess> {
    /// Configuration access to the function.
    pub config: &'a A,
    /// The function.
    pub bdf: Bdf,
}

impl<A: ConfigAccess> Clone for IntxStatus<'_, A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A: ConfigAccess> Copy for IntxStatus<'_, A> {}

// SAFETY: a PCI function asserts INTx exactly while its Status register's Interrupt Status
// bit is set and its Command register's Interrupt Disable bit is clear (PCI 3.0 §6.2.3);
// `is_quiet` reads that bit from the function through configuration space. An absent
// function reads all-ones: never quiet, so a vanished sharer keeps the line masked rather
// than unmasking an unknown level.
unsafe impl<A: ConfigAccess> caps::quiet::QuietCheck for IntxStatus<'_, A> {
    fn is_quiet(&self, _: &caps::quiet::Seal) -> bool {
        self.config.read16(self.bdf, reg::STATUS) & STATUS_INTERRUPT == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::fake::FakeConfigSpace;

    #[test]
    fn bdf_parses_what_display_writes_and_nothing_else() {
        let b = Bdf::new(0x1f, 0x1e, 7).unwrap();
        assert_eq!(Bdf::parse(&std::format!("{b}")), Some(b));
        assert_eq!(Bdf::parse("00:02.0"), Bdf::new(0, 2, 0));
        for bad in [
            "", "00:02", "0002.0", "00:20.0", "00:02.8", "100:02.0", "00:02.00", "zz:02.0", ":02.0",
        ] {
            assert_eq!(Bdf::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ecam_offsets() {
        let b = |bus, dev, func| Bdf::new(bus, dev, func).unwrap();
        assert_eq!(ecam_offset(b(0, 0, 0), 0), 0);
        assert_eq!(ecam_offset(b(0, 1, 0), 0x10), 0x8010);
        assert_eq!(ecam_offset(b(1, 2, 3), 0x3c), 0x0011_303c);
        assert_eq!(ecam_offset(b(255, 31, 7), 0xffc), 0x0fff_fffc);
        // Sub-dword offsets address their dword.
        assert_eq!(ecam_offset(b(0, 0, 0), 0x3d), 0x3c);
        assert!(Bdf::new(0, 32, 0).is_none() && Bdf::new(0, 0, 8).is_none());
        assert_eq!(b(1, 2, 3).requester_id(), 0x0113);
    }

    #[test]
    fn ecam_over_fake_memory_bounds_buses() {
        // Two buses of fake ECAM (bus-range 4..=5): 2 MiB.
        let mut mem = std::vec![0u32; (2 << 20) / 4];
        let base = mem.as_mut_ptr() as usize;
        // SAFETY: `mem` is 2 MiB, aligned for u32, outlives `ecam`, and only
        // `ecam` touches it until it is dropped.
        let ecam = unsafe { Ecam::new(base, 4, 5) };
        let bdf = Bdf::new(5, 1, 2).unwrap();
        ecam.write32(bdf, 0x10, 0xdead_beef);
        assert_eq!(ecam.read32(bdf, 0x10), 0xdead_beef);
        assert_eq!(ecam.read16(bdf, 0x12), 0xdead);
        assert_eq!(ecam.read8(bdf, 0x11), 0xbe);
        // Out-of-range buses read all-ones and drop writes.
        let outside = Bdf::new(6, 0, 0).unwrap();
        assert_eq!(ecam.read32(outside, 0), u32::MAX);
        ecam.write32(outside, 0, 0);
        assert_eq!(
            mem[((1 << 20) | (1 << 15) | (2 << 12) | 0x10) / 4],
            0xdead_beef
        );
    }

    #[test]
    fn write16_preserves_neighbours_but_not_status() {
        let cfg = FakeConfigSpace::new();
        let bdf = Bdf::new(0, 1, 0).unwrap();
        cfg.add_endpoint(bdf, 0x1234, 0x11e8, [0xff, 0, 0]);
        cfg.poke16(bdf, reg::STATUS, 0x8010);
        cfg.set_command(bdf, Command::MEMORY_SPACE | Command::BUS_MASTER);
        assert_eq!(
            cfg.command(bdf),
            Command::MEMORY_SPACE | Command::BUS_MASTER
        );
        // The status half of the dword was written as zero (no RW1C clearing).
        assert_eq!(cfg.last_write(bdf, reg::COMMAND), Some(0x0000_0006));
        assert_eq!(cfg.read16(bdf, reg::STATUS), 0x8010);
        // Writing STATUS keeps COMMAND.
        cfg.write16(bdf, reg::STATUS, 0x8000);
        assert_eq!(cfg.last_write(bdf, reg::STATUS), Some(0x8000_0006));
        // Other 16-bit fields keep their dword neighbours.
        cfg.poke32(bdf, 0x3c, 0x0000_01ff);
        cfg.write16(bdf, 0x3e, 0xabcd);
        assert_eq!(cfg.last_write(bdf, 0x3c), Some(0xabcd_01ff));
    }

    #[test]
    fn intx_quiet_check_reads_the_interrupt_status_bit() {
        use caps::irq::Trigger;
        use caps::quiet::{peek, quiesce};
        let cfg = FakeConfigSpace::new();
        let bdf = Bdf::new(0, 3, 0).unwrap();
        cfg.add_endpoint(bdf, 0x1234, 0x11e8, [0, 0, 0xff]);
        let status = IntxStatus { config: &cfg, bdf };
        let (gic, line) = caps::fakes::fired_line(35, Trigger::Level);
        cfg.poke16(bdf, reg::STATUS, STATUS_INTERRUPT | STATUS_CAP_LIST);
        assert!(!peek(&status));
        let line = quiesce(line, &status).expect_err("INTx still asserted");
        cfg.poke16(bdf, reg::STATUS, STATUS_CAP_LIST);
        let (quiet, line) = quiesce(line, &status).expect("deasserted");
        let _armed = line.rearm(quiet);
        assert!(!gic.is_masked(35));
        let gone = IntxStatus {
            config: &cfg,
            bdf: Bdf::new(0, 9, 0).unwrap(),
        };
        assert!(
            !peek(&gone),
            "an absent function reads all-ones: never quiet"
        );
    }
}
