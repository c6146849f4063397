//! Rule: a ring is suppressed for a round only by `napi::take`, beside its masked line.
use caps::{Armed, DmaHal, RingMemory, Suppressed, Vring};

fn sneak<M: RingMemory, H: DmaHal>(ring: Vring<Armed, M, H, 8>) -> Vring<Suppressed, M, H, 8> {
    ring.suppress()
}

fn main() {}
