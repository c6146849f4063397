//! What the machine looks like, read from the flattened device tree.
//!
//! Every address the kernel uses — RAM, UART, GIC, timer interrupts, PCI host,
//! PSCI conduit — comes from here, never from constants (docs/boot.md). On the
//! UEFI path `capstan.efi` writes the device tree from the ACPI tables, so this
//! one parser serves both paths. The blob is first checked and normalised
//! ([`dtb`]); the values are then decoded by checked helpers ([`dt`]), so a
//! malformed or hostile tree gives an error that names what is wrong, or a
//! warning and a working boot — never a panic. Pure: host-tested against DTBs
//! dumped from QEMU (`scripts/dump-dtb`), hand-made corruptions and proptest.

pub mod dt;
pub mod dtb;

use core::fmt;

use heapless::Vec;

use crate::memrange::Range;

pub use dtb::{Dtb, DtbError};

/// A register window: physical base and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mmio {
    /// Physical base address.
    pub base: usize,
    /// Length in bytes.
    pub len: usize,
}

pub use drivers::irqchip::Trigger;

/// A GIC interrupt from a 3-cell specifier, as an INTID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Irq {
    /// INTID: SPI n → 32 + n, PPI n → 16 + n.
    pub intid: u32,
    /// Edge or level.
    pub trigger: Trigger,
}

/// A GICv2m MSI frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2mFrame {
    /// Its register frame.
    pub mmio: Mmio,
    /// `(first SPI, count)` from `arm,msi-base-spi` / `arm,msi-num-spis`, which override
    /// the frame's own `MSI_TYPER` (Linux `arm,gic.yaml`).
    pub spis: Option<(u32, u32)>,
}

/// Which interrupt controller, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gic {
    /// GICv2: distributor and CPU interface, plus any v2m MSI frames.
    V2 {
        /// GICD.
        gicd: Mmio,
        /// GICC.
        gicc: Mmio,
        /// `arm,gic-v2m-frame` children.
        v2m: Vec<V2mFrame, 4>,
    },
    /// GICv3: distributor and redistributor region, plus any ITS or v2m frames (a
    /// GICv3 with a v2m frame and no ITS is how Parallels Desktop gives MSIs).
    V3 {
        /// GICD.
        gicd: Mmio,
        /// First redistributor region (the boot CPU's frame is found in it by affinity).
        gicr: Mmio,
        /// `arm,gic-v3-its` children.
        its: Vec<Mmio, 4>,
        /// `arm,gic-v2m-frame` children.
        v2m: Vec<V2mFrame, 4>,
    },
}

impl Gic {
    /// The v2m MSI frames, on either GIC version.
    pub fn v2m(&self) -> &[V2mFrame] {
        match self {
            Gic::V2 { v2m, .. } | Gic::V3 { v2m, .. } => v2m,
        }
    }

    /// The ITS frames (none on a GICv2).
    pub fn its(&self) -> &[Mmio] {
        match self {
            Gic::V2 { .. } => &[],
            Gic::V3 { its, .. } => its,
        }
    }
}

/// Which UART programming model the console uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UartKind {
    /// Arm PrimeCell PL011 (`arm,pl011`; QEMU `virt`, Parallels).
    Pl011,
    /// 16550-compatible (`ns16550a`; VMware): registers `1 << shift` bytes apart,
    /// accessed `width` bytes wide (1 or 4).
    Ns16550 {
        /// `reg-shift`.
        shift: u8,
        /// `reg-io-width`.
        width: u8,
    },
}

/// The console UART.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uart {
    /// Register window.
    pub mmio: Mmio,
    /// Programming model.
    pub kind: UartKind,
}

/// PSCI conduit from `/psci`'s `method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsciMethod {
    /// `hvc`.
    Hvc,
    /// `smc`.
    Smc,
}

impl fmt::Display for PsciMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PsciMethod::Hvc => "HVC",
            PsciMethod::Smc => "SMC",
        })
    }
}

/// A generic ECAM PCI host bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciHost {
    /// ECAM configuration window.
    pub ecam: Mmio,
    /// First and last bus numbers.
    pub bus_start: u8,
    /// Last bus number.
    pub bus_end: u8,
}

/// A short name or path kept for messages (longer ones are cut).
pub type Name = heapless::String<40>;

/// Something odd in the tree that the kernel works around (logged once the console
/// is up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// `/chosen/stdout-path` names a node that does not exist (the first UART is used).
    StdoutPathMissing(Name),
    /// No `/psci` node (or no usable `method`): no SMP, no poweroff or reboot.
    NoPsci,
    /// RAM banks beyond what the kernel tracks were ignored.
    RamBanksDropped(usize),
    /// CPUs beyond what the kernel tracks were ignored.
    CpusDropped(usize),
    /// More redistributor regions than the first were ignored.
    RedistributorRegionsIgnored(usize),
    /// `bootargs` is not UTF-8 (ignored).
    BadBootargs,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::StdoutPathMissing(p) => write!(
                f,
                "stdout-path names {p}, which is not in the device tree: using the first UART"
            ),
            Warning::NoPsci => write!(
                f,
                "no PSCI in the device tree: one CPU, and no poweroff or reboot"
            ),
            Warning::RamBanksDropped(n) => write!(f, "{n} RAM banks ignored (too many)"),
            Warning::CpusDropped(n) => write!(f, "{n} CPUs ignored (too many)"),
            Warning::RedistributorRegionsIgnored(n) => write!(
                f,
                "{n} more GICv3 redistributor regions ignored (only CPUs in the first have one)"
            ),
            Warning::BadBootargs => write!(f, "bootargs is not text: ignored"),
        }
    }
}

/// Why the kernel cannot run on what the tree describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformError {
    /// The blob itself is malformed.
    Dtb(DtbError),
    /// No `/memory` node with a usable range.
    NoMemory,
    /// More reserved ranges than the kernel tracks: using RAM it must not touch is worse
    /// than not booting.
    TooManyReserved(usize),
    /// No `arm,pl011` or `ns16550a` UART.
    NoUart,
    /// A UART node without a usable `reg`.
    UartReg(Name),
    /// No supported interrupt controller; names the interrupt-controller node found, if any.
    NoGic(Option<(Name, Name)>),
    /// A GIC node whose `reg` has fewer windows than the version needs.
    GicReg {
        /// Node path.
        node: Name,
        /// Windows present.
        found: usize,
        /// Windows needed.
        needed: usize,
    },
    /// No `arm,armv8-timer` node with the non-secure physical timer interrupt.
    NoTimer,
    /// The timer's non-secure physical interrupt is not a PPI (INTID given).
    TimerNotPpi(u32),
}

impl From<DtbError> for PlatformError {
    fn from(e: DtbError) -> Self {
        PlatformError::Dtb(e)
    }
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlatformError::Dtb(e) => write!(f, "malformed device tree: {e}"),
            PlatformError::NoMemory => write!(f, "no /memory node with a usable range"),
            PlatformError::TooManyReserved(n) => {
                write!(f, "{n} reserved memory ranges (the kernel tracks 64)")
            }
            PlatformError::NoUart => write!(f, "no arm,pl011 or ns16550a UART in the device tree"),
            PlatformError::UartReg(n) => write!(f, "UART {n} has no usable reg"),
            PlatformError::NoGic(None) => write!(f, "no interrupt controller in the device tree"),
            PlatformError::NoGic(Some((node, compat))) => write!(
                f,
                "interrupt controller {node} is \"{compat}\", which the kernel does not drive \
                 (arm,gic-v3, arm,cortex-a15-gic, arm,gic-400, arm,cortex-a9-gic)"
            ),
            PlatformError::GicReg {
                node,
                found,
                needed,
            } => write!(
                f,
                "interrupt controller {node} has {found} reg windows, needs {needed}"
            ),
            PlatformError::NoTimer => write!(
                f,
                "no arch timer interrupt in the device tree (arm,armv8-timer needs 2 or more \
                 interrupts)"
            ),
            PlatformError::TimerNotPpi(i) => {
                write!(
                    f,
                    "the arch timer's interrupt {i} is not a per-CPU interrupt"
                )
            }
        }
    }
}

/// Everything the kernel needs to know about the machine.
#[derive(Debug, Clone)]
pub struct Platform {
    /// Machine model string.
    pub model: heapless::String<64>,
    /// RAM banks from `/memory` nodes.
    pub ram: Vec<Range, 32>,
    /// Ranges that must never be allocated: `/reserved-memory` and the reservation block.
    pub reserved: Vec<Range, 64>,
    /// Console UART, preferring `/chosen/stdout-path`.
    pub uart: Uart,
    /// The UART's interrupt.
    pub uart_irq: Option<Irq>,
    /// Interrupt controller.
    pub gic: Gic,
    /// Non-secure EL1 physical timer PPI.
    pub timer_irq: Irq,
    /// PSCI conduit.
    pub psci: Option<PsciMethod>,
    /// PCI host bridge, if any.
    pub pci: Option<PciHost>,
    /// MPIDR of each CPU.
    pub cpus: Vec<u64, 8>,
    /// `/chosen/bootargs`.
    pub bootargs: heapless::String<512>,
    /// The initial RAM disk (`/chosen/linux,initrd-start` and `-end`), if the loader gave
    /// one.
    pub initrd: Option<Range>,
    /// `/chosen/capstan,probe`: what `capstan.efi` found in the firmware, as text.
    pub loader_report: Option<&'static [u8]>,
    /// What the kernel works around.
    pub warnings: Vec<Warning, 8>,
}
