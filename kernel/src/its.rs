//! The GICv3 ITS as the kernel's MSI controller: LPI vectors and DeviceIDs.
//!
//! On a GICv3 with an ITS (QEMU `virt,gic-version=3`), MSIs are LPIs: a PCI
//! function writes an EventID to `GITS_TRANSLATER` and the ITS translates
//! (DeviceID = its requester ID, EventID) to an LPI. This module makes the ITS
//! at boot (tables, command queue, LPIs on the boot CPU's redistributor), gives
//! the PCI layer an LPI `VectorAllocator` (data = EventID = the LPI's offset
//! from 8192) and the LPI `IrqControl`, maps a vector to its function when the
//! PCI layer programs it (MAPD once per DeviceID, MAPTI per vector), and
//! DISCARDs the event when the vector is freed. See docs/interrupts.md.

use caps::msi::VectorAllocator;
use drivers::irqchip::its::regs::ItsMmio;
use drivers::irqchip::its::{Its, ItsConfig, ItsError};
use drivers::pci::config::Bdf;

use crate::arch::{devices, dma};
use crate::irq;
use crate::platform::Gic;
use crate::sync::ArchIrqs;

/// The kernel's ITS driver type.
pub type KernelIts = Its<ItsMmio, dma::KernelDma, ArchIrqs>;

static ITS: spin::Once<KernelIts> = spin::Once::new();
static VECTORS: spin::Once<VectorAllocator> = spin::Once::new();
static DOORBELL: spin::Once<u64> = spin::Once::new();

/// DeviceIDs the device table covers: every requester ID of a 256-bus segment.
const DEVICE_IDS: u32 = 1 << 16;
/// Polls of `GITS_CREADR` before a command counts as timed out (QEMU completes
/// commands during the `GITS_CWRITER` write; hardware takes microseconds). Bounds
/// the time the interrupt path can spend masking an LPI on a broken ITS.
const POLL_LIMIT: u32 = 100_000;

/// Sets up the first ITS of a GICv3 (boot CPU, after `irq::init`). Logs and leaves
/// the machine without MSIs if anything is unusable.
pub fn init(gic: &Gic) {
    let Gic::V3 { its, .. } = gic else { return };
    let Some(&frame) = its.first() else { return };
    let Some(v3) = devices::gicv3() else { return };
    let regs = match devices::its(frame) {
        Ok(r) => r,
        Err(e) => return log::warn!("cannot map the ITS at {:#x}: {e:?}", frame.base),
    };
    let config = ItsConfig {
        lpis: irq::LPIS as u32,
        device_ids: DEVICE_IDS,
        poll_limit: POLL_LIMIT,
    };
    let its = match Its::new(regs, &dma::HAL, v3, config) {
        Ok(i) => ITS.call_once(|| i),
        Err(e) => return log::warn!("GICv3 ITS at {:#x} unusable: {e:?}", frame.base),
    };
    match its.vector_allocator(frame.base as u64) {
        Ok(v) => {
            VECTORS.call_once(|| v.with_release_hook(release));
            DOORBELL.call_once(|| KernelIts::doorbell_address(frame.base as u64));
        }
        Err(e) => return log::warn!("ITS vector allocator: {e:?}"),
    }
    irq::init_lpis(its);
    log::info!(
        "GICv3 ITS at {:#x}: MSIs are LPIs {}..{}",
        frame.base,
        drivers::irqchip::its::FIRST_LPI,
        drivers::irqchip::its::FIRST_LPI + its.lpis()
    );
}

/// The ITS, if the machine has a usable one.
pub fn get() -> Option<&'static KernelIts> {
    ITS.get()
}

/// The LPI vector allocator, if the machine has a usable ITS.
pub fn vectors() -> Option<&'static VectorAllocator> {
    VECTORS.get()
}

/// The physical address devices write their MSIs to (`GITS_TRANSLATER`).
pub fn doorbell() -> Option<u64> {
    DOORBELL.get().copied()
}

/// The ITS DeviceID of a PCI function: the requester ID its writes carry upstream
/// (its own `bus << 8 | dev << 3 | fn`, or a bridge's that takes them over; see
/// `PciFunction::requester_id`) through the host bridge's `msi-map` (QEMU `virt`:
/// `<0 &its 0 0x10000>`, the identity). `None` if the map gives the function no MSIs.
/// With one ITS the map's controller phandle is not checked. Functions behind one
/// conventional bridge share a DeviceID; the ITS maps each DeviceID once.
pub fn device_id(bdf: Bdf) -> Option<u32> {
    let Some(pci) = crate::pci::bus() else {
        return Some(u32::from(bdf.requester_id()));
    };
    let rid = pci
        .functions
        .iter()
        .find(|f| f.bdf == bdf)
        .map_or(bdf.requester_id(), |f| f.requester_id);
    pci.host.msi_map.device_id(rid).map(|(id, _)| id)
}

/// Routes LPI `intid` (an allocated vector) from `bdf`'s writes: MAPD if new, MAPTI.
pub fn map(bdf: Bdf, intid: u32) -> Result<(), ItsError> {
    let device = device_id(bdf).ok_or(ItsError::OutOfRange)?;
    ITS.get()
        .ok_or(ItsError::NotMapped)?
        .map_vector(device, intid)
}

/// The vector release hook: DISCARD the event (nothing to do if it was never mapped).
fn release(intid: u32) {
    if let Some(its) = ITS.get()
        && let Err(e) = its.unmap_vector(intid)
        && e != ItsError::NotMapped
    {
        log::warn!("ITS: DISCARD of LPI {intid} failed: {e:?}");
    }
}
