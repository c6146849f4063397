//! Bringing an ITS up: `GITS_TYPER` checks, a firmware-enabled ITS quiesced, the tables.
//!
//! Everything that can go wrong on the driver's side of a probe (a `GITS_TYPER` this driver
//! cannot use, a table the ITS will not take, memory the HAL cannot give) is checked here
//! before anything is enabled, so an error frees memory no device was told about. Split
//! from `its.rs`, which runs the ITS once it is up (command queue, vector mapping, the
//! `IrqChip` for LPIs). IHI 0069H §12.19.

use core::hint::spin_loop;

use caps::dma::{DmaBuffer, DmaHal};

use super::regs::*;
use super::{COLLECTIONS, FIRST_LPI, ItsError, LPI_RES1};
use crate::irqchip::DEFAULT_PRIORITY;
use crate::mmio::Registers;

/// Bits needed to number `n` things (at least 1).
pub(super) const fn bits_for(n: u64) -> u32 {
    if n <= 2 {
        1
    } else {
        64 - (n - 1).leading_zeros()
    }
}

/// `GITS_TYPER` checked against what this driver needs.
pub(super) fn check_typer(typer: GitsTyper, lpis: u32) -> Result<(), ItsError> {
    let bad = ItsError::BadTyper(typer.into_bits());
    let event_bits = bits_for(u64::from(lpis));
    if !typer.physical() || typer.pta() || u32::from(typer.id_bits()) + 1 < event_bits {
        return Err(bad);
    }
    Ok(())
}

/// Disables an ITS firmware left enabled and waits (bounded) for `Quiescent`.
pub(super) fn quiesce(regs: &impl Registers, poll_limit: u32) -> Result<(), ItsError> {
    if regs.read32(GITS_CTLR) & CTLR_ENABLED == 0 {
        return Ok(());
    }
    regs.write32(GITS_CTLR, 0);
    for _ in 0..poll_limit {
        if regs.read32(GITS_CTLR) & CTLR_QUIESCENT != 0 {
            return Ok(());
        }
        spin_loop();
    }
    Err(ItsError::NotQuiescent)
}

/// The LPI property table (one byte per LPI from 8192, priority set, disabled)
/// and the pending table (one bit per INTID, 64 KiB aligned, zeroed).
pub(super) fn lpi_tables<H: DmaHal>(
    hal: &H,
    lpi_bits: u32,
    lpis: u32,
) -> Result<(H::Buffer, H::Buffer), ItsError> {
    let ids = 1usize << lpi_bits;
    let mut prop = hal.allocate(ids - FIRST_LPI as usize, 4096, u64::MAX)?;
    let byte = (DEFAULT_PRIORITY & 0xfc) | LPI_RES1;
    prop.bytes_mut()[..lpis as usize].fill(byte);
    hal.sync_for_device(&prop);
    let pending = hal.allocate(ids / 8, 0x1_0000, u64::MAX)?;
    hal.sync_for_device(&pending);
    Ok((prop, pending))
}

/// Programs every `GITS_BASER<n>` of type Devices or Collections with a flat
/// table for `device_ids` devices / `COLLECTIONS` collections, in the page size
/// the ITS keeps (we ask for 4 KiB).
pub(super) fn setup_tables<H: DmaHal>(
    regs: &impl Registers,
    hal: &H,
    typer: GitsTyper,
    device_ids: u64,
) -> Result<[Option<H::Buffer>; 8], ItsError> {
    let mut held: [Option<H::Buffer>; 8] = core::array::from_fn(|_| None);
    let (mut devices, mut collections) = (false, false);
    for n in 0..8u8 {
        let off = GITS_BASER + 8 * usize::from(n);
        let cur = GitsBaser::from_bits(regs.read64(off));
        let ids = match TableType::from_bits(cur.ty()) {
            TableType::Devices => device_ids,
            TableType::Collections => COLLECTIONS,
            _ => continue,
        };
        // Page_Size may be read-only: ask for 4 KiB, use what sticks.
        regs.write64(off, cur.with_valid(false).with_page_size(0).into_bits());
        let page = GitsBaser::from_bits(regs.read64(off)).page_bytes();
        let entry = u64::from(cur.entry_size()) + 1;
        let bytes = (ids * entry).next_multiple_of(page as u64) as usize;
        let pages = bytes / page;
        if pages == 0 || pages > 256 {
            return Err(ItsError::TableTooLarge);
        }
        let table = hal.allocate(bytes, page, (1 << 48) - 1)?;
        hal.sync_for_device(&table);
        let want = cur
            .with_valid(true)
            .with_indirect(false)
            .with_page_size(page_size_field(page))
            .with_pa(table.paddr() >> 12)
            .with_size((pages - 1) as u8)
            .with_inner_cache(CACHE_WAWB)
            .with_shareability(INNER_SHAREABLE);
        regs.write64(off, want.into_bits());
        let got = GitsBaser::from_bits(regs.read64(off));
        // Shareability and cacheability may be downgraded; the rest must stick.
        let strip = |b: GitsBaser| {
            b.with_shareability(0)
                .with_inner_cache(0)
                .with_outer_cache(0)
        };
        if strip(got) != strip(want) {
            return Err(ItsError::TableRejected(n, got.into_bits()));
        }
        match TableType::from_bits(cur.ty()) {
            TableType::Devices => devices = true,
            _ => collections = true,
        }
        held[usize::from(n)] = Some(table);
    }
    if !devices || (!collections && typer.hcc() == 0) {
        return Err(ItsError::MissingTable);
    }
    Ok(held)
}
