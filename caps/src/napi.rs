//! The NAPI protocol: take -> suppress -> drain -> re-enable -> recheck -> rearm.
//!
//! Unmasking a line while the device still has unprocessed work, or while its interrupts are
//! off, loses interrupts forever; re-enabling without a recheck loses the completion that
//! landed in between (Linux `virtqueue_enable_cb` / `virtqueue_poll`). This module is the only
//! place that mints `Quiesced`, the proof `IrqLine<Draining>::rearm` demands, and it mints it
//! only after device interrupts were re-enabled, a full fence, and a recheck found the used
//! ring empty. Every loop is bounded by a budget.

use crate::dma::DmaHal;
use crate::irq::{Armed, Draining, IrqLine};
use crate::vring::{Completion, Rejected, RingMemory, Suppressed, Vring};

/// Default packets per poll (DESIGN.md "Vring states and the NAPI loop").
pub const DEFAULT_BUDGET: usize = 64;

/// Proof that the device behind a line is quiet: its interrupts are enabled and its queue was
/// rechecked empty after a full fence. Not `Clone`, minted only in this module, and bound to
/// the line it was minted with: `IrqLine::rearm` checks the INTID, since the type cannot.
#[derive(Debug)]
#[must_use = "pass it to IrqLine::rearm"]
pub struct Quiesced {
    intid: u32,
}

impl Quiesced {
    fn new(line: &IrqLine<Draining>) -> Self {
        Quiesced {
            intid: line.intid(),
        }
    }

    /// The INTID of the line this proof is for.
    pub(crate) fn intid(&self) -> u32 {
        self.intid
    }

    #[cfg(test)]
    pub(crate) fn new_for_test(line: &IrqLine<Draining>) -> Self {
        Quiesced::new(line)
    }
}

/// A line and ring whose used ring was seen empty, ready for `enable_and_recheck`.
#[must_use]
pub struct Quiesce<M: RingMemory, H: DmaHal + 'static, const Q: usize> {
    line: IrqLine<Draining>,
    vq: Vring<Suppressed, M, H, Q>,
}

/// Work arrived between the drain and the re-enable: keep draining (device re-suppressed).
#[must_use]
pub struct Raced<M: RingMemory, H: DmaHal + 'static, const Q: usize>(
    /// The line, still draining (masked).
    pub IrqLine<Draining>,
    /// The ring, suppressed again.
    pub Vring<Suppressed, M, H, Q>,
);

/// What one `poll` call achieved.
#[must_use]
pub enum PollOutcome<M: RingMemory, H: DmaHal + 'static, const Q: usize> {
    /// The used ring was empty at this instant: re-enable with `enable_and_recheck`.
    Drained(Quiesce<M, H, Q>),
    /// The budget ran out with work left: yield, then poll again (still suppressed).
    BudgetSpent(IrqLine<Draining>, Vring<Suppressed, M, H, Q>),
}

/// Starts a NAPI round when the line has fired: takes the line (`Armed` -> `Draining`) and
/// suppresses device interrupts together, so a `Vring<Suppressed>` only ever exists beside
/// a masked line. Hands both back unchanged if the line has not fired.
#[allow(
    clippy::type_complexity,
    reason = "the pair of states is the point of the type"
)]
pub fn take<M: RingMemory, H: DmaHal + 'static, const Q: usize>(
    line: IrqLine<Armed>,
    vq: Vring<Armed, M, H, Q>,
) -> Result<(IrqLine<Draining>, Vring<Suppressed, M, H, Q>), (IrqLine<Armed>, Vring<Armed, M, H, Q>)>
{
    match line.try_take() {
        Ok(line) => Ok((line, vq.suppress())),
        Err(line) => Err((line, vq)),
    }
}

/// Drains at most `budget` used elements into `handler` (valid completions and rejections
/// alike; the handler counts rejections).
pub fn poll<M, H, const Q: usize, F>(
    line: IrqLine<Draining>,
    mut vq: Vring<Suppressed, M, H, Q>,
    budget: usize,
    mut handler: F,
) -> PollOutcome<M, H, Q>
where
    M: RingMemory,
    H: DmaHal + 'static,
    F: FnMut(Result<Completion<H>, Rejected<H>>),
{
    for _ in 0..budget {
        match vq.pop_used() {
            Some(item) => handler(item),
            None => return PollOutcome::Drained(Quiesce { line, vq }),
        }
    }
    if vq.has_pending() {
        PollOutcome::BudgetSpent(line, vq)
    } else {
        PollOutcome::Drained(Quiesce { line, vq })
    }
}

impl<M: RingMemory, H: DmaHal + 'static, const Q: usize> Quiesce<M, H, Q> {
    /// Re-enables device interrupts, issues a full fence, and rechecks the used ring. If it
    /// is still empty, returns the proof with the armed ring and the line to `rearm`;
    /// otherwise the device is suppressed again and both come back in `Raced`.
    #[allow(clippy::type_complexity, reason = "mirrors DESIGN.md's signature")]
    pub fn enable_and_recheck(
        self,
    ) -> Result<(Quiesced, Vring<Armed, M, H, Q>, IrqLine<Draining>), Raced<M, H, Q>> {
        match self.vq.enable_and_check() {
            Ok(vq) => Ok((Quiesced::new(&self.line), vq, self.line)),
            Err(vq) => Err(Raced(self.line, vq)),
        }
    }
}

/// The same enable → fence → recheck step for a device without a virtqueue (a UART's receive
/// FIFO, the timer, a simple PCI device's status register): `enable` re-enables the device's
/// own interrupt generation, then after a full fence `still_quiet` must confirm there is no
/// unprocessed work that would not raise a fresh interrupt. Only then does the caller get the
/// `Quiesced` proof that `rearm` needs; otherwise the line comes back to keep draining.
pub fn quiesce_with(
    line: IrqLine<Draining>,
    enable: impl FnOnce(),
    still_quiet: impl FnOnce() -> bool,
) -> Result<(Quiesced, IrqLine<Draining>), IrqLine<Draining>> {
    enable();
    crate::sync::fence(crate::sync::Ordering::SeqCst);
    if still_quiet() {
        Ok((Quiesced::new(&line), line))
    } else {
        Err(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dma::DmaPool;
    use crate::fakes::{FakeDmaHal, FakeGic, FakeRingMem, FakeVirtqueueDevice, leak};
    use crate::irq::{IrqControl, Owner, Trigger};
    use crate::vring::{BufDir, VringLayout};

    type Ring<S> = Vring<S, FakeRingMem, FakeDmaHal, 16>;

    struct World {
        gic: &'static FakeGic,
        ctl: &'static IrqControl<8>,
        dev: FakeVirtqueueDevice,
        pool: DmaPool<FakeDmaHal>,
    }

    fn setup() -> (World, IrqLine<Armed>, Ring<Armed>) {
        let gic = leak(FakeGic::new());
        let ctl = leak(IrqControl::new(gic, 40));
        let layout = VringLayout::new(16).unwrap();
        let mem = FakeRingMem::new(layout.total, 0x9000_0000);
        let dev = FakeVirtqueueDevice::new(mem.clone(), layout, false);
        let mut vq: Ring<Armed> = Vring::new(mem, false).unwrap();
        let pool = DmaPool::new(leak(FakeDmaHal::new(0x4000_0000)), u64::MAX);
        for i in 0..16 {
            vq.post(pool.alloc(64, 8).unwrap(), BufDir::DeviceWrites, i)
                .unwrap();
        }
        let line = ctl.mint(42, Trigger::Edge, Owner(1)).unwrap().arm();
        (
            World {
                gic,
                ctl,
                dev,
                pool,
            },
            line,
            vq,
        )
    }

    /// The device publishes `n` completions and interrupts if it is allowed to.
    fn device_work(w: &mut World, n: usize) {
        for _ in 0..n {
            w.dev.service_one(10);
        }
        if w.dev.wants_interrupt() {
            w.gic.raise(42);
        }
    }

    #[test]
    fn take_requires_a_fired_line() {
        let (w, line, vq) = setup();
        let (line, vq) = take(line, vq).err().expect("not fired");
        w.gic.raise(42);
        let _ = w.gic.deliver(w.ctl, 0, 0);
        assert!(take(line, vq).is_ok());
    }

    #[test]
    fn budget_bounds_a_flood_and_the_cycle_completes() {
        let (mut w, line, vq) = setup();
        device_work(&mut w, 10);
        assert_eq!(w.gic.deliver(w.ctl, 0, 0).len(), 1);
        let (line, vq) = take(line, vq).ok().unwrap();
        let mut got = 0;
        let (line, vq) = match poll(line, vq, 4, |r| got += usize::from(r.is_ok())) {
            PollOutcome::BudgetSpent(l, v) => (l, v),
            PollOutcome::Drained(_) => panic!("10 pending, budget 4"),
        };
        assert_eq!(got, 4);
        let q = match poll(line, vq, 64, |r| got += usize::from(r.is_ok())) {
            PollOutcome::Drained(q) => q,
            PollOutcome::BudgetSpent(..) => panic!("should drain"),
        };
        assert_eq!(got, 10);
        let (quiet, vq, line) = q.enable_and_recheck().ok().expect("still empty");
        let line = line.rearm(quiet);
        assert!(!w.gic.is_masked(42));
        drop((line, vq));
    }

    #[test]
    fn raced_completion_is_not_lost() {
        let (mut w, line, vq) = setup();
        device_work(&mut w, 1);
        let _ = w.gic.deliver(w.ctl, 0, 0);
        let (line, vq) = take(line, vq).ok().unwrap();
        let mut got = 0;
        let PollOutcome::Drained(q) = poll(line, vq, 64, |_| got += 1) else {
            panic!()
        };
        // The device completes one more after the drain saw the ring empty, but before the
        // driver re-enables: it is suppressed, so it does not interrupt.
        device_work(&mut w, 1);
        assert!(w.gic.deliver(w.ctl, 0, 0).is_empty());
        let Err(Raced(line, vq)) = q.enable_and_recheck() else {
            panic!("must see the race")
        };
        assert!(
            w.gic.is_masked(42),
            "line stays masked while work is pending"
        );
        let PollOutcome::Drained(q) = poll(line, vq, 64, |_| got += 1) else {
            panic!()
        };
        let Ok((quiet, _vq, line)) = q.enable_and_recheck() else {
            panic!()
        };
        let _line = line.rearm(quiet);
        assert_eq!(got, 2, "every completion processed exactly once");
    }

    #[test]
    fn budget_exactly_matching_work_reports_drained() {
        let (mut w, line, vq) = setup();
        device_work(&mut w, 3);
        let _ = w.gic.deliver(w.ctl, 0, 0);
        let (line, vq) = take(line, vq).ok().unwrap();
        let PollOutcome::Drained(q) = poll(line, vq, 3, |_| ()) else {
            panic!("3 of 3")
        };
        let Ok((quiet, mut vq, line)) = q.enable_and_recheck() else {
            panic!("empty")
        };
        let refill = w.pool.alloc(64, 8).unwrap();
        vq.post(refill, BufDir::DeviceWrites, 99).unwrap();
        assert_eq!(vq.in_flight(), 14, "16 posted, 3 completed, 1 reposted");
        let _line = line.rearm(quiet);
    }

    #[test]
    fn quiesce_with_requires_a_quiet_recheck_after_enable() {
        let gic = leak(FakeGic::new());
        let ctl = leak(IrqControl::<4>::new(gic, 60));
        let line = ctl.mint(61, Trigger::Level, Owner(3)).unwrap().arm();
        gic.raise(61);
        let _ = ctl.handle_irq(61, 0, 1);
        let line = line.try_take().ok().unwrap();
        let mut enabled = false;
        let line = quiesce_with(line, || enabled = true, || false).unwrap_err();
        assert!(enabled, "enable runs before the recheck");
        let (quiet, line) = quiesce_with(line, || {}, || true).unwrap();
        let line = line.rearm(quiet);
        assert!(!gic.is_masked(61));
        drop(line);
        assert!(gic.is_masked(61));
    }
}
