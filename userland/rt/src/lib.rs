//! Capstan's user-space runtime: what every program links.
//!
//! A program is a `#![no_std]` `#![no_main]` binary that names its entry function with
//! [`entry!`]. The runtime's `_start` reads the startup record the kernel left on the
//! stack (arguments, granted capabilities, console handles; `abi::proc::StartupRecord`),
//! sets up a heap that grows with `mem_map`, calls the entry function and exits with its
//! return value. Every system call returns `Result<_, abi::Error>`; unsafe code is
//! confined to the `svc` instruction ([`sys`]) and the start-up glue ([`start`]).
#![no_std]

extern crate alloc;
// memcpy and memmove for every program (faster than the toolchain's for differently
// aligned buffers).
extern crate memcopy;

pub mod cap;
pub mod console;
pub mod dev;
pub mod fs;
pub mod heap;
pub mod mem;
pub mod net;
mod panic;
pub mod process;
pub mod start;
pub mod sys;
pub mod system;
pub mod time;

pub use abi::Error;
pub use start::Startup;

/// The result of every runtime call.
pub type Result<T> = core::result::Result<T, Error>;

/// Names a program's entry function: `fn main(startup: &Startup) -> i32`. Its return
/// value becomes the exit status.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        fn __capstan_main(startup: &$crate::Startup) -> i32 {
            $main(startup)
        }
    };
}
