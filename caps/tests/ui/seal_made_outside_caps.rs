//! Rule: only caps makes a `Seal`, so only caps runs a quiet or DMA-idle check.
use caps::quiet::{QuietCheck, Seal};

fn sneak<C: QuietCheck>(check: &C) -> bool {
    check.is_quiet(&Seal::new())
}

fn main() {}
