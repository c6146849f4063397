//! Rule: a ring is suppressed only by `Napi::wait`, together with its line going
//! `Draining`: a suppressed ring beside an armed line would never interrupt again.
use udrv::vring::Vring;
use udrv::{Armed, DevSys};

fn quietly<B: DevSys>(ring: Vring<Armed, B, 8>) {
    let mut ring = ring.suppress();
    let _ = ring.pop_used();
}

fn main() {}
