//! The NAPI protocol: take -> suppress -> drain -> re-enable -> recheck -> rearm.
//!
//! Unmasking a line while the device still has unprocessed work, or while its interrupts are
//! off, loses interrupts forever; re-enabling without a recheck loses the completion that
//! landed in between (Linux `virtqueue_enable_cb` / `virtqueue_poll`). A ring and the line it
//! signals on are therefore one capability here, `NapiLine`, from bring-up to teardown: a
//! round takes both (`take`), drains the ring (`poll`), and re-arms the line only inside
//! `Quiesce::enable_and_recheck`, after device interrupts were re-enabled, a full fence, and
//! a recheck found the used ring empty. No ring can be drained under another line, and no
//! line re-armed on another ring's evidence. Every loop is bounded by a budget.

use crate::dma::DmaHal;
use crate::irq::{Armed, Draining, IrqLine, Masked};
use crate::vring::{Completion, Polled, Rejected, RingMemory, Suppressed, Vring};

/// Default packets per poll (DESIGN.md "Vring states and the NAPI loop").
pub const DEFAULT_BUDGET: usize = 64;

/// Proof that the device behind a line is quiet: its interrupts are enabled and the state it
/// raises interrupts on was read back quiet after a full fence. Not `Clone`, minted only in
/// this crate (`Quiesce::enable_and_recheck` and `quiet::quiesce`), and bound to the line it
/// was minted with: `IrqLine::rearm` checks the INTID.
#[derive(Debug)]
#[must_use = "pass it to IrqLine::rearm"]
pub struct Quiesced {
    intid: u32,
}

impl Quiesced {
    pub(crate) fn new(line: &IrqLine<Draining>) -> Self {
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

/// A virtqueue and the interrupt line it signals on, owned together, between rounds: the line
/// armed, device interrupts on. The driver bound them when it set the queue's vector up; from
/// here they move as one, so a round always drains the ring its line fired for.
#[must_use = "dropping it masks the line and quarantines the ring's buffers"]
pub struct NapiLine<M: RingMemory, H: DmaHal + 'static, const Q: usize> {
    line: IrqLine<Armed>,
    ring: Vring<Armed, M, H, Q>,
}

/// A round in progress: the line `Draining` (masked), device interrupts suppressed.
#[must_use]
pub struct Round<M: RingMemory, H: DmaHal + 'static, const Q: usize> {
    line: IrqLine<Draining>,
    ring: Vring<Suppressed, M, H, Q>,
}

/// A round whose used ring was seen empty, ready for `enable_and_recheck`.
#[must_use]
pub struct Quiesce<M: RingMemory, H: DmaHal + 'static, const Q: usize> {
    round: Round<M, H, Q>,
}

/// Work arrived between the drain and the re-enable: keep draining (device re-suppressed,
/// line still masked).
#[must_use]
pub struct Raced<M: RingMemory, H: DmaHal + 'static, const Q: usize>(
    /// The round, to poll again.
    pub Round<M, H, Q>,
);

/// What one `poll` call achieved.
#[must_use]
pub enum PollOutcome<M: RingMemory, H: DmaHal + 'static, const Q: usize> {
    /// The used ring was empty at this instant: re-enable with `enable_and_recheck`.
    Drained(Quiesce<M, H, Q>),
    /// The budget ran out with work left: yield, then poll again (still suppressed).
    BudgetSpent(Round<M, H, Q>),
}

/// Panics unless `ring` is the one bound to `line`: a ring moved between pairs through
/// `ring_mut` (`mem::swap`) is a driver bug the types cannot see.
fn check_bound<S: crate::vring::RingState, M: RingMemory, H: DmaHal + 'static, const Q: usize>(
    ring: &Vring<S, M, H, Q>,
    intid: u32,
) {
    // A plain `assert!` with a literal message: no formatting machinery on this path.
    assert!(
        ring.bound_line() == Some(intid),
        "napi: ring not bound to this line (moved between pairs)"
    );
}

impl<M: RingMemory, H: DmaHal + 'static, const Q: usize> NapiLine<M, H, Q> {
    /// Binds a fresh line to the fresh ring that signals on it, and arms the line. `Err`
    /// hands both back if the ring was already bound to a line (it belongs to another pair).
    #[allow(
        clippy::type_complexity,
        reason = "both capabilities come back unchanged"
    )]
    pub fn new(
        line: IrqLine<Masked>,
        mut ring: Vring<Armed, M, H, Q>,
    ) -> Result<Self, (IrqLine<Masked>, Vring<Armed, M, H, Q>)> {
        if ring.bind(line.intid()).is_err() {
            return Err((line, ring));
        }
        Ok(NapiLine {
            line: line.arm(),
            ring,
        })
    }

    /// The line (INTID, status, whether it fired).
    pub fn line(&self) -> &IrqLine<Armed> {
        &self.line
    }

    /// The ring (in-flight count, addresses) between rounds.
    pub fn ring(&self) -> &Vring<Armed, M, H, Q> {
        &self.ring
    }

    /// The ring, to post buffers and kick between rounds.
    pub fn ring_mut(&mut self) -> &mut Vring<Armed, M, H, Q> {
        &mut self.ring
    }

    /// Polling mode for good: the line is masked (`Draining`: it never comes back without
    /// a proof) and the ring's interrupts are suppressed for good. Both come back apart,
    /// since neither can signal the other any more.
    pub fn into_polled(self) -> (IrqLine<Draining>, Vring<Polled, M, H, Q>) {
        (self.line.mask(), self.ring.into_polled())
    }

    /// Ends the pair once its device does no DMA (read from `device`, as
    /// `Vring::release`): the line is dropped (masked, freed) and the ring's buffers freed.
    /// `Err` hands the ring back (the line is dropped either way).
    pub fn release<D: crate::dma::DmaIdle + ?Sized>(
        self,
        device: &D,
    ) -> Result<usize, Vring<Armed, M, H, Q>> {
        let NapiLine { line, ring } = self;
        drop(line);
        ring.release(device)
    }
}

impl<M: RingMemory, H: DmaHal + 'static, const Q: usize> Round<M, H, Q> {
    /// The line, masked while the round runs.
    pub fn line(&self) -> &IrqLine<Draining> {
        &self.line
    }

    /// The suppressed ring: pop, post (refill) and kick while the round runs.
    pub fn ring_mut(&mut self) -> &mut Vring<Suppressed, M, H, Q> {
        &mut self.ring
    }

    /// Ends the pair in the middle of a round (its device torn down) once the device does
    /// no DMA (read from `device`, as `NapiLine::release`): the line, still masked, is
    /// dropped and freed, and the ring's buffers freed. `Err` hands the ring back (the line
    /// is dropped either way).
    pub fn release<D: crate::dma::DmaIdle + ?Sized>(
        self,
        device: &D,
    ) -> Result<usize, Vring<Suppressed, M, H, Q>> {
        let Round { line, ring } = self;
        drop(line);
        ring.release(device)
    }
}

/// Starts a NAPI round when the line has fired: takes the line (`Armed` -> `Draining`) and
/// suppresses device interrupts together, so a `Vring<Suppressed>` only ever exists beside
/// its masked line. Hands the pair back unchanged if the line has not fired.
pub fn take<M: RingMemory, H: DmaHal + 'static, const Q: usize>(
    n: NapiLine<M, H, Q>,
) -> Result<Round<M, H, Q>, NapiLine<M, H, Q>> {
    let NapiLine { line, ring } = n;
    check_bound(&ring, line.intid());
    match line.try_take() {
        Ok(line) => Ok(Round {
            line,
            ring: ring.suppress(),
        }),
        Err(line) => Err(NapiLine { line, ring }),
    }
}

/// Drains at most `budget` used elements into `handler` (valid completions and rejections
/// alike; the handler counts rejections).
pub fn poll<M, H, const Q: usize, F>(
    mut round: Round<M, H, Q>,
    budget: usize,
    mut handler: F,
) -> PollOutcome<M, H, Q>
where
    M: RingMemory,
    H: DmaHal + 'static,
    F: FnMut(Result<Completion<H>, Rejected<H>>),
{
    for _ in 0..budget {
        match round.ring.pop_used() {
            Some(item) => handler(item),
            None => return PollOutcome::Drained(Quiesce { round }),
        }
    }
    if round.ring.has_pending() {
        PollOutcome::BudgetSpent(round)
    } else {
        PollOutcome::Drained(Quiesce { round })
    }
}

impl<M: RingMemory, H: DmaHal + 'static, const Q: usize> Quiesce<M, H, Q> {
    /// Re-enables device interrupts, issues a full fence, and rechecks the used ring. If it
    /// is still empty, mints the `Quiesced` proof from that read, re-arms the line with it and
    /// returns the pair; otherwise the device is suppressed again and the round comes back
    /// in `Raced`, line still masked.
    pub fn enable_and_recheck(self) -> Result<NapiLine<M, H, Q>, Raced<M, H, Q>> {
        let Round { line, ring } = self.round;
        check_bound(&ring, line.intid());
        match ring.enable_and_check() {
            Ok(ring) => {
                let quiet = Quiesced::new(&line);
                Ok(NapiLine {
                    line: line.rearm(quiet),
                    ring,
                })
            }
            Err(ring) => Err(Raced(Round { line, ring })),
        }
    }

    /// The ring, still suppressed (refill before re-enabling, if the driver wants).
    pub fn ring_mut(&mut self) -> &mut Vring<Suppressed, M, H, Q> {
        &mut self.round.ring
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dma::DmaPool;
    use crate::fakes::{FakeDmaHal, FakeGic, FakeRingMem, FakeVirtqueueDevice, leak};
    use crate::irq::{IrqControl, LineStatus, Owner, Trigger};
    use crate::vring::{BufDir, VringLayout};

    type Pair = NapiLine<FakeRingMem, FakeDmaHal, 16>;

    struct World {
        gic: &'static FakeGic,
        ctl: &'static IrqControl<8>,
        dev: FakeVirtqueueDevice,
        pool: DmaPool<FakeDmaHal>,
    }

    fn setup() -> (World, Pair) {
        let (gic, ctl) = crate::fakes::fake_control::<8>(40);
        let layout = VringLayout::new(16).unwrap();
        let mem = FakeRingMem::new(layout.total, 0x9000_0000);
        let dev = FakeVirtqueueDevice::new(mem.clone(), layout, false);
        let mut vq = Vring::new(mem, false, &crate::dma::DmaDevice::new()).unwrap();
        let pool = DmaPool::new(leak(FakeDmaHal::new(0x4000_0000)), u64::MAX);
        for i in 0..16 {
            vq.post(pool.alloc(64, 8).unwrap(), BufDir::DeviceWrites, i)
                .unwrap();
        }
        let line = ctl.mint(42, Trigger::Edge, Owner(1)).unwrap();
        let pair = NapiLine::new(line, vq).ok().unwrap();
        (
            World {
                gic,
                ctl,
                dev,
                pool,
            },
            pair,
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
        let (w, pair) = setup();
        assert!(!w.gic.is_masked(42), "NapiLine::new arms the line");
        let pair = take(pair).err().expect("not fired");
        w.gic.raise(42);
        let _ = w.gic.deliver(w.ctl, 0, 0);
        let round = take(pair).ok().expect("fired");
        assert_eq!(round.line().status(), LineStatus::Draining);
    }

    #[test]
    fn budget_bounds_a_flood_and_the_cycle_completes() {
        let (mut w, pair) = setup();
        device_work(&mut w, 10);
        assert_eq!(w.gic.deliver(w.ctl, 0, 0).len(), 1);
        let round = take(pair).ok().unwrap();
        let mut got = 0;
        let round = match poll(round, 4, |r| got += usize::from(r.is_ok())) {
            PollOutcome::BudgetSpent(r) => r,
            PollOutcome::Drained(_) => panic!("10 pending, budget 4"),
        };
        assert_eq!(got, 4);
        let q = match poll(round, 64, |r| got += usize::from(r.is_ok())) {
            PollOutcome::Drained(q) => q,
            PollOutcome::BudgetSpent(..) => panic!("should drain"),
        };
        assert_eq!(got, 10);
        assert!(w.gic.is_masked(42), "masked until the recheck");
        let pair = q.enable_and_recheck().ok().expect("still empty");
        assert!(!w.gic.is_masked(42), "re-armed by the recheck");
        assert_eq!(pair.line().status(), LineStatus::Armed);
    }

    #[test]
    fn raced_completion_is_not_lost() {
        let (mut w, pair) = setup();
        device_work(&mut w, 1);
        let _ = w.gic.deliver(w.ctl, 0, 0);
        let round = take(pair).ok().unwrap();
        let mut got = 0;
        let PollOutcome::Drained(q) = poll(round, 64, |_| got += 1) else {
            panic!()
        };
        // The device completes one more after the drain saw the ring empty, but before the
        // driver re-enables: it is suppressed, so it does not interrupt.
        device_work(&mut w, 1);
        assert!(w.gic.deliver(w.ctl, 0, 0).is_empty());
        let Err(Raced(round)) = q.enable_and_recheck() else {
            panic!("must see the race")
        };
        assert!(
            w.gic.is_masked(42),
            "line stays masked while work is pending"
        );
        let PollOutcome::Drained(q) = poll(round, 64, |_| got += 1) else {
            panic!()
        };
        let Ok(_pair) = q.enable_and_recheck() else {
            panic!()
        };
        assert!(!w.gic.is_masked(42));
        assert_eq!(got, 2, "every completion processed exactly once");
    }

    #[test]
    fn budget_exactly_matching_work_reports_drained() {
        let (mut w, pair) = setup();
        device_work(&mut w, 3);
        let _ = w.gic.deliver(w.ctl, 0, 0);
        let round = take(pair).ok().unwrap();
        let PollOutcome::Drained(q) = poll(round, 3, |_| ()) else {
            panic!("3 of 3")
        };
        let Ok(mut pair) = q.enable_and_recheck() else {
            panic!("empty")
        };
        let refill = w.pool.alloc(64, 8).unwrap();
        pair.ring_mut()
            .post(refill, BufDir::DeviceWrites, 99)
            .unwrap();
        assert_eq!(
            pair.ring().in_flight(),
            14,
            "16 posted, 3 completed, 1 reposted"
        );
    }

    #[test]
    #[should_panic(expected = "ring not bound to this line")]
    fn rings_swapped_between_pairs_are_caught_at_take() {
        let (w, mut a) = setup();
        let mem = FakeRingMem::new(VringLayout::new(16).unwrap().total, 0x9100_0000);
        let line_b = w.ctl.mint(43, Trigger::Edge, Owner(1)).unwrap();
        let mut b = NapiLine::new(
            line_b,
            Vring::new(mem, false, &crate::dma::DmaDevice::new()).unwrap(),
        )
        .ok()
        .unwrap();
        core::mem::swap(a.ring_mut(), b.ring_mut());
        w.gic.raise(42);
        let _ = w.gic.deliver(w.ctl, 0, 0);
        let _ = take(a);
    }

    #[test]
    fn a_ring_is_bound_to_one_line_only() {
        let (w, mut a) = setup();
        let mem = FakeRingMem::new(VringLayout::new(16).unwrap().total, 0x9100_0000);
        let stolen = core::mem::replace(
            a.ring_mut(),
            Vring::new(mem, false, &crate::dma::DmaDevice::new()).unwrap(),
        );
        let line_b = w.ctl.mint(43, Trigger::Edge, Owner(1)).unwrap();
        let (line_b, stolen) = NapiLine::new(line_b, stolen).err().expect("already bound");
        assert_eq!(stolen.bound_line(), Some(42));
        assert_eq!(line_b.intid(), 43);
    }

    #[test]
    fn a_round_torn_down_frees_its_buffers_only_once_its_device_reads_idle() {
        let (gic, ctl) = crate::fakes::fake_control::<8>(40);
        let layout = VringLayout::new(16).unwrap();
        let mem = FakeRingMem::new(layout.total, 0x9000_0000);
        let nic = crate::fakes::FakeDmaEngine::new();
        let mut vq = Vring::new(mem, false, nic.device()).unwrap();
        let hal = leak(FakeDmaHal::new(0x4000_0000));
        let pool = DmaPool::new(hal, u64::MAX);
        for i in 0..4 {
            vq.post(pool.alloc(64, 8).unwrap(), BufDir::DeviceWrites, i)
                .unwrap();
        }
        let line = ctl.mint(42, Trigger::Edge, Owner(1)).unwrap();
        let pair: Pair = NapiLine::new(line, vq).ok().unwrap();
        gic.raise(42);
        let _ = gic.deliver(ctl, 0, 0);
        let round = take(pair).ok().unwrap();
        nic.set_busy(true);
        let ring = round.release(&nic).expect_err("still doing DMA: refused");
        assert_eq!(hal.from_device_count(), 0);
        assert_eq!(
            ctl.stats(42).unwrap().status,
            LineStatus::Free,
            "line freed"
        );
        nic.set_busy(false);
        assert_eq!(ring.release(&nic).ok(), Some(4));
    }

    /// A pair torn down between rounds: refused (ring handed back) while its device still
    /// reads busy, the line freed either way; once idle, every buffer still in flight is
    /// freed and counted.
    #[test]
    fn a_pair_torn_down_between_rounds_frees_its_buffers_once_its_device_reads_idle() {
        let (gic, ctl) = crate::fakes::fake_control::<8>(40);
        let layout = VringLayout::new(16).unwrap();
        let nic = crate::fakes::FakeDmaEngine::new();
        let hal = leak(FakeDmaHal::new(0x4000_0000));
        let pool = DmaPool::new(hal, u64::MAX);
        let pair = |intid| {
            let mem = FakeRingMem::new(layout.total, 0x9000_0000);
            let mut vq = Vring::new(mem, false, nic.device()).unwrap();
            for i in 0..5 {
                vq.post(pool.alloc(64, 8).unwrap(), BufDir::DeviceWrites, i)
                    .unwrap();
            }
            let line = ctl.mint(intid, Trigger::Edge, Owner(1)).unwrap();
            let pair: Pair = NapiLine::new(line, vq).ok().unwrap();
            pair
        };
        nic.set_busy(true);
        let ring = pair(42).release(&nic).expect_err("still doing DMA");
        assert_eq!(hal.from_device_count(), 0);
        assert_eq!(ctl.stats(42).unwrap().status, LineStatus::Free);
        assert!(gic.is_masked(42), "the freed line is masked");
        nic.set_busy(false);
        assert_eq!(pair(43).release(&nic).ok(), Some(5));
        assert_eq!(hal.from_device_count(), 5);
        assert_eq!(ctl.stats(43).unwrap().status, LineStatus::Free);
        assert_eq!(
            ring.in_flight(),
            5,
            "the refused ring still holds its buffers"
        );
    }

    #[test]
    fn polling_mode_masks_the_line_and_suppresses_for_good() {
        let (mut w, pair) = setup();
        let (line, mut ring) = pair.into_polled();
        assert!(w.gic.is_masked(42));
        assert_eq!(line.status(), LineStatus::Draining);
        device_work(&mut w, 2);
        assert!(w.gic.deliver(w.ctl, 0, 0).is_empty(), "device suppressed");
        assert_eq!(
            core::iter::from_fn(|| ring.pop_used()).count(),
            2,
            "drained by polling"
        );
    }
}
