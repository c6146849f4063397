//! Kani proofs and proptest twins for the capability model, plus fakes.
//!
//! The capability protocol (DESIGN.md "The capability protocol", docs/caps.md "Invariants")
//! is only as good as the arithmetic and state machines under it, so each property here is
//! one `pub fn` that drives the real `caps` code with plain inputs and asserts the invariant.
//! Kani proves it for every input within small bounds (`proofs.rs`, `cargo kani`), proptest
//! runs the same function as an ordinary test (`tests/properties.rs`), and the loom models
//! (`tests/loom_napi.rs`, `scripts/loom`) run the ISR against the poller over the same fakes.
// no_std for the kernel's sake, except under Kani: Kani's std replaces the panic and assert
// macros with versions that do not format, which keeps the formulas small.
#![cfg_attr(not(kani), no_std)]

extern crate alloc;

pub mod check;
pub mod fakes;
pub mod props;
pub mod protocol;

#[cfg(kani)]
mod proofs;

pub use props::*;
pub use protocol::*;
