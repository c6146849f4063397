//! `FakeConfigSpace`: a host model of PCI configuration space for tests.
//!
//! The scan, BAR sizing, capability walk and MSI code must be checked without a
//! machine, including against devices no real board offers (looping capability
//! lists, full buses, odd BAR mixes). The model keeps a 4 KiB space and a
//! per-bit write mask per function, so BAR sizing behaves as in PCI Local Bus
//! 3.0 §6.2.5.1 (write all-ones, read back the size mask and the read-only type
//! bits), and bridges hide their secondary bus until a bus number is assigned.
//! It also records every write and counts BAR sizings done with decode on.

use core::cell::RefCell;
use std::vec::Vec;

use super::config::{Bdf, ConfigAccess, HEADER_MULTIFUNCTION, STATUS_CAP_LIST, reg};

/// How a fake BAR decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeBar {
    /// 32-bit memory BAR of `size` bytes (power of two ≥ 16).
    Mem32 {
        /// Size in bytes.
        size: u32,
        /// Prefetchable bit.
        prefetchable: bool,
    },
    /// 64-bit memory BAR (uses this slot and the next).
    Mem64 {
        /// Size in bytes.
        size: u64,
        /// Prefetchable bit.
        prefetchable: bool,
    },
    /// I/O BAR of `size` bytes (power of two ≥ 4).
    Io {
        /// Size in bytes.
        size: u32,
    },
}

struct FakeFn {
    bdf: Bdf,
    cfg: [u8; 4096],
    wmask: [u8; 4096],
    last_cap: Option<u16>,
    last_ext: Option<u16>,
}

impl FakeFn {
    fn get32(&self, off: u16) -> u32 {
        let o = usize::from(off & 0xffc);
        u32::from_le_bytes(self.cfg[o..o + 4].try_into().unwrap())
    }
    fn put(&mut self, off: u16, bytes: &[u8]) {
        let o = usize::from(off);
        self.cfg[o..o + bytes.len()].copy_from_slice(bytes);
    }
    fn mask(&mut self, off: u16, bytes: &[u8]) {
        let o = usize::from(off);
        self.wmask[o..o + bytes.len()].copy_from_slice(bytes);
    }
    fn is_bridge(&self) -> bool {
        self.cfg[usize::from(reg::HEADER_TYPE)] & 0x7f == 1
    }
}

#[derive(Default)]
struct Inner {
    fns: Vec<FakeFn>,
    writes: Vec<(Bdf, u16, u32)>,
    decode_violations: usize,
}

/// A configuration space holding fake functions; absent ones read all-ones.
#[derive(Default)]
pub struct FakeConfigSpace {
    inner: RefCell<Inner>,
}

impl FakeConfigSpace {
    /// An empty space.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, bdf: Bdf, vendor: u16, device: u16, class: [u8; 3], header: u8) {
        let mut f = FakeFn {
            bdf,
            cfg: [0; 4096],
            wmask: [0; 4096],
            last_cap: None,
            last_ext: None,
        };
        f.put(reg::VENDOR_ID, &vendor.to_le_bytes());
        f.put(reg::DEVICE_ID, &device.to_le_bytes());
        // Class dword: revision 1, then prog-if, subclass, base class.
        f.put(reg::REVISION, &[1, class[2], class[1], class[0]]);
        f.cfg[usize::from(reg::HEADER_TYPE)] = header;
        // COMMAND: I/O, memory, bus master, INTx disable are writable.
        f.mask(reg::COMMAND, &[0x07, 0x04]);
        f.mask(reg::INTERRUPT_LINE, &[0xff]);
        if header == 1 {
            f.mask(reg::PRIMARY_BUS, &[0xff; 3]);
            // Windows (PCI-to-PCI Bridge 1.2 §3.2.5.6-10): 32-bit I/O and 64-bit
            // prefetchable decode, as QEMU's pci-bridge and pcie-root-port have.
            f.put(reg::IO_BASE, &[0x01, 0x01]);
            f.mask(reg::IO_BASE, &[0xf0, 0xf0]);
            f.mask(reg::MEMORY_BASE, &[0xf0, 0xff, 0xf0, 0xff]);
            f.put(reg::PREF_BASE, &[0x01, 0x00, 0x01, 0x00]);
            f.mask(reg::PREF_BASE, &[0xf0, 0xff, 0xf0, 0xff]);
            f.mask(reg::PREF_BASE_UPPER, &[0xff; 8]);
            f.mask(reg::IO_BASE_UPPER, &[0xff; 4]);
        }
        let mut inner = self.inner.borrow_mut();
        inner.fns.retain(|g| g.bdf != bdf);
        inner.fns.push(f);
    }

    fn with<R>(&self, bdf: Bdf, f: impl FnOnce(&mut FakeFn) -> R) -> R {
        let mut inner = self.inner.borrow_mut();
        let func = inner.fns.iter_mut().find(|g| g.bdf == bdf);
        f(func.expect("no such fake function"))
    }

    /// Adds a type 0 function with `class` = [base class, subclass, prog-if].
    pub fn add_endpoint(&self, bdf: Bdf, vendor: u16, device: u16, class: [u8; 3]) {
        self.add(bdf, vendor, device, class, 0);
    }

    /// Adds a PCI-to-PCI bridge (type 1 header, class 06.04).
    pub fn add_bridge(&self, bdf: Bdf, vendor: u16, device: u16) {
        self.add(bdf, vendor, device, [0x06, 0x04, 0x00], 1);
    }

    /// Makes bridge `bdf`'s prefetchable window absent (registers read zero) and its
    /// I/O window absent too if `io` is false.
    pub fn limit_bridge_windows(&self, bdf: Bdf, io: bool) {
        self.with(bdf, |f| {
            f.put(reg::PREF_BASE, &[0; 12]);
            f.mask(reg::PREF_BASE, &[0; 12]);
            if !io {
                f.put(reg::IO_BASE, &[0; 2]);
                f.mask(reg::IO_BASE, &[0; 2]);
            }
        });
    }

    /// The address range bridge `bdf` forwards in one window, decoded from its
    /// registers as the hardware would: `(base, limit inclusive)`, `None` if closed.
    pub fn bridge_window(&self, bdf: Bdf, io: bool, prefetchable: bool) -> Option<(u64, u64)> {
        let (base, limit) = if io {
            let lo = u64::from(self.read16(bdf, reg::IO_BASE));
            let up = u64::from(self.read32(bdf, reg::IO_BASE_UPPER));
            (
                (lo & 0xf0) << 8 | (up & 0xffff) << 16,
                (lo & 0xf000) | 0xfff | (up >> 16) << 16,
            )
        } else {
            let off = if prefetchable {
                reg::PREF_BASE
            } else {
                reg::MEMORY_BASE
            };
            let lo = u64::from(self.read32(bdf, off));
            let (bu, lu) = if prefetchable {
                (
                    u64::from(self.read32(bdf, reg::PREF_BASE_UPPER)),
                    u64::from(self.read32(bdf, reg::PREF_LIMIT_UPPER)),
                )
            } else {
                (0, 0)
            };
            (
                (lo & 0xfff0) << 16 | bu << 32,
                (lo >> 16 & 0xfff0) << 16 | 0xf_ffff | lu << 32,
            )
        };
        (base <= limit).then_some((base, limit))
    }

    /// Gives `bdf` a PCIe capability at 0x40 with device/port type `port_type`
    /// (PCIe Base 4.0 §7.5.3.2: 4 root port, 7 PCIe-to-PCI bridge).
    pub fn set_pcie_port_type(&self, bdf: Bdf, port_type: u8) {
        let cap = self.add_cap(bdf, 0x40, 0x10);
        self.poke16(bdf, cap + 2, u16::from(port_type) << 4 | 2);
    }

    /// Sets header-type bit 7 on `bdf` (function 0 of a multi-function device).
    pub fn set_multifunction(&self, bdf: Bdf) {
        self.with(bdf, |f| {
            f.cfg[usize::from(reg::HEADER_TYPE)] |= HEADER_MULTIFUNCTION
        });
    }

    /// Sets the interrupt pin (1 = INTA#).
    pub fn set_interrupt_pin(&self, bdf: Bdf, pin: u8) {
        self.with(bdf, |f| f.cfg[usize::from(reg::INTERRUPT_PIN)] = pin);
    }

    /// Implements BAR `index` with the given decode.
    pub fn set_bar(&self, bdf: Bdf, index: usize, bar: FakeBar) {
        let off = reg::BAR0 + 4 * index as u16;
        self.with(bdf, |f| match bar {
            FakeBar::Mem32 { size, prefetchable } => {
                f.put(off, &(u32::from(prefetchable) << 3).to_le_bytes());
                f.mask(off, &(!(size - 1) & !0xf).to_le_bytes());
            }
            FakeBar::Mem64 { size, prefetchable } => {
                f.put(off, &(0b100 | u32::from(prefetchable) << 3).to_le_bytes());
                let m = !(size - 1);
                f.mask(off, &((m as u32) & !0xf).to_le_bytes());
                f.mask(off + 4, &((m >> 32) as u32).to_le_bytes());
            }
            FakeBar::Io { size } => {
                f.put(off, &1u32.to_le_bytes());
                f.mask(off, &(!(size - 1) & !3).to_le_bytes());
            }
        });
    }

    /// Adds a legacy capability `id` at `offset`, appended to the function's
    /// list. Returns `offset`.
    pub fn add_cap(&self, bdf: Bdf, offset: u16, id: u8) -> u16 {
        self.with(bdf, |f| {
            f.put(offset, &[id, 0]);
            match f.last_cap {
                None => {
                    f.cfg[usize::from(reg::CAP_PTR)] = offset as u8;
                    let st = f.cfg[usize::from(reg::STATUS)] | STATUS_CAP_LIST as u8;
                    f.cfg[usize::from(reg::STATUS)] = st;
                }
                Some(prev) => f.cfg[usize::from(prev) + 1] = offset as u8,
            }
            f.last_cap = Some(offset);
        });
        offset
    }

    /// Adds an MSI capability (PCI 3.0 §6.8.1): `mmc` = log2 of vectors offered.
    pub fn add_msi(&self, bdf: Bdf, offset: u16, mmc: u8, is64: bool, per_vector_mask: bool) {
        self.add_cap(bdf, offset, 0x05);
        let ctrl = u16::from(mmc) << 1 | u16::from(is64) << 7 | u16::from(per_vector_mask) << 8;
        self.with(bdf, |f| {
            f.put(offset + 2, &ctrl.to_le_bytes());
            // Enable and Multiple Message Enable are writable.
            f.mask(offset + 2, &[0x71, 0]);
            f.mask(offset + 4, &0xffff_fffcu32.to_le_bytes());
            let data = if is64 {
                f.mask(offset + 8, &[0xff; 4]);
                offset + 12
            } else {
                offset + 8
            };
            f.mask(data, &[0xff, 0xff]);
            if per_vector_mask {
                let bits = ((1u64 << (1 << mmc)) - 1) as u32;
                f.mask(data + 4, &bits.to_le_bytes());
            }
        });
    }

    /// Adds an MSI-X capability (PCI 3.0 §6.8.2) with `table_size` entries.
    pub fn add_msix(
        &self,
        bdf: Bdf,
        offset: u16,
        table_size: u16,
        table: (u8, u32),
        pba: (u8, u32),
    ) {
        self.add_cap(bdf, offset, 0x11);
        self.with(bdf, |f| {
            f.put(offset + 2, &(table_size - 1).to_le_bytes());
            // Function Mask and MSI-X Enable are writable.
            f.mask(offset + 2, &[0, 0xc0]);
            f.put(offset + 4, &(table.1 | u32::from(table.0)).to_le_bytes());
            f.put(offset + 8, &(pba.1 | u32::from(pba.0)).to_le_bytes());
        });
    }

    /// Adds an extended capability (PCIe 4.0 §7.6.3) at `offset` (≥ 0x100).
    pub fn add_ext_cap(&self, bdf: Bdf, offset: u16, id: u16, version: u8) {
        self.with(bdf, |f| {
            f.put(
                offset,
                &(u32::from(id) | u32::from(version) << 16).to_le_bytes(),
            );
            if let Some(prev) = f.last_ext {
                let hdr = f.get32(prev) & 0x000f_ffff | u32::from(offset) << 20;
                f.put(prev, &hdr.to_le_bytes());
            }
            f.last_ext = Some(offset);
        });
    }

    /// Writes raw bytes, bypassing write masks (hostile or firmware state).
    pub fn poke8(&self, bdf: Bdf, offset: u16, value: u8) {
        self.with(bdf, |f| f.cfg[usize::from(offset)] = value);
    }

    /// Writes a raw 16-bit value, bypassing write masks.
    pub fn poke16(&self, bdf: Bdf, offset: u16, value: u16) {
        self.with(bdf, |f| f.put(offset, &value.to_le_bytes()));
    }

    /// Writes a raw dword, bypassing write masks.
    pub fn poke32(&self, bdf: Bdf, offset: u16, value: u32) {
        self.with(bdf, |f| f.put(offset, &value.to_le_bytes()));
    }

    /// The last value written by software to the dword at `offset`.
    pub fn last_write(&self, bdf: Bdf, offset: u16) -> Option<u32> {
        let inner = self.inner.borrow();
        let hit = inner
            .writes
            .iter()
            .rev()
            .find(|w| w.0 == bdf && w.1 == offset & !3);
        hit.map(|w| w.2)
    }

    /// Number of writes software made to `bdf`.
    pub fn write_count(&self, bdf: Bdf) -> usize {
        self.inner
            .borrow()
            .writes
            .iter()
            .filter(|w| w.0 == bdf)
            .count()
    }

    /// BAR sizing writes (all-ones) made while memory or I/O decode was on.
    pub fn decode_violations(&self) -> usize {
        self.inner.borrow().decode_violations
    }

    fn visible(inner: &Inner, bdf: Bdf) -> bool {
        bdf.bus == 0
            || inner.fns.iter().any(|g| {
                g.is_bridge()
                    && g.bdf.bus != bdf.bus
                    && g.cfg[usize::from(reg::SECONDARY_BUS)] == bdf.bus
            })
    }
}

impl ConfigAccess for FakeConfigSpace {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        let inner = self.inner.borrow();
        if !Self::visible(&inner, bdf) {
            return u32::MAX;
        }
        match inner.fns.iter().find(|g| g.bdf == bdf) {
            Some(f) => f.get32(offset),
            None => u32::MAX,
        }
    }

    fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
        let off = offset & 0xffc;
        let mut inner = self.inner.borrow_mut();
        if !Self::visible(&inner, bdf) {
            return;
        }
        inner.writes.push((bdf, off, value));
        let Some(f) = inner.fns.iter_mut().find(|g| g.bdf == bdf) else {
            return;
        };
        let bars_end = if f.is_bridge() { 0x18 } else { 0x28 };
        let decoding = f.cfg[usize::from(reg::COMMAND)] & 0x3 != 0;
        let violation = (reg::BAR0..bars_end).contains(&off) && value == u32::MAX && decoding;
        let o = usize::from(off);
        for (i, b) in value.to_le_bytes().into_iter().enumerate() {
            let m = f.wmask[o + i];
            f.cfg[o + i] = (f.cfg[o + i] & !m) | (b & m);
        }
        if violation {
            inner.decode_violations += 1;
        }
    }
}
