//! Placing every BAR: root-bus BARs in the host windows, the rest in bridge windows.
//!
//! A function behind a PCI-to-PCI bridge (or a PCIe root or switch port) is reached
//! only through the bridge's three forwarding windows — I/O, memory, prefetchable
//! memory (PCI-to-PCI Bridge 1.2 §3.2.5.6–10) — so the bridge's windows must cover
//! every BAR below it and nobody programs them on a `-kernel` boot. The windows are
//! sized bottom-up: a bus's needs in one window kind are its functions' BARs of that
//! kind plus its child bridges' windows of that kind, packed largest alignment first
//! (so each lands aligned once the window base is aligned to the largest) and rounded
//! to the window's granule (4 KiB I/O, 1 MiB memory). Then they are placed top-down:
//! the root bus's BARs and bridge windows go in the host windows, and each bridge's
//! contents at the offsets the sizing computed. Firmware assignments are kept only on
//! the root bus; a hierarchy behind a bridge is always laid out afresh, so it is
//! consistent by construction. Bridges are programmed with decode off; decode and bus
//! mastering go on for the path to a function when a driver claims it
//! ([`super::scan::enable_path`]).

use heapless::Vec;

use super::bar::{Bar, Space, write_bar};
use super::config::{Bdf, Command, ConfigAccess, reg};
use super::scan::PciFunction;
use super::window::{HostAllocator, MAX_BARS, Request};

/// A window a bridge forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowKind {
    /// I/O space.
    Io,
    /// Non-prefetchable memory, below 4 GiB.
    Mem,
    /// Prefetchable memory, 64-bit where the bridge decodes it.
    Pref,
}

/// `I/O`, `memory` or `prefetchable memory`, as the log prints it.
impl core::fmt::Display for WindowKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            WindowKind::Io => "I/O",
            WindowKind::Mem => "memory",
            WindowKind::Pref => "prefetchable memory",
        })
    }
}

impl WindowKind {
    const ALL: [WindowKind; 3] = [WindowKind::Io, WindowKind::Mem, WindowKind::Pref];

    /// The granule of the window registers.
    const fn granule(self) -> u64 {
        match self {
            WindowKind::Io => 0x1000,
            _ => 1 << 20,
        }
    }
}

/// Something that could not be placed, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unplaced {
    /// The function.
    pub bdf: Bdf,
    /// Which BAR, or `None` for one of the bridge's windows.
    pub bar: Option<u8>,
    /// Bytes it needed.
    pub size: u64,
}

/// Most unplaced items listed in a report (more are only counted).
pub const MAX_UNPLACED: usize = 8;

/// A bridge window as programmed, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BridgeWindow {
    /// The bridge.
    pub bdf: Bdf,
    /// Which of its windows.
    pub kind: WindowKind,
    /// First bus address forwarded.
    pub pci_base: u64,
    /// The CPU address of `pci_base`.
    pub cpu_base: u64,
    /// Bytes forwarded.
    pub size: u64,
}

/// Most bridge windows listed in a report (more are only counted).
pub const MAX_LISTED_WINDOWS: usize = 48;

/// Outcome of [`assign_bars`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssignReport {
    /// BARs given a fresh address.
    pub assigned: usize,
    /// Firmware assignments kept.
    pub kept: usize,
    /// BARs left without an address (their device cannot be enabled).
    pub failed: usize,
    /// Bridge windows programmed (each kind of each bridge counts once).
    pub bridge_windows: usize,
    /// The first bridge windows programmed, where they were placed.
    pub windows: Vec<BridgeWindow, MAX_LISTED_WINDOWS>,
    /// The first things that found no room: a BAR, or a whole bridge window.
    pub unplaced: Vec<Unplaced, MAX_UNPLACED>,
}

impl AssignReport {
    fn unplaced(&mut self, bdf: Bdf, bar: Option<u8>, size: u64) {
        let _ = self.unplaced.push(Unplaced { bdf, bar, size });
    }
}

/// What a bridge's window registers can decode (probed once per bridge).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct BridgeDecode {
    io: bool,
    io32: bool,
    pref: bool,
    pref64: bool,
}

/// One thing to place inside a window.
#[derive(Clone, Copy, Debug)]
struct Item {
    func: usize,
    what: What,
    size: u64,
    align: u64,
    above_4g: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum What {
    Bar(usize),
    Window(WindowKind),
}

/// Most items one bus contributes to one window kind.
const MAX_ITEMS: usize = 64;
type Items = Vec<Item, MAX_ITEMS>;

struct Ctx<'a, C: ConfigAccess + ?Sized> {
    access: &'a C,
    decode: Vec<BridgeDecode, 64>,
    report: AssignReport,
    /// Placed bridge windows: (function index, kind, bus base, size, CPU − bus offset).
    placed: Vec<(usize, WindowKind, u64, u64, u64), MAX_BARS>,
}

/// Assigns every BAR of `functions` (a scan's output) and programs the registers,
/// bridge windows included. A BAR or bridge window that finds no room stays
/// unassigned, counted in [`AssignReport::failed`] and listed in `unplaced`.
pub fn assign_bars<C: ConfigAccess + ?Sized>(
    access: &C,
    functions: &mut [PciFunction],
    alloc: &mut HostAllocator,
) -> AssignReport {
    let mut cx = Ctx {
        access,
        decode: Vec::new(),
        report: AssignReport::default(),
        placed: Vec::new(),
    };
    for f in functions.iter() {
        let _ = cx.decode.push(if f.is_bridge() {
            probe_decode(access, f.bdf)
        } else {
            BridgeDecode::default()
        });
    }
    for f in functions.iter_mut().filter(|f| f.parent.is_some()) {
        f.bars.iter_mut().for_each(|b| b.pci_addr = None);
    }
    let mut root: Vec<(Item, Request), MAX_BARS> = Vec::new();
    root_items(&mut cx, functions, alloc, &mut root);
    root.sort_unstable_by_key(|(_, r)| core::cmp::Reverse((r.align, r.size)));
    for (item, req) in root {
        match alloc.allocate(&req) {
            Ok((pci, cpu)) => place(&mut cx, functions, &item, pci, cpu.wrapping_sub(pci)),
            Err(_) => fail(&mut cx, functions, &item),
        }
    }
    for (i, f) in functions.iter().enumerate().filter(|(_, f)| f.is_bridge()) {
        program_bridge(&mut cx, i, f.bdf);
    }
    cx.report.failed = functions
        .iter()
        .flat_map(|f| f.bars.iter())
        .filter(|b| b.is_implemented() && b.cpu_addr.is_none())
        .count();
    cx.report
}

/// Keeps valid firmware BARs on the root bus; collects the rest of the root bus's
/// BARs and its bridges' windows as host requests.
fn root_items<C: ConfigAccess + ?Sized>(
    cx: &mut Ctx<'_, C>,
    functions: &mut [PciFunction],
    alloc: &mut HostAllocator,
    out: &mut Vec<(Item, Request), MAX_BARS>,
) {
    for i in 0..functions.len() {
        if functions[i].parent.is_some() {
            continue;
        }
        for b in 0..6 {
            let bar = &mut functions[i].bars[b];
            let Some(req) = Request::bar(bar).filter(|_| bar.is_implemented()) else {
                continue;
            };
            if let Some(cpu) = bar.pci_addr.and_then(|pci| alloc.keep(&req, pci)) {
                bar.cpu_addr = Some(cpu);
                cx.report.kept += 1;
                continue;
            }
            bar.pci_addr = None;
            let item = bar_item(i, b, bar, true);
            if let Err((item, _)) = out.push((item, req)) {
                fail(cx, functions, &item);
            }
        }
        for kind in WindowKind::ALL {
            if let Some(item) = window_item(cx, functions, i, kind) {
                let req = Request {
                    space: match kind {
                        WindowKind::Io => Space::Io,
                        WindowKind::Pref if item.above_4g => Space::Mem64,
                        _ => Space::Mem32,
                    },
                    prefetchable: kind == WindowKind::Pref,
                    size: item.size,
                    align: item.align,
                };
                if out.push((item, req)).is_err() {
                    fail(cx, functions, &item);
                }
            }
        }
    }
}

fn bar_item(func: usize, b: usize, bar: &Bar, above_4g_ok: bool) -> Item {
    Item {
        func,
        what: What::Bar(b),
        size: bar.size,
        align: bar.size,
        above_4g: above_4g_ok && bar.space == Some(Space::Mem64),
    }
}

/// The window a BAR behind a bridge with `decode` needs.
fn kind_of(bar: &Bar, decode: BridgeDecode) -> WindowKind {
    match bar.space {
        Some(Space::Io) => WindowKind::Io,
        _ if bar.prefetchable && decode.pref => WindowKind::Pref,
        _ => WindowKind::Mem,
    }
}

/// Everything on `bus` (behind bridge `parent`) that needs window `kind`, unordered.
fn items_on<C: ConfigAccess + ?Sized>(
    cx: &mut Ctx<'_, C>,
    functions: &[PciFunction],
    parent: usize,
    kind: WindowKind,
) -> Items {
    let decode = cx.decode.get(parent).copied().unwrap_or_default();
    let mut out = Items::new();
    let parent_bdf = functions[parent].bdf;
    for (i, f) in functions.iter().enumerate() {
        if f.parent != Some(parent_bdf) {
            continue;
        }
        for (b, bar) in f.bars.iter().enumerate() {
            if bar.is_implemented() && kind_of(bar, decode) == kind {
                let item = bar_item(i, b, bar, kind == WindowKind::Pref && decode.pref64);
                if out.push(item).is_err() {
                    fail(cx, functions, &item);
                }
            }
        }
        if let Some(item) = window_item(cx, functions, i, kind)
            && out.push(item).is_err()
        {
            fail(cx, functions, &item);
        }
    }
    out
}

/// Orders `items` largest alignment first and gives each its offset from a base
/// aligned to the first one's alignment. Returns the offsets and the end.
fn pack(items: &mut Items) -> (Vec<u64, MAX_ITEMS>, u64) {
    items.sort_unstable_by_key(|it| (core::cmp::Reverse(it.align), it.func, it.what_key()));
    let mut offsets = Vec::new();
    let mut at = 0u64;
    for it in items.iter() {
        at = at.next_multiple_of(it.align);
        let _ = offsets.push(at);
        at += it.size;
    }
    (offsets, at)
}

impl Item {
    fn what_key(&self) -> u8 {
        match self.what {
            What::Bar(b) => b as u8,
            What::Window(k) => 8 + k as u8,
        }
    }
}

/// Bridge `index`'s window of `kind`, sized for everything behind it; `None` if the
/// function is not a numbered bridge or nothing behind it needs that kind.
fn window_item<C: ConfigAccess + ?Sized>(
    cx: &mut Ctx<'_, C>,
    functions: &[PciFunction],
    index: usize,
    kind: WindowKind,
) -> Option<Item> {
    functions[index].bridge_buses?;
    let mut items = items_on(cx, functions, index, kind);
    let align = items.iter().map(|it| it.align).max()?.max(kind.granule());
    let (_, end) = pack(&mut items);
    let decode = cx.decode.get(index).copied().unwrap_or_default();
    Some(Item {
        func: index,
        what: What::Window(kind),
        size: end.next_multiple_of(kind.granule()),
        align,
        above_4g: kind == WindowKind::Pref && decode.pref64 && items.iter().all(|it| it.above_4g),
    })
}

/// Gives `item` bus address `pci` (CPU address `pci + delta`, wrapping) and programs
/// it; a bridge window places its contents at their packed offsets.
fn place<C: ConfigAccess + ?Sized>(
    cx: &mut Ctx<'_, C>,
    functions: &mut [PciFunction],
    item: &Item,
    pci: u64,
    delta: u64,
) {
    match item.what {
        What::Bar(b) => {
            let f = &mut functions[item.func];
            f.bars[b].pci_addr = Some(pci);
            f.bars[b].cpu_addr = Some(pci.wrapping_add(delta));
            write_bar(cx.access, f.bdf, b, &f.bars[b], pci);
            cx.report.assigned += 1;
        }
        What::Window(kind) => {
            let _ = cx.placed.push((item.func, kind, pci, item.size, delta));
            let mut items = items_on(cx, functions, item.func, kind);
            let (offsets, _) = pack(&mut items);
            for (it, off) in items.iter().zip(offsets) {
                place(cx, functions, it, pci + off, delta);
            }
        }
    }
}

/// Records that `item` found no room (a BAR, or a bridge window with everything
/// behind it). What stays unassigned is counted at the end from the BARs themselves.
fn fail<C: ConfigAccess + ?Sized>(cx: &mut Ctx<'_, C>, functions: &[PciFunction], item: &Item) {
    let bar = match item.what {
        What::Bar(b) => Some(b as u8),
        What::Window(_) => None,
    };
    cx.report.unplaced(functions[item.func].bdf, bar, item.size);
}

/// Which windows the bridge's registers implement: a window register that reads back
/// zero after all-ones was written is absent (PCI-to-PCI Bridge 1.2 §3.2.5.6, .9).
fn probe_decode<C: ConfigAccess + ?Sized>(access: &C, bdf: Bdf) -> BridgeDecode {
    let cmd = access.command(bdf);
    access.set_command(bdf, cmd - (Command::MEMORY_SPACE | Command::IO_SPACE));
    access.write16(bdf, reg::IO_BASE, 0xf0f0);
    let io = access.read8(bdf, reg::IO_BASE);
    access.write32(bdf, reg::PREF_BASE, 0xfff0_fff0);
    let pref = access.read16(bdf, reg::PREF_BASE);
    access.set_command(bdf, cmd);
    BridgeDecode {
        io: io & 0xf0 != 0,
        io32: io & 0xf == 1,
        pref: pref & 0xfff0 != 0,
        pref64: pref & 0xf == 1,
    }
}

/// Writes a bridge's three windows: the placed ones, and "base above limit" (closed)
/// for the rest. Decode stays as it was (off until a claim).
fn program_bridge<C: ConfigAccess + ?Sized>(cx: &mut Ctx<'_, C>, index: usize, bdf: Bdf) {
    let find = |kind| {
        cx.placed
            .iter()
            .find(|p| p.0 == index && p.1 == kind)
            .map(|p| (p.2, p.2 + p.3 - 1))
    };
    for &(_, kind, pci_base, size, delta) in cx.placed.iter().filter(|p| p.0 == index) {
        let _ = cx.report.windows.push(BridgeWindow {
            bdf,
            kind,
            pci_base,
            cpu_base: pci_base.wrapping_add(delta),
            size,
        });
    }
    let (io, mem, pref) = (
        find(WindowKind::Io),
        find(WindowKind::Mem),
        find(WindowKind::Pref),
    );
    let a = cx.access;
    let cmd = a.command(bdf);
    a.set_command(bdf, cmd - (Command::MEMORY_SPACE | Command::IO_SPACE));
    let (base, limit) = io.unwrap_or((0xf000, 0));
    a.write16(
        bdf,
        reg::IO_BASE,
        ((base >> 8) & 0xf0 | (limit & 0xf000)) as u16,
    );
    a.write32(
        bdf,
        reg::IO_BASE_UPPER,
        (base >> 16) as u32 & 0xffff | (limit as u32 >> 16) << 16,
    );
    let (base, limit) = mem.unwrap_or((0xfff0_0000, 0));
    a.write32(bdf, reg::MEMORY_BASE, window_regs(base, limit));
    let (base, limit) = pref.unwrap_or((0xfff0_0000, 0));
    a.write32(bdf, reg::PREF_BASE, window_regs(base, limit));
    a.write32(bdf, reg::PREF_BASE_UPPER, (base >> 32) as u32);
    a.write32(bdf, reg::PREF_LIMIT_UPPER, (limit >> 32) as u32);
    a.set_command(bdf, cmd);
    cx.report.bridge_windows += [io, mem, pref].iter().flatten().count();
}

/// A memory base/limit register pair: address bits 31:20 in bits 15:4 of each half.
fn window_regs(base: u64, limit: u64) -> u32 {
    ((base >> 16) as u32 & 0xfff0) | ((limit >> 16) as u32 & 0xfff0) << 16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::fake::{FakeBar, FakeConfigSpace};
    use crate::pci::scan::{enable_path, scan};
    use crate::pci::window::tests::qemu_windows;
    use crate::pci::window::{AssignError, Window};

    fn b(bus: u8, dev: u8, func: u8) -> Bdf {
        Bdf::new(bus, dev, func).unwrap()
    }

    fn machine() -> FakeConfigSpace {
        let cfg = FakeConfigSpace::new();
        // virtio-net-like: I/O 32, MMIO 4 KiB, 64-bit prefetchable 16 KiB.
        cfg.add_endpoint(b(0, 1, 0), 0x1af4, 0x1000, [2, 0, 0]);
        cfg.set_bar(b(0, 1, 0), 0, FakeBar::Io { size: 0x20 });
        cfg.set_bar(
            b(0, 1, 0),
            1,
            FakeBar::Mem32 {
                size: 0x1000,
                prefetchable: false,
            },
        );
        cfg.set_bar(
            b(0, 1, 0),
            4,
            FakeBar::Mem64 {
                size: 0x4000,
                prefetchable: true,
            },
        );
        // e1000-like: 128 KiB MMIO + I/O 64.
        cfg.add_endpoint(b(0, 2, 0), 0x8086, 0x100e, [2, 0, 0]);
        cfg.set_bar(
            b(0, 2, 0),
            0,
            FakeBar::Mem32 {
                size: 0x2_0000,
                prefetchable: false,
            },
        );
        cfg.set_bar(b(0, 2, 0), 1, FakeBar::Io { size: 0x40 });
        // edu ×2: 1 MiB MMIO each.
        for dev in [3, 4] {
            cfg.add_endpoint(b(0, dev, 0), 0x1234, 0x11e8, [0, 0xff, 0]);
            cfg.set_bar(
                b(0, dev, 0),
                0,
                FakeBar::Mem32 {
                    size: 1 << 20,
                    prefetchable: false,
                },
            );
        }
        // xhci-like 64-bit non-prefetchable 16 KiB.
        cfg.add_endpoint(b(0, 5, 0), 0x1b36, 0x000d, [0x0c, 3, 0x30]);
        cfg.set_bar(
            b(0, 5, 0),
            0,
            FakeBar::Mem64 {
                size: 0x4000,
                prefetchable: false,
            },
        );
        cfg
    }

    fn check_no_overlap(funcs: &[PciFunction], windows: &[Window]) {
        let mut all: std::vec::Vec<(bool, u64, u64)> = std::vec::Vec::new();
        for f in funcs {
            for bar in f.bars.iter().filter(|b| b.is_implemented()) {
                let pci = bar.pci_addr.expect("assigned");
                let cpu = bar.cpu_addr.expect("assigned");
                assert_eq!(pci % bar.size, 0, "natural alignment");
                let io = bar.space == Some(Space::Io);
                let w = windows
                    .iter()
                    .find(|w| w.contains(pci, bar.size) && (w.space == Space::Io) == io)
                    .expect("inside a window");
                assert_eq!(cpu, w.cpu_base + pci - w.pci_base);
                all.push((io, pci, pci + bar.size));
            }
        }
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert!(
                    x.0 != y.0 || x.2 <= y.1 || y.2 <= x.1,
                    "{x:x?} overlaps {y:x?}"
                );
            }
        }
    }

    #[test]
    fn assigns_inside_windows_without_overlap() {
        let cfg = machine();
        let mut funcs: Vec<PciFunction, 8> = Vec::new();
        scan(&cfg, 0, 0, &mut funcs);
        let windows = qemu_windows();
        let mut alloc = HostAllocator::new(&windows);
        let rep = assign_bars(&cfg, &mut funcs, &mut alloc);
        assert_eq!((rep.assigned, rep.kept, rep.failed), (8, 0, 0));
        check_no_overlap(&funcs, &windows);
        // 64-bit BARs went to the 64-bit window; registers hold the bus address.
        let x = &funcs[4].bars[0];
        assert!(x.pci_addr.unwrap() >= 0x80_0000_0000);
        let lo = cfg.read32(b(0, 5, 0), reg::BAR0);
        let hi = cfg.read32(b(0, 5, 0), reg::BAR0 + 4);
        assert_eq!(
            u64::from(hi) << 32 | u64::from(lo & !0xf),
            x.pci_addr.unwrap()
        );
        assert_eq!(lo & 0xf, 0b100, "type bits kept");
        // I/O BARs avoid bus address 0 and translate to the CPU window.
        let io = &funcs[0].bars[0];
        assert!(io.pci_addr.unwrap() >= 0x1000);
        assert_eq!(io.cpu_addr.unwrap(), 0x3eff_0000 + io.pci_addr.unwrap());
        // Assignment enables nothing.
        assert!(funcs.iter().all(|f| cfg.command(f.bdf).is_empty()));
        assert_eq!(cfg.decode_violations(), 0);
    }

    #[test]
    fn sixty_four_bit_bars_fall_back_to_the_32_bit_window() {
        let cfg = machine();
        let mut funcs: Vec<PciFunction, 8> = Vec::new();
        scan(&cfg, 0, 0, &mut funcs);
        let windows = qemu_windows();
        let mut alloc = HostAllocator::new(&windows[..2]);
        let rep = assign_bars(&cfg, &mut funcs, &mut alloc);
        assert_eq!(rep.failed, 0);
        check_no_overlap(&funcs, &windows[..2]);
        assert!(funcs[4].bars[0].pci_addr.unwrap() < 1 << 32);
    }

    #[test]
    fn keeps_valid_firmware_assignments_and_replaces_bad_ones() {
        let cfg = machine();
        // UEFI placed edu #1 at 0x10100000 (valid) and edu #2 overlapping it.
        cfg.poke32(b(0, 3, 0), reg::BAR0, 0x1010_0000);
        cfg.poke32(b(0, 4, 0), reg::BAR0, 0x1010_0000);
        // And the e1000 outside every window.
        cfg.poke32(b(0, 2, 0), reg::BAR0, 0x0800_0000);
        let mut funcs: Vec<PciFunction, 8> = Vec::new();
        scan(&cfg, 0, 0, &mut funcs);
        let windows = qemu_windows();
        let mut alloc = HostAllocator::new(&windows);
        let rep = assign_bars(&cfg, &mut funcs, &mut alloc);
        assert_eq!((rep.assigned, rep.kept, rep.failed), (7, 1, 0));
        assert_eq!(funcs[2].bars[0].pci_addr, Some(0x1010_0000));
        assert_ne!(funcs[3].bars[0].pci_addr, Some(0x1010_0000));
        check_no_overlap(&funcs, &windows);
        // The kept BAR was not rewritten.
        assert_eq!(cfg.last_write(b(0, 3, 0), reg::BAR0), Some(0x1010_0000));
    }

    #[test]
    fn exhaustion_is_reported_not_fatal() {
        let cfg = FakeConfigSpace::new();
        for dev in 0..3 {
            cfg.add_endpoint(b(0, dev, 0), 0x1234, 0x11e8, [0, 0xff, 0]);
            cfg.set_bar(
                b(0, dev, 0),
                0,
                FakeBar::Mem32 {
                    size: 1 << 20,
                    prefetchable: false,
                },
            );
        }
        let mut funcs: Vec<PciFunction, 4> = Vec::new();
        scan(&cfg, 0, 0, &mut funcs);
        let small = [Window {
            space: Space::Mem32,
            prefetchable: false,
            pci_base: 0x1000_0000,
            cpu_base: 0x1000_0000,
            size: 2 << 20,
        }];
        let rep = assign_bars(&cfg, &mut funcs, &mut HostAllocator::new(&small));
        assert_eq!((rep.assigned, rep.failed), (2, 1));
        // A non-prefetchable BAR never lands in a prefetchable window.
        let pf = [Window {
            prefetchable: true,
            ..small[0]
        }];
        let req = Request::bar(&funcs[0].bars[0]).unwrap();
        assert_eq!(
            HostAllocator::new(&pf).allocate(&req),
            Err(AssignError::NoSpace)
        );
        assert_eq!(rep.unplaced.len(), 1);
    }

    fn mem32(size: u32) -> FakeBar {
        FakeBar::Mem32 {
            size,
            prefetchable: false,
        }
    }

    fn pref64(size: u64) -> FakeBar {
        FakeBar::Mem64 {
            size,
            prefetchable: true,
        }
    }

    /// A root device; a conventional bridge 00:01.0 → bus 1 with a virtio-like device
    /// and a nested bridge 01:02.0 → bus 2 (an edu and a 64-bit prefetchable device);
    /// a PCIe root port 00:02.0 → bus 3 with one device.
    fn bridged() -> FakeConfigSpace {
        let cfg = FakeConfigSpace::new();
        cfg.add_endpoint(b(0, 0, 0), 0x1b36, 0x0008, [6, 0, 0]);
        cfg.add_endpoint(b(0, 3, 0), 0x1234, 0x11e8, [0, 0xff, 0]);
        cfg.set_bar(b(0, 3, 0), 0, mem32(1 << 20));
        cfg.add_bridge(b(0, 1, 0), 0x1b36, 0x0001);
        cfg.add_endpoint(b(1, 1, 0), 0x1af4, 0x1000, [2, 0, 0]);
        cfg.set_bar(b(1, 1, 0), 0, FakeBar::Io { size: 0x20 });
        cfg.set_bar(b(1, 1, 0), 1, mem32(0x1000));
        cfg.set_bar(b(1, 1, 0), 4, pref64(0x4000));
        cfg.add_bridge(b(1, 2, 0), 0x1b36, 0x0001);
        cfg.add_endpoint(b(2, 1, 0), 0x1234, 0x11e8, [0, 0xff, 0]);
        cfg.set_bar(b(2, 1, 0), 0, mem32(1 << 20));
        cfg.add_endpoint(b(2, 2, 0), 0x1af4, 0x1041, [2, 0, 0]);
        cfg.set_bar(b(2, 2, 0), 1, mem32(0x1000));
        cfg.set_bar(b(2, 2, 0), 4, pref64(0x4000));
        cfg.add_bridge(b(0, 2, 0), 0x1b36, 0x000c);
        cfg.set_pcie_port_type(b(0, 2, 0), 4);
        cfg.add_endpoint(b(3, 0, 0), 0x1af4, 0x1041, [2, 0, 0]);
        cfg.set_bar(b(3, 0, 0), 1, mem32(0x1000));
        cfg.set_bar(b(3, 0, 0), 4, pref64(0x4000));
        cfg
    }

    /// Every BAR behind a bridge lies inside each ancestor's window of its kind.
    fn check_bridge_routing(cfg: &FakeConfigSpace, funcs: &[PciFunction]) {
        for f in funcs {
            for bar in f.bars.iter().filter(|b| b.is_implemented()) {
                let pci = bar.pci_addr.expect("assigned");
                let io = bar.space == Some(Space::Io);
                let mut up = f.parent;
                while let Some(p) = up {
                    let win = cfg.bridge_window(p, io, bar.prefetchable && !io);
                    let (base, limit) = win.unwrap_or_else(|| panic!("{p} closed for {}", f.bdf));
                    assert!(
                        base <= pci && pci + bar.size - 1 <= limit,
                        "{} BAR {pci:#x} outside {p}'s window {base:#x}..={limit:#x}",
                        f.bdf
                    );
                    up = funcs.iter().find(|g| g.bdf == p).unwrap().parent;
                }
            }
        }
    }

    #[test]
    fn bridge_windows_cover_everything_behind_them() {
        let cfg = bridged();
        let mut funcs: Vec<PciFunction, 16> = Vec::new();
        scan(&cfg, 0, 255, &mut funcs);
        let windows = qemu_windows();
        let rep = assign_bars(&cfg, &mut funcs, &mut HostAllocator::new(&windows));
        assert_eq!((rep.failed, rep.unplaced.len()), (0, 0), "{rep:?}");
        assert_eq!(rep.assigned, 9);
        // 00:01.0: I/O, memory, prefetchable; 01:02.0 and 00:02.0: memory, prefetchable.
        assert_eq!(rep.bridge_windows, 7);
        assert_eq!(rep.windows.len(), 7);
        for w in &rep.windows {
            let io = w.kind == WindowKind::Io;
            let programmed = cfg.bridge_window(w.bdf, io, w.kind == WindowKind::Pref);
            assert_eq!(
                programmed,
                Some((w.pci_base, w.pci_base + w.size - 1)),
                "{w:?}"
            );
        }
        check_bridge_routing(&cfg, &funcs);
        // Sibling windows and root BARs never overlap: the root bus's view.
        let mut spans: std::vec::Vec<(bool, u64, u64)> = std::vec::Vec::new();
        for f in funcs.iter().filter(|f| f.parent.is_none()) {
            for bar in f.bars.iter().filter(|b| b.is_implemented()) {
                let pci = bar.pci_addr.unwrap();
                spans.push((bar.space == Some(Space::Io), pci, pci + bar.size - 1));
            }
            for (io, pf) in [(true, false), (false, false), (false, true)] {
                if !f.is_bridge() {
                    break;
                }
                if let Some((base, limit)) = cfg.bridge_window(f.bdf, io, pf) {
                    spans.push((io, base, limit));
                }
            }
        }
        for (i, x) in spans.iter().enumerate() {
            for y in &spans[i + 1..] {
                assert!(
                    x.0 != y.0 || x.2 < y.1 || y.2 < x.1,
                    "{x:x?} overlaps {y:x?}"
                );
            }
        }
        // 64-bit prefetchable BARs behind 64-bit bridges went above 4 GiB, and their
        // CPU address is the host window's translation.
        let deep = funcs.iter().find(|f| f.bdf == b(2, 2, 0)).unwrap();
        assert!(deep.bars[4].pci_addr.unwrap() >= 0x80_0000_0000);
        assert_eq!(deep.bars[4].cpu_addr, deep.bars[4].pci_addr);
        let io = funcs.iter().find(|f| f.bdf == b(1, 1, 0)).unwrap().bars[0];
        assert_eq!(io.cpu_addr.unwrap(), 0x3eff_0000 + io.pci_addr.unwrap());
        // Bridges stay closed until a claim opens the path to one device.
        assert!(funcs.iter().all(|f| cfg.command(f.bdf).is_empty()));
        enable_path(&funcs, &cfg, b(2, 2, 0));
        let open = Command::MEMORY_SPACE | Command::IO_SPACE | Command::BUS_MASTER;
        assert_eq!(cfg.command(b(1, 2, 0)), open);
        assert_eq!(cfg.command(b(0, 1, 0)), open);
        assert!(cfg.command(b(0, 2, 0)).is_empty());
        assert!(
            cfg.command(b(2, 2, 0)).is_empty(),
            "the device itself is the driver's"
        );
    }

    #[test]
    fn requester_ids_follow_the_bridges_above() {
        let cfg = bridged();
        cfg.add_bridge(b(0, 4, 0), 0x1b36, 0x000e);
        cfg.set_pcie_port_type(b(0, 4, 0), 7);
        cfg.add_endpoint(b(4, 3, 0), 0x1234, 0x11e8, [0, 0xff, 0]);
        let mut funcs: Vec<PciFunction, 16> = Vec::new();
        scan(&cfg, 0, 255, &mut funcs);
        let rid = |bdf| funcs.iter().find(|f| f.bdf == bdf).unwrap().requester_id;
        // Behind conventional bridges the topmost one's ID wins.
        assert_eq!(rid(b(1, 1, 0)), b(0, 1, 0).requester_id());
        assert_eq!(rid(b(2, 2, 0)), b(0, 1, 0).requester_id());
        // A PCIe root port passes IDs through.
        assert_eq!(rid(b(3, 0, 0)), b(3, 0, 0).requester_id());
        // A PCIe-to-PCI bridge substitutes (secondary bus, 0, 0).
        assert_eq!(rid(b(4, 3, 0)), 4 << 8);
        assert_eq!(rid(b(0, 3, 0)), b(0, 3, 0).requester_id());
    }

    #[test]
    fn a_bridge_window_without_room_is_named() {
        let cfg = bridged();
        let mut funcs: Vec<PciFunction, 16> = Vec::new();
        scan(&cfg, 0, 255, &mut funcs);
        // Only 2 MiB of 32-bit memory and no 64-bit or I/O window.
        let small = [Window {
            space: Space::Mem32,
            prefetchable: false,
            pci_base: 0x1000_0000,
            cpu_base: 0x1000_0000,
            size: 2 << 20,
        }];
        let rep = assign_bars(&cfg, &mut funcs, &mut HostAllocator::new(&small));
        assert!(rep.failed > 0);
        assert!(
            rep.unplaced
                .iter()
                .any(|u| u.bdf == b(0, 1, 0) && u.bar.is_none())
        );
        // Whatever was placed is still routed and inside the window.
        for f in &funcs {
            for bar in f.bars.iter().filter(|b| b.cpu_addr.is_some()) {
                assert!(small[0].contains(bar.pci_addr.unwrap(), bar.size));
            }
        }
    }

    #[test]
    fn prefetchable_bars_use_the_memory_window_where_a_bridge_has_none() {
        let cfg = bridged();
        cfg.limit_bridge_windows(b(0, 2, 0), false);
        let mut funcs: Vec<PciFunction, 16> = Vec::new();
        scan(&cfg, 0, 255, &mut funcs);
        let rep = assign_bars(&cfg, &mut funcs, &mut HostAllocator::new(&qemu_windows()));
        assert_eq!(rep.failed, 0, "{rep:?}");
        let dev = funcs.iter().find(|f| f.bdf == b(3, 0, 0)).unwrap();
        let pci = dev.bars[4].pci_addr.unwrap();
        assert!(pci < 1 << 32);
        let (base, limit) = cfg.bridge_window(b(0, 2, 0), false, false).unwrap();
        assert!(base <= pci && pci + 0x4000 - 1 <= limit);
        // The absent prefetchable window's registers stay read-only zero.
        assert_eq!(cfg.read32(b(0, 2, 0), reg::PREF_BASE), 0);
    }
}
