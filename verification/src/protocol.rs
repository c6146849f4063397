//! The NAPI protocol property: device, ISR and driver steps in any interleaving.
//!
//! Invariant 5 of docs/caps.md (device suppressed => line masked; no lost notification) is
//! about a race between three parties, so the property runs a model in which each step is one
//! party's move: the device publishes a completion (and interrupts if the ring allows it), the
//! CPU takes a pending, enabled interrupt through the real ISR (`IrqControl::handle_irq`), or
//! the driver makes the move its state calls for with the real `napi::take`, `napi::poll`
//! and `Quiesce::enable_and_recheck` (which re-arms the line). The invariants are checked
//! after every step; at the end the driver runs to quiescence and every completion must have
//! been processed exactly once, with the line armed and nothing latched.
//!
//! The driver has no other choice to make: in each state exactly one of take, poll and
//! recheck applies (the others do not type-check), so "the driver's next move" covers every
//! driver action, and any order of device, ISR and driver steps is a sequence of these ops.
//! The model is small so that Kani can explore every sequence of several steps: a `PQ` = 2
//! entry ring, one INTID, two poll budgets (1 and `PQ`; at most `PQ` completions are ever
//! pending, so a larger budget behaves like `PQ`), each a literal at its call site so Kani
//! unrolls the poll loop only as far as it can run. Kani explores every `match` arm whose
//! guard it cannot rule out syntactically, and after a symbolic step it rules out almost
//! none, so the model keeps few arms: three ops, and one driver transition per state.

use core::mem;

use caps::dma::{DmaDevice, DmaPool};
use caps::irq::{Armed, Draining, IrqControl, IrqLine, LineStatus, Owner, Trigger};
use caps::napi::{self, NapiLine, PollOutcome, Quiesce, Raced, Round};
use caps::quiet::{QuietCheck, Seal, quiesce};
use caps::vring::{BufDir, Completion, Polled, Rejected, RingState, Vring};

use crate::check::{Expect, LOST_NOTIFICATION, expected, that};
use crate::fakes::{
    INTID, ModelDevice, ModelDmaHal, ModelGic, Must, PlainRingMem, control, deliver, leak,
    plain_cells,
};

/// Queue size of the protocol model.
pub const PQ: usize = 2;

/// Longest operation sequence the protocol property accepts. Cookies are bits of a `u32`:
/// `PQ` buffers are posted at the start and one more per completion processed.
pub const MAX_PROTO_OPS: usize = 16;

type Mem = &'static PlainRingMem<{ plain_cells(PQ) }>;
/// One-byte buffers: the payload plays no part in the protocol.
type Hal = ModelDmaHal<1>;
type Ring<S> = Vring<S, Mem, Hal, PQ>;
type Pair = NapiLine<Mem, Hal, PQ>;

/// One step of the protocol property.
#[derive(Clone, Copy, Debug)]
pub enum ProtoOp {
    /// The device completes the next available buffer (length `n`, capped at the buffer's)
    /// and raises its interrupt if the ring allows it.
    Publish(u8),
    /// The CPU takes the interrupt if it is pending and enabled (`IrqControl::handle_irq`).
    Deliver,
    /// The driver's next move: `napi::take` when idle, `napi::poll` with budget 1 (`n`
    /// even) or `PQ` (`n` odd) while draining, `Quiesce::enable_and_recheck` (which re-arms
    /// the line; then refilling the ring) after a drain.
    Step(u8),
    /// Nobody acts (so a checker of fixed-length sequences covers shorter ones too).
    Nothing,
}

/// Which driver the protocol property runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// The real protocol: `take`, `poll`, `enable_and_recheck`, `rearm`.
    Napi,
    /// A deliberately broken driver: it keeps line and ring apart (the ring polled, device
    /// interrupts switched by hand), and once a poll finds the ring empty it re-enables
    /// device interrupts and re-arms the line on a `QuietCheck` that reads nothing
    /// ([`Liar`]): no recheck.
    NoRecheck,
}

/// Where the driver is in its round; says which of `Proto`'s capability slots are full.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `idle` pair: waiting for the interrupt.
    Idle,
    /// `round`: `napi::take` succeeded, draining.
    Polling,
    /// `quiesce`: a poll saw the ring empty.
    Quiescing,
    /// `NoRecheck` only: `armed` line, `polled` ring, device interrupts on (by hand).
    Broken,
    /// `NoRecheck` only: `draining` line, `polled` ring, device interrupts off (by hand).
    BrokenPolling,
}

/// A quiet check that reads no device and always answers quiet: the broken driver's way
/// around the recheck. Exists to show the models catch a lying `QuietCheck`.
pub struct Liar;

// SAFETY: deliberately broken, for the `NoRecheck` model only: it breaks the contract
// (answers without reading the device) so that the protocol property can be shown to fail.
unsafe impl QuietCheck for Liar {
    fn is_quiet(&self, _: &Seal) -> bool {
        true
    }
}

/// What a protocol run went through, for a harness to cover (covers live in the harness, so
/// a broken driver's run, which never takes the real driver's paths, leaves none
/// unreachable).
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen {
    /// `enable_and_recheck` found work that raced the re-enable.
    pub raced: bool,
    /// A poll spent its budget with work left.
    pub budget_spent: bool,
    /// Work was pending with its notification outstanding (`Fired`).
    pub pending_notified: bool,
    /// Work arrived while the owner was draining (line masked).
    pub arrived_while_draining: bool,
}

/// The model. The driver's capabilities sit in one slot per type, with `phase` saying which
/// are full (an enum of per-phase tuples would be read by Kani through its payload bytes,
/// which costs far more).
struct Proto {
    gic: &'static ModelGic,
    ctl: &'static IrqControl<1>,
    pool: DmaPool<Hal>,
    dev: ModelDevice<Mem>,
    phase: Phase,
    idle: Option<Pair>,
    round: Option<Round<Mem, Hal, PQ>>,
    quiesce: Option<Quiesce<Mem, Hal, PQ>>,
    armed: Option<IrqLine<Armed>>,
    draining: Option<IrqLine<Draining>>,
    polled: Option<Ring<Polled>>,
    napi: bool,
    event_idx: bool,
    /// Used elements the driver popped (mod 2^16, like `last_used`).
    consumed: u16,
    /// Cookies completed so far (bit per cookie).
    seen: u32,
    next_cookie: u64,
    /// `NoRecheck`: the last poll found the ring empty.
    drained: bool,
    /// `finish` runs: the device is silent, so the driver no longer refills.
    settling: bool,
    /// What the run went through.
    went: Seen,
}

/// The capability in a slot that `phase` says is full.
fn out<T>(slot: &mut Option<T>) -> T {
    slot.take().must("the phase names a full slot")
}

/// Puts a capability into a slot that `phase` says is empty. An assignment would run the
/// slot's drop glue, which Kani explores for every capability type once the phase is
/// symbolic; the old value is checked to be `None` and forgotten instead.
fn put<T>(slot: &mut Option<T>, value: T) {
    let old = slot.replace(value);
    assert!(old.is_none(), "the phase names an empty slot");
    mem::forget(old);
}

impl Proto {
    /// A fresh platform, the line armed and the ring full of buffers.
    fn new(driver: Driver, event_idx: bool) -> Self {
        let gic = leak(ModelGic::new());
        let ctl = control(gic, INTID);
        let mem: Mem = leak(PlainRingMem::new());
        let dev = ModelDevice::with_size(mem, PQ, event_idx);
        let mut vq: Ring<Armed> = Vring::new(mem, event_idx, &DmaDevice::new()).must("ring fits");
        let line = ctl
            .mint(INTID, Trigger::Edge, Owner(1))
            .must("fresh control");
        let mut p = Proto {
            gic,
            ctl,
            pool: DmaPool::new(leak(ModelDmaHal::new()), u64::MAX),
            dev,
            phase: Phase::Idle,
            idle: None,
            round: None,
            quiesce: None,
            armed: None,
            draining: None,
            polled: None,
            napi: driver == Driver::Napi,
            event_idx,
            consumed: 0,
            seen: 0,
            next_cookie: 0,
            drained: false,
            settling: false,
            went: Seen::default(),
        };
        for _ in 0..PQ {
            p.refill(&mut vq);
        }
        if p.napi {
            put(&mut p.idle, NapiLine::new(line, vq).must("fresh ring"));
        } else {
            // Line and ring kept apart: the ring polled, interrupts switched on by hand.
            let vq = vq.into_polled();
            p.dev.driver_writes_flag(false);
            put(&mut p.polled, vq);
            put(&mut p.armed, line.arm());
            p.phase = Phase::Broken;
        }
        p
    }

    /// Counts a popped element and marks its cookie processed (never twice).
    fn record(seen: &mut u32, consumed: &mut u16, item: Result<Completion<Hal>, Rejected<Hal>>) {
        *consumed = consumed.wrapping_add(1);
        let c = item.must("an honest device's completion was rejected");
        let bit = 1u32 << c.cookie;
        that(*seen & bit == 0, "a packet was processed twice");
        *seen |= bit;
    }

    /// The broken driver's poll: pops up to `budget` elements; whether the ring was then
    /// empty.
    fn pop_up_to(&mut self, vq: &mut Ring<Polled>, budget: usize) -> bool {
        for _ in 0..budget {
            match vq.pop_used() {
                Some(item) => Self::record(&mut self.seen, &mut self.consumed, item),
                None => return true,
            }
        }
        !vq.has_pending()
    }

    /// Posts a fresh buffer if a descriptor is free (an RX driver's refill).
    fn refill<S: RingState>(&mut self, vq: &mut Ring<S>) {
        if vq.in_flight() < PQ {
            let region = self.pool.alloc(1, 8).must("fake HAL");
            vq.post(region, BufDir::DeviceWrites, self.next_cookie)
                .must("a free descriptor");
            self.next_cookie += 1;
        }
    }

    /// The device completes the next available buffer; the edge latches if it interrupts.
    fn publish(&mut self, n: u8) {
        if let Some((id, posted)) = self.dev.consume()
            && self.dev.publish(id.into(), u32::from(n).min(posted))
        {
            self.gic.raise();
        }
    }

    /// The driver's next move, with poll budget `PQ` if `full`, else 1.
    fn drive(&mut self, full: bool) {
        let phase = self.phase;
        self.move_in(phase, full);
    }

    /// The driver's move in `phase` (a constant at every call site, so Kani sees one
    /// transition), if that is the phase it is in.
    fn move_in(&mut self, phase: Phase, full: bool) {
        if self.phase != phase {
            return;
        }
        match (self.napi, phase) {
            (true, Phase::Idle) => self.take(),
            (true, Phase::Polling) => self.poll(full),
            (true, Phase::Quiescing) => self.recheck(),
            (false, Phase::Broken) => self.take_by_hand(),
            (false, Phase::BrokenPolling) if !self.drained => self.pop_by_hand(full),
            (false, Phase::BrokenPolling) => self.reenable_without_recheck(),
            _ => {}
        }
    }

    /// `napi::take`: draining if the line fired, otherwise still idle.
    fn take(&mut self) {
        match napi::take(out(&mut self.idle)) {
            Ok(round) => self.enter_polling(round),
            Err(pair) => put(&mut self.idle, pair),
        }
    }

    /// `napi::poll` with budget `PQ` (`full`) or 1, each a literal.
    fn poll(&mut self, full: bool) {
        let round = out(&mut self.round);
        let (seen, consumed) = (&mut self.seen, &mut self.consumed);
        let mut handler = |item| Self::record(seen, consumed, item);
        let outcome = if full {
            napi::poll(round, PQ, &mut handler)
        } else {
            napi::poll(round, 1, &mut handler)
        };
        match outcome {
            PollOutcome::Drained(q) => {
                put(&mut self.quiesce, q);
                self.phase = Phase::Quiescing;
            }
            PollOutcome::BudgetSpent(round) => {
                self.went.budget_spent = true;
                self.enter_polling(round)
            }
        }
    }

    /// `Quiesce::enable_and_recheck`: re-armed (then, while the device is active, the ring
    /// is refilled), or back to draining if work raced in.
    fn recheck(&mut self) {
        match out(&mut self.quiesce).enable_and_recheck() {
            Ok(mut pair) => {
                if !self.settling {
                    self.refill(pair.ring_mut());
                }
                put(&mut self.idle, pair);
                self.phase = Phase::Idle;
            }
            Err(Raced(round)) => {
                self.went.raced = true;
                self.enter_polling(round)
            }
        }
    }

    /// `NoRecheck`'s poll: pops by hand, noting whether the ring was then empty.
    fn pop_by_hand(&mut self, full: bool) {
        let mut vq = out(&mut self.polled);
        self.drained = if full {
            self.pop_up_to(&mut vq, PQ)
        } else {
            self.pop_up_to(&mut vq, 1)
        };
        put(&mut self.polled, vq);
    }

    /// The bug: device interrupts back on, line re-armed on a `Liar`, nothing rechecked.
    fn reenable_without_recheck(&mut self) {
        self.dev.driver_writes_flag(false);
        self.drained = false;
        let (quiet, line) = quiesce(out(&mut self.draining), &Liar).must("Liar is quiet");
        put(&mut self.armed, line.rearm(quiet));
        if !self.settling {
            let mut vq = out(&mut self.polled);
            self.refill(&mut vq);
            put(&mut self.polled, vq);
        }
        self.phase = Phase::Broken;
    }

    /// `NoRecheck`'s take: `try_take`, then suppress the device by hand.
    fn take_by_hand(&mut self) {
        match out(&mut self.armed).try_take() {
            Ok(line) => {
                self.dev.driver_writes_flag(true);
                put(&mut self.draining, line);
                self.phase = Phase::BrokenPolling;
            }
            Err(line) => put(&mut self.armed, line),
        }
    }

    fn enter_polling(&mut self, round: Round<Mem, Hal, PQ>) {
        put(&mut self.round, round);
        self.phase = Phase::Polling;
    }

    fn step(&mut self, op: ProtoOp) {
        match op {
            ProtoOp::Publish(n) => self.publish(n),
            ProtoOp::Deliver => {
                let _ = deliver(self.gic, self.ctl, 0);
            }
            ProtoOp::Step(n) => self.drive(n % 2 == 1),
            ProtoOp::Nothing => {}
        }
        self.check();
    }

    /// The invariants of docs/caps.md ("Invariants" 3 and 5), checked after every step.
    fn check(&mut self) {
        let status = self.ctl.stats(INTID).must("covered").status;
        let masked = self.gic.is_masked();
        // Invariant 3: the line's kernel status agrees with the chip.
        match status {
            LineStatus::Armed => that(!masked, "line Armed but masked at the chip"),
            LineStatus::Free => that(false, "line freed"),
            _ => that(masked, "line not Armed but unmasked at the chip"),
        }
        // Invariant 5a: device suppressed => line masked, and the ring's type state says the
        // same as the flag the device reads. (With event index, suppression is `used_event`
        // left behind, which 5b covers.)
        if !self.event_idx {
            let flag = self.dev.suppressed_flag();
            that(
                !flag || masked,
                "device suppressed while the line is unmasked",
            );
            let typed = match self.phase {
                Phase::Polling | Phase::Quiescing => Some(true),
                Phase::Idle => Some(false),
                Phase::Broken | Phase::BrokenPolling => None,
            };
            that(typed.is_none_or(|t| t == flag), "ring type state disagrees");
        }
        // Invariant 5b: no lost notification. Work pending => the owner was notified (Fired),
        // or an edge is latched at the chip, or the owner is draining anyway.
        let pending = self.dev.used_idx() != self.consumed;
        let draining = matches!(
            self.phase,
            Phase::Polling | Phase::Quiescing | Phase::BrokenPolling
        );
        self.went.pending_notified |= pending && status == LineStatus::Fired;
        self.went.arrived_while_draining |= pending && draining && masked;
        expected(
            !pending || status == LineStatus::Fired || self.gic.is_pending() || draining,
            Expect::LostNotification,
            LOST_NOTIFICATION,
        );
    }

    /// Lets the system run to quiescence with the device silent, then checks that every
    /// published packet was processed exactly once and the line ends armed and unmasked with
    /// nothing latched. The driver finishes the round in progress (at worst a recheck that
    /// races: recheck, poll, recheck), then the CPU takes whatever interrupt is pending and
    /// the driver runs a round for it, twice: once for the notification already outstanding
    /// and once for an edge latched while the line was masked. Each move only applies in its
    /// phase; if this schedule were too short, the assertions would fail.
    fn finish(&mut self) {
        self.settling = true;
        let (rest, round): (&[Phase], &[Phase]) = if self.napi {
            (
                &[
                    Phase::Polling,
                    Phase::Quiescing,
                    Phase::Polling,
                    Phase::Quiescing,
                ],
                &[Phase::Idle, Phase::Polling, Phase::Quiescing],
            )
        } else {
            (
                &[Phase::BrokenPolling, Phase::BrokenPolling],
                &[Phase::Broken, Phase::BrokenPolling, Phase::BrokenPolling],
            )
        };
        for &phase in rest {
            self.move_in(phase, true);
            self.check();
        }
        for _ in 0..2 {
            let _ = deliver(self.gic, self.ctl, 0);
            for &phase in round {
                self.move_in(phase, true);
                self.check();
            }
        }
        that(
            self.dev.used_idx() == self.consumed,
            "a published packet was never processed",
        );
        that(
            matches!(self.phase, Phase::Idle | Phase::Broken),
            "did not settle",
        );
        let status = self.ctl.stats(INTID).must("covered").status;
        that(status == LineStatus::Armed, "line not armed after settling");
        that(
            !self.gic.is_masked() && !self.gic.is_pending(),
            "line masked or an edge latched after settling",
        );
    }
}

/// Runs `ops` (device, ISR and driver steps in any interleaving) with `driver`, checking
/// after every step, then lets the system settle and checks that nothing was lost. Returns
/// what the run went through.
pub fn prop_protocol_with(driver: Driver, event_idx: bool, ops: &[ProtoOp]) -> Seen {
    assert!(ops.len() <= MAX_PROTO_OPS, "cookies are bits of a u32");
    let mut p = Proto::new(driver, event_idx);
    for &op in ops {
        p.step(op);
    }
    p.finish();
    p.went
}

/// The NAPI protocol invariants of docs/caps.md over any interleaving of device, ISR and
/// driver steps: the line status agrees with the chip; the device is suppressed only while
/// the line is masked; work pending implies a notification is outstanding, an edge is
/// latched or the owner is draining; no packet is processed twice; and after the system
/// settles, every published packet was processed and the line is armed with nothing latched.
pub fn prop_protocol_invariant(event_idx: bool, ops: &[ProtoOp]) -> Seen {
    prop_protocol_with(Driver::Napi, event_idx, ops)
}
