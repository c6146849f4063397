//! Host tests of the device-tree parser: QEMU's dumps, the corruptions a `-dtb`
//! can carry (each a warning or a named error), and mutated blobs (never a panic).

use std::vec::Vec as StdVec;

use proptest::prelude::*;

use super::super::dtb::tests::{GICV2, GICV3, value_offset};
use super::*;
use crate::platform::DtbError;
use crate::platform::dtb::header_size;

const NOP: [u8; 4] = [0, 0, 0, 4];

fn parse_blob(blob: &[u8]) -> Result<Platform, PlatformError> {
    parse(&Dtb::check(blob)?)
}

/// Replaces property `name` of node `node` (its whole token) with NOPs: deleted.
fn delete(blob: &[u8], node: &str, name: &str) -> StdVec<u8> {
    let value = value_offset(blob, node, name);
    let len = u32::from_be_bytes(blob[value - 8..value - 4].try_into().unwrap()) as usize;
    let mut b = blob.to_vec();
    for at in (value - 12..value + len.next_multiple_of(4)).step_by(4) {
        b[at..at + 4].copy_from_slice(&NOP);
    }
    b
}

/// Overwrites the value of `node`/`name` with `bytes` (same length or shorter; a
/// shorter value gets its length field cut and NOPs in the freed words).
fn set(blob: &[u8], node: &str, name: &str, bytes: &[u8]) -> StdVec<u8> {
    let value = value_offset(blob, node, name);
    let len = u32::from_be_bytes(blob[value - 8..value - 4].try_into().unwrap()) as usize;
    assert!(bytes.len() <= len);
    let mut b = blob.to_vec();
    b[value..value + len].fill(0);
    b[value..value + bytes.len()].copy_from_slice(bytes);
    b[value - 8..value - 4].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
    let used = bytes.len().next_multiple_of(4);
    for at in (value + used..value + len.next_multiple_of(4)).step_by(4) {
        b[at..at + 4].copy_from_slice(&NOP);
    }
    b
}

#[test]
fn qemu_virt_gicv2() {
    let p = parse_blob(GICV2).unwrap();
    assert_eq!(p.ram.as_slice(), &[Range::new(0x4000_0000, 0x8000_0000)]);
    assert_eq!(
        p.uart,
        Uart {
            mmio: Mmio {
                base: 0x0900_0000,
                len: 0x1000
            },
            kind: UartKind::Pl011
        }
    );
    assert_eq!(
        p.uart_irq,
        Some(Irq {
            intid: 33,
            trigger: Trigger::Level
        })
    );
    assert_eq!(p.timer_irq.intid, 30);
    assert_eq!(p.psci, Some(PsciMethod::Hvc));
    let Gic::V2 { gicd, gicc, v2m } = &p.gic else {
        panic!("not GICv2")
    };
    assert_eq!(gicd.base, 0x0800_0000);
    assert_eq!(gicc.base, 0x0801_0000);
    assert_eq!(v2m.first().map(|m| m.mmio.base), Some(0x0802_0000));
    assert_eq!(v2m.first().and_then(|m| m.spis), None);
    assert_eq!(p.pci.map(|h| h.ecam.base), Some(0x40_1000_0000));
    assert_eq!(p.cpus.as_slice(), &[0, 1]);
    assert_eq!(p.model.as_str(), "linux,dummy-virt");
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn qemu_virt_gicv3() {
    let p = parse_blob(GICV3).unwrap();
    let Gic::V3 {
        gicd,
        gicr,
        its,
        v2m,
    } = &p.gic
    else {
        panic!("not GICv3")
    };
    assert_eq!(gicd.base, 0x0800_0000);
    assert_eq!(gicr.base, 0x080A_0000);
    assert_eq!(its.first().map(|m| m.base), Some(0x0808_0000));
    assert!(v2m.is_empty());
}

#[test]
fn stdout_path_to_a_missing_node_falls_back_with_a_warning() {
    let b = set(GICV2, "chosen", "stdout-path", b"/pl011@9000001\0");
    let p = parse_blob(&b).unwrap();
    assert_eq!(p.uart.mmio.base, 0x0900_0000);
    assert_eq!(
        p.warnings.as_slice(),
        &[Warning::StdoutPathMissing(name_of("/pl011@9000001"))]
    );
    let (uart, warning) = stdout_uart(&Dtb::check(&b).unwrap()).unwrap();
    assert_eq!(uart.mmio.base, 0x0900_0000);
    assert!(warning.is_some());
}

#[test]
fn stdout_path_through_an_alias_with_options() {
    // QEMU's tree has no /aliases; an alias that does not resolve falls back.
    let b = set(GICV2, "chosen", "stdout-path", b"serial0:115200\0");
    assert_eq!(parse_blob(&b).unwrap().uart.mmio.base, 0x0900_0000);
}

#[test]
fn uart_without_interrupts_boots_without_input() {
    let b = delete(GICV2, "pl011@9000000", "interrupts");
    let p = parse_blob(&b).unwrap();
    assert_eq!(p.uart_irq, None);
    assert!(
        p.warnings.is_empty(),
        "the monitor says it: {:?}",
        p.warnings
    );
}

#[test]
fn no_psci_is_a_warning() {
    let b = delete(GICV2, "psci", "compatible");
    let p = parse_blob(&b).unwrap();
    assert_eq!(p.psci, None);
    assert!(p.warnings.contains(&Warning::NoPsci));
}

#[test]
fn timer_without_interrupts_cannot_boot() {
    let b = delete(GICV3, "timer", "interrupts");
    assert_eq!(parse_blob(&b).unwrap_err(), PlatformError::NoTimer);
    // A timer interrupt that is an SPI is refused by name.
    let mut spec = [0u8; 24];
    spec[8..12].copy_from_slice(&4u32.to_be_bytes());
    spec[16..20].copy_from_slice(&9u32.to_be_bytes()); // second specifier: SPI 9
    let b = set(GICV3, "timer", "interrupts", &spec);
    assert_eq!(parse_blob(&b).unwrap_err(), PlatformError::TimerNotPpi(41));
}

#[test]
fn short_gic_reg_is_named() {
    let reg = &GICV2[value_offset(GICV2, "intc@8000000", "reg")..][..16];
    let b = set(GICV2, "intc@8000000", "reg", reg);
    let e = parse_blob(&b).unwrap_err();
    assert_eq!(
        e,
        PlatformError::GicReg {
            node: name_of("/intc@8000000"),
            found: 1,
            needed: 2
        }
    );
    assert!(
        std::format!("{e}").contains("/intc@8000000 has 1 reg windows, needs 2"),
        "{e}"
    );
}

#[test]
fn unknown_gic_compatible_is_named() {
    let b = set(GICV2, "intc@8000000", "compatible", b"acme,frobnicator\0");
    let e = parse_blob(&b).unwrap_err();
    assert_eq!(
        e,
        PlatformError::NoGic(Some((
            name_of("/intc@8000000"),
            name_of("acme,frobnicator")
        )))
    );
}

#[test]
fn truncated_pci_interrupt_map_leaves_pci_without_intx() {
    let at = value_offset(GICV2, "pcie@10000000", "interrupt-map");
    let b = set(GICV2, "pcie@10000000", "interrupt-map", &GICV2[at..at + 36]);
    let dtb = Dtb::check(&b).unwrap();
    assert!(parse(&dtb).is_ok());
    let hb = drivers::pci::dt::host_bridge(dtb.fdt()).unwrap();
    assert!(hb.intx.entries().is_empty());
    assert_eq!(
        hb.intx_error,
        Some(drivers::pci::dt::DtError::Intx(
            drivers::pci::intx::IntxError::Malformed
        ))
    );
}

#[test]
fn bad_pci_ranges_is_an_error_for_pci_only() {
    let at = value_offset(GICV2, "pcie@10000000", "ranges");
    let b = set(GICV2, "pcie@10000000", "ranges", &GICV2[at..at + 20]);
    let dtb = Dtb::check(&b).unwrap();
    assert!(parse(&dtb).is_ok());
    assert!(matches!(
        drivers::pci::dt::host_bridge(dtb.fdt()),
        Err(drivers::pci::dt::DtError::Ranges(_))
    ));
}

#[test]
fn missing_memory_and_uart_are_errors() {
    let b = delete(GICV2, "memory@40000000", "reg");
    assert_eq!(parse_blob(&b).unwrap_err(), PlatformError::NoMemory);
    let b = delete(GICV2, "pl011@9000000", "compatible");
    assert_eq!(parse_blob(&b).unwrap_err(), PlatformError::NoUart);
}

#[test]
fn ns16550_with_register_shift() {
    let b = set(GICV2, "pl011@9000000", "compatible", b"ns16550a\0");
    let p = parse_blob(&b).unwrap();
    assert_eq!(p.uart.kind, UartKind::Ns16550 { shift: 0, width: 1 });
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert_eq!(
        parse_blob(&[0u8; 64]).err(),
        Some(PlatformError::Dtb(DtbError::BadMagic))
    );
    let mut truncated = GICV2.to_vec();
    truncated.truncate(200);
    assert!(parse_blob(&truncated).is_err());
    assert_eq!(
        header_size(&[0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0x10, 0]),
        Some(0x1000)
    );
    assert_eq!(header_size(&[0; 8]), None);
}

/// Offsets of every property value in a blob (for mutations that keep the structure).
fn value_ranges(blob: &[u8]) -> StdVec<(usize, usize)> {
    let be = |at: usize| u32::from_be_bytes(blob[at..at + 4].try_into().unwrap()) as usize;
    let (off, size) = (be(8), be(36));
    let mut out = StdVec::new();
    let mut at = off;
    while at < off + size {
        match be(at) {
            1 => {
                let end = blob[at + 4..].iter().position(|&c| c == 0).unwrap();
                at += 4 + (end + 1).next_multiple_of(4);
            }
            3 => {
                let len = be(at + 4);
                out.push((at + 12, len));
                at += 12 + len.next_multiple_of(4);
            }
            _ => at += 4,
        }
    }
    out
}

/// Everything the kernel does with a device tree at boot, on one blob.
fn boot_parse(blob: &[u8]) {
    if let Ok(dtb) = Dtb::check(blob) {
        let _ = stdout_uart(&dtb);
        let _ = parse(&dtb);
        let _ = drivers::pci::dt::host_bridge(dtb.fdt());
        let _ = drivers::pci::dt::v2m_frames(dtb.fdt());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Random bit flips in property values (the structure stays valid).
    #[test]
    fn bit_flips_in_values_never_panic(
        v3 in any::<bool>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..64, 0u8..8), 1..12),
    ) {
        let base = if v3 { GICV3 } else { GICV2 };
        let ranges = value_ranges(base);
        let mut b = base.to_vec();
        for (which, byte, bit) in flips {
            let (at, len) = ranges[which.index(ranges.len())];
            if len > 0 {
                b[at + byte % len] ^= 1 << bit;
            }
        }
        boot_parse(&b);
    }

    /// Random byte changes anywhere, structure included.
    #[test]
    fn mutated_blobs_never_panic(
        v3 in any::<bool>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut b = if v3 { GICV3 } else { GICV2 }.to_vec();
        for (at, v) in edits {
            let at = at.index(b.len());
            b[at] = v;
        }
        if let Some(cut) = cut {
            b.truncate(cut.index(b.len()));
        }
        boot_parse(&b);
    }
}

/// The device tree `capstan.efi` writes from ACPI tables, read by this parser.
fn from_acpi(mem: &efi::fixtures::FixtureMemory, ram: &[(u64, u64)]) -> Platform {
    let mut report = std::string::String::new();
    let d = efi::describe::describe(mem, mem.rsdp, &mut report).unwrap();
    let mut buf = std::vec![0u8; 256 * 1024];
    let boot = efi::devicetree::Boot {
        ram,
        bootargs: "probe",
        report: Some("firmware test\n"),
        firmware: "UEFI test",
        initrd: Some((0x4800_0000, 0x4810_0000)),
    };
    let n = efi::devicetree::write(&d, &boot, &mut buf).unwrap();
    parse_blob(&buf[..n]).unwrap()
}

#[test]
fn acpi_qemu_gicv3_through_the_kernel_parser() {
    let p = from_acpi(
        &efi::fixtures::load("qemu-gicv3"),
        &[(0x4000_0000, 0x8000_0000)],
    );
    let Gic::V3 {
        gicd,
        gicr,
        its,
        v2m,
    } = &p.gic
    else {
        panic!("not GICv3")
    };
    assert_eq!(
        (gicd.base, gicr.base, gicr.len),
        (0x0800_0000, 0x080a_0000, 0xf6_0000)
    );
    assert_eq!(its.first().map(|m| m.base), Some(0x0808_0000));
    assert!(v2m.is_empty());
    assert_eq!(p.uart.kind, UartKind::Pl011);
    assert_eq!(p.uart_irq.map(|i| i.intid), Some(33));
    assert_eq!(p.timer_irq.intid, 30);
    assert_eq!(p.psci, Some(PsciMethod::Hvc));
    assert_eq!(p.cpus.as_slice(), &[0, 1]);
    assert_eq!(p.pci.map(|h| h.ecam.base), Some(0x40_1000_0000));
    assert_eq!(p.bootargs.as_str(), "probe");
    assert_eq!(p.loader_report, Some(&b"firmware test\n"[..]));
    assert_eq!(p.initrd, Some(Range::new(0x4800_0000, 0x4810_0000)));
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn acpi_parallels_shape_through_the_kernel_parser() {
    let p = from_acpi(&efi::shapes::parallels(), &[(0x4000_0000, 0x6000_0000)]);
    let Gic::V3 { its, v2m, .. } = &p.gic else {
        panic!("not GICv3")
    };
    assert!(its.is_empty());
    assert_eq!(
        v2m.as_slice(),
        &[V2mFrame {
            mmio: Mmio {
                base: 0x0225_0000,
                len: 0x1000
            },
            spis: None
        }]
    );
    assert_eq!(p.uart.mmio.base, 0x0211_0000);
    assert_eq!(p.uart_irq.map(|i| i.intid), Some(33));
    assert_eq!(p.ram.as_slice(), &[Range::new(0x4000_0000, 0x6000_0000)]);
}

#[test]
fn acpi_vmware_shape_through_the_kernel_parser() {
    let p = from_acpi(&efi::shapes::vmware(), &[(0x8000_0000, 0x1_0000_0000)]);
    assert_eq!(p.ram.as_slice(), &[Range::new(0x8000_0000, 0x1_0000_0000)]);
    assert_eq!(p.uart.kind, UartKind::Ns16550 { shift: 0, width: 1 });
    assert_eq!(p.uart_irq.map(|i| i.intid), Some(42));
    assert_eq!(
        p.timer_irq.intid, 30,
        "the physical timer, not the virtual one (27)"
    );
    assert_eq!(p.psci, Some(PsciMethod::Smc));
    let Gic::V3 { gicr, .. } = &p.gic else {
        panic!("not GICv3")
    };
    assert_eq!((gicr.base, gicr.len), (0x0910_0000, 0x4_0000));
    assert!(p.pci.is_none());
}
