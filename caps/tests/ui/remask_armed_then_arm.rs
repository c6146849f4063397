//! Rule: masking an armed line (whose ISR may just have fired) gives `Draining`, not a fresh
//! `Masked` line, so `arm` cannot skip the proof.
use caps::{Armed, IrqLine};

fn sneak(line: IrqLine<Armed>) -> IrqLine<Armed> {
    line.mask().arm()
}

fn main() {}
