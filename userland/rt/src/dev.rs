//! Device calls (group 0x60): the raw wrappers a user-mode driver builds on.
//!
//! Each function is one system call with the register encoding of docs/abi.md; none
//! keeps state or checks a type state. Drivers use them through the `udrv` crate's
//! capability types ([`Kernel`] is its backend), which make wrong-state calls and
//! rearming without proof compile errors; the raw calls stay public for tests and
//! tools that probe the kernel's own checks.

use abi::dev::DevInfo;
use abi::{Handle, Sysnum};

use crate::sys;

/// `dev_info(dev)`: the device's IDs, BARs and interrupt modes.
pub fn info(dev: Handle) -> crate::Result<DevInfo> {
    let mut buf = [0u8; 120];
    sys::call3(
        Sysnum::DevInfo,
        u64::from(dev.raw()),
        buf.as_mut_ptr() as u64,
        buf.len() as u64,
    )?;
    Ok(DevInfo::from_bytes(&buf))
}

/// `dev_irq(dev, index, bit)`: a `Masked` line for MSI-X entry `index` (0 for the MSI
/// vector) that posts `1 << bit` to this process's notification word when it fires.
pub fn irq(dev: Handle, index: u16, bit: u8) -> crate::Result<Handle> {
    let r = sys::call3(
        Sysnum::DevIrq,
        u64::from(dev.raw()),
        u64::from(index),
        u64::from(bit),
    )?;
    Ok(Handle(r[0] as u32))
}

/// `dev_cfg_read(dev, offset)`: the 32-bit word at `offset` (4-aligned, below 4096) of
/// the device's PCI configuration space, for walking its capability list.
pub fn cfg_read(dev: Handle, offset: u16) -> crate::Result<u32> {
    let r = sys::call2(Sysnum::DevCfgRead, u64::from(dev.raw()), u64::from(offset))?;
    Ok(r[0] as u32)
}

/// `netif_open(dev, bit, mac)`: the kernel's network interface for NIC `dev`, its frame
/// area (`abi::netif`, `AREA_LEN` bytes) mapped; returns the `NetIf` handle and the
/// area's address. The kernel posts `1 << bit` when it put frames in the TX ring.
pub fn netif_open(dev: Handle, bit: u8, mac: [u8; 6]) -> crate::Result<(Handle, usize)> {
    let r = sys::call3(
        Sysnum::NetifOpen,
        u64::from(dev.raw()),
        u64::from(bit),
        abi::netif::mac_to_u64(mac),
    )?;
    Ok((Handle(r[0] as u32), r[1] as usize))
}

/// `netif_kick(h, flags)`: frames were put in the RX ring (wakes the kernel's interface;
/// `abi::netif::KICK_POLLING` if the driver goes on polling).
pub fn netif_kick(netif: Handle, flags: u64) -> crate::Result<()> {
    sys::call2(Sysnum::NetifKick, u64::from(netif.raw()), flags).map(|_| ())
}

/// `irq_arm(line)`: Masked -> Armed.
pub fn irq_arm(line: Handle) -> crate::Result<()> {
    sys::call1(Sysnum::IrqArm, u64::from(line.raw())).map(|_| ())
}

/// `irq_wait(line, deadline)`: Armed -> Draining once the line fired; returns the
/// first fire's time (monotonic ns) and the fires so far. `deadline` 0 polls
/// (`ETIMEDOUT` if it has not fired), `u64::MAX` waits forever.
pub fn irq_wait(line: Handle, deadline: u64) -> crate::Result<(u64, u64)> {
    let r = sys::call2(Sysnum::IrqWait, u64::from(line.raw()), deadline)?;
    Ok((r[0], r[1]))
}

/// `irq_rearm(line)`: Draining -> Armed.
pub fn irq_rearm(line: Handle) -> crate::Result<()> {
    sys::call1(Sysnum::IrqRearm, u64::from(line.raw())).map(|_| ())
}

/// `irq_mask(line)`: Armed -> Draining (Masked and Draining stay as they are).
pub fn irq_mask(line: Handle) -> crate::Result<()> {
    sys::call1(Sysnum::IrqMask, u64::from(line.raw())).map(|_| ())
}

/// `mmio_map(dev, bar, offset, len)`: maps part of a BAR (page-aligned offset and
/// length) as device memory; returns its address.
pub fn mmio_map(dev: Handle, bar: u8, offset: u64, len: u64) -> crate::Result<usize> {
    let r = sys::call4(
        Sysnum::MmioMap,
        u64::from(dev.raw()),
        u64::from(bar),
        offset,
        len,
    )?;
    Ok(r[0] as usize)
}

/// What `dma_alloc` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaAlloc {
    /// The `DmaRegion` capability (dropping it unmaps the memory).
    pub handle: Handle,
    /// Where the memory is mapped here (read-write, zeroed).
    pub addr: usize,
    /// Its bus address, what the device is given.
    pub bus: u64,
}

/// `dma_alloc(dev, len, dir, mask_bits)`: zeroed memory the device reaches with
/// `mask_bits` address bits (`ERANGE` if there is none); `dir` is one of
/// `abi::dev::DMA_*`.
pub fn dma_alloc(dev: Handle, len: usize, dir: u32, mask_bits: u8) -> crate::Result<DmaAlloc> {
    let r = sys::call4(
        Sysnum::DmaAlloc,
        u64::from(dev.raw()),
        len as u64,
        u64::from(dir),
        u64::from(mask_bits),
    )?;
    Ok(DmaAlloc {
        handle: Handle(r[0] as u32),
        addr: r[1] as usize,
        bus: r[2],
    })
}

/// `dev_bus_master(dev, on)`: lets the device issue DMA, or stops it.
pub fn bus_master(dev: Handle, on: bool) -> crate::Result<()> {
    sys::call2(Sysnum::DevBusMaster, u64::from(dev.raw()), u64::from(on)).map(|_| ())
}

/// `dev_reset(dev)`: resets the function; `true` if the kernel confirmed the device
/// stopped DMA.
pub fn reset(dev: Handle) -> crate::Result<bool> {
    sys::call1(Sysnum::DevReset, u64::from(dev.raw())).map(|r| r[0] == 1)
}

/// A full system barrier (`dsb sy`): orders normal-memory accesses to DMA buffers
/// against device-memory accesses to registers, in both directions and for every
/// observer (the device included), which `core::sync::atomic::fence` (`dmb ish`) does not.
pub fn fence() {
    // SAFETY: a barrier instruction: it touches no memory or register the compiler
    // relies on (and is a compiler barrier too, since `nomem` is not given).
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// The kernel as `udrv`'s backend: every call is the system call of the same name.
#[derive(Clone, Copy, Debug, Default)]
pub struct Kernel;

// SAFETY: each method is the system call itself. The kernel maps `mmio_map`'s window
// as device memory for `len` bytes and `dma_alloc`'s region read-write for at least
// `len` bytes, both at page-aligned addresses no other mapping of this process uses,
// until the process exits (windows) or the region's handle is dropped (`cap_drop`), and
// `netif_open`'s frame area (`abi::netif::AREA_LEN` bytes, read-write) likewise until its
// `NetIf` handle is dropped, which is what `DevSys` requires; `fence` is `dsb sy`.
unsafe impl udrv::DevSys for Kernel {
    fn dev_info(&self, dev: Handle) -> crate::Result<DevInfo> {
        info(dev)
    }
    fn dev_irq(&self, dev: Handle, index: u16, bit: u8) -> crate::Result<Handle> {
        irq(dev, index, bit)
    }
    fn irq_arm(&self, line: Handle) -> crate::Result<()> {
        irq_arm(line)
    }
    fn irq_wait(&self, line: Handle, deadline: u64) -> crate::Result<(u64, u64)> {
        irq_wait(line, deadline)
    }
    fn irq_rearm(&self, line: Handle) -> crate::Result<()> {
        irq_rearm(line)
    }
    fn irq_mask(&self, line: Handle) -> crate::Result<()> {
        irq_mask(line)
    }
    fn mmio_map(&self, dev: Handle, bar: u8, offset: u64, len: u64) -> crate::Result<usize> {
        mmio_map(dev, bar, offset, len)
    }
    fn dma_alloc(
        &self,
        dev: Handle,
        len: usize,
        dir: u32,
        mask_bits: u8,
    ) -> crate::Result<(Handle, usize, u64)> {
        dma_alloc(dev, len, dir, mask_bits).map(|d| (d.handle, d.addr, d.bus))
    }
    fn bus_master(&self, dev: Handle, on: bool) -> crate::Result<()> {
        bus_master(dev, on)
    }
    fn reset(&self, dev: Handle) -> crate::Result<bool> {
        reset(dev)
    }
    fn cfg_read(&self, dev: Handle, offset: u16) -> crate::Result<u32> {
        cfg_read(dev, offset)
    }
    fn netif_open(&self, dev: Handle, bit: u8, mac: [u8; 6]) -> crate::Result<(Handle, usize)> {
        netif_open(dev, bit, mac)
    }
    fn netif_kick(&self, netif: Handle, flags: u64) -> crate::Result<()> {
        netif_kick(netif, flags)
    }
    fn cap_drop(&self, h: Handle) {
        let _ = crate::cap::drop(h);
    }
    fn fence(&self) {
        fence();
    }
}

/// A device driven through the kernel.
pub type Device = udrv::Device<Kernel>;
/// An interrupt line of a device driven through the kernel.
pub type IrqLine<S> = udrv::IrqLine<S, Kernel>;
/// A DMA region of a device driven through the kernel.
pub type DmaRegion<S> = udrv::DmaRegion<S, Kernel>;
