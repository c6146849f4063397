//! Rule: `AnyIrqLine::mask` hands back the line in its masked state, never a fresh
//! `IrqLine<Masked>` that `arm` would take.
use caps::{AnyIrqLine, Armed, IrqLine, Masked};

fn sneak(line: IrqLine<Armed>) -> IrqLine<Masked> {
    AnyIrqLine::Armed(line).mask()
}

fn main() {}
