//! Rule: only `caps::napi` mints a `Quiesced` proof.
use caps::{Draining, IrqLine, Quiesced};

fn forged_proof(line: IrqLine<Draining>) {
    let _ = line.rearm(Quiesced { _private: () });
}

fn main() {}
