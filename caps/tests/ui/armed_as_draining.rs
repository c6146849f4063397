//! Rule: an armed pair is not a round: only `napi::take` (which needs the line to have
//! fired) turns one into the other.
use caps::napi::{self, NapiLine};
use caps::{DmaHal, RingMemory};

fn drain<M: RingMemory, H: DmaHal>(pair: NapiLine<M, H, 8>) {
    let _ = napi::poll(pair, 64, |_| ());
}

fn main() {}
