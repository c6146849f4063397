//! The GICv3 ITS as the kernel's MSI controller: LPI vectors and DeviceIDs.
//!
//! On a GICv3 with an ITS (QEMU `virt,gic-version=3`), MSIs are LPIs: a PCI
//! function writes an EventID to `GITS_TRANSLATER` and the ITS translates
//! (DeviceID = its requester ID, EventID) to an LPI. This module makes the ITS
//! at boot (tables, command queue, LPIs on the boot CPU's redistributor), gives
//! the PCI layer an LPI `VectorAllocator` (data = EventID = the LPI's offset
//! from 8192) and the LPI `IrqControl`, maps a vector to the DeviceID the PCI
//! layer names when it programs it (MAPD once per DeviceID, MAPTI per vector), and
//! DISCARDs the event when the vector is freed. It knows nothing of PCI itself
//! (the PCI layer computes DeviceIDs), so the dependency runs one way: pci → its.
//! See docs/interrupts.md.

use caps::msi::VectorAllocator;
use drivers::irqchip::its::regs::ItsMmio;
use drivers::irqchip::its::{Its, ItsConfig, ItsError};

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
    // GITS_TYPER must answer (devices::its reads it): firmware tables can name an ITS
    // that is not there (QEMU 7.2's ACPI does with its=off).
    let regs = match devices::its(frame) {
        Ok(r) => r,
        Err(devices::DeviceError::Absent(_)) => {
            ABSENT.store(true, core::sync::atomic::Ordering::Relaxed);
            return log::warn!(
                "the firmware describes an ITS at {:#x}, but it does not answer: no ITS, \
                 MSIs need a v2m frame",
                frame.base
            );
        }
        Err(e) => return log::warn!("cannot map the ITS at {:#x}: {e}", frame.base),
    };
    let config = ItsConfig {
        lpis: irq::LPIS as u32,
        device_ids: DEVICE_IDS,
        poll_limit: POLL_LIMIT,
    };
    let its = match Its::new(regs, &dma::HAL, v3, config) {
        Ok(i) => ITS.call_once(|| i),
        Err(e) => return log::warn!("GICv3 ITS at {:#x} unusable: {e}", frame.base),
    };
    irq::init_lpis(its);
    match irq::msi_vectors(its.msi_range(frame.base as u64)) {
        Ok(v) => {
            VECTORS.call_once(|| v.with_release_hook(release));
            DOORBELL.call_once(|| KernelIts::doorbell_address(frame.base as u64));
        }
        Err(e) => return log::warn!("ITS: its LPIs cannot be handed out: {e}"),
    }
    log::info!(
        "GICv3 ITS at {:#x}: MSIs are LPIs {}..{}",
        frame.base,
        drivers::irqchip::its::FIRST_LPI,
        drivers::irqchip::its::FIRST_LPI + its.lpis()
    );
}

/// Set when the firmware described an ITS that does not answer.
static ABSENT: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether the described ITS turned out not to be there (its registers fault).
pub fn described_but_absent() -> bool {
    ABSENT.load(core::sync::atomic::Ordering::Relaxed)
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

/// Routes LPI `intid` (an allocated vector) from the device with ITS DeviceID `device`
/// (a PCI function's requester ID through the host bridge's `msi-map`, which the PCI layer
/// computes: `pci::its_device_id`): MAPD if new, MAPTI.
pub fn map(device: u32, intid: u32) -> Result<(), ItsError> {
    let its = ITS.get().ok_or(ItsError::NotMapped)?;
    let new = !its.has_device(device);
    its.map_vector(device, intid)?;
    log::debug!(
        "ITS: DeviceID {device:#x} event {} -> LPI {intid} ({}MAPTI)",
        intid - drivers::irqchip::its::FIRST_LPI,
        if new { "MAPD with a new ITT, " } else { "" }
    );
    Ok(())
}

/// The vector release hook: DISCARD the event (nothing to do if it was never mapped).
fn release(intid: u32) {
    let Some(its) = ITS.get() else { return };
    match its.unmap_vector(intid) {
        Ok(()) => log::debug!("ITS: LPI {intid} released (its event discarded)"),
        Err(ItsError::NotMapped) => {}
        Err(e) => log::warn!("ITS: DISCARD of LPI {intid} failed: {e}"),
    }
}
