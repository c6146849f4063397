//! User-mode drivers: the device calls (group 0x60) and the teardown of what a driver held.
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

use abi::dev::{
    DMA_BIDIRECTIONAL, DMA_TO_DEVICE, LINE_ARMED, LINE_DRAINING, LINE_FIRED, LINE_MASKED, MAX_DMA,
    MAX_DMA_REGIONS, MAX_WINDOWS,
};
use abi::{CapType, Error, Handle, Rights};
use caps::dma::{DmaBuffer, DmaHal};
use caps::irq::{AnyIrqLine, LineStatus};
use caps::quiet::{QuietCheck, Seal, quiesce};

use super::decode::IrqOp;
use super::file::Object;
use super::memory::{Memory, RegionKind};
use super::table::{self, Process};
use super::user::UserSlice;
use crate::arch::dma::{FrameBuffer, HAL};
use crate::arch::usercopy::copy_to_user;
use crate::arch::uspace::UserAccess;
use crate::irq as kirq;
use crate::mem::frames::FRAME;
use crate::pci::handoff::{Handoff, Source};
use crate::sync::IrqLock;

/// Results of a handler: `x1`-`x3`.
type Ret = Result<[u64; 3], Error>;

/// A device a process holds.
pub struct UserDevice {
    /// The kernel's half.
    pub handoff: Arc<Handoff>,
    /// `mmio_map` windows in the holder's address space.
    windows: IrqLock<Vec<usize>>,
    /// Live DMA regions.
    regions: AtomicUsize,
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
    bit: u8,
}

impl UserLine {
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
        self.dev.handoff.note_interrupts(self.fires());
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

fn device(p: &Process, h: Handle, need: Rights) -> Result<Arc<UserDevice>, Error> {
    table::with_caps(p, |caps| match caps.get(h, CapType::Device, need)? {
        Object::Device(d) => Ok(d.clone()),
        _ => Err(Error::EWRONGTYPE),
    })
}

fn line(p: &Process, h: Handle) -> Result<Arc<UserLine>, Error> {
    table::with_caps(p, |caps| {
        match caps.get(h, CapType::IrqLine, Rights::IRQ)? {
            Object::IrqLine(l) => Ok(l.clone()),
            _ => Err(Error::EWRONGTYPE),
        }
    })
}

/// `dev_info(dev, buf)`.
pub fn info(p: &Arc<Process>, h: Handle, buf: UserSlice) -> Ret {
    let dev = device(p, h, Rights::INSPECT)?;
    let bytes = dev.handoff.info().to_bytes();
    let range = buf.check(usize::MAX)?;
    if range.len < bytes.len() {
        return Err(Error::EINVAL);
    }
    copy_to_user(range.addr, &bytes).map_err(|_| Error::EFAULT)?;
    Ok([0; 3])
}

/// `dev_irq(dev, index, bit)`: a `Masked` line posting `1 << bit` to the caller's word.
pub fn irq(p: &Arc<Process>, h: Handle, index: u16, bit: u8) -> Ret {
    let dev = device(p, h, Rights::IRQ)?;
    let owner = kirq::owner_bit(table::events_word(p), bit);
    let (l, source) = dev.handoff.line(index, owner)?;
    let intid = l.intid();
    let object = Object::IrqLine(Arc::new(UserLine {
        dev,
        source,
        line: IrqLock::new(Some(AnyIrqLine::Masked(l))),
        intid,
        base: kirq::count(intid),
        bit,
    }));
    let rights = Rights::IRQ | Rights::ACK | Rights::INSPECT;
    let h = table::with_caps(p, |caps| caps.insert(object, rights).map_err(|(_, e)| e))?;
    Ok([u64::from(h.raw()), 0, 0])
}

/// `irq_arm`, `irq_rearm`, `irq_mask`: a wrong state is `EBADSTATE` with nothing changed.
pub fn irq_op(p: &Arc<Process>, h: Handle, op: IrqOp) -> Ret {
    let l = line(p, h)?;
    let mut slot = l.line.lock();
    let Some(current) = slot.take() else {
        return Err(Error::EBADSTATE);
    };
    let (next, result) = match (op, current) {
        (IrqOp::Arm, AnyIrqLine::Masked(m)) => (AnyIrqLine::Armed(m.arm()), Ok(())),
        (IrqOp::Mask, any) => (any.mask(), Ok(())),
        (IrqOp::Rearm, AnyIrqLine::Draining(d)) => {
            let check = MsiDelivery {
                handoff: &l.dev.handoff,
                source: l.source,
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
    result.map(|()| [0; 3])
}

/// `irq_wait(h, deadline)`: Armed → Draining once it fired (at once if it already did);
/// returns the first-fire time and the fires so far.
pub fn irq_wait(p: &Arc<Process>, h: Handle, deadline: u64) -> Ret {
    let l = line(p, h)?;
    loop {
        {
            let mut slot = l.line.lock();
            match slot.take() {
                Some(AnyIrqLine::Armed(armed)) => match armed.try_take() {
                    Ok(draining) => {
                        let at = draining.fired_at();
                        *slot = Some(AnyIrqLine::Draining(draining));
                        return Ok([at, l.fires(), 0]);
                    }
                    Err(armed) => *slot = Some(AnyIrqLine::Armed(armed)),
                },
                other => {
                    *slot = other;
                    return Err(Error::EBADSTATE);
                }
            }
        }
        table::notify_wait(p, 1 << l.bit, deadline)?;
    }
}

/// `mmio_map(dev, bar, offset, len)`: device memory, never the MSI-X pages.
pub fn mmio_map(p: &Arc<Process>, h: Handle, bar: u8, offset: u64, len: u64) -> Ret {
    let dev = device(p, h, Rights::MAP)?;
    if dev.windows.lock().len() >= MAX_WINDOWS {
        return Err(Error::ENOSPC);
    }
    let pa = dev.handoff.window(bar, offset, len)?;
    let len = usize::try_from(len).map_err(|_| Error::EINVAL)?;
    let va = table::with_memory(p, |m| {
        m.map_foreign(pa, len, UserAccess::Device, RegionKind::Mmio)
    })?;
    dev.windows.lock().push(va);
    Ok([va as u64, 0, 0])
}

/// `mem_unmap` of an `mmio_map` window (the whole window): unmapped and forgotten by its
/// device, which may then move again. `EINVAL` if `addr` starts no window.
pub fn unmap_window(p: &Arc<Process>, addr: usize, len: usize) -> Result<(), Error> {
    let dev = table::with_caps(p, |caps| {
        for (h, ty, _) in caps.iter() {
            if let Ok(Object::Device(d)) = caps.get(h, ty, Rights::empty())
                && d.windows.lock().contains(&addr)
            {
                return Ok(d.clone());
            }
        }
        Err(Error::EINVAL)
    })?;
    let mapped = table::with_memory(p, |m| {
        let r = m
            .regions()
            .iter()
            .find(|r| r.va == addr && r.kind == RegionKind::Mmio)
            .ok_or(Error::EINVAL)?;
        if r.len != len.next_multiple_of(FRAME) {
            return Err(Error::EINVAL);
        }
        m.unmap_foreign(addr)
    });
    mapped?;
    dev.windows.lock().retain(|&va| va != addr);
    Ok(())
}

/// `dma_alloc(dev, len, dir, mask_bits)`: zeroed memory below `2^mask_bits`, mapped
/// read-write; returns the region's handle, its address and its bus address.
pub fn dma_alloc(p: &Arc<Process>, h: Handle, len: u64, dir: u32, mask_bits: u8) -> Ret {
    let dev = device(p, h, Rights::DMA)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l > 0 && l <= MAX_DMA)
        .ok_or(Error::EINVAL)?
        .next_multiple_of(FRAME);
    let mask = u64::MAX >> (64 - u32::from(mask_bits));
    if dev.regions.fetch_add(1, Ordering::Relaxed) >= MAX_DMA_REGIONS {
        dev.regions.fetch_sub(1, Ordering::Relaxed);
        return Err(Error::ENOSPC);
    }
    let mut region = UserDma {
        dev,
        buf: None,
        va: 0,
        dir,
    };
    let buf = HAL.allocate(len, FRAME, mask)?;
    let pa = buf.paddr();
    region.va = table::with_memory(p, |m| {
        m.map_foreign(pa as usize, len, UserAccess::ReadWrite, RegionKind::Dma)
    })?;
    region.buf = Some(buf);
    let va = region.va;
    let rights = Rights::DMA | Rights::INSPECT;
    let mut back = None;
    let inserted = table::with_caps(p, |caps| {
        caps.insert(Object::DmaRegion(Arc::new(region)), rights)
            .map_err(|(obj, e)| {
                back = Some(obj);
                e
            })
    });
    if let Some(obj) = back {
        drop_mapped(p, obj);
    }
    let h = inserted?;
    Ok([u64::from(h.raw()), va as u64, pa])
}

/// A region that never reached the table: unmapped, then let go.
fn drop_mapped(p: &Process, obj: Object) {
    if let Object::DmaRegion(r) = &obj {
        let va = r.va;
        let _ = table::with_memory(p, |m| m.unmap_foreign(va));
    }
    drop(obj);
}

/// `dev_bus_master(dev, on)`.
pub fn bus_master(p: &Arc<Process>, h: Handle, on: bool) -> Ret {
    let dev = device(p, h, Rights::DMA)?;
    dev.handoff.set_bus_master(on).map(|()| [0; 3])
}

/// `dev_reset(dev)`: bus mastering off and the device read stopped; returns 1 if it was
/// confirmed (the DMA memory held for it is then freed).
pub fn reset(p: &Arc<Process>, h: Handle) -> Ret {
    let dev = device(p, h, Rights::DMA)?;
    Ok([u64::from(dev.handoff.stop()), 0, 0])
}

/// `cap_info`'s state word for an object (lines: `LINE_*`; others 0).
pub fn state_of(obj: &Object) -> u64 {
    match obj {
        Object::IrqLine(l) => l.state(),
        _ => 0,
    }
}

/// `cap_drop` of a device object or region: a region is unmapped before it lets go; a
/// device with lines or regions is `EBUSY`, else its windows are unmapped and it is
/// returned. Other objects just drop.
pub fn drop_cap(p: &Arc<Process>, h: Handle) -> Ret {
    let obj = table::with_caps(p, |caps| {
        let (ty, _) = caps.info(h)?;
        if ty == CapType::Device
            && let Object::Device(d) = caps.get(h, ty, Rights::empty())?
            && Arc::strong_count(d) > 1
        {
            return Err(Error::EBUSY);
        }
        caps.remove(h)
    })?;
    match &obj {
        Object::DmaRegion(r) => {
            let va = r.va;
            table::with_memory(p, |m| m.unmap_foreign(va))?;
        }
        Object::Device(d) => {
            let windows = core::mem::take(&mut *d.windows.lock());
            let _ = table::with_memory(p, |m| {
                windows.iter().try_for_each(|&va| m.unmap_foreign(va))
            });
        }
        _ => {}
    }
    drop(obj);
    Ok([0; 3])
}

/// The rights each device object in `caps` is held with (so a returned device keeps them).
pub fn device_rights(caps: &super::table::Caps) -> Vec<(usize, Rights)> {
    caps.iter()
        .filter(|&(_, ty, _)| ty == CapType::Device)
        .filter_map(|(h, ty, rights)| match caps.get(h, ty, Rights::empty()) {
            Ok(Object::Device(d)) => Some((Arc::as_ptr(d) as usize, rights)),
            _ => None,
        })
        .collect()
}

/// Takes apart what a dying process held, in ABI.md's order (see the module comment).
/// `objects` come from its capability table, `memory` is its address space (no CPU runs it
/// any more). Returns its devices, stopped and bare, with the rights they were held with
/// (from `device_rights`), for the caller to give back or drop.
pub fn teardown(
    objects: Vec<Object>,
    memory: Option<Memory>,
    rights: &[(usize, Rights)],
) -> Vec<(Object, Rights)> {
    // 2. Every line masked at the GIC.
    for o in &objects {
        if let Object::IrqLine(l) = o {
            l.mask();
        }
    }
    // 3. Devices stopped: bus mastering off and read back, DMA engines read idle.
    let mut devices = Vec::new();
    for o in &objects {
        let dev = match o {
            Object::Device(d) => d,
            Object::IrqLine(l) => &l.dev,
            Object::DmaRegion(r) => &r.dev,
            _ => continue,
        };
        if !devices
            .iter()
            .any(|d: &Arc<UserDevice>| Arc::ptr_eq(d, dev))
        {
            devices.push(dev.clone());
        }
    }
    for d in &devices {
        d.handoff.stop();
    }
    // 4. MMIO and DMA unmapped with the address space; its ASID's TLB entries go with it.
    drop(memory);
    for d in &devices {
        d.windows.lock().clear();
    }
    // 5. DMA memory freed (the devices read stopped) or held; 6. lines: MSI-X entries zeroed
    // and masked, MSI off, vectors returned; 7. devices returned; then everything else.
    let rank = |o: &Object| match o {
        Object::DmaRegion(_) => 0,
        Object::IrqLine(_) => 1,
        Object::Device(_) => 2,
        _ => 3,
    };
    let mut objects = objects;
    objects.sort_by_key(rank);
    drop(devices);
    let mut returned = Vec::new();
    for o in objects {
        match o {
            Object::Device(d) if d.is_bare() => {
                let held = rights
                    .iter()
                    .find(|(ptr, _)| *ptr == Arc::as_ptr(&d) as usize)
                    .map_or(Rights::empty(), |&(_, r)| r);
                returned.push((Object::Device(d), held));
            }
            other => drop(other),
        }
    }
    returned
}

/// Whether a region's direction lets the device read it (for `/proc/dma`).
pub fn dir_name(dir: u32) -> &'static str {
    match dir {
        DMA_TO_DEVICE => "to-device",
        DMA_BIDIRECTIONAL => "bidirectional",
        _ => "from-device",
    }
}
