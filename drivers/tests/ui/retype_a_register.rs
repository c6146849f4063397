//! Rule: a register's access type is its field's: a `Reg` made from a read-only field
//! cannot be declared read-write.
use drivers::reg;
use drivers::reg::{ReadOnly, ReadWrite, Reg};

#[repr(C)]
struct Gicd {
    ctlr: ReadWrite<u32>,
    typer: ReadOnly<u32>,
}

const GICD_TYPER: Reg<ReadWrite<u32>> = reg!(Gicd, typer);

fn main() {}
