//! The serial console: formatted output, `log` records, interrupt-driven input.
//!
//! Output goes through a lock that masks IRQs. Input arrives by interrupt: the
//! UART line's owner is the console reader thread, woken by the IRQ path, which
//! drains the RX FIFO into a buffer and re-arms the line. Fatal paths bypass the
//! lock with an emergency handle so a crash report always gets out.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};

use drivers::uart::pl011::Pl011;

pub mod input;

use crate::arch::devices;
use crate::sync::IrqLock;
use crate::time;

/// Physical base of the fixed early UART used when the DTB is missing (QEMU virt's
/// PL011).
pub const EARLY_UART_BASE: usize = 0x0900_0000;

static CONSOLE: IrqLock<Option<Pl011>> = IrqLock::new(None);
/// Virtual address of the UART emergency output uses (0: none mapped yet).
static UART_VA: AtomicUsize = AtomicUsize::new(0);

/// Installs the console UART (mapped at `va`).
pub fn init(uart: Pl011, va: usize) {
    uart.init();
    UART_VA.store(va, Ordering::Relaxed);
    *CONSOLE.lock() = Some(uart);
}

/// Points emergency output at a UART mapped at `va` (before the console exists).
pub fn set_emergency_uart(va: usize) {
    UART_VA.store(va, Ordering::Relaxed);
}

/// Runs `f` on the console UART, if installed.
pub fn with_uart<R>(f: impl FnOnce(&mut Pl011) -> R) -> Option<R> {
    CONSOLE.lock().as_mut().map(f)
}

/// Prints formatted text (used by `print!`).
pub fn print_fmt(args: fmt::Arguments<'_>) {
    if let Some(uart) = CONSOLE.lock().as_mut() {
        let _ = uart.write_fmt(args);
    }
}

/// Writes raw bytes (a process's output), `\n` as `\r\n` for terminals.
pub fn write_bytes(bytes: &[u8]) {
    if let Some(uart) = CONSOLE.lock().as_mut() {
        for &b in bytes {
            if b == b'\n' {
                uart.write_byte(b'\r');
            }
            uart.write_byte(b);
        }
    }
}

/// Prints without taking the console lock: for fatal paths only.
pub fn emergency_fmt(args: fmt::Arguments<'_>) {
    let va = UART_VA.load(Ordering::Relaxed);
    if va == 0 {
        return; // nothing mapped to write to
    }
    let mut uart = devices::pl011_emergency(va);
    let _ = uart.write_fmt(args);
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
