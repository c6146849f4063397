//! Rule: only `caps::quiet::quiesce` runs a quiet check (after the device's re-enable and
//! a fence); its methods take a `Seal` nobody else can make.
use caps::quiet::{QuietCheck, Seal};

fn sneak<C: QuietCheck>(check: &C) -> bool {
    check.is_quiet(&Seal(()))
}

fn main() {}
