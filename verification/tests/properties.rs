//! The Kani properties of `verification` as ordinary proptest tests.
//!
//! Kani proves each property within small bounds but only where Kani is installed; these
//! tests run the very same property functions with random inputs (256 cases each), so every
//! `cargo test` exercises them. The deliberately broken variants are run against the inputs
//! that break them, to show the property functions can fail.

use proptest::prelude::*;
use verification::fakes::MAX_BUF;
use verification::*;

/// The model CPU's IRQ mask is one global flag (`fakes::ModelCpu`): the tests that touch it
/// (every protocol run delivers interrupts through it) take this lock so they do not share
/// it across test threads.
static MODEL_CPU: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn model_cpu() -> std::sync::MutexGuard<'static, ()> {
    MODEL_CPU
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn ring_op() -> impl Strategy<Value = RingOp> {
    prop_oneof![
        any::<u8>().prop_map(RingOp::Post),
        any::<u8>().prop_map(RingOp::Complete),
        (0u32..10, 0u32..=(MAX_BUF as u32 + 2)).prop_map(|(i, l)| RingOp::Hostile(i, l)),
        (any::<u32>(), any::<u32>()).prop_map(|(i, l)| RingOp::Hostile(i, l)),
        Just(RingOp::Pop),
    ]
}

fn cs_op() -> impl Strategy<Value = CsOp> {
    prop_oneof![
        any::<u8>().prop_map(CsOp::Insert),
        any::<u8>().prop_map(CsOp::Remove),
        any::<u8>().prop_map(CsOp::Grant),
        (any::<u32>(), any::<u8>()).prop_map(|(r, t)| CsOp::Probe(r, t)),
        // Forged handles near the ones a table issues: tag bit, small index, low generation.
        (0u32..2, 0u32..4, any::<u8>())
            .prop_map(|(i, g, t)| CsOp::Probe(0x8000_0000 | (g << 12) | i, t)),
    ]
}

fn vec_op() -> impl Strategy<Value = VecOp> {
    prop_oneof![Just(VecOp::Alloc), any::<u8>().prop_map(VecOp::Free)]
}

fn lock_op() -> impl Strategy<Value = LockOp> {
    prop_oneof![
        Just(LockOp::LockA),
        Just(LockOp::LockB),
        Just(LockOp::Release),
        Just(LockOp::Interrupt),
    ]
}

fn proto_op() -> impl Strategy<Value = ProtoOp> {
    prop_oneof![
        any::<u8>().prop_map(ProtoOp::Publish),
        Just(ProtoOp::Deliver),
        any::<u8>().prop_map(ProtoOp::Step),
        Just(ProtoOp::Nothing),
    ]
}

fn generation() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        (abi::handle::GENERATION_MAX - 3)..=abi::handle::GENERATION_MAX
    ]
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn ring_index_wrap(used: u16, last: u16, event: u16, qsz_log2: u8) {
        prop_ring_index_wrap(used, last, event, qsz_log2);
    }

    #[test]
    fn ring_index_wrap_near_window(last: u16, ahead in 0u16..20, event: u16, qsz_log2: u8) {
        prop_ring_index_wrap(last.wrapping_add(ahead), last, event, qsz_log2);
    }

    #[test]
    fn used_elem_validation_in_bounds(
        id in prop_oneof![0u32..10, any::<u32>()],
        len in prop_oneof![0u32..10, any::<u32>()],
        qsz_log2: u8,
        in_flight: u8,
        posted in proptest::array::uniform8(0u32..10),
    ) {
        prop_used_elem_validation_in_bounds(id, len, qsz_log2, in_flight, posted);
    }

    #[test]
    fn pop_used_hostile_device(
        lens: [u8; 4],
        elems in proptest::array::uniform2((0u32..6, 0u32..10)),
        bump in prop_oneof![Just(0u16), 0u16..8, any::<u16>()],
    ) {
        prop_pop_used_hostile_device(lens, elems, bump);
    }

    #[test]
    fn in_flight_never_exceeds_queue(ops in proptest::collection::vec(ring_op(), 0..=MAX_OPS)) {
        prop_in_flight_never_exceeds_queue(&ops);
    }

    #[test]
    fn cspace_stale_handle_never_resolves(
        gens in proptest::array::uniform2(generation()),
        ops in proptest::collection::vec(cs_op(), 0..=MAX_OPS),
    ) {
        prop_cspace_stale_handle_never_resolves(gens, &ops);
    }

    #[test]
    fn vector_allocator_no_double_alloc(
        count in 0u32..=VEC_SPAN as u32,
        taken in prop_oneof![Just(0u64), (0u32..8).prop_map(|k| u64::MAX >> k), any::<u64>()],
        ops in proptest::collection::vec(vec_op(), 0..=MAX_OPS),
    ) {
        let _ = prop_vector_allocator_no_double_alloc::<VEC_SPAN>(count, taken, &ops);
    }

    #[test]
    fn irqsafe_masks_while_held(ops in proptest::collection::vec(lock_op(), 0..=MAX_OPS)) {
        let _cpu = model_cpu();
        prop_irqsafe_masks_while_held(&ops);
    }

    #[test]
    fn protocol_invariant(
        event_idx: bool,
        ops in proptest::collection::vec(proto_op(), 0..=MAX_PROTO_OPS),
    ) {
        let _cpu = model_cpu();
        let _ = prop_protocol_invariant(event_idx, &ops);
    }
}

/// The broken validator accepts a descriptor that is not in flight.
#[test]
#[should_panic(expected = "not in flight")]
fn used_elem_validation_broken_no_in_flight_check() {
    let _ =
        prop_used_elem_validation_with(validator_without_in_flight_check, 1, 0, 2, 0b01, [4; 8]);
}

/// The broken driver re-arms without the recheck: a packet published between its last
/// (empty) poll and the re-enable is never processed.
#[test]
#[should_panic(expected = "lost notification")]
fn protocol_broken_no_recheck() {
    use ProtoOp::*;
    // Complete, interrupt, take, poll (the ring is then empty), complete while suppressed,
    // re-enable without recheck.
    let ops = [Publish(4), Deliver, Step(0), Step(0), Publish(4), Step(0)];
    let _cpu = model_cpu();
    let _ = prop_protocol_with(Driver::NoRecheck, false, &ops);
}

/// The same interleaving with the real driver: `enable_and_recheck` sees the race.
#[test]
fn protocol_same_race_with_recheck() {
    use ProtoOp::*;
    // Complete, interrupt, take, poll (empty after), complete while suppressed, recheck
    // (races), poll, recheck, rearm.
    let ops = [
        Publish(4),
        Deliver,
        Step(0),
        Step(0),
        Publish(4),
        Step(0),
        Step(0),
        Step(0),
        Step(0),
    ];
    let _cpu = model_cpu();
    let seen = prop_protocol_invariant(false, &ops);
    assert!(seen.raced, "the recheck saw the race");
}
