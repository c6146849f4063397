//! Rule: an `Armed` line is not a `Draining` one; only `try_take` gets there.
use caps::{Armed, DmaHal, IrqLine, RingMemory, Suppressed, Vring};

fn drain<M: RingMemory, H: DmaHal>(line: IrqLine<Armed>, vq: Vring<Suppressed, M, H, 8>) {
    let _ = caps::napi::poll(line, vq, 64, |_| ());
}

fn main() {}
