//! What the machine looks like, read from the flattened device tree.
//!
//! Every address the kernel uses — RAM, UART, GIC, timer interrupts, PCI host,
//! PSCI conduit — comes from here, never from constants (DESIGN.md "Targets").
//! Parsing is pure so it is host-tested against DTBs dumped from QEMU
//! (`scripts/dump-dtb`). A malformed tree is an error, not a panic.

use fdt::Fdt;
use fdt::node::FdtNode;
use heapless::Vec;

use crate::memrange::Range;

/// A register window: physical base and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mmio {
    /// Physical base address.
    pub base: usize,
    /// Length in bytes.
    pub len: usize,
}

pub use drivers::irqchip::Trigger;

/// A GIC interrupt from a 3-cell specifier, as an INTID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Irq {
    /// INTID: SPI n → 32 + n, PPI n → 16 + n.
    pub intid: u32,
    /// Edge or level.
    pub trigger: Trigger,
}

/// Which interrupt controller, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gic {
    /// GICv2: distributor and CPU interface, plus any v2m MSI frames.
    V2 {
        /// GICD.
        gicd: Mmio,
        /// GICC.
        gicc: Mmio,
        /// `arm,gic-v2m-frame` children.
        v2m: Vec<Mmio, 4>,
    },
    /// GICv3: distributor and redistributor region, plus any ITS.
    V3 {
        /// GICD.
        gicd: Mmio,
        /// First redistributor region.
        gicr: Mmio,
        /// `arm,gic-v3-its` children.
        its: Vec<Mmio, 4>,
    },
}

/// PSCI conduit from `/psci`'s `method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsciMethod {
    /// `hvc`.
    Hvc,
    /// `smc`.
    Smc,
}

/// A generic ECAM PCI host bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciHost {
    /// ECAM configuration window.
    pub ecam: Mmio,
    /// First and last bus numbers.
    pub bus_start: u8,
    /// Last bus number.
    pub bus_end: u8,
}

/// Everything the kernel needs to know about the machine.
#[derive(Debug, Clone)]
pub struct Platform {
    /// Machine model string.
    pub model: heapless::String<64>,
    /// RAM banks from `/memory` nodes.
    pub ram: Vec<Range, 8>,
    /// Ranges that must never be allocated: `/reserved-memory` and the reservation block.
    pub reserved: Vec<Range, 16>,
    /// Console UART (`arm,pl011`), preferring `/chosen/stdout-path`.
    pub uart: Option<Mmio>,
    /// The UART's interrupt.
    pub uart_irq: Option<Irq>,
    /// Interrupt controller.
    pub gic: Option<Gic>,
    /// Non-secure EL1 physical timer PPI.
    pub timer_irq: Option<Irq>,
    /// PSCI conduit.
    pub psci: Option<PsciMethod>,
    /// PCI host bridge, if any.
    pub pci: Option<PciHost>,
    /// MPIDR of each CPU.
    pub cpus: Vec<u64, 8>,
    /// `/chosen/bootargs`.
    pub bootargs: heapless::String<512>,
    /// The initial RAM disk (`/chosen/linux,initrd-start` and `-end`), if the loader gave
    /// one.
    pub initrd: Option<Range>,
}

/// Why the DTB could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtbError {
    /// Header magic or structure invalid.
    Malformed,
    /// No `/memory` node with a usable range.
    NoMemory,
}

fn be32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?))
}

fn cells(bytes: &[u8], count: usize) -> Option<u64> {
    (0..count).try_fold(0u64, |acc, i| {
        Some(acc << 32 | u64::from(be32(bytes.get(i * 4..)?)?))
    })
}

/// The node's `reg` windows, using its parent's cell sizes.
fn regs<'a>(node: FdtNode<'_, 'a>) -> impl Iterator<Item = Mmio> + 'a {
    node.reg().into_iter().flatten().map(|r| Mmio {
        base: r.starting_address as usize,
        len: r.size.unwrap_or(0),
    })
}

fn first_reg(node: FdtNode<'_, '_>) -> Option<Mmio> {
    regs(node).next()
}

/// Decodes GIC 3-cell interrupt specifiers (type, number, flags) of `node`.
fn irqs<'a>(node: FdtNode<'_, 'a>) -> impl Iterator<Item = Irq> + 'a {
    let raw = node.property("interrupts").map(|p| p.value).unwrap_or(&[]);
    raw.chunks_exact(12).filter_map(|spec| {
        let kind = be32(spec)?;
        let number = be32(&spec[4..])?;
        let flags = be32(&spec[8..])?;
        let intid = match kind {
            0 => number.checked_add(32)?,
            1 => number.checked_add(16)?,
            _ => return None,
        };
        let trigger = if flags & 0xf & 0b1100 != 0 {
            Trigger::Level
        } else {
            Trigger::Edge
        };
        Some(Irq { intid, trigger })
    })
}

fn compatible_node<'b, 'a>(fdt: &'b Fdt<'a>, compat: &[&str]) -> Option<FdtNode<'b, 'a>> {
    fdt.all_nodes().find(|n| {
        n.compatible()
            .is_some_and(|c| c.all().any(|s| compat.contains(&s)))
    })
}

fn children_compatible<'b, 'a>(
    node: FdtNode<'b, 'a>,
    compat: &'static str,
) -> impl Iterator<Item = FdtNode<'b, 'a>> {
    node.children().filter(move |c| {
        c.compatible()
            .is_some_and(|cs| cs.all().any(|s| s == compat))
    })
}

fn parse_gic(fdt: &Fdt<'_>) -> Option<Gic> {
    if let Some(node) = compatible_node(fdt, &["arm,gic-v3"]) {
        let mut r = regs(node);
        let gicd = r.next()?;
        let gicr = r.next()?;
        let mut its = Vec::new();
        for child in children_compatible(node, "arm,gic-v3-its") {
            if let Some(m) = first_reg(child) {
                let _ = its.push(m);
            }
        }
        return Some(Gic::V3 { gicd, gicr, its });
    }
    let node = compatible_node(
        fdt,
        &["arm,cortex-a15-gic", "arm,gic-400", "arm,cortex-a9-gic"],
    )?;
    let mut r = regs(node);
    let gicd = r.next()?;
    let gicc = r.next()?;
    let mut v2m = Vec::new();
    for child in children_compatible(node, "arm,gic-v2m-frame") {
        if let Some(m) = first_reg(child) {
            let _ = v2m.push(m);
        }
    }
    Some(Gic::V2 { gicd, gicc, v2m })
}

fn parse_uart<'b, 'a>(fdt: &'b Fdt<'a>) -> Option<FdtNode<'b, 'a>> {
    let stdout = fdt.chosen().stdout().filter(|n| {
        n.compatible()
            .is_some_and(|c| c.all().any(|s| s == "arm,pl011"))
    });
    stdout.or_else(|| compatible_node(fdt, &["arm,pl011"]))
}

fn parse_pci(fdt: &Fdt<'_>) -> Option<PciHost> {
    let node = compatible_node(fdt, &["pci-host-ecam-generic"])?;
    let ecam = first_reg(node)?;
    let bus = node.property("bus-range").map(|p| p.value).unwrap_or(&[]);
    let bus_start = be32(bus).unwrap_or(0) as u8;
    let bus_end = bus.get(4..).and_then(be32).unwrap_or(255) as u8;
    Some(PciHost {
        ecam,
        bus_start,
        bus_end,
    })
}

fn parse_reserved(fdt: &Fdt<'_>, out: &mut Vec<Range, 16>) {
    for r in fdt.memory_reservations() {
        let _ = out.push(Range::new(
            r.address() as usize,
            r.address() as usize + r.size(),
        ));
    }
    if let Some(node) = fdt.find_node("/reserved-memory") {
        for child in node.children() {
            for m in regs(child) {
                let _ = out.push(Range::new(m.base, m.base.saturating_add(m.len)));
            }
        }
    }
}

/// Parses a DTB blob.
pub fn parse(blob: &[u8]) -> Result<Platform, DtbError> {
    let fdt = Fdt::new(blob).map_err(|_| DtbError::Malformed)?;
    let mut ram = Vec::new();
    for node in fdt
        .all_nodes()
        .filter(|n| n.name == "memory" || n.name.starts_with("memory@"))
    {
        for m in regs(node).filter(|m| m.len > 0) {
            let _ = ram.push(Range::new(m.base, m.base.saturating_add(m.len)));
        }
    }
    if ram.is_empty() {
        return Err(DtbError::NoMemory);
    }
    let mut reserved = Vec::new();
    parse_reserved(&fdt, &mut reserved);
    let uart_node = parse_uart(&fdt);
    let timer_irq =
        compatible_node(&fdt, &["arm,armv8-timer", "arm,armv7-timer"]).and_then(|n| irqs(n).nth(1));
    let psci = compatible_node(&fdt, &["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])
        .and_then(|n| n.property("method"))
        .and_then(|p| p.as_str())
        .and_then(|m| match m {
            "hvc" => Some(PsciMethod::Hvc),
            "smc" => Some(PsciMethod::Smc),
            _ => None,
        });
    let mut cpus = Vec::new();
    if let Some(node) = fdt.find_node("/cpus") {
        for cpu in node.children().filter(|c| c.name.starts_with("cpu@")) {
            let reg = cpu.property("reg").map(|p| p.value).unwrap_or(&[]);
            let mpidr = if reg.len() >= 8 {
                cells(reg, 2)
            } else {
                cells(reg, 1)
            };
            if let Some(m) = mpidr {
                let _ = cpus.push(m);
            }
        }
    }
    let mut model = heapless::String::new();
    let _ = model.push_str(fdt.root().model());
    let mut bootargs = heapless::String::new();
    let _ = bootargs.push_str(fdt.chosen().bootargs().unwrap_or(""));
    Ok(Platform {
        initrd: initrd(&fdt),
        model,
        ram,
        reserved,
        uart: uart_node.and_then(first_reg),
        uart_irq: uart_node.and_then(|n| irqs(n).next()),
        gic: parse_gic(&fdt),
        timer_irq,
        psci,
        pci: parse_pci(&fdt),
        cpus,
        bootargs,
    })
}

/// `/chosen/linux,initrd-start` and `linux,initrd-end` (one or two cells each, as QEMU and
/// U-Boot write them); `None` without both or with an empty or inverted range.
fn initrd(fdt: &Fdt<'_>) -> Option<Range> {
    let chosen = fdt.find_node("/chosen")?;
    let prop = |name| {
        let v = chosen.property(name)?.value;
        match v.len() {
            4 => cells(v, 1),
            8 => cells(v, 2),
            _ => None,
        }
    };
    let (start, end) = (prop("linux,initrd-start")?, prop("linux,initrd-end")?);
    (end > start).then(|| Range::new(start as usize, end as usize))
}

/// Reads the `totalsize` field of a DTB header, checking the magic.
pub fn header_size(header: &[u8; 8]) -> Option<usize> {
    (be32(header)? == 0xd00d_feed)
        .then(|| be32(&header[4..]).map(|s| s as usize))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GICV2: &[u8] = include_bytes!("../../scripts/fixtures/virt-gicv2.dtb");
    const GICV3: &[u8] = include_bytes!("../../scripts/fixtures/virt-gicv3.dtb");

    #[test]
    fn qemu_virt_gicv2() {
        let p = parse(GICV2).unwrap();
        assert_eq!(p.ram.as_slice(), &[Range::new(0x4000_0000, 0x8000_0000)]);
        assert_eq!(
            p.uart,
            Some(Mmio {
                base: 0x0900_0000,
                len: 0x1000
            })
        );
        assert_eq!(
            p.uart_irq,
            Some(Irq {
                intid: 33,
                trigger: Trigger::Level
            })
        );
        assert_eq!(p.timer_irq.map(|i| i.intid), Some(30));
        assert_eq!(p.psci, Some(PsciMethod::Hvc));
        let Some(Gic::V2 { gicd, gicc, v2m }) = p.gic else {
            panic!("not GICv2")
        };
        assert_eq!(gicd.base, 0x0800_0000);
        assert_eq!(gicc.base, 0x0801_0000);
        assert_eq!(v2m.first().map(|m| m.base), Some(0x0802_0000));
        assert_eq!(p.pci.map(|h| h.ecam.base), Some(0x40_1000_0000));
        assert_eq!(p.cpus.as_slice(), &[0, 1]);
    }

    #[test]
    fn qemu_virt_gicv3() {
        let p = parse(GICV3).unwrap();
        let Some(Gic::V3 { gicd, gicr, its }) = p.gic else {
            panic!("not GICv3")
        };
        assert_eq!(gicd.base, 0x0800_0000);
        assert_eq!(gicr.base, 0x080A_0000);
        assert_eq!(its.first().map(|m| m.base), Some(0x0808_0000));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(parse(&[0u8; 64]).err(), Some(DtbError::Malformed));
        let mut truncated = GICV2.to_vec();
        truncated.truncate(200);
        assert!(parse(&truncated).is_err());
        assert_eq!(
            header_size(&[0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0x10, 0]),
            Some(0x1000)
        );
        assert_eq!(header_size(&[0; 8]), None);
    }
}
