//! Rule: a lent region comes back to the CPU only when its device reads idle. The review's
//! misuse: `reclaim(transfer_done(|| true))`.
use caps::{Cpu, Device, DmaHal, DmaRegion};

fn sneak<H: DmaHal>(lent: DmaRegion<H, Device>) -> DmaRegion<H, Cpu> {
    lent.reclaim(caps::dma::transfer_done(|| true).unwrap())
}

fn main() {}
