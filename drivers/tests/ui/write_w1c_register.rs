//! Rule: a write-one-to-clear register takes no plain `write` of a value either, only
//! `clear(mask)` of the bits meant (so a value read from it cannot be written back).
use drivers::reg;
use drivers::reg::{Access, Reg, W1c};

#[repr(C)]
struct Gicd {
    icpendr: [W1c<u32>; 32],
}

const GICD_ICPENDR: Reg<[W1c<u32>; 32]> = reg!(Gicd, icpendr);

fn clear_pending(gicd: &impl Access) {
    let pending = gicd.read(GICD_ICPENDR.at(1));
    gicd.write(GICD_ICPENDR.at(1), pending);
}

fn main() {}
