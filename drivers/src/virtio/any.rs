//! Either transport behind one type, for kernels that find out at probe time.
//!
//! A virtio PCI function is modern when it has the vendor capabilities of virtio 1.2
//! §4.1.4, and legacy-only when it has just the BAR0 block (QEMU's `disable-modern=on`,
//! older hypervisors). Drivers are generic over [`Transport`]; the kernel instantiates
//! them once with `AnyTransport` instead of twice, and the per-access cost is one match.

use super::{
    DeviceStatus, IsrStatus, LegacyTransport, ModernTransport, QueueSetup, RegWindow, Transport,
    TransportError, TransportKind,
};

/// A modern or a legacy transport over windows of type `R`.
#[allow(
    clippy::large_enum_variant,
    reason = "one per device, inside the driver's own allocation; boxing the modern variant \
              would add a pointer chase to every register access"
)]
pub enum AnyTransport<R: RegWindow> {
    /// virtio 1.x through the PCI vendor capabilities.
    Modern(ModernTransport<R>),
    /// virtio 0.9.5 through the BAR0 block.
    Legacy(LegacyTransport<R>),
}

macro_rules! either {
    ($self:expr, $t:ident => $e:expr) => {
        match $self {
            AnyTransport::Modern($t) => $e,
            AnyTransport::Legacy($t) => $e,
        }
    };
}

impl<R: RegWindow> Transport for AnyTransport<R> {
    fn dma_device(&self) -> &caps::dma::DmaDevice {
        either!(self, t => t.dma_device())
    }
    fn kind(&self) -> TransportKind {
        either!(self, t => t.kind())
    }
    fn status(&self) -> DeviceStatus {
        either!(self, t => t.status())
    }
    fn write_status(&mut self, status: DeviceStatus) {
        either!(self, t => t.write_status(status))
    }
    fn device_features(&mut self) -> u64 {
        either!(self, t => t.device_features())
    }
    fn write_driver_features(&mut self, features: u64) {
        either!(self, t => t.write_driver_features(features))
    }
    fn queue_max_size(&mut self, queue: u16) -> u16 {
        either!(self, t => t.queue_max_size(queue))
    }
    fn used_align(&self) -> usize {
        either!(self, t => t.used_align())
    }
    fn setup_queue(&mut self, queue: u16, setup: &QueueSetup) -> Result<(), TransportError> {
        either!(self, t => t.setup_queue(queue, setup))
    }
    fn set_config_vector(&mut self, vector: Option<u16>) -> Result<(), TransportError> {
        either!(self, t => t.set_config_vector(vector))
    }
    fn notify(&self, queue: u16) {
        either!(self, t => t.notify(queue))
    }
    fn read_isr(&self) -> IsrStatus {
        either!(self, t => t.read_isr())
    }
    fn config_generation(&self) -> u8 {
        either!(self, t => t.config_generation())
    }
    fn config_read8(&self, off: usize) -> u8 {
        either!(self, t => t.config_read8(off))
    }
    fn config_read16(&self, off: usize) -> u16 {
        either!(self, t => t.config_read16(off))
    }
    fn config_read32(&self, off: usize) -> u32 {
        either!(self, t => t.config_read32(off))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::fake;
    use crate::virtio::feature::VERSION_1;
    use crate::virtio::net::tests::{CONFIG, MAC, QEMU, bring_up};
    use crate::virtio::net::{NetOptions, feature as net_feature};

    #[test]
    fn one_driver_type_brings_up_modern_and_legacy_devices() {
        let dev = fake::device(QEMU, &[256, 256, 64], &CONFIG);
        let t = AnyTransport::Modern(fake::modern(&dev));
        let (_w, d) = bring_up::<_, 256>(dev.clone(), t, &NetOptions::default());
        let d = d.expect("modern bring-up");
        assert_eq!(d.net.transport().kind(), TransportKind::Modern);
        assert_ne!(d.net.features() & VERSION_1, 0);
        assert_eq!(d.net.mac(), MAC);
        assert_eq!(dev.borrow().status, 15, "DRIVER_OK");

        let offered = net_feature::MAC | net_feature::STATUS | net_feature::MRG_RXBUF;
        let dev = fake::device(offered, &[256, 256], &CONFIG);
        let t = AnyTransport::Legacy(fake::legacy(&dev, false));
        let (_w, d) = bring_up::<_, 256>(dev.clone(), t, &NetOptions::default());
        let d = d.expect("legacy bring-up");
        assert_eq!(d.net.transport().kind(), TransportKind::Legacy);
        assert_eq!(d.net.features(), offered, "32-bit features, no VERSION_1");
        assert_eq!(d.net.mac(), MAC);
        assert_eq!(dev.borrow().status & 4, 4, "DRIVER_OK");
        assert_eq!(d.rx.in_flight(), 256);
    }
}
