//! The capability model: typed device capabilities and their type states.
//!
//! Every device resource (interrupt line, MSI vector, DMA region, virtqueue) is a value with
//! private fields, no `Clone`, and a type-state parameter, so the interrupt protocol
//! (suppress -> drain -> re-enable, Linux NAPI) and IRQ-safe locking are checked by the
//! compiler. Platform code plugs in through small traits (`IrqChip`, `DmaHal`, `RingMemory`,
//! `IrqMaskOps`); everything here builds and is tested on the host. See `docs/caps.md`.
#![no_std]
// No unsafe code, except the few `unsafe trait` declarations whose implementations are the
// promises the capabilities rest on (each marked `allow(unsafe_code)` with its reason;
// listed in docs/caps.md "The unsafe items").
#![deny(unsafe_code)]

// The rings' per-descriptor bookkeeping lives on the heap (see `vring`).
extern crate alloc;

#[cfg(any(test, feature = "fakes"))]
extern crate std;

pub mod cspace;
pub mod dma;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod irq;
pub mod lock;
pub mod msi;
pub mod napi;
pub mod quiet;
pub mod sync;
pub mod vring;

pub use abi::Error;
pub use cspace::{CSpace, Capability};
pub use dma::{Cpu, Device, DmaBuffer, DmaDevice, DmaHal, DmaIdle, DmaPool, DmaRegion};
pub use irq::{
    AnyIrqLine, Armed, ControlClaim, ControlToken, Dispatch, Draining, IrqChip, IrqControl,
    IrqLine, Masked, Owner, Trigger,
};
pub use lock::{IrqMaskOps, IrqSafe, IrqSafeGuard, IrqsMasked, with_irqs_masked};
pub use msi::{MsiData, MsiMessage, MsiRange, MsiVector, VectorAllocator};
pub use napi::{NapiLine, PollOutcome, Quiesce, Quiesced, Raced, Round};
pub use quiet::QuietCheck;
pub use vring::{Completion, Polled, Rejected, RingMemory, Suppressed, UsedError, Vring};

/// Seals the state-marker traits so no other crate can add a state.
mod sealed {
    pub trait Sealed {}
}
