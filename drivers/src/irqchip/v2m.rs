//! GICv2m MSI frame: turns a device's MSI write into an SPI.
//!
//! A GICv2 has no LPIs, so message-signalled interrupts need a small helper
//! block: a device writes an SPI number to the frame's `MSI_SETSPI_NS`
//! doorbell and the frame raises that SPI as an edge at the distributor. QEMU
//! `virt` with `gic-version=2` has one frame (DT `arm,gic-v2m-frame`), and
//! Parallels pairs one with a GICv3 that has no ITS. The frame announces which
//! SPIs it may raise in `MSI_TYPER`; the GIC's `IrqControl` carves those into one
//! [`caps::msi::VectorAllocator`] with [`MsiData::Intid`], so two devices can
//! never be given the same SPI. Register map and semantics: ARM's GICv2m
//! architecture specification (frame registers `MSI_TYPER`, `MSI_SETSPI_NS`,
//! `MSI_IIDR`), as implemented by Linux `irq-gic-v2m.c` and QEMU
//! `hw/intc/arm_gicv2m.c`. The SPIs are configured edge-triggered at the GIC
//! when `IrqControl` mints the line (`Trigger::Edge`).

use core::mem::offset_of;

use caps::msi::{MsiData, MsiRange};

use super::{FIRST_SPI, SPECIAL_START};
use crate::mmio::Mmio;

/// v2m frame register block (4 KiB).
#[repr(C)]
pub(crate) struct V2mRegs {
    _reserved0: [u32; 2],
    /// `MSI_TYPER` (RO): base SPI INTID in [25:16], SPI count in [9:0].
    pub msi_typer: u32,
    _reserved1: [u32; 13],
    /// `MSI_SETSPI_NS` (WO): write an SPI INTID to make it pending. Doorbell only;
    /// never read.
    pub msi_setspi_ns: u32,
    _reserved2: [u32; 994],
    /// `MSI_IIDR` (RO): implementer/revision identification.
    pub msi_iidr: u32,
    _reserved3: [u32; 12],
}

const _: () = assert!(offset_of!(V2mRegs, msi_typer) == 0x008);
const _: () = assert!(offset_of!(V2mRegs, msi_setspi_ns) == 0x040);
const _: () = assert!(offset_of!(V2mRegs, msi_iidr) == 0xfcc);
const _: () = assert!(core::mem::size_of::<V2mRegs>() == 0x1000);

const MSI_TYPER: usize = offset_of!(V2mRegs, msi_typer);
const MSI_SETSPI_NS: usize = offset_of!(V2mRegs, msi_setspi_ns);
const MSI_IIDR: usize = offset_of!(V2mRegs, msi_iidr);

/// Why a frame's `MSI_TYPER` cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V2mError {
    /// The SPI range is empty, starts below INTID 32 or runs into 1020
    /// (Linux `is_valid_spi`).
    InvalidSpiRange {
        /// Base INTID as read.
        base: u32,
        /// Count as read.
        count: u32,
    },
    /// The capability layer rejected the range.
    Allocator(abi::Error),
}

impl core::fmt::Display for V2mError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            V2mError::InvalidSpiRange { count: 0, .. } => write!(f, "it offers no SPIs"),
            V2mError::InvalidSpiRange { base, count } => write!(
                f,
                "its SPIs {base}..{} are not all real SPIs",
                u64::from(base) + u64::from(count)
            ),
            V2mError::Allocator(e) => write!(f, "its SPIs cannot be handed out: {e}"),
        }
    }
}

/// Decodes `MSI_TYPER` into (base INTID, count): bits [25:16] and [9:0].
pub const fn decode_typer(typer: u32) -> (u32, u32) {
    ((typer >> 16) & 0x3ff, typer & 0x3ff)
}

/// Whether `count` SPIs from `base` are all real SPIs.
pub const fn valid_spi_range(base: u32, count: u32) -> bool {
    count != 0 && base >= FIRST_SPI && base + count <= SPECIAL_START
}

/// One GICv2m frame.
pub struct V2m {
    regs: Mmio<V2mRegs>,
}

impl V2m {
    /// Wraps the frame mapped at virtual address `base`.
    ///
    /// # Safety
    /// `base` maps the frame's 4 KiB as device memory for the life of the value,
    /// and nothing else accesses it.
    #[must_use]
    pub const unsafe fn new(base: usize) -> Self {
        V2m {
            // SAFETY: the caller hands over an exclusive 4 KiB device mapping.
            regs: unsafe { Mmio::new(base) },
        }
    }

    /// `(base INTID, count)` from `MSI_TYPER`.
    pub fn typer(&self) -> (u32, u32) {
        decode_typer(self.regs.read32(MSI_TYPER))
    }

    /// `MSI_IIDR`.
    pub fn iidr(&self) -> u32 {
        self.regs.read32(MSI_IIDR)
    }

    /// The physical doorbell devices write: the frame's physical base + 0x40.
    pub const fn doorbell_address(frame_phys: u64) -> u64 {
        frame_phys + MSI_SETSPI_NS as u64
    }

    /// Raises `intid` from the CPU, as a device's MSI write would (tests).
    pub fn trigger(&self, intid: u32) {
        self.regs.write32(MSI_SETSPI_NS, intid);
    }

    /// The frame's SPIs as an MSI range, messages `{ address: doorbell, data: INTID }`.
    /// The GIC's `IrqControl` turns it into the vector allocator
    /// (`IrqControl::msi_vectors`), which the kernel keeps in a `static`.
    pub fn msi_range(&self, frame_phys: u64) -> Result<MsiRange, V2mError> {
        let (base, count) = self.typer();
        range_for(base, count, frame_phys)
    }
}

/// [`V2m::msi_range`] from an already-read `MSI_TYPER` range.
pub fn range_for(base: u32, count: u32, frame_phys: u64) -> Result<MsiRange, V2mError> {
    if !valid_spi_range(base, count) {
        return Err(V2mError::InvalidSpiRange { base, count });
    }
    Ok(MsiRange {
        base,
        count,
        doorbell: V2m::doorbell_address(frame_phys),
        data: MsiData::Intid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmio::fake;
    use std::boxed::Box;

    #[test]
    fn typer_decoding_matches_qemu() {
        // QEMU virt: base_spi 48 + 32 = INTID 80, 64 SPIs.
        assert_eq!(decode_typer(80 << 16 | 64), (80, 64));
        // Reserved bits are ignored.
        assert_eq!(decode_typer(0xfc00_fc00 | 80 << 16 | 64), (80, 64));
        assert!(valid_spi_range(80, 64));
        assert!(!valid_spi_range(16, 8) && !valid_spi_range(1000, 21) && !valid_spi_range(80, 0));
        assert!(valid_spi_range(1000, 20));
    }

    #[test]
    fn frame_registers_and_allocator() {
        let mut mem = fake::frames(1);
        fake::w32(&mut mem, 0x008, 80 << 16 | 64);
        fake::w32(&mut mem, 0xfcc, 0x0000_043b);
        // SAFETY: `mem` is a zeroed, aligned 64 KiB buffer that outlives `v2m`.
        let v2m = unsafe { V2m::new(fake::base(&mut mem)) };
        assert_eq!(v2m.typer(), (80, 64));
        assert_eq!(v2m.iidr(), 0x43b);
        v2m.trigger(81);
        assert_eq!(V2m::doorbell_address(0x0802_0000), 0x0802_0040);
        let (_, ctl) = caps::fakes::fake_control::<288>(0);
        let range = v2m.msi_range(0x0802_0000).unwrap();
        let alloc: &'static caps::msi::VectorAllocator =
            Box::leak(Box::new(ctl.msi_vectors(range).unwrap()));
        assert_eq!((alloc.base(), alloc.count()), (80, 64));
        let v = alloc.alloc().unwrap();
        assert_eq!((v.message().address, v.message().data), (0x0802_0040, 80));
        // Exhaustion, then freeing one makes it available again.
        let rest: std::vec::Vec<_> = (1..64).map(|_| alloc.alloc().unwrap()).collect();
        assert!(alloc.alloc().is_err());
        let freed = rest[10].intid();
        drop(rest);
        assert_eq!(alloc.alloc().unwrap().intid(), 81);
        assert!(freed > 81);
        drop(v);
        assert_eq!(fake::r32(&mem, 0x040), 81, "doorbell written");
    }

    #[test]
    fn bad_typer_is_an_error() {
        let err = range_for(0, 64, 0x0802_0000).err();
        assert_eq!(err, Some(V2mError::InvalidSpiRange { base: 0, count: 64 }));
        assert!(range_for(80, 0, 0).is_err());
    }

    #[test]
    fn errors_read_as_words() {
        use std::string::ToString;
        let bad = V2mError::InvalidSpiRange { base: 0, count: 64 };
        assert_eq!(bad.to_string(), "its SPIs 0..64 are not all real SPIs");
        let busy = V2mError::Allocator(abi::Error::EBUSY);
        assert!(
            busy.to_string()
                .starts_with("its SPIs cannot be handed out: ")
        );
    }
}
