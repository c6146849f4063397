//! From ACPI tables to the device tree the kernel reads: QEMU's captured tables,
//! the Parallels and VMware shapes built by hand, and malformed tables.

use std::string::String;

use std::vec::Vec;

use crate::shapes::{self as build, madt};

use crate::acpi::AcpiError;
use crate::describe::describe;
use crate::devicetree::{self, Boot};
use crate::fixtures::{self, FixtureMemory};
use crate::platform::*;

fn describe_mem(mem: &FixtureMemory) -> Result<Description, AcpiError> {
    let mut report = String::new();
    describe(mem, mem.rsdp, &mut report)
}

/// Writes the tree and returns it (checked by the `fdt` crate and drivers' parsers).
fn tree(d: &Description, ram: &[(u64, u64)]) -> Vec<u8> {
    let mut buf = std::vec![0u8; 256 * 1024];
    let boot = Boot {
        ram,
        bootargs: "test",
        report: None,
        firmware: "UEFI test",
        initrd: Some((0x4800_0000, 0x4810_0000)),
    };
    let n = devicetree::write(d, &boot, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn qemu_gicv2() {
    let d = describe_mem(&fixtures::load("qemu-gicv2")).unwrap();
    assert_eq!(d.cpus.as_slice(), &[0, 1]);
    assert_eq!(d.gic.version, GicVersion::V2);
    assert_eq!((d.gic.gicd, d.gic.gicc), (0x0800_0000, 0x0801_0000));
    assert_eq!(
        d.gic.msi_frames.as_slice(),
        &[MsiFrame {
            base: 0x0802_0000,
            spis: Some((80, 64))
        }]
    );
    assert_eq!(d.timer.ns_el1.gsiv, 30);
    assert_eq!(d.timer.virt.gsiv, 27);
    assert_eq!(d.serial.kind, SerialKind::Pl011);
    assert_eq!(d.serial.base, 0x0900_0000);
    assert_eq!(d.serial.irq.map(|g| g.gsiv), Some(33));
    assert_eq!(d.psci, Some(Conduit::Hvc));
    let pci = &d.pci[0];
    assert_eq!(
        (pci.ecam, pci.bus_start, pci.bus_end),
        (0x40_1000_0000, 0, 255)
    );
    assert_eq!(pci.windows.len(), 3);
    assert!(pci.windows.iter().any(|w| w.io && w.cpu == 0x3eff_0000));
    assert!(
        pci.windows
            .iter()
            .any(|w| w.mem64 && w.cpu == 0x80_0000_0000)
    );
    assert_eq!(pci.intx.len(), 128);
    // The IORT names an ITS the MADT does not have: no msi-map on a GICv2.
    assert!(pci.msi_map.is_empty());
    assert!(d.model.starts_with("ACPI BOCHS"));
}

#[test]
fn qemu_gicv3() {
    let d = describe_mem(&fixtures::load("qemu-gicv3")).unwrap();
    assert_eq!(d.gic.version, GicVersion::V3);
    assert_eq!(d.gic.gicr.as_slice(), &[(0x080a_0000, 0xf6_0000)]);
    assert_eq!(d.gic.its.as_slice(), &[(0, 0x0808_0000)]);
    assert!(d.gic.msi_frames.is_empty());
    assert_eq!(
        d.pci[0].msi_map.as_slice(),
        &[IdMap {
            rid_base: 0,
            count: 0x1_0000,
            out_base: 0,
            its: 0
        }]
    );
}

/// The tree from QEMU's tables routes INTx and MSIs the way QEMU's own tree does.
#[test]
fn qemu_tree_matches_what_the_kernel_reads() {
    for (name, its) in [("qemu-gicv2", false), ("qemu-gicv3", true)] {
        let d = describe_mem(&fixtures::load(name)).unwrap();
        let blob = tree(&d, &[(0x4000_0000, 0x8000_0000)]);
        let fdt = fdt::Fdt::new(&blob).unwrap();
        let hb = drivers::pci::dt::host_bridge(&fdt).unwrap();
        assert_eq!(hb.intx_error, None);
        let bdf = |dev| drivers::pci::config::Bdf::new(0, dev, 0).unwrap();
        // QEMU's swizzle: (slot + pin - 1) % 4 onto SPIs 3..=6 (INTIDs 35..=38).
        assert_eq!(hb.intx.route(bdf(2), 1).map(|r| r.0), Some(37));
        assert_eq!(hb.intx.route(bdf(3), 2).map(|r| r.0), Some(35));
        assert_eq!(hb.windows.len(), 3);
        assert_eq!(hb.msi_map.device_id(0x18).map(|d| d.1.is_some()), Some(its));
        let v2m = drivers::pci::dt::v2m_frames(&fdt);
        assert_eq!(v2m.len(), usize::from(!its));
        let chosen = fdt.find_node("/chosen").unwrap();
        let stdout = chosen.property("stdout-path").unwrap().as_str().unwrap();
        assert!(fdt.find_node(stdout).is_some(), "{stdout}");
    }
}

#[test]
fn parallels_shape() {
    let d = describe_mem(&build::parallels()).unwrap();
    assert_eq!(d.gic.version, GicVersion::V3);
    assert!(d.gic.its.is_empty());
    assert_eq!(d.gic.msi_frames.len(), 1);
    assert_eq!(
        d.serial,
        Serial {
            kind: SerialKind::Pl011,
            base: 0x0211_0000,
            irq: Some(Gsi {
                gsiv: 33,
                edge: false,
                active_low: false
            }),
            source: "DBG2"
        }
    );
    let pci = &d.pci[0];
    assert_eq!(
        pci.intx[1],
        IntxRoute {
            dev: 5,
            pin: 2,
            irq: Gsi {
                gsiv: 49,
                edge: false,
                active_low: false
            }
        }
    );
    assert!(pci.msi_map.is_empty());
    let blob = tree(&d, &[(0x4000_0000, 0x6000_0000)]);
    let fdt = fdt::Fdt::new(&blob).unwrap();
    // The v2m frame sits under the GICv3 node, where the kernel's parser looks.
    let frames = drivers::pci::dt::v2m_frames(&fdt);
    assert_eq!(frames.first().map(|f| f.base), Some(0x0225_0000));
    let gic = fdt.find_node("/interrupt-controller@2000000").unwrap();
    assert!(gic.compatible().unwrap().all().any(|c| c == "arm,gic-v3"));
    let hb = drivers::pci::dt::host_bridge(&fdt).unwrap();
    let bdf = drivers::pci::config::Bdf::new(0, 5, 0).unwrap();
    assert_eq!(hb.intx.route(bdf, 4).map(|r| r.0), Some(51));
    assert_eq!(hb.ecam_size, 16 << 20);
}

#[test]
fn vmware_shape() {
    let d = describe_mem(&build::vmware()).unwrap();
    assert_eq!(d.serial.kind, SerialKind::Ns16550 { shift: 0, width: 1 });
    assert_eq!(d.serial.irq.map(|g| g.gsiv), Some(42));
    assert_eq!(d.psci, Some(Conduit::Smc));
    assert_eq!(
        d.gic.gicr.as_slice(),
        &[(0x0910_0000, 0x4_0000)],
        "two frames merged"
    );
    assert!(d.pci.is_empty());
    let ram = [(0x8000_0000, 0x1_0000_0000)];
    let blob = tree(&d, &ram);
    let fdt = fdt::Fdt::new(&blob).unwrap();
    let mem = fdt.find_node("/memory@80000000").unwrap();
    let reg = mem.property("reg").unwrap().value;
    assert_eq!(reg, &[0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0]);
    let timer = fdt.find_node("/timer").unwrap();
    let irqs = timer.property("interrupts").unwrap().value;
    // Second specifier: PPI 14 (GSIV 30), the non-secure EL1 physical timer.
    assert_eq!(&irqs[12..24], &[0, 0, 0, 1, 0, 0, 0, 14, 0, 0, 0, 4]);
    let uart = fdt.find_node("/serial@a000000").unwrap();
    assert!(uart.compatible().unwrap().all().any(|c| c == "ns16550a"));
    assert_eq!(uart.property("reg-io-width").unwrap().value, &[0, 0, 0, 1]);
}

#[test]
fn malformed_tables_are_named_errors() {
    let tables = [
        build::fadt(true, true),
        madt::table(&[madt::gicd(0x0800_0000, 2), madt::gicc(0, 0, 0x0801_0000, 0)]),
        build::gtdt(29, 30, 27, 26),
        build::spcr(0x03, 0x0900_0000, 8, 1, Some(33)),
    ];
    assert!(describe_mem(&build::memory(&tables, None)).is_ok());
    // Bad checksum.
    let mut bad = tables.clone();
    bad[1][50] ^= 1;
    assert_eq!(
        describe_mem(&build::memory(&bad, None)).unwrap_err(),
        AcpiError::Checksum(*b"APIC")
    );
    // Truncated: a length shorter than the header.
    let mut bad = tables.clone();
    bad[2][4..8].copy_from_slice(&20u32.to_le_bytes());
    assert_eq!(
        describe_mem(&build::memory(&bad, None)).unwrap_err(),
        AcpiError::Truncated(*b"GTDT")
    );
    // A length past the end of memory.
    let mut bad = tables.clone();
    bad[2][4..8].copy_from_slice(&0x10_0000u32.to_le_bytes());
    assert_eq!(
        describe_mem(&build::memory(&bad, None)).unwrap_err(),
        AcpiError::Unreadable(*b"GTDT", 0x7000_2000)
    );
    // A MADT entry whose length runs past the table, and one of length 0.
    for len in [200u8, 0] {
        let mut bad = tables.clone();
        bad[1][44 + 1] = len;
        build::fix_checksum(&mut bad[1], 9);
        assert!(matches!(
            describe_mem(&build::memory(&bad, None)).unwrap_err(),
            AcpiError::EntryOutOfRange(s, 44) if &s == b"APIC"
        ));
    }
    // No timer table, and a timer that is not a PPI.
    assert_eq!(
        describe_mem(&build::memory(
            &[tables[0].clone(), tables[1].clone(), tables[3].clone()],
            None
        ))
        .unwrap_err(),
        AcpiError::Missing(*b"GTDT")
    );
    let mut bad = tables.clone();
    bad[2] = build::gtdt(29, 40, 27, 26);
    assert!(matches!(
        describe_mem(&build::memory(&bad, None)),
        Err(AcpiError::Unsupported(_, 40))
    ));
    // RSDP checksum.
    let mut mem = build::memory(&tables, None);
    mem.blobs.get_mut(&mem.rsdp).unwrap()[8] ^= 1;
    assert_eq!(describe_mem(&mem).unwrap_err(), AcpiError::BadRsdp);
}

/// Flipped bytes anywhere in QEMU's tables: an error or a description, never a panic.
#[test]
fn mutated_tables_never_panic() {
    let base = fixtures::load("qemu-gicv3");
    let mut seed = 0x1234_5678u64;
    for round in 0..3000 {
        let mut mem = FixtureMemory {
            blobs: base.blobs.clone(),
            rsdp: base.rsdp,
        };
        for _ in 0..1 + round % 6 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let keys: Vec<u64> = mem.blobs.keys().copied().collect();
            let blob = mem
                .blobs
                .get_mut(&keys[(seed >> 33) as usize % keys.len()])
                .unwrap();
            let at = (seed >> 13) as usize % blob.len();
            blob[at] ^= 1 << (seed % 8);
            // Keep the checksum right half the time, so the parsers behind it run.
            if round % 2 == 0 && blob.len() > 36 && &blob[..4] != b"RSD " {
                build::fix_checksum(blob, 9);
            }
        }
        if let Ok(d) = describe_mem(&mem) {
            let _ = tree(&d, &[(0x4000_0000, 0x8000_0000)]);
        }
    }
}

/// QEMU 7.2 builds its MADT and IORT from the machine type, not the `its` property: with
/// `its=off` the tables still name an ITS that is not there. The loader passes it on; the
/// kernel finds it absent by probing (kernel/src/its.rs).
#[test]
fn qemu_its_off_still_describes_an_its() {
    let d = describe_mem(&fixtures::load("qemu-gicv3-noits")).unwrap();
    assert_eq!(d.gic.its.as_slice(), &[(0, 0x0808_0000)]);
}
