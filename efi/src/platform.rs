//! The machine as the kernel needs it: what the ACPI parsers fill in.
//!
//! [`Description`] is what `capstan.efi` turns into the device tree the kernel
//! boots with (`devicetree.rs`); `describe.rs` builds it from the tables. It sits
//! below both, so the parsers and the builder depend on it and not on each
//! other. Fixed-capacity throughout: it must outlive `ExitBootServices`.

use heapless::Vec;

/// A GIC interrupt as ACPI gives it: a GSIV and its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gsi {
    /// Global system interrupt number = GIC INTID.
    pub gsiv: u32,
    /// Edge rather than level.
    pub edge: bool,
    /// Active low rather than high.
    pub active_low: bool,
}

/// GIC architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicVersion {
    /// GICv2 (memory-mapped CPU interface).
    V2,
    /// GICv3 or v4 (redistributors, system-register CPU interface).
    V3,
}

/// A GICv2m MSI frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiFrame {
    /// Physical base.
    pub base: u64,
    /// `(first SPI, count)` when the MADT overrides the frame's `MSI_TYPER`.
    pub spis: Option<(u16, u16)>,
}

/// The interrupt controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gic {
    /// Version.
    pub version: GicVersion,
    /// Distributor base.
    pub gicd: u64,
    /// GICv2 CPU interface base (0 on GICv3).
    pub gicc: u64,
    /// GICv3 redistributor regions `(base, length)`, contiguous frames merged.
    pub gicr: Vec<(u64, u64), 8>,
    /// ITS `(id, base)`.
    pub its: Vec<(u32, u64), 4>,
    /// GICv2m frames (beside a GICv2, or a GICv3 on Parallels).
    pub msi_frames: Vec<MsiFrame, 4>,
}

/// The four architected timer interrupts (GTDT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    /// Secure EL1 physical.
    pub secure: Gsi,
    /// Non-secure EL1 physical: the one the kernel uses (VMware does not deliver
    /// the virtual timer).
    pub ns_el1: Gsi,
    /// EL1 virtual.
    pub virt: Gsi,
    /// EL2 physical.
    pub el2: Gsi,
}

/// The console UART's programming model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialKind {
    /// PL011 (or SBSA generic UART).
    Pl011,
    /// 16550: registers `1 << shift` apart, `width` bytes wide.
    Ns16550 {
        /// Register stride as a shift.
        shift: u8,
        /// Access width in bytes.
        width: u8,
    },
}

/// The console UART.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Serial {
    /// Programming model.
    pub kind: SerialKind,
    /// Register base.
    pub base: u64,
    /// Its interrupt, if the firmware says.
    pub irq: Option<Gsi>,
    /// Which table named it.
    pub source: &'static str,
}

/// PSCI conduit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conduit {
    /// HVC.
    Hvc,
    /// SMC.
    Smc,
}

/// A PCI window: child (bus) address range and where the CPU sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// I/O space rather than memory.
    pub io: bool,
    /// 64-bit memory.
    pub mem64: bool,
    /// Prefetchable memory.
    pub prefetchable: bool,
    /// Bus address.
    pub pci: u64,
    /// CPU physical address.
    pub cpu: u64,
    /// Size.
    pub size: u64,
}

/// One INTx route of a root-bus device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntxRoute {
    /// Device (slot) number.
    pub dev: u8,
    /// Pin, 1 = INTA.
    pub pin: u8,
    /// The interrupt.
    pub irq: Gsi,
}

/// Requester IDs `rid_base..rid_base + count` map to ITS DeviceIDs from `out_base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    /// First requester ID.
    pub rid_base: u32,
    /// How many.
    pub count: u32,
    /// DeviceID of `rid_base`.
    pub out_base: u32,
    /// ITS identifier (MADT).
    pub its: u32,
}

/// A PCI host bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBridge {
    /// PCI segment.
    pub segment: u16,
    /// ECAM base of bus 0 (MCFG convention).
    pub ecam: u64,
    /// First bus.
    pub bus_start: u8,
    /// Last bus.
    pub bus_end: u8,
    /// Windows from the DSDT `_CRS` (empty if it is not static).
    pub windows: Vec<Window, 8>,
    /// INTx routes from `_PRT` (empty if it is not static).
    pub intx: Vec<IntxRoute, 128>,
    /// Requester ID → DeviceID maps from the IORT.
    pub msi_map: Vec<IdMap, 8>,
}

/// Everything the device tree will say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// `ACPI <OEM ID> <OEM table ID>`.
    pub model: heapless::String<64>,
    /// MPIDR of each enabled CPU.
    pub cpus: Vec<u64, 64>,
    /// Interrupt controller.
    pub gic: Gic,
    /// Timer interrupts.
    pub timer: Timer,
    /// Console UART.
    pub serial: Serial,
    /// PSCI conduit (none: one CPU, no poweroff).
    pub psci: Option<Conduit>,
    /// PCI host bridges.
    pub pci: Vec<HostBridge, 4>,
}
