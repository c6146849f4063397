//! Atomics used by state shared between an ISR and a task.
//!
//! Every atomic in `caps` is imported from here, so a loom model (`--cfg loom`) of the ISR
//! racing the poller runs over the real `IrqControl`/`IrqLine` code with loom's instrumented
//! atomics instead of a copy of it. Nothing else changes under `cfg(loom)` except that
//! constructors of atomic-holding types stop being `const` (loom's atomics are not).

#[cfg(not(loom))]
pub use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering, fence};

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering, fence};
