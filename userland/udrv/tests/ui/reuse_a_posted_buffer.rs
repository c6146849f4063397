//! Rule: a posted buffer belongs to the device until a validated completion gives it
//! back: the driver cannot write it, or post it twice.
use udrv::dma::{Cpu, DmaRegion};
use udrv::vring::{BufDir, Polled, Vring};
use udrv::DevSys;

fn post_and_keep<B: DevSys>(ring: &mut Vring<Polled, B, 8>, mut buf: DmaRegion<Cpu, B>) {
    let _ = ring.post(buf, 64, BufDir::DeviceReads);
    buf.bytes_mut()[0] = 1;
    let _ = ring.post(buf, 64, BufDir::DeviceReads);
}

fn main() {}
