//! Bus enumeration: find every function, number bridges, size BARs.
//!
//! The kernel learns what is plugged in only by probing configuration space
//! (PCI Local Bus 3.0 §3.2.2.3): a vendor ID of 0xffff means nothing answers,
//! header-type bit 7 says whether functions 1..=7 exist, and a type 1 header
//! is a bridge whose secondary bus must be given a number before anything
//! behind it becomes visible (PCI-to-PCI Bridge 1.2 §3.2.5). The scan does
//! depth-first numbering with a bounded depth, sizes every BAR, summarises the
//! capability lists, and enables nothing: memory decode and bus mastering are
//! turned on only by [`PciFunction::enable`] when a driver claims the function.

use heapless::Vec;

use super::bar::{Bar, Space, size_bars};
use super::caps::{self, CapListError, CapSummary};
use super::config::{Bdf, Command, ConfigAccess, HEADER_MULTIFUNCTION, reg};

/// Capacity the kernel should use for its function list.
pub const MAX_FUNCTIONS: usize = 64;
/// Deepest bridge nesting followed (each level needs one recursion frame).
pub const MAX_DEPTH: usize = 8;

/// One function found by [`scan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciFunction {
    /// Its address.
    pub bdf: Bdf,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Base class code.
    pub class: u8,
    /// Sub-class code.
    pub subclass: u8,
    /// Programming interface.
    pub prog_if: u8,
    /// Revision ID.
    pub revision: u8,
    /// Header layout (bit 7, multi-function, stripped): 0 device, 1 bridge.
    pub header_type: u8,
    /// Interrupt pin: 0 none, 1..=4 INTA#..INTD#.
    pub interrupt_pin: u8,
    /// Sized BARs (a type 1 header has two).
    pub bars: [Bar; 6],
    /// Capability summary, or why the lists were rejected (skip the device).
    pub caps: Result<CapSummary, CapListError>,
    /// The root-bus device and pin its INTx arrives on after the bridge swizzle
    /// (PCI-to-PCI Bridge 1.2 §9.1); `None` without an interrupt pin.
    pub intx_root: Option<(Bdf, u8)>,
    /// For bridges: the secondary and subordinate bus numbers assigned.
    pub bridge_buses: Option<(u8, u8)>,
    /// The bridge this function sits behind; `None` on the root bus.
    pub parent: Option<Bdf>,
    /// The requester ID the host sees on this function's DMA and MSI writes (the ITS
    /// DeviceID input): its own, unless a conventional PCI bridge or a PCIe-to-PCI
    /// bridge above it takes over the transaction (PCIe-to-PCI Bridge 1.0 §2.3).
    pub requester_id: u16,
}

/// Why [`PciFunction::enable`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnableError {
    /// A BAR has no address; turning decode on would claim address 0.
    UnassignedBar {
        /// BAR index.
        index: usize,
    },
}

impl PciFunction {
    /// Turns on memory decode (and I/O decode if the function has I/O BARs) and/or
    /// bus mastering (PCI 3.0 §6.2.2). Called when a driver claims the function,
    /// after [`super::bar::assign_bars`].
    pub fn enable<C: ConfigAccess + ?Sized>(
        &self,
        access: &C,
        memory: bool,
        bus_master: bool,
    ) -> Result<(), EnableError> {
        let mut cmd = access.command(self.bdf);
        if memory {
            for (index, bar) in self.bars.iter().enumerate() {
                if bar.is_implemented() && bar.cpu_addr.is_none() {
                    return Err(EnableError::UnassignedBar { index });
                }
            }
            cmd |= Command::MEMORY_SPACE;
            if self.bars.iter().any(|b| b.space == Some(Space::Io)) {
                cmd |= Command::IO_SPACE;
            }
        }
        if bus_master {
            cmd |= Command::BUS_MASTER;
        }
        access.set_command(self.bdf, cmd);
        Ok(())
    }

    /// Turns decode and bus mastering off again (driver release or teardown).
    pub fn disable<C: ConfigAccess + ?Sized>(&self, access: &C) {
        let cmd = access.command(self.bdf);
        let off = Command::MEMORY_SPACE | Command::IO_SPACE | Command::BUS_MASTER;
        access.set_command(self.bdf, cmd - off);
    }

    /// Whether this is a bridge.
    pub fn is_bridge(&self) -> bool {
        self.header_type == 1
    }
}

/// Turns on memory and I/O forwarding and bus mastering (so DMA and MSI writes pass
/// upstream) on every bridge between `bdf` and the root bus, nearest last. Called
/// when a driver claims `bdf`; bridges are left closed until then.
pub fn enable_path<C: ConfigAccess + ?Sized>(functions: &[PciFunction], access: &C, bdf: Bdf) {
    let mut at = functions
        .iter()
        .find(|f| f.bdf == bdf)
        .and_then(|f| f.parent);
    for _ in 0..MAX_DEPTH {
        let Some(bridge) = at.and_then(|b| functions.iter().find(|f| f.bdf == b)) else {
            return;
        };
        let cmd = access.command(bridge.bdf);
        access.set_command(
            bridge.bdf,
            cmd | Command::MEMORY_SPACE | Command::IO_SPACE | Command::BUS_MASTER,
        );
        at = bridge.parent;
    }
}

/// What a scan did besides filling the list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Functions found but not stored because the list was full.
    pub dropped: usize,
    /// Bridges not followed: nesting deeper than [`MAX_DEPTH`] or out of bus numbers.
    pub bridges_skipped: usize,
    /// Highest bus number in use.
    pub last_bus: u8,
}

/// What a bridge does to the requester IDs of transactions it forwards upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BridgeKind {
    /// A PCIe port (root or switch port): IDs pass unchanged.
    PciePort,
    /// A PCIe-to-PCI bridge: IDs become (secondary bus, device 0, function 0).
    PcieToPci,
    /// A conventional PCI-to-PCI bridge: IDs become the bridge's own.
    Conventional,
}

/// One bridge between the function being probed and the root bus.
#[derive(Clone, Copy, Debug)]
struct Hop {
    bdf: Bdf,
    kind: BridgeKind,
    secondary: u8,
}

struct State<'o, const N: usize> {
    out: &'o mut Vec<PciFunction, N>,
    report: ScanReport,
    next_bus: u16,
    bus_end: u8,
    path: Vec<Hop, MAX_DEPTH>,
}

/// Enumerates buses `bus_start..=bus_end` (the DT `bus-range`) from the root
/// bus `bus_start`, appending to `out`. Bridges are (re)numbered depth-first.
pub fn scan<C: ConfigAccess + ?Sized, const N: usize>(
    access: &C,
    bus_start: u8,
    bus_end: u8,
    out: &mut Vec<PciFunction, N>,
) -> ScanReport {
    let mut st = State {
        out,
        report: ScanReport {
            last_bus: bus_start,
            ..ScanReport::default()
        },
        next_bus: u16::from(bus_start) + 1,
        bus_end,
        path: Vec::new(),
    };
    scan_bus(access, bus_start, &mut st);
    st.report
}

fn scan_bus<C: ConfigAccess + ?Sized, const N: usize>(access: &C, bus: u8, st: &mut State<'_, N>) {
    for dev in 0..32 {
        let f0 = Bdf { bus, dev, func: 0 };
        if access.read16(f0, reg::VENDOR_ID) == 0xffff {
            continue;
        }
        let multi = access.read8(f0, reg::HEADER_TYPE) & HEADER_MULTIFUNCTION != 0;
        for func in 0..if multi { 8 } else { 1 } {
            let bdf = Bdf { bus, dev, func };
            if access.read16(bdf, reg::VENDOR_ID) != 0xffff {
                probe(access, bdf, st);
            }
        }
    }
}

fn probe<C: ConfigAccess + ?Sized, const N: usize>(access: &C, bdf: Bdf, st: &mut State<'_, N>) {
    let id = access.read32(bdf, reg::VENDOR_ID);
    let class = access.read32(bdf, reg::REVISION).to_le_bytes();
    let header_type = access.read8(bdf, reg::HEADER_TYPE) & 0x7f;
    let bar_count = match header_type {
        0 => 6,
        1 => 2,
        _ => 0,
    };
    let pin = access.read8(bdf, reg::INTERRUPT_PIN);
    let caps = caps::summarize(access, bdf);
    let pcie = caps.as_ref().ok().and_then(|c| c.pcie);
    let func = PciFunction {
        bdf,
        vendor: id as u16,
        device: (id >> 16) as u16,
        class: class[3],
        subclass: class[2],
        prog_if: class[1],
        revision: class[0],
        header_type,
        interrupt_pin: pin,
        bars: size_bars(access, bdf, bar_count),
        caps,
        intx_root: intx_root(bdf, pin, &st.path),
        bridge_buses: None,
        parent: st.path.last().map(|h| h.bdf),
        requester_id: requester_id(bdf, &st.path),
    };
    let index = st.out.len();
    if st.out.push(func).is_err() {
        st.report.dropped += 1;
    }
    if header_type == 1 {
        let kind = bridge_kind(access, bdf, pcie);
        let buses = bridge(access, bdf, kind, st);
        if let Some(f) = st.out.get_mut(index).filter(|f| f.bdf == bdf) {
            f.bridge_buses = buses;
        }
    }
}

/// The bridge's kind from its PCIe capability's device/port type (PCIe Base 4.0
/// §7.5.3.2): 7 is a PCIe-to-PCI bridge; no capability is a conventional bridge.
fn bridge_kind<C: ConfigAccess + ?Sized>(access: &C, bdf: Bdf, pcie: Option<u16>) -> BridgeKind {
    match pcie {
        None => BridgeKind::Conventional,
        Some(cap) if (access.read16(bdf, cap + 2) >> 4) & 0xf == 7 => BridgeKind::PcieToPci,
        Some(_) => BridgeKind::PciePort,
    }
}

/// The requester ID upstream of every bridge in `path` (nearest first, so the
/// topmost bridge that rewrites IDs decides; QEMU's `pci_req_id_cache_get` agrees).
fn requester_id(bdf: Bdf, path: &[Hop]) -> u16 {
    path.iter()
        .rev()
        .fold(bdf.requester_id(), |rid, hop| match hop.kind {
            BridgeKind::PciePort => rid,
            BridgeKind::PcieToPci => u16::from(hop.secondary) << 8,
            BridgeKind::Conventional => hop.bdf.requester_id(),
        })
}

/// Numbers the bridge at `bdf` and scans behind it; returns (secondary, subordinate).
fn bridge<C: ConfigAccess + ?Sized, const N: usize>(
    access: &C,
    bdf: Bdf,
    kind: BridgeKind,
    st: &mut State<'_, N>,
) -> Option<(u8, u8)> {
    if st.path.len() >= MAX_DEPTH || st.next_bus > u16::from(st.bus_end) {
        st.report.bridges_skipped += 1;
        return None;
    }
    let secondary = st.next_bus as u8;
    st.next_bus += 1;
    // Primary, secondary, subordinate = 0xff while scanning below (so every
    // bus number not yet handed out is forwarded); the latency timer byte stays.
    let keep = access.read32(bdf, reg::PRIMARY_BUS) & 0xff00_0000;
    let buses = |sub: u8| u32::from(bdf.bus) | u32::from(secondary) << 8 | u32::from(sub) << 16;
    access.write32(bdf, reg::PRIMARY_BUS, keep | buses(0xff));
    let _ = st.path.push(Hop {
        bdf,
        kind,
        secondary,
    });
    scan_bus(access, secondary, st);
    st.path.pop();
    let subordinate = (st.next_bus - 1) as u8;
    access.write32(bdf, reg::PRIMARY_BUS, keep | buses(subordinate));
    st.report.last_bus = st.report.last_bus.max(subordinate);
    Some((secondary, subordinate))
}

/// Applies the bridge swizzle `pin' = (pin − 1 + dev) % 4 + 1` at every bridge
/// between `bdf` and the root bus (PCI-to-PCI Bridge 1.2 §9.1, Table 9-1).
fn intx_root(bdf: Bdf, pin: u8, path: &[Hop]) -> Option<(Bdf, u8)> {
    if !(1..=4).contains(&pin) {
        return None;
    }
    let (mut at, mut p) = (bdf, pin);
    for hop in path.iter().rev() {
        p = (p - 1 + at.dev % 4) % 4 + 1;
        at = hop.bdf;
    }
    Some((at, p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::fake::{FakeBar, FakeConfigSpace};

    fn b(bus: u8, dev: u8, func: u8) -> Bdf {
        Bdf::new(bus, dev, func).unwrap()
    }

    #[test]
    fn finds_functions_and_multifunction_devices() {
        let cfg = FakeConfigSpace::new();
        cfg.add_endpoint(b(0, 0, 0), 0x1b36, 0x0008, [0x06, 0x00, 0x00]);
        cfg.add_endpoint(b(0, 2, 0), 0x1234, 0x11e8, [0x00, 0xff, 0x00]);
        cfg.set_interrupt_pin(b(0, 2, 0), 1);
        // Function 3 without the multi-function bit on function 0 is invisible.
        cfg.add_endpoint(b(0, 2, 3), 0x1234, 0x11e8, [0x00, 0xff, 0x00]);
        cfg.add_endpoint(b(0, 4, 0), 0x8086, 0x2922, [0x01, 0x06, 0x01]);
        cfg.set_multifunction(b(0, 4, 0));
        cfg.add_endpoint(b(0, 4, 5), 0x8086, 0x2930, [0x0c, 0x05, 0x00]);
        let mut out: Vec<PciFunction, 8> = Vec::new();
        let rep = scan(&cfg, 0, 255, &mut out);
        let bdfs: std::vec::Vec<_> = out.iter().map(|f| f.bdf).collect();
        assert_eq!(bdfs, [b(0, 0, 0), b(0, 2, 0), b(0, 4, 0), b(0, 4, 5)]);
        let edu = &out[1];
        assert_eq!(
            (edu.vendor, edu.device, edu.class, edu.subclass),
            (0x1234, 0x11e8, 0, 0xff)
        );
        assert_eq!(edu.intx_root, Some((b(0, 2, 0), 1)));
        assert_eq!((out[2].class, out[2].subclass, out[2].prog_if), (1, 6, 1));
        assert_eq!(rep, ScanReport::default());
        // Nothing was enabled.
        assert!(out.iter().all(|f| cfg.command(f.bdf).is_empty()));
    }

    #[test]
    fn bridges_get_bus_numbers_and_swizzle() {
        let cfg = FakeConfigSpace::new();
        cfg.add_bridge(b(0, 1, 0), 0x1b36, 0x0001);
        cfg.add_bridge(b(0, 3, 0), 0x1b36, 0x0001);
        // Behind 00:01.0 → bus 1: a device and another bridge (→ bus 2).
        cfg.add_endpoint(b(1, 2, 0), 0x1af4, 0x1041, [0x02, 0, 0]);
        cfg.set_interrupt_pin(b(1, 2, 0), 2);
        cfg.add_bridge(b(1, 5, 0), 0x1b36, 0x0001);
        cfg.add_endpoint(b(2, 1, 0), 0x1af4, 0x1042, [0x01, 0, 0]);
        cfg.set_interrupt_pin(b(2, 1, 0), 1);
        // Behind 00:03.0 → bus 3.
        cfg.add_endpoint(b(3, 0, 0), 0x1234, 0x11e8, [0, 0xff, 0]);
        let mut out: Vec<PciFunction, 16> = Vec::new();
        let rep = scan(&cfg, 0, 255, &mut out);
        let find = |bdf| out.iter().find(|f| f.bdf == bdf).unwrap();
        assert_eq!(out.len(), 6);
        assert_eq!(find(b(0, 1, 0)).bridge_buses, Some((1, 2)));
        assert_eq!(find(b(1, 5, 0)).bridge_buses, Some((2, 2)));
        assert_eq!(find(b(0, 3, 0)).bridge_buses, Some((3, 3)));
        assert_eq!(
            cfg.read32(b(0, 1, 0), reg::PRIMARY_BUS) & 0xff_ffff,
            0x02_01_00
        );
        assert_eq!(
            cfg.read32(b(1, 5, 0), reg::PRIMARY_BUS) & 0xff_ffff,
            0x02_02_01
        );
        assert_eq!(rep.last_bus, 3);
        // 01:02.0 INTB → at bridge 00:01.0: (2 - 1 + 2) % 4 + 1 = INTD.
        assert_eq!(find(b(1, 2, 0)).intx_root, Some((b(0, 1, 0), 4)));
        // 02:01.0 INTA → 01:05.0 pin (0 + 1) % 4 + 1 = 2 → 00:01.0 pin (1 + 5 % 4) % 4 + 1 = 3.
        assert_eq!(find(b(2, 1, 0)).intx_root, Some((b(0, 1, 0), 3)));
        assert_eq!(find(b(3, 0, 0)).intx_root, None);
    }

    #[test]
    fn bridge_loops_and_exhaustion_are_bounded() {
        let cfg = FakeConfigSpace::new();
        // A chain of bridges, each at dev 0 of the previous one's bus: deeper than MAX_DEPTH.
        for bus in 0..12 {
            cfg.add_bridge(b(bus, 0, 0), 0x1b36, 0x0001);
        }
        let mut out: Vec<PciFunction, 64> = Vec::new();
        let rep = scan(&cfg, 0, 255, &mut out);
        assert_eq!(out.len(), MAX_DEPTH + 1);
        assert_eq!(rep.bridges_skipped, 1);
        // Only buses 0..=2 available.
        let mut out: Vec<PciFunction, 64> = Vec::new();
        let cfg2 = FakeConfigSpace::new();
        for bus in 0..12 {
            cfg2.add_bridge(b(bus, 0, 0), 0x1b36, 0x0001);
        }
        let rep = scan(&cfg2, 0, 2, &mut out);
        assert_eq!((out.len(), rep.bridges_skipped, rep.last_bus), (3, 1, 2));
    }

    #[test]
    fn full_list_counts_drops() {
        let cfg = FakeConfigSpace::new();
        for dev in 0..5 {
            cfg.add_endpoint(b(0, dev, 0), 0x1234, 0x11e8, [0, 0xff, 0]);
        }
        let mut out: Vec<PciFunction, 3> = Vec::new();
        assert_eq!(scan(&cfg, 0, 0, &mut out).dropped, 2);
    }

    #[test]
    fn enable_sets_only_what_is_asked_and_needs_assigned_bars() {
        let cfg = FakeConfigSpace::new();
        let bdf = b(0, 1, 0);
        cfg.add_endpoint(bdf, 0x1234, 0x11e8, [0, 0xff, 0]);
        cfg.set_bar(
            bdf,
            0,
            FakeBar::Mem32 {
                size: 1 << 20,
                prefetchable: false,
            },
        );
        let mut out: Vec<PciFunction, 2> = Vec::new();
        scan(&cfg, 0, 0, &mut out);
        let f = &mut out[0];
        assert_eq!(
            f.enable(&cfg, true, true),
            Err(EnableError::UnassignedBar { index: 0 })
        );
        f.enable(&cfg, false, true).unwrap();
        assert_eq!(cfg.command(bdf), Command::BUS_MASTER);
        f.bars[0].cpu_addr = Some(0x1000_0000);
        f.enable(&cfg, true, false).unwrap();
        assert_eq!(
            cfg.command(bdf),
            Command::BUS_MASTER | Command::MEMORY_SPACE
        );
        f.disable(&cfg);
        assert!(cfg.command(bdf).is_empty());
    }
}
