//! Rule: `IrqsMasked` (and any guard holding it) never leaves its CPU.
use caps::{IrqMaskOps, IrqSafe, IrqsMasked};

struct Cpu;
// SAFETY: not under test here (this case is about `Send`); a real CPU masks IRQs.
unsafe impl IrqMaskOps for Cpu {
    type Saved = ();
    fn save_and_mask() {}
    fn restore(_: ()) {}
}

fn send_guard(shared: &'static IrqSafe<u32, Cpu>) {
    let guard = shared.lock();
    std::thread::spawn(move || drop(guard));
}

fn send_token(token: IrqsMasked) {
    std::thread::spawn(move || drop(token));
}

fn main() {}
