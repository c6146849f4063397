//! Rule: a DMA HAL (device-reachable addresses, cache maintenance, quarantine) is a promise
//! the types cannot check: implementing `DmaHal` is `unsafe`.
use caps::{DmaBuffer, DmaHal};

struct Buf;

impl DmaBuffer for Buf {
    fn paddr(&self) -> u64 {
        0
    }
    fn len(&self) -> usize {
        0
    }
    fn bytes(&self) -> &[u8] {
        &[]
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut []
    }
}

struct Liar;

impl DmaHal for Liar {
    type Buffer = Buf;
    fn allocate(&self, _: usize, _: usize, _: u64) -> Result<Buf, abi::Error> {
        Ok(Buf)
    }
    fn sync_for_device(&self, _: &Buf) {}
    fn sync_for_cpu(&self, _: &Buf) {}
    fn quarantine(&self, _: Buf) {}
}

fn main() {}
