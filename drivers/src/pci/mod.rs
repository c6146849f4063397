//! PCI: ECAM config access, enumeration, BARs, capabilities, MSI/MSI-X, INTx.
//!
//! Every device driver beyond the UART sits behind the PCIe host bridge QEMU
//! `virt` exposes (`pci-host-ecam-generic`), so the kernel needs the whole
//! chain from configuration access to an interrupt vector, written once and
//! tested on the host: [`config`] (ECAM, PCIe Base 4.0 §7.2.2), [`scan`]
//! (enumeration, bridge numbering), [`bar`] (sizing), [`window`] (the DT
//! `ranges` windows), [`assign`] (BARs and bridge windows), [`caps`] (bounded capability walks), [`msi`] (MSI and
//! MSI-X programming, the MSI-X → MSI → INTx choice) and [`intx`] (the DT
//! `interrupt-map`). Design notes: `docs/pci.md`.

pub mod assign;
pub mod bar;
pub mod caps;
pub mod config;
pub mod dt;
pub mod intx;
pub mod msi;
pub mod msimap;
pub mod scan;
pub mod window;

#[cfg(any(test, feature = "fakes"))]
pub mod fake;

pub use assign::{AssignReport, assign_bars};
pub use bar::{Bar, Space};
pub use config::{Bdf, Command, ConfigAccess, Ecam};
pub use scan::{PciFunction, scan};
pub use window::{HostAllocator, Window};
