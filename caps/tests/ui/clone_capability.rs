//! Rule: capabilities are linear; none implements `Clone`.
use caps::{Armed, Cpu, DmaHal, DmaRegion, IrqLine, MsiVector};

fn dup_line(line: &IrqLine<Armed>) -> IrqLine<Armed> {
    line.clone()
}

fn dup_vector(v: &MsiVector) -> MsiVector {
    v.clone()
}

fn dup_region<H: DmaHal>(r: &DmaRegion<H, Cpu>) -> DmaRegion<H, Cpu> {
    r.clone()
}

fn main() {}
