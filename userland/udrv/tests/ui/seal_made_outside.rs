//! Rule: only udrv makes a `Seal`, so only `quiesce` runs a quiet check.
use udrv::{QuietCheck, Seal};

fn sneak<C: QuietCheck>(check: &C) -> bool {
    check.is_quiet(&Seal(()))
}

fn main() {}
