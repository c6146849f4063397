//! A panic prints where and why on the console and ends the process with status 101.

use core::panic::PanicInfo;

/// The exit status of a panicking program (as Rust's own runtime uses).
pub const PANIC_STATUS: i32 = 101;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    crate::println!("panic in pid {}: {info}", crate::process::getpid());
    crate::process::exit(PANIC_STATUS)
}
