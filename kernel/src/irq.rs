//! Interrupt dispatch by registration: INTID → owner, never a `match` on devices.
//!
//! The exception path acknowledges, looks the INTID up, and either runs a tiny
//! kernel-internal handler (the timer tick) or masks the line and posts to the
//! owner's notification; then EOI. Driver code never runs in hard-IRQ context,
//! and an owner re-enables its line only when it has drained the device.
//! Spurious INTIDs and interrupts nobody owns are counted and masked, never
//! looped on. See docs/interrupts.md.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use drivers::irqchip::{InterruptController, SPECIAL_START, Trigger};

use crate::arch::vectors::TrapFrame;
use crate::sched::{self, MAX_CPUS, NotifyId};
use crate::sync::IrqLock;

/// What happens when a line fires.
#[derive(Debug, Clone, Copy)]
pub enum Handler {
    /// A kernel-internal handler run in IRQ context (the timer tick only).
    Inline(fn()),
    /// Mask the line and post to this notification; the owner re-enables it.
    Notify(NotifyId),
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
}

impl Kind {
    fn of(intid: u32, trigger: Trigger) -> Kind {
        match (intid, trigger) {
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
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Line {
    intid: u32,
    handler: Handler,
    kind: Kind,
    owner: &'static str,
    count: [u64; MAX_CPUS],
}

/// Registration failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqError {
    /// No interrupt controller yet.
    NoController,
    /// INTID out of range for this GIC.
    OutOfRange,
    /// Someone already owns the line.
    Busy,
}

static CHIP: spin::Once<&'static dyn InterruptController> = spin::Once::new();
static LINES: IrqLock<Vec<Line>> = IrqLock::new(Vec::new());
static SPURIOUS: AtomicU64 = AtomicU64::new(0);
static UNOWNED: AtomicU64 = AtomicU64::new(0);

/// Installs the interrupt controller (boot CPU, once) and initialises it.
pub fn init(chip: &'static dyn InterruptController) {
    chip.init();
    chip.init_cpu();
    CHIP.call_once(|| chip);
}

/// The interrupt controller.
pub fn chip() -> Option<&'static dyn InterruptController> {
    CHIP.get().copied()
}

/// Gives `intid` to `owner`; the line stays masked until `unmask`.
pub fn register(
    intid: u32,
    trigger: Trigger,
    handler: Handler,
    owner: &'static str,
) -> Result<(), IrqError> {
    let chip = chip().ok_or(IrqError::NoController)?;
    if intid > chip.max_intid() {
        return Err(IrqError::OutOfRange);
    }
    let mut lines = LINES.lock();
    if lines.iter().any(|l| l.intid == intid) {
        return Err(IrqError::Busy);
    }
    chip.disable(intid);
    chip.set_trigger(intid, trigger);
    chip.set_priority(intid, drivers::irqchip::DEFAULT_PRIORITY);
    lines.push(Line {
        intid,
        handler,
        kind: Kind::of(intid, trigger),
        owner,
        count: [0; MAX_CPUS],
    });
    Ok(())
}

/// Releases `intid`: masked and forgotten.
pub fn unregister(intid: u32) {
    if let Some(chip) = chip() {
        chip.disable(intid);
    }
    LINES.lock().retain(|l| l.intid != intid);
}

/// Enables delivery of `intid` (an owner re-arming after draining its device).
pub fn unmask(intid: u32) {
    if let Some(chip) = chip() {
        chip.enable(intid);
    }
}

/// Disables delivery of `intid`.
pub fn mask(intid: u32) {
    if let Some(chip) = chip() {
        chip.disable(intid);
    }
}

/// The IRQ exception path. Returns the frame to resume (the scheduler may switch).
pub fn handle(frame: &mut TrapFrame) -> *mut TrapFrame {
    let Some(chip) = chip() else {
        return frame;
    };
    let intid = chip.ack();
    if intid >= SPECIAL_START {
        SPURIOUS.fetch_add(1, Ordering::Relaxed);
        return sched::on_interrupt_exit(frame);
    }
    let handler = {
        let mut lines = LINES.lock();
        lines.iter_mut().find(|l| l.intid == intid).map(|l| {
            l.count[0] += 1;
            l.handler
        })
    };
    match handler {
        Some(Handler::Inline(f)) => f(),
        Some(Handler::Notify(n)) => {
            chip.disable(intid);
            if sched::notify_post(n, 1).is_err() {
                UNOWNED.fetch_add(1, Ordering::Relaxed);
            }
        }
        None => {
            UNOWNED.fetch_add(1, Ordering::Relaxed);
            chip.disable(intid);
        }
    }
    chip.eoi(intid);
    sched::on_interrupt_exit(frame)
}

/// One registered line's counters.
#[derive(Debug, Clone, Copy)]
pub struct LineStats {
    /// INTID.
    pub intid: u32,
    /// Kind.
    pub kind: Kind,
    /// Owner's name.
    pub owner: &'static str,
    /// Deliveries per CPU.
    pub count: [u64; MAX_CPUS],
}

/// Calls `f` for each registered line.
pub fn for_each_line(mut f: impl FnMut(LineStats)) {
    let lines = LINES.lock().clone();
    for l in lines {
        f(LineStats {
            intid: l.intid,
            kind: l.kind,
            owner: l.owner,
            count: l.count,
        });
    }
}

/// Deliveries of `intid` on all CPUs.
pub fn count(intid: u32) -> u64 {
    LINES
        .lock()
        .iter()
        .find(|l| l.intid == intid)
        .map_or(0, |l| l.count.iter().sum())
}

/// (spurious acknowledges, interrupts nobody owned).
pub fn anomalies() -> (u64, u64) {
    (
        SPURIOUS.load(Ordering::Relaxed),
        UNOWNED.load(Ordering::Relaxed),
    )
}
