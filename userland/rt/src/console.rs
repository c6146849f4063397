//! `print!` and `println!` to the process's console handle.
//!
//! Output is formatted into a small buffer and written with one `write` per line or
//! per full buffer, so a line from one process is not interleaved byte by byte with
//! another's. Without a console handle output is dropped.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};

use abi::Handle;

static IN: AtomicU32 = AtomicU32::new(0);
static OUT: AtomicU32 = AtomicU32::new(0);

/// Sets the console handles (`_start` does this from the startup record).
pub fn init((input, out): (Option<Handle>, Option<Handle>)) {
    IN.store(input.map_or(0, |h| h.raw()), Ordering::Relaxed);
    OUT.store(out.map_or(0, |h| h.raw()), Ordering::Relaxed);
}

/// The console input handle from the startup record, if any.
pub fn input() -> Option<Handle> {
    let raw = IN.load(Ordering::Relaxed);
    (raw != 0).then_some(Handle(raw))
}

/// Reads typed console input: waits until `deadline` (ns since boot) for at least one
/// byte, then returns what is buffered (`ETIMEDOUT` if nothing came, `EBADH` without a
/// console).
pub fn read(buf: &mut [u8], deadline: u64) -> crate::Result<usize> {
    crate::fs::read(input().ok_or(abi::Error::EBADH)?, buf, deadline)
}

/// Writes bytes to the console as they are (no line buffering).
pub fn write_bytes(bytes: &[u8]) {
    if let Some(h) = out() {
        let mut done = 0;
        while done < bytes.len() {
            match crate::fs::write(h, &bytes[done..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => done += n,
            }
        }
    }
}

/// Names the process Ctrl-C on the console ends: this one or one of its children
/// (`None`: nobody; Ctrl-C is then input). Needs the console input handle.
pub fn set_foreground(pid: Option<u32>) -> crate::Result<()> {
    let h = input().ok_or(abi::Error::EBADH)?;
    crate::sys::call2(
        abi::Sysnum::ConsoleFg,
        u64::from(h.raw()),
        u64::from(pid.unwrap_or(abi::proc::NO_FOREGROUND)),
    )
    .map(|_| ())
}

/// The console output handle, if any.
pub fn out() -> Option<Handle> {
    match OUT.load(Ordering::Relaxed) {
        0 => None,
        raw => Some(Handle(raw)),
    }
}

struct LineWriter {
    buf: [u8; 256],
    len: usize,
}

impl LineWriter {
    fn flush(&mut self) {
        write_bytes(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl Write for LineWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

/// Writes formatted text to the console (used by `print!`).
pub fn print_fmt(args: fmt::Arguments<'_>) {
    let mut w = LineWriter {
        buf: [0; 256],
        len: 0,
    };
    let _ = w.write_fmt(args);
    w.flush();
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
