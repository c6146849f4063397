//! Argument encodings of the device calls (group 0x60): what a user-mode driver sees of
//! the device it was granted.
//!
//! A `Device` capability names one PCI function. Through it a driver learns the function
//! (`dev_info` fills a [`DevInfo`]), maps register windows (`mmio_map`: never the pages
//! that hold the MSI-X table or PBA, which only the kernel writes), allocates DMA memory
//! below the reach it states (`dma_alloc`), switches bus mastering (`dev_bus_master`) and
//! gets interrupt lines (`dev_irq`): each line is an MSI or MSI-X vector the kernel
//! allocated and programmed, posting one bit of the driver's notification word when it
//! fires. INTIDs and MSI messages never reach user space.
//!
//! Lines (`CapType::IrqLine`) and DMA regions (`CapType::DmaRegion`) are linear and stay
//! with the process that made them: they are never moved or copied. A device may be moved
//! (`cap_grant` with `GRANT_MOVE`) only while it has no window, region or line (`EBUSY`).

/// `dev_info`'s record, written at the caller's buffer (which must hold all of it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DevInfo {
    /// PCI vendor ID.
    pub vendor: u16,
    /// PCI device ID.
    pub device: u16,
    /// Class code.
    pub class: u8,
    /// Subclass.
    pub subclass: u8,
    /// Programming interface.
    pub prog_if: u8,
    /// Interrupt modes the device offers and the machine can deliver: `IRQ_*` bits.
    pub irq_modes: u8,
    /// Bus, device and function: `bus << 8 | device << 3 | function`.
    pub bdf: u32,
    /// MSI-X table entries (0 without MSI-X, or without an MSI controller).
    pub msix_entries: u16,
    /// MSI vectors `dev_irq` can give through the MSI capability (0 or 1).
    pub msi_vectors: u16,
    /// Reserved, zero.
    pub reserved: u32,
    /// The register windows (BARs), index = BAR number; an unused one has size 0.
    pub bars: [BarInfo; 6],
}

/// One BAR as `dev_info` reports it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BarInfo {
    /// Bytes (0: not implemented or not assigned).
    pub size: u64,
    /// `BAR_*` bits.
    pub flags: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// `BarInfo::flags`: a memory window `mmio_map` can map.
pub const BAR_MEM: u32 = 1 << 0;
/// `BarInfo::flags`: a 64-bit window.
pub const BAR_64: u32 = 1 << 1;
/// `BarInfo::flags`: prefetchable.
pub const BAR_PREFETCH: u32 = 1 << 2;
/// `BarInfo::flags`: holds MSI-X table or PBA pages, which `mmio_map` refuses (`EACCES`).
pub const BAR_MSIX: u32 = 1 << 3;

/// `DevInfo::irq_modes`: a legacy INTx pin (not given to user space).
pub const IRQ_INTX: u8 = 1 << 0;
/// `DevInfo::irq_modes`: MSI.
pub const IRQ_MSI: u8 = 1 << 1;
/// `DevInfo::irq_modes`: MSI-X.
pub const IRQ_MSIX: u8 = 1 << 2;

/// `dma_alloc` direction: the device reads the memory.
pub const DMA_TO_DEVICE: u32 = 1;
/// `dma_alloc` direction: the device writes the memory.
pub const DMA_FROM_DEVICE: u32 = 2;
/// `dma_alloc` direction: both.
pub const DMA_BIDIRECTIONAL: u32 = 3;

/// Largest `dma_alloc` request (1 MiB: one physically contiguous run).
pub const MAX_DMA: usize = 1 << 20;
/// Most DMA regions one device may have at once.
pub const MAX_DMA_REGIONS: usize = 32;
/// Most `mmio_map` windows one device may have at once.
pub const MAX_WINDOWS: usize = 8;

/// `dev_irq`'s `bit`: the notification bit a line posts is `1 << bit`, `bit` < 64.
pub const NOTIFY_BITS: u32 = 64;

/// `cap_info`'s state word for an interrupt line (`x2`): the kernel's view, in which
/// `Fired` is an `Armed` line the interrupt already masked (ABI "User interrupt states").
pub const LINE_MASKED: u64 = 0;
/// See [`LINE_MASKED`].
pub const LINE_ARMED: u64 = 1;
/// See [`LINE_MASKED`].
pub const LINE_FIRED: u64 = 2;
/// See [`LINE_MASKED`].
pub const LINE_DRAINING: u64 = 3;

const _: () = assert!(core::mem::size_of::<BarInfo>() == 16);
const _: () = assert!(core::mem::size_of::<DevInfo>() == 120);

impl DevInfo {
    /// The record's bytes, for the kernel's copy to user memory.
    pub fn to_bytes(&self) -> [u8; 120] {
        let mut out = [0u8; 120];
        out[0..2].copy_from_slice(&self.vendor.to_le_bytes());
        out[2..4].copy_from_slice(&self.device.to_le_bytes());
        out[4] = self.class;
        out[5] = self.subclass;
        out[6] = self.prog_if;
        out[7] = self.irq_modes;
        out[8..12].copy_from_slice(&self.bdf.to_le_bytes());
        out[12..14].copy_from_slice(&self.msix_entries.to_le_bytes());
        out[14..16].copy_from_slice(&self.msi_vectors.to_le_bytes());
        out[16..20].copy_from_slice(&self.reserved.to_le_bytes());
        for (i, b) in self.bars.iter().enumerate() {
            let at = 24 + i * 16;
            out[at..at + 8].copy_from_slice(&b.size.to_le_bytes());
            out[at + 8..at + 12].copy_from_slice(&b.flags.to_le_bytes());
            out[at + 12..at + 16].copy_from_slice(&b.reserved.to_le_bytes());
        }
        out
    }

    /// The record from its bytes (the user side's decode).
    pub fn from_bytes(b: &[u8; 120]) -> DevInfo {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| u64::from(u32_at(i)) | u64::from(u32_at(i + 4)) << 32;
        let mut bars = [BarInfo::default(); 6];
        for (i, bar) in bars.iter_mut().enumerate() {
            let at = 24 + i * 16;
            *bar = BarInfo {
                size: u64_at(at),
                flags: u32_at(at + 8),
                reserved: u32_at(at + 12),
            };
        }
        DevInfo {
            vendor: u16_at(0),
            device: u16_at(2),
            class: b[4],
            subclass: b[5],
            prog_if: b[6],
            irq_modes: b[7],
            bdf: u32_at(8),
            msix_entries: u16_at(12),
            msi_vectors: u16_at(14),
            reserved: u32_at(16),
            bars,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_info_round_trips_through_bytes() {
        let mut info = DevInfo {
            vendor: 0x1234,
            device: 0x11e8,
            class: 0xff,
            subclass: 1,
            prog_if: 2,
            irq_modes: IRQ_MSI | IRQ_INTX,
            bdf: 0x0010,
            msix_entries: 3,
            msi_vectors: 1,
            reserved: 0,
            bars: [BarInfo::default(); 6],
        };
        info.bars[0] = BarInfo {
            size: 1 << 20,
            flags: BAR_MEM,
            reserved: 0,
        };
        info.bars[5] = BarInfo {
            size: 0x1_0000_0000,
            flags: BAR_MEM | BAR_64 | BAR_MSIX,
            reserved: 0,
        };
        assert_eq!(DevInfo::from_bytes(&info.to_bytes()), info);
    }
}
