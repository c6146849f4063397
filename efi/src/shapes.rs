//! Hand-built ACPI tables and AML for the Parallels and VMware shapes.
//!
//! Used by this crate's tests and, through the `fixtures` feature, by the kernel's,
//! which run the device tree written from these tables through the kernel's own
//! parser.

use std::collections::BTreeMap;
use std::vec;
use std::vec::Vec;

use crate::fixtures::FixtureMemory;

/// Little-endian bytes of `v` in `n` bytes.
pub fn le(v: u64, n: usize) -> Vec<u8> {
    v.to_le_bytes()[..n].to_vec()
}

/// A table: header (checksum filled in) + body.
pub fn table(sig: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let len = 36 + body.len();
    let mut t = Vec::new();
    t.extend_from_slice(sig);
    t.extend(le(len as u64, 4));
    t.push(revision);
    t.push(0);
    t.extend_from_slice(b"HANDMD");
    t.extend_from_slice(b"CAPSTAN ");
    t.extend(le(1, 4));
    t.extend_from_slice(b"TEST");
    t.extend(le(1, 4));
    t.extend_from_slice(body);
    fix_checksum(&mut t, 9);
    t
}

/// Sets byte `at` so the bytes sum to zero.
pub fn fix_checksum(t: &mut [u8], at: usize) {
    t[at] = 0;
    let sum = t.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    t[at] = 0u8.wrapping_sub(sum);
}

/// Lays tables out in memory with an XSDT and an RSDP (revision 2) in front. The
/// DSDT, if given, is reached through the FADT's X_DSDT.
pub fn memory(tables: &[Vec<u8>], dsdt: Option<Vec<u8>>) -> FixtureMemory {
    let mut blobs = BTreeMap::new();
    let mut addr = 0x7000_0000u64;
    let mut ptrs = Vec::new();
    let dsdt_addr = 0x7800_0000u64;
    for t in tables {
        let mut t = t.clone();
        if &t[..4] == b"FACP" && dsdt.is_some() {
            t[140..148].copy_from_slice(&dsdt_addr.to_le_bytes());
            fix_checksum(&mut t, 9);
        }
        ptrs.extend(le(addr, 8));
        blobs.insert(addr, t);
        addr += 0x1000;
    }
    if let Some(d) = dsdt {
        blobs.insert(dsdt_addr, d);
    }
    let xsdt = table(b"XSDT", 1, &ptrs);
    let xsdt_addr = 0x6fff_0000u64;
    blobs.insert(xsdt_addr, xsdt);
    let mut rsdp = Vec::new();
    rsdp.extend_from_slice(b"RSD PTR ");
    rsdp.push(0);
    rsdp.extend_from_slice(b"HANDMD");
    rsdp.push(2);
    rsdp.extend(le(0, 4));
    rsdp.extend(le(36, 4));
    rsdp.extend(le(xsdt_addr, 8));
    rsdp.extend([0, 0, 0, 0]);
    fix_checksum(&mut rsdp[..20], 8);
    fix_checksum(&mut rsdp, 32);
    let rsdp_addr = 0x6ffe_0000;
    blobs.insert(rsdp_addr, rsdp);
    FixtureMemory {
        blobs,
        rsdp: rsdp_addr,
    }
}

/// MADT entries.
pub mod madt {
    use super::*;

    /// A GICC entry (ACPI 6.0, 80 bytes).
    pub fn gicc(uid: u32, mpidr: u64, gicc: u64, gicr: u64) -> Vec<u8> {
        let mut e = vec![0x0b, 80, 0, 0];
        e.extend(le(u64::from(uid), 4)); // CPU interface number
        e.extend(le(u64::from(uid), 4)); // ACPI processor UID
        e.extend(le(1, 4)); // enabled
        e.extend(le(0, 4)); // parking protocol
        e.extend(le(23, 4)); // PMU GSIV
        e.extend(le(0, 8)); // parked address
        e.extend(le(gicc, 8));
        e.extend(le(0, 8)); // GICV
        e.extend(le(0, 8)); // GICH
        e.extend(le(25, 4)); // VGIC maintenance
        e.extend(le(gicr, 8));
        e.extend(le(mpidr, 8));
        e.extend([0, 0, 0, 0]);
        assert_eq!(e.len(), 80);
        e
    }

    /// A GICD entry.
    pub fn gicd(base: u64, version: u8) -> Vec<u8> {
        let mut e = vec![0x0c, 24, 0, 0, 0, 0, 0, 0];
        e.extend(le(base, 8));
        e.extend(le(0, 4));
        e.extend([version, 0, 0, 0]);
        e
    }

    /// A GIC MSI frame entry; `spis` overrides its `MSI_TYPER`.
    pub fn msi_frame(base: u64, spis: Option<(u16, u16)>) -> Vec<u8> {
        let mut e = vec![0x0d, 24, 0, 0, 0, 0, 0, 0];
        e.extend(le(base, 8));
        e.extend(le(u64::from(spis.is_some()), 4));
        let (b, c) = spis.unwrap_or((0, 0));
        e.extend(le(u64::from(c), 2));
        e.extend(le(u64::from(b), 2));
        e
    }

    /// A GICR discovery range.
    pub fn gicr(base: u64, len: u32) -> Vec<u8> {
        let mut e = vec![0x0e, 16, 0, 0];
        e.extend(le(base, 8));
        e.extend(le(u64::from(len), 4));
        e
    }

    /// The MADT with `entries`.
    pub fn table(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut body = le(0, 8);
        for e in entries {
            body.extend_from_slice(e);
        }
        super::table(b"APIC", 4, &body)
    }
}

/// A GTDT with the four timer GSIVs (level, active high).
pub fn gtdt(secure: u32, ns: u32, virt: u32, el2: u32) -> Vec<u8> {
    let mut body = le(u64::MAX, 8);
    body.extend(le(0, 4));
    for g in [secure, ns, virt, el2] {
        body.extend(le(u64::from(g), 4));
        body.extend(le(0, 4));
    }
    body.extend(le(u64::MAX, 8));
    body.extend(le(0, 4));
    body.extend(le(0, 4));
    table(b"GTDT", 2, &body)
}

/// An SPCR for a UART of `interface` at `base` (GAS bit width / access size), GSIV.
pub fn spcr(interface: u8, base: u64, bits: u8, access: u8, gsiv: Option<u32>) -> Vec<u8> {
    let mut body = vec![interface, 0, 0, 0];
    body.extend([0, bits, 0, access]);
    body.extend(le(base, 8));
    body.push(if gsiv.is_some() { 0x08 } else { 0 });
    body.push(0);
    body.extend(le(u64::from(gsiv.unwrap_or(0)), 4));
    body.extend([7, 0, 1, 0, 0, 0]);
    body.extend(le(0xffff, 2));
    body.extend(le(0xffff, 2));
    body.extend([0; 3]);
    body.extend(le(0, 4));
    body.push(0);
    body.extend(le(0, 4));
    body.extend(le(0, 4));
    body.extend(le(0, 2));
    body.extend(le(0, 2));
    let mut t = table(b"SPCR", 2, &body);
    t.resize(80.max(t.len()), 0);
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    fix_checksum(&mut t, 9);
    t
}

/// A DBG2 with one serial port of `subtype` at `base`.
pub fn dbg2(subtype: u16, base: u64) -> Vec<u8> {
    let mut info = vec![0u8; 22];
    info[0] = 0;
    let len = 22 + 12 + 4 + 2;
    info[1..3].copy_from_slice(&(len as u16).to_le_bytes());
    info[3] = 1; // one register
    info[12..14].copy_from_slice(&0x8000u16.to_le_bytes());
    info[14..16].copy_from_slice(&subtype.to_le_bytes());
    info[18..20].copy_from_slice(&22u16.to_le_bytes()); // base address register offset
    info[20..22].copy_from_slice(&34u16.to_le_bytes()); // address size offset
    info.extend([0, 32, 0, 3]);
    info.extend(le(base, 8));
    info.extend(le(0x1000, 4));
    info.extend([b'.', 0]);
    let mut body = le(44, 4); // device info offset from table start
    body.extend(le(1, 4));
    body.extend(info);
    table(b"DBG2", 0, &body)
}

/// An MCFG with one segment.
pub fn mcfg(ecam: u64, buses: (u8, u8)) -> Vec<u8> {
    let mut body = le(0, 8);
    body.extend(le(ecam, 8));
    body.extend(le(0, 2));
    body.extend([buses.0, buses.1]);
    body.extend(le(0, 4));
    table(b"MCFG", 1, &body)
}

/// A FADT of ACPI 6 size with the ARM boot flags (PSCI, HVC).
pub fn fadt(psci: bool, hvc: bool) -> Vec<u8> {
    let mut body = vec![0u8; 276 - 36];
    let flags = u16::from(psci) | u16::from(hvc) << 1;
    body[129 - 36..131 - 36].copy_from_slice(&flags.to_le_bytes());
    table(b"FACP", 6, &body)
}

/// AML: a minimal assembler for the objects the walker reads.
pub mod aml {
    use super::*;

    fn pkg_len(body_len: usize) -> Vec<u8> {
        // Two-byte PkgLength (covers up to 4095 bytes, enough here).
        let len = body_len + 2;
        assert!(len < 0x1000);
        vec![0x40 | (len & 0x0f) as u8, (len >> 4) as u8]
    }

    /// `Scope(name) { body }`.
    pub fn scope(name: &[u8], body: &[u8]) -> Vec<u8> {
        let mut inner = name.to_vec();
        inner.extend_from_slice(body);
        let mut out = vec![0x10];
        out.extend(pkg_len(inner.len()));
        out.extend(inner);
        out
    }

    /// `Device(name) { body }`.
    pub fn device(name: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut inner = name.to_vec();
        inner.extend_from_slice(body);
        let mut out = vec![0x5b, 0x82];
        out.extend(pkg_len(inner.len()));
        out.extend(inner);
        out
    }

    /// `Name(name, value)`.
    pub fn name(name: &[u8; 4], value: &[u8]) -> Vec<u8> {
        let mut out = vec![0x08];
        out.extend_from_slice(name);
        out.extend_from_slice(value);
        out
    }

    /// A DWord integer.
    pub fn dword(v: u32) -> Vec<u8> {
        let mut out = vec![0x0c];
        out.extend(le(u64::from(v), 4));
        out
    }

    /// A string.
    pub fn string(s: &str) -> Vec<u8> {
        let mut out = vec![0x0d];
        out.extend_from_slice(s.as_bytes());
        out.push(0);
        out
    }

    /// `Buffer() { bytes }`.
    pub fn buffer(bytes: &[u8]) -> Vec<u8> {
        let mut inner = vec![0x0b];
        inner.extend(le(bytes.len() as u64, 2));
        inner.extend_from_slice(bytes);
        let mut out = vec![0x11];
        out.extend(pkg_len(inner.len()));
        out.extend(inner);
        out
    }

    /// `Package() { elements }` (each element already encoded).
    pub fn package(elements: &[Vec<u8>]) -> Vec<u8> {
        let mut inner = vec![elements.len() as u8];
        for e in elements {
            inner.extend_from_slice(e);
        }
        let mut out = vec![0x12];
        out.extend(pkg_len(inner.len()));
        out.extend(inner);
        out
    }

    /// Resource template: Memory32Fixed + one extended interrupt + end tag.
    pub fn mmio_irq(base: u32, len: u32, gsiv: u32) -> Vec<u8> {
        let mut r = vec![0x86, 9, 0, 1];
        r.extend(le(u64::from(base), 4));
        r.extend(le(u64::from(len), 4));
        r.extend([0x89, 6, 0, 0x01, 1]);
        r.extend(le(u64::from(gsiv), 4));
        r.extend([0x79, 0]);
        r
    }

    /// A DWordMemory producer window `min..=max` (translation 0) + end tag.
    pub fn window32(min: u32, max: u32) -> Vec<u8> {
        let mut r = vec![0x87, 0x17, 0, 0, 0x0c, 0x03];
        r.extend(le(0, 4));
        r.extend(le(u64::from(min), 4));
        r.extend(le(u64::from(max), 4));
        r.extend(le(0, 4));
        r.extend(le(u64::from(max - min + 1), 4));
        r.extend([0x79, 0]);
        r
    }

    /// A DSDT around `body`.
    pub fn dsdt(body: &[u8]) -> Vec<u8> {
        super::table(b"DSDT", 2, body)
    }
}

/// Parallels Desktop: a GICv3 with a v2m frame and no ITS, no IORT, no SPCR (the UART
/// from DBG2, its interrupt from the DSDT), PCI INTx through static GSIVs.
pub fn parallels() -> FixtureMemory {
    let com = aml::device(
        b"COM0",
        &[
            aml::name(b"_HID", &aml::string("ARMH0011")),
            aml::name(
                b"_CRS",
                &aml::buffer(&aml::mmio_irq(0x0211_0000, 0x1000, 32 + 1)),
            ),
        ]
        .concat(),
    );
    let prt: Vec<Vec<u8>> = (0..4u32)
        .map(|pin| {
            aml::package(&[
                aml::dword(0x0005_ffff),
                aml::dword(pin),
                vec![0],
                aml::dword(48 + pin),
            ])
        })
        .collect();
    let pci = aml::device(
        b"PCI0",
        &[
            aml::name(b"_HID", &aml::dword(0x080a_d041)), // EISAID("PNP0A08")
            aml::name(b"_SEG", &aml::dword(0)),
            aml::name(
                b"_CRS",
                &aml::buffer(&aml::window32(0x1000_0000, 0x1fff_ffff)),
            ),
            aml::name(b"_PRT", &aml::package(&prt)),
        ]
        .concat(),
    );
    let dsdt = aml::dsdt(&aml::scope(b"\\_SB_", &[com, pci].concat()));
    memory(
        &[
            fadt(true, true),
            madt::table(&[
                madt::gicd(0x0200_0000, 3),
                madt::gicr(0x0250_0000, 0x4_0000),
                madt::gicc(0, 0, 0, 0),
                madt::gicc(1, 1, 0, 0),
                madt::msi_frame(0x0225_0000, None),
            ]),
            gtdt(29, 30, 27, 26),
            dbg2(0x0003, 0x0211_0000),
            mcfg(0x3000_0000, (0, 15)),
        ],
        Some(dsdt),
    )
}

/// VMware Fusion: a 16550 named by SPCR, the physical timer from the GTDT (the
/// virtual one is not delivered), a GICv3 whose redistributors come from the GICC
/// entries, and RAM that starts at 0x8000_0000 in the UEFI memory map.
pub fn vmware() -> FixtureMemory {
    memory(
        &[
            fadt(true, false),
            madt::table(&[
                madt::gicd(0x0900_0000, 3),
                madt::gicc(0, 0, 0, 0x0910_0000),
                madt::gicc(1, 1, 0, 0x0912_0000),
            ]),
            gtdt(29, 30, 27, 26),
            spcr(0x00, 0x0a00_0000, 8, 1, Some(32 + 10)),
        ],
        None,
    )
}
