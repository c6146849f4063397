//! Rule: `IrqSafe` data is reachable only through the guard `lock()` returns.
use caps::{IrqMaskOps, IrqSafe};

fn peek<A: IrqMaskOps>(shared: &IrqSafe<u32, A>) -> u32 {
    *shared.inner.lock()
}

fn main() {}
