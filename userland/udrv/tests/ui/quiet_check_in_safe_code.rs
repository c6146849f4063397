//! Rule: a quiet check that reads no device cannot be written in safe code.
use udrv::{QuietCheck, Seal};

struct Liar;

impl QuietCheck for Liar {
    fn is_quiet(&self, _: &Seal) -> bool {
        true
    }
}

fn main() {}
