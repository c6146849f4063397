//! Rule: a draining line re-arms only with a `Quiesced` proof.
use udrv::{Armed, DevSys, Draining, IrqLine};

fn sneak<B: DevSys>(line: IrqLine<Draining, B>) -> IrqLine<Armed, B> {
    line.rearm().ok().unwrap()
}

fn main() {}
