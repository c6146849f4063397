//! Rule: a chip that hands out a fresh claim every time (so two controls could own one
//! INTID) cannot be written in safe code: implementing `IrqChip` is `unsafe`.
use caps::{ControlClaim, IrqChip, Trigger};

struct Twin;

impl IrqChip for Twin {
    fn control_claim(&self) -> &ControlClaim {
        Box::leak(Box::new(ControlClaim::new()))
    }
    fn mask(&self, _: u32) {}
    fn unmask(&self, _: u32) {}
    fn configure(&self, _: u32, _: Trigger) {}
    fn eoi(&self, _: u32) {}
}

fn main() {}
