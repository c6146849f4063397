//! Capstan: a capability-based aarch64 kernel.
//!
//! `kernel_main` brings the machine up in order — heap, MMU, DTB, console,
//! memory, interrupts, timer, scheduler — then runs the test suite (boot option
//! `test`) or the monitor. See docs/boot.md for the path from QEMU to here.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![cfg_attr(
    not(target_os = "none"),
    allow(
        dead_code,
        unused_imports,
        reason = "host builds compile only the pure modules, for their unit tests"
    )
)]

extern crate alloc;
// memcpy and memmove (faster than the toolchain's for differently aligned buffers).
#[cfg(target_os = "none")]
extern crate memcopy;

mod cmdline;
mod memrange;
mod net;
mod platform;
mod process;
mod ratelimit;
mod tally;
mod timescale;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod gic;
#[cfg(target_os = "none")]
mod halt;
#[cfg(target_os = "none")]
mod irq;
#[cfg(target_os = "none")]
mod its;
#[cfg(target_os = "none")]
mod ktest;
#[cfg(target_os = "none")]
mod machine;
#[cfg(target_os = "none")]
mod mem;
#[cfg(target_os = "none")]
mod monitor;
#[cfg(target_os = "none")]
mod pci;
#[cfg(target_os = "none")]
mod probe;
#[cfg(target_os = "none")]
mod sched;
#[cfg(target_os = "none")]
mod sync;
#[cfg(target_os = "none")]
mod tests;
#[cfg(target_os = "none")]
mod time;
#[cfg(target_os = "none")]
mod timer;
#[cfg(target_os = "none")]
mod trap;

/// Host builds only compile the pure modules (for `cargo test`); the kernel is the
/// aarch64 `no_main` binary.
#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::emergency_fmt(format_args!("\n*** kernel panic: {info}\n"));
    ktest::abort_run("panicked");
    halt::halt()
}
