//! Legacy virtio PCI transport: the fixed BAR0 register block of virtio 0.9.
//!
//! Transitional devices (QEMU's `virtio-net-pci` default, device ID 0x1000,
//! and Parallels' devices) also expose the pre-1.0 interface: one block at
//! the start of BAR0 (I/O or memory) with 32-bit features, a queue page
//! frame number instead of three addresses, a fixed queue size, and no
//! FEATURES_OK (virtio 1.2 §4.1.4, "Legacy Interfaces: A Note on PCI Device
//! Layout"). The MSI-X vector registers exist only while MSI-X is enabled in
//! PCI configuration space, and the device-specific configuration moves from
//! 0x14 to 0x18 then, so the transport is told which case applies. Rings must
//! use the legacy layout (used ring 4096-aligned, `VringLayout::with_used_align`).

use core::mem::offset_of;

use super::pci::MAX_QUEUES;
use super::regs::RegWindow;
use super::{DeviceStatus, IsrStatus, NO_VECTOR, QueueSetup, Transport, TransportError};
use super::{LEGACY_PAGE, TransportKind};

/// The legacy header (virtio 1.2 §4.1.4, legacy interface note), offsets only.
#[repr(C)]
pub struct LegacyHeader {
    host_features: u32,
    guest_features: u32,
    queue_address: u32,
    queue_size: u16,
    queue_select: u16,
    queue_notify: u16,
    device_status: u8,
    isr_status: u8,
    config_msix_vector: u16,
    queue_msix_vector: u16,
}

const _: () = assert!(offset_of!(LegacyHeader, queue_address) == 0x08);
const _: () = assert!(offset_of!(LegacyHeader, queue_size) == 0x0c);
const _: () = assert!(offset_of!(LegacyHeader, queue_notify) == 0x10);
const _: () = assert!(offset_of!(LegacyHeader, device_status) == 0x12);
const _: () = assert!(offset_of!(LegacyHeader, isr_status) == 0x13);
const _: () = assert!(offset_of!(LegacyHeader, queue_msix_vector) == 0x16);

/// Offsets in the legacy header.
pub mod reg {
    use super::LegacyHeader;
    use core::mem::offset_of;
    /// Device features, low 32 (RO).
    pub const HOST_FEATURES: usize = offset_of!(LegacyHeader, host_features);
    /// Driver features (RW).
    pub const GUEST_FEATURES: usize = offset_of!(LegacyHeader, guest_features);
    /// Queue page frame number, address >> 12 (RW).
    pub const QUEUE_PFN: usize = offset_of!(LegacyHeader, queue_address);
    /// Queue size (RO).
    pub const QUEUE_SIZE: usize = offset_of!(LegacyHeader, queue_size);
    /// Queue select (RW).
    pub const QUEUE_SELECT: usize = offset_of!(LegacyHeader, queue_select);
    /// Queue notify (WO doorbell).
    pub const QUEUE_NOTIFY: usize = offset_of!(LegacyHeader, queue_notify);
    /// Device status (RW, 8).
    pub const STATUS: usize = offset_of!(LegacyHeader, device_status);
    /// ISR status (RO, read clears).
    pub const ISR: usize = offset_of!(LegacyHeader, isr_status);
    /// Configuration MSI-X vector (only with MSI-X enabled).
    pub const MSIX_CONFIG: usize = offset_of!(LegacyHeader, config_msix_vector);
    /// Queue MSI-X vector (only with MSI-X enabled).
    pub const MSIX_QUEUE: usize = offset_of!(LegacyHeader, queue_msix_vector);
    /// Device configuration without MSI-X.
    pub const CONFIG: usize = 0x14;
    /// Device configuration with MSI-X enabled.
    pub const CONFIG_MSIX: usize = 0x18;
}

/// The legacy transport over the BAR0 window.
pub struct LegacyTransport<R: RegWindow> {
    regs: R,
    msix: bool,
    ready: u16,
    dma: caps::dma::DmaDevice,
}

impl<R: RegWindow> LegacyTransport<R> {
    /// A transport over BAR0. `msix_enabled` must match the function's MSI-X Enable bit
    /// (it decides where the device configuration is); `WindowTooSmall` below 0x14 bytes.
    pub fn new(regs: R, msix_enabled: bool) -> Result<Self, TransportError> {
        let need = if msix_enabled {
            reg::CONFIG_MSIX
        } else {
            reg::CONFIG
        };
        if regs.len() < need {
            return Err(TransportError::WindowTooSmall { cfg_type: 0 });
        }
        Ok(LegacyTransport {
            regs,
            msix: msix_enabled,
            ready: 0,
            dma: caps::dma::DmaDevice::new(),
        })
    }

    fn config_base(&self) -> usize {
        if self.msix {
            reg::CONFIG_MSIX
        } else {
            reg::CONFIG
        }
    }

    /// Checks `s` describes one contiguous legacy ring (virtio 1.2 §2.7, legacy layout)
    /// and returns its page frame number.
    fn ring_pfn(queue: u16, s: &QueueSetup) -> Result<u32, TransportError> {
        let size = u64::from(s.size);
        let driver = s.desc + 16 * size;
        let device = (driver + 6 + 2 * size).next_multiple_of(LEGACY_PAGE);
        let pfn = u32::try_from(s.desc >> 12).ok();
        match pfn {
            Some(pfn)
                if s.desc.is_multiple_of(LEGACY_PAGE)
                    && s.driver == driver
                    && s.device == device =>
            {
                Ok(pfn)
            }
            _ => Err(TransportError::BadRingAddress { queue }),
        }
    }

    fn vector(&self, off: usize, queue: Option<u16>, v: Option<u16>) -> Result<(), TransportError> {
        let Some(vector) = v else {
            if self.msix {
                self.regs.write16(off, NO_VECTOR);
            }
            return Ok(());
        };
        let refused = TransportError::VectorRefused { queue, vector };
        if !self.msix {
            return Err(refused);
        }
        self.regs.write16(off, vector);
        if self.regs.read16(off) != vector {
            return Err(refused);
        }
        Ok(())
    }
}

impl<R: RegWindow> Transport for LegacyTransport<R> {
    fn dma_device(&self) -> &caps::dma::DmaDevice {
        &self.dma
    }
    fn kind(&self) -> TransportKind {
        TransportKind::Legacy
    }
    fn status(&self) -> DeviceStatus {
        DeviceStatus::from_bits_retain(self.regs.read8(reg::STATUS))
    }
    fn write_status(&mut self, status: DeviceStatus) {
        if status.is_empty() {
            self.ready = 0;
        }
        self.regs.write8(reg::STATUS, status.bits());
    }
    fn device_features(&mut self) -> u64 {
        u64::from(self.regs.read32(reg::HOST_FEATURES))
    }
    fn write_driver_features(&mut self, features: u64) {
        self.regs.write32(reg::GUEST_FEATURES, features as u32);
    }
    fn queue_max_size(&mut self, queue: u16) -> u16 {
        self.regs.write16(reg::QUEUE_SELECT, queue);
        self.regs.read16(reg::QUEUE_SIZE)
    }
    fn used_align(&self) -> usize {
        LEGACY_PAGE as usize
    }

    fn setup_queue(&mut self, queue: u16, s: &QueueSetup) -> Result<(), TransportError> {
        let max = self.queue_max_size(queue);
        if usize::from(queue) >= MAX_QUEUES || max == 0 {
            return Err(TransportError::NoSuchQueue { queue });
        }
        // The legacy queue size is fixed by the device.
        if s.size != max {
            let wanted = s.size;
            return Err(TransportError::QueueSize { queue, max, wanted });
        }
        let pfn = Self::ring_pfn(queue, s)?;
        self.vector(reg::MSIX_QUEUE, Some(queue), s.vector)?;
        // Writing the PFN activates the queue.
        self.regs.write32(reg::QUEUE_PFN, pfn);
        self.ready |= 1 << queue;
        Ok(())
    }

    fn set_config_vector(&mut self, vector: Option<u16>) -> Result<(), TransportError> {
        self.vector(reg::MSIX_CONFIG, None, vector)
    }

    fn notify(&self, queue: u16) {
        if usize::from(queue) < MAX_QUEUES && self.ready & (1 << queue) != 0 {
            self.regs.write16(reg::QUEUE_NOTIFY, queue);
        }
    }
    fn read_isr(&self) -> IsrStatus {
        IsrStatus(self.regs.read8(reg::ISR))
    }
    fn config_generation(&self) -> u8 {
        0
    }
    fn config_read8(&self, off: usize) -> u8 {
        self.regs.read8(self.config_base() + off)
    }
    fn config_read16(&self, off: usize) -> u16 {
        self.regs.read16(self.config_base() + off)
    }
    fn config_read32(&self, off: usize) -> u32 {
        self.regs.read32(self.config_base() + off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::fake::{self, Ev};
    use crate::virtio::feature::{EVENT_IDX, VERSION_1};

    /// A legacy-layout ring of `size` entries at `base` (4096-aligned).
    fn ring(base: u64, size: u16, vector: Option<u16>) -> QueueSetup {
        let n = u64::from(size);
        let driver = base + 16 * n;
        QueueSetup {
            size,
            desc: base,
            driver,
            device: (driver + 6 + 2 * n).next_multiple_of(4096),
            vector,
        }
    }

    #[test]
    fn handshake_without_features_ok_and_pfn_setup() {
        let dev = fake::device(EVENT_IDX | 1 << 5 | 1 << 40, &[256, 256], &[]);
        let mut t = fake::legacy(&dev, true);
        let f = t.negotiate(EVENT_IDX | VERSION_1 | 1 << 40).unwrap();
        assert_eq!(f, EVENT_IDX, "32 feature bits, no VERSION_1");
        t.setup_queue(0, &ring(0x4000_0000, 256, Some(1))).unwrap();
        t.setup_queue(1, &ring(0x4001_0000, 256, Some(2))).unwrap();
        t.set_config_vector(Some(0)).unwrap();
        t.driver_ok().unwrap();
        let d = dev.borrow();
        let want = [
            Ev::Status(0),
            Ev::Status(1),
            Ev::Status(3),
            Ev::Features(EVENT_IDX),
            Ev::QueuePfn(0, 0x4_0000),
            Ev::QueuePfn(1, 0x4_0010),
            Ev::Status(7),
        ];
        assert_eq!(d.events, want);
        assert_eq!((d.queues[0].vector, d.config_vector), (1, 0));
    }

    #[test]
    fn fixed_queue_size_and_ring_layout_are_enforced() {
        let dev = fake::device(0, &[256], &[]);
        let mut t = fake::legacy(&dev, false);
        t.negotiate(0).unwrap();
        let want = TransportError::QueueSize {
            queue: 0,
            max: 256,
            wanted: 128,
        };
        assert_eq!(t.setup_queue(0, &ring(0x4000_0000, 128, None)), Err(want));
        let bad = TransportError::BadRingAddress { queue: 0 };
        assert_eq!(t.setup_queue(0, &ring(0x4000_0800, 256, None)), Err(bad));
        let mut modern_layout = ring(0x4000_0000, 256, None);
        modern_layout.device = modern_layout.driver + 6 + 512 + 2;
        assert_eq!(t.setup_queue(0, &modern_layout), Err(bad));
        assert_eq!(
            t.setup_queue(0, &ring(1 << 44, 256, None)),
            Err(bad),
            "PFN > 32 bits"
        );
        assert!(dev.borrow().queues[0].pfn == 0);
        // Notifications only go to queues that were set up.
        t.notify(0);
        t.setup_queue(0, &ring(0x4000_0000, 256, None)).unwrap();
        t.notify(0);
        assert_eq!(dev.borrow().notifications, [(reg::QUEUE_NOTIFY, 0)]);
        assert_eq!(t.used_align(), 4096);
    }

    #[test]
    fn msix_registers_and_config_offset_follow_msix_enable() {
        let mac = [0x52, 0x54, 0, 0xab, 0xcd, 0xef, 1, 0];
        let dev = fake::device(0, &[8], &mac);
        let t = fake::legacy(&dev, false);
        assert_eq!((t.config_read8(0), t.config_read8(5)), (0x52, 0xef));
        let mut t = fake::legacy(&dev, true);
        assert_eq!((t.config_read8(0), t.config_read16(6)), (0x52, 1));
        t.negotiate(0).unwrap();
        let want = TransportError::VectorRefused {
            queue: Some(0),
            vector: 5,
        };
        assert_eq!(t.setup_queue(0, &ring(0x4000_0000, 8, Some(5))), Err(want));
        // Without MSI-X a vector cannot be honoured at all.
        let mut t = fake::legacy(&dev, false);
        let want = TransportError::VectorRefused {
            queue: None,
            vector: 0,
        };
        assert_eq!(t.set_config_vector(Some(0)), Err(want));
        assert_eq!(t.set_config_vector(None), Ok(()));
    }

    #[test]
    fn needs_reset_is_reported() {
        let dev = fake::device(0, &[8], &[]);
        let mut t = fake::legacy(&dev, false);
        t.negotiate(0).unwrap();
        dev.borrow_mut().status |= 64;
        assert_eq!(t.driver_ok(), Err(TransportError::NeedsReset));
        dev.borrow_mut().isr = 2;
        assert!(t.read_isr().config());
        assert_eq!(t.config_generation(), 0);
    }
}
