//! PCI functions handed to user-mode drivers: the kernel's half of a `Device` capability.
//!
//! A [`Handoff`] is a claimed function whose decode is on and bus mastering off until its
//! driver asks. The kernel keeps everything a driver could use to reach beyond its device:
//! it alone allocates vectors and writes MSI/MSI-X entries ([`Handoff::line`]), maps only
//! the BAR pages that do not hold the MSI-X table or PBA ([`Handoff::window`]), and decides
//! when DMA memory the device was given may be freed ([`Handoff::retire_dma`],
//! [`Handoff::stop`]). A buffer is freed only once the kernel has read that the device
//! stopped: bus mastering off (read back) and the device's own DMA engine idle, for the
//! devices whose engine the kernel knows (edu). Until then it stays with the function's
//! record, across drivers, and `/proc/dma` lists it. docs/user-drivers.md has the order.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use abi::Error;
use abi::dev::{
    BAR_64, BAR_MEM, BAR_MSIX, BAR_PREFETCH, BarInfo, DevInfo, IRQ_INTX, IRQ_MSI, IRQ_MSIX,
};
use caps::irq::{IrqLine, Masked, Owner};
use caps::msi::MsiMessage;
use drivers::edu::{Edu, EduMmio};
use drivers::pci::bar::Space;
use drivers::pci::config::{Bdf, Command, ConfigAccess};
use drivers::pci::msi::{MsiCap, MsixCap, MsixTable};

use super::{Device, PciError, bus, claim_with, msi_vectors};
use crate::arch::devices::{self, Register};
use crate::arch::dma::FrameBuffer;
use crate::irq as kirq;
use crate::mem::frames::FRAME;
use crate::sync::IrqLock;

/// How long `stop` waits for a device's DMA engine to go idle after bus mastering went off.
const STOP_WAIT_NS: u64 = 250_000_000;

/// A device's own "DMA engine idle" register, where the kernel knows it.
enum Engine {
    /// QEMU's edu: DMA command bit 0 reads 1 while a transfer runs.
    Edu(Edu<EduMmio>),
    /// An xHCI controller (class 0c.03.30): it does no DMA once halted (USBSTS.HCH, xHCI
    /// 1.2 §5.4.2); the stop clears USBCMD.R/S.
    Xhci {
        /// USBCMD.
        usbcmd: Register,
        /// USBSTS.
        usbsts: Register,
    },
    /// A modern virtio device: after `device_status` is written 0 and reads back 0 the
    /// device has reset and does no DMA (virtio 1.2 §2.4, §4.1.4.3.1). The value is its
    /// common configuration's `device_status`.
    Virtio(Register),
    /// Nothing known: only bus mastering off is confirmed, which a later owner can undo.
    Unknown,
}

/// A claimed function lent to a user-mode driver.
pub struct Handoff {
    dev: Device,
    engine: Engine,
    msix: Option<MsixCap>,
    msi: Option<MsiCap>,
    /// The MSI-X table, mapped on the first MSI-X line.
    table: IrqLock<Option<Arc<MsixTable>>>,
    /// Interrupt sources in use: MSI-X entries, or `u16::MAX` for the MSI vector.
    sources: IrqLock<Vec<u16>>,
}

/// Where a user line's interrupt comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The MSI capability's single vector.
    Msi,
    /// An MSI-X table entry.
    MsiX(u16),
}

/// What the kernel keeps about a function across drivers (`/proc/dma`, `/proc/devices`).
struct Record {
    bdf: Bdf,
    /// DMA buffers of earlier owners, freed once the device is read stopped.
    held: Vec<FrameBuffer>,
    /// Its user lines alive now: INTID and the INTID's count when the line was made.
    live: Vec<(u32, u64)>,
    report: DeviceReport,
}

impl Record {
    /// The report with the interrupts of the lines alive now added.
    fn now(&self) -> DeviceReport {
        let live: u64 = self
            .live
            .iter()
            .map(|&(intid, base)| crate::irq::count(intid) - base)
            .sum();
        DeviceReport {
            interrupts: self.report.interrupts + live,
            ..self.report
        }
    }
}

/// What `/proc/devices` shows for a function handed to user space, since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceReport {
    /// The function.
    pub bdf: Option<Bdf>,
    /// Times it was claimed for a user driver.
    pub grants: u64,
    /// Interrupts its user lines delivered (those gone and those alive).
    pub interrupts: u64,
    /// Stops that read the device stopped.
    pub stops_confirmed: u64,
    /// Of those, stops that found its DMA engine busy and waited for it.
    pub stops_waited: u64,
    /// Stops that could not confirm it (its DMA memory stays held).
    pub stops_unconfirmed: u64,
}

/// What user lines of one function on one INTID delivered, since boot (scripts/test holds
/// it against QEMU's MSI traces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineCount {
    /// The function.
    pub bdf: Bdf,
    /// The INTID.
    pub intid: u32,
    /// Interrupts delivered.
    pub count: u64,
    /// Lines that ended. Each may leave one message the device sent while the line was
    /// masked (a driver killed mid-round) latched and never delivered: QEMU sees up to
    /// this many more writes than the kernel counts.
    pub ends: u64,
}

static LINE_COUNTS: IrqLock<Vec<LineCount>> = IrqLock::new(Vec::new());

/// Every function and INTID user lines had, since boot.
pub fn line_counts() -> Vec<LineCount> {
    LINE_COUNTS.lock().clone()
}

static RECORDS: IrqLock<Vec<Record>> = IrqLock::new(Vec::new());
/// DMA buffers freed after a confirmed stop, since boot.
static FREED: AtomicU64 = AtomicU64::new(0);

fn with_record<R>(bdf: Bdf, f: impl FnOnce(&mut Record) -> R) -> R {
    let mut records = RECORDS.lock();
    let i = match records.iter().position(|r| r.bdf == bdf) {
        Some(i) => i,
        None => {
            records.push(Record {
                bdf,
                held: Vec::new(),
                live: Vec::new(),
                report: DeviceReport {
                    bdf: Some(bdf),
                    ..DeviceReport::default()
                },
            });
            records.len() - 1
        }
    };
    f(&mut records[i])
}

/// One line of `/proc/dma` per function that holds DMA memory for a device not yet read
/// stopped: (bdf, buffers, bytes).
pub fn held_report() -> Vec<(Bdf, usize, usize)> {
    RECORDS
        .lock()
        .iter()
        .filter(|r| !r.held.is_empty())
        .map(|r| {
            use caps::dma::DmaBuffer;
            (r.bdf, r.held.len(), r.held.iter().map(DmaBuffer::len).sum())
        })
        .collect()
}

/// Every function ever handed to user space.
pub fn records() -> Vec<DeviceReport> {
    RECORDS.lock().iter().map(Record::now).collect()
}

/// The report for `bdf` (all zero if it was never handed out).
pub fn report(bdf: Bdf) -> DeviceReport {
    with_record(bdf, |r| r.now())
}

/// User DMA buffers freed after their device was read stopped, since boot.
pub fn freed() -> u64 {
    FREED.load(Ordering::Relaxed)
}

impl Handoff {
    /// Claims the function at `bdf` for a user-mode driver: decode on, bus mastering off.
    pub fn claim(bdf: Bdf) -> Result<Handoff, PciError> {
        let pci = bus().ok_or(PciError::NotFound)?;
        let dev = claim_with(|f| f.bdf == bdf, false)?;
        let engine = if dev.func.vendor == drivers::edu::VENDOR_ID
            && dev.func.device == drivers::edu::DEVICE_ID
        {
            let regs = devices::edu(dev.bar(0)?).map_err(|_| PciError::Map)?;
            Engine::Edu(Edu::new(regs, u64::MAX, &[]).map_err(|_| PciError::Map)?)
        } else if (dev.func.class, dev.func.subclass, dev.func.prog_if) == (0x0c, 0x03, 0x30) {
            // The operational registers start CAPLENGTH (BAR0's first byte) into BAR0.
            let bar0 = dev.bar(0)?;
            let reg = |offset, width| devices::register(bar0, offset, width);
            let op = usize::from(reg(0, 1).map_err(|_| PciError::Map)?.read8());
            Engine::Xhci {
                usbcmd: reg(op, 4).map_err(|_| PciError::NoBar)?,
                usbsts: reg(op + 4, 4).map_err(|_| PciError::NoBar)?,
            }
        } else if let Some(status) = virtio_status(&pci.ecam, dev.func) {
            Engine::Virtio(status)
        } else {
            Engine::Unknown
        };
        let summary = dev.func.caps.unwrap_or_default();
        let msix = summary.msix.map(|o| MsixCap::read(&pci.ecam, bdf, o));
        let msi = summary.msi.map(|o| MsiCap::read(&pci.ecam, bdf, o));
        with_record(bdf, |r| r.report.grants += 1);
        let handoff = Handoff {
            dev,
            engine,
            msix,
            msi,
            table: IrqLock::new(None),
            sources: IrqLock::new(Vec::new()),
        };
        handoff.set_bus_master(false).map_err(|_| PciError::NoBar)?;
        Ok(handoff)
    }

    /// The function's address.
    pub fn bdf(&self) -> Bdf {
        self.dev.bdf()
    }

    /// BAR `i`'s CPU window (kernel tests drive the device beside its user driver).
    pub fn bar(&self, i: usize) -> Result<crate::platform::Mmio, PciError> {
        self.dev.bar(i)
    }

    /// A user line on `intid` was made; the INTID had delivered `base` interrupts then.
    pub fn note_line(&self, intid: u32, base: u64) {
        with_record(self.bdf(), |r| r.live.push((intid, base)));
    }

    /// A user line's interrupts on `intid`, counted when the line goes.
    pub fn note_interrupts(&self, intid: u32, n: u64) {
        with_record(self.bdf(), |r| {
            r.live.retain(|&(i, _)| i != intid);
            r.report.interrupts += n;
        });
        let bdf = self.bdf();
        let mut counts = LINE_COUNTS.lock();
        match counts.iter_mut().find(|c| c.bdf == bdf && c.intid == intid) {
            Some(c) => {
                c.count += n;
                c.ends += 1;
            }
            None => counts.push(LineCount {
                bdf,
                intid,
                count: n,
                ends: 1,
            }),
        }
    }

    /// `dev_info`'s record.
    pub fn info(&self) -> DevInfo {
        let f = self.dev.func;
        let msi_ok = msi_vectors().is_some() && bus().is_some_and(|p| !p.no_msi);
        let mut modes = 0;
        if f.interrupt_pin != 0 {
            modes |= IRQ_INTX;
        }
        if msi_ok && self.msi.is_some() {
            modes |= IRQ_MSI;
        }
        if msi_ok && self.msix.is_some() {
            modes |= IRQ_MSIX;
        }
        let mut bars = [BarInfo::default(); 6];
        for (i, (out, bar)) in bars.iter_mut().zip(f.bars.iter()).enumerate() {
            if bar.cpu_addr.is_none() {
                continue;
            }
            let mut flags = match bar.space {
                Some(Space::Mem32) => BAR_MEM,
                Some(Space::Mem64) => BAR_MEM | BAR_64,
                _ => 0,
            };
            if bar.prefetchable {
                flags |= BAR_PREFETCH;
            }
            if self.msix_pages(i as u8).is_some() {
                flags |= BAR_MSIX;
            }
            *out = BarInfo {
                size: bar.size,
                flags,
                reserved: 0,
            };
        }
        DevInfo {
            vendor: f.vendor,
            device: f.device,
            class: f.class,
            subclass: f.subclass,
            prog_if: f.prog_if,
            irq_modes: modes,
            bdf: u32::from(f.bdf.requester_id()),
            msix_entries: if modes & IRQ_MSIX != 0 {
                self.msix.map_or(0, |m| m.table_size)
            } else {
                0
            },
            msi_vectors: u16::from(modes & IRQ_MSI != 0),
            reserved: 0,
            bars,
        }
    }

    /// The page range `[start, end)` of BAR `bar` that holds MSI-X structures, if any.
    fn msix_pages(&self, bar: u8) -> Option<(u64, u64)> {
        let m = self.msix?;
        let table = (m.table_bar == bar).then(|| {
            let start = u64::from(m.table_offset);
            (start, start + u64::from(m.table_size) * 16)
        });
        let pba = (m.pba_bar == bar).then(|| {
            let start = u64::from(m.pba_offset);
            (start, start + u64::from(m.table_size).div_ceil(64) * 8)
        });
        let page = FRAME as u64;
        [table, pba]
            .into_iter()
            .flatten()
            .map(|(s, e)| (s & !(page - 1), e.next_multiple_of(page)))
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    /// The physical address of `len` bytes at `offset` into BAR `bar`, for `mmio_map`:
    /// page aligned, inside a memory BAR of at least a page, clear of the MSI-X pages
    /// (`EACCES`).
    pub fn window(&self, bar: u8, offset: u64, len: u64) -> Result<usize, Error> {
        let b = self
            .dev
            .func
            .bars
            .get(usize::from(bar))
            .ok_or(Error::EINVAL)?;
        let base = b.cpu_addr.ok_or(Error::ENOENT)?;
        let page = FRAME as u64;
        let memory = matches!(b.space, Some(Space::Mem32 | Space::Mem64));
        let end = offset.checked_add(len).ok_or(Error::EINVAL)?;
        if !memory || b.size < page || !base.is_multiple_of(page) {
            return Err(Error::ENOENT);
        }
        if len == 0 || !offset.is_multiple_of(page) || !len.is_multiple_of(page) || end > b.size {
            return Err(Error::EINVAL);
        }
        if let Some((s, e)) = self.msix_pages(bar)
            && offset < e
            && s < end
        {
            return Err(Error::EACCES);
        }
        usize::try_from(base + offset).map_err(|_| Error::EINVAL)
    }

    /// Mints the line for `index` (an MSI-X entry, or 0 for the MSI vector when the device
    /// has no MSI-X), owned by `owner`, and programs the device: the vector is the kernel's
    /// and so is the entry. The line comes back masked at the GIC.
    pub fn line(&self, index: u16, owner: Owner) -> Result<(IrqLine<Masked>, Source), Error> {
        let pci = bus().ok_or(Error::ENOENT)?;
        let vectors = msi_vectors().filter(|_| !pci.no_msi).ok_or(Error::ENOENT)?;
        let source = match (self.msix, self.msi) {
            (Some(m), _) if index < m.table_size => Source::MsiX(index),
            (Some(_), _) => return Err(Error::EINVAL),
            (None, Some(_)) if index == 0 => Source::Msi,
            (None, Some(_)) => return Err(Error::EINVAL),
            (None, None) => return Err(Error::ENOENT),
        };
        let key = match source {
            Source::Msi => u16::MAX,
            Source::MsiX(e) => e,
        };
        {
            let mut used = self.sources.lock();
            if used.contains(&key) {
                return Err(Error::EBUSY);
            }
            used.push(key);
        }
        let made = self.program(source, vectors, owner);
        if made.is_err() {
            self.sources.lock().retain(|&k| k != key);
        }
        made.map(|line| (line, source))
    }

    fn program(
        &self,
        source: Source,
        vectors: &'static caps::msi::VectorAllocator,
        owner: Owner,
    ) -> Result<IrqLine<Masked>, Error> {
        let pci = bus().ok_or(Error::ENOENT)?;
        let vector = vectors.alloc()?;
        let message = vector.message();
        let line = kirq::mint_msi(vector, owner, "user driver").map_err(|(_, e)| e)?;
        let line = super::irq::route_lpi(&self.dev, line)?;
        let bdf = self.bdf();
        match source {
            Source::Msi => {
                let cap = self.msi.ok_or(Error::ENOENT)?;
                cap.enable(&pci.ecam, bdf, message, 1)
                    .map_err(|_| Error::EINVAL)?;
            }
            Source::MsiX(entry) => {
                let table = self.msix_table()?;
                table.program(entry, message).map_err(|_| Error::EINVAL)?;
                table.unmask(entry).map_err(|_| Error::EINVAL)?;
            }
        }
        log::debug!(
            "PCI: {bdf} {source:?} -> INTID {} for a user driver, line masked",
            line.intid()
        );
        Ok(line)
    }

    fn msix_table(&self) -> Result<Arc<MsixTable>, Error> {
        let mut slot = self.table.lock();
        if let Some(t) = slot.as_ref() {
            return Ok(t.clone());
        }
        let pci = bus().ok_or(Error::ENOENT)?;
        let cap = self.msix.ok_or(Error::ENOENT)?;
        let window = |bar: u8, offset: u32, len: usize| -> Result<crate::platform::Mmio, Error> {
            let b = self.dev.bar(usize::from(bar)).map_err(|_| Error::ENOENT)?;
            if offset as usize + len > b.len {
                return Err(Error::EINVAL);
            }
            Ok(crate::platform::Mmio {
                base: b.base + offset as usize,
                len,
            })
        };
        let entries = usize::from(cap.table_size);
        let t = window(cap.table_bar, cap.table_offset, entries * 16)?;
        let p = window(cap.pba_bar, cap.pba_offset, entries.div_ceil(64) * 8)?;
        let table = Arc::new(devices::msix_table(t, p, cap.table_size).map_err(|_| Error::ENOMEM)?);
        for e in 0..cap.table_size {
            let _ = table.mask(e);
        }
        cap.enable_masked(&pci.ecam, self.bdf());
        cap.set_function_mask(&pci.ecam, self.bdf(), false);
        *slot = Some(table.clone());
        Ok(table)
    }

    /// The line from `source` went away: the device may no longer signal it (MSI-X entry
    /// zeroed and masked, MSI off). Teardown step 6, before the vector returns.
    pub fn release_source(&self, source: Source) {
        let Some(pci) = bus() else { return };
        match source {
            Source::Msi => {
                if let Some(cap) = self.msi {
                    cap.disable(&pci.ecam, self.bdf());
                }
                self.sources.lock().retain(|&k| k != u16::MAX);
            }
            Source::MsiX(entry) => {
                if let Some(table) = self.table.lock().as_ref() {
                    let _ = table.mask(entry);
                    let zero = MsiMessage {
                        address: 0,
                        data: 0,
                    };
                    let _ = table.program(entry, zero);
                }
                self.sources.lock().retain(|&k| k != entry);
            }
        }
    }

    /// Whether the device may signal MSIs now: bus mastering on and MSI (or MSI-X with
    /// the function unmasked) enabled, read from its configuration space. The kernel's
    /// quiet check for a user line: an edge source that is enabled sends a fresh message
    /// for each later event, which the GIC latches while the line is masked.
    pub fn msi_delivery_on(&self, source: Source) -> bool {
        let Some(pci) = bus() else { return false };
        let bdf = self.bdf();
        if !pci.ecam.command(bdf).contains(Command::BUS_MASTER) {
            return false;
        }
        let ctrl = |offset: u16| pci.ecam.read16(bdf, offset + 2);
        match source {
            Source::Msi => self.msi.is_some_and(|c| ctrl(c.offset) & 1 != 0),
            Source::MsiX(_) => self
                .msix
                .is_some_and(|c| ctrl(c.offset) & (1 << 15 | 1 << 14) == 1 << 15),
        }
    }

    /// `dev_cfg_read`: the dword at `offset` (4-aligned, below 4096) of the function's
    /// configuration space. Reads have no side effects on PCI configuration registers, so
    /// every offset is allowed; writes stay the kernel's (MSI, MSI-X, the command register).
    pub fn cfg_read(&self, offset: u64) -> Result<u32, Error> {
        let pci = bus().ok_or(Error::ENOENT)?;
        match u16::try_from(offset) {
            Ok(o) if o % 4 == 0 && o < 4096 => Ok(pci.ecam.read32(self.bdf(), o)),
            _ => Err(Error::EINVAL),
        }
    }

    /// `dev_bus_master`: switches bus mastering and reads it back.
    pub fn set_bus_master(&self, on: bool) -> Result<(), Error> {
        let pci = bus().ok_or(Error::ENOENT)?;
        let bdf = self.bdf();
        let cmd = pci.ecam.command(bdf);
        let want = if on {
            cmd | Command::BUS_MASTER
        } else {
            cmd - Command::BUS_MASTER
        };
        pci.ecam.set_command(bdf, want);
        if pci.ecam.command(bdf).contains(Command::BUS_MASTER) == on {
            Ok(())
        } else {
            Err(Error::EBUSY)
        }
    }

    /// Whether the device is read stopped now: bus mastering off, and its DMA engine idle
    /// where the kernel knows it. Changes nothing.
    fn reads_stopped(&self) -> bool {
        let Some(pci) = bus() else { return false };
        if pci.ecam.command(self.bdf()).contains(Command::BUS_MASTER) {
            return false;
        }
        match &self.engine {
            Engine::Edu(edu) => !edu.dma_busy(),
            // HCHalted set; all-ones (a device that does not answer) never counts.
            Engine::Xhci { usbsts, .. } => usbsts.read32() & (1 | 1 << 31) == 1,
            Engine::Virtio(status) => status.read8() == 0,
            Engine::Unknown => false,
        }
    }

    /// Teardown step 3 (and `dev_reset`): bus mastering off, read back, then waits (at
    /// most `STOP_WAIT_NS`, sleeping) for the device's DMA engine to read idle. Confirmed:
    /// the DMA memory held for this function is freed. Returns whether it was.
    pub fn stop(&self) -> bool {
        let _ = self.set_bus_master(false);
        match &self.engine {
            // USBCMD.R/S = 0: the controller halts once its current work is done.
            Engine::Xhci { usbcmd, .. } => usbcmd.write32(usbcmd.read32() & !1),
            // A virtio reset: `device_status` = 0; the stop waits for it to read back 0.
            Engine::Virtio(status) => status.write8(0),
            Engine::Edu(_) | Engine::Unknown => {}
        }
        let deadline = crate::time::now_ns() + STOP_WAIT_NS;
        let mut stopped = self.reads_stopped();
        let waited = !stopped && !self.engine_unknown();
        while !stopped && crate::time::now_ns() < deadline && !self.engine_unknown() {
            crate::sched::sleep_until_uninterruptible(crate::time::now_ns() + 1_000_000);
            stopped = self.reads_stopped();
        }
        let held = with_record(self.bdf(), |r| {
            if stopped {
                r.report.stops_confirmed += 1;
                r.report.stops_waited += u64::from(waited);
                core::mem::take(&mut r.held)
            } else {
                r.report.stops_unconfirmed += 1;
                Vec::new()
            }
        });
        FREED.fetch_add(held.len() as u64, Ordering::Relaxed);
        held.into_iter().for_each(crate::mem::retired::retire);
        if !stopped {
            log::warn!(
                "PCI: {}: DMA not confirmed stopped; its buffers stay quarantined",
                self.bdf()
            );
        }
        stopped
    }

    fn engine_unknown(&self) -> bool {
        matches!(self.engine, Engine::Unknown)
    }

    /// A DMA buffer its region capability let go: freed (poisoned, see `mem::retired`) if
    /// the device reads stopped, else held with the function until a stop is confirmed.
    pub fn retire_dma(&self, buf: FrameBuffer) {
        if self.reads_stopped() {
            FREED.fetch_add(1, Ordering::Relaxed);
            crate::mem::retired::retire(buf);
        } else {
            with_record(self.bdf(), |r| r.held.push(buf));
        }
    }
}

/// A modern virtio function's `device_status` (its common configuration mapped), or `None`
/// for anything else.
fn virtio_status(
    ecam: &drivers::pci::config::Ecam,
    f: &drivers::pci::scan::PciFunction,
) -> Option<Register> {
    use drivers::virtio::pci::{VirtioPciCaps, find_caps};
    if f.vendor != 0x1af4 {
        return None;
    }
    let caps: VirtioPciCaps = find_caps(ecam, f.bdf).ok()?;
    let common = caps.locate(&f.bars).ok()?.common;
    let window = crate::platform::Mmio {
        base: usize::try_from(common.cpu_addr).ok()?,
        len: common.len,
    };
    devices::register(window, DEVICE_STATUS, 1).ok()
}

/// `device_status` in virtio's common configuration (virtio 1.2 §4.1.4.3).
const DEVICE_STATUS: usize = 0x14;

impl Drop for Handoff {
    fn drop(&mut self) {
        if let (Some(pci), Some(m)) = (bus(), self.msix) {
            m.disable(&pci.ecam, self.bdf());
        }
        if let (Some(pci), Some(m)) = (bus(), self.msi) {
            m.disable(&pci.ecam, self.bdf());
        }
        // `dev` drops next: decode and bus mastering off, the claim released.
    }
}

/// Claims `bdf` for a user driver (what a kernel test or init's grant uses).
pub fn claim(bdf: Bdf) -> Result<Arc<Handoff>, PciError> {
    Handoff::claim(bdf).map(Arc::new)
}
