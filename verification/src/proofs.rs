//! Kani harnesses: each property of `props.rs` and `protocol.rs` for every input within
//! bounds.
//!
//! Each harness only chooses inputs with `kani::any()` and calls the same property function
//! that `tests/properties.rs` runs under proptest, so a proof and its test cannot drift. The
//! `*_broken_*` harnesses run deliberately broken variants, which must fail the one check
//! they are about and no other (`check::expect_failure`: they verify, and their cover of
//! `check::intended_failed()` must be satisfied), which shows the properties are strong enough to
//! catch the bugs they are about. Every harness has `kani::cover`s (`reach!`) for its
//! interesting branches; `scripts/kani` fails if one is not satisfied. A cover is compiled
//! into every harness that calls the function holding it, reached or not, so a property
//! whose harnesses reach different branches returns what it went through (`CsSeen`, `Seen`)
//! and each harness covers the branches its bounds reach.
//!
//! Most operation-sequence properties are proved over fixed skeletons with symbolic payloads
//! (or a few symbolic choices per step): fully symbolic sequences of several operations did
//! not finish within minutes on a 2-core machine, and proptest covers longer arbitrary
//! sequences. `IrqSafe` is proved over every sequence of 8 steps. The protocol harnesses run
//! the small model of `protocol.rs` (a 2-entry ring, one INTID) over six ops, four of them
//! fully symbolic (five and three after two completions with event index), and take 5-12
//! minutes and about 5 GB each, so only a full
//! `scripts/kani` runs them (docs/verification.md has every harness's cost). Run with
//! `verification/run-kani` (or `scripts/kani`, which verifies harnesses in parallel).

use crate::props::*;
use crate::protocol::*;

#[kani::proof]
fn ring_index_wrap() {
    prop_ring_index_wrap(kani::any(), kani::any(), kani::any(), kani::any());
}

#[kani::proof]
fn used_elem_validation_in_bounds() {
    let verdict = prop_used_elem_validation_with(
        real_validator,
        kani::any(),
        kani::any(),
        kani::any(),
        kani::any(),
        kani::any(),
    );
    kani::cover!(verdict.is_ok(), "an element is accepted");
    kani::cover!(
        matches!(verdict, Err(caps::vring::UsedError::IdOutOfRange { .. })),
        "an id out of range is refused"
    );
    kani::cover!(
        matches!(verdict, Err(caps::vring::UsedError::NotInFlight { .. })),
        "an id not in flight is refused"
    );
    kani::cover!(
        matches!(verdict, Err(caps::vring::UsedError::LenTooLong { .. })),
        "a len past the buffer is refused"
    );
}

/// The validator without the in-flight check fails the in-flight check, and only it
/// (`check::expect_failure`: every other check is assumed; the harness's cover "the
/// intended check fails" must be satisfied).
#[kani::proof]
fn used_elem_validation_broken_no_in_flight_check() {
    crate::check::expect_failure(crate::check::Expect::NotInFlight);
    let _verdict = prop_used_elem_validation_with(
        validator_without_in_flight_check,
        kani::any(),
        kani::any(),
        kani::any(),
        kani::any(),
        kani::any(),
    );
    kani::cover!(crate::check::intended_failed(), "the in-flight check fails");
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

/// Insert, drop, insert again (the slot reused one generation on, or, if the drop retired
/// it at `GENERATION_MAX`, the other slot), insert once more (the table then full or its
/// other slot retired: refused), probe a forged handle. Both tables' slots start at
/// arbitrary generations.
#[kani::proof]
#[kani::unwind(6)]
fn cspace_stale_handle_never_resolves() {
    use CsOp::*;
    let ops = [
        Insert(kani::any()),
        Remove(kani::any()),
        Insert(kani::any()),
        Insert(kani::any()),
        Probe(kani::any(), kani::any()),
    ];
    let seen = prop_cspace_stale_handle_never_resolves(kani::any(), &ops);
    kani::cover!(seen.retired, "a slot at the last generation is retired");
    kani::cover!(
        seen.insert_refused,
        "a full (or retired) table refuses an insert"
    );
}

/// Insert, grant to the other table, drop either handle (the granted-away one is stale),
/// insert again (reusing the slot the grant emptied, or the other one if it retired), probe
/// a forged handle in either table; arbitrary starting generations.
#[kani::proof]
#[kani::unwind(6)]
fn cspace_granted_handle_goes_stale() {
    use CsOp::*;
    let ops = [
        Insert(kani::any()),
        Grant(kani::any()),
        Remove(kani::any()),
        Insert(kani::any()),
        Probe(kani::any(), kani::any()),
    ];
    let seen = prop_cspace_stale_handle_never_resolves(kani::any(), &ops);
    kani::cover!(seen.granted, "a capability is granted to the other table");
    kani::cover!(seen.stale_refused, "a stale handle is refused");
}

/// Allocate, allocate, drop any, allocate, on a range of 0..=4 vectors carved from a
/// 4-INTID control.
#[kani::proof]
#[kani::unwind(6)]
fn vector_allocator_no_double_alloc() {
    use VecOp::*;
    let ops = [Alloc, Alloc, Free(kani::any()), Alloc];
    let count: u32 = kani::any_where(|&c| c <= 4);
    let highest = prop_vector_allocator_no_double_alloc::<4>(count, 0, &ops);
    kani::cover!(highest == 3, "three vectors handed out");
}

/// The same across a bitmap word: 66 vectors, the first 63 held elsewhere, so the first
/// allocation takes the last vector of the first 64-bit word and the second one the first
/// of the second word; then a free of any held vector (or none), and two more allocations:
/// back into the first word, on into the second, or `ENOSPC` once all three are held.
#[kani::proof]
#[kani::unwind(68)]
fn vector_allocator_crosses_a_word() {
    use VecOp::*;
    let ops = [Alloc, Alloc, Free(kani::any()), Alloc, Alloc];
    let highest = prop_vector_allocator_no_double_alloc::<66>(66, u64::MAX >> 1, &ops);
    kani::cover!(highest > 64, "a vector from the second bitmap word");
}

/// Two `IrqSafe` locks, any nesting, releases and interrupts: every sequence of
/// `MAX_OPS` (8) steps, as long as the proptest twin's.
#[kani::proof]
#[kani::unwind(9)]
fn irqsafe_masks_while_held() {
    let ops: [LockOp; MAX_OPS] = kani::any();
    prop_irqsafe_masks_while_held(&ops);
}

/// Kani 0.64 models a failed `compare_exchange` as a success (model-checking/kani#4537), so
/// `IrqLine::try_take` on a line that has not fired would "succeed". Harnesses whose code
/// relies on a failing exchange replace it with this sequential model (load, compare, store).
#[allow(dead_code, reason = "only named by #[kani::stub]")]
fn sequential_cas_u8(
    atomic: &core::sync::atomic::AtomicU8,
    current: u8,
    new: u8,
    _success: core::sync::atomic::Ordering,
    _failure: core::sync::atomic::Ordering,
) -> Result<u8, u8> {
    use core::sync::atomic::Ordering::SeqCst;
    let old = atomic.load(SeqCst);
    if old == current {
        atomic.store(new, SeqCst);
        Ok(old)
    } else {
        Err(old)
    }
}

/// A completion's length: the model's buffers are one byte and the device caps a length
/// at the buffer's, so 0 and 1 are the only lengths it can publish.
fn any_len() -> u8 {
    u8::from(kani::any::<bool>())
}

/// One protocol step: the device publishes (either length), the CPU takes a pending
/// interrupt, the driver makes its next move with poll budget 1 or `PQ`, or nothing happens.
fn any_protocol_step() -> ProtoOp {
    match kani::any::<u8>() % 5 {
        0 => ProtoOp::Publish(any_len()),
        1 => ProtoOp::Deliver,
        2 => ProtoOp::Step(0),
        3 => ProtoOp::Step(1),
        _ => ProtoOp::Nothing,
    }
}

/// The protocol's interesting moments that every protocol harness reaches. (A cover is
/// compiled into each harness that calls it, whether or not its line runs, so the race
/// cover, reachable only by the harnesses that start with a completion and its interrupt,
/// is in those harnesses: after two completions on a 2-entry ring nothing more can be
/// published until the round ends, too late for a race within the bound.)
fn cover_protocol(seen: Seen) {
    kani::cover!(seen.budget_spent, "a poll spends its budget");
    kani::cover!(
        seen.pending_notified,
        "work pending with its notification outstanding"
    );
    kani::cover!(
        seen.arrived_while_draining,
        "work arriving while the owner drains"
    );
}

/// A completion, then `second`, then four symbolic steps; `prop_protocol_with` then lets the
/// system settle, checking the invariants after every move. Before the first completion
/// every op is a no-op (nothing is pending, so `take` fails and there is nothing to
/// deliver), and right after it the only ops that change anything are another completion or
/// the interrupt; so the harnesses with `second` = `Publish` and `second` = `Deliver`
/// between them cover every sequence of up to six ops that does anything after its first
/// completion.
fn protocol_ops(second: ProtoOp) -> [ProtoOp; 6] {
    [
        ProtoOp::Publish(any_len()),
        second,
        any_protocol_step(),
        any_protocol_step(),
        any_protocol_step(),
        any_protocol_step(),
    ]
}

/// Invariants 3 and 5 of docs/caps.md after two completions, over every continuation.
#[kani::proof]
#[kani::unwind(9)]
#[kani::stub(core::sync::atomic::AtomicU8::compare_exchange, sequential_cas_u8)]
fn protocol_invariant_completion_completion() {
    let seen = prop_protocol_invariant(false, &protocol_ops(ProtoOp::Publish(any_len())));
    cover_protocol(seen);
}

/// Invariants 3 and 5 after a completion and its interrupt, over every continuation.
#[kani::proof]
#[kani::unwind(9)]
#[kani::stub(core::sync::atomic::AtomicU8::compare_exchange, sequential_cas_u8)]
fn protocol_invariant_completion_interrupt() {
    let seen = prop_protocol_invariant(false, &protocol_ops(ProtoOp::Deliver));
    kani::cover!(seen.raced, "the recheck sees a race");
    cover_protocol(seen);
}

/// The same with `VIRTIO_F_EVENT_IDX` (suppression is `used_event` left behind), after a
/// completion and its interrupt.
#[kani::proof]
#[kani::unwind(9)]
#[kani::stub(core::sync::atomic::AtomicU8::compare_exchange, sequential_cas_u8)]
fn protocol_invariant_event_idx() {
    let seen = prop_protocol_invariant(true, &protocol_ops(ProtoOp::Deliver));
    kani::cover!(seen.raced, "the recheck sees a race");
    cover_protocol(seen);
}

/// With `VIRTIO_F_EVENT_IDX`, after two completions, then three symbolic ops: with the
/// harness above, every sequence of up to five ops that does anything after its first
/// completion (six, as for the flag, took a quarter of an hour of CPU; docs/verification.md).
#[kani::proof]
#[kani::unwind(9)]
#[kani::stub(core::sync::atomic::AtomicU8::compare_exchange, sequential_cas_u8)]
fn protocol_invariant_event_idx_completion_completion() {
    let ops = [
        ProtoOp::Publish(any_len()),
        ProtoOp::Publish(any_len()),
        any_protocol_step(),
        any_protocol_step(),
        any_protocol_step(),
    ];
    cover_protocol(prop_protocol_invariant(true, &ops));
}

/// The driver that re-arms on a lying quiet check, without the recheck, is caught by "lost
/// notification" and by nothing else (`check::expect_failure`).
#[kani::proof]
#[kani::unwind(9)]
#[kani::stub(core::sync::atomic::AtomicU8::compare_exchange, sequential_cas_u8)]
fn protocol_broken_no_recheck() {
    crate::check::expect_failure(crate::check::Expect::LostNotification);
    let _ = prop_protocol_with(Driver::NoRecheck, false, &protocol_ops(ProtoOp::Deliver));
    kani::cover!(
        crate::check::intended_failed(),
        "the lost-notification check fails"
    );
}
