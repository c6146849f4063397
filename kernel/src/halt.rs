//! Stopping the machine for good: the last thing a fatal path does.
//!
//! A fatal exception (`trap`), a panic (`main`), the end of a test run that could not exit
//! QEMU (`ktest`) and a boot that cannot continue (`boot`) all end here. It sits below all
//! of them, needing only the console's emergency output and the CPU, so none of those
//! modules has to import another just to stop.

use crate::arch::cpu;
use crate::console;

/// Stops this CPU for good with interrupts masked.
pub fn halt() -> ! {
    let _ = cpu::save_and_mask_irqs();
    console::emergency_fmt(format_args!("*** system halted\n"));
    halt_quietly()
}

/// Stops this CPU without printing (a fault while printing a fatal report).
pub fn halt_quietly() -> ! {
    let _ = cpu::save_and_mask_irqs();
    loop {
        cpu::wait_for_interrupt();
    }
}
