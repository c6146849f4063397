//! Rule: a `Draining` line cannot be unmasked except by `rearm(Quiesced)`.
use caps::{Draining, IrqLine};

fn sneak(line: IrqLine<Draining>) {
    let _ = line.arm();
}

fn main() {}
