//! Rule: no closure mints a `Quiesced` proof. The review's misuse:
//! `quiesce_with(line, || {}, || true)`.
use caps::{Draining, IrqLine};

fn sneak(line: IrqLine<Draining>) {
    let _ = caps::napi::quiesce_with(line, || {}, || true);
}

fn main() {}
