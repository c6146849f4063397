//! loom models: the ISR racing the NAPI poller over the real caps code.
//!
//! The NAPI protocol exists for one race: a completion published after the poller last saw
//! the ring empty but before it re-enabled device interrupts raises no interrupt, so only
//! `enable_and_recheck`'s recheck finds it. These models run the device + ISR
//! (`IrqControl::handle_irq`) in one thread against the poller (`napi::take` -> `poll` ->
//! `enable_and_recheck`, which re-arms) in another, with the line state, the GIC and the ring
//! memory all in loom atomics (`caps::sync` under `--cfg loom`), and check that every packet
//! is processed exactly once and the line is never left masked with work pending. A second
//! model drops the recheck and must be caught. Run with `scripts/loom`.
#![cfg(loom)]

use std::vec::Vec;

use caps::dma::DmaDevice;
use caps::irq::{Armed, IrqLine, LineStatus, Owner, Trigger};
use caps::napi::{self, NapiLine, PollOutcome, Raced, Round};
use caps::quiet::{QuietCheck, Seal, quiesce};
use caps::vring::{BufDir, Polled, Vring};
use loom::model::Builder;
use loom::thread;
use verification::fakes::{INTID, ModelDevice, ModelDmaHal, ModelRingMem, Q, Rig, deliver};

type Ring<S> = Vring<S, &'static ModelRingMem, ModelDmaHal, Q>;
type Pair = NapiLine<&'static ModelRingMem, ModelDmaHal, Q>;

/// Wake-ups the poller handles before the model ends; later work is left for the final
/// settle step in the main thread.
const ATTEMPTS: usize = 2;

/// A loom builder with `preemption_bound` (`None`: exhaustive). `LOOM_MAX_PREEMPTIONS`
/// in the environment overrides a bounded model's bound.
fn builder(bound: Option<usize>) -> Builder {
    let mut b = Builder::new();
    if b.preemption_bound.is_none() || bound.is_none() {
        b.preemption_bound = bound;
    }
    b
}

struct World {
    rig: Rig,
    pair: Pair,
    dev: ModelDevice,
    /// `(id, posted len)` of the buffers the device took, in order.
    work: Vec<(u16, u32)>,
}

/// Posts `packets` buffers (cookie = index), lets the device take them all, arms the line.
fn world(packets: usize, event_idx: bool) -> World {
    let rig = Rig::new();
    let mut vq: Ring<Armed> = Vring::new(rig.mem, event_idx, &DmaDevice::new()).unwrap();
    for c in 0..packets {
        let region = rig.pool.alloc(8, 8).unwrap();
        vq.post(region, BufDir::DeviceWrites, c as u64).unwrap();
    }
    let mut dev = ModelDevice::new(rig.mem, event_idx);
    let work = std::iter::from_fn(|| dev.consume()).collect();
    let line = rig.ctl.mint(INTID, Trigger::Edge, Owner(1)).unwrap();
    World {
        rig,
        pair: NapiLine::new(line, vq).ok().unwrap(),
        dev,
        work,
    }
}

/// The device thread: publish each packet; if the device interrupts, the GIC latches it and
/// the CPU runs the ISR (`handle_irq` masks, marks `Fired`, EOIs) if the line is enabled.
fn device_and_isr(rig: &Rig, mut dev: ModelDevice, work: Vec<(u16, u32)>) {
    for (id, len) in work {
        if dev.publish(id.into(), len) {
            rig.gic.raise();
            let _ = deliver(rig.gic, rig.ctl, 1);
        }
    }
}

/// One NAPI round with the real API: drain with budget 1, `enable_and_recheck` (which
/// re-arms), loop on `Raced`; then the CPU takes an edge latched while masked.
fn napi_round(
    rig: &Rig,
    mut round: Round<&'static ModelRingMem, ModelDmaHal, Q>,
    got: &mut Vec<u64>,
) -> Pair {
    loop {
        match napi::poll(round, 1, |c| got.push(c.unwrap().cookie)) {
            PollOutcome::BudgetSpent(r) => round = r,
            PollOutcome::Drained(q) => match q.enable_and_recheck() {
                Ok(pair) => {
                    let _ = deliver(rig.gic, rig.ctl, 0);
                    return pair;
                }
                Err(Raced(r)) => round = r,
            },
        }
    }
}

/// The poller thread: on each wake-up, `napi::take` and a full round if the line fired.
fn poller(rig: &Rig, mut pair: Pair) -> (Pair, Vec<u64>) {
    let mut got = Vec::new();
    for _ in 0..ATTEMPTS {
        pair = match napi::take(pair) {
            Ok(round) => napi_round(rig, round, &mut got),
            Err(pair) => {
                thread::yield_now();
                pair
            }
        };
    }
    (pair, got)
}

/// After both threads end: any edge still latched and enabled is taken; then work pending
/// must mean a notification is outstanding (`Fired`) -- otherwise it was lost. The owner
/// then handles what is outstanding, and every packet must have been processed exactly once
/// with the line armed and unmasked.
fn settle_and_check(rig: &Rig, mut pair: Pair, mut got: Vec<u64>, packets: usize) {
    let _ = deliver(rig.gic, rig.ctl, 0);
    let status = pair.line().status();
    assert!(
        !pair.ring().has_pending() || status == LineStatus::Fired,
        "lost notification: work pending but the line is {status:?} with nothing outstanding"
    );
    for _ in 0..2 {
        pair = match napi::take(pair) {
            Ok(round) => napi_round(rig, round, &mut got),
            Err(pair) => pair,
        };
    }
    got.sort_unstable();
    let before = got.len();
    got.dedup();
    assert_eq!(before, got.len(), "a packet was processed twice");
    assert_eq!(got.len(), packets, "a packet was never processed");
    assert!(!pair.ring().has_pending());
    assert_eq!(pair.line().status(), LineStatus::Armed, "line left masked");
    assert!(!rig.gic.is_masked() && !rig.gic.is_pending());
}

/// Executions explored by the last model, printed so a run shows the model did real work.
static EXECUTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn napi_model(packets: usize, event_idx: bool, bound: Option<usize>) {
    EXECUTIONS.store(0, std::sync::atomic::Ordering::Relaxed);
    builder(bound).check(move || {
        EXECUTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let World {
            rig,
            pair,
            dev,
            work,
        } = world(packets, event_idx);
        let rig: &'static Rig = Box::leak(Box::new(rig));
        let device = thread::spawn(move || device_and_isr(rig, dev, work));
        let (pair, got) = poller(rig, pair);
        device.join().unwrap();
        settle_and_check(rig, pair, got, packets);
    });
    let n = EXECUTIONS.load(std::sync::atomic::Ordering::Relaxed);
    std::println!(
        "napi model, {packets} packet(s), event_idx {event_idx}, preemption bound {bound:?}: \
         {n} executions explored"
    );
    assert!(n > 1, "the model explored no interleavings");
}

#[test]
fn napi_one_packet() {
    napi_model(1, false, Some(3));
}

#[test]
fn napi_two_packets() {
    napi_model(2, false, Some(3));
}

#[test]
fn napi_two_packets_event_idx() {
    napi_model(2, true, Some(3));
}

/// No preemption bound: every interleaving of two packets (a few thousand executions).
#[test]
fn napi_two_packets_exhaustive() {
    napi_model(2, false, None);
}

/// A quiet check that reads nothing: the broken poller's way around the recheck.
struct Liar;

// SAFETY: deliberately broken (answers without reading the device), for the must-fail
// model only.
unsafe impl QuietCheck for Liar {
    fn is_quiet(&self, _: &Seal) -> bool {
        true
    }
}

/// The broken poller: it keeps line and ring apart (the ring polled, device interrupts
/// switched by hand) and, after a drain that finds the ring empty, re-enables device
/// interrupts by hand and re-arms the line on a `Liar` quiet check: `enable_and_recheck`
/// without the recheck.
fn broken_poller(
    rig: &Rig,
    dev_view: &ModelDevice,
    mut line: IrqLine<Armed>,
    mut vq: Ring<Polled>,
) -> (IrqLine<Armed>, Ring<Polled>, Vec<u64>) {
    let mut got = Vec::new();
    for _ in 0..ATTEMPTS {
        line = match line.try_take() {
            Ok(draining) => {
                dev_view.driver_writes_flag(true);
                while let Some(c) = vq.pop_used() {
                    got.push(c.unwrap().cookie);
                }
                dev_view.driver_writes_flag(false);
                let (quiet, draining) = quiesce(draining, &Liar).ok().unwrap();
                let armed = draining.rearm(quiet);
                let _ = deliver(rig.gic, rig.ctl, 0);
                armed
            }
            Err(l) => {
                thread::yield_now();
                l
            }
        };
    }
    (line, vq, got)
}

#[test]
#[should_panic(expected = "lost notification")]
fn napi_without_recheck_loses_a_packet() {
    builder(Some(3)).check(|| {
        let rig: &'static Rig = Box::leak(Box::new(Rig::new()));
        let mut vq: Ring<Armed> = Vring::new(rig.mem, false, &DmaDevice::new()).unwrap();
        for c in 0..2 {
            vq.post(rig.pool.alloc(8, 8).unwrap(), BufDir::DeviceWrites, c)
                .unwrap();
        }
        let mut dev = ModelDevice::new(rig.mem, false);
        let work: Vec<_> = std::iter::from_fn(|| dev.consume()).collect();
        let vq = vq.into_polled();
        let view = ModelDevice::new(rig.mem, false);
        view.driver_writes_flag(false);
        let line = rig.ctl.mint(INTID, Trigger::Edge, Owner(1)).unwrap().arm();
        let device = thread::spawn(move || device_and_isr(rig, dev, work));
        let (line, vq, got) = broken_poller(rig, &view, line, vq);
        device.join().unwrap();
        let _ = deliver(rig.gic, rig.ctl, 0);
        let status = line.status();
        assert!(
            !vq.has_pending() || status == LineStatus::Fired,
            "lost notification: work pending but the line is {status:?} with nothing outstanding"
        );
        // Not reached when the notification was lost; otherwise the owner handles what is
        // outstanding and the model must pass.
        let (_, _, more) = broken_poller(rig, &view, line, vq);
        assert_eq!(got.len() + more.len(), 2, "a packet was never processed");
    });
}
