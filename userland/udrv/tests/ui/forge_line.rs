//! Rule: lines come from `Device::irq` only, never from a bare handle.
use abi::Handle;
use udrv::{DevSys, IrqLine, Masked};

fn sneak<B: DevSys>(sys: B) -> IrqLine<Masked, B> {
    IrqLine::mint(sys, Handle(0x8000_0001), 1)
}

fn main() {}
