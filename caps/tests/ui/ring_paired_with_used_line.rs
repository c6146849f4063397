//! Rule: a ring is paired only with a fresh line: not one that was armed elsewhere.
use caps::napi::NapiLine;
use caps::{Armed, DmaHal, Draining, IrqLine, RingMemory, Vring};

fn sneak<M: RingMemory, H: DmaHal>(line: IrqLine<Draining>, ring: Vring<Armed, M, H, 8>) {
    let _ = NapiLine::new(line, ring);
}

fn main() {}
