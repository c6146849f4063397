//! MSI and MSI-X programming, and the choice between MSI-X, MSI and INTx.
//!
//! Message-signalled interrupts are what let every device have its own
//! edge-triggered vector instead of sharing four level lines. A device offers
//! an MSI capability (PCI Local Bus 3.0 §6.8.1: one address/data pair, 1–32
//! vectors as a power-of-two block, optional per-vector masks), an MSI-X
//! capability (§6.8.2: a table of independent entries and a pending-bit array
//! in a BAR), both, or neither. The kernel prefers MSI-X, then MSI, then INTx,
//! and a device offering fewer vectors than its driver asks for gets a plan
//! with fewer vectors that the driver's sources share, not a failure. Whenever
//! MSI or MSI-X is on, INTx is disabled (command bit 10, PCIe 4.0 §7.5.1.1.3).

use core::mem::offset_of;

use caps::msi::MsiMessage;

use super::config::{Bdf, Command, ConfigAccess};
use super::scan::PciFunction;
use crate::mmio::Mmio;

/// Why MSI or MSI-X programming was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsiError {
    /// More vectors requested than the capability offers, or not a power of two.
    BadVectorCount,
    /// Multiple-message MSI needs the data of vector 0 aligned to the block size.
    DataNotAligned,
    /// A 32-bit-only MSI capability cannot reach the doorbell address.
    AddressTooHigh,
    /// The MSI data field is 16 bits.
    DataTooWide,
    /// Vector index outside the capability or table.
    BadIndex,
    /// The capability has no per-vector mask bits.
    NoPerVectorMask,
}

// MSI Message Control bits (PCI 3.0 §6.8.1.3).
const MSI_ENABLE: u16 = 1 << 0;
const MSI_MME_SHIFT: u16 = 4;
const MSI_64BIT: u16 = 1 << 7;
const MSI_PVM: u16 = 1 << 8;

/// An MSI capability as read from configuration space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiCap {
    /// Capability offset.
    pub offset: u16,
    /// 64-bit Address Capable.
    pub is64: bool,
    /// Per-vector Masking Capable.
    pub per_vector_mask: bool,
    /// log2 of the vectors offered (Multiple Message Capable, 0..=5).
    pub mmc: u8,
}

impl MsiCap {
    /// Reads the capability at `offset` of `bdf`.
    pub fn read<C: ConfigAccess + ?Sized>(access: &C, bdf: Bdf, offset: u16) -> Self {
        let ctrl = access.read16(bdf, offset + 2);
        MsiCap {
            offset,
            is64: ctrl & MSI_64BIT != 0,
            per_vector_mask: ctrl & MSI_PVM != 0,
            mmc: (((ctrl >> 1) & 0x7) as u8).min(5),
        }
    }

    /// Vectors the device offers.
    pub fn max_vectors(&self) -> u16 {
        1 << self.mmc
    }

    fn data_off(&self) -> u16 {
        self.offset + if self.is64 { 0x0c } else { 0x08 }
    }

    fn mask_off(&self) -> u16 {
        self.data_off() + 4
    }

    /// Programs `message` as vector 0 of a block of `count` vectors (a power of
    /// two ≤ [`Self::max_vectors`]) and enables MSI with INTx disabled. Vector
    /// `i` is raised by writing `message.data | i`, so the block's data must be
    /// aligned to `count`. MSI is off while address and data change; with
    /// per-vector masking, the enabled vectors are unmasked and the rest masked.
    pub fn enable<C: ConfigAccess + ?Sized>(
        &self,
        access: &C,
        bdf: Bdf,
        message: MsiMessage,
        count: u16,
    ) -> Result<(), MsiError> {
        if !count.is_power_of_two() || count > self.max_vectors() {
            return Err(MsiError::BadVectorCount);
        }
        if message.data > 0xffff {
            return Err(MsiError::DataTooWide);
        }
        if message.data & (u32::from(count) - 1) != 0 {
            return Err(MsiError::DataNotAligned);
        }
        if !self.is64 && message.address >> 32 != 0 {
            return Err(MsiError::AddressTooHigh);
        }
        let ctrl_off = self.offset + 2;
        let ctrl = access.read16(bdf, ctrl_off) & !(MSI_ENABLE | 0x7 << MSI_MME_SHIFT);
        access.write16(bdf, ctrl_off, ctrl);
        access.write32(bdf, self.offset + 4, message.address as u32);
        if self.is64 {
            access.write32(bdf, self.offset + 8, (message.address >> 32) as u32);
        }
        access.write16(bdf, self.data_off(), message.data as u16);
        if self.per_vector_mask {
            access.write32(bdf, self.mask_off(), !((1u64 << count) - 1) as u32);
        }
        disable_intx(access, bdf);
        let mme = (count.trailing_zeros() as u16) << MSI_MME_SHIFT;
        access.write16(bdf, ctrl_off, ctrl | mme | MSI_ENABLE);
        Ok(())
    }

    /// Masks or unmasks vector `index` (per-vector masking only).
    pub fn set_masked<C: ConfigAccess + ?Sized>(
        &self,
        access: &C,
        bdf: Bdf,
        index: u16,
        masked: bool,
    ) -> Result<(), MsiError> {
        if !self.per_vector_mask {
            return Err(MsiError::NoPerVectorMask);
        }
        if index >= self.max_vectors() {
            return Err(MsiError::BadIndex);
        }
        let bits = access.read32(bdf, self.mask_off());
        let bit = 1 << index;
        let new = if masked { bits | bit } else { bits & !bit };
        access.write32(bdf, self.mask_off(), new);
        Ok(())
    }

    /// Turns MSI off (INTx stays disabled until [`enable_intx`]).
    pub fn disable<C: ConfigAccess + ?Sized>(&self, access: &C, bdf: Bdf) {
        let ctrl = access.read16(bdf, self.offset + 2);
        access.write16(bdf, self.offset + 2, ctrl & !MSI_ENABLE);
    }
}

// MSI-X Message Control bits (PCI 3.0 §6.8.2.3).
const MSIX_ENABLE: u16 = 1 << 15;
const MSIX_FUNCTION_MASK: u16 = 1 << 14;

/// An MSI-X capability as read from configuration space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsixCap {
    /// Capability offset.
    pub offset: u16,
    /// Table entries (Table Size + 1, ≤ 2048).
    pub table_size: u16,
    /// BAR holding the table (BIR).
    pub table_bar: u8,
    /// Byte offset of the table in that BAR (8-byte aligned).
    pub table_offset: u32,
    /// BAR holding the pending-bit array.
    pub pba_bar: u8,
    /// Byte offset of the PBA in that BAR.
    pub pba_offset: u32,
}

impl MsixCap {
    /// Reads the capability at `offset` of `bdf` (§6.8.2.4, §6.8.2.5).
    pub fn read<C: ConfigAccess + ?Sized>(access: &C, bdf: Bdf, offset: u16) -> Self {
        let ctrl = access.read16(bdf, offset + 2);
        let table = access.read32(bdf, offset + 4);
        let pba = access.read32(bdf, offset + 8);
        MsixCap {
            offset,
            table_size: (ctrl & 0x7ff) + 1,
            table_bar: (table & 7) as u8,
            table_offset: table & !7,
            pba_bar: (pba & 7) as u8,
            pba_offset: pba & !7,
        }
    }

    /// Sets MSI-X Enable with Function Mask set, and disables INTx: the table
    /// may now be programmed through [`MsixTable`] while nothing can fire.
    pub fn enable_masked<C: ConfigAccess + ?Sized>(&self, access: &C, bdf: Bdf) {
        let ctrl = access.read16(bdf, self.offset + 2);
        disable_intx(access, bdf);
        access.write16(
            bdf,
            self.offset + 2,
            ctrl | MSIX_ENABLE | MSIX_FUNCTION_MASK,
        );
    }

    /// Sets or clears Function Mask, which masks every vector at once.
    pub fn set_function_mask<C: ConfigAccess + ?Sized>(&self, access: &C, bdf: Bdf, masked: bool) {
        let ctrl = access.read16(bdf, self.offset + 2);
        let ctrl = if masked {
            ctrl | MSIX_FUNCTION_MASK
        } else {
            ctrl & !MSIX_FUNCTION_MASK
        };
        access.write16(bdf, self.offset + 2, ctrl);
    }

    /// Turns MSI-X off.
    pub fn disable<C: ConfigAccess + ?Sized>(&self, access: &C, bdf: Bdf) {
        let ctrl = access.read16(bdf, self.offset + 2);
        access.write16(
            bdf,
            self.offset + 2,
            ctrl & !(MSIX_ENABLE | MSIX_FUNCTION_MASK),
        );
    }
}

/// Vector Control bit 0: the entry is masked (§6.8.2.9).
pub const MSIX_VECTOR_MASKED: u32 = 1;

/// The four dwords of an MSI-X table entry (§6.8.2.6–9): Message Address,
/// Message Upper Address, Message Data, Vector Control.
pub const fn msix_entry(message: MsiMessage, masked: bool) -> [u32; 4] {
    [
        message.address as u32,
        (message.address >> 32) as u32,
        message.data,
        if masked { MSIX_VECTOR_MASKED } else { 0 },
    ]
}

/// Entry layout for offset checks (§6.8.2, Figure 6-11).
#[repr(C)]
struct MsixEntryRegs {
    addr_lo: u32,
    addr_hi: u32,
    data: u32,
    vector_control: u32,
}
const _: () = assert!(offset_of!(MsixEntryRegs, addr_lo) == 0x0);
const _: () = assert!(offset_of!(MsixEntryRegs, addr_hi) == 0x4);
const _: () = assert!(offset_of!(MsixEntryRegs, data) == 0x8);
const _: () = assert!(offset_of!(MsixEntryRegs, vector_control) == 0xc);

/// Largest MSI-X table (2048 entries of 16 bytes).
#[repr(C)]
struct MsixTableRegs {
    entries: [MsixEntryRegs; 2048],
}
const _: () = assert!(core::mem::size_of::<MsixTableRegs>() == 0x8000);

/// Largest pending-bit array: 2048 bits as 32 qwords (§6.8.2.10).
#[repr(C)]
struct PbaRegs {
    bits: [u64; 32],
}

/// The MSI-X table and PBA of one function, mapped from its BAR(s).
pub struct MsixTable {
    table: Mmio<MsixTableRegs>,
    pba: Mmio<PbaRegs>,
    entries: u16,
}

impl MsixTable {
    /// Wraps a table of `entries` entries at virtual address `table` and its PBA
    /// at `pba` (BAR CPU address + the offsets in [`MsixCap`], mapped).
    ///
    /// # Safety
    /// `table` maps at least `16 * entries` bytes and `pba` at least
    /// `8 * ceil(entries / 64)` bytes of the function's BAR as device memory,
    /// 8-byte aligned, valid for the life of the value; memory decode is on; no
    /// one else writes the table meanwhile.
    pub unsafe fn new(table: usize, pba: usize, entries: u16) -> Self {
        MsixTable {
            // SAFETY: the caller maps the table; accesses are bounded by `entries`.
            table: unsafe { Mmio::new(table) },
            // SAFETY: as above for the PBA.
            pba: unsafe { Mmio::new(pba) },
            entries: entries.min(2048),
        }
    }

    fn entry(&self, index: u16) -> Result<usize, MsiError> {
        if index >= self.entries {
            return Err(MsiError::BadIndex);
        }
        Ok(usize::from(index) * 16)
    }

    /// Writes `message` into entry `index`, leaving it masked: the entry is
    /// masked first so the device never sees a half-written address/data pair
    /// (§6.8.2.9). Unmask with [`Self::unmask`].
    pub fn program(&self, index: u16, message: MsiMessage) -> Result<(), MsiError> {
        let base = self.entry(index)?;
        let words = msix_entry(message, true);
        self.table.write32(base + 0xc, MSIX_VECTOR_MASKED);
        for (i, w) in words.iter().enumerate().take(3) {
            self.table.write32(base + 4 * i, *w);
        }
        Ok(())
    }

    /// Masks entry `index`.
    pub fn mask(&self, index: u16) -> Result<(), MsiError> {
        let base = self.entry(index)?;
        let vc = self.table.read32(base + 0xc);
        self.table.write32(base + 0xc, vc | MSIX_VECTOR_MASKED);
        Ok(())
    }

    /// Unmasks entry `index`; a pending message is then sent.
    pub fn unmask(&self, index: u16) -> Result<(), MsiError> {
        let base = self.entry(index)?;
        let vc = self.table.read32(base + 0xc);
        self.table.write32(base + 0xc, vc & !MSIX_VECTOR_MASKED);
        Ok(())
    }

    /// Reads entry `index` back as `[addr_lo, addr_hi, data, vector_control]`.
    pub fn read_entry(&self, index: u16) -> Result<[u32; 4], MsiError> {
        let base = self.entry(index)?;
        Ok(core::array::from_fn(|w| self.table.read32(base + 4 * w)))
    }

    /// Whether entry `index` has a message pending (masked while it fired).
    pub fn is_pending(&self, index: u16) -> Result<bool, MsiError> {
        self.entry(index)?;
        let word = self.pba.read64(usize::from(index / 64) * 8);
        Ok(word & (1 << (index % 64)) != 0)
    }

    /// Number of entries.
    pub fn len(&self) -> u16 {
        self.entries
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

/// Sets command bit 10 (Interrupt Disable).
pub fn disable_intx<C: ConfigAccess + ?Sized>(access: &C, bdf: Bdf) {
    let cmd = access.command(bdf);
    access.set_command(bdf, cmd | Command::INTX_DISABLE);
}

/// Clears command bit 10 so the function may assert INTx again.
pub fn enable_intx<C: ConfigAccess + ?Sized>(access: &C, bdf: Bdf) {
    let cmd = access.command(bdf);
    access.set_command(bdf, cmd - Command::INTX_DISABLE);
}

/// How a function will interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterruptKind {
    /// MSI-X with this capability.
    MsiX(MsixCap),
    /// MSI with this capability.
    Msi(MsiCap),
    /// Legacy INTx on this pin (1..=4), level-triggered, possibly shared.
    Intx {
        /// Pin, 1 = INTA#.
        pin: u8,
    },
    /// The function cannot interrupt.
    None,
}

/// What the driver asked for and what the platform can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanRequest {
    /// Interrupt sources the driver would like separate vectors for (≥ 1).
    pub wanted: u16,
    /// An MSI controller exists (v2m frame or ITS) and MSI-X may be used.
    pub allow_msix: bool,
    /// An MSI controller exists and plain MSI may be used.
    pub allow_msi: bool,
}

/// The chosen interrupt mechanism and how many vectors to allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterruptPlan {
    /// Mechanism.
    pub kind: InterruptKind,
    /// Vectors to allocate (MSI: a power of two; INTx: 1; none: 0).
    pub vectors: u16,
}

impl InterruptPlan {
    /// Chooses MSI-X → MSI → INTx for `func` (PCI 3.0 §6.8), reading the
    /// capabilities the scan found. Never fails for lack of vectors: a device
    /// offering fewer than `wanted` gets fewer, and [`Self::vector_for`] folds
    /// the driver's sources onto them. A function whose capability list was
    /// rejected gets INTx at most.
    pub fn choose<C: ConfigAccess + ?Sized>(
        access: &C,
        func: &PciFunction,
        req: PlanRequest,
    ) -> InterruptPlan {
        let wanted = req.wanted.max(1);
        let Ok(caps) = func.caps else {
            return InterruptPlan::intx(func);
        };
        if let (true, Some(off)) = (req.allow_msix, caps.msix) {
            let cap = MsixCap::read(access, func.bdf, off);
            return InterruptPlan {
                kind: InterruptKind::MsiX(cap),
                vectors: wanted.min(cap.table_size),
            };
        }
        if let (true, Some(off)) = (req.allow_msi, caps.msi) {
            let cap = MsiCap::read(access, func.bdf, off);
            let n = wanted.min(cap.max_vectors());
            // Largest power of two ≤ n: MSI blocks are powers of two (§6.8.1.3).
            let vectors = 1 << (15 - n.leading_zeros());
            return InterruptPlan {
                kind: InterruptKind::Msi(cap),
                vectors,
            };
        }
        InterruptPlan::intx(func)
    }

    fn intx(func: &PciFunction) -> InterruptPlan {
        match func.interrupt_pin {
            pin @ 1..=4 => InterruptPlan {
                kind: InterruptKind::Intx { pin },
                vectors: 1,
            },
            _ => InterruptPlan {
                kind: InterruptKind::None,
                vectors: 0,
            },
        }
    }

    /// The vector index driver source `source` uses: sources beyond the vector
    /// count share vectors round-robin.
    pub fn vector_for(&self, source: u16) -> Option<u16> {
        (self.vectors != 0).then(|| source % self.vectors)
    }

    /// Falls back from a multi-vector MSI block to a single vector (when the
    /// allocator cannot give an aligned contiguous block).
    pub fn single(self) -> InterruptPlan {
        InterruptPlan {
            vectors: self.vectors.min(1),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::caps::CapSummary;
    use crate::pci::fake::FakeConfigSpace;
    use crate::pci::scan::scan;
    use heapless::Vec;

    const V2M: MsiMessage = MsiMessage {
        address: 0x0802_0040,
        data: 80,
    };

    fn one(cfg: &FakeConfigSpace) -> PciFunction {
        let mut out: Vec<PciFunction, 2> = Vec::new();
        scan(cfg, 0, 0, &mut out);
        out.pop().unwrap()
    }

    fn bdf() -> Bdf {
        Bdf::new(0, 2, 0).unwrap()
    }

    #[test]
    fn msix_entry_encoding_exact_bytes() {
        let msg = MsiMessage {
            address: 0x0000_0080_0802_0040,
            data: 0x5a,
        };
        let words = msix_entry(msg, true);
        assert_eq!(words, [0x0802_0040, 0x80, 0x5a, 1]);
        // Program through the MMIO path into fake BAR memory and check bytes.
        let mut table = std::vec![0u64; 4 * 2];
        let mut pba = std::vec![0u64; 1];
        // SAFETY: both buffers are 8-byte aligned, outlive `t`, and cover
        // 4 entries (64 bytes) and one PBA qword.
        let t =
            unsafe { MsixTable::new(table.as_mut_ptr() as usize, pba.as_mut_ptr() as usize, 4) };
        t.program(2, msg).unwrap();
        let bytes: std::vec::Vec<u8> = table.iter().flat_map(|q| q.to_le_bytes()).collect();
        assert_eq!(
            &bytes[32..48],
            &[
                0x40, 0x00, 0x02, 0x08, 0x80, 0, 0, 0, 0x5a, 0, 0, 0, 1, 0, 0, 0
            ]
        );
        assert!(bytes[..32].iter().chain(&bytes[48..]).all(|&b| b == 0));
        t.unmask(2).unwrap();
        assert_eq!(table[5] >> 32, 0, "vector control cleared");
        t.mask(2).unwrap();
        assert_eq!(table[5], 1 << 32 | 0x5a);
        assert_eq!(t.program(4, msg), Err(MsiError::BadIndex));
        assert_eq!(t.unmask(9), Err(MsiError::BadIndex));
        pba[0] = 1 << 2;
        assert_eq!((t.is_pending(2), t.is_pending(1)), (Ok(true), Ok(false)));
    }

    #[test]
    fn msix_capability_enable_and_function_mask() {
        let cfg = FakeConfigSpace::new();
        cfg.add_endpoint(bdf(), 0x1af4, 0x1000, [2, 0, 0]);
        cfg.add_msix(bdf(), 0x98, 3, (1, 0), (1, 0x800));
        let cap = MsixCap::read(&cfg, bdf(), 0x98);
        assert_eq!(
            cap,
            MsixCap {
                offset: 0x98,
                table_size: 3,
                table_bar: 1,
                table_offset: 0,
                pba_bar: 1,
                pba_offset: 0x800
            }
        );
        cap.enable_masked(&cfg, bdf());
        assert_eq!(cfg.read16(bdf(), 0x9a), 0xc002);
        assert!(cfg.command(bdf()).contains(Command::INTX_DISABLE));
        cap.set_function_mask(&cfg, bdf(), false);
        assert_eq!(cfg.read16(bdf(), 0x9a), 0x8002);
        cap.disable(&cfg, bdf());
        assert_eq!(cfg.read16(bdf(), 0x9a), 0x0002);
        enable_intx(&cfg, bdf());
        assert!(!cfg.command(bdf()).contains(Command::INTX_DISABLE));
    }

    #[test]
    fn msi_64bit_multi_message_with_masks() {
        let cfg = FakeConfigSpace::new();
        cfg.add_endpoint(bdf(), 0x1234, 0x11e8, [0, 0xff, 0]);
        cfg.add_msi(bdf(), 0x40, 3, true, true);
        let cap = MsiCap::read(&cfg, bdf(), 0x40);
        assert_eq!(
            (cap.is64, cap.per_vector_mask, cap.max_vectors()),
            (true, true, 8)
        );
        let msg = MsiMessage {
            address: 0x0000_0001_0802_0040,
            data: 96,
        };
        cap.enable(&cfg, bdf(), msg, 4).unwrap();
        assert_eq!(cfg.read32(bdf(), 0x44), 0x0802_0040);
        assert_eq!(cfg.read32(bdf(), 0x48), 0x1);
        assert_eq!(cfg.read16(bdf(), 0x4c), 96);
        // Enable, MME = log2(4) = 2, plus the read-only capability bits.
        assert_eq!(
            cfg.read16(bdf(), 0x42),
            0x0001 | 2 << 4 | 3 << 1 | 1 << 7 | 1 << 8
        );
        assert_eq!(cfg.read32(bdf(), 0x50), 0xf0, "vectors 4..8 masked");
        assert!(cfg.command(bdf()).contains(Command::INTX_DISABLE));
        cap.set_masked(&cfg, bdf(), 1, true).unwrap();
        assert_eq!(cfg.read32(bdf(), 0x50), 0xf2);
        assert_eq!(
            cap.set_masked(&cfg, bdf(), 8, true),
            Err(MsiError::BadIndex)
        );
        // Refusals.
        let bad = MsiMessage { data: 98, ..msg };
        assert_eq!(
            cap.enable(&cfg, bdf(), bad, 4),
            Err(MsiError::DataNotAligned)
        );
        assert_eq!(
            cap.enable(&cfg, bdf(), msg, 16),
            Err(MsiError::BadVectorCount)
        );
        assert_eq!(
            cap.enable(&cfg, bdf(), msg, 3),
            Err(MsiError::BadVectorCount)
        );
        cap.disable(&cfg, bdf());
        assert_eq!(cfg.read16(bdf(), 0x42) & 1, 0);
    }

    #[test]
    fn msi_32bit_like_edu() {
        let cfg = FakeConfigSpace::new();
        cfg.add_endpoint(bdf(), 0x1234, 0x11e8, [0, 0xff, 0]);
        cfg.add_msi(bdf(), 0x40, 0, false, false);
        let cap = MsiCap::read(&cfg, bdf(), 0x40);
        cap.enable(&cfg, bdf(), V2M, 1).unwrap();
        assert_eq!(cfg.read32(bdf(), 0x44), 0x0802_0040);
        assert_eq!(cfg.read16(bdf(), 0x48), 80);
        assert_eq!(cfg.read16(bdf(), 0x42) & 0x71, 1);
        let high = MsiMessage {
            address: 1 << 32,
            data: 0,
        };
        assert_eq!(
            cap.enable(&cfg, bdf(), high, 1),
            Err(MsiError::AddressTooHigh)
        );
        assert_eq!(
            cap.set_masked(&cfg, bdf(), 0, true),
            Err(MsiError::NoPerVectorMask)
        );
        let wide = MsiMessage {
            data: 0x1_0000,
            ..V2M
        };
        assert_eq!(cap.enable(&cfg, bdf(), wide, 1), Err(MsiError::DataTooWide));
    }

    #[test]
    fn plan_prefers_msix_then_msi_then_intx() {
        let cfg = FakeConfigSpace::new();
        cfg.add_endpoint(bdf(), 0x1af4, 0x1000, [2, 0, 0]);
        cfg.set_interrupt_pin(bdf(), 1);
        cfg.add_msi(bdf(), 0x40, 2, true, false);
        cfg.add_msix(bdf(), 0x60, 3, (1, 0), (1, 0x800));
        let f = one(&cfg);
        let all = PlanRequest {
            wanted: 5,
            allow_msix: true,
            allow_msi: true,
        };
        let p = InterruptPlan::choose(&cfg, &f, all);
        assert!(matches!(p.kind, InterruptKind::MsiX(c) if c.table_size == 3));
        // Fewer vectors than wanted: shared, not a failure.
        assert_eq!(p.vectors, 3);
        let shared: std::vec::Vec<_> = (0..5).map(|s| p.vector_for(s).unwrap()).collect();
        assert_eq!(shared, [0, 1, 2, 0, 1]);
        let p = InterruptPlan::choose(
            &cfg,
            &f,
            PlanRequest {
                allow_msix: false,
                ..all
            },
        );
        // MSI offers 4; 5 wanted → the power-of-two block of 4.
        assert!(matches!(p.kind, InterruptKind::Msi(c) if c.max_vectors() == 4));
        assert_eq!(p.vectors, 4);
        let p = InterruptPlan::choose(
            &cfg,
            &f,
            PlanRequest {
                wanted: 3,
                allow_msix: false,
                ..all
            },
        );
        assert_eq!(p.vectors, 2);
        assert_eq!(p.single().vectors, 1);
        let none = PlanRequest {
            wanted: 2,
            allow_msix: false,
            allow_msi: false,
        };
        let p = InterruptPlan::choose(&cfg, &f, none);
        assert_eq!((p.kind, p.vectors), (InterruptKind::Intx { pin: 1 }, 1));
        assert_eq!(p.vector_for(1), Some(0));
    }

    #[test]
    fn plan_without_caps_or_pin() {
        let cfg = FakeConfigSpace::new();
        cfg.add_endpoint(bdf(), 0x1234, 0x11e8, [0, 0xff, 0]);
        let mut f = one(&cfg);
        assert_eq!(f.caps, Ok(CapSummary::default()));
        let req = PlanRequest {
            wanted: 1,
            allow_msix: true,
            allow_msi: true,
        };
        let p = InterruptPlan::choose(&cfg, &f, req);
        assert_eq!(
            (p.kind, p.vectors, p.vector_for(0)),
            (InterruptKind::None, 0, None)
        );
        // A rejected capability list falls back to INTx even if MSI were there.
        f.interrupt_pin = 1;
        f.caps = Err(crate::pci::caps::CapListError::Loop { at: 0x40 });
        cfg.add_msi(bdf(), 0x40, 0, false, false);
        let p = InterruptPlan::choose(&cfg, &f, req);
        assert_eq!(p.kind, InterruptKind::Intx { pin: 1 });
    }
}
