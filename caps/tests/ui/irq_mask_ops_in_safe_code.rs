//! Rule: `IrqsMasked` means IRQs are masked. The review's misuse: a no-op `IrqMaskOps`,
//! which would make `IrqSafe` guards and tokens with interrupts still on; implementing the
//! trait is `unsafe`.
use caps::IrqMaskOps;

struct NoOp;

impl IrqMaskOps for NoOp {
    type Saved = ();
    fn save_and_mask() {}
    fn restore(_: ()) {}
}

fn main() {}
