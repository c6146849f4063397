//! Rule: a closure is not a device's DMA state.
use caps::{Device, DmaHal, DmaRegion};

fn sneak<H: DmaHal>(lent: DmaRegion<H, Device>) {
    let _ = lent.reclaim(&|| true);
}

fn main() {}
