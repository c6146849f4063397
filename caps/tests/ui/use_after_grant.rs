//! Rule: a capability given away (moved into a table, granted) cannot be used again.
use caps::{CSpace, IrqLine, Masked};
use abi::Rights;

fn give(table: &mut CSpace<IrqLine<Masked>, 8>, line: IrqLine<Masked>) {
    let _ = table.insert(line, Rights::all());
    let _ = line.arm();
}

fn main() {}
