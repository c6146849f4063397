//! ACPI table sets for the host tests: captured from QEMU's EDK2
//! (`scripts/dump-acpi`) or built by hand in the shape of Parallels and VMware.

use std::collections::BTreeMap;
use std::vec::Vec;

use crate::acpi::{Memory, Tables};

/// Physical memory holding a set of tables.
pub struct FixtureMemory {
    /// Contiguous blobs by physical address.
    pub blobs: BTreeMap<u64, Vec<u8>>,
    /// Where the RSDP is.
    pub rsdp: u64,
}

impl Memory for FixtureMemory {
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let (&start, blob) = self.blobs.range(..=addr).next_back()?;
        let off = usize::try_from(addr - start).ok()?;
        blob.get(off..off.checked_add(len)?)
    }
}

impl FixtureMemory {
    /// The checked table set.
    pub fn tables(&self) -> Tables<'_> {
        Tables::new(self, self.rsdp).unwrap()
    }

    /// The DSDT's bytes.
    pub fn dsdt(&self) -> Vec<u8> {
        self.tables().find(b"DSDT").unwrap().bytes.to_vec()
    }
}

/// Loads `efi/fixtures/<name>.acpi` (lines `acpi-rsdp ADDR`, `acpi-dump ADDR HEX`).
pub fn load(name: &str) -> FixtureMemory {
    let text = match name {
        "qemu-gicv2" => include_str!("../fixtures/qemu-gicv2.acpi"),
        "qemu-gicv3" => include_str!("../fixtures/qemu-gicv3.acpi"),
        "qemu-gicv3-noits" => include_str!("../fixtures/qemu-gicv3-noits.acpi"),
        _ => panic!("no fixture {name}"),
    };
    let mut chunks = BTreeMap::new();
    let mut rsdp = 0;
    for line in text.lines() {
        let mut w = line.split_whitespace();
        match (w.next(), w.next(), w.next()) {
            (Some("acpi-rsdp"), Some(a), None) => rsdp = parse_addr(a),
            (Some("acpi-dump"), Some(a), Some(hex)) => {
                chunks.insert(parse_addr(a), parse_hex(hex));
            }
            _ => {}
        }
    }
    let mut blobs: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut current: Option<(u64, Vec<u8>)> = None;
    for (addr, bytes) in chunks {
        match &mut current {
            Some((start, b)) if *start + b.len() as u64 == addr => b.extend(bytes),
            _ => {
                if let Some((s, b)) = current.take() {
                    blobs.insert(s, b);
                }
                current = Some((addr, bytes));
            }
        }
    }
    if let Some((s, b)) = current {
        blobs.insert(s, b);
    }
    FixtureMemory { blobs, rsdp }
}

fn parse_addr(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// Bytes from hex text.
pub fn parse_hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}
