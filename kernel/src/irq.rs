//! Interrupt dispatch through capabilities: INTID → line → owner, never a `match`.
//!
//! The kernel's interrupt lines are minted by one `caps::irq::IrqControl`
//! covering SGIs, PPIs and SPIs. The exception path acknowledges, hands the
//! INTID to `IrqControl::handle_irq` (which masks the line, marks it `Fired`,
//! counts it and signals EOI), and posts to the owner's notification. Driver code
//! never runs in hard-IRQ context; an owner re-enables its line only through
//! `IrqLine<Draining>::rearm(Quiesced)`. The one kernel-internal owner is the
//! timer tick, run inline. Spurious INTIDs and interrupts nobody armed are
//! counted and stay masked, never looped on. See docs/interrupts.md.

use caps::irq::{
    ControlToken, Dispatch, IrqChip, IrqControl, IrqLine, LineStats, LineStatus, Masked, Owner,
};
use caps::lock::IrqsMasked;
use caps::msi::{MsiRange, VectorAllocator};
use core::sync::atomic::{AtomicU64, Ordering};

use drivers::irqchip::its::FIRST_LPI;
use drivers::irqchip::{InterruptController, SPECIAL_START, Trigger};

use crate::arch::vectors::TrapFrame;
use crate::sched::{self, NotifyId};
use crate::sync::IrqLock;
use crate::time;

/// INTIDs the control covers: SGIs, PPIs and SPIs (LPIs get their own control).
pub const LINES: usize = SPECIAL_START as usize;
/// LPIs the ITS hands out, INTIDs 8192.. (their own control, see `init_lpis`).
pub const LPIS: usize = 256;

/// The owner token of the timer tick, the one handler run in IRQ context.
pub const TICK_OWNER: Owner = Owner(u32::MAX);

/// The owner token that makes the IRQ path post bit 0 to notification `n`.
pub fn owner_of(n: NotifyId) -> Owner {
    owner_bit(n, 0)
}

/// Bits of an owner token that name the notification; the 6 above name the bit posted.
const NOTIFY_MASK: u32 = (1 << 24) - 1;

/// The owner token that makes the IRQ path post bit `bit` (< 64) to notification `n`: a
/// user driver's lines each set their own bit of the process's notification word.
pub fn owner_bit(n: NotifyId, bit: u8) -> Owner {
    debug_assert!(n.0 <= NOTIFY_MASK, "notification ids stay below 2^24");
    Owner((n.0 & NOTIFY_MASK) | u32::from(bit & 63) << 24)
}

/// Where a line's interrupt is posted: the notification and the bits.
fn post_target(owner: Owner) -> (NotifyId, u64) {
    (NotifyId(owner.0 & NOTIFY_MASK), 1 << ((owner.0 >> 24) & 63))
}

/// The line's kind, for counters and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Software-generated.
    Sgi,
    /// Per-CPU peripheral.
    Ppi,
    /// Shared peripheral, edge-triggered (MSIs through v2m land here).
    SpiEdge,
    /// Shared peripheral, level-triggered (wired lines, INTx).
    SpiLevel,
    /// Locality-specific (an MSI translated by the ITS; edge-only).
    Lpi,
}

impl Kind {
    fn of(intid: u32, trigger: Trigger) -> Kind {
        match (intid, trigger) {
            (FIRST_LPI.., _) => Kind::Lpi,
            (0..16, _) => Kind::Sgi,
            (16..32, _) => Kind::Ppi,
            (_, Trigger::Edge) => Kind::SpiEdge,
            (_, Trigger::Level) => Kind::SpiLevel,
        }
    }

    /// Short name as printed by `irqs`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sgi => "SGI",
            Kind::Ppi => "PPI",
            Kind::SpiEdge => "SPI-edge",
            Kind::SpiLevel => "SPI-level",
            Kind::Lpi => "LPI",
        }
    }
}

static CONTROL: spin::Once<IrqControl<LINES>> = spin::Once::new();
static LPI_CONTROL: spin::Once<IrqControl<LPIS>> = spin::Once::new();
static NAMES: IrqLock<heapless::Vec<(u32, &'static str), 128>> = IrqLock::new(heapless::Vec::new());
static SPURIOUS: AtomicU64 = AtomicU64::new(0);
/// Reschedule IPIs taken (all CPUs).
pub static IPIS: AtomicU64 = AtomicU64::new(0);

/// Initialises the interrupt controller (boot CPU, once) and its `IrqControl`, made from
/// the chip's one control token.
pub fn init(gic: &'static dyn InterruptController, chip: &'static dyn IrqChip) {
    gic.init();
    gic.init_cpu();
    crate::gic::set(gic);
    match ControlToken::take(chip) {
        Some(token) => {
            CONTROL.call_once(|| IrqControl::new(token, 0));
        }
        None => log::error!("the GIC's IrqControl was already taken: no interrupts"),
    }
}

/// A secondary CPU's interrupt setup: its CPU interface (GICv2) or redistributor and
/// system registers (GICv3), and its own copy of the tick PPI enabled.
pub fn init_secondary() {
    let Some(gic) = chip() else { return };
    gic.init_cpu();
    if let Some(tick) = crate::timer::intid() {
        gic.enable(tick);
    }
}

/// Creates the LPI control over `chip` (the ITS), INTIDs `FIRST_LPI..FIRST_LPI + LPIS`.
pub fn init_lpis(chip: &'static dyn IrqChip) {
    match ControlToken::take(chip) {
        Some(token) => {
            LPI_CONTROL.call_once(|| IrqControl::new(token, FIRST_LPI));
        }
        None => log::error!("the ITS's IrqControl was already taken: no LPIs"),
    }
}

/// Carves the vector allocator of an MSI target (a v2m frame's SPIs, the ITS's LPIs)
/// from the control that owns those INTIDs: once per INTID (`EBUSY` after).
pub fn msi_vectors(range: MsiRange) -> Result<VectorAllocator, abi::Error> {
    if range.base >= FIRST_LPI {
        LPI_CONTROL
            .get()
            .ok_or(abi::Error::EBUSY)?
            .msi_vectors(range)
    } else {
        CONTROL.get().ok_or(abi::Error::EBUSY)?.msi_vectors(range)
    }
}

pub use crate::gic::chip;

/// Why a line could not be minted.
pub type MintError = abi::Error;

/// Mints the capability for a wired interrupt `intid`, owned by `owner`: configured,
/// masked, at most one per INTID. `name` labels it in `irqs`.
pub fn mint(
    intid: u32,
    trigger: Trigger,
    owner: Owner,
    name: &'static str,
) -> Result<IrqLine<Masked>, MintError> {
    let control = CONTROL.get().ok_or(abi::Error::EBUSY)?;
    if chip().is_none_or(|g| intid > g.max_intid()) {
        return Err(abi::Error::EINVAL);
    }
    let line = control.mint(intid, trigger, owner)?;
    record_name(intid, name);
    log::debug!("irq: INTID {intid} ({name}, {trigger}) minted, masked");
    Ok(line)
}

fn record_name(intid: u32, name: &'static str) {
    let mut names = NAMES.lock();
    names.retain(|(i, _)| *i != intid);
    let _ = names.push((intid, name));
}

/// Mints the line for an allocated MSI vector (edge-triggered); the line owns the vector.
pub fn mint_msi(
    vector: caps::msi::MsiVector,
    owner: Owner,
    name: &'static str,
) -> Result<IrqLine<Masked>, (caps::msi::MsiVector, MintError)> {
    let intid = vector.intid();
    if intid >= FIRST_LPI {
        // The previous owner's pending LPI was dropped by DISCARD when its vector was freed.
        let Some(control) = LPI_CONTROL.get() else {
            return Err((vector, abi::Error::EBUSY));
        };
        let line = control.mint_msi(vector, owner)?;
        record_name(intid, name);
        return Ok(line);
    }
    let Some(control) = CONTROL.get() else {
        return Err((vector, abi::Error::EBUSY));
    };
    let line = control.mint_msi(vector, owner)?;
    // MSI vectors are reused: an edge latched while the previous owner's line was masked
    // must not fire at the new owner, whose device has not even been given the message
    // yet. (Clearing an owner's *own* pending edge would lose it; this is not that.)
    if let Some(gic) = chip() {
        gic.clear_pending(intid);
    }
    record_name(intid, name);
    Ok(line)
}

/// The IRQ exception path, IRQs masked. Returns the frame to resume (the scheduler may
/// switch).
pub fn handle(frame: &mut TrapFrame, masked: &IrqsMasked) -> *mut TrapFrame {
    let (Some(gic), Some(control)) = (chip(), CONTROL.get()) else {
        return frame;
    };
    let intid = gic.ack();
    let cpu = crate::arch::cpu::index();
    // Kernel-internal per-CPU interrupts, outside the line capabilities: the reschedule
    // IPI, and the tick on CPUs other than the boot CPU (see `timer`).
    if intid == sched::RESCHEDULE_SGI {
        IPIS.fetch_add(1, Ordering::Relaxed);
        gic.eoi(intid);
        return sched::on_interrupt_exit(frame, masked);
    }
    if cpu != 0 && Some(intid) == crate::timer::intid() {
        crate::timer::on_secondary_interrupt(masked);
        gic.eoi(intid);
        return sched::on_interrupt_exit(frame, masked);
    }
    let dispatch = match (intid, LPI_CONTROL.get()) {
        (FIRST_LPI.., Some(lpis)) => lpis.handle_irq(intid, cpu, time::now_ns(), masked),
        (SPECIAL_START.., _) => {
            // 1020..=1023 are not acknowledged interrupts; anything else up here (an LPI
            // with no ITS, an extended range we never enable) is dropped with its EOI.
            if intid > 1023 {
                gic.eoi(intid);
            }
            SPURIOUS.fetch_add(1, Ordering::Relaxed);
            return sched::on_interrupt_exit(frame, masked);
        }
        _ => control.handle_irq(intid, cpu, time::now_ns(), masked),
    };
    match dispatch {
        Dispatch::Notify { owner, .. } if owner == TICK_OWNER => crate::timer::on_interrupt(masked),
        Dispatch::Notify { owner, .. } => {
            // A post to a destroyed notification is a stale wake-up: harmless.
            let (notify, bits) = post_target(owner);
            let _ = sched::notify_post(notify, bits);
        }
        Dispatch::Unowned { .. } => {}
    }
    sched::on_interrupt_exit(frame, masked)
}

/// One line's counters and state, for `irqs` (and `/proc/interrupts` later).
#[derive(Debug, Clone, Copy)]
pub struct LineReport {
    /// INTID.
    pub intid: u32,
    /// Kind.
    pub kind: Kind,
    /// Name given at mint.
    pub name: &'static str,
    /// The capability layer's view: state, owner, per-CPU counts.
    pub stats: LineStats,
}

/// Calls `f` for each minted line.
pub fn for_each_line(mut f: impl FnMut(LineReport)) {
    let names = NAMES.lock().clone();
    for (intid, name) in names {
        if let Some(stats) = stats(intid).filter(|s| s.status != LineStatus::Free) {
            let kind = Kind::of(intid, stats.trigger);
            f(LineReport {
                intid,
                kind,
                name,
                stats,
            });
        }
    }
}

/// The line's counters, if `intid` is in range.
pub fn stats(intid: u32) -> Option<LineStats> {
    if intid >= FIRST_LPI {
        return LPI_CONTROL.get()?.stats(intid);
    }
    CONTROL.get()?.stats(intid)
}

/// Deliveries of `intid` to its owner on all CPUs.
pub fn count(intid: u32) -> u64 {
    stats(intid).map_or(0, |s| s.per_cpu.iter().sum())
}

/// Every edge-triggered SPI or LPI that was ever delivered, with its total count across
/// all owners it had (MSI vectors are reused): `(intid, deliveries)`.
pub fn edge_spi_totals() -> alloc::vec::Vec<(u32, u64)> {
    (32..SPECIAL_START)
        .chain(FIRST_LPI..FIRST_LPI + LPIS as u32)
        .filter_map(|intid| {
            let s = stats(intid)?;
            let n: u64 = s.per_cpu.iter().sum();
            (s.trigger == Trigger::Edge && n > 0).then_some((intid, n))
        })
        .collect()
}

/// (spurious acknowledges, interrupts that found no armed line).
pub fn anomalies() -> (u64, u64) {
    let unowned = CONTROL.get().map_or(0, IrqControl::unowned)
        + LPI_CONTROL.get().map_or(0, IrqControl::unowned);
    (SPURIOUS.load(Ordering::Relaxed), unowned)
}
