//! Rule: an `IrqsMasked` token comes only from masking (`IrqSafe::lock`,
//! `with_irqs_masked`).
use caps::IrqsMasked;

fn forge() -> IrqsMasked {
    IrqsMasked { _not_send: core::marker::PhantomData }
}

fn main() {}
