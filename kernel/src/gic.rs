//! The machine's interrupt controller, once `irq::init` has set it up.
//!
//! A home of its own below both users: the interrupt layer (which wakes threads through
//! the scheduler) and the scheduler (which sends reschedule IPIs through the controller)
//! would otherwise import each other.

use drivers::irqchip::InterruptController;

static GIC: spin::Once<&'static dyn InterruptController> = spin::Once::new();

/// Records the controller (the first call wins; boot calls it once).
pub fn set(gic: &'static dyn InterruptController) {
    GIC.call_once(|| gic);
}

/// The interrupt controller, for operations outside the line protocol (IPIs; tests
/// raise interrupts with it).
pub fn chip() -> Option<&'static dyn InterruptController> {
    GIC.get().copied()
}
