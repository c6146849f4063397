//! loom model: two CPUs allocating and freeing MSI vectors from one allocator at once.
//!
//! `VectorAllocator` is lock-free: a CPU claims a free bit of a bitmap word with one
//! compare-exchange and retries if another CPU changed the word first. A load-then-store
//! claim passes every sequential test, proptest and Kani harness (they never interleave two
//! allocations), and hands one vector to two devices under a race. This model runs the real
//! allocator (`caps::sync` atomics are loom's under `--cfg loom`) in two threads, each
//! allocating, holding, freeing and allocating again, and checks that no vector is ever
//! held twice or held unmarked, and that every vector comes back; a second model swaps in
//! the load-then-store claim
//! (`VectorAllocator::alloc_with_claim`, feature `verification-hooks`) and must be caught.
#![cfg(loom)]

use caps::irq::IrqControl;
use caps::msi::{ClaimBit, MsiData, MsiRange, VectorAllocator};
use caps::sync::{AtomicU8, AtomicU64, Ordering};
use loom::thread;
use verification::fakes::{ModelGic, control, leak};

const BASE: u32 = 64;

/// A broken claim: reads the word, then writes the bit back, as two steps.
fn load_then_store(word: &AtomicU64, seen: u64, bit: u64) -> Result<(), u64> {
    let now = word.load(Ordering::Acquire);
    if now != seen {
        return Err(now);
    }
    word.store(now | bit, Ordering::Release);
    Ok(())
}

/// One CPU: twice, allocate a vector, mark it held (it must not be held already, and the
/// allocator must show it allocated, or it could be handed out again), unmark it, free it.
fn user(a: &'static VectorAllocator, held: &'static [AtomicU8; 2], claim: Option<ClaimBit>) {
    for _ in 0..2 {
        let v = match claim {
            Some(c) => a.alloc_with_claim(c),
            None => a.alloc(),
        };
        let v = v.expect("two vectors, two CPUs holding at most one each");
        let i = (v.intid() - BASE) as usize;
        assert_eq!(
            held[i].fetch_add(1, Ordering::SeqCst),
            0,
            "vector handed out twice"
        );
        held[i].fetch_sub(1, Ordering::SeqCst);
        drop(v);
    }
}

/// Executions the last model explored (a model that explores one proves nothing).
static EXECUTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn model(claim: Option<ClaimBit>) {
    EXECUTIONS.store(0, std::sync::atomic::Ordering::Relaxed);
    loom::model(move || {
        EXECUTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ctl: &'static IrqControl<2> = control(leak(ModelGic::new()), BASE);
        let range = MsiRange {
            base: BASE,
            count: 2,
            doorbell: 0x0802_0040,
            data: MsiData::Intid,
        };
        let a: &'static VectorAllocator = leak(ctl.msi_vectors(range).unwrap());
        let held: &'static [AtomicU8; 2] = leak([AtomicU8::new(0), AtomicU8::new(0)]);
        let other = thread::spawn(move || user(a, held, claim));
        user(a, held, claim);
        other.join().unwrap();
        assert_eq!(
            a.in_use(),
            0,
            "racing allocations: a freed vector stays allocated"
        );
    });
    let n = EXECUTIONS.load(std::sync::atomic::Ordering::Relaxed);
    std::println!("{n} executions explored");
    assert!(n > 1, "the model explored no interleavings");
}

#[test]
fn vector_allocation_and_free_race_never_duplicates() {
    model(None);
}

#[test]
#[should_panic(expected = "racing allocations")]
fn load_then_store_allocator_hands_a_vector_out_twice() {
    model(Some(load_then_store));
}
