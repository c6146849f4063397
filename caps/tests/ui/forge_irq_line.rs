//! Rule: only an `IrqControl` mints an `IrqLine`; its fields are private.
use caps::{IrqLine, Masked};

fn main() {
    let _line: IrqLine<Masked> = IrqLine { intid: 33, _state: core::marker::PhantomData };
}
