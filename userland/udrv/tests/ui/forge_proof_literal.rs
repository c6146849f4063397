//! Rule: only `quiesce` mints a proof; its field is private, so no struct literal.
use udrv::{Armed, DevSys, Draining, IrqLine, Quiesced};

fn sneak<B: DevSys>(line: IrqLine<Draining, B>) -> IrqLine<Armed, B> {
    let proof = Quiesced { line: line.id() };
    line.rearm(proof).ok().unwrap()
}

fn main() {}
