//! A fake virtio PCI device behind modern and legacy register windows.
//!
//! The transports must be checked against devices that refuse features,
//! refuse MSI-X vectors, shrink queues, hang in reset or ask to be reset, so
//! this model decodes the common configuration (virtio 1.2 §4.1.4.3), the
//! notify/ISR/device windows and the legacy BAR0 block over one shared state,
//! and logs every status write, feature write and queue enable in order.
//! [`NetWorld`] adds a virtio-net backend: caps' `FakeVirtqueueDevice` for
//! both queues, a DMA HAL the device can write into, and an MSI line.

use core::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::vec::Vec;

use abi::Error;
use caps::dma::{DmaBuffer, DmaHal};
use caps::fakes::{FakeGic, FakeRingMem, FakeVirtqueueDevice, leak};
use caps::irq::{IrqControl, IrqLine, Masked, Owner, Trigger};
use caps::vring::VringLayout;

use super::legacy::reg as lreg;
use super::pci::common;
use super::regs::RegWindow;

/// The common configuration's offsets, as the device side sees them (it matches on them;
/// the driver goes through the typed registers of `pci::common`).
mod c {
    use super::common;
    pub const DFSELECT: usize = common::DFSELECT.offset();
    pub const DF: usize = common::DF.offset();
    pub const GFSELECT: usize = common::GFSELECT.offset();
    pub const GF: usize = common::GF.offset();
    pub const MSIX_CONFIG: usize = common::MSIX_CONFIG.offset();
    pub const NUM_QUEUES: usize = common::NUM_QUEUES.offset();
    pub const STATUS: usize = common::STATUS.offset();
    pub const CFG_GENERATION: usize = common::CFG_GENERATION.offset();
    pub const Q_SELECT: usize = common::Q_SELECT.offset();
    pub const Q_SIZE: usize = common::Q_SIZE.offset();
    pub const Q_MSIX: usize = common::Q_MSIX.offset();
    pub const Q_ENABLE: usize = common::Q_ENABLE.offset();
    pub const Q_NOFF: usize = common::Q_NOFF.offset();
    pub const Q_DESC: usize = common::Q_DESC.offset();
    pub const LEN: usize = common::LEN;
}
use super::{ModernTransport, NO_VECTOR};
use crate::virtio::LegacyTransport;

/// Something the driver did, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ev {
    Status(u8),
    Features(u64),
    QueueEnable(u16),
    QueuePfn(u16, u32),
}

#[derive(Clone, Debug, Default)]
pub(crate) struct FakeQueue {
    pub max: u16,
    pub size: u16,
    pub vector: u16,
    pub enabled: bool,
    pub addrs: [u64; 3],
    pub notify_off: u16,
    pub pfn: u32,
}

/// The device state every window decodes into.
#[derive(Debug, Default)]
pub(crate) struct DevState {
    pub status: u8,
    pub offered: u64,
    pub driver_features: u64,
    /// FEATURES_OK is not latched if the driver took any of these.
    pub reject_features: u64,
    /// Status reads that still return the old value after a reset.
    pub reset_latency: usize,
    reset_left: usize,
    pub queues: Vec<FakeQueue>,
    pub config_vector: u16,
    /// MSI-X table size: vectors at or above it read back `NO_VECTOR`.
    pub msix_entries: u16,
    pub config: Vec<u8>,
    pub generation: u8,
    /// Config reads that bump the generation (a configuration changing under us).
    pub unstable_reads: usize,
    pub isr: u8,
    pub notifications: Vec<(usize, u16)>,
    pub events: Vec<Ev>,
    dfsel: u32,
    gfsel: u32,
    qsel: u16,
}

impl DevState {
    fn q(&mut self) -> Option<&mut FakeQueue> {
        self.queues.get_mut(usize::from(self.qsel))
    }

    fn write_status(&mut self, v: u8) {
        self.events.push(Ev::Status(v));
        if v == 0 {
            self.reset_left = self.reset_latency;
            self.driver_features = 0;
            self.config_vector = NO_VECTOR;
            for q in &mut self.queues {
                *q = FakeQueue {
                    max: q.max,
                    size: q.max,
                    vector: NO_VECTOR,
                    notify_off: q.notify_off,
                    ..FakeQueue::default()
                };
            }
            if self.reset_left == 0 {
                self.status = 0;
            }
            return;
        }
        let mut v = v;
        if v & 8 != 0 && self.driver_features & self.reject_features != 0 {
            v &= !8;
        }
        // DEVICE_NEEDS_RESET is the device's to set; the driver cannot clear it.
        self.status = v | (self.status & 64);
    }

    fn read_status(&mut self) -> u8 {
        if self.reset_left > 0 {
            self.reset_left -= 1;
            if self.reset_left == 0 {
                self.status = 0;
            }
            return self.status.max(1);
        }
        self.status
    }

    fn vector(&self, v: u16) -> u16 {
        if v < self.msix_entries { v } else { NO_VECTOR }
    }

    fn config_read(&mut self, off: usize, width: usize) -> u32 {
        if self.unstable_reads > 0 {
            self.unstable_reads -= 1;
            self.generation = self.generation.wrapping_add(1);
        }
        let mut b = [0xffu8; 4];
        for (i, x) in b.iter_mut().take(width).enumerate() {
            *x = self.config.get(off + i).copied().unwrap_or(0xff);
        }
        u32::from_le_bytes(b)
    }

    fn common_read(&mut self, off: usize) -> u32 {
        let sel = self.qsel;
        let q = self.q().cloned().unwrap_or_default();
        match off {
            c::DFSELECT => self.dfsel,
            c::DF if self.dfsel < 2 => (self.offered >> (32 * self.dfsel)) as u32,
            c::GFSELECT => self.gfsel,
            c::GF if self.gfsel < 2 => (self.driver_features >> (32 * self.gfsel)) as u32,
            c::MSIX_CONFIG => u32::from(self.config_vector),
            c::NUM_QUEUES => self.queues.len() as u32,
            c::STATUS => u32::from(self.read_status()),
            c::CFG_GENERATION => u32::from(self.generation),
            c::Q_SELECT => u32::from(sel),
            c::Q_SIZE => u32::from(q.size),
            c::Q_MSIX => u32::from(q.vector),
            c::Q_ENABLE => u32::from(q.enabled),
            c::Q_NOFF => u32::from(q.notify_off),
            _ => 0,
        }
    }

    fn common_write(&mut self, off: usize, v: u32) {
        let vector = self.vector(v as u16);
        match off {
            c::DFSELECT => self.dfsel = v,
            c::GFSELECT => self.gfsel = v,
            c::GF if self.gfsel < 2 => {
                let shift = 32 * self.gfsel;
                let keep = self.driver_features & !(0xffff_ffff << shift);
                self.driver_features = keep | u64::from(v) << shift;
                if self.gfsel == 1 {
                    self.events.push(Ev::Features(self.driver_features));
                }
            }
            c::MSIX_CONFIG => self.config_vector = vector,
            c::STATUS => self.write_status(v as u8),
            c::Q_SELECT => self.qsel = v as u16,
            c::Q_SIZE => self.q().into_iter().for_each(|q| q.size = v as u16),
            c::Q_MSIX => self.q().into_iter().for_each(|q| q.vector = vector),
            c::Q_ENABLE => {
                let sel = self.qsel;
                if let Some(q) = self.q() {
                    q.enabled = v == 1;
                    self.events.push(Ev::QueueEnable(sel));
                }
            }
            o @ c::Q_DESC..c::LEN => {
                let (i, hi) = ((o - c::Q_DESC) / 8, (o - c::Q_DESC) % 8 == 4);
                if let Some(q) = self.q() {
                    let a = &mut q.addrs[i];
                    *a = if hi {
                        *a & 0xffff_ffff | u64::from(v) << 32
                    } else {
                        *a & !0xffff_ffff | u64::from(v)
                    };
                }
            }
            _ => {}
        }
    }

    fn legacy_read(&mut self, msix: bool, off: usize, width: usize) -> u32 {
        let cfg = if msix {
            lreg::CONFIG_MSIX
        } else {
            lreg::CONFIG
        };
        let q = self.q().cloned().unwrap_or_default();
        match off {
            o if o >= cfg => self.config_read(o - cfg, width),
            lreg::HOST_FEATURES => self.offered as u32,
            lreg::GUEST_FEATURES => self.driver_features as u32,
            lreg::QUEUE_PFN => q.pfn,
            lreg::QUEUE_SIZE => u32::from(q.max),
            lreg::QUEUE_SELECT => u32::from(self.qsel),
            lreg::STATUS => u32::from(self.read_status()),
            lreg::ISR => u32::from(core::mem::take(&mut self.isr)),
            lreg::MSIX_CONFIG if msix => u32::from(self.config_vector),
            lreg::MSIX_QUEUE if msix => u32::from(q.vector),
            _ => 0,
        }
    }

    fn legacy_write(&mut self, msix: bool, off: usize, v: u32) {
        let vector = self.vector(v as u16);
        match off {
            lreg::GUEST_FEATURES => {
                self.driver_features = u64::from(v);
                self.events.push(Ev::Features(u64::from(v)));
            }
            lreg::QUEUE_PFN => {
                let sel = self.qsel;
                self.q().into_iter().for_each(|q| q.pfn = v);
                self.events.push(Ev::QueuePfn(sel, v));
            }
            lreg::QUEUE_SELECT => self.qsel = v as u16,
            lreg::QUEUE_NOTIFY => self.notifications.push((off, v as u16)),
            lreg::STATUS => self.write_status(v as u8),
            lreg::MSIX_CONFIG if msix => self.config_vector = vector,
            lreg::MSIX_QUEUE if msix => self.q().into_iter().for_each(|q| q.vector = vector),
            _ => {}
        }
    }
}

/// A shared fake device.
pub(crate) type Dev = Rc<RefCell<DevState>>;

/// Which structure a window decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Common,
    Notify,
    Isr,
    Device,
    Legacy { msix: bool },
}

/// One register window onto the fake device.
pub(crate) struct FakeWin {
    pub dev: Dev,
    pub kind: Kind,
    pub len: usize,
}

impl FakeWin {
    fn read(&self, off: usize, width: usize) -> u32 {
        if off + width > self.len {
            return u32::MAX;
        }
        let mut d = self.dev.borrow_mut();
        match self.kind {
            Kind::Common => d.common_read(off),
            Kind::Notify => 0,
            Kind::Isr => u32::from(core::mem::take(&mut d.isr)),
            Kind::Device => d.config_read(off, width),
            Kind::Legacy { msix } => d.legacy_read(msix, off, width),
        }
    }

    fn write(&self, off: usize, width: usize, v: u32) {
        if off + width > self.len {
            return;
        }
        let mut d = self.dev.borrow_mut();
        match self.kind {
            Kind::Common => d.common_write(off, v),
            Kind::Notify => d.notifications.push((off, v as u16)),
            Kind::Legacy { msix } => d.legacy_write(msix, off, v),
            Kind::Isr | Kind::Device => {}
        }
    }
}

impl RegWindow for FakeWin {
    fn len(&self) -> usize {
        self.len
    }
    fn read8(&self, off: usize) -> u8 {
        self.read(off, 1) as u8
    }
    fn read16(&self, off: usize) -> u16 {
        self.read(off, 2) as u16
    }
    fn read32(&self, off: usize) -> u32 {
        self.read(off, 4)
    }
    fn write8(&self, off: usize, v: u8) {
        self.write(off, 1, u32::from(v));
    }
    fn write16(&self, off: usize, v: u16) {
        self.write(off, 2, u32::from(v));
    }
    fn write32(&self, off: usize, v: u32) {
        self.write(off, 4, v);
    }
}

/// A device offering `offered` with queues of the given maximum sizes, 4 MSI-X entries and
/// `config` as its device configuration.
pub(crate) fn device(offered: u64, queue_max: &[u16], config: &[u8]) -> Dev {
    let queues = queue_max
        .iter()
        .enumerate()
        .map(|(i, &max)| FakeQueue {
            max,
            size: max,
            vector: NO_VECTOR,
            notify_off: i as u16,
            ..FakeQueue::default()
        })
        .collect();
    Rc::new(RefCell::new(DevState {
        offered,
        queues,
        config_vector: NO_VECTOR,
        msix_entries: 4,
        config: config.to_vec(),
        ..DevState::default()
    }))
}

/// The four modern windows (notify multiplier 4, notify window 64 bytes).
pub(crate) fn modern(dev: &Dev) -> ModernTransport<FakeWin> {
    let win = |kind, len| FakeWin {
        dev: dev.clone(),
        kind,
        len,
    };
    ModernTransport::new(
        win(Kind::Common, c::LEN),
        win(Kind::Notify, 64),
        win(Kind::Isr, 4),
        Some(win(Kind::Device, 64)),
        4,
    )
    .expect("windows are large enough")
}

/// The legacy BAR0 window (64 bytes).
pub(crate) fn legacy(dev: &Dev, msix: bool) -> LegacyTransport<FakeWin> {
    let win = FakeWin {
        dev: dev.clone(),
        kind: Kind::Legacy { msix },
        len: 64,
    };
    LegacyTransport::new(win, msix).expect("window large enough")
}

/// A DMA HAL whose buffers the fake device can read and write by bus address.
///
/// Each buffer has a device copy and a CPU copy, and the syncs move bytes between them
/// (clean on `sync_for_device`, invalidate on `sync_for_cpu`), so a driver that reads a
/// buffer without a completion sees stale data, as on a non-coherent machine.
/// `DmaBuffer::bytes` returns a leaked snapshot (tests only, small).
#[derive(Default)]
pub(crate) struct SharedHal {
    next: Mutex<u64>,
    mem: Mutex<BTreeMap<u64, Arc<Mutex<std::vec::Vec<u8>>>>>,
    quarantined: Mutex<usize>,
}

/// One buffer of a [`SharedHal`].
pub(crate) struct SharedBuf {
    paddr: u64,
    len: usize,
    dev: Arc<Mutex<std::vec::Vec<u8>>>,
    cpu: Mutex<std::vec::Vec<u8>>,
}

impl DmaBuffer for SharedBuf {
    fn paddr(&self) -> u64 {
        self.paddr
    }
    fn len(&self) -> usize {
        self.len
    }
    fn bytes(&self) -> &[u8] {
        std::boxed::Box::leak(self.cpu.lock().unwrap().clone().into_boxed_slice())
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.cpu.get_mut().unwrap()
    }
}

// SAFETY: host memory shared with the fake device by bus address (the test's device model);
// addresses are unique, and nothing has a cache.
unsafe impl DmaHal for SharedHal {
    type Buffer = SharedBuf;
    fn allocate(&self, len: usize, align: usize, _mask: u64) -> Result<SharedBuf, Error> {
        let mut next = self.next.lock().unwrap();
        let paddr = (*next).max(0x4000_0000).next_multiple_of(align as u64);
        *next = paddr + len as u64;
        let dev = Arc::new(Mutex::new(std::vec![0; len]));
        self.mem.lock().unwrap().insert(paddr, dev.clone());
        let cpu = Mutex::new(std::vec![0; len]);
        Ok(SharedBuf {
            paddr,
            len,
            dev,
            cpu,
        })
    }
    fn sync_for_device(&self, buf: &SharedBuf) {
        *buf.dev.lock().unwrap() = buf.cpu.lock().unwrap().clone();
    }
    fn sync_for_cpu(&self, buf: &SharedBuf) {
        *buf.cpu.lock().unwrap() = buf.dev.lock().unwrap().clone();
    }
    fn quarantine(&self, _buf: SharedBuf) {
        *self.quarantined.lock().unwrap() += 1;
    }
}

impl SharedHal {
    fn buffer(&self, addr: u64) -> (u64, Arc<Mutex<std::vec::Vec<u8>>>) {
        let mem = self.mem.lock().unwrap();
        let (base, b) = mem.range(..=addr).next_back().expect("address of a buffer");
        (*base, b.clone())
    }
    /// The device writes `data` at bus address `addr`.
    pub fn dev_write(&self, addr: u64, data: &[u8]) {
        let (base, b) = self.buffer(addr);
        let off = (addr - base) as usize;
        b.lock().unwrap()[off..off + data.len()].copy_from_slice(data);
    }
    /// The device reads `len` bytes at `addr`.
    pub fn dev_read(&self, addr: u64, len: usize) -> std::vec::Vec<u8> {
        let (base, b) = self.buffer(addr);
        let off = (addr - base) as usize;
        b.lock().unwrap()[off..off + len].to_vec()
    }
}

/// A virtio-net backend: the register model, both queues' device sides, and an MSI line
/// per queue on a fake GIC.
pub(crate) struct NetWorld {
    pub dev: Dev,
    pub hal: &'static SharedHal,
    pub gic: &'static FakeGic,
    pub ctl: &'static IrqControl<4>,
    pub rxq: FakeVirtqueueDevice,
    pub txq: FakeVirtqueueDevice,
    pub hdr_len: usize,
}

/// The INTID of the RX line in [`NetWorld`].
pub(crate) const RX_INTID: u32 = 100;

/// Ring memory for one queue at `paddr` with `layout`, and its device side.
pub(crate) fn ring_pair(
    layout: VringLayout,
    paddr: u64,
    event_idx: bool,
) -> (FakeRingMem, FakeVirtqueueDevice) {
    let mem = FakeRingMem::new(layout.total, paddr);
    let dev = FakeVirtqueueDevice::new(mem.clone(), layout, event_idx);
    (mem, dev)
}

impl NetWorld {
    /// A backend for a transport that uses `layout`, with `dev` registers.
    pub fn new(dev: Dev, layout: VringLayout, event_idx: bool) -> (Self, FakeRingMem, FakeRingMem) {
        let (rx_mem, rxq) = ring_pair(layout, 0x9000_0000, event_idx);
        let (tx_mem, txq) = ring_pair(layout, 0x9010_0000, event_idx);
        let (gic, ctl) = caps::fakes::fake_control(RX_INTID);
        let world = NetWorld {
            dev,
            hal: leak(SharedHal::default()),
            gic,
            ctl,
            rxq,
            txq,
            hdr_len: 12,
        };
        (world, rx_mem, tx_mem)
    }

    /// A fresh MSI line for the RX queue, to pair with the RX ring (`NapiLine::new`).
    pub fn rx_line(&self) -> IrqLine<Masked> {
        self.ctl
            .mint(RX_INTID, Trigger::Edge, Owner(1))
            .expect("fresh line")
    }

    /// The device receives `frame`: fills the next RX buffer with a header carrying
    /// `num_buffers` and the frame, publishes it, and signals the line if allowed.
    pub fn inject(&mut self, frame: &[u8], num_buffers: u16) {
        let mut hdr = [0u8; 12];
        hdr[10..].copy_from_slice(&num_buffers.to_le_bytes());
        self.inject_with(hdr, frame);
    }

    /// As [`NetWorld::inject`] with the whole header given.
    pub fn inject_with(&mut self, hdr: [u8; 12], frame: &[u8]) {
        let (id, addr, len, _) = self.rxq.consume().expect("an RX buffer is posted");
        let total = self.hdr_len + frame.len();
        assert!(total <= len as usize, "test frame fits the buffer");
        self.hal.dev_write(addr, &hdr[..self.hdr_len]);
        self.hal.dev_write(addr + self.hdr_len as u64, frame);
        self.rxq.complete(u32::from(id), total as u32);
        self.signal();
    }

    /// The device fills the next RX buffer with `data` and no header (a continuation
    /// buffer of a mergeable packet).
    pub fn inject_raw(&mut self, data: &[u8]) {
        let (id, addr, len, _) = self.rxq.consume().expect("an RX buffer is posted");
        assert!(data.len() <= len as usize, "test data fits the buffer");
        self.hal.dev_write(addr, data);
        self.rxq.complete(u32::from(id), data.len() as u32);
        self.signal();
    }

    /// The device receives `frame` as QEMU does with mergeable buffers: as much as fits
    /// in each posted buffer, `num_buffers` in the first header, flags and segmentation
    /// fields from `hdr`. Returns how many buffers it took.
    pub fn inject_merged(&mut self, mut hdr: [u8; 12], frame: &[u8], buf_len: usize) -> u16 {
        let first = buf_len - self.hdr_len;
        let rest = frame.len().saturating_sub(first);
        let n = 1 + rest.div_ceil(buf_len);
        hdr[10..].copy_from_slice(&(n as u16).to_le_bytes());
        self.inject_with(hdr, &frame[..first.min(frame.len())]);
        for chunk in frame[first.min(frame.len())..].chunks(buf_len) {
            self.inject_raw(chunk);
        }
        n as u16
    }

    /// Raises the RX line if the ring lets the device interrupt, and delivers it.
    pub fn signal(&mut self) {
        if self.rxq.wants_interrupt() {
            self.gic.raise(RX_INTID);
        }
        let _ = self.gic.deliver(self.ctl, 0, 0);
    }

    /// The device transmits every posted TX buffer: returns (header, frame) of each.
    pub fn drain_tx(&mut self) -> std::vec::Vec<(std::vec::Vec<u8>, std::vec::Vec<u8>)> {
        let mut out = std::vec::Vec::new();
        while let Some((id, addr, len, _)) = self.txq.consume() {
            let bytes = self.hal.dev_read(addr, len as usize);
            let (h, f) = bytes.split_at(self.hdr_len);
            out.push((h.to_vec(), f.to_vec()));
            self.txq.complete(u32::from(id), 0);
        }
        out
    }
}
