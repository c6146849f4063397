//! Rule: masking an armed line gives `Draining`, not a fresh `Masked` line, so `arm`
//! cannot skip the proof.
use udrv::{Armed, DevSys, IrqLine};

fn sneak<B: DevSys>(line: IrqLine<Armed, B>) -> IrqLine<Armed, B> {
    line.mask().unwrap().arm().unwrap()
}

fn main() {}
