//! PCI: the ECAM host bridge from the DTB, enumeration, BARs, and device claims.
//!
//! At boot the host bridge is read from the device tree, every function is found, and
//! BARs are assigned inside the bridge's windows (nobody did it for a `-kernel`
//! boot). Nothing is enabled until a driver *claims* a function: then memory
//! decode and bus mastering go on, its BARs are mapped, and its interrupts are
//! set up MSI-X → MSI → INTx (see `irq.rs`). A function with a malformed
//! capability list is logged and can never be claimed. See docs/pci.md.

pub mod edu;
pub mod handoff;
pub mod irq;

use core::sync::atomic::{AtomicBool, Ordering};

use caps::msi::VectorAllocator;
use drivers::irqchip::v2m::V2mError;
use drivers::pci::assign::{AssignReport, assign_bars};
use drivers::pci::config::{Bdf, Ecam};
use drivers::pci::dt::{DtError, HostBridge, host_bridge};
use drivers::pci::scan::{MAX_FUNCTIONS, PciFunction, enable_path, scan};
use drivers::pci::window::HostAllocator;
use heapless::Vec;

use crate::arch::devices;
use crate::platform::{Dtb, Mmio};
use crate::sync::IrqLock;

/// The enumerated bus.
pub struct Pci {
    /// Configuration access.
    pub ecam: Ecam,
    /// The host bridge (windows, INTx map).
    pub host: HostBridge,
    /// Every function found, BARs assigned.
    pub functions: alloc::vec::Vec<PciFunction>,
    claimed: [AtomicBool; MAX_FUNCTIONS],
    /// Boot option `pci=nomsi`: use INTx even where MSI is possible.
    pub no_msi: bool,
}

static PCI: spin::Once<Pci> = spin::Once::new();
/// Scan scratch space: the fixed-capacity list is ~20 KiB, too big for a kernel stack.
static SCAN: IrqLock<Vec<PciFunction, MAX_FUNCTIONS>> = IrqLock::new(Vec::new());
static MSI: spin::Once<VectorAllocator> = spin::Once::new();

/// The bus, after `init`.
pub fn bus() -> Option<&'static Pci> {
    PCI.get()
}

/// The MSI vector allocator (a GICv2m frame's SPIs, or the ITS's LPIs), if the machine
/// has one.
pub fn msi_vectors() -> Option<&'static VectorAllocator> {
    MSI.get().or_else(crate::its::vectors)
}

/// The ITS DeviceID of a PCI function: the requester ID its writes carry upstream (its
/// own `bus << 8 | dev << 3 | fn`, or a bridge's that takes them over; see
/// `PciFunction::requester_id`) through the host bridge's `msi-map` (QEMU `virt`:
/// `<0 &its 0 0x10000>`, the identity). `None` if the map gives the function no MSIs.
/// With one ITS the map's controller phandle is not checked. Functions behind one
/// conventional bridge share a DeviceID; the ITS maps each DeviceID once. The PCI layer
/// computes it and hands it to `its::map`, which knows nothing of PCI.
pub fn its_device_id(bdf: Bdf) -> Option<u32> {
    let Some(pci) = bus() else {
        return Some(u32::from(bdf.requester_id()));
    };
    let rid = pci
        .functions
        .iter()
        .find(|f| f.bdf == bdf)
        .map_or(bdf.requester_id(), |f| f.requester_id);
    pci.host.msi_map.device_id(rid).map(|(id, _)| id)
}

/// Enumerates the PCI host bridge described by the device tree, if there is one.
pub fn init(dtb: &Dtb, no_msi: bool) {
    let fdt = dtb.fdt();
    init_msi();
    let host = match host_bridge(fdt) {
        Ok(h) => h,
        Err(DtError::NoHostBridge) => return log::info!("no PCI host bridge"),
        Err(e) => return log::warn!("PCI host bridge unusable, no PCI devices: {e}"),
    };
    if let Some(e) = &host.intx_error {
        let why = match e {
            DtError::Intx(e) => alloc::format!("{e}"),
            e => alloc::format!("{e}"),
        };
        log::warn!("PCI interrupt-map unusable ({why}): no INTx, devices need MSI");
    }
    let ecam = match devices::ecam(host.ecam_base, host.bus_start, host.bus_end) {
        Ok(e) => e,
        Err(e) => {
            log::warn!(
                "PCI ECAM at {:#x} unusable ({e}): no PCI devices",
                host.ecam_base
            );
            return;
        }
    };
    let mut scratch = SCAN.lock();
    let report = scan(&ecam, host.bus_start, host.bus_end, &mut *scratch);
    if report.dropped > 0 || report.bridges_skipped > 0 {
        log::warn!(
            "PCI scan: {} functions dropped, {} bridges skipped",
            report.dropped,
            report.bridges_skipped
        );
    }
    let report = assign_bars(&ecam, &mut scratch, &mut HostAllocator::new(&host.windows));
    let functions: alloc::vec::Vec<PciFunction> = scratch.iter().cloned().collect();
    scratch.clear();
    drop(scratch);
    log_assignment(&functions, &report);
    PCI.call_once(|| Pci {
        ecam,
        host,
        functions,
        claimed: [const { AtomicBool::new(false) }; MAX_FUNCTIONS],
        no_msi,
    });
}

/// The first GICv2m frame (beside a GICv2, or a GICv3 as on Parallels) becomes the MSI
/// vector allocator; without one the ITS (if any) gives MSIs.
fn init_msi() {
    let Some(&frame) = crate::machine::platform().and_then(|p| p.gic.v2m().first()) else {
        return;
    };
    let base = frame.mmio.base;
    // MSI_TYPER must answer (devices::v2m reads it): firmware can name a frame that is
    // not there.
    let v2m = match devices::v2m(frame.mmio) {
        Ok(v) => v,
        Err(devices::DeviceError::Absent(_)) => {
            return log::warn!(
                "the firmware describes a v2m frame at {base:#x}, but it does not answer"
            );
        }
        Err(e) => return log::warn!("cannot map the v2m frame: {e}"),
    };
    // The firmware's SPI range (ACPI MADT flag, DT arm,msi-base-spi) overrides MSI_TYPER.
    // The GIC's `IrqControl` carves the allocator from it (one per INTID range).
    let range = match frame.spis {
        Some((first, count)) => drivers::irqchip::v2m::range_for(first, count, base as u64),
        None => v2m.msi_range(base as u64),
    };
    let allocator = range.and_then(|r| crate::irq::msi_vectors(r).map_err(V2mError::Allocator));
    match allocator {
        Ok(alloc) => {
            log::info!(
                "GICv2m: MSI SPIs {}..{}",
                alloc.base(),
                alloc.base() + alloc.count()
            );
            MSI.call_once(|| alloc);
        }
        Err(e) => log::warn!("GICv2m frame unusable: {e}"),
    }
}

/// A byte count for people: `32 B`, `16 KiB`, `2 MiB`.
struct Size(u64);

impl core::fmt::Display for Size {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            n if n >= 1 << 20 && n.is_multiple_of(1 << 20) => write!(f, "{} MiB", n >> 20),
            n if n >= 1 << 10 && n.is_multiple_of(1 << 10) => write!(f, "{} KiB", n >> 10),
            n => write!(f, "{n} B"),
        }
    }
}

fn log_assignment(functions: &[PciFunction], report: &AssignReport) {
    let AssignReport {
        assigned,
        kept,
        failed,
        bridge_windows,
        ..
    } = *report;
    log::info!(
        "PCI: {} functions, BARs {assigned} assigned, {kept} kept, {failed} without room; \
         {bridge_windows} bridge windows",
        functions.len()
    );
    for u in &report.unplaced {
        match u.bar {
            Some(bar) => log::warn!("PCI: no room for {} BAR {bar} ({})", u.bdf, Size(u.size)),
            None => log::warn!(
                "PCI: no room for a {} window of bridge {}: the devices behind it get none",
                Size(u.size),
                u.bdf
            ),
        }
    }
    for w in &report.windows {
        log::debug!(
            "PCI: bridge {} {} window at bus {:#x}..{:#x} (CPU {:#x}, {})",
            w.bdf,
            w.kind,
            w.pci_base,
            w.pci_base + w.size,
            w.cpu_base,
            Size(w.size)
        );
    }
    for f in functions {
        log_function(f);
        for (i, bar) in f
            .bars
            .iter()
            .enumerate()
            .filter(|(_, b)| b.is_implemented())
        {
            match bar.pci_addr {
                Some(pci) => log::debug!(
                    "PCI:     BAR {i}: {}{} {} at bus {pci:#x} (CPU {:#x})",
                    bar.space.unwrap_or(drivers::pci::bar::Space::Mem32),
                    if bar.prefetchable {
                        " prefetchable"
                    } else {
                        ""
                    },
                    Size(bar.size),
                    bar.cpu_addr.unwrap_or(0)
                ),
                None => log::warn!(
                    "PCI: {} ({:04x}:{:04x}) BAR {i} ({}) has no address: the device \
                     cannot be used",
                    f.bdf,
                    f.vendor,
                    f.device,
                    Size(bar.size)
                ),
            }
        }
    }
}

fn log_function(f: &PciFunction) {
    let caps = match &f.caps {
        Ok(c) => alloc::format!(
            "{}{}{}",
            if c.msix.is_some() { " MSI-X" } else { "" },
            if c.msi.is_some() { " MSI" } else { "" },
            if c.pcie.is_some() { " PCIe" } else { "" }
        ),
        Err(e) => alloc::format!(" capability list rejected ({e}); device skipped"),
    };
    let behind = f
        .parent
        .map(|p| alloc::format!(" behind {p}"))
        .unwrap_or_default();
    let bridge = f
        .bridge_buses
        .map(|(sec, sub)| alloc::format!(" bridge to buses {sec}..={sub}"))
        .unwrap_or_default();
    log::info!(
        "  {} {:04x}:{:04x} class {:02x}.{:02x} pin {}{caps}{bridge}{behind}",
        f.bdf,
        f.vendor,
        f.device,
        f.class,
        f.subclass,
        f.interrupt_pin
    );
}

/// A claimed function: the capability a driver holds to use one PCI device. Dropping it
/// turns off bus mastering and decode and releases the claim.
pub struct Device {
    index: usize,
    /// The function.
    pub func: &'static PciFunction,
}

/// Why a claim or setup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PciError {
    /// No bus, or no unclaimed matching function.
    NotFound,
    /// A BAR is unassigned or missing.
    NoBar,
    /// Mapping failed.
    Map,
    /// Interrupt setup failed.
    Irq(abi::Error),
}

impl core::fmt::Display for PciError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PciError::NotFound => write!(f, "no such PCI device (or it is already in use)"),
            PciError::NoBar => write!(f, "a register window (BAR) is missing or unassigned"),
            PciError::Map => write!(f, "its registers cannot be mapped"),
            PciError::Irq(e) => write!(f, "interrupt setup failed: {e}"),
        }
    }
}

/// Claims the first unclaimed function `vendor:device` whose capabilities parsed.
pub fn claim(vendor: u16, device: u16) -> Result<Device, PciError> {
    claim_with(|f| f.vendor == vendor && f.device == device, true)
}

/// Claims the function at `bdf`, if it is unclaimed and its capabilities parsed.
pub fn claim_at(bdf: Bdf) -> Result<Device, PciError> {
    claim_with(|f| f.bdf == bdf, true)
}

/// Claims the first unclaimed matching function: opens the bridges above it, then
/// turns on its decode, and bus mastering if `bus_master` (a user driver's device starts
/// without: it asks with `dev_bus_master`).
fn claim_with(
    matches: impl Fn(&PciFunction) -> bool,
    bus_master: bool,
) -> Result<Device, PciError> {
    let pci = bus().ok_or(PciError::NotFound)?;
    for (index, func) in pci.functions.iter().enumerate() {
        if !matches(func) || func.caps.is_err() {
            continue;
        }
        if pci.claimed[index]
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            enable_path(&pci.functions, &pci.ecam, func.bdf);
            if func.enable(&pci.ecam, true, bus_master).is_err() {
                pci.claimed[index].store(false, Ordering::Release);
                return Err(PciError::NoBar);
            }
            log::debug!(
                "PCI: {} claimed: decode{} on{}",
                func.bdf,
                if bus_master { " and bus mastering" } else { "" },
                func.parent
                    .map(|p| alloc::format!(", bridges from {p} up opened"))
                    .unwrap_or_default()
            );
            return Ok(Device { index, func });
        }
    }
    Err(PciError::NotFound)
}

impl Device {
    /// BAR `i`'s CPU window.
    pub fn bar(&self, i: usize) -> Result<Mmio, PciError> {
        let bar = self.func.bars.get(i).ok_or(PciError::NoBar)?;
        let base = bar.cpu_addr.ok_or(PciError::NoBar)?;
        Ok(Mmio {
            base: base as usize,
            len: bar.size as usize,
        })
    }

    /// The function's address.
    pub fn bdf(&self) -> Bdf {
        self.func.bdf
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        if let Some(pci) = bus() {
            self.func.disable(&pci.ecam);
            pci.claimed[self.index].store(false, Ordering::Release);
            log::debug!(
                "PCI: {} released: decode and bus mastering off",
                self.func.bdf
            );
        }
    }
}
