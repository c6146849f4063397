//! Rule: a ring is released on a read of its device made at release time, not on a proof
//! kept from earlier (the review's misuse: one `&TransferDone` freeing any ring).
use caps::dma::TransferDone;
use caps::{Armed, DmaHal, RingMemory, Vring};

fn sneak<M: RingMemory, H: DmaHal>(ring: Vring<Armed, M, H, 8>, done: &TransferDone) {
    let _ = ring.release(done);
}

fn main() {}
