//! Rule: a vector allocator is carved from the `IrqControl` that owns its INTIDs, once.
//! The review's misuse: a second `VectorAllocator::new` over the same range.
use caps::{MsiData, MsiRange, VectorAllocator};

fn second() -> VectorAllocator {
    let range = MsiRange { base: 80, count: 64, doorbell: 0x0802_0040, data: MsiData::Intid };
    VectorAllocator::new(range, 0).unwrap()
}

fn main() {}
