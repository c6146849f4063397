//! Where MMIO windows become driver objects: map as device memory, then construct.
//!
//! Driver constructors are `unsafe` because they trust the base address; this
//! module is the one place that vouches for it — the window came from the DTB and
//! was just mapped nGnRE — so the rest of the kernel stays safe code.

use caps::irq::IrqChip;
use drivers::irqchip::InterruptController;
use drivers::uart::pl011::Pl011;

use super::mmu::{self, Kind, MapFailed};
use crate::platform::Mmio;

/// Maps `mmio` (physical) as device memory (page-rounded); returns the virtual address
/// of `mmio.base`.
pub fn map_mmio(mmio: Mmio) -> Result<usize, MapFailed> {
    let start = mmio.base & !0xfff;
    let end = (mmio.base + mmio.len.max(1)).div_ceil(4096) * 4096;
    mmu::map(start, end, Kind::Device)?;
    Ok(mmu::phys_to_virt(mmio.base))
}

/// A PL011 at `mmio`, mapped first; also returns its virtual address.
pub fn pl011(mmio: Mmio) -> Result<(Pl011, usize), MapFailed> {
    let va = map_mmio(mmio)?;
    // SAFETY: the window comes from the DTB's `arm,pl011` node and is now mapped as
    // device memory at `va`; the console owns the only long-lived handle.
    Ok((unsafe { Pl011::new(va) }, va))
}

/// A PL011 handle for emergency output (fatal traps, panics, a missing DTB), used
/// without taking the console lock.
pub fn pl011_emergency(va: usize) -> Pl011 {
    // SAFETY: `va` is where the console UART is mapped (the console or `early_fail` mapped
    // it); emergency output only writes the data register, and interleaving with the
    // normal console at worst garbles characters.
    unsafe { Pl011::new(va) }
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
) -> Result<(&'static dyn InterruptController, &'static dyn IrqChip), MapFailed> {
    use crate::platform::Gic;
    use alloc::boxed::Box;
    use drivers::irqchip::{GicV2, GicV3};
    match gic {
        Gic::V2 { gicd, gicc, .. } => {
            let d = map_mmio(*gicd)?;
            let c = map_mmio(*gicc)?;
            // SAFETY: both windows come from the DTB's GIC node and are mapped as device
            // memory at `d` and `c`; the kernel creates exactly one controller object.
            let chip: &'static GicV2 = Box::leak(Box::new(unsafe { GicV2::new(d, c) }));
            Ok((chip, chip))
        }
        Gic::V3 { gicd, gicr, .. } => {
            let d = map_mmio(*gicd)?;
            let r = map_mmio(*gicr)?;
            // SAFETY: as above, for the distributor and the redistributor region.
            let chip: &'static GicV3 = Box::leak(Box::new(unsafe { GicV3::new(d, r, gicr.len) }));
            GICV3.call_once(|| chip);
            Ok((chip, chip))
        }
    }
}

/// The PCI host bridge's ECAM window for buses `bus_start..=bus_end`, mapped.
pub fn ecam(
    base: u64,
    bus_start: u8,
    bus_end: u8,
) -> Result<drivers::pci::config::Ecam, MapFailed> {
    let len = (usize::from(bus_end - bus_start) + 1) << 20;
    let va = map_mmio(Mmio {
        base: base as usize,
        len,
    })?;
    // SAFETY: the window is the DTB's ECAM `reg` for exactly these buses, now mapped as
    // device memory for good at `va`; the kernel's PCI layer makes the only `Ecam`.
    Ok(unsafe { drivers::pci::config::Ecam::new(va, bus_start, bus_end) })
}

/// A GICv2m MSI frame, mapped.
pub fn v2m(frame: Mmio) -> Result<drivers::irqchip::v2m::V2m, MapFailed> {
    let va = map_mmio(frame)?;
    // SAFETY: the frame comes from an `arm,gic-v2m-frame` DTB node and is now mapped as
    // device memory at `va`; the PCI layer makes the only handle.
    Ok(unsafe { drivers::irqchip::v2m::V2m::new(va) })
}

/// A GICv3 ITS's register frames (control + translation, 128 KiB), mapped.
pub fn its(frame: Mmio) -> Result<drivers::irqchip::its::regs::ItsMmio, MapFailed> {
    if frame.len < 0x2_0000 {
        return Err(MapFailed {
            start: frame.base,
            end: frame.base + frame.len,
        });
    }
    let va = map_mmio(frame)?;
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
