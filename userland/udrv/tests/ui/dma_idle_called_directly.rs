//! Rule: only `DmaRegion::reclaim` asks a device whether its DMA engine is idle (between
//! its fences); `dma_idle` takes a `Seal` nobody else can make.
use udrv::{DmaIdle, Seal};

fn sneak<D: DmaIdle>(device: &D) -> bool {
    device.dma_idle(&Seal(()))
}

fn main() {}
