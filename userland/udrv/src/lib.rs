//! User-mode drivers' capability types: lines, proofs, DMA regions, registers.
//!
//! A user-mode driver holds its device's interrupt lines and DMA memory as kernel
//! capabilities (docs/abi.md group 0x60). The kernel checks every state change at run
//! time (`EBADSTATE`); this crate makes the same rules compile-time ones in the driver,
//! mirroring the kernel's own `caps` types so that a driver reads the same on either side:
//!
//! - [`IrqLine<S>`](IrqLine), `S` = [`Masked`] → [`Armed`] → [`Draining`] → `Armed`: every
//!   transition consumes the line, a failed call hands it back with the error, and the way
//!   back from `Draining` needs a [`Quiesced`] proof that only [`quiesce`] mints, by reading
//!   the device through its [`QuietCheck`] (the NAPI rule: no rearm without proof the
//!   device is quiet).
//! - [`DmaRegion<S>`](DmaRegion), `S` = [`dma::Cpu`] or [`dma::Device`]: only the CPU-owned
//!   state shows its bytes; a lent region comes back through [`DmaRegion::reclaim`], which
//!   reads the device's own DMA-idle register ([`DmaIdle`]).
//! - [`Mmio`]: a mapped register window with bounds- and alignment-checked volatile access.
//! - [`vring`]: a split virtqueue over `caps`' ring format, its buffers `DmaRegion`s that
//!   come back only through validated completions, and [`vring::Napi`], a ring bound to
//!   its line so that a round is suppress → drain → re-enable, recheck → rearm.
//! - [`virtio`]: a granted function's modern virtio-pci transport (`drivers::virtio` over
//!   `dev_cfg_read` and `mmio_map`).
//! - [`netif`]: the frame area a NIC driver shares with the kernel's stack.
//!
//! Everything is minted from a [`Device`]: the capability a driver was granted, paired with
//! a [`DevSys`] backend that performs the calls. The runtime's backend
//! (`capstan_rt::dev::Kernel`) makes system calls; the tests' backend is a fake kernel, so
//! this crate is tested on the host. The compile-fail cases in `tests/ui` pin the rules the
//! types enforce. See docs/userland.md "User-mode drivers".
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod dma;
pub mod irq;
pub mod mmio;
pub mod netif;
pub mod pool;
pub mod virtio;
pub mod vring;

#[cfg(test)]
mod fake;

use core::sync::atomic::{AtomicU64, Ordering};

use abi::dev::DevInfo;
use abi::{Error, Handle};

use dma::Cpu;

pub use dma::{DmaDir, DmaIdle, DmaRegion};
pub use irq::{Armed, Draining, Fired, IrqLine, LineState, Masked, Quiesced, QuietCheck, quiesce};
pub use mmio::{Mmio, SharedMem};

/// The result of every call.
pub type Result<T> = core::result::Result<T, Error>;

mod sealed {
    /// Closes the state-marker traits: the states this crate defines are all there are.
    pub trait Sealed {}
}

/// Made only by this crate: the argument that keeps [`QuietCheck`]'s and [`DmaIdle`]'s
/// methods uncallable elsewhere, so they run only inside [`quiesce`] and
/// [`DmaRegion::reclaim`], after the fences those put around them.
pub struct Seal(());

/// The device calls a driver's capabilities are made of (docs/abi.md group 0x60), plus
/// `cap_drop` and a full barrier. `capstan_rt::dev::Kernel` is the system-call backend;
/// the host tests use a fake kernel.
///
/// # Safety
/// [`Mmio`] and [`DmaRegion`] turn addresses this trait returns into volatile accesses and
/// slices. `mmio_map` must return the address of a mapping of `len` bytes of the device's
/// registers, aligned to 8 bytes, that stays mapped for the life of the process;
/// `dma_alloc` must return `(handle, addr, bus)` where `addr` maps at least `len`
/// read-write bytes, aligned to 8 bytes, used by nothing else in this process and mapped
/// until `cap_drop(handle)`, and `bus` is the address at which the device reaches the same
/// bytes; `netif_open` must return `(handle, addr)` where `addr` maps
/// `abi::netif::AREA_LEN` read-write bytes, page-aligned, used by nothing else in this
/// process and mapped until `cap_drop(handle)`. `fence` must order every earlier memory access (normal and device memory) before
/// every later one for all observers, the device included (`dsb sy` on aarch64).
#[allow(
    unsafe_code,
    reason = "an unsafe trait: the backend's implementation is the promise"
)]
pub unsafe trait DevSys: Copy {
    /// `dev_info(dev)`.
    fn dev_info(&self, dev: Handle) -> Result<DevInfo>;
    /// `dev_irq(dev, index, bit)` -> a `Masked` line's handle.
    fn dev_irq(&self, dev: Handle, index: u16, bit: u8) -> Result<Handle>;
    /// `irq_arm(line)`.
    fn irq_arm(&self, line: Handle) -> Result<()>;
    /// `irq_wait(line, deadline)` -> (first fire's time in ns, fires so far).
    fn irq_wait(&self, line: Handle, deadline: u64) -> Result<(u64, u64)>;
    /// `irq_rearm(line)`.
    fn irq_rearm(&self, line: Handle) -> Result<()>;
    /// `irq_mask(line)`.
    fn irq_mask(&self, line: Handle) -> Result<()>;
    /// `mmio_map(dev, bar, offset, len)` -> the window's address.
    fn mmio_map(&self, dev: Handle, bar: u8, offset: u64, len: u64) -> Result<usize>;
    /// `dma_alloc(dev, len, dir, mask_bits)` -> (region handle, address, bus address).
    fn dma_alloc(
        &self,
        dev: Handle,
        len: usize,
        dir: u32,
        mask_bits: u8,
    ) -> Result<(Handle, usize, u64)>;
    /// `dev_bus_master(dev, on)`.
    fn bus_master(&self, dev: Handle, on: bool) -> Result<()>;
    /// `dev_reset(dev)` -> whether the kernel confirmed the device stopped DMA.
    fn reset(&self, dev: Handle) -> Result<bool>;
    /// `dev_cfg_read(dev, offset)` -> the configuration-space dword at `offset`.
    fn cfg_read(&self, dev: Handle, offset: u16) -> Result<u32>;
    /// `netif_open(dev, bit, mac)` -> (the `NetIf` handle, its frame area's address).
    fn netif_open(&self, dev: Handle, bit: u8, mac: [u8; 6]) -> Result<(Handle, usize)>;
    /// `netif_kick(netif, flags)` (`abi::netif::KICK_*`).
    fn netif_kick(&self, netif: Handle, flags: u64) -> Result<()>;
    /// `cap_drop(h)`; a failure is ignored (the handle is gone either way).
    fn cap_drop(&self, h: Handle);
    /// A full barrier for every observer, the device included.
    fn fence(&self);
}

/// One device's identity within this process: regions remember the device they were
/// allocated for, and only that device's idle check takes them back. Unique per [`Device`]
/// value (a counter); made only by [`Device::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceId(u64);

/// The next identity for a device or a line (shared: both only need to be unique).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// A granted device capability: the one object lines, windows and DMA regions are minted
/// from. Not `Clone`. The capability stays held until the process exits (the kernel's
/// teardown returns it); dropping this value does not drop it, because its lines and
/// regions may outlive the value.
#[must_use]
pub struct Device<B: DevSys> {
    sys: B,
    handle: Handle,
    id: DeviceId,
}

impl<B: DevSys> Device<B> {
    /// Takes charge of device capability `handle` (a startup grant of type `Device`),
    /// performing its calls through `sys`.
    pub fn new(sys: B, handle: Handle) -> Self {
        Device {
            sys,
            handle,
            id: DeviceId(next_id()),
        }
    }

    /// The capability's handle.
    pub fn handle(&self) -> Handle {
        self.handle
    }

    /// This device's identity (what a [`DmaIdle`] implementation returns).
    pub fn id(&self) -> DeviceId {
        self.id
    }

    /// IDs, BARs and interrupt modes.
    pub fn info(&self) -> Result<DevInfo> {
        self.sys.dev_info(self.handle)
    }

    /// A fresh `Masked` line for MSI-X entry `index` (0: the MSI vector) that posts
    /// notification bit `1 << bit` when it fires.
    pub fn irq(&self, index: u16, bit: u8) -> Result<IrqLine<Masked, B>> {
        let h = self.sys.dev_irq(self.handle, index, bit)?;
        Ok(IrqLine::mint(self.sys, h, next_id()))
    }

    /// Maps `len` bytes of BAR `bar` from `offset` (both page-aligned) as a register window.
    pub fn mmio(&self, bar: u8, offset: u64, len: usize) -> Result<Mmio> {
        let addr = self.sys.mmio_map(self.handle, bar, offset, len as u64)?;
        Ok(Mmio::mapped(addr, len))
    }

    /// `len` zeroed bytes of DMA memory the device reaches with `mask_bits` address bits
    /// (1..=64), for transfers in `dir`. A region whose bus range the kernel put above the
    /// mask is caught here (`ERANGE`, and the region dropped) rather than trusted.
    pub fn dma_alloc(&self, len: usize, dir: DmaDir, mask_bits: u8) -> Result<DmaRegion<Cpu, B>> {
        if len == 0 || !(1..=64).contains(&mask_bits) {
            return Err(Error::EINVAL);
        }
        let (h, addr, bus) = self
            .sys
            .dma_alloc(self.handle, len, dir.as_abi(), mask_bits)?;
        let region = DmaRegion::mint(self.sys, h, addr, bus, len, dir, self.id);
        if !dma::reaches(bus, len, mask_bits) {
            return Err(Error::ERANGE);
        }
        Ok(region)
    }

    /// Lets the device issue DMA (`true`) or stops it.
    pub fn bus_master(&self, on: bool) -> Result<()> {
        self.sys.bus_master(self.handle, on)
    }

    /// Resets the function; `true` if the kernel confirmed the device stopped DMA.
    pub fn reset(&self) -> Result<bool> {
        self.sys.reset(self.handle)
    }

    /// The configuration-space dword at `offset` (4-aligned, below 4096), for walking the
    /// function's capability list.
    pub fn cfg_read(&self, offset: u16) -> Result<u32> {
        self.sys.cfg_read(self.handle, offset)
    }

    /// The backend.
    pub(crate) fn sys(&self) -> B {
        self.sys
    }
}

impl<B: DevSys> core::fmt::Debug for Device<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Device")
            .field("handle", &self.handle)
            .field("id", &self.id)
            .finish()
    }
}
