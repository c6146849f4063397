//! Rule: only `caps::napi` mints a `Quiesced` proof.
use caps::{Draining, IrqLine, Quiesced};

fn forged_proof(line: IrqLine<Draining>) {
    let intid = line.intid();
    let _ = line.rearm(Quiesced { intid });
}

fn main() {}
