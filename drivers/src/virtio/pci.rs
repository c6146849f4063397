//! Modern virtio PCI transport: vendor capabilities and common configuration.
//!
//! A virtio 1.x PCI function says where its registers are through vendor
//! capabilities (virtio 1.2 §4.1.4): common configuration, notification,
//! ISR and device configuration, each a range of some BAR. The device writes
//! those capabilities, so they are parsed like any untrusted input: malformed
//! ones are skipped, the first usable one of each type wins (§4.1.4.1), and
//! the ranges are checked against the BAR sizes before anything is mapped.
//! [`ModernTransport`] then drives the common configuration structure
//! (§4.1.4.3) and caches each queue's notify offset at setup (§4.1.4.4), so a
//! doorbell is one write with no register reads on the datapath.

use core::mem::offset_of;

use super::regs::RegWindow;
use super::{
    DeviceStatus, IsrStatus, NO_VECTOR, QueueSetup, Transport, TransportError, TransportKind,
    VENDOR_ID,
};
use crate::pci::bar::Bar;
use crate::pci::caps::{self, CapListError, id};
use crate::pci::config::{Bdf, ConfigAccess};
use crate::reg::{Access, ReadOnly, ReadWrite};

/// Queues a transport tracks notify addresses for (net: RX, TX, control, and spare pairs).
pub const MAX_QUEUES: usize = 16;

/// `cfg_type` values of `struct virtio_pci_cap` (virtio 1.2 §4.1.4).
pub mod cfg_type {
    /// Common configuration.
    pub const COMMON: u8 = 1;
    /// Notifications.
    pub const NOTIFY: u8 = 2;
    /// ISR status.
    pub const ISR: u8 = 3;
    /// Device-specific configuration.
    pub const DEVICE: u8 = 4;
    /// PCI configuration access.
    pub const PCI: u8 = 5;
}

/// Common configuration structure (virtio 1.2 §4.1.4.3), a layout for offsets and access
/// types only (`crate::reg`): what the device alone sets is read-only to the driver.
#[repr(C)]
pub struct CommonCfg {
    device_feature_select: ReadWrite<u32>,
    device_feature: ReadOnly<u32>,
    driver_feature_select: ReadWrite<u32>,
    driver_feature: ReadWrite<u32>,
    config_msix_vector: ReadWrite<u16>,
    num_queues: ReadOnly<u16>,
    device_status: ReadWrite<u8>,
    config_generation: ReadOnly<u8>,
    queue_select: ReadWrite<u16>,
    queue_size: ReadWrite<u16>,
    queue_msix_vector: ReadWrite<u16>,
    queue_enable: ReadWrite<u16>,
    queue_notify_off: ReadOnly<u16>,
    queue_desc: ReadWrite<u64>,
    queue_driver: ReadWrite<u64>,
    queue_device: ReadWrite<u64>,
}

const _: () = assert!(offset_of!(CommonCfg, config_msix_vector) == 0x10);
const _: () = assert!(offset_of!(CommonCfg, device_status) == 0x14);
const _: () = assert!(offset_of!(CommonCfg, queue_select) == 0x16);
const _: () = assert!(offset_of!(CommonCfg, queue_notify_off) == 0x1e);
const _: () = assert!(offset_of!(CommonCfg, queue_desc) == 0x20);
const _: () = assert!(offset_of!(CommonCfg, queue_device) == 0x30);
const _: () = assert!(size_of::<CommonCfg>() == 0x38);

/// The registers of the common configuration structure, typed by access.
pub mod common {
    use super::CommonCfg;
    use crate::reg;
    use crate::reg::{ReadOnly, ReadWrite, Reg};
    /// `device_feature_select`.
    pub const DFSELECT: Reg<ReadWrite<u32>> = reg!(CommonCfg, device_feature_select);
    /// `device_feature`: the device's feature bits, 32 at a time.
    pub const DF: Reg<ReadOnly<u32>> = reg!(CommonCfg, device_feature);
    /// `driver_feature_select`.
    pub const GFSELECT: Reg<ReadWrite<u32>> = reg!(CommonCfg, driver_feature_select);
    /// `driver_feature`.
    pub const GF: Reg<ReadWrite<u32>> = reg!(CommonCfg, driver_feature);
    /// `config_msix_vector`.
    pub const MSIX_CONFIG: Reg<ReadWrite<u16>> = reg!(CommonCfg, config_msix_vector);
    /// `num_queues`.
    pub const NUM_QUEUES: Reg<ReadOnly<u16>> = reg!(CommonCfg, num_queues);
    /// `device_status`.
    pub const STATUS: Reg<ReadWrite<u8>> = reg!(CommonCfg, device_status);
    /// `config_generation`.
    pub const CFG_GENERATION: Reg<ReadOnly<u8>> = reg!(CommonCfg, config_generation);
    /// `queue_select`.
    pub const Q_SELECT: Reg<ReadWrite<u16>> = reg!(CommonCfg, queue_select);
    /// `queue_size`.
    pub const Q_SIZE: Reg<ReadWrite<u16>> = reg!(CommonCfg, queue_size);
    /// `queue_msix_vector`.
    pub const Q_MSIX: Reg<ReadWrite<u16>> = reg!(CommonCfg, queue_msix_vector);
    /// `queue_enable`.
    pub const Q_ENABLE: Reg<ReadWrite<u16>> = reg!(CommonCfg, queue_enable);
    /// `queue_notify_off`.
    pub const Q_NOFF: Reg<ReadOnly<u16>> = reg!(CommonCfg, queue_notify_off);
    /// `queue_desc`.
    pub const Q_DESC: Reg<ReadWrite<u64>> = reg!(CommonCfg, queue_desc);
    /// `queue_driver`.
    pub const Q_DRIVER: Reg<ReadWrite<u64>> = reg!(CommonCfg, queue_driver);
    /// `queue_device`.
    pub const Q_DEVICE: Reg<ReadWrite<u64>> = reg!(CommonCfg, queue_device);
    /// Size of the structure.
    pub const LEN: usize = size_of::<CommonCfg>();
}

/// Virtio device type of a PCI function (virtio 1.2 §4.1.2): modern IDs are
/// 0x1040 + type; transitional IDs 0x1000..=0x103f carry the type in the
/// subsystem device ID (offset 0x2e). `None` if it is not a virtio function.
pub fn device_type<C: ConfigAccess + ?Sized>(access: &C, bdf: Bdf) -> Option<u16> {
    if access.read16(bdf, 0x00) != VENDOR_ID {
        return None;
    }
    match access.read16(bdf, 0x02) {
        d @ 0x1040..=0x107f => Some(d - 0x1040),
        0x1000..=0x103f => Some(access.read16(bdf, 0x2e)),
        _ => None,
    }
}

/// Where one virtio structure lives: `length` bytes at `offset` into BAR `bar`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapLocation {
    /// BAR index, 0..=5.
    pub bar: u8,
    /// Offset into the BAR.
    pub offset: u32,
    /// Length in bytes.
    pub length: u32,
}

/// The virtio vendor capabilities of one function (first usable of each type).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtioPciCaps {
    /// Common configuration (type 1).
    pub common: Option<CapLocation>,
    /// Notification area (type 2).
    pub notify: Option<CapLocation>,
    /// `notify_off_multiplier` from the notify capability.
    pub notify_off_multiplier: u32,
    /// ISR status (type 3).
    pub isr: Option<CapLocation>,
    /// Device-specific configuration (type 4).
    pub device: Option<CapLocation>,
    /// Configuration-space offset of the PCI configuration access capability (type 5).
    pub pci_cfg: Option<u16>,
}

/// A structure's CPU physical address range after [`VirtioPciCaps::locate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// CPU physical address of the first byte.
    pub cpu_addr: u64,
    /// Length in bytes.
    pub len: usize,
}

/// Everything the kernel maps to build a [`ModernTransport`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModernRegions {
    /// Common configuration.
    pub common: Region,
    /// Notification area.
    pub notify: Region,
    /// `notify_off_multiplier`.
    pub notify_off_multiplier: u32,
    /// ISR status.
    pub isr: Region,
    /// Device configuration, if the device has one.
    pub device: Option<Region>,
}

/// Why the capabilities cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocateError {
    /// A required structure is missing (not a modern device).
    Missing {
        /// Its `cfg_type`.
        cfg_type: u8,
    },
    /// The BAR is unimplemented or not assigned an address.
    BadBar {
        /// `cfg_type` of the structure.
        cfg_type: u8,
        /// The BAR index.
        bar: u8,
    },
    /// The range leaves the BAR, or is shorter than the structure.
    BadRange {
        /// `cfg_type` of the structure.
        cfg_type: u8,
    },
}

/// Reads the vendor capabilities of `bdf` (virtio 1.2 §4.1.4). Capabilities
/// with a reserved `cfg_type` or BAR, a too-short `cap_len`, or running past
/// the legacy configuration header are ignored; a broken list is an error.
pub fn find_caps<C: ConfigAccess + ?Sized>(
    access: &C,
    bdf: Bdf,
) -> Result<VirtioPciCaps, CapListError> {
    let mut found = VirtioPciCaps::default();
    for cap in caps::legacy(access, bdf) {
        let cap = cap?;
        let o = cap.offset;
        let cap_len = u16::from(access.read8(bdf, o + 2));
        let (ty, bar) = (access.read8(bdf, o + 3), access.read8(bdf, o + 4));
        if cap.id != id::VENDOR || cap_len < 16 || o + cap_len > 0x100 || bar > 5 {
            continue;
        }
        let loc = Some(CapLocation {
            bar,
            offset: access.read32(bdf, o + 8),
            length: access.read32(bdf, o + 12),
        });
        match ty {
            cfg_type::COMMON if found.common.is_none() => found.common = loc,
            cfg_type::NOTIFY if found.notify.is_none() && cap_len >= 20 => {
                found.notify = loc;
                found.notify_off_multiplier = access.read32(bdf, o + 16);
            }
            cfg_type::ISR if found.isr.is_none() => found.isr = loc,
            cfg_type::DEVICE if found.device.is_none() => found.device = loc,
            cfg_type::PCI if found.pci_cfg.is_none() => found.pci_cfg = Some(o),
            _ => {}
        }
    }
    Ok(found)
}

impl VirtioPciCaps {
    /// Whether the modern interface is usable (common, notify and ISR present).
    pub fn is_modern(&self) -> bool {
        self.common.is_some() && self.notify.is_some() && self.isr.is_some()
    }

    /// Resolves every structure to a CPU physical range inside its (assigned)
    /// BAR, checking minimum sizes (common 0x38, notify 2, ISR 1 bytes).
    pub fn locate(&self, bars: &[Bar; 6]) -> Result<ModernRegions, LocateError> {
        let need = |loc: Option<CapLocation>, ty: u8, min: u32| {
            let loc = loc.ok_or(LocateError::Missing { cfg_type: ty })?;
            region_in_bar(bars, loc, ty, min)
        };
        Ok(ModernRegions {
            common: need(self.common, cfg_type::COMMON, common::LEN as u32)?,
            notify: need(self.notify, cfg_type::NOTIFY, 2)?,
            notify_off_multiplier: self.notify_off_multiplier,
            isr: need(self.isr, cfg_type::ISR, 1)?,
            device: match self.device {
                Some(loc) => Some(region_in_bar(bars, loc, cfg_type::DEVICE, 1)?),
                None => None,
            },
        })
    }
}

fn region_in_bar(
    bars: &[Bar; 6],
    loc: CapLocation,
    cfg_type: u8,
    min: u32,
) -> Result<Region, LocateError> {
    let bad_bar = LocateError::BadBar {
        cfg_type,
        bar: loc.bar,
    };
    let bar = bars.get(usize::from(loc.bar)).ok_or(bad_bar)?;
    let base = bar
        .cpu_addr
        .filter(|_| bar.is_implemented())
        .ok_or(bad_bar)?;
    let end = u64::from(loc.offset) + u64::from(loc.length);
    if loc.length < min || end > bar.size {
        return Err(LocateError::BadRange { cfg_type });
    }
    Ok(Region {
        cpu_addr: base + u64::from(loc.offset),
        len: loc.length as usize,
    })
}

/// The modern transport over four register windows.
pub struct ModernTransport<R: RegWindow> {
    common: R,
    notify: R,
    isr: R,
    device: Option<R>,
    multiplier: u32,
    notify_at: [Option<usize>; MAX_QUEUES],
    dma: ::caps::dma::DmaDevice,
}

impl<R: RegWindow> ModernTransport<R> {
    /// A transport over mapped windows (from [`ModernRegions`]); `WindowTooSmall` if one is
    /// shorter than its structure.
    pub fn new(
        common: R,
        notify: R,
        isr: R,
        device: Option<R>,
        notify_off_multiplier: u32,
    ) -> Result<Self, TransportError> {
        for (w, ty, min) in [
            (&common, cfg_type::COMMON, common::LEN),
            (&notify, cfg_type::NOTIFY, 2),
            (&isr, cfg_type::ISR, 1),
        ] {
            if w.len() < min {
                return Err(TransportError::WindowTooSmall { cfg_type: ty });
            }
        }
        Ok(ModernTransport {
            common,
            notify,
            isr,
            device,
            multiplier: notify_off_multiplier,
            notify_at: [None; MAX_QUEUES],
            dma: ::caps::dma::DmaDevice::new(),
        })
    }

    /// Number of queues the device implements (`num_queues`).
    pub fn num_queues(&self) -> u16 {
        self.common.read(common::NUM_QUEUES)
    }

    /// The cached notify offset of `queue` (after setup).
    pub fn notify_offset(&self, queue: u16) -> Option<usize> {
        self.notify_at.get(usize::from(queue)).copied().flatten()
    }

    fn queue_addresses(&self, queue: u16, s: &QueueSetup) -> Result<(), TransportError> {
        // virtio 1.2 §2.7 alignment: descriptor table 16, driver area 2, device area 4.
        if !(s.desc.is_multiple_of(16) && s.driver.is_multiple_of(2) && s.device.is_multiple_of(4))
        {
            return Err(TransportError::BadRingAddress { queue });
        }
        self.common.write(common::Q_DESC, s.desc);
        self.common.write(common::Q_DRIVER, s.driver);
        self.common.write(common::Q_DEVICE, s.device);
        Ok(())
    }

    fn queue_vector(&self, queue: u16, vector: Option<u16>) -> Result<(), TransportError> {
        let v = vector.unwrap_or(NO_VECTOR);
        self.common.write(common::Q_MSIX, v);
        if vector.is_some() && self.common.read(common::Q_MSIX) != v {
            return Err(TransportError::VectorRefused {
                queue: Some(queue),
                vector: v,
            });
        }
        Ok(())
    }

    fn device_read<T>(&self, f: impl FnOnce(&R) -> T, absent: T) -> T {
        self.device.as_ref().map_or(absent, f)
    }
}

impl<R: RegWindow> Transport for ModernTransport<R> {
    fn dma_device(&self) -> &::caps::dma::DmaDevice {
        &self.dma
    }
    fn kind(&self) -> TransportKind {
        TransportKind::Modern
    }
    fn status(&self) -> DeviceStatus {
        DeviceStatus::from_bits_retain(self.common.read(common::STATUS))
    }
    fn write_status(&mut self, status: DeviceStatus) {
        self.common.write(common::STATUS, status.bits());
    }
    fn device_features(&mut self) -> u64 {
        self.common.write(common::DFSELECT, 0);
        let lo = self.common.read(common::DF);
        self.common.write(common::DFSELECT, 1);
        let hi = self.common.read(common::DF);
        u64::from(hi) << 32 | u64::from(lo)
    }
    fn write_driver_features(&mut self, features: u64) {
        self.common.write(common::GFSELECT, 0);
        self.common.write(common::GF, features as u32);
        self.common.write(common::GFSELECT, 1);
        self.common.write(common::GF, (features >> 32) as u32);
    }
    fn queue_max_size(&mut self, queue: u16) -> u16 {
        self.common.write(common::Q_SELECT, queue);
        self.common.read(common::Q_SIZE)
    }
    fn used_align(&self) -> usize {
        4
    }

    fn setup_queue(&mut self, queue: u16, s: &QueueSetup) -> Result<(), TransportError> {
        let slot = usize::from(queue);
        let max = self.queue_max_size(queue);
        if slot >= MAX_QUEUES || max == 0 {
            return Err(TransportError::NoSuchQueue { queue });
        }
        // The driver may shrink the queue to a smaller power of two (§4.1.4.3.2).
        if s.size == 0 || !s.size.is_power_of_two() || s.size > max {
            let wanted = s.size;
            return Err(TransportError::QueueSize { queue, max, wanted });
        }
        self.common.write(common::Q_SIZE, s.size);
        self.queue_addresses(queue, s)?;
        self.queue_vector(queue, s.vector)?;
        let off = usize::from(self.common.read(common::Q_NOFF))
            .checked_mul(self.multiplier as usize)
            .filter(|off| off.checked_add(2).is_some_and(|e| e <= self.notify.len()))
            .ok_or(TransportError::BadNotifyOffset { queue })?;
        self.notify_at[slot] = Some(off);
        self.common.write(common::Q_ENABLE, 1);
        Ok(())
    }

    fn set_config_vector(&mut self, vector: Option<u16>) -> Result<(), TransportError> {
        let v = vector.unwrap_or(NO_VECTOR);
        self.common.write(common::MSIX_CONFIG, v);
        if vector.is_some() && self.common.read(common::MSIX_CONFIG) != v {
            return Err(TransportError::VectorRefused {
                queue: None,
                vector: v,
            });
        }
        Ok(())
    }

    fn notify(&self, queue: u16) {
        if let Some(off) = self.notify_offset(queue) {
            self.notify.write16(off, queue);
        }
    }
    fn read_isr(&self) -> IsrStatus {
        IsrStatus(self.isr.read8(0))
    }
    fn config_generation(&self) -> u8 {
        self.common.read(common::CFG_GENERATION)
    }
    fn config_read8(&self, off: usize) -> u8 {
        self.device_read(|d| d.read8(off), u8::MAX)
    }
    fn config_read16(&self, off: usize) -> u16 {
        self.device_read(|d| d.read16(off), u16::MAX)
    }
    fn config_read32(&self, off: usize) -> u32 {
        self.device_read(|d| d.read32(off), u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::bar::Space;
    use crate::pci::fake::FakeConfigSpace;
    use crate::virtio::fake::{self, Ev};
    use crate::virtio::feature::{EVENT_IDX, VERSION_1};

    fn vendor_cap(cfg: &FakeConfigSpace, bdf: Bdf, at: u16, ty: u8, loc: (u8, u32, u32)) {
        cfg.add_cap(bdf, at, id::VENDOR);
        let len = if ty == cfg_type::NOTIFY { 20 } else { 16 };
        cfg.poke8(bdf, at + 2, len);
        cfg.poke8(bdf, at + 3, ty);
        cfg.poke8(bdf, at + 4, loc.0);
        cfg.poke32(bdf, at + 8, loc.1);
        cfg.poke32(bdf, at + 12, loc.2);
        if ty == cfg_type::NOTIFY {
            cfg.poke32(bdf, at + 16, 4);
        }
    }

    fn qemu_like() -> (FakeConfigSpace, Bdf) {
        let cfg = FakeConfigSpace::new();
        let bdf = Bdf::new(0, 2, 0).unwrap();
        cfg.add_endpoint(bdf, VENDOR_ID, 0x1000, [0x02, 0x00, 0x00]);
        cfg.poke16(bdf, 0x2e, 1);
        // Layout of QEMU's virtio-pci: everything in BAR 4, 4 KiB apart.
        cfg.add_msix(bdf, 0x98, 3, (1, 0), (1, 0x800));
        vendor_cap(&cfg, bdf, 0x84, cfg_type::COMMON, (4, 0x0000, 0x1000));
        vendor_cap(&cfg, bdf, 0x70, cfg_type::ISR, (4, 0x1000, 0x1000));
        vendor_cap(&cfg, bdf, 0x60, cfg_type::DEVICE, (4, 0x2000, 0x1000));
        vendor_cap(&cfg, bdf, 0x4c, cfg_type::NOTIFY, (4, 0x3000, 0x1000));
        vendor_cap(&cfg, bdf, 0xa8, cfg_type::PCI, (0, 0, 0));
        (cfg, bdf)
    }

    fn bars() -> [Bar; 6] {
        let mut bars = [Bar::UNUSED; 6];
        bars[4] = Bar {
            space: Some(Space::Mem64),
            prefetchable: true,
            size: 0x4000,
            pci_addr: Some(0x80_0000_0000),
            cpu_addr: Some(0x80_0000_0000),
        };
        bars
    }

    #[test]
    fn identifies_modern_and_transitional_ids() {
        let (cfg, bdf) = qemu_like();
        assert_eq!(device_type(&cfg, bdf), Some(1));
        let other = Bdf::new(0, 3, 0).unwrap();
        cfg.add_endpoint(other, VENDOR_ID, 0x1041, [2, 0, 0]);
        assert_eq!(device_type(&cfg, other), Some(1));
        cfg.add_endpoint(other, 0x8086, 0x1041, [2, 0, 0]);
        assert_eq!(device_type(&cfg, other), None);
    }

    #[test]
    fn finds_and_locates_capabilities() {
        let (cfg, bdf) = qemu_like();
        let caps = find_caps(&cfg, bdf).unwrap();
        assert!(caps.is_modern());
        assert_eq!(caps.notify_off_multiplier, 4);
        assert_eq!(caps.pci_cfg, Some(0xa8));
        let r = caps.locate(&bars()).unwrap();
        assert_eq!(r.common.cpu_addr, 0x80_0000_0000);
        assert_eq!(r.notify.cpu_addr, 0x80_0000_3000);
        assert_eq!(r.device.unwrap().len, 0x1000);
    }

    #[test]
    fn hostile_capabilities_are_skipped_or_refused() {
        let (cfg, bdf) = qemu_like();
        // A second common cfg is ignored (first wins); a reserved BAR and a short cap too.
        vendor_cap(&cfg, bdf, 0xb0, cfg_type::COMMON, (4, 0x3800, 0x800));
        vendor_cap(&cfg, bdf, 0xc0, cfg_type::ISR, (7, 0, 4));
        let caps = find_caps(&cfg, bdf).unwrap();
        assert_eq!(caps.common.unwrap().offset, 0);
        assert_eq!(caps.isr.unwrap().bar, 4);
        // A structure running past its BAR, or too short, is refused at locate.
        cfg.poke32(bdf, 0x84 + 12, 0x4001);
        let err = find_caps(&cfg, bdf).unwrap().locate(&bars());
        assert_eq!(err, Err(LocateError::BadRange { cfg_type: 1 }));
        cfg.poke32(bdf, 0x84 + 12, 0x20);
        let err = find_caps(&cfg, bdf).unwrap().locate(&bars());
        assert_eq!(err, Err(LocateError::BadRange { cfg_type: 1 }));
        // An unassigned BAR.
        cfg.poke32(bdf, 0x84 + 12, 0x1000);
        let mut b = bars();
        b[4].cpu_addr = None;
        let err = find_caps(&cfg, bdf).unwrap().locate(&b);
        assert_eq!(
            err,
            Err(LocateError::BadBar {
                cfg_type: 1,
                bar: 4
            })
        );
        // No vendor capabilities at all: legacy only.
        let plain = Bdf::new(0, 5, 0).unwrap();
        cfg.add_endpoint(plain, VENDOR_ID, 0x1000, [2, 0, 0]);
        let caps = find_caps(&cfg, plain).unwrap();
        assert!(!caps.is_modern());
        assert_eq!(
            caps.locate(&bars()),
            Err(LocateError::Missing { cfg_type: 1 })
        );
    }

    fn setup(size: u16, vector: Option<u16>) -> QueueSetup {
        QueueSetup {
            size,
            desc: 0x4000_0000,
            driver: 0x4000_1000,
            device: 0x4000_2000,
            vector,
        }
    }

    #[test]
    fn handshake_in_spec_order() {
        let dev = fake::device(VERSION_1 | EVENT_IDX | 1 << 5, &[256, 256], &[]);
        let mut t = fake::modern(&dev);
        let f = t.negotiate(EVENT_IDX | 1 << 7).unwrap();
        assert_eq!(
            f,
            VERSION_1 | EVENT_IDX,
            "only offered bits, VERSION_1 always"
        );
        t.setup_queue(0, &setup(256, Some(1))).unwrap();
        t.setup_queue(1, &setup(128, Some(2))).unwrap();
        t.set_config_vector(Some(0)).unwrap();
        t.driver_ok().unwrap();
        let d = dev.borrow();
        let want = [
            Ev::Status(0),
            Ev::Status(1),
            Ev::Status(3),
            Ev::Features(VERSION_1 | EVENT_IDX),
            Ev::Status(11),
            Ev::QueueEnable(0),
            Ev::QueueEnable(1),
            Ev::Status(15),
        ];
        assert_eq!(d.events, want);
        assert_eq!(d.queues[1].size, 128, "queue shrunk to the driver's size");
        assert_eq!(d.queues[0].addrs, [0x4000_0000, 0x4000_1000, 0x4000_2000]);
        assert_eq!((d.queues[0].vector, d.queues[1].vector), (1, 2));
        assert_eq!(d.config_vector, 0);
    }

    #[test]
    fn features_ok_rejection_and_missing_version_1() {
        let dev = fake::device(VERSION_1 | EVENT_IDX, &[8], &[]);
        dev.borrow_mut().reject_features = EVENT_IDX;
        let mut t = fake::modern(&dev);
        assert_eq!(
            t.negotiate(EVENT_IDX),
            Err(TransportError::FeaturesRejected)
        );
        assert!(t.status().contains(DeviceStatus::FAILED));
        // Without the offending bit it works after a fresh reset.
        assert_eq!(t.negotiate(0), Ok(VERSION_1));
        let old = fake::device(EVENT_IDX, &[8], &[]);
        let mut t = fake::modern(&old);
        assert_eq!(t.negotiate(EVENT_IDX), Err(TransportError::NoVersion1));
        assert!(t.status().contains(DeviceStatus::FAILED));
    }

    #[test]
    fn queue_size_shrink_and_limits() {
        let dev = fake::device(VERSION_1, &[1024, 0, 64], &[]);
        let mut t = fake::modern(&dev);
        t.negotiate(0).unwrap();
        t.setup_queue(0, &setup(256, None)).unwrap();
        assert_eq!(dev.borrow().queues[0].size, 256);
        let too_big = t.setup_queue(2, &setup(128, None));
        let want = TransportError::QueueSize {
            queue: 2,
            max: 64,
            wanted: 128,
        };
        assert_eq!(too_big, Err(want));
        assert!(
            t.setup_queue(2, &setup(48, None)).is_err(),
            "not a power of two"
        );
        assert_eq!(
            t.setup_queue(1, &setup(8, None)),
            Err(TransportError::NoSuchQueue { queue: 1 })
        );
        assert_eq!(
            t.setup_queue(3, &setup(8, None)),
            Err(TransportError::NoSuchQueue { queue: 3 })
        );
        let mut bad = setup(64, None);
        bad.desc += 8;
        assert_eq!(
            t.setup_queue(2, &bad),
            Err(TransportError::BadRingAddress { queue: 2 })
        );
        assert!(!dev.borrow().queues[2].enabled);
    }

    #[test]
    fn msix_vector_refusal_is_detected() {
        let dev = fake::device(VERSION_1, &[8, 8], &[]);
        let mut t = fake::modern(&dev);
        t.negotiate(0).unwrap();
        let refused = t.setup_queue(0, &setup(8, Some(9)));
        let want = TransportError::VectorRefused {
            queue: Some(0),
            vector: 9,
        };
        assert_eq!(refused, Err(want));
        assert!(
            !dev.borrow().queues[0].enabled,
            "a refused queue is not enabled"
        );
        let want = TransportError::VectorRefused {
            queue: None,
            vector: 4,
        };
        assert_eq!(t.set_config_vector(Some(4)), Err(want));
        // No vector at all is fine (INTx or polling).
        t.setup_queue(1, &setup(8, None)).unwrap();
        t.set_config_vector(None).unwrap();
    }

    #[test]
    fn needs_reset_and_reset_timeout() {
        let dev = fake::device(VERSION_1, &[8], &[]);
        let mut t = fake::modern(&dev);
        t.negotiate(0).unwrap();
        t.driver_ok().unwrap();
        dev.borrow_mut().status |= 64;
        assert_eq!(t.check_health(), Err(TransportError::NeedsReset));
        assert_eq!(t.driver_ok(), Err(TransportError::NeedsReset));
        // Reset clears it; a slow reset is waited for, a hung one times out.
        dev.borrow_mut().reset_latency = 100;
        t.reset().unwrap();
        assert_eq!(t.check_health(), Ok(()));
        dev.borrow_mut().reset_latency = usize::MAX;
        assert_eq!(t.reset(), Err(TransportError::ResetTimeout));
        // Only a completed reset (status read back 0) releases the function's rings, and
        // only its own: `Vring::release` reads the status itself.
        use ::caps::dma::{DmaDevice, DmaPool};
        use ::caps::fakes::{FakeDmaHal, FakeRingMem, leak};
        use ::caps::vring::{BufDir, Vring, VringLayout};
        let mem = FakeRingMem::new(VringLayout::new(8).unwrap().total, 0x9000_0000);
        let mut ring: Vring<_, _, _, 8> = Vring::new(mem, false, t.dma_device()).unwrap();
        let pool = DmaPool::new(leak(FakeDmaHal::new(0x4000_0000)), u64::MAX);
        ring.post(pool.alloc(64, 8).unwrap(), BufDir::DeviceWrites, 0)
            .unwrap();
        let ring = ring.release(&t.dma_stopped()).expect_err("reset hung");
        dev.borrow_mut().reset_latency = 100;
        t.reset().unwrap();
        let foreign: Vring<_, _, FakeDmaHal, 8> =
            Vring::new(FakeRingMem::new(4096, 0), false, &DmaDevice::new()).unwrap();
        assert!(
            foreign.release(&t.dma_stopped()).is_err(),
            "another device's ring"
        );
        assert_eq!(ring.release(&t.dma_stopped()).ok(), Some(1));
    }

    #[test]
    fn config_change_is_quiet_once_the_generation_read_is_the_latest() {
        use ::caps::irq::Trigger;
        use ::caps::quiet::quiesce;
        let dev = fake::device(VERSION_1, &[8], &[0; 8]);
        let t = fake::modern(&dev);
        let (gic, line) = ::caps::fakes::fired_line(36, Trigger::Edge);
        let mark = t.config_mark();
        dev.borrow_mut().generation += 1; // changed again while the handler read
        let line = quiesce(line, &t.config_quiet(mark)).expect_err("a change not read");
        let mark = t.config_mark();
        let (quiet, line) = quiesce(line, &t.config_quiet(mark)).expect("read the latest");
        let _armed = line.rearm(quiet);
        assert!(!gic.is_masked(36));
    }

    #[test]
    fn notify_offsets_are_cached_and_checked() {
        let dev = fake::device(VERSION_1, &[8, 8, 8], &[]);
        dev.borrow_mut().queues[2].notify_off = 16;
        let mut t = fake::modern(&dev);
        t.negotiate(0).unwrap();
        t.setup_queue(0, &setup(8, None)).unwrap();
        t.setup_queue(1, &setup(8, None)).unwrap();
        assert_eq!(t.notify_offset(1), Some(4));
        assert_eq!(
            t.setup_queue(2, &setup(8, None)),
            Err(TransportError::BadNotifyOffset { queue: 2 })
        );
        t.notify(1);
        t.notify(0);
        t.notify(2);
        assert_eq!(dev.borrow().notifications, [(4, 1), (0, 0)]);
    }

    #[test]
    fn config_reads_retry_until_the_generation_is_stable() {
        let dev = fake::device(VERSION_1, &[8], &[0x52, 0x54, 0, 0x12, 0x34, 0x56, 1, 0]);
        let t = fake::modern(&dev);
        dev.borrow_mut().unstable_reads = 3;
        let mac = t.read_config_stable(|t| t.config_read32(0)).unwrap();
        assert_eq!(mac, 0x1200_5452);
        dev.borrow_mut().unstable_reads = 1000;
        let v = t.read_config_stable(|t| t.config_read16(6));
        assert_eq!(v, Err(TransportError::ConfigUnstable));
        dev.borrow_mut().isr = 3;
        let first = t.read_isr();
        assert!(first.queue() && first.config());
        assert_eq!(t.read_isr(), crate::virtio::IsrStatus(0), "read clears");
    }
}
