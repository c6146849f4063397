//! BAR sizing and assignment from the host bridge's DT `ranges` windows.
//!
//! With `-kernel` boot no firmware programs Base Address Registers, so the
//! kernel must size each BAR (PCI Local Bus 3.0 §6.2.5.1: write all-ones with
//! decode disabled, read back the mask) and place it, naturally aligned and
//! without overlap, in one of the windows the host bridge forwards. Under UEFI
//! the firmware has already done so and those assignments are kept when they
//! lie inside a window and collide with nothing. The windows come from the
//! `ranges` property of `pci-host-ecam-generic` (IEEE 1275 PCI binding §2.2.1.1
//! for the 3-cell PCI address encoding).

use core::fmt;

use heapless::Vec;

use super::config::{Bdf, Command, ConfigAccess, reg};
use super::scan::PciFunction;

/// Address space a BAR or window decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// I/O space.
    Io,
    /// 32-bit memory space.
    Mem32,
    /// 64-bit memory space.
    Mem64,
}

/// One Base Address Register after sizing (and perhaps assignment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// `None` if the slot is unimplemented or is the upper half of a 64-bit BAR.
    pub space: Option<Space>,
    /// Prefetchable bit (memory BARs only).
    pub prefetchable: bool,
    /// Decode size in bytes (a power of two), 0 if unimplemented.
    pub size: u64,
    /// PCI bus address programmed into the BAR; `None` until assigned.
    pub pci_addr: Option<u64>,
    /// CPU physical address of the same bytes; `None` until assigned.
    pub cpu_addr: Option<u64>,
}

impl Bar {
    /// An unimplemented slot.
    pub const UNUSED: Bar = Bar {
        space: None,
        prefetchable: false,
        size: 0,
        pci_addr: None,
        cpu_addr: None,
    };

    /// Whether the slot decodes anything.
    pub fn is_implemented(&self) -> bool {
        self.space.is_some() && self.size != 0
    }
}

/// Low bits of a BAR (PCI 3.0 §6.2.5.1): bit 0 I/O, [2:1] type, bit 3 prefetch.
const BAR_IO: u32 = 1;
const BAR_TYPE_64: u32 = 0b100;
const BAR_PREFETCH: u32 = 0b1000;

fn bar_off(index: usize) -> u16 {
    reg::BAR0 + 4 * index as u16
}

/// Sizes the first `count` BARs of `bdf` (6 for type 0, 2 for type 1).
///
/// Memory and I/O decode are turned off while all-ones sit in a BAR — otherwise
/// the function would briefly claim a huge window — and the command register and
/// every original BAR value are restored afterwards. A firmware assignment that
/// was present becomes `pci_addr` (CPU address still unknown until assignment).
pub fn size_bars<C: ConfigAccess + ?Sized>(access: &C, bdf: Bdf, count: usize) -> [Bar; 6] {
    let mut bars = [Bar::UNUSED; 6];
    let cmd = access.command(bdf);
    access.set_command(bdf, cmd - (Command::MEMORY_SPACE | Command::IO_SPACE));
    let mut i = 0;
    while i < count.min(6) {
        let off = bar_off(i);
        let orig = access.read32(bdf, off);
        access.write32(bdf, off, u32::MAX);
        let mask = access.read32(bdf, off);
        access.write32(bdf, off, orig);
        if mask == 0 || (mask == u32::MAX && orig == u32::MAX) {
            i += 1;
            continue;
        }
        if orig & BAR_IO != 0 {
            let m = u64::from(mask & !0x3);
            bars[i] = sized(Space::Io, false, m, u64::from(orig & !0x3));
            i += 1;
            continue;
        }
        let prefetchable = orig & BAR_PREFETCH != 0;
        let is64 = orig & 0b110 == BAR_TYPE_64;
        if !is64 {
            let m = u64::from(mask & !0xf);
            bars[i] = sized(Space::Mem32, prefetchable, m, u64::from(orig & !0xf));
            i += 1;
            continue;
        }
        if i + 1 >= count.min(6) {
            // A 64-bit BAR in the last slot is malformed (PCI 3.0 §6.2.5.1); skip it.
            break;
        }
        let hi = bar_off(i + 1);
        let orig_hi = access.read32(bdf, hi);
        access.write32(bdf, hi, u32::MAX);
        let mask_hi = access.read32(bdf, hi);
        access.write32(bdf, hi, orig_hi);
        let m = u64::from(mask_hi) << 32 | u64::from(mask & !0xf);
        let addr = u64::from(orig_hi) << 32 | u64::from(orig & !0xf);
        bars[i] = sized(Space::Mem64, prefetchable, m, addr);
        i += 2;
    }
    access.set_command(bdf, cmd);
    bars
}

fn sized(space: Space, prefetchable: bool, mask: u64, addr: u64) -> Bar {
    // Size = lowest writable address bit (robust to I/O BARs that decode 16 bits).
    let size = mask & mask.wrapping_neg();
    if size == 0 {
        return Bar::UNUSED;
    }
    Bar {
        space: Some(space),
        prefetchable,
        size,
        pci_addr: (addr != 0).then_some(addr),
        cpu_addr: None,
    }
}

/// An address window the host bridge forwards, from one `ranges` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Space code of the entry.
    pub space: Space,
    /// Prefetchable bit (phys.hi bit 30).
    pub prefetchable: bool,
    /// First PCI bus address.
    pub pci_base: u64,
    /// CPU physical address of `pci_base`.
    pub cpu_base: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Window {
    fn contains(&self, pci: u64, size: u64) -> bool {
        pci >= self.pci_base
            && pci
                .checked_add(size)
                .is_some_and(|end| end <= self.pci_base + self.size)
    }

    fn cpu_of(&self, pci: u64) -> u64 {
        self.cpu_base + (pci - self.pci_base)
    }
}

/// Most windows kept from `ranges`.
pub const MAX_WINDOWS: usize = 8;

/// Why a `ranges` property was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangesError {
    /// Length not a multiple of the entry size, or cell counts unsupported.
    Malformed,
    /// More than [`MAX_WINDOWS`] usable entries.
    TooMany,
}

fn cells(bytes: &[u8], n: usize) -> u64 {
    bytes.chunks_exact(4).take(n).fold(0, |acc, c| {
        acc << 32 | u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    })
}

/// Parses a host bridge `ranges` property (big-endian cells): per entry a 3-cell
/// PCI address (phys.hi space code in bits 24–25: 1 = I/O, 2 = 32-bit memory,
/// 3 = 64-bit memory; bit 30 prefetchable), `parent_addr_cells` of CPU address
/// and `size_cells` of size. Configuration-space entries (code 0) and empty
/// windows are skipped.
pub fn parse_ranges(
    ranges: &[u8],
    parent_addr_cells: usize,
    size_cells: usize,
) -> Result<Vec<Window, MAX_WINDOWS>, RangesError> {
    if !(1..=2).contains(&parent_addr_cells) || !(1..=2).contains(&size_cells) {
        return Err(RangesError::Malformed);
    }
    let entry = 4 * (3 + parent_addr_cells + size_cells);
    if !ranges.len().is_multiple_of(entry) {
        return Err(RangesError::Malformed);
    }
    let mut out = Vec::new();
    for e in ranges.chunks_exact(entry) {
        let hi = cells(e, 1) as u32;
        let pci_base = cells(&e[4..], 2);
        let cpu_base = cells(&e[12..], parent_addr_cells);
        let size = cells(&e[12 + 4 * parent_addr_cells..], size_cells);
        let space = match (hi >> 24) & 0b11 {
            1 => Space::Io,
            2 => Space::Mem32,
            3 => Space::Mem64,
            _ => continue,
        };
        if size == 0 || pci_base.checked_add(size).is_none() {
            continue;
        }
        let w = Window {
            space,
            prefetchable: hi & (1 << 30) != 0,
            pci_base,
            cpu_base,
            size,
        };
        out.push(w).map_err(|_| RangesError::TooMany)?;
    }
    Ok(out)
}

/// Why a BAR could not be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignError {
    /// No window of a usable kind had room.
    NoSpace,
}

impl fmt::Display for AssignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no room for BAR in any host bridge window")
    }
}

/// Outcome of [`assign_bars`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AssignReport {
    /// BARs given a fresh address.
    pub assigned: usize,
    /// Firmware assignments kept.
    pub kept: usize,
    /// BARs left unassigned for lack of space (their device cannot be enabled).
    pub failed: usize,
}

/// Most BARs one allocator tracks (and one `assign_bars` call places).
pub const MAX_BARS: usize = 128;

/// Places BARs in windows: natural alignment, no overlaps.
pub struct BarAllocator {
    windows: Vec<Window, MAX_WINDOWS>,
    /// Busy PCI ranges `(start, end_exclusive)` per space family, kept sorted.
    busy: Vec<(u64, u64, bool), MAX_BARS>,
}

impl BarAllocator {
    /// An allocator over `windows` (from [`parse_ranges`]).
    pub fn new(windows: &[Window]) -> Self {
        let mut w = Vec::new();
        for win in windows.iter().take(MAX_WINDOWS) {
            let _ = w.push(*win);
        }
        BarAllocator {
            windows: w,
            busy: Vec::new(),
        }
    }

    /// Which windows a BAR may use, best first: 64-bit BARs prefer the 64-bit
    /// window, then a 32-bit one; a non-prefetchable BAR never goes into a
    /// prefetchable window (PCI-to-PCI Bridge 1.2 §4.3).
    fn fits(win: &Window, bar: &Bar) -> Option<u8> {
        let space = bar.space?;
        if win.prefetchable && !bar.prefetchable {
            return None;
        }
        match (space, win.space) {
            (Space::Io, Space::Io) | (Space::Mem32, Space::Mem32) => Some(1),
            (Space::Mem64, Space::Mem64) => Some(0),
            (Space::Mem64, Space::Mem32) => Some(1),
            _ => None,
        }
    }

    fn overlaps(&self, io: bool, start: u64, end: u64) -> Option<u64> {
        self.busy
            .iter()
            .find(|&&(s, e, i)| i == io && start < e && s < end)
            .map(|b| b.1)
    }

    fn reserve(&mut self, io: bool, start: u64, end: u64) -> bool {
        self.busy.push((start, end, io)).is_ok()
    }

    /// Keeps a firmware assignment if a window holds it and nothing overlaps.
    /// Returns its CPU address.
    pub fn keep(&mut self, bar: &Bar) -> Option<u64> {
        let pci = bar.pci_addr?;
        if !pci.is_multiple_of(bar.size) {
            return None;
        }
        let io = bar.space == Some(Space::Io);
        let win = *self
            .windows
            .iter()
            .filter(|w| Self::fits(w, bar).is_some())
            .find(|w| w.contains(pci, bar.size))?;
        if self.overlaps(io, pci, pci + bar.size).is_some() {
            return None;
        }
        self.reserve(io, pci, pci + bar.size)
            .then(|| win.cpu_of(pci))
    }

    /// Finds a fresh naturally aligned place; returns `(pci, cpu)`.
    pub fn allocate(&mut self, bar: &Bar) -> Result<(u64, u64), AssignError> {
        let io = bar.space == Some(Space::Io);
        for pass in 0..=1 {
            for i in 0..self.windows.len() {
                let win = self.windows[i];
                if Self::fits(&win, bar) != Some(pass) {
                    continue;
                }
                if let Some(pci) = self.first_fit(&win, io, bar.size) {
                    if self.reserve(io, pci, pci + bar.size) {
                        return Ok((pci, win.cpu_of(pci)));
                    }
                    return Err(AssignError::NoSpace);
                }
            }
        }
        Err(AssignError::NoSpace)
    }

    fn first_fit(&self, win: &Window, io: bool, size: u64) -> Option<u64> {
        // Bus address 0 is never handed out: it reads as "unassigned".
        let mut at = win.pci_base.max(if io { 0x1000 } else { 1 });
        // Each step jumps past one busy range, so the loop is bounded by their number.
        for _ in 0..=self.busy.len() {
            at = at.checked_next_multiple_of(size)?;
            let end = at.checked_add(size)?;
            if !win.contains(at, size) {
                return None;
            }
            match self.overlaps(io, at, end) {
                None => return Some(at),
                Some(busy_end) => at = busy_end,
            }
        }
        None
    }
}

/// Assigns every BAR of `functions` and programs the registers.
///
/// Firmware assignments inside a window are kept (first pass); the rest are
/// placed largest first, which with natural alignment wastes no space between
/// them. Each register write happens with decode disabled and the previous
/// command value restored. A BAR that finds no room stays unassigned and is
/// counted in [`AssignReport::failed`].
pub fn assign_bars<C: ConfigAccess + ?Sized>(
    access: &C,
    functions: &mut [PciFunction],
    alloc: &mut BarAllocator,
) -> AssignReport {
    let mut report = AssignReport::default();
    let mut todo: Vec<(u16, u8), MAX_BARS> = Vec::new();
    for (f, func) in functions.iter_mut().enumerate() {
        for (b, bar) in func.bars.iter_mut().enumerate() {
            if !bar.is_implemented() {
                continue;
            }
            match alloc.keep(bar) {
                Some(cpu) => {
                    bar.cpu_addr = Some(cpu);
                    report.kept += 1;
                }
                None => {
                    bar.pci_addr = None;
                    if todo.push((f as u16, b as u8)).is_err() {
                        report.failed += 1;
                    }
                }
            }
        }
    }
    todo.sort_unstable_by_key(|&(f, b)| {
        core::cmp::Reverse(functions[usize::from(f)].bars[usize::from(b)].size)
    });
    for (f, b) in todo {
        let (func, b) = (&mut functions[usize::from(f)], usize::from(b));
        match alloc.allocate(&func.bars[b]) {
            Ok((pci, cpu)) => {
                func.bars[b].pci_addr = Some(pci);
                func.bars[b].cpu_addr = Some(cpu);
                write_bar(access, func.bdf, b, &func.bars[b], pci);
                report.assigned += 1;
            }
            Err(AssignError::NoSpace) => report.failed += 1,
        }
    }
    report
}

fn write_bar<C: ConfigAccess + ?Sized>(access: &C, bdf: Bdf, index: usize, bar: &Bar, pci: u64) {
    let cmd = access.command(bdf);
    access.set_command(bdf, cmd - (Command::MEMORY_SPACE | Command::IO_SPACE));
    let off = bar_off(index);
    let low_bits = access.read32(bdf, off)
        & if bar.space == Some(Space::Io) {
            0x3
        } else {
            0xf
        };
    access.write32(bdf, off, pci as u32 | low_bits);
    if bar.space == Some(Space::Mem64) {
        access.write32(bdf, off + 4, (pci >> 32) as u32);
    }
    access.set_command(bdf, cmd);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::fake::{FakeBar, FakeConfigSpace};
    use crate::pci::scan::scan;

    /// The `ranges` of QEMU virt's PCIe host (dumped fixture): I/O 64 KiB at CPU
    /// 0x3eff0000, 32-bit memory 0x10000000 + 0x2eff0000, 64-bit 0x80_0000_0000 + 512 GiB.
    const QEMU_RANGES: [u32; 21] = [
        0x0100_0000,
        0,
        0,
        0,
        0x3eff_0000,
        0,
        0x1_0000, //
        0x0200_0000,
        0,
        0x1000_0000,
        0,
        0x1000_0000,
        0,
        0x2eff_0000, //
        0x0300_0000,
        0x80,
        0,
        0x80,
        0,
        0x80,
        0,
    ];

    fn be(cells: &[u32]) -> std::vec::Vec<u8> {
        cells.iter().flat_map(|c| c.to_be_bytes()).collect()
    }

    fn qemu_windows() -> Vec<Window, MAX_WINDOWS> {
        parse_ranges(&be(&QEMU_RANGES), 2, 2).unwrap()
    }

    fn b(bus: u8, dev: u8, func: u8) -> Bdf {
        Bdf::new(bus, dev, func).unwrap()
    }

    #[test]
    fn parses_qemu_ranges() {
        let w = qemu_windows();
        assert_eq!(w.len(), 3);
        assert_eq!(
            (w[0].space, w[0].pci_base, w[0].cpu_base, w[0].size),
            (Space::Io, 0, 0x3eff_0000, 0x1_0000)
        );
        assert_eq!(
            (w[1].space, w[1].pci_base, w[1].size),
            (Space::Mem32, 0x1000_0000, 0x2eff_0000)
        );
        assert_eq!(
            (w[2].space, w[2].pci_base, w[2].size),
            (Space::Mem64, 0x80_0000_0000, 0x80_0000_0000)
        );
        assert!(!w[2].prefetchable);
        let pf = be(&[0x4300_0000, 0x1, 0, 0x1, 0, 0, 0x1000_0000]);
        let w = parse_ranges(&pf, 2, 2).unwrap();
        assert!(w[0].prefetchable && w[0].space == Space::Mem64);
        assert_eq!(parse_ranges(&pf[..20], 2, 2), Err(RangesError::Malformed));
        assert_eq!(parse_ranges(&pf, 3, 2), Err(RangesError::Malformed));
    }

    #[test]
    fn sizes_every_bar_kind_with_decode_off() {
        let cfg = FakeConfigSpace::new();
        let bdf = b(0, 1, 0);
        cfg.add_endpoint(bdf, 0x1af4, 0x1000, [2, 0, 0]);
        cfg.set_bar(bdf, 0, FakeBar::Io { size: 0x20 });
        cfg.set_bar(
            bdf,
            1,
            FakeBar::Mem32 {
                size: 0x1000,
                prefetchable: false,
            },
        );
        cfg.set_bar(
            bdf,
            2,
            FakeBar::Mem64 {
                size: 1 << 33,
                prefetchable: true,
            },
        );
        cfg.set_bar(
            bdf,
            5,
            FakeBar::Mem32 {
                size: 0x4000_0000,
                prefetchable: true,
            },
        );
        // Firmware left decode on: sizing must switch it off and restore it.
        cfg.set_command(bdf, Command::MEMORY_SPACE | Command::IO_SPACE);
        let bars = size_bars(&cfg, bdf, 6);
        assert_eq!(cfg.decode_violations(), 0);
        assert_eq!(cfg.command(bdf), Command::MEMORY_SPACE | Command::IO_SPACE);
        assert_eq!((bars[0].space, bars[0].size), (Some(Space::Io), 0x20));
        assert_eq!((bars[1].space, bars[1].size), (Some(Space::Mem32), 0x1000));
        assert_eq!(
            (bars[2].space, bars[2].size, bars[2].prefetchable),
            (Some(Space::Mem64), 1 << 33, true)
        );
        assert!(!bars[3].is_implemented() && !bars[4].is_implemented());
        assert_eq!((bars[5].size, bars[5].prefetchable), (0x4000_0000, true));
        assert!(bars.iter().all(|b| b.pci_addr.is_none()));
        // Registers restored to their pre-sizing values.
        assert_eq!(cfg.read32(bdf, reg::BAR0 + 8), 0b1100);
        assert_eq!(cfg.read32(bdf, reg::BAR0 + 12), 0);
    }

    #[test]
    fn sixty_four_bit_bar_in_last_slot_is_ignored() {
        let cfg = FakeConfigSpace::new();
        let bdf = b(0, 1, 0);
        cfg.add_endpoint(bdf, 0x1af4, 0x1000, [2, 0, 0]);
        cfg.set_bar(
            bdf,
            5,
            FakeBar::Mem64 {
                size: 0x1000,
                prefetchable: false,
            },
        );
        assert!(size_bars(&cfg, bdf, 6).iter().all(|b| !b.is_implemented()));
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
        let mut alloc = BarAllocator::new(&windows);
        let rep = assign_bars(&cfg, &mut funcs, &mut alloc);
        assert_eq!(
            rep,
            AssignReport {
                assigned: 8,
                kept: 0,
                failed: 0
            }
        );
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
        let mut alloc = BarAllocator::new(&windows[..2]);
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
        let mut alloc = BarAllocator::new(&windows);
        let rep = assign_bars(&cfg, &mut funcs, &mut alloc);
        assert_eq!(
            rep,
            AssignReport {
                assigned: 7,
                kept: 1,
                failed: 0
            }
        );
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
        let rep = assign_bars(&cfg, &mut funcs, &mut BarAllocator::new(&small));
        assert_eq!((rep.assigned, rep.failed), (2, 1));
        // A non-prefetchable BAR never lands in a prefetchable window.
        let pf = [Window {
            prefetchable: true,
            ..small[0]
        }];
        let bar = funcs[0].bars[0];
        assert_eq!(
            BarAllocator::new(&pf).allocate(&bar),
            Err(AssignError::NoSpace)
        );
    }
}
