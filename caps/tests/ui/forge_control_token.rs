//! Rule: a control token comes only from `ControlToken::take`, once per chip.
use caps::{ControlToken, IrqChip};

fn forge(chip: &'static dyn IrqChip) -> ControlToken {
    ControlToken { chip }
}

fn main() {}
