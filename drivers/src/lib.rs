//! Device drivers and their register modules: irqchip, uart, pci, virtio.
//!
//! Drivers are kept out of the kernel crate so their pure logic (register field
//! encodings, index math) can be unit-tested on the host, and so the only `unsafe`
//! in them sits in the register modules that turn a physical window into a typed
//! handle: [`mmio`] for memory-mapped blocks and `irqchip::gicv3::sysreg` for the
//! GICv3 CPU interface. Nothing here allocates.
#![no_std]

#[cfg(any(test, feature = "fakes"))]
extern crate std;

pub mod edu;
pub mod irqchip;
mod mmio;
pub use mmio::reg;
pub mod pci;
pub mod uart;
pub mod virtio;
