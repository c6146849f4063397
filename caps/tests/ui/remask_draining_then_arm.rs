//! Rule: a draining line goes back to `Armed` only by `rearm(Quiesced)`. The review's
//! misuse: mask it, then `arm` (which needs no proof).
use caps::{Armed, Draining, IrqLine};

fn sneak(line: IrqLine<Draining>) -> IrqLine<Armed> {
    line.mask().arm()
}

fn main() {}
