//! Rule: the token lives no longer than the guard that masked IRQs: once the guard is
//! dropped (IRQs restored), the token cannot be used.
use caps::{IrqControl, IrqMaskOps, IrqSafe};

fn sneak<A: IrqMaskOps>(lock: &IrqSafe<u32, A>, ctl: &IrqControl<64>) {
    let guard = lock.lock();
    let token = guard.token();
    drop(guard);
    let _ = ctl.handle_irq(40, 0, 0, token);
}

fn main() {}
