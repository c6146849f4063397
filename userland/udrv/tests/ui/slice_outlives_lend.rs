//! Rule: a slice of a region cannot be kept across `lend` and written while the device
//! owns the memory.
use udrv::DevSys;
use udrv::dma::{Cpu, Device, DmaRegion};

fn sneak<B: DevSys>(mut region: DmaRegion<Cpu, B>) -> DmaRegion<Device, B> {
    let bytes = region.bytes_mut();
    let lent = region.lend();
    bytes[0] = 0xff;
    lent
}

fn main() {}
