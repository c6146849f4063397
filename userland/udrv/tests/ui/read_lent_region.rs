//! Rule: the CPU cannot touch a lent region's bytes: the device owns them.
use udrv::DevSys;
use udrv::dma::{Device, DmaRegion};

fn peek<B: DevSys>(region: &mut DmaRegion<Device, B>) -> u8 {
    region.bytes_mut()[0] = 1;
    region.bytes()[0]
}

fn main() {}
