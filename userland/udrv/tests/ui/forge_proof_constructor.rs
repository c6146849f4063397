//! Rule: only `quiesce` mints a proof; there is no constructor or `Default`.
use udrv::{DevSys, Draining, IrqLine, Quiesced};

fn sneak<B: DevSys>(line: &IrqLine<Draining, B>) -> (Quiesced, Quiesced) {
    (Quiesced::new(line.id()), Quiesced::default())
}

fn main() {}
