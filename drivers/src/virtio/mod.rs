//! virtio over PCI: modern and legacy transports, and the virtio-net driver.
//!
//! QEMU's `virtio-net-pci` and Parallels' network device are virtio PCI
//! functions, either modern (virtio 1.2 §4.1.4: registers located through
//! vendor capabilities) or transitional (also the legacy BAR0 block). Both
//! are driven through one [`Transport`] trait so the device drivers ([`net`])
//! are written once, and the initialisation order of virtio 1.2 §3.1.1
//! (reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queues, DRIVER_OK)
//! lives here, in provided methods, instead of in each driver. A device that
//! refuses the features or sets `DEVICE_NEEDS_RESET` is reported as a
//! [`TransportError`] for the caller to reset — never trusted. The
//! virtqueues themselves are `caps::Vring`s; see `docs/virtio.md`.

pub mod any;
pub mod legacy;
pub mod net;
pub mod pci;
pub mod regs;

#[cfg(test)]
mod fake;

use core::fmt;

use bitflags::bitflags;

pub use any::AnyTransport;
pub use legacy::LegacyTransport;
pub use pci::{ModernTransport, VirtioPciCaps};
pub use regs::{MmioWindow, RegWindow};

/// PCI vendor ID of every virtio function (virtio 1.2 §4.1.2).
pub const VENDOR_ID: u16 = 0x1af4;
/// Device type of a network card (virtio 1.2 §5).
pub const DEVICE_TYPE_NET: u16 = 1;
/// "No MSI-X vector" (virtio 1.2 §4.1.4.3); read back when the device refuses one.
pub const NO_VECTOR: u16 = 0xffff;
/// How many status reads a reset may take before it counts as hung.
pub const RESET_POLLS: usize = 10_000;
/// Retries of a device-configuration read whose generation kept changing.
pub const CONFIG_RETRIES: usize = 16;

/// The legacy interface's page size: queue PFNs and used-ring alignment (virtio 1.2 §2.7).
pub const LEGACY_PAGE: u64 = 4096;

bitflags! {
    /// Device status field (virtio 1.2 §2.1).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct DeviceStatus: u8 {
        /// The guest found the device.
        const ACKNOWLEDGE = 1;
        /// The guest knows how to drive it.
        const DRIVER = 2;
        /// The driver is set up and ready.
        const DRIVER_OK = 4;
        /// Feature negotiation is complete.
        const FEATURES_OK = 8;
        /// The device hit an error it cannot recover from by itself.
        const DEVICE_NEEDS_RESET = 64;
        /// The guest gave up on the device.
        const FAILED = 128;
    }
}

/// Device-independent feature bits (virtio 1.2 §6).
pub mod feature {
    /// Descriptors may point to descriptor tables (not used).
    pub const INDIRECT_DESC: u64 = 1 << 28;
    /// `used_event` / `avail_event` suppression (virtio 1.2 §2.7.7, §2.7.10).
    pub const EVENT_IDX: u64 = 1 << 29;
    /// Compliance with virtio 1.x (modern devices must offer it).
    pub const VERSION_1: u64 = 1 << 32;
    /// DMA goes through the platform's translation (bus addresses, IOMMU).
    pub const ACCESS_PLATFORM: u64 = 1 << 33;
    /// Packed virtqueues (not used).
    pub const RING_PACKED: u64 = 1 << 34;
}

/// Interrupt status register (virtio 1.2 §4.1.4.5); reading it clears it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsrStatus(pub u8);

impl IsrStatus {
    /// Bit 0: a used buffer notification (INTx only).
    pub fn queue(self) -> bool {
        self.0 & 1 != 0
    }
    /// Bit 1: the device configuration changed.
    pub fn config(self) -> bool {
        self.0 & 2 != 0
    }
}

/// Which register interface a transport speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// virtio 1.x capabilities (virtio 1.2 §4.1.4).
    Modern,
    /// The legacy BAR0 block (virtio 1.2 §4.1.4, legacy interface note).
    Legacy,
}

/// Where a queue lives and which MSI-X entry it signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSetup {
    /// Entries (power of two; legacy: must equal the device's fixed size).
    pub size: u16,
    /// Bus address of the descriptor table.
    pub desc: u64,
    /// Bus address of the available (driver) ring.
    pub driver: u64,
    /// Bus address of the used (device) ring.
    pub device: u64,
    /// MSI-X table entry for this queue, or `None` (INTx / MSI / polling).
    pub vector: Option<u16>,
}

/// Everything a transport or the handshake refuses, as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// Status did not read 0 within [`RESET_POLLS`] reads after a reset.
    ResetTimeout,
    /// A modern device that does not offer `VIRTIO_F_VERSION_1`.
    NoVersion1,
    /// The device cleared FEATURES_OK: it cannot work with the features we took.
    FeaturesRejected,
    /// The device set `DEVICE_NEEDS_RESET` (or reads all-ones: it is gone).
    NeedsReset,
    /// A window is smaller than its structure.
    WindowTooSmall {
        /// virtio structure type (1 common, 2 notify, 3 ISR, 4 device, 0 legacy).
        cfg_type: u8,
    },
    /// The queue does not exist (size 0) or is past what the transport tracks.
    NoSuchQueue {
        /// Queue index.
        queue: u16,
    },
    /// The device's queue size cannot give the size asked for.
    QueueSize {
        /// Queue index.
        queue: u16,
        /// What the device offers (legacy: exactly this).
        max: u16,
        /// What the driver asked for.
        wanted: u16,
    },
    /// Ring addresses the interface cannot express (legacy: PFN, 4096-aligned, contiguous).
    BadRingAddress {
        /// Queue index.
        queue: u16,
    },
    /// The device read back `NO_VECTOR` (or another value) for an MSI-X vector.
    VectorRefused {
        /// Queue index, `None` for the configuration vector.
        queue: Option<u16>,
        /// The vector written.
        vector: u16,
    },
    /// `queue_notify_off * notify_off_multiplier` leaves the notify window.
    BadNotifyOffset {
        /// Queue index.
        queue: u16,
    },
    /// The configuration generation kept changing over [`CONFIG_RETRIES`] reads.
    ConfigUnstable,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TransportError::ResetTimeout => {
                write!(
                    f,
                    "the device did not finish its reset (status never read 0)"
                )
            }
            TransportError::NoVersion1 => write!(f, "the device does not offer virtio 1.0"),
            TransportError::FeaturesRejected => {
                write!(f, "the device refused the features the driver took")
            }
            TransportError::NeedsReset => write!(f, "the device needs a reset or is gone"),
            TransportError::WindowTooSmall { cfg_type } => {
                write!(
                    f,
                    "the device's type-{cfg_type} register window is too small"
                )
            }
            TransportError::NoSuchQueue { queue } => write!(f, "the device has no queue {queue}"),
            TransportError::QueueSize { queue, max, wanted } => write!(
                f,
                "queue {queue} offers {max} entries where the driver needs {wanted}"
            ),
            TransportError::BadRingAddress { queue } => {
                write!(
                    f,
                    "queue {queue}'s ring cannot be placed where this interface can reach"
                )
            }
            TransportError::VectorRefused {
                queue: Some(q),
                vector,
            } => write!(f, "the device refused MSI-X vector {vector} for queue {q}"),
            TransportError::VectorRefused {
                queue: None,
                vector,
            } => write!(
                f,
                "the device refused MSI-X vector {vector} for config changes"
            ),
            TransportError::BadNotifyOffset { queue } => {
                write!(f, "queue {queue}'s doorbell lies outside the notify window")
            }
            TransportError::ConfigUnstable => {
                write!(f, "the device's configuration kept changing while read")
            }
        }
    }
}

/// Register-level operations of one virtio PCI function; the handshake of
/// virtio 1.2 §3.1.1 is built on them in the provided methods.
pub trait Transport {
    /// The function's DMA identity: its rings are made for it, and only its own reset
    /// (read back through [`Transport::dma_stopped`]) releases them.
    fn dma_device(&self) -> &caps::dma::DmaDevice;
    /// Modern or legacy.
    fn kind(&self) -> TransportKind;
    /// Reads the device status.
    fn status(&self) -> DeviceStatus;
    /// Writes the device status (0 resets the device).
    fn write_status(&mut self, status: DeviceStatus);
    /// The 64 feature bits the device offers (legacy: the low 32).
    fn device_features(&mut self) -> u64;
    /// Writes the driver's accepted features.
    fn write_driver_features(&mut self, features: u64);
    /// Largest size of queue `queue` (0: no such queue).
    fn queue_max_size(&mut self, queue: u16) -> u16;
    /// Alignment the used ring needs in this interface (4 modern, 4096 legacy).
    fn used_align(&self) -> usize;
    /// Configures and enables queue `queue` (virtio 1.2 §4.1.5.1.3), caching its notify
    /// address; checks the MSI-X vector by reading it back.
    fn setup_queue(&mut self, queue: u16, setup: &QueueSetup) -> Result<(), TransportError>;
    /// Sets (and reads back) the configuration-change MSI-X vector (virtio 1.2 §4.1.5.1.2).
    fn set_config_vector(&mut self, vector: Option<u16>) -> Result<(), TransportError>;
    /// Available-buffer notification for a set-up queue (virtio 1.2 §4.1.5.2). A doorbell
    /// write only; unknown queues are ignored.
    fn notify(&self, queue: u16);
    /// Reads (and so clears) the ISR status; INTx handlers need it.
    fn read_isr(&self) -> IsrStatus;
    /// Configuration generation (virtio 1.2 §2.5.1); legacy has none and reads 0.
    fn config_generation(&self) -> u8;
    /// Device-specific configuration byte at `off`.
    fn config_read8(&self, off: usize) -> u8;
    /// Device-specific configuration 16-bit field at `off` (little-endian).
    fn config_read16(&self, off: usize) -> u16;
    /// Device-specific configuration 32-bit field at `off`.
    fn config_read32(&self, off: usize) -> u32;

    /// Writes 0 and waits, bounded, for the status to read 0 (virtio 1.2 §4.1.4.3.2).
    fn reset(&mut self) -> Result<(), TransportError> {
        self.write_status(DeviceStatus::empty());
        for _ in 0..RESET_POLLS {
            if self.status().is_empty() {
                return Ok(());
            }
        }
        Err(TransportError::ResetTimeout)
    }

    /// The device as a `caps::dma::DmaIdle` source: idle once its status reads 0, i.e. after
    /// a completed [`Transport::reset`] (virtio 1.2 §2.4). `Vring::release` reads it to free
    /// the buffers the rings still hold instead of quarantining them.
    fn dma_stopped(&self) -> DmaStopped<'_, Self>
    where
        Self: Sized,
    {
        DmaStopped { transport: self }
    }

    /// Sets `bits` on top of the current status (the driver never clears a bit, §2.1.2).
    fn add_status(&mut self, bits: DeviceStatus) {
        let s = self.status();
        self.write_status(s | bits);
    }

    /// `DEVICE_NEEDS_RESET` check; a removed device reads all-ones and fails it too.
    fn check_health(&self) -> Result<(), TransportError> {
        if self.status().contains(DeviceStatus::DEVICE_NEEDS_RESET) {
            return Err(TransportError::NeedsReset);
        }
        Ok(())
    }

    /// Gives up on the device (FAILED, virtio 1.2 §3.1.1) and hands `e` back.
    fn fail(&mut self, e: TransportError) -> TransportError {
        self.add_status(DeviceStatus::FAILED);
        e
    }

    /// Steps 1–6 of virtio 1.2 §3.1.1: reset, ACKNOWLEDGE, DRIVER, negotiate `wanted`
    /// against the device's offer (modern: VERSION_1 is required and always taken), and
    /// FEATURES_OK, re-read to confirm (a legacy device has no FEATURES_OK). Returns the
    /// negotiated features; on error the device is marked FAILED.
    fn negotiate(&mut self, wanted: u64) -> Result<u64, TransportError>
    where
        Self: Sized,
    {
        self.negotiate_with(|_| wanted)
    }

    /// As [`Transport::negotiate`], with the wanted set computed from the device's offer
    /// (`choose(offered)`): for features that depend on each other, such as an offload
    /// that needs another one the device may not offer.
    fn negotiate_with(&mut self, choose: impl FnOnce(u64) -> u64) -> Result<u64, TransportError>
    where
        Self: Sized,
    {
        self.reset()?;
        self.add_status(DeviceStatus::ACKNOWLEDGE);
        self.add_status(DeviceStatus::DRIVER);
        let offered = self.device_features();
        let wanted = choose(offered);
        let features = match self.kind() {
            TransportKind::Modern if offered & feature::VERSION_1 == 0 => {
                return Err(self.fail(TransportError::NoVersion1));
            }
            TransportKind::Modern => (offered & wanted) | feature::VERSION_1,
            TransportKind::Legacy => offered & wanted & u64::from(u32::MAX),
        };
        self.write_driver_features(features);
        if self.kind() == TransportKind::Modern {
            self.add_status(DeviceStatus::FEATURES_OK);
            if !self.status().contains(DeviceStatus::FEATURES_OK) {
                return Err(self.fail(TransportError::FeaturesRejected));
            }
        }
        self.check_health().map_err(|e| self.fail(e))?;
        Ok(features)
    }

    /// Step 8 of virtio 1.2 §3.1.1: DRIVER_OK, then a health check.
    fn driver_ok(&mut self) -> Result<(), TransportError> {
        self.add_status(DeviceStatus::DRIVER_OK);
        self.check_health()
    }

    /// Marks the configuration generation now, before a configuration-change handler
    /// re-reads the configuration; [`Transport::config_quiet`] later checks against it.
    fn config_mark(&self) -> ConfigMark {
        ConfigMark(self.config_generation())
    }

    /// The quiet check of the configuration-change vector: quiet once the generation still
    /// reads what it read at `mark`, i.e. the handler saw the latest configuration.
    fn config_quiet(&self, mark: ConfigMark) -> ConfigQuiet<'_, Self>
    where
        Self: Sized,
    {
        ConfigQuiet {
            transport: self,
            seen: mark.0,
        }
    }

    /// Reads device configuration through `read` until the generation is stable on both
    /// sides of it (virtio 1.2 §2.5.1), at most [`CONFIG_RETRIES`] times.
    fn read_config_stable<R>(&self, mut read: impl FnMut(&Self) -> R) -> Result<R, TransportError>
    where
        Self: Sized,
    {
        for _ in 0..CONFIG_RETRIES {
            let before = self.config_generation();
            let v = read(self);
            if self.config_generation() == before {
                return Ok(v);
            }
        }
        Err(TransportError::ConfigUnstable)
    }
}

/// The configuration generation a configuration-change handler started from
/// ([`Transport::config_mark`]). Only a transport makes one.
#[derive(Debug)]
pub struct ConfigMark(u8);

/// The quiet check of a configuration-change interrupt ([`Transport::config_quiet`]).
pub struct ConfigQuiet<'a, T: Transport> {
    transport: &'a T,
    seen: u8,
}

// SAFETY: a configuration change is signalled as an event (an MSI-X message on the
// configuration vector, virtio 1.2 §4.1.5.1.2): there is no level to drop, and a change made
// later sends a new message, which the GIC latches while the line is masked. What the
// driver must not miss is a change it has not read; the device changes `config_generation`
// whenever the configuration may have changed (§2.5.1), and `is_quiet` reads it back through
// the transport's registers and compares it with the generation the handler started from.
// (Legacy devices have no generation and read 0: quiet, on the event semantics alone.)
unsafe impl<T: Transport> caps::quiet::QuietCheck for ConfigQuiet<'_, T> {
    fn is_quiet(&self, _: &caps::quiet::Seal) -> bool {
        self.transport.config_generation() == self.seen
    }
}

/// A virtio function as the source of its own DMA state ([`Transport::dma_stopped`]).
pub struct DmaStopped<'a, T: Transport> {
    transport: &'a T,
}

// SAFETY: a virtio device whose status reads 0 has been reset (virtio 1.2 §2.1, §2.4: "the
// device MUST NOT ... access the virtqueues after reset"): it performs no DMA until the
// driver brings it up again, which needs `&mut` access this borrow excludes. `dma_idle`
// reads the status register through the transport; `dma_device` is the transport's own
// identity, the one its rings were made with.
unsafe impl<T: Transport> caps::dma::DmaIdle for DmaStopped<'_, T> {
    fn dma_device(&self) -> &caps::dma::DmaDevice {
        self.transport.dma_device()
    }
    fn dma_idle(&self, _: &caps::quiet::Seal) -> bool {
        self.transport.status().is_empty()
    }
}
