//! Rule: the CPU cannot read a `DmaRegion<Device>`: the device owns it.
use caps::{Device, DmaHal, DmaRegion};

fn peek<H: DmaHal>(region: &DmaRegion<H, Device>) -> u8 {
    region.bytes()[0]
}

fn main() {}
