//! User-mode drivers: the objects behind `Device`, `IrqLine` and `DmaRegion` capabilities,
//! and the teardown of what a driver held (the calls are in `devcalls`).
//!
//! A process holding a `Device` capability ([`UserDevice`], over a `pci::handoff::Handoff`)
//! maps the device's register pages, allocates DMA memory below the reach it states, switches
//! bus mastering and takes interrupt lines. Each line ([`UserLine`]) is a kernel
//! `caps::irq` line whose owner token posts one bit of the process's notification word; the
//! kernel runs the same type states for it as for its own drivers (ABI "User interrupt
//! states"), so a user line is never re-armed without the kernel reading that the device's
//! MSI delivery is on. Each DMA region ([`UserDma`]) owns its frames; they go back only
//! through `Handoff::retire_dma` (freed once the device reads stopped, else held).
//!
//! When the process ends, [`teardown`] takes its capabilities apart in ABI.md's order:
//! lines masked → devices stopped (bus mastering off and read back, DMA engine idle) →
//! address space dropped (MMIO and DMA unmapped, TLB invalidated by ASID) → DMA freed or
//! held → MSI-X entries zeroed and masked, vectors returned → devices returned.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use abi::Error;
use abi::dev::{LINE_ARMED, LINE_DRAINING, LINE_FIRED, LINE_MASKED};
use caps::dma::DmaBuffer;
use caps::irq::{AnyIrqLine, LineStatus};
use caps::quiet::{QuietCheck, Seal, quiesce};

use super::decode::IrqOp;
use super::memory::Memory;
use crate::arch::dma::FrameBuffer;
use crate::irq as kirq;
use crate::pci::handoff::{Handoff, Source};
use crate::sync::IrqLock;

/// A device a process holds.
pub struct UserDevice {
    /// The kernel's half.
    pub handoff: Arc<Handoff>,
    /// `mmio_map` windows in the holder's address space.
    pub(super) windows: IrqLock<Vec<usize>>,
    /// Live DMA regions.
    pub(super) regions: AtomicUsize,
}

impl UserDevice {
    /// A device capability's object over `handoff`.
    pub fn new(handoff: Arc<Handoff>) -> Arc<UserDevice> {
        Arc::new(UserDevice {
            handoff,
            windows: IrqLock::new(Vec::new()),
            regions: AtomicUsize::new(0),
        })
    }

    /// Whether nothing hangs off it (no line, region or window): only then may it move.
    pub fn is_bare(self: &Arc<Self>) -> bool {
        Arc::strong_count(self) == 1 && self.windows.lock().is_empty()
    }
}

impl core::fmt::Debug for UserDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "UserDevice({})", self.handoff.bdf())
    }
}

/// An interrupt line a process holds.
pub struct UserLine {
    dev: Arc<UserDevice>,
    source: Source,
    line: IrqLock<Option<AnyIrqLine>>,
    intid: u32,
    base: u64,
    /// The notification bit it posts.
    pub bit: u8,
}

impl UserLine {
    /// A fresh line of `dev` from `source`, masked, posting notification bit `bit`.
    pub fn new(
        dev: Arc<UserDevice>,
        source: Source,
        line: caps::irq::IrqLine<caps::irq::Masked>,
        bit: u8,
    ) -> UserLine {
        let intid = line.intid();
        let base = kirq::count(intid);
        dev.handoff.note_line(intid, base);
        UserLine {
            dev,
            source,
            line: IrqLock::new(Some(AnyIrqLine::Masked(line))),
            intid,
            base,
            bit,
        }
    }

    /// `irq_arm`, `irq_rearm`, `irq_mask`: a wrong state is `EBADSTATE` with nothing
    /// changed. `irq_rearm` mints its proof from `MsiDelivery`, a read of the device.
    pub fn apply(&self, op: IrqOp) -> Result<(), Error> {
        let mut slot = self.line.lock();
        let Some(current) = slot.take() else {
            return Err(Error::EBADSTATE);
        };
        let (next, result) = match (op, current) {
            (IrqOp::Arm, AnyIrqLine::Masked(m)) => (AnyIrqLine::Armed(m.arm()), Ok(())),
            (IrqOp::Mask, any) => (any.mask(), Ok(())),
            (IrqOp::Rearm, AnyIrqLine::Draining(d)) => {
                let check = MsiDelivery {
                    handoff: &self.dev.handoff,
                    source: self.source,
                };
                match quiesce(d, &check) {
                    Ok((proof, d)) => (AnyIrqLine::Armed(d.rearm(proof)), Ok(())),
                    // The device cannot signal (bus mastering or MSI off): stays draining.
                    Err(d) => (AnyIrqLine::Draining(d), Err(Error::EBADSTATE)),
                }
            }
            (_, other) => (other, Err(Error::EBADSTATE)),
        };
        *slot = Some(next);
        result
    }

    /// One step of `irq_wait`: an armed line that fired becomes `Draining` and gives its
    /// first-fire time and fires so far; `None` while it has not fired; `EBADSTATE` unless
    /// armed.
    pub fn take_fired(&self) -> Result<Option<(u64, u64)>, Error> {
        let mut slot = self.line.lock();
        match slot.take() {
            Some(AnyIrqLine::Armed(armed)) => match armed.try_take() {
                Ok(draining) => {
                    let at = draining.fired_at();
                    *slot = Some(AnyIrqLine::Draining(draining));
                    Ok(Some((at, self.fires())))
                }
                Err(armed) => {
                    *slot = Some(AnyIrqLine::Armed(armed));
                    Ok(None)
                }
            },
            other => {
                *slot = other;
                Err(Error::EBADSTATE)
            }
        }
    }

    /// `cap_info`'s state word.
    pub fn state(&self) -> u64 {
        match self.line.lock().as_ref() {
            Some(AnyIrqLine::Masked(_)) | None => LINE_MASKED,
            Some(AnyIrqLine::Armed(l)) if l.status() == LineStatus::Fired => LINE_FIRED,
            Some(AnyIrqLine::Armed(_)) => LINE_ARMED,
            Some(AnyIrqLine::Draining(_)) => LINE_DRAINING,
        }
    }

    /// Interrupts delivered on it so far.
    pub fn fires(&self) -> u64 {
        kirq::count(self.intid) - self.base
    }

    /// Teardown step 2: masked at the GIC (the object stays until step 6).
    fn mask(&self) {
        let mut line = self.line.lock();
        if let Some(l) = line.take() {
            *line = Some(l.mask());
        }
    }
}

impl Drop for UserLine {
    fn drop(&mut self) {
        let line = self.line.get_mut().take().map(AnyIrqLine::mask);
        self.dev.handoff.note_interrupts(self.intid, self.fires());
        self.dev.handoff.release_source(self.source);
        drop(line); // the vector returns after the device can no longer signal it
    }
}

impl core::fmt::Debug for UserLine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "UserLine(INTID {}, bit {})", self.intid, self.bit)
    }
}

/// The kernel's quiet check for a user line: the device's MSI delivery reads on (bus
/// mastering on, MSI or MSI-X enabled and unmasked at the function), read from its
/// configuration space.
struct MsiDelivery<'a> {
    handoff: &'a Handoff,
    source: Source,
}

// SAFETY: a user line is an MSI or MSI-X vector, an edge source. `is_quiet` reads the
// function's configuration space after `enable` (nothing to re-enable: the driver serviced
// its device): with bus mastering and MSI delivery on, every later event sends a fresh
// message, which the GIC latches while the line is masked, so no work is lost by unmasking.
// Whether the device's own work is done is the driver's business, checked on its side by
// the user runtime's `Quiesced` (docs/user-drivers.md).
#[allow(unsafe_code, reason = "implements the unsafe QuietCheck contract")]
unsafe impl QuietCheck for MsiDelivery<'_> {
    fn is_quiet(&self, _: &Seal) -> bool {
        self.handoff.msi_delivery_on(self.source)
    }
}

/// A DMA region a process holds.
pub struct UserDma {
    dev: Arc<UserDevice>,
    buf: Option<FrameBuffer>,
    /// Where it is mapped in the holder.
    pub va: usize,
    dir: u32,
}

impl UserDma {
    /// A region of `dev` over `buf`, mapped at `va` (counted against the device's limit by
    /// the caller, released on drop).
    pub fn new(dev: Arc<UserDevice>, buf: FrameBuffer, va: usize, dir: u32) -> UserDma {
        UserDma {
            dev,
            buf: Some(buf),
            va,
            dir,
        }
    }

    /// Bus address, bytes, direction (`/proc/<pid>/caps`, `/proc/dma`).
    pub fn describe(&self) -> (u64, usize, u32) {
        self.buf
            .as_ref()
            .map_or((0, 0, self.dir), |b| (b.paddr(), b.len(), self.dir))
    }
}

impl Drop for UserDma {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.dev.handoff.retire_dma(buf);
        }
        self.dev.regions.fetch_sub(1, Ordering::Relaxed);
    }
}

impl core::fmt::Debug for UserDma {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "UserDma({:#x})", self.va)
    }
}

/// Takes apart what a dying process held, in ABI.md's order (see the module comment):
/// its `lines`, DMA `regions` and `devices` (with the rights they were held with) from its
/// capability table, and `memory`, its address space (no CPU runs it any more). Returns
/// its devices, stopped and bare, for the caller to give back or drop.
pub fn teardown<R>(
    lines: Vec<Arc<UserLine>>,
    regions: Vec<Arc<UserDma>>,
    devices: Vec<(Arc<UserDevice>, R)>,
    memory: Option<Memory>,
) -> Vec<(Arc<UserDevice>, R)> {
    // 2. Every line masked at the GIC.
    for l in &lines {
        l.mask();
    }
    // 3. Devices stopped: bus mastering off and read back, DMA engines read idle. Every
    // device the process touched, held directly or through a line or region.
    let mut touched: Vec<Arc<UserDevice>> = Vec::new();
    let all = devices
        .iter()
        .map(|(d, _)| d)
        .chain(lines.iter().map(|l| &l.dev))
        .chain(regions.iter().map(|r| &r.dev));
    for dev in all {
        if !touched.iter().any(|d| Arc::ptr_eq(d, dev)) {
            touched.push(dev.clone());
        }
    }
    for d in &touched {
        d.handoff.stop();
    }
    // 4. MMIO and DMA unmapped with the address space; its ASID's TLB entries go with it.
    drop(memory);
    for d in &touched {
        d.windows.lock().clear();
    }
    drop(touched);
    // 5. DMA memory freed (the devices read stopped) or held; 6. lines: MSI-X entries zeroed
    // and masked, MSI off, vectors returned; 7. the devices, bare now, back to the caller.
    drop(regions);
    drop(lines);
    devices
}

/// Whether a region's direction lets the device read it (for `/proc/dma`).
pub fn dir_name(dir: u32) -> &'static str {
    match dir {
        abi::dev::DMA_TO_DEVICE => "to-device",
        abi::dev::DMA_BIDIRECTIONAL => "bidirectional",
        _ => "from-device",
    }
}

/// A `NetIf` capability's object: a driver's attachment to a kernel network interface and
/// where its frame area is mapped in the driver. Dropped only after that mapping is gone
/// (`cap_drop` unmaps first; a dying process's address space goes before its capabilities),
/// so the area's frames are never freed while the driver can reach them.
#[derive(Debug)]
pub struct UserNetif {
    /// The interface and the area.
    pub attachment: crate::net::stack::netif::Attachment,
    /// The area's address in the holder.
    pub va: usize,
}
