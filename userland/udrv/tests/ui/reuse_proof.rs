//! Rule: a proof is used once: a refused `rearm` consumed it too.
use udrv::{Armed, DevSys, Draining, IrqLine, QuietCheck, quiesce};

fn sneak<B: DevSys, C: QuietCheck>(line: IrqLine<Draining, B>, dev: &C) -> IrqLine<Armed, B> {
    let Ok((proof, line)) = quiesce(line, dev) else {
        panic!()
    };
    match line.rearm(proof) {
        Ok(armed) => armed,
        Err((line, _)) => line.rearm(proof).ok().unwrap(),
    }
}

fn main() {}
