//! Rule: `TransferDone` is minted only inside caps, from a `DmaIdle` read.
use caps::dma::TransferDone;

fn sneak() -> TransferDone {
    TransferDone { device: 1 }
}

fn main() {}
