//! Rule: a NAPI round cannot be assembled from a line and a ring of one's choosing.
use caps::napi::Round;
use caps::{DmaHal, Draining, IrqLine, RingMemory, Suppressed, Vring};

fn sneak<M: RingMemory, H: DmaHal>(
    line: IrqLine<Draining>,
    ring: Vring<Suppressed, M, H, 8>,
) -> Round<M, H, 8> {
    Round { line, ring }
}

fn main() {}
