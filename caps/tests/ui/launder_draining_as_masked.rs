//! Rule: the mixed-state enum cannot launder a draining line as a fresh `Masked` one.
use caps::{AnyIrqLine, Armed, Draining, IrqLine};

fn sneak(line: IrqLine<Draining>) -> IrqLine<Armed> {
    match AnyIrqLine::Masked(line) {
        AnyIrqLine::Masked(m) => m.arm(),
        _ => unreachable!(),
    }
}

fn main() {}
