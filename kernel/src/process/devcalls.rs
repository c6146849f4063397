//! The device calls (group 0x60) against the calling process's capabilities: the objects
//! they make and use are in `device` (docs/user-drivers.md).

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use abi::dev::{MAX_DMA, MAX_DMA_REGIONS, MAX_WINDOWS};
use abi::{CapType, Error, Handle, Rights};
use caps::dma::{DmaBuffer, DmaHal};

use super::decode::IrqOp;
use super::device::{UserDevice, UserDma, UserLine, UserNetif};
use super::file::Object;
use super::memory::RegionKind;
use super::table::{self, Process};
use super::user::UserSlice;
use crate::arch::dma::HAL;
use crate::arch::usercopy::copy_to_user;
use crate::arch::uspace::UserAccess;
use crate::irq as kirq;
use crate::mem::frames::FRAME;
use crate::net::stack::netif::{self, DriverNext};

/// PCI base class of network controllers.
const PCI_CLASS_NETWORK: u8 = 0x02;

/// Results of a handler: `x1`-`x3`.
type Ret = Result<[u64; 3], Error>;

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
    let object = Object::IrqLine(Arc::new(UserLine::new(dev, source, l, bit)));
    let rights = Rights::IRQ | Rights::ACK | Rights::INSPECT;
    let h = table::with_caps(p, |caps| caps.insert(object, rights).map_err(|(_, e)| e))?;
    Ok([u64::from(h.raw()), 0, 0])
}

/// `irq_arm`, `irq_rearm`, `irq_mask`: a wrong state is `EBADSTATE` with nothing changed.
pub fn irq_op(p: &Arc<Process>, h: Handle, op: IrqOp) -> Ret {
    line(p, h)?.apply(op).map(|()| [0; 3])
}

/// `irq_wait(h, deadline)`: Armed → Draining once it fired (at once if it already did);
/// returns the first-fire time and the fires so far.
pub fn irq_wait(p: &Arc<Process>, h: Handle, deadline: u64) -> Ret {
    let l = line(p, h)?;
    loop {
        if let Some((at, fires)) = l.take_fired()? {
            return Ok([at, fires, 0]);
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
    let counted = Counted(&dev);
    let buf = HAL.allocate(len, FRAME, mask)?;
    let pa = buf.paddr();
    let va = table::with_memory(p, |m| {
        m.map_foreign(pa as usize, len, UserAccess::ReadWrite, RegionKind::Dma)
    });
    let va = match va {
        Ok(va) => va,
        Err(e) => {
            dev.handoff.retire_dma(buf); // never mapped, never lent: freed
            return Err(e);
        }
    };
    core::mem::forget(counted); // the region releases the count when it drops
    let region = UserDma::new(dev, buf, va, dir);
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
    let va = match &obj {
        Object::DmaRegion(r) => Some(r.va),
        Object::NetIf(n) => Some(n.va),
        _ => None,
    };
    if let Some(va) = va {
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

/// `dev_cfg_read(dev, offset)`: one configuration-space dword.
pub fn cfg_read(p: &Arc<Process>, h: Handle, offset: u64) -> Ret {
    let dev = device(p, h, Rights::INSPECT)?;
    Ok([u64::from(dev.handoff.cfg_read(offset)?), 0, 0])
}

/// `netif_open(dev, bit, mac)`: the kernel's network interface for the NIC `dev` names,
/// its frame area mapped read-write in the caller; returns the `NetIf` handle and the
/// area's address.
pub fn netif_open(p: &Arc<Process>, h: Handle, bit: u8, mac: [u8; 6]) -> Ret {
    let dev = device(p, h, Rights::DMA)?;
    let info = dev.handoff.info();
    if info.class != PCI_CLASS_NETWORK || mac[0] & 1 != 0 {
        return Err(Error::EINVAL); // not a NIC, or a multicast MAC
    }
    let signal = (table::events_word(p), 1u64 << bit);
    let attachment = netif::open(info.bdf, mac, signal)?;
    let pa = attachment.area_paddr();
    let va = table::with_memory(p, |m| {
        m.map_foreign(
            pa,
            abi::netif::AREA_LEN,
            UserAccess::ReadWrite,
            RegionKind::NetIf,
        )
    })?;
    let object = Object::NetIf(Arc::new(UserNetif { attachment, va }));
    let mut back = None;
    let inserted = table::with_caps(p, |caps| {
        caps.insert(object, Rights::WRITE | Rights::INSPECT)
            .map_err(|(obj, e)| {
                back = Some(obj);
                e
            })
    });
    if let Some(obj) = back {
        drop_mapped(p, obj);
    }
    let h = inserted?;
    Ok([u64::from(h.raw()), va as u64, 0])
}

/// `netif_kick(h, flags)`: wakes the interface for the frames in its RX ring.
pub fn netif_kick(p: &Arc<Process>, h: Handle, polling: bool) -> Ret {
    table::with_caps(p, |caps| {
        match caps.get(h, CapType::NetIf, Rights::WRITE)? {
            Object::NetIf(n) => {
                n.attachment.kick(if polling {
                    DriverNext::Polls
                } else {
                    DriverNext::Waits
                });
                Ok([0; 3])
            }
            _ => Err(Error::EWRONGTYPE),
        }
    })
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
        Object::NetIf(n) => {
            let va = n.va;
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

/// Gives back `dma_alloc`'s count of a device's regions if the region is never made.
struct Counted<'a>(&'a Arc<UserDevice>);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.regions.fetch_sub(1, Ordering::Relaxed);
    }
}
