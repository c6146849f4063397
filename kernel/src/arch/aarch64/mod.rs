//! AArch64: everything that needs `unsafe` to talk to the CPU lives here.
//!
//! The rest of the kernel is safe code over these wrappers (STYLE.md).

pub mod boot;
pub mod cpu;
pub mod critical;
pub mod devices;
pub mod dma;
pub mod early;
pub mod fp;
pub mod heap;
pub mod mmu;
pub mod probe;
pub mod psci;
pub mod secondary;
pub mod sections;
pub mod semihosting;
pub mod shared;
pub mod stack;
pub mod usercopy;
pub mod uspace;
pub mod vectors;
