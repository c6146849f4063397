//! Rule: a check cannot keep the `Seal` it was lent to call checks later on its own.
use std::cell::Cell;

use udrv::{QuietCheck, Seal};

struct Thief {
    kept: Cell<Option<&'static Seal>>,
}

// SAFETY: (a compile-fail case: never built).
unsafe impl QuietCheck for Thief {
    fn is_quiet(&self, seal: &Seal) -> bool {
        self.kept.set(Some(seal));
        true
    }
}

fn main() {}
