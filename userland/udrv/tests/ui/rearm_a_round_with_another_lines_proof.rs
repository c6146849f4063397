//! Rule: a round's line is re-armed only by `Round::finish`, with the proof its own ring's
//! recheck minted: a proof read from another line's device cannot reach it.
use udrv::vring::Round;
use udrv::{DevSys, Draining, IrqLine, QuietCheck, quiesce};

fn sneak<B: DevSys, C: QuietCheck>(round: Round<B, 8>, other: IrqLine<Draining, B>, dev: &C) {
    let Ok((proof, _other)) = quiesce(other, dev) else {
        panic!()
    };
    let _ = round.line().rearm(proof);
}

fn main() {}
