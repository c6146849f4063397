//! Rule: a DMA-idle check that reads no device cannot be written in safe code.
use caps::quiet::Seal;
use caps::{DmaDevice, DmaIdle};

struct Liar(DmaDevice);

impl DmaIdle for Liar {
    fn dma_device(&self) -> &DmaDevice {
        &self.0
    }
    fn dma_idle(&self, _: &Seal) -> bool {
        true
    }
}

fn main() {}
