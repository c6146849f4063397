//! Kani harnesses: each property of `props.rs` for every input within bounds.
//!
//! Each harness only chooses inputs with `kani::any()` and calls the same property function
//! that `tests/properties.rs` runs under proptest, so a proof and its test cannot drift. The
//! `*_broken_*` harnesses run deliberately broken variants and must fail
//! (`#[kani::should_panic]`), which shows the properties are strong enough to catch the bugs
//! they are about. The operation-sequence properties are proved over fixed skeletons with
//! symbolic payloads (or a few symbolic choices per step): fully symbolic sequences of
//! several operations did not finish within minutes on a 2-core machine, and proptest covers
//! arbitrary sequences. The protocol harnesses did not finish symbolic execution within
//! minutes on a 2-core machine even over concrete schedules, so they sit behind feature
//! `slow-proofs` (`verification/run-kani --features slow-proofs`); the protocol invariant is
//! covered by proptest and the loom models meanwhile. Run with `verification/run-kani`.

use crate::props::*;

#[kani::proof]
fn ring_index_wrap() {
    prop_ring_index_wrap(kani::any(), kani::any(), kani::any(), kani::any());
}

#[kani::proof]
fn used_elem_validation_in_bounds() {
    prop_used_elem_validation_in_bounds(
        kani::any(),
        kani::any(),
        kani::any(),
        kani::any(),
        kani::any(),
    );
}

#[kani::proof]
#[kani::should_panic]
fn used_elem_validation_broken_no_in_flight_check() {
    prop_used_elem_validation_with(
        validator_without_in_flight_check,
        kani::any(),
        kani::any(),
        kani::any(),
        kani::any(),
        kani::any(),
    );
}

#[kani::proof]
#[kani::unwind(5)]
fn pop_used_hostile_device() {
    prop_pop_used_hostile_device(kani::any(), kani::any(), kani::any());
}

/// Fill the queue, try one more, let a hostile device complete anything, pop, post again.
#[kani::proof]
#[kani::unwind(9)]
fn in_flight_never_exceeds_queue() {
    use RingOp::*;
    let ops = [
        Post(kani::any()),
        Post(kani::any()),
        Post(kani::any()),
        Post(kani::any()),
        Post(kani::any()),
        Hostile(kani::any(), kani::any()),
        Pop,
        Post(kani::any()),
    ];
    prop_in_flight_never_exceeds_queue(&ops);
}

/// Insert, drop, insert again (slot reuse, from arbitrary starting generations, so
/// retirement at `GENERATION_MAX` is included), grant either handle, probe a forged one.
#[kani::proof]
#[kani::unwind(6)]
fn cspace_stale_handle_never_resolves() {
    use CsOp::*;
    let ops = [
        Insert(kani::any()),
        Remove(kani::any()),
        Insert(kani::any()),
        Grant(kani::any()),
        Probe(kani::any(), kani::any()),
    ];
    prop_cspace_stale_handle_never_resolves(kani::any(), &ops);
}

/// Allocate, allocate, drop any, allocate, on a range of 0..=4 vectors.
#[kani::proof]
#[kani::unwind(6)]
fn vector_allocator_no_double_alloc() {
    use VecOp::*;
    let ops = [Alloc, Alloc, Free(kani::any()), Alloc];
    prop_vector_allocator_no_double_alloc(kani::any(), &ops);
}

/// The driver's full NAPI round (`Step`s) after a first completion and interrupt, with a
/// second completion and interrupt delivery inserted after driver step `p`: every race
/// window of the round (before take, during poll, between drain and recheck, between
/// recheck and rearm, after rearm), with any lengths. The schedule is concrete (full-budget
/// polls) so Kani's formula stays small; proptest varies budgets and orders freely.
#[cfg(feature = "slow-proofs")]
fn race_at(p: usize) -> [ProtoOp; 10] {
    let mut ops = [ProtoOp::Step(0); 10];
    ops[0] = ProtoOp::Publish(kani::any());
    ops[1] = ProtoOp::Deliver;
    let mut k = 2;
    for step in 0..6 {
        if step == p {
            ops[k] = ProtoOp::Publish(kani::any());
            ops[k + 1] = ProtoOp::Deliver;
            k += 2;
        }
        if k < ops.len() {
            ops[k] = ProtoOp::Step(3);
            k += 1;
        }
    }
    ops
}

macro_rules! protocol_race {
    ($($name:ident = ($p:expr, $event_idx:expr)),* $(,)?) => {$(
        #[cfg(feature = "slow-proofs")]
        #[kani::proof]
        #[kani::unwind(11)]
        fn $name() {
            prop_protocol_invariant($event_idx, &race_at($p));
        }
    )*};
}

protocol_race!(
    protocol_invariant_race_before_take = (0, false),
    protocol_invariant_race_after_take = (1, false),
    protocol_invariant_race_after_poll = (2, false),
    protocol_invariant_race_after_recheck = (3, false),
    protocol_invariant_race_late = (4, false),
    protocol_invariant_race_after_poll_event_idx = (2, true),
    protocol_invariant_race_after_recheck_event_idx = (3, true),
);

/// The broken driver on the race it cannot see: complete, interrupt, take, poll (the ring
/// is then empty), complete while suppressed, re-enable without recheck.
#[cfg(feature = "slow-proofs")]
#[kani::proof]
#[kani::unwind(11)]
#[kani::should_panic]
fn protocol_broken_no_recheck() {
    use ProtoOp::*;
    let ops = [
        Publish(kani::any()),
        Deliver,
        Step(3),
        Step(3),
        Publish(kani::any()),
        Step(3),
    ];
    prop_protocol_with(Driver::NoRecheck, false, &ops);
}
