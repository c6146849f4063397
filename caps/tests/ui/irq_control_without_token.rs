//! Rule: an `IrqControl` is made only from its chip's one control token. The review's
//! misuse: a second `IrqControl::new` over the same chip.
use caps::{IrqChip, IrqControl};

fn second(chip: &'static dyn IrqChip) -> IrqControl<64> {
    IrqControl::new(chip, 32)
}

fn main() {}
