//! Rule: a write-only register (`GICD_SGIR`, a doorbell) cannot be read.
use drivers::reg;
use drivers::reg::{Access, Reg, WriteOnly};

#[repr(C)]
struct Gicd {
    sgir: WriteOnly<u32>,
}

const GICD_SGIR: Reg<WriteOnly<u32>> = reg!(Gicd, sgir);

fn last_sgi(gicd: &impl Access) -> u32 {
    gicd.read(GICD_SGIR)
}

fn main() {}
