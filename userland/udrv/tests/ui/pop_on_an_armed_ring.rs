//! Rule: a ring whose interrupts are on is not drained: a completion popped there races
//! the interrupt the device raises for it. `pop_used` exists only inside a round or on a
//! polled ring.
use udrv::vring::{Napi, Vring};
use udrv::{Armed, DevSys};

fn drain_armed<B: DevSys>(ring: &mut Vring<Armed, B, 8>) {
    let _ = ring.pop_used();
}

fn drain_between_rounds<B: DevSys>(pair: &mut Napi<B, 8>) {
    let _ = pair.pop_used();
}

fn main() {}
