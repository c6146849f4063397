//! The kernel <-> user contract: syscall numbers, errors, handle encoding.
//!
//! Small and dumb on purpose (see `docs/abi.md`): explicit discriminants, hand-written
//! `TryFrom`, no logic beyond encode/decode. Both the kernel and userland link this crate, so
//! a number changes in exactly one place.
#![no_std]
#![forbid(unsafe_code)]

pub mod cap;
pub mod dev;
pub mod error;
pub mod handle;
pub mod net;
pub mod netif;
pub mod proc;
pub mod sysnum;

pub use cap::{CapType, Rights};
pub use error::Error;
pub use handle::Handle;
pub use sysnum::Sysnum;
