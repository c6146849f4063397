//! Where MMIO windows become driver objects: map as device memory, then construct.
//!
//! Driver constructors are `unsafe` because they trust the base address; this
//! module is the one place that vouches for it — the window came from the DTB and
//! was just mapped nGnRE — so the rest of the kernel stays safe code.

use caps::irq::IrqChip;
use drivers::irqchip::InterruptController;
use drivers::uart::{Ns16550, Pl011, Uart};

use super::mmu::{self, Kind, MapFailed};
use crate::platform::{self, Mmio, UartKind};

/// Why a device described by the firmware could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceError {
    /// Mapping its registers failed.
    Map(MapFailed),
    /// Reading the register at this physical address faults: nothing answers there.
    Absent(usize),
}

impl core::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DeviceError::Map(e) => write!(
                f,
                "its registers at {:#x}..{:#x} cannot be mapped",
                e.start, e.end
            ),
            DeviceError::Absent(at) => write!(f, "nothing answers at {at:#x}"),
        }
    }
}

impl From<MapFailed> for DeviceError {
    fn from(e: MapFailed) -> Self {
        DeviceError::Map(e)
    }
}

/// Reads the mapped 32-bit register at virtual address `va` (physical `pa`, for the
/// report) through the fault-tolerant probe: firmware tables and device trees can
/// describe hardware that is not there, and a fault here is an error instead of a
/// fatal exception.
pub fn answers(va: usize, pa: usize) -> Result<u32, DeviceError> {
    super::probe::try_load_u32(va).map_err(|_| DeviceError::Absent(pa))
}

/// Reads the 32-bit word of RAM at physical `pa` (mapped through the linear map) the
/// same way: a device tree can claim RAM that is not there.
pub fn ram_answers(pa: usize) -> bool {
    super::probe::try_load_u32(mmu::phys_to_virt(pa)).is_ok()
}

/// Maps `mmio` (physical) as device memory (page-rounded); returns the virtual address
/// of `mmio.base`.
pub fn map_mmio(mmio: Mmio) -> Result<usize, MapFailed> {
    let start = mmio.base & !0xfff;
    let end = (mmio.base + mmio.len.max(1)).div_ceil(4096) * 4096;
    mmu::map(start, end, Kind::Device)?;
    Ok(mmu::phys_to_virt(mmio.base))
}

/// The driver for `uart`, mapped at `va`.
///
/// # Safety
/// `uart.mmio` is mapped as device memory at `va` for good.
unsafe fn uart_driver(uart: platform::Uart, va: usize) -> Uart {
    match uart.kind {
        // SAFETY: the caller guarantees the window is mapped as device memory at `va`.
        UartKind::Pl011 => Uart::Pl011(unsafe { Pl011::new(va) }),
        UartKind::Ns16550 { shift, width } => {
            // SAFETY: as above; the window came from the UART node's `reg`.
            Uart::Ns16550(unsafe { Ns16550::new(va, shift, width) })
        }
    }
}

/// Maps the console UART described by the device tree and checks that it answers;
/// returns its virtual address.
pub fn map_uart(uart: platform::Uart) -> Result<usize, DeviceError> {
    let va = map_mmio(uart.mmio)?;
    // A UART that is not there would turn every later message into a fault.
    let status = match uart.kind {
        UartKind::Pl011 => 0x18,
        UartKind::Ns16550 { shift, .. } => (5usize << shift) & !3,
    };
    answers(va + status, uart.mmio.base + status)?;
    Ok(va)
}

/// The console UART's driver (already mapped at `va` by [`map_uart`]).
pub fn uart(uart: platform::Uart, va: usize) -> Uart {
    // SAFETY: `map_uart` mapped the device tree's console UART at `va` as device memory
    // for good; the console owns the only long-lived handle.
    unsafe { uart_driver(uart, va) }
}

/// A handle on the console UART for emergency output (fatal traps, panics, early
/// boot failures), used without taking the console lock.
pub fn uart_emergency(uart: platform::Uart, va: usize) -> Uart {
    // SAFETY: only called with the UART `console::set_early` mapped at `va`; emergency
    // output only writes the data register (and reads status), and interleaving with
    // the normal console at worst garbles characters.
    unsafe { uart_driver(uart, va) }
}

/// The GICv3 `gic` made, for the ITS (which enables LPIs on its redistributor).
static GICV3: spin::Once<&'static drivers::irqchip::GicV3> = spin::Once::new();

/// The GICv3, if the machine has one (after [`gic`]).
pub fn gicv3() -> Option<&'static drivers::irqchip::GicV3> {
    GICV3.get().copied()
}

/// The GIC described by the DTB, mapped and constructed (not yet initialised).
pub fn gic(
    gic: &crate::platform::Gic,
) -> Result<(&'static dyn InterruptController, &'static dyn IrqChip), DeviceError> {
    use crate::platform::Gic;
    use alloc::boxed::Box;
    use drivers::irqchip::{GicV2, GicV3};
    match gic {
        Gic::V2 { gicd, gicc, .. } => {
            let d = map_mmio(*gicd)?;
            let c = map_mmio(*gicc)?;
            answers(d + 4, gicd.base + 4)?; // GICD_TYPER
            answers(c + 0xfc, gicc.base + 0xfc)?; // GICC_IIDR
            // SAFETY: both windows come from the DTB's GIC node and are mapped as device
            // memory at `d` and `c`; the kernel creates exactly one controller object.
            let chip: &'static GicV2 = Box::leak(Box::new(unsafe { GicV2::new(d, c) }));
            Ok((chip, chip))
        }
        Gic::V3 { gicd, gicr, .. } => {
            let d = map_mmio(*gicd)?;
            let r = map_mmio(*gicr)?;
            answers(d + 4, gicd.base + 4)?; // GICD_TYPER
            answers(r + 8, gicr.base + 8)?; // GICR_TYPER
            // SAFETY: as above, for the distributor and the redistributor region.
            let chip: &'static GicV3 = Box::leak(Box::new(unsafe { GicV3::new(d, r, gicr.len) }));
            GICV3.call_once(|| chip);
            Ok((chip, chip))
        }
    }
}

/// The PCI host bridge's ECAM window for buses `bus_start..=bus_end`, mapped and
/// checked to answer.
pub fn ecam(
    base: u64,
    bus_start: u8,
    bus_end: u8,
) -> Result<drivers::pci::config::Ecam, DeviceError> {
    let buses = usize::from(
        bus_end
            .checked_sub(bus_start)
            .ok_or(DeviceError::Absent(0))?,
    ) + 1;
    let va = map_mmio(Mmio {
        base: base as usize,
        len: buses << 20,
    })?;
    answers(va, base as usize)?; // bus_start 00.0's vendor ID
    // SAFETY: the window is the DTB's ECAM `reg` for exactly these buses, now mapped as
    // device memory for good at `va`; the kernel's PCI layer makes the only `Ecam`.
    Ok(unsafe { drivers::pci::config::Ecam::new(va, bus_start, bus_end) })
}

/// A GICv2m MSI frame, mapped and checked to answer (`MSI_TYPER`).
pub fn v2m(frame: Mmio) -> Result<drivers::irqchip::v2m::V2m, DeviceError> {
    let va = map_mmio(frame)?;
    answers(va + 8, frame.base + 8)?;
    // SAFETY: the frame comes from an `arm,gic-v2m-frame` DTB node and is now mapped as
    // device memory at `va`; the PCI layer makes the only handle.
    Ok(unsafe { drivers::irqchip::v2m::V2m::new(va) })
}

/// A GICv3 ITS's register frames (control + translation, 128 KiB), mapped and checked
/// to answer (`GITS_TYPER`; QEMU 7.2's ACPI tables name an ITS even with `its=off`).
pub fn its(frame: Mmio) -> Result<drivers::irqchip::its::regs::ItsMmio, DeviceError> {
    if frame.len < 0x2_0000 {
        return Err(DeviceError::Map(MapFailed {
            start: frame.base,
            end: frame.base + frame.len,
        }));
    }
    let va = map_mmio(frame)?;
    answers(va + 8, frame.base + 8)?;
    // SAFETY: the window is an `arm,gic-v3-its` DTB node's `reg`, at least 128 KiB, now
    // mapped as device memory at `va`; the kernel's ITS module makes the only handle.
    Ok(unsafe { drivers::irqchip::its::regs::ItsMmio::new(va) })
}

/// An edu device's BAR0 registers, mapped (memory decode must be on).
pub fn edu(bar0: Mmio) -> Result<drivers::edu::EduMmio, MapFailed> {
    let va = map_mmio(bar0)?;
    // SAFETY: BAR0 was assigned inside the host bridge's window by the PCI layer, which
    // enabled memory decode and hands each claimed function to one driver only; it is
    // mapped at `va`.
    Ok(unsafe { drivers::edu::EduMmio::new(va) })
}

/// A function's MSI-X table and PBA (inside its BARs, already assigned), mapped.
pub fn msix_table(
    table: Mmio,
    pba: Mmio,
    entries: u16,
) -> Result<drivers::pci::msi::MsixTable, MapFailed> {
    let t = map_mmio(table)?;
    let p = map_mmio(pba)?;
    // SAFETY: both windows lie inside BARs the PCI layer assigned to the claimed function,
    // now mapped as device memory at `t` and `p`; only the kernel's MSI-X code writes
    // the table.
    Ok(unsafe { drivers::pci::msi::MsixTable::new(t, p, entries) })
}

/// A virtio structure's window (inside an assigned BAR of a claimed function), mapped.
pub fn virtio_window(region: Mmio) -> Result<drivers::virtio::regs::MmioWindow, MapFailed> {
    let va = map_mmio(region)?;
    // SAFETY: the region lies inside a BAR the PCI layer assigned to the claimed virtio
    // function (checked by `VirtioPciCaps::locate`), now mapped as device memory at `va`;
    // only this function's driver uses it.
    Ok(unsafe { drivers::virtio::regs::MmioWindow::new(va, region.len) })
}

/// One device register outside any driver's register block, mapped as device memory for
/// good: what `pci::handoff` reads (and writes) to stop a device and learn that it stopped
/// (xHCI's CAPLENGTH, USBCMD and USBSTS; virtio's `device_status`). Made only by
/// [`register`], which checked it lies inside its window.
#[derive(Debug, Clone, Copy)]
pub struct Register {
    va: usize,
}

/// The register of `width` bytes (1 or 4) at `offset` in `window`; `MapFailed` if it does
/// not fit the window or the window cannot be mapped.
pub fn register(window: Mmio, offset: usize, width: usize) -> Result<Register, MapFailed> {
    let aligned = matches!(width, 1 | 4) && offset.is_multiple_of(width);
    if !aligned || offset.checked_add(width).is_none_or(|end| end > window.len) {
        return Err(MapFailed {
            start: window.base,
            end: window.base + window.len,
        });
    }
    Ok(Register {
        va: map_mmio(window)? + offset,
    })
}

impl Register {
    /// Reads it as a byte.
    pub fn read8(self) -> u8 {
        // SAFETY: `register` checked the byte lies inside a window it mapped as device
        // memory for good; volatile, as a device register.
        unsafe { core::ptr::with_exposed_provenance::<u8>(self.va).read_volatile() }
    }

    /// Writes it as a byte.
    pub fn write8(self, v: u8) {
        // SAFETY: as in `read8`.
        unsafe { core::ptr::with_exposed_provenance_mut::<u8>(self.va).write_volatile(v) }
    }

    /// Reads it as a 32-bit word (made with width 4: aligned and inside the window).
    pub fn read32(self) -> u32 {
        // SAFETY: as in `read8`; `register` checked 4-byte alignment and extent for width 4.
        unsafe { core::ptr::with_exposed_provenance::<u32>(self.va).read_volatile() }
    }

    /// Writes it as a 32-bit word.
    pub fn write32(self, v: u32) {
        // SAFETY: as in `read32`.
        unsafe { core::ptr::with_exposed_provenance_mut::<u32>(self.va).write_volatile(v) }
    }
}
