//! Rule: a pool slice posted to a ring is the device's until a validated completion gives
//! it back: the driver cannot write it, or post it twice.
use udrv::pool::Slice;
use udrv::vring::{BufDir, Polled, Vring};
use udrv::DevSys;

fn post_and_keep<B: DevSys>(ring: &mut Vring<Polled, B, 256, Slice<B>>, mut buf: Slice<B>) {
    let _ = ring.post(buf, 64, BufDir::DeviceWrites);
    buf.bytes_mut()[0] = 1;
    let _ = ring.post(buf, 64, BufDir::DeviceWrites);
}

fn main() {}
