//! The QEMU `edu` test device, driven end to end through capabilities.
//!
//! A claimed PCI function, its BAR0, an interrupt (MSI vector or INTx share) and
//! DMA regions from the kernel's DMA module: factorials and DMA transfers each
//! complete by interrupt. Every address, offset and length is validated by the
//! driver (`drivers::edu`) before it reaches the device, because edu trusts its
//! driver completely (QEMU aborts the VM on an out-of-buffer transfer).

use alloc::sync::Arc;
use alloc::vec::Vec;

use caps::dma::DmaPool;
use drivers::edu::{
    DEVICE_ID, DmaDirection, DmaRequest, Edu, EduError, EduMmio, RamRange, VENDOR_ID,
};

use super::irq::{DeviceIrq, setup};
use super::{Device, PciError, claim};
use crate::arch::devices;
use crate::arch::dma::{HAL, KernelDma};
use crate::sched::TimedOut;
use crate::time;

/// How long one operation may take before it is an error.
const OP_TIMEOUT_NS: u64 = 2_000_000_000;

/// Why an edu operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpError {
    /// Claiming or setting up the device.
    Pci(PciError),
    /// The driver refused the request (bad address, no reachable memory, ...).
    Edu(EduError),
    /// DMA memory could not be allocated.
    Dma(abi::Error),
    /// The completion interrupt did not arrive in time.
    Timeout,
    /// An interrupt arrived but did not report the expected completion.
    Unexpected,
}

impl From<TimedOut> for OpError {
    fn from(_: TimedOut) -> Self {
        OpError::Timeout
    }
}

/// The machine's RAM as edu sees it (bus address = CPU physical on `virt`).
pub fn ram() -> Vec<RamRange> {
    crate::machine::platform()
        .map(|p| {
            p.ram
                .iter()
                .map(|r| RamRange {
                    start: r.start as u64,
                    len: r.len() as u64,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A claimed edu with its interrupt and DMA pool.
pub struct EduDevice {
    edu: Arc<Edu<EduMmio>>,
    irq: DeviceIrq,
    pool: DmaPool<KernelDma>,
    // Dropped last: bus mastering goes off only after the interrupt is released.
    _dev: Device,
}

impl EduDevice {
    /// Claims the next unclaimed edu. `dma_mask` is what the device was configured with
    /// (edu's default is 28 bits; QEMU's `dma_mask` property changes it).
    pub fn claim(dma_mask: u64) -> Result<EduDevice, OpError> {
        let dev = claim(VENDOR_ID, DEVICE_ID).map_err(OpError::Pci)?;
        let bar0 = dev.bar(0).map_err(OpError::Pci)?;
        let regs = devices::edu(bar0).map_err(|_| OpError::Pci(PciError::Map))?;
        let edu = Arc::new(Edu::new(regs, dma_mask, &ram()).map_err(OpError::Edu)?);
        let irq = setup(&dev, "edu").map_err(OpError::Pci)?;
        Ok(EduDevice {
            edu,
            irq,
            pool: DmaPool::new(&HAL, dma_mask),
            _dev: dev,
        })
    }

    /// The device's interrupt.
    pub fn irq(&self) -> &DeviceIrq {
        &self.irq
    }

    /// The PCI function's address.
    pub fn bdf(&self) -> drivers::pci::config::Bdf {
        self._dev.bdf()
    }

    /// Waits for the next interrupt, acknowledges it at the device, re-arms the line.
    fn next_event(&mut self) -> Result<drivers::edu::EduEvents, OpError> {
        self.irq.wait(time::now_ns() + OP_TIMEOUT_NS)?;
        let events = self.edu.handle_interrupt();
        // Re-armed once edu's interrupt status reads 0 (its `QuietCheck`).
        while !self.irq.done(&*self.edu) {
            let _ = self.edu.handle_interrupt();
        }
        Ok(events)
    }

    /// Computes `n!` on the device, completing by interrupt.
    pub fn factorial(&mut self, n: u32) -> Result<u32, OpError> {
        self.edu.start_factorial(n, true).map_err(OpError::Edu)?;
        let events = self.next_event()?;
        events.factorial.ok_or(OpError::Unexpected)
    }

    /// Copies `data` into edu's buffer at `offset` and back into fresh memory, each
    /// direction completing by interrupt; returns what came back.
    pub fn dma_round_trip(&mut self, data: &[u8], offset: u32) -> Result<Vec<u8>, OpError> {
        self.edu.dma_reachable().map_err(OpError::Edu)?;
        let len = u32::try_from(data.len()).map_err(|_| {
            OpError::Edu(EduError::OutsideBuffer {
                offset,
                len: u32::MAX,
            })
        })?;
        let mut out = self.pool.alloc(data.len(), 64).map_err(OpError::Dma)?;
        out.bytes_mut().copy_from_slice(data);
        let back = self.pool.alloc(data.len(), 64).map_err(OpError::Dma)?;
        let out = self.transfer(out, DmaDirection::ToDevice, offset, len)?;
        drop(out);
        let back = self.transfer(back, DmaDirection::FromDevice, offset, len)?;
        Ok(back.bytes().to_vec())
    }

    fn transfer(
        &mut self,
        region: caps::dma::DmaRegion<KernelDma, caps::dma::Cpu>,
        direction: DmaDirection,
        offset: u32,
        len: u32,
    ) -> Result<caps::dma::DmaRegion<KernelDma, caps::dma::Cpu>, OpError> {
        let req = DmaRequest {
            direction,
            ram_addr: region.paddr(),
            offset,
            len,
            interrupt: true,
        };
        let checked = self.edu.check_dma(req).map_err(OpError::Edu)?;
        let lent = region.lend(self.edu.dma_device());
        // From here the device owns the memory: on any error the region is quarantined.
        self.edu.start_dma(checked).map_err(OpError::Edu)?;
        let events = self.next_event()?;
        if !events.dma {
            return Err(OpError::Unexpected);
        }
        // Back to the CPU only once edu's DMA engine reads idle (its `DmaIdle`).
        lent.reclaim(&*self.edu).map_err(|_| OpError::Unexpected)
    }

    /// Starts a DMA the driver must refuse; returns the refusal.
    pub fn refused_dma(&self, req: DmaRequest) -> Option<EduError> {
        self.edu.check_dma(req).err()
    }

    /// Raises the device's software interrupt and waits for it.
    pub fn raise_and_wait(&mut self, bits: u32) -> Result<u32, OpError> {
        self.edu.raise(bits);
        Ok(self.next_event()?.status)
    }
}
