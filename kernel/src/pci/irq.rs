//! A PCI device's interrupt: an MSI vector it owns, or a share of an INTx line.
//!
//! MSI lines are exclusive and edge-triggered: the driver holds the `IrqLine`
//! itself and re-arms it with a `Quiesced` proof read from its device (its
//! `QuietCheck`). INTx lines are level-triggered and may be shared, so one
//! dispatcher thread per INTID owns the line: when it fires, the dispatcher reads
//! every sharer's PCI Interrupt Status bit, wakes those that assert, keeps the line
//! masked until each of them reports its device serviced, and re-arms only once no
//! sharer's status bit is set any more (`IntxStatus`, the state INTx is raised on).
//! Driver code never runs in hard-IRQ context either way.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use caps::irq::{AnyIrqLine, Armed, Draining, IrqLine};
use caps::quiet::{QuietCheck, peek, quiesce};
use drivers::irqchip::Trigger;
use drivers::pci::config::{Bdf, Ecam, IntxStatus};
use drivers::pci::msi::{
    InterruptKind, InterruptPlan, MsixCap, MsixTable, PlanRequest, enable_intx,
};

use super::{Device, PciError, bus, msi_vectors};
use crate::arch::devices;
use crate::irq as kirq;
use crate::platform::Mmio;
use crate::sched::{self, NotifyId, TimedOut};
use crate::sync::IrqLock;

/// Sets up to `wanted` interrupt vectors for `dev`: MSI-X (table entries programmed and
/// unmasked, function mask cleared) when the device has it and an MSI controller exists,
/// else one vector or INTx share from [`setup`]. A device with fewer MSI-X entries than
/// wanted gets fewer vectors; the driver folds its sources onto them with
/// `InterruptPlan::vector_for`, so it never fails for lack of vectors.
pub fn setup_vectors(
    dev: &Device,
    wanted: u16,
    name: &'static str,
) -> Result<(InterruptPlan, Vec<DeviceIrq>), PciError> {
    let pci = bus().ok_or(PciError::NotFound)?;
    let msi_ok = msi_vectors().is_some() && !pci.no_msi;
    let req = PlanRequest {
        wanted,
        allow_msix: msi_ok,
        allow_msi: msi_ok,
    };
    let plan = InterruptPlan::choose(&pci.ecam, dev.func, req);
    match plan.kind {
        InterruptKind::MsiX(cap) => Ok((plan, setup_msix(dev, cap, plan.vectors, name)?)),
        _ => Ok((plan.single(), alloc::vec![setup(dev, name)?])),
    }
}

/// One MSI-X vector set up for a device: its line (masked), the notification the IRQ path
/// posts to, and its table entry (programmed, unmasked at the device).
pub struct MsixLine {
    /// The vector's line, still masked at the GIC.
    pub line: IrqLine<caps::irq::Masked>,
    /// Where the IRQ path posts when it fires.
    pub notify: NotifyId,
    /// The table and entry index.
    pub table: Arc<MsixTable>,
    /// Entry index in the table.
    pub entry: u16,
}

/// Programs `count` MSI-X entries of `dev` (function mask held while programming) and
/// mints a line per entry, each posting to a fresh notification or, with `notify`, all to
/// that one. Drivers that run the NAPI protocol on the lines themselves (virtio-net) use
/// this directly; others get `DeviceIrq`s from [`setup_vectors`].
pub fn setup_msix_lines(
    dev: &Device,
    cap: MsixCap,
    count: u16,
    name: &'static str,
    notify: Option<NotifyId>,
) -> Result<Vec<MsixLine>, PciError> {
    let pci = bus().ok_or(PciError::NotFound)?;
    let vectors = msi_vectors().ok_or(PciError::Irq(abi::Error::ENOSPC))?;
    let window = |bar: u8, offset: u32, len: usize| -> Result<Mmio, PciError> {
        let b = dev.bar(usize::from(bar))?;
        if offset as usize + len > b.len {
            return Err(PciError::NoBar);
        }
        Ok(Mmio {
            base: b.base + offset as usize,
            len,
        })
    };
    let entries = usize::from(cap.table_size);
    let table = window(cap.table_bar, cap.table_offset, entries * 16)?;
    let pba = window(cap.pba_bar, cap.pba_offset, entries.div_ceil(64) * 8)?;
    let table =
        Arc::new(devices::msix_table(table, pba, cap.table_size).map_err(|_| PciError::Map)?);
    cap.enable_masked(&pci.ecam, dev.bdf());
    let mut out = Vec::new();
    for entry in 0..count.min(cap.table_size) {
        let (line, notify, message) = msi_line(dev, vectors, name, notify)?;
        let bad = |_| PciError::Irq(abi::Error::EINVAL);
        table.program(entry, message).map_err(bad)?;
        table.unmask(entry).map_err(bad)?;
        log::debug!(
            "PCI: {} MSI-X entry {entry} -> INTID {} (write {:#x} to {:#x}), unmasked",
            dev.bdf(),
            line.intid(),
            message.data,
            message.address
        );
        out.push(MsixLine {
            line,
            notify,
            table: table.clone(),
            entry,
        });
    }
    cap.set_function_mask(&pci.ecam, dev.bdf(), false);
    Ok(out)
}

fn setup_msix(
    dev: &Device,
    cap: MsixCap,
    count: u16,
    name: &'static str,
) -> Result<Vec<DeviceIrq>, PciError> {
    let lines = setup_msix_lines(dev, cap, count, name, None)?;
    Ok(lines
        .into_iter()
        .map(|m| {
            let intid = m.line.intid();
            DeviceIrq::Msi {
                line: Some(AnyIrqLine::Armed(m.line.arm())),
                notify: m.notify,
                intid,
                base: kirq::count(intid),
                msix: Some((m.table, m.entry)),
            }
        })
        .collect())
}

/// One MSI vector, its line (owner: `shared`, else a fresh notification) and the message
/// to program. An LPI vector is mapped at the ITS for `dev`'s DeviceID first.
fn msi_line(
    dev: &Device,
    vectors: &'static caps::msi::VectorAllocator,
    name: &'static str,
    shared: Option<NotifyId>,
) -> Result<(IrqLine<caps::irq::Masked>, NotifyId, caps::msi::MsiMessage), PciError> {
    let vector = vectors.alloc().map_err(PciError::Irq)?;
    let message = vector.message();
    let notify = match shared {
        Some(n) => n,
        None => sched::notify_create().map_err(|_| PciError::Irq(abi::Error::ENOMEM))?,
    };
    let line = kirq::mint_msi(vector, kirq::owner_of(notify), name)
        .map_err(|(_, e)| e)
        .and_then(|line| route_lpi(dev, line));
    match line {
        Ok(line) => {
            log::debug!(
                "PCI: {} ({name}) gets MSI vector INTID {}, line masked",
                dev.bdf(),
                line.intid()
            );
            Ok((line, notify, message))
        }
        Err(e) => {
            if shared.is_none() {
                sched::notify_destroy(notify);
            }
            Err(PciError::Irq(e))
        }
    }
}

/// An LPI (ITS) vector must be translated for `dev` before the device may use it; SPI
/// vectors (GICv2m) need nothing. On failure the line drops, freeing the vector.
pub(super) fn route_lpi(
    dev: &Device,
    line: IrqLine<caps::irq::Masked>,
) -> Result<IrqLine<caps::irq::Masked>, abi::Error> {
    if line.intid() < drivers::irqchip::its::FIRST_LPI {
        return Ok(line);
    }
    let device = super::its_device_id(dev.bdf()).ok_or(abi::Error::ENOENT)?;
    match crate::its::map(device, line.intid()) {
        Ok(()) => Ok(line),
        Err(e) => {
            log::warn!(
                "ITS: cannot map LPI {} for {}: {e}",
                line.intid(),
                dev.bdf()
            );
            Err(abi::Error::ETIMEDOUT)
        }
    }
}

/// How a device interrupts, as set up by [`setup`].
pub enum DeviceIrq {
    /// An MSI vector's line, held by the driver.
    Msi {
        /// The line: `Armed` while waiting, `Draining` while the driver services.
        line: Option<AnyIrqLine>,
        /// Where the IRQ path posts.
        notify: NotifyId,
        /// The SPI the vector raises.
        intid: u32,
        /// The line's delivery count when this device got it (INTIDs are reused).
        base: u64,
        /// For MSI-X: the table and this vector's entry, masked again on drop.
        msix: Option<(Arc<MsixTable>, u16)>,
    },
    /// A share of a level-triggered INTx line.
    Intx(IntxShare),
}

/// Sets up `dev`'s interrupt, preferring MSI (when an MSI controller exists and the
/// boot option `pci=nomsi` is absent), else INTx routed through the DT `interrupt-map`.
pub fn setup(dev: &Device, name: &'static str) -> Result<DeviceIrq, PciError> {
    let pci = bus().ok_or(PciError::NotFound)?;
    let msi_ok = msi_vectors().is_some() && !pci.no_msi;
    let req = PlanRequest {
        wanted: 1,
        allow_msix: false,
        allow_msi: msi_ok,
    };
    let plan = InterruptPlan::choose(&pci.ecam, dev.func, req);
    match plan.kind {
        InterruptKind::Msi(cap) => {
            let vectors = msi_vectors().ok_or(PciError::Irq(abi::Error::ENOSPC))?;
            let (line, notify, message) = msi_line(dev, vectors, name, None)?;
            let intid = line.intid();
            let base = kirq::count(intid);
            cap.enable(&pci.ecam, dev.bdf(), message, 1)
                .map_err(|_| PciError::Irq(abi::Error::EINVAL))?;
            log::debug!(
                "PCI: {} MSI on -> INTID {intid} (write {:#x} to {:#x}), line armed",
                dev.bdf(),
                message.data,
                message.address
            );
            let line = Some(AnyIrqLine::Armed(line.arm()));
            Ok(DeviceIrq::Msi {
                line,
                notify,
                intid,
                base,
                msix: None,
            })
        }
        InterruptKind::Intx { .. } => {
            let (root, pin) = dev
                .func
                .intx_root
                .ok_or(PciError::Irq(abi::Error::ENOENT))?;
            let (intid, trigger) = pci
                .host
                .intx
                .route(root, pin)
                .ok_or(PciError::Irq(abi::Error::ENOENT))?;
            enable_intx(&pci.ecam, dev.bdf());
            log::debug!(
                "PCI: {} ({name}) INTx -> INTID {intid} ({trigger}), a shared line",
                dev.bdf()
            );
            IntxShare::join(intid, trigger, name, dev.bdf()).map(DeviceIrq::Intx)
        }
        InterruptKind::MsiX(_) | InterruptKind::None => Err(PciError::Irq(abi::Error::ENOSYS)),
    }
}

impl DeviceIrq {
    /// Blocks until this device's interrupt was delivered (its line is then masked).
    pub fn wait(&mut self, deadline_ns: u64) -> Result<(), TimedOut> {
        match self {
            DeviceIrq::Msi { line, notify, .. } => loop {
                if let Some(AnyIrqLine::Draining(_)) = line {
                    return Ok(()); // already taken and not yet re-armed
                }
                if let Some(AnyIrqLine::Armed(armed)) = line.take() {
                    match armed.try_take() {
                        Ok(draining) => {
                            *line = Some(AnyIrqLine::Draining(draining));
                            return Ok(());
                        }
                        Err(armed) => *line = Some(AnyIrqLine::Armed(armed)),
                    }
                }
                sched::notify_wait(*notify, deadline_ns)?;
            },
            DeviceIrq::Intx(share) => share.wait(deadline_ns),
        }
    }

    /// The driver serviced its device: re-arm once `check` (the device's own quiet check,
    /// e.g. its interrupt status register) reads quiet. Returns false (line stays masked,
    /// call again after servicing more) otherwise. A shared INTx line is re-armed by its
    /// dispatcher, from every sharer's PCI Interrupt Status.
    pub fn done<C: QuietCheck + ?Sized>(&mut self, check: &C) -> bool {
        match self {
            DeviceIrq::Msi { line, .. } => match line.take() {
                Some(AnyIrqLine::Draining(draining)) => match quiesce(draining, check) {
                    Ok((proof, l)) => {
                        *line = Some(AnyIrqLine::Armed(l.rearm(proof)));
                        true
                    }
                    Err(l) => {
                        *line = Some(AnyIrqLine::Draining(l));
                        false
                    }
                },
                other => {
                    *line = other;
                    true
                }
            },
            DeviceIrq::Intx(share) => {
                share.done();
                true
            }
        }
    }

    /// The INTID this device's interrupts arrive on.
    pub fn intid(&self) -> u32 {
        match self {
            DeviceIrq::Msi { intid, .. } => *intid,
            DeviceIrq::Intx(share) => share.line.intid,
        }
    }

    /// Interrupts delivered to this device's owner: the MSI line's count, or the number
    /// of times the shared-line dispatcher found this device asserting.
    pub fn deliveries(&self) -> u64 {
        match self {
            DeviceIrq::Msi { intid, base, .. } => kirq::count(*intid) - *base,
            DeviceIrq::Intx(share) => share.me.count.load(Ordering::Relaxed),
        }
    }

    /// For MSI-X vectors: the table and entry index.
    pub fn msix_entry(&self) -> Option<(&Arc<MsixTable>, u16)> {
        match self {
            DeviceIrq::Msi {
                msix: Some((table, entry)),
                ..
            } => Some((table, *entry)),
            _ => None,
        }
    }

    /// Whether this is an MSI vector (else INTx).
    pub fn is_msi(&self) -> bool {
        matches!(self, DeviceIrq::Msi { .. })
    }
}

impl Drop for DeviceIrq {
    fn drop(&mut self) {
        if let DeviceIrq::Msi {
            line,
            notify,
            msix,
            intid,
            ..
        } = self
        {
            if let Some((table, entry)) = msix.take() {
                let _ = table.mask(entry); // the device may no longer signal this vector
            }
            drop(line.take()); // masks and frees the vector
            sched::notify_destroy(*notify);
            log::debug!("PCI: MSI vector INTID {intid} masked and released");
        }
    }
}

const FIRED: u64 = 1;
/// Posted to the dispatcher when its last sharer left: drop the line and exit.
const RETIRE: u64 = 1 << 63;
/// Consecutive fires with no sharer asserting before the line is left masked.
const MAX_UNCLAIMED: u32 = 100;

struct Sharer {
    notify: NotifyId,
    bit: u64,
    /// The function's Interrupt Status bit: whether it asserts the line.
    status: IntxStatus<'static, Ecam>,
    count: AtomicU64,
}

/// One level-triggered INTx line and the devices sharing it.
struct SharedLine {
    intid: u32,
    dispatcher: NotifyId,
    sharers: IrqLock<Vec<Arc<Sharer>>>,
    /// Set by the dispatcher once it has dropped the line (the INTID is free again).
    gone: core::sync::atomic::AtomicBool,
}

static SHARED: IrqLock<Vec<Arc<SharedLine>>> = IrqLock::new(Vec::new());

/// A device's membership of a shared INTx line.
pub struct IntxShare {
    line: Arc<SharedLine>,
    me: Arc<Sharer>,
}

impl IntxShare {
    fn join(intid: u32, trigger: Trigger, name: &'static str, bdf: Bdf) -> Result<Self, PciError> {
        let config = &bus().ok_or(PciError::NotFound)?.ecam;
        let line = shared_line(intid, trigger, name)?;
        let notify = sched::notify_create().map_err(|_| PciError::Irq(abi::Error::ENOMEM))?;
        let mut sharers = line.sharers.lock();
        let bit = (1..63)
            .map(|b| 1u64 << b)
            .find(|b| sharers.iter().all(|s| s.bit != *b));
        let bit = bit.ok_or(PciError::Irq(abi::Error::ENOSPC))?;
        let me = Arc::new(Sharer {
            notify,
            bit,
            status: IntxStatus { config, bdf },
            count: AtomicU64::new(0),
        });
        sharers.push(me.clone());
        drop(sharers);
        Ok(IntxShare { line, me })
    }

    fn wait(&self, deadline_ns: u64) -> Result<(), TimedOut> {
        sched::notify_wait(self.me.notify, deadline_ns).map(|_| ())
    }

    fn done(&self) {
        let _ = sched::notify_post(self.line.dispatcher, self.me.bit);
    }
}

impl Drop for IntxShare {
    fn drop(&mut self) {
        // The registry lock orders this against a device joining the same line.
        let mut all = SHARED.lock();
        let mut sharers = self.line.sharers.lock();
        sharers.retain(|s| !Arc::ptr_eq(s, &self.me));
        let last = sharers.is_empty();
        drop(sharers);
        if last {
            all.retain(|l| !Arc::ptr_eq(l, &self.line));
        }
        drop(all);
        // A dispatcher waiting for this sharer's report must not wait forever; the last
        // sharer also retires the line, so the INTID can be minted again (by a new share
        // or a driver that owns the line outright).
        let bits = self.me.bit | if last { RETIRE } else { 0 };
        let _ = sched::notify_post(self.line.dispatcher, bits);
        sched::notify_destroy(self.me.notify);
        if last {
            for _ in 0..10_000 {
                if self.line.gone.load(Ordering::Acquire) {
                    break;
                }
                sched::yield_now();
            }
        }
    }
}

/// The shared line for `intid`, creating its dispatcher thread on first use.
fn shared_line(
    intid: u32,
    trigger: Trigger,
    name: &'static str,
) -> Result<Arc<SharedLine>, PciError> {
    let mut all = SHARED.lock();
    if let Some(l) = all.iter().find(|l| l.intid == intid) {
        return Ok(l.clone());
    }
    let dispatcher = sched::notify_create().map_err(|_| PciError::Irq(abi::Error::ENOMEM))?;
    let irq_line =
        kirq::mint(intid, trigger, kirq::owner_of(dispatcher), name).map_err(PciError::Irq)?;
    let line = Arc::new(SharedLine {
        intid,
        dispatcher,
        sharers: IrqLock::new(Vec::new()),
        gone: core::sync::atomic::AtomicBool::new(false),
    });
    all.push(line.clone());
    drop(all);
    let worker = line.clone();
    log::debug!("INTx {intid} ({trigger}): dispatcher started, line armed");
    sched::spawn("intx", move || dispatch(worker, irq_line.arm()))
        .map_err(|_| PciError::Irq(abi::Error::ENOMEM))?;
    Ok(line)
}

/// The shared line's owner: wakes asserting sharers and re-arms when all are quiet.
fn dispatch(shared: Arc<SharedLine>, mut line: IrqLine<Armed>) {
    let mut unclaimed = 0u32;
    loop {
        let Ok(bits) = sched::notify_wait(shared.dispatcher, u64::MAX) else {
            continue;
        };
        if bits & RETIRE != 0 && shared.sharers.lock().is_empty() {
            drop(line); // masks the INTID and frees it
            log::debug!(
                "INTx {}: last sharer left; line masked and released",
                shared.intid
            );
            sched::notify_destroy(shared.dispatcher);
            shared.gone.store(true, Ordering::Release);
            return;
        }
        line = match line.try_take() {
            Ok(draining) => match service(&shared, draining, &mut unclaimed) {
                Some(armed) => armed,
                None => return, // nobody claims a line that keeps asserting: leave it masked
            },
            Err(armed) => armed, // a sharer's late "done" bit, not an interrupt
        };
    }
}

fn service(
    shared: &SharedLine,
    mut line: IrqLine<Draining>,
    unclaimed: &mut u32,
) -> Option<IrqLine<Armed>> {
    loop {
        let sharers = shared.sharers.lock().clone();
        let mut outstanding = 0u64;
        for s in sharers.iter().filter(|s| !peek(&s.status)) {
            s.count.fetch_add(1, Ordering::Relaxed);
            outstanding |= s.bit;
            let _ = sched::notify_post(s.notify, 1);
        }
        if outstanding == 0 {
            *unclaimed += 1;
            if *unclaimed >= MAX_UNCLAIMED {
                log::warn!(
                    "INTx {}: asserted with no sharer claiming it; left masked",
                    shared.intid
                );
                return None;
            }
        } else {
            *unclaimed = 0;
        }
        // The line stays masked while any sharer is still servicing its device.
        while outstanding != 0 {
            if let Ok(bits) = sched::notify_wait(shared.dispatcher, u64::MAX) {
                outstanding &= !(bits & !FIRED);
                if bits & RETIRE != 0 {
                    // Handled once the round ends (the leaving sharer's bit came with it).
                    let _ = sched::notify_post(shared.dispatcher, RETIRE);
                }
            }
        }
        let status: Vec<IntxStatus<'static, Ecam>> =
            shared.sharers.lock().iter().map(|s| s.status).collect();
        match quiesce(line, &status[..]) {
            Ok((proof, l)) => return Some(l.rearm(proof)),
            Err(l) => line = l,
        }
    }
}
