//! The host bridge's address windows (DT `ranges`) and first-fit placement in them.
//!
//! Everything a PCI function decodes must lie in a window the host bridge forwards.
//! The windows come from the `ranges` property of `pci-host-ecam-generic` (IEEE 1275
//! PCI binding §2.2.1.1 for the 3-cell PCI address encoding). [`HostAllocator`] places
//! requests (a root-bus BAR, or a whole bridge window sized by `assign`) naturally
//! aligned and without overlap, and keeps valid firmware assignments (UEFI boots).

use core::fmt;

use heapless::Vec;

use super::bar::{Bar, Space};

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
    /// Whether `[pci, pci + size)` lies inside the window.
    pub fn contains(&self, pci: u64, size: u64) -> bool {
        pci >= self.pci_base
            && pci
                .checked_add(size)
                .is_some_and(|end| end <= self.pci_base + self.size)
    }

    /// The CPU address of bus address `pci` (inside the window).
    pub fn cpu_of(&self, pci: u64) -> u64 {
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

impl fmt::Display for RangesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RangesError::Malformed => "malformed ranges property",
            RangesError::TooMany => "too many windows in the ranges property",
        })
    }
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

/// Why something could not be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignError {
    /// No window of a usable kind had room.
    NoSpace,
}

impl fmt::Display for AssignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no room in any host bridge window")
    }
}

/// A range of bus addresses to place: a BAR, or a bridge window holding several.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// I/O, or memory the decoder can place below 4 GiB only (`Mem32`) or anywhere
    /// (`Mem64`).
    pub space: Space,
    /// Whether prefetchable memory is acceptable (never for a non-prefetchable BAR).
    pub prefetchable: bool,
    /// Bytes.
    pub size: u64,
    /// Alignment (a power of two).
    pub align: u64,
}

impl Request {
    /// A sized BAR: natural alignment. `None` for an unimplemented slot.
    pub fn bar(bar: &Bar) -> Option<Self> {
        Some(Request {
            space: bar.space?,
            prefetchable: bar.prefetchable,
            size: bar.size,
            align: bar.size,
        })
    }
}

/// Most ranges one allocator tracks.
pub const MAX_BARS: usize = 128;

/// Places requests in the host bridge's windows: aligned, no overlaps.
pub struct HostAllocator {
    windows: Vec<Window, MAX_WINDOWS>,
    /// Busy PCI ranges `(start, end_exclusive, io)`.
    busy: Vec<(u64, u64, bool), MAX_BARS>,
}

impl HostAllocator {
    /// An allocator over `windows` (from [`parse_ranges`]).
    pub fn new(windows: &[Window]) -> Self {
        let mut w = Vec::new();
        for win in windows.iter().take(MAX_WINDOWS) {
            let _ = w.push(*win);
        }
        HostAllocator {
            windows: w,
            busy: Vec::new(),
        }
    }

    /// Which windows a request may use, best first: 64-bit requests prefer the 64-bit
    /// window, then a 32-bit one; a non-prefetchable request never goes into a
    /// prefetchable window (PCI-to-PCI Bridge 1.2 §4.3).
    fn fits(win: &Window, req: &Request) -> Option<u8> {
        if win.prefetchable && !req.prefetchable {
            return None;
        }
        match (req.space, win.space) {
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

    /// The window holding `[pci, pci + size)` of `req`'s kind, if any.
    pub fn window_of(&self, req: &Request, pci: u64) -> Option<Window> {
        self.windows
            .iter()
            .filter(|w| Self::fits(w, req).is_some())
            .find(|w| w.contains(pci, req.size))
            .copied()
    }

    /// Keeps a firmware assignment at bus address `pci` if a window holds it and
    /// nothing overlaps. Returns its CPU address.
    pub fn keep(&mut self, req: &Request, pci: u64) -> Option<u64> {
        if !pci.is_multiple_of(req.align) {
            return None;
        }
        let io = req.space == Space::Io;
        let win = self.window_of(req, pci)?;
        if self.overlaps(io, pci, pci + req.size).is_some() {
            return None;
        }
        self.reserve(io, pci, pci + req.size)
            .then(|| win.cpu_of(pci))
    }

    /// Finds a fresh aligned place; returns `(pci, cpu)`.
    pub fn allocate(&mut self, req: &Request) -> Result<(u64, u64), AssignError> {
        let io = req.space == Space::Io;
        for pass in 0..=1 {
            for i in 0..self.windows.len() {
                let win = self.windows[i];
                if Self::fits(&win, req) != Some(pass) {
                    continue;
                }
                if let Some(pci) = self.first_fit(&win, io, req) {
                    if self.reserve(io, pci, pci + req.size) {
                        return Ok((pci, win.cpu_of(pci)));
                    }
                    return Err(AssignError::NoSpace);
                }
            }
        }
        Err(AssignError::NoSpace)
    }

    fn first_fit(&self, win: &Window, io: bool, req: &Request) -> Option<u64> {
        // Bus address 0 is never handed out: it reads as "unassigned".
        let mut at = win.pci_base.max(if io { 0x1000 } else { 1 });
        // Each step jumps past one busy range, so the loop is bounded by their number.
        for _ in 0..=self.busy.len() {
            at = at.checked_next_multiple_of(req.align)?;
            let end = at.checked_add(req.size)?;
            if !win.contains(at, req.size) {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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

    pub(crate) fn qemu_windows() -> Vec<Window, MAX_WINDOWS> {
        parse_ranges(&be(&QEMU_RANGES), 2, 2).unwrap()
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
    fn requests_are_aligned_and_never_overlap() {
        let mut a = HostAllocator::new(&qemu_windows());
        let window = Request {
            space: Space::Mem32,
            prefetchable: false,
            size: 3 << 20,
            align: 2 << 20,
        };
        let (p1, c1) = a.allocate(&window).unwrap();
        let (p2, _) = a.allocate(&window).unwrap();
        assert_eq!(p1 % (2 << 20), 0);
        assert_eq!(c1, p1, "the 32-bit window is identity-mapped on virt");
        assert!(p2 >= p1 + (3 << 20), "{p1:#x} {p2:#x}");
        // Keeping overlapping firmware ranges fails; a free aligned one succeeds.
        assert_eq!(a.keep(&window, p1), None);
        assert!(a.keep(&window, 0x2000_0000).is_some());
        assert_eq!(a.keep(&window, 0x2010_0000), None, "misaligned");
    }
}
