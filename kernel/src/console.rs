//! The serial console: formatted output, `log` records, interrupt-driven input.
//!
//! Output goes through a lock that masks IRQs. Input arrives by interrupt: the
//! UART line's owner is the console reader thread, woken by the IRQ path, which
//! drains the RX FIFO into a buffer and re-arms the line. Fatal paths bypass the
//! lock with an emergency handle so a crash report always gets out. There is no
//! fixed UART address: the early console is the device tree's `stdout-path` UART
//! (a PL011 or a 16550), registered as soon as it is mapped ([`set_early`]);
//! before that, fatal output goes to semihosting when the machine has it
//! (docs/boot.md "Early failures").

use core::fmt::{self, Write};

use drivers::uart::Uart;

pub mod input;

use crate::arch::{devices, semihosting};
use crate::platform;
use crate::ratelimit::RateLimit;
use crate::sync::IrqLock;
use crate::time;

static CONSOLE: IrqLock<Option<Uart>> = IrqLock::new(None);
/// The console UART and its virtual address once mapped: what fatal paths write to
/// without the lock.
static EARLY: spin::Once<(platform::Uart, usize)> = spin::Once::new();

/// Maps the console UART, checks that it answers, and makes it the target of
/// emergency output (before [`init`] and the full device-tree parse).
pub fn set_early(uart: platform::Uart) -> Result<(), devices::DeviceError> {
    let va = devices::map_uart(uart)?;
    EARLY.call_once(|| (uart, va));
    Ok(())
}

/// Installs the console UART (the one [`set_early`] mapped).
pub fn init(uart: Uart) {
    uart.init();
    *CONSOLE.lock() = Some(uart);
}

/// The console UART and where it is mapped, once [`set_early`] ran.
pub fn early_uart() -> Option<(platform::Uart, usize)> {
    EARLY.get().copied()
}

/// Runs `f` on the console UART, if installed.
pub fn with_uart<R>(f: impl FnOnce(&mut Uart) -> R) -> Option<R> {
    CONSOLE.lock().as_mut().map(f)
}

/// Prints formatted text (used by `print!`).
pub fn print_fmt(args: fmt::Arguments<'_>) {
    WRITES.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    if let Some(uart) = CONSOLE.lock().as_mut() {
        let _ = uart.write_fmt(args);
    }
}

/// Console writes so far (the test runner notices output in the middle of a test line).
static WRITES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Console writes so far.
pub fn writes() -> u64 {
    WRITES.load(core::sync::atomic::Ordering::Relaxed)
}

/// Writes raw bytes (a process's output), `\n` as `\r\n` for terminals.
pub fn write_bytes(bytes: &[u8]) {
    WRITES.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    if let Some(uart) = CONSOLE.lock().as_mut() {
        for &b in bytes {
            if b == b'\n' {
                uart.write_byte(b'\r');
            }
            uart.write_byte(b);
        }
    }
}

/// Semihosting as a `fmt::Write` target.
struct Semihosting;

impl Write for Semihosting {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if semihosting::write(s) {
            Ok(())
        } else {
            Err(fmt::Error)
        }
    }
}

/// Prints without taking the console lock: for fatal paths only. Before the console
/// UART is known, tries semihosting (silent on a machine without it).
pub fn emergency_fmt(args: fmt::Arguments<'_>) {
    match EARLY.get() {
        Some(&(uart, va)) => {
            let _ = devices::uart_emergency(uart, va).write_fmt(args);
        }
        None => {
            let _ = Semihosting.write_fmt(args);
        }
    }
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::print_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let us = time::now_ns() / 1000;
        print_fmt(format_args!(
            "[{:5}.{:06}] {:5} {}: {}\n",
            us / 1_000_000,
            us % 1_000_000,
            record.level(),
            record.target(),
            record.args()
        ));
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Routes `log` records to the console at `level`.
pub fn init_log(level: log::LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Trace lines the hot paths may print per second (`log=trace`); the rest are counted
/// and the count is printed with the next line let through.
pub const TRACE_PER_SECOND: u32 = 20;

static TRACE_LIMIT: RateLimit = RateLimit::new(TRACE_PER_SECOND, 1_000_000_000);

/// Whether a rate-limited trace line may go out now (see [`trace_limited!`]): `Some(n)`
/// with the lines held back since the last one that said so, `None` if this second's
/// quota is spent.
pub fn trace_admit() -> Option<u32> {
    TRACE_LIMIT.admit(time::now_ns())
}

/// `log::trace!` for hot paths: nothing unless `log=trace`, then at most
/// [`TRACE_PER_SECOND`] lines a second across the kernel, with a count of those held
/// back.
#[macro_export]
macro_rules! trace_limited {
    ($($arg:tt)+) => {
        if ::log::log_enabled!(::log::Level::Trace)
            && let Some(held) = $crate::console::trace_admit()
        {
            if held > 0 {
                ::log::trace!(
                    "({held} trace lines held back: at most {} a second)",
                    $crate::console::TRACE_PER_SECOND
                );
            }
            ::log::trace!($($arg)+);
        }
    };
}
