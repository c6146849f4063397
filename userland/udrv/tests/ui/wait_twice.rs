//! Rule: a line that fired waits again only after a rearm with proof.
use udrv::{Armed, DevSys, IrqLine};

fn sneak<B: DevSys>(line: IrqLine<Armed, B>) {
    let (draining, _) = line.wait(u64::MAX).unwrap();
    let _ = draining.wait(u64::MAX);
}

fn main() {}
