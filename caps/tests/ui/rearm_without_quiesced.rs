//! Rule: a draining line is rearmed only with a `Quiesced` proof.
use caps::{Draining, IrqLine};

fn no_proof(line: IrqLine<Draining>) {
    let _ = line.rearm();
}

fn main() {}
