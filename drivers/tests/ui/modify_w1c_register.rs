//! Rule: a write-one-to-clear register (`GICD_ICENABLER`) is never read-modify-written:
//! writing back the bits that read as 1 would disable every enabled interrupt.
use drivers::reg;
use drivers::reg::{Access, Reg, W1c};

#[repr(C)]
struct Gicd {
    icenabler: [W1c<u32>; 32],
}

const GICD_ICENABLER: Reg<[W1c<u32>; 32]> = reg!(Gicd, icenabler);

fn disable_spi_40(gicd: &impl Access) {
    gicd.modify(GICD_ICENABLER.at(1), |enabled| enabled | 1 << 8);
}

fn main() {}
