//! Rule: the ISR path runs with IRQs masked: `IrqControl::handle_irq` needs the token.
use caps::IrqControl;

fn isr(ctl: &IrqControl<64>, intid: u32) {
    let _ = ctl.handle_irq(intid, 0, 0);
}

fn main() {}
