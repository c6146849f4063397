//! INTx routing: the host bridge's DT `interrupt-map` as a lookup table.
//!
//! Legacy PCI interrupts (INTA#..INTD#) do not carry their own number; the
//! board wires each (slot, pin) to an interrupt-controller input, and on QEMU
//! `virt` that wiring is the swizzle `(slot + pin − 1) % 4` onto SPIs 3–6
//! (INTIDs 35–38). The device tree describes it in the host bridge's
//! `interrupt-map` and `interrupt-map-mask` (Devicetree Specification v0.4
//! §2.4.3, "Interrupt Nexus Properties"; PCI bus binding: child unit address is
//! the 3-cell `phys.hi phys.mid phys.lo` with the BDF in `phys.hi`, child
//! interrupt specifier is the pin, 1 = INTA). The parent specifier follows the
//! GIC binding (`<type number flags>`). INTx lines are level-triggered and may
//! be shared by several functions.

use heapless::Vec;

use caps::irq::Trigger;

use super::config::Bdf;

/// Most `interrupt-map` entries kept (QEMU's device tree has 16: 4 slots × 4 pins; its
/// ACPI `_PRT`, and so the tree `capstan.efi` writes, 128: 32 slots × 4 pins).
pub const MAX_ENTRIES: usize = 128;

/// Why an `interrupt-map` was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntxError {
    /// Truncated entry, wrong mask length, or child cell counts other than 3 + 1.
    Malformed,
    /// An entry names a parent phandle the resolver does not know.
    UnknownParent(u32),
    /// A parent specifier is not a GIC SPI/PPI `<type number flags>`.
    UnsupportedSpecifier,
    /// More than [`MAX_ENTRIES`] entries.
    TooMany,
}

impl core::fmt::Display for IntxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            IntxError::Malformed => write!(f, "an entry is malformed"),
            IntxError::UnknownParent(p) => {
                write!(f, "an entry names an unknown interrupt parent ({p:#x})")
            }
            IntxError::UnsupportedSpecifier => {
                write!(f, "an entry's interrupt is not a GIC SPI or PPI")
            }
            IntxError::TooMany => write!(f, "too many entries"),
        }
    }
}

/// One decoded map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntxEntry {
    /// Child unit address `phys.hi, phys.mid, phys.lo`.
    pub child: [u32; 3],
    /// Child pin (1..=4).
    pub pin: u32,
    /// Interrupt parent phandle.
    pub parent: u32,
    /// GIC INTID (SPI n → 32 + n, PPI n → 16 + n).
    pub intid: u32,
    /// Trigger from the GIC flags cell.
    pub trigger: Trigger,
}

/// The parsed `interrupt-map` with its mask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntxMap {
    mask: [u32; 4],
    entries: Vec<IntxEntry, MAX_ENTRIES>,
}

fn be_cells(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

/// `phys.hi` of a function's configuration space (bus [23:16], device [15:11],
/// function [10:8]; IEEE 1275 PCI binding §2.2.1.1).
pub const fn phys_hi(bdf: Bdf) -> u32 {
    (bdf.bus as u32) << 16 | ((bdf.dev & 0x1f) as u32) << 11 | ((bdf.func & 7) as u32) << 8
}

/// Decodes a GIC `<type number flags>` specifier (GIC DT binding: type 0 = SPI,
/// 1 = PPI; flags [3:0]: 1/2 edge, 4/8 level).
pub fn gic_specifier(spec: [u32; 3]) -> Option<(u32, Trigger)> {
    let intid = match spec[0] {
        0 if spec[1] < 988 => spec[1] + 32,
        1 if spec[1] < 16 => spec[1] + 16,
        _ => return None,
    };
    let trigger = match spec[2] & 0xf {
        1 | 2 => Trigger::Edge,
        4 | 8 => Trigger::Level,
        _ => return None,
    };
    Some((intid, trigger))
}

impl IntxMap {
    /// A map with no entries: every INTx route lookup fails (the bridge's
    /// `interrupt-map` was absent or unusable; MSIs still work).
    pub const fn empty() -> Self {
        IntxMap {
            mask: [0; 4],
            entries: Vec::new(),
        }
    }

    /// Parses `interrupt-map` and `interrupt-map-mask` (raw big-endian property
    /// bytes) of a PCI host bridge with `#address-cells = 3` and
    /// `#interrupt-cells = 1`. `parent_cells(phandle)` returns the parent's
    /// `(#address-cells, #interrupt-cells)` — `#address-cells` defaults to 0
    /// when the parent has none, as in Linux `of_irq_parse_raw`.
    pub fn parse(
        map: &[u8],
        mask: &[u8],
        parent_cells: impl Fn(u32) -> Option<(usize, usize)>,
    ) -> Result<IntxMap, IntxError> {
        if mask.len() != 16 || !map.len().is_multiple_of(4) {
            return Err(IntxError::Malformed);
        }
        let mut m = [0u32; 4];
        for (slot, v) in m.iter_mut().zip(be_cells(mask)) {
            *slot = v;
        }
        let cells: Vec<u32, { MAX_ENTRIES * 12 }> = be_cells(map).take(MAX_ENTRIES * 12).collect();
        if map.len() / 4 > cells.len() {
            return Err(IntxError::TooMany);
        }
        let mut entries = Vec::new();
        let mut rest = &cells[..];
        while !rest.is_empty() {
            let head = rest.get(..5).ok_or(IntxError::Malformed)?;
            let parent = head[4];
            let (addr, intr) = parent_cells(parent).ok_or(IntxError::UnknownParent(parent))?;
            let spec = rest
                .get(5 + addr..5 + addr + intr)
                .ok_or(IntxError::Malformed)?;
            if intr < 3 {
                return Err(IntxError::UnsupportedSpecifier);
            }
            let (intid, trigger) = gic_specifier([spec[0], spec[1], spec[2]])
                .ok_or(IntxError::UnsupportedSpecifier)?;
            let entry = IntxEntry {
                child: [head[0], head[1], head[2]],
                pin: head[3],
                parent,
                intid,
                trigger,
            };
            entries.push(entry).map_err(|_| IntxError::TooMany)?;
            rest = &rest[5 + addr + intr..];
        }
        Ok(IntxMap { mask: m, entries })
    }

    /// The INTID and trigger `pin` (1..=4) of the root-bus function `bdf` is
    /// wired to. For a function behind bridges pass its
    /// [`super::scan::PciFunction::intx_root`], which has the swizzle applied.
    pub fn route(&self, bdf: Bdf, pin: u8) -> Option<(u32, Trigger)> {
        if !(1..=4).contains(&pin) {
            return None;
        }
        let key = [phys_hi(bdf), 0, 0, u32::from(pin)];
        let m = self.mask;
        let masked = |k: [u32; 4]| [k[0] & m[0], k[1] & m[1], k[2] & m[2], k[3] & m[3]];
        let want = masked(key);
        self.entries
            .iter()
            .find(|e| masked([e.child[0], e.child[1], e.child[2], e.pin]) == want)
            .map(|e| (e.intid, e.trigger))
    }

    /// The decoded entries.
    pub fn entries(&self) -> &[IntxEntry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::dt::host_bridge;

    const FIXTURE: &[u8] = include_bytes!("fixtures/virt-pci.dtb");

    fn qemu_map() -> IntxMap {
        let fdt = fdt::Fdt::new(FIXTURE).unwrap();
        host_bridge(&fdt).unwrap().intx
    }

    #[test]
    fn qemu_fixture_swizzle_onto_spis_3_to_6() {
        let map = qemu_map();
        assert_eq!(map.entries().len(), 16);
        for slot in 0..32u8 {
            for pin in 1..=4u8 {
                let bdf = Bdf::new(0, slot, 0).unwrap();
                let spi = (u32::from(slot) + u32::from(pin) - 1) % 4 + 3;
                assert_eq!(
                    map.route(bdf, pin),
                    Some((32 + spi, Trigger::Level)),
                    "{bdf} pin {pin}"
                );
                // The function number does not matter (mask 0x1800 keeps [12:11]).
                let f5 = Bdf::new(0, slot, 5).unwrap();
                assert_eq!(map.route(f5, pin), map.route(bdf, pin));
            }
        }
        // Two edu devices on slots 2 and 6 share INTA → SPI 5 (INTID 37).
        let s2 = map.route(Bdf::new(0, 2, 0).unwrap(), 1);
        let s6 = map.route(Bdf::new(0, 6, 0).unwrap(), 1);
        assert_eq!(
            (s2, s6),
            (Some((37, Trigger::Level)), Some((37, Trigger::Level)))
        );
        assert_eq!(map.route(Bdf::new(0, 1, 0).unwrap(), 0), None);
        assert_eq!(map.route(Bdf::new(0, 1, 0).unwrap(), 5), None);
    }

    fn be(cells: &[u32]) -> std::vec::Vec<u8> {
        cells.iter().flat_map(|c| c.to_be_bytes()).collect()
    }

    #[test]
    fn parent_cells_come_from_the_resolver() {
        // Parent with #address-cells = 0 (some boards) and an edge PPI entry.
        let map = be(&[0x800, 0, 0, 1, 7, 0, 9, 4, 0x1000, 0, 0, 1, 7, 1, 3, 1]);
        let mask = be(&[0x1800, 0, 0, 7]);
        let m = IntxMap::parse(&map, &mask, |p| (p == 7).then_some((0, 3))).unwrap();
        assert_eq!(
            m.route(Bdf::new(0, 1, 0).unwrap(), 1),
            Some((41, Trigger::Level))
        );
        assert_eq!(
            m.route(Bdf::new(0, 2, 0).unwrap(), 1),
            Some((19, Trigger::Edge))
        );
        assert_eq!(m.route(Bdf::new(0, 3, 0).unwrap(), 1), None);
    }

    #[test]
    fn malformed_maps_are_errors() {
        let mask = be(&[0x1800, 0, 0, 7]);
        let cells = |_| Some((2, 3));
        let ok = be(&[0, 0, 0, 1, 1, 0, 0, 0, 3, 4]);
        assert!(IntxMap::parse(&ok, &mask, cells).is_ok());
        assert_eq!(
            IntxMap::parse(&ok[..36], &mask, cells),
            Err(IntxError::Malformed)
        );
        assert_eq!(
            IntxMap::parse(&ok, &mask[..12], cells),
            Err(IntxError::Malformed)
        );
        assert_eq!(
            IntxMap::parse(&ok, &mask, |_| None),
            Err(IntxError::UnknownParent(1))
        );
        let lpi = be(&[0, 0, 0, 1, 1, 0, 0, 2, 3, 4]);
        assert_eq!(
            IntxMap::parse(&lpi, &mask, cells),
            Err(IntxError::UnsupportedSpecifier)
        );
        assert_eq!(
            IntxMap::parse(&ok, &mask, |_| Some((2, 1))),
            Err(IntxError::UnsupportedSpecifier)
        );
        let big: std::vec::Vec<u32> = (0..MAX_ENTRIES + 1)
            .flat_map(|_| [0, 0, 0, 1, 1, 0, 0, 0, 3, 4])
            .collect();
        assert_eq!(
            IntxMap::parse(&be(&big), &mask, cells),
            Err(IntxError::TooMany)
        );
    }
}
