//! Rule: a write-one-to-set register (`GICD_ISENABLER`) only sets: "disabling" through it
//! (which would enable) does not compile; clearing goes through its `ICENABLER` twin.
use drivers::reg;
use drivers::reg::{Access, Reg, W1s};

#[repr(C)]
struct Gicd {
    isenabler: [W1s<u32>; 32],
}

const GICD_ISENABLER: Reg<[W1s<u32>; 32]> = reg!(Gicd, isenabler);

fn disable_spi_40(gicd: &impl Access) {
    gicd.clear(GICD_ISENABLER.at(1), 1 << 8);
}

fn main() {}
