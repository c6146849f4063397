//! Rule: only the ring turns a lent slice back into a CPU one (after a validated used
//! element), never the driver.
use udrv::pool::{LentSlice, Slice};
use udrv::DevSys;

fn take_back<B: DevSys>(lent: LentSlice<B>) -> Slice<B> {
    lent.completed()
}

fn main() {}
