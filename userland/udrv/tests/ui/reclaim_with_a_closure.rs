//! Rule: a lent region comes back on a device's own idle read, not on a closure's word.
use udrv::DevSys;
use udrv::dma::{Cpu, Device, DmaRegion};

fn sneak<B: DevSys>(region: DmaRegion<Device, B>) -> DmaRegion<Cpu, B> {
    region.reclaim(&|| true).ok().unwrap()
}

fn main() {}
