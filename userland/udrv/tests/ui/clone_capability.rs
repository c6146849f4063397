//! Rule: capabilities and proofs are linear; none implements `Clone`.
use udrv::dma::{Cpu, DmaRegion};
use udrv::{Armed, DevSys, IrqLine, Quiesced};

fn dup_line<B: DevSys>(line: &IrqLine<Armed, B>) -> IrqLine<Armed, B> {
    line.clone()
}

fn dup_region<B: DevSys>(r: &DmaRegion<Cpu, B>) -> DmaRegion<Cpu, B> {
    r.clone()
}

fn dup_proof(p: &Quiesced) -> Quiesced {
    p.clone()
}

fn main() {}
