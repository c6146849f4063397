//! Device-tree values into a [`Platform`]: nodes indexed with their parents' cell
//! sizes, every value decoded by a checked helper.
//!
//! The `fdt` crate walks the (already checked) tree; its value helpers are not
//! used, because they assume well-formed values (`reg` panics on three address
//! cells, `bootargs` on an empty value, `model` on a missing one). Each property
//! here is read as bytes and decoded with a length check, so a flipped bit gives
//! a wrong value, a warning or a [`PlatformError`], never a panic. Bindings: the
//! Devicetree Specification v0.4 (`reg`, `/chosen`, `/aliases`), Linux's
//! `arm,gic.yaml`, `arm,gic-v3.yaml`, `arm,arch_timer.yaml`, `arm,psci.yaml`,
//! `8250.yaml` and `pl011.yaml`.

use alloc::vec::Vec as AllocVec;

use fdt::node::FdtNode;
use heapless::Vec;

use super::{
    Dtb, Gic, Irq, Mmio, Name, PciHost, Platform, PlatformError, PsciMethod, Trigger, Uart,
    UartKind, V2mFrame, Warning,
};
use crate::memrange::Range;

/// Most nodes indexed (QEMU `virt` has about 60).
const MAX_NODES: usize = 1024;

/// A node with what decoding its values needs.
#[derive(Clone, Copy)]
struct Node<'a> {
    node: FdtNode<'a, 'static>,
    parent: Option<usize>,
    /// The parent's `#address-cells` (default 2) and `#size-cells` (default 1), which
    /// give the layout of this node's `reg`.
    address_cells: usize,
    size_cells: usize,
}

/// Every node of the tree in depth-first order.
struct Nodes<'a> {
    list: AllocVec<Node<'a>>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let c = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

/// `n` big-endian cells at `b[0..]` as one number (n ≤ 2).
fn cells(b: &[u8], n: usize) -> Option<u64> {
    if n > 2 {
        return None;
    }
    (0..n).try_fold(0u64, |acc, i| Some(acc << 32 | u64::from(be32(b, 4 * i)?)))
}

fn prop(node: FdtNode<'_, 'static>, name: &str) -> Option<&'static [u8]> {
    node.properties().find(|p| p.name == name).map(|p| p.value)
}

fn prop_u32(node: FdtNode<'_, 'static>, name: &str) -> Option<u32> {
    prop(node, name)
        .filter(|v| v.len() == 4)
        .and_then(|v| be32(v, 0))
}

/// A string property: UTF-8 up to the first NUL.
fn prop_str(node: FdtNode<'_, 'static>, name: &str) -> Option<&'static str> {
    let v = prop(node, name)?;
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    core::str::from_utf8(&v[..end]).ok()
}

/// The strings of a string-list property (`compatible`).
fn prop_strings(node: FdtNode<'_, 'static>, name: &str) -> impl Iterator<Item = &'static str> {
    prop(node, name)
        .unwrap_or(&[])
        .split(|&b| b == 0)
        .filter_map(|s| core::str::from_utf8(s).ok())
        .filter(|s| !s.is_empty())
}

fn is_compatible(node: FdtNode<'_, 'static>, compat: &[&str]) -> bool {
    prop_strings(node, "compatible").any(|c| compat.contains(&c))
}

fn name_of<const N: usize>(s: &str) -> heapless::String<N> {
    let mut n = heapless::String::new();
    for c in s.chars() {
        if n.push(c).is_err() {
            break;
        }
    }
    n
}

impl<'a> Nodes<'a> {
    fn new(dtb: &'a Dtb) -> Self {
        let mut list = AllocVec::new();
        if let Some(root) = dtb.fdt().find_node("/") {
            visit(&mut list, root, None, (2, 1));
        }
        Nodes { list }
    }

    fn get(&self, i: usize) -> Option<&Node<'a>> {
        self.list.get(i)
    }

    fn find(&self, pred: impl Fn(&Node<'a>) -> bool) -> Option<usize> {
        self.list.iter().position(pred)
    }

    fn compatible(&self, compat: &[&str]) -> Option<usize> {
        self.find(|n| is_compatible(n.node, compat))
    }

    fn children_of(&self, parent: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.list.len()).filter(move |&i| self.list[i].parent == Some(parent))
    }

    /// The node's path, for messages.
    fn path(&self, i: usize) -> Name {
        let mut chain: Vec<usize, { super::dtb::MAX_DEPTH + 1 }> = Vec::new();
        let mut at = Some(i);
        while let Some(n) = at {
            let _ = chain.push(n);
            at = self.list.get(n).and_then(|n| n.parent);
        }
        let mut out = Name::new();
        for &n in chain.iter().rev().skip(1) {
            let _ = out.push('/');
            let _ = out.push_str(self.list[n].node.name);
        }
        if out.is_empty() {
            let _ = out.push('/');
        }
        out
    }

    /// Resolves an absolute path (`/pl011@9000000`) or an alias (`serial0`), ignoring
    /// `:options` (Devicetree Specification §3.6).
    fn resolve(&self, path: &str) -> Option<usize> {
        let path = path.split(':').next()?;
        if !path.starts_with('/') {
            let aliases = self.find(|n| n.parent == Some(0) && n.node.name == "aliases")?;
            let target = prop_str(self.list[aliases].node, path)?;
            return target.starts_with('/').then(|| self.resolve(target))?;
        }
        let mut at = 0usize;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            at = self.children_of(at).find(|&c| {
                let name = self.list[c].node.name;
                name == part || (!part.contains('@') && name.split('@').next() == Some(part))
            })?;
        }
        Some(at)
    }

    /// The node's `reg` windows (addresses wider than 64 bits are skipped).
    fn regs(&self, i: usize) -> impl Iterator<Item = Mmio> + '_ {
        let n = self.list.get(i);
        let (ac, sc) = n.map_or((2, 1), |n| (n.address_cells, n.size_cells));
        let raw = n.and_then(|n| prop(n.node, "reg")).unwrap_or(&[]);
        let stride = 4 * (ac + sc);
        raw.chunks_exact(stride.max(4)).filter_map(move |entry| {
            let base = usize::try_from(cells(entry, ac)?).ok()?;
            let len = usize::try_from(cells(entry.get(4 * ac..)?, sc)?).ok()?;
            Some(Mmio { base, len })
        })
    }

    /// The node's GIC interrupt specifiers (`<type number flags>`), decoded.
    fn irqs(&self, i: usize) -> impl Iterator<Item = Option<Irq>> + '_ {
        let raw = self
            .list
            .get(i)
            .and_then(|n| prop(n.node, "interrupts"))
            .unwrap_or(&[]);
        raw.chunks_exact(12).map(|spec| {
            let (kind, number, flags) = (be32(spec, 0)?, be32(spec, 4)?, be32(spec, 8)?);
            let intid = match kind {
                0 if number < 988 => number + 32,
                1 if number < 16 => number + 16,
                _ => return None,
            };
            let trigger = if flags & 0b1100 != 0 {
                Trigger::Level
            } else {
                Trigger::Edge
            };
            Some(Irq { intid, trigger })
        })
    }
}

fn visit<'a>(
    list: &mut AllocVec<Node<'a>>,
    node: FdtNode<'a, 'static>,
    parent: Option<usize>,
    (address_cells, size_cells): (usize, usize),
) {
    if list.len() >= MAX_NODES {
        return;
    }
    let me = list.len();
    list.push(Node {
        node,
        parent,
        address_cells,
        size_cells,
    });
    // The checker bounded these to 1..=3 and 0..=2 (one cell each).
    let own = (
        prop_u32(node, "#address-cells").map_or(2, |v| v as usize),
        prop_u32(node, "#size-cells").map_or(1, |v| v as usize),
    );
    for child in node.children() {
        visit(list, child, Some(me), own);
    }
}

const UART_PL011: &[&str] = &["arm,pl011"];
const UART_16550: &[&str] = &["ns16550a", "ns16550", "ns16450", "snps,dw-apb-uart"];
const GIC_V3: &[&str] = &["arm,gic-v3"];
const GIC_V2: &[&str] = &["arm,cortex-a15-gic", "arm,gic-400", "arm,cortex-a9-gic"];

/// The console UART node: `/chosen/stdout-path` if it names one, else the first
/// PL011 or 16550. A dangling `stdout-path` is a warning, not a failure.
fn uart_node(nodes: &Nodes<'_>, warnings: &mut Vec<Warning, 8>) -> Option<usize> {
    let is_uart =
        |n: &Node<'_>| is_compatible(n.node, UART_PL011) || is_compatible(n.node, UART_16550);
    let chosen = nodes.find(|n| n.parent == Some(0) && n.node.name == "chosen");
    let stdout = chosen.and_then(|c| prop_str(nodes.list[c].node, "stdout-path"));
    if let Some(path) = stdout {
        match nodes.resolve(path) {
            Some(i) if nodes.get(i).is_some_and(is_uart) => return Some(i),
            Some(_) => {}
            None => {
                let _ = warnings.push(Warning::StdoutPathMissing(name_of(path)));
            }
        }
    }
    nodes.find(is_uart)
}

fn uart_of(nodes: &Nodes<'_>, i: usize) -> Result<Uart, PlatformError> {
    let node = nodes.list[i].node;
    let mmio = nodes
        .regs(i)
        .next()
        .filter(|m| m.len > 0)
        .ok_or_else(|| PlatformError::UartReg(nodes.path(i)))?;
    let kind = if is_compatible(node, UART_PL011) {
        UartKind::Pl011
    } else {
        let shift = prop_u32(node, "reg-shift").unwrap_or(0).min(3) as u8;
        let width = match prop_u32(node, "reg-io-width") {
            Some(4) => 4,
            _ => 1,
        };
        UartKind::Ns16550 { shift, width }
    };
    Ok(Uart { mmio, kind })
}

/// Only the console UART, for the early console before the full parse: the fewest
/// values that can go wrong stand between a boot and its error message.
pub fn stdout_uart(dtb: &Dtb) -> Result<(Uart, Option<Warning>), PlatformError> {
    let nodes = Nodes::new(dtb);
    let mut warnings = Vec::new();
    let i = uart_node(&nodes, &mut warnings).ok_or(PlatformError::NoUart)?;
    Ok((uart_of(&nodes, i)?, warnings.into_iter().next()))
}

fn parse_gic(nodes: &Nodes<'_>, warnings: &mut Vec<Warning, 8>) -> Result<Gic, PlatformError> {
    let frames = |parent: usize, compat: &str| {
        let mut out: Vec<Mmio, 4> = Vec::new();
        for c in nodes.children_of(parent) {
            if is_compatible(nodes.list[c].node, &[compat])
                && let Some(m) = nodes.regs(c).next()
            {
                let _ = out.push(m);
            }
        }
        out
    };
    let v2m = |parent: usize| {
        let mut out: Vec<V2mFrame, 4> = Vec::new();
        for c in nodes.children_of(parent) {
            let node = nodes.list[c].node;
            if is_compatible(node, &["arm,gic-v2m-frame"])
                && let Some(mmio) = nodes.regs(c).next()
            {
                let spis =
                    prop_u32(node, "arm,msi-base-spi").zip(prop_u32(node, "arm,msi-num-spis"));
                let _ = out.push(V2mFrame { mmio, spis });
            }
        }
        out
    };
    if let Some(i) = nodes.compatible(GIC_V3) {
        let regs: AllocVec<Mmio> = nodes.regs(i).collect();
        let [gicd, gicr, more @ ..] = regs.as_slice() else {
            return Err(gic_reg(nodes, i, regs.len(), 2));
        };
        // `#redistributor-regions` says how many of the windows after GICD are GICR
        // regions; the rest (GICC, GICH, GICV) are not used.
        let regions = prop_u32(nodes.list[i].node, "#redistributor-regions").unwrap_or(1);
        let extra = (regions as usize).saturating_sub(1).min(more.len());
        if extra > 0 {
            let _ = warnings.push(Warning::RedistributorRegionsIgnored(extra));
        }
        return Ok(Gic::V3 {
            gicd: *gicd,
            gicr: *gicr,
            its: frames(i, "arm,gic-v3-its"),
            v2m: v2m(i),
        });
    }
    if let Some(i) = nodes.compatible(GIC_V2) {
        let regs: AllocVec<Mmio> = nodes.regs(i).collect();
        let [gicd, gicc, ..] = regs.as_slice() else {
            return Err(gic_reg(nodes, i, regs.len(), 2));
        };
        return Ok(Gic::V2 {
            gicd: *gicd,
            gicc: *gicc,
            v2m: v2m(i),
        });
    }
    let other = nodes.find(|n| {
        n.node
            .properties()
            .any(|p| p.name == "interrupt-controller")
    });
    Err(PlatformError::NoGic(other.map(|i| {
        let compat = prop_strings(nodes.list[i].node, "compatible")
            .next()
            .unwrap_or("");
        (nodes.path(i), name_of(compat))
    })))
}

fn gic_reg(nodes: &Nodes<'_>, i: usize, found: usize, needed: usize) -> PlatformError {
    PlatformError::GicReg {
        node: nodes.path(i),
        found,
        needed,
    }
}

/// The non-secure EL1 physical timer: the second of the four timer interrupts
/// (secure, non-secure, virtual, hypervisor). VMware does not deliver the virtual
/// timer, so the kernel never uses it.
fn parse_timer(nodes: &Nodes<'_>) -> Result<Irq, PlatformError> {
    let i = nodes
        .compatible(&["arm,armv8-timer", "arm,armv7-timer"])
        .ok_or(PlatformError::NoTimer)?;
    let irq = nodes
        .irqs(i)
        .nth(1)
        .flatten()
        .ok_or(PlatformError::NoTimer)?;
    if !(16..32).contains(&irq.intid) {
        return Err(PlatformError::TimerNotPpi(irq.intid));
    }
    Ok(irq)
}

fn parse_psci(nodes: &Nodes<'_>) -> Option<PsciMethod> {
    let i = nodes.compatible(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])?;
    match prop_str(nodes.list[i].node, "method")? {
        "hvc" => Some(PsciMethod::Hvc),
        "smc" => Some(PsciMethod::Smc),
        _ => None,
    }
}

fn parse_pci(nodes: &Nodes<'_>) -> Option<PciHost> {
    let i = nodes.compatible(&["pci-host-ecam-generic"])?;
    let ecam = nodes.regs(i).next()?;
    let bus = prop(nodes.list[i].node, "bus-range").unwrap_or(&[]);
    let bus_start = be32(bus, 0).unwrap_or(0).min(255) as u8;
    let bus_end = be32(bus, 4).unwrap_or(255).clamp(u32::from(bus_start), 255) as u8;
    Some(PciHost {
        ecam,
        bus_start,
        bus_end,
    })
}

fn parse_ram(nodes: &Nodes<'_>, warnings: &mut Vec<Warning, 8>) -> Vec<Range, 32> {
    let mut ram: Vec<Range, 32> = Vec::new();
    let mut dropped = 0;
    let memory = |n: &Node<'_>| {
        n.parent == Some(0)
            && (n.node.name == "memory"
                || n.node.name.starts_with("memory@")
                || prop_str(n.node, "device_type") == Some("memory"))
    };
    for i in (0..nodes.list.len()).filter(|&i| memory(&nodes.list[i])) {
        for m in nodes.regs(i).filter(|m| m.len > 0) {
            if ram
                .push(Range::new(m.base, m.base.saturating_add(m.len)))
                .is_err()
            {
                dropped += 1;
            }
        }
    }
    if dropped > 0 {
        let _ = warnings.push(Warning::RamBanksDropped(dropped));
    }
    ram
}

fn parse_reserved(dtb: &Dtb, nodes: &Nodes<'_>) -> Result<Vec<Range, 64>, PlatformError> {
    let mut out: Vec<Range, 64> = Vec::new();
    let mut count = 0;
    let mut add = |r: Range| {
        count += 1;
        let _ = out.push(r);
    };
    for r in dtb.fdt().memory_reservations() {
        let start = r.address() as usize;
        add(Range::new(start, start.saturating_add(r.size())));
    }
    if let Some(rm) = nodes.find(|n| n.parent == Some(0) && n.node.name == "reserved-memory") {
        for c in nodes.children_of(rm) {
            for m in nodes.regs(c) {
                add(Range::new(m.base, m.base.saturating_add(m.len)));
            }
        }
    }
    if count > out.len() {
        return Err(PlatformError::TooManyReserved(count));
    }
    Ok(out)
}

fn parse_cpus(nodes: &Nodes<'_>, warnings: &mut Vec<Warning, 8>) -> Vec<u64, 8> {
    let mut cpus: Vec<u64, 8> = Vec::new();
    let mut dropped = 0;
    if let Some(c) = nodes.find(|n| n.parent == Some(0) && n.node.name == "cpus") {
        for cpu in nodes.children_of(c) {
            let n = nodes.list[cpu];
            if !n.node.name.starts_with("cpu@") {
                continue;
            }
            let reg = prop(n.node, "reg").unwrap_or(&[]);
            if let Some(m) = cells(reg, n.address_cells.min(2))
                && cpus.push(m).is_err()
            {
                dropped += 1;
            }
        }
    }
    if dropped > 0 {
        let _ = warnings.push(Warning::CpusDropped(dropped));
    }
    cpus
}

/// Parses a checked device tree into the machine description.
pub fn parse(dtb: &Dtb) -> Result<Platform, PlatformError> {
    let nodes = Nodes::new(dtb);
    let mut warnings = Vec::new();
    let ram = parse_ram(&nodes, &mut warnings);
    if ram.is_empty() {
        return Err(PlatformError::NoMemory);
    }
    let reserved = parse_reserved(dtb, &nodes)?;
    let uart_i = uart_node(&nodes, &mut warnings).ok_or(PlatformError::NoUart)?;
    let uart = uart_of(&nodes, uart_i)?;
    // No interrupt: the monitor warns that console input is unavailable.
    let uart_irq = nodes.irqs(uart_i).next().flatten();
    let gic = parse_gic(&nodes, &mut warnings)?;
    let timer_irq = parse_timer(&nodes)?;
    let psci = parse_psci(&nodes);
    if psci.is_none() {
        let _ = warnings.push(Warning::NoPsci);
    }
    let cpus = parse_cpus(&nodes, &mut warnings);
    let chosen = nodes.find(|n| n.parent == Some(0) && n.node.name == "chosen");
    let mut bootargs = heapless::String::new();
    if let Some(c) = chosen.and_then(|c| prop(nodes.list[c].node, "bootargs")) {
        let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
        match core::str::from_utf8(&c[..end]) {
            Ok(s) => {
                for ch in s.chars() {
                    if bootargs.push(ch).is_err() {
                        break;
                    }
                }
            }
            Err(_) => {
                let _ = warnings.push(Warning::BadBootargs);
            }
        }
    }
    let loader_report = chosen.and_then(|c| prop(nodes.list[c].node, "capstan,probe"));
    let initrd = chosen.and_then(|c| initrd(nodes.list[c].node));
    let model = nodes
        .list
        .first()
        .and_then(|root| prop_str(root.node, "model"))
        .unwrap_or("unknown machine");
    Ok(Platform {
        model: name_of(model),
        ram,
        reserved,
        uart,
        uart_irq,
        gic,
        timer_irq,
        psci,
        pci: parse_pci(&nodes),
        cpus,
        bootargs,
        initrd,
        loader_report,
        warnings,
    })
}

/// `/chosen/linux,initrd-start` and `linux,initrd-end` (one or two cells each, as QEMU,
/// U-Boot and `capstan.efi` write them); `None` without both or with an empty or
/// inverted range.
fn initrd(chosen: FdtNode<'_, 'static>) -> Option<Range> {
    let addr = |name| {
        let v = prop(chosen, name)?;
        let n = match v.len() {
            4 => 1,
            8 => 2,
            _ => return None,
        };
        usize::try_from(cells(v, n)?).ok()
    };
    let (start, end) = (addr("linux,initrd-start")?, addr("linux,initrd-end")?);
    (end > start).then(|| Range::new(start, end))
}

#[cfg(test)]
mod tests;
