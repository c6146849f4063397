//! Architecture support. Capstan runs on AArch64 only.

pub mod aarch64;
pub use aarch64::*;
