//! Rule: the proof comes from reading a device, not from a `bool` or a closure.
use udrv::{DevSys, Draining, IrqLine, quiesce};

fn sneak<B: DevSys>(line: IrqLine<Draining, B>, line2: IrqLine<Draining, B>) {
    let _ = quiesce(line, &true);
    let _ = quiesce(line2, &|| true);
}

fn main() {}
