//! Rule: a ring is drained only under the line it is paired with. The review's misuse:
//! take with one line and drain or rearm under another, which needs the two apart.
use caps::napi;
use caps::{Armed, DmaHal, IrqLine, RingMemory, Vring};

fn sneak<M: RingMemory, H: DmaHal>(line: IrqLine<Armed>, vq: Vring<Armed, M, H, 8>) {
    let _ = napi::take(line, vq);
}

fn main() {}
