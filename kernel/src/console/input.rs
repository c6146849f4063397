//! Console input: the UART receive interrupt's owner, a bounded buffer, backpressure.
//!
//! Input arrives by interrupt. The reader thread owns the UART's receive line; the IRQ
//! path masks it and wakes the reader, which moves bytes from the RX FIFO into a bounded
//! buffer and re-arms the line only once the FIFO reads *empty after the interrupt clear*.
//! That is the state the device raises its interrupt on: QEMU's PL011 raises RX when its
//! FIFO goes from empty to non-empty (a real one at the FIFO trigger level, or after the
//! receive timeout), so a line re-armed with bytes still queued would never fire again
//! (a paste froze the console that way: `UARTMIS` read 0 right after the clear, with the
//! FIFO full).
//!
//! When the buffer is full the reader stops reading and leaves the bytes in the UART: a
//! full FIFO makes QEMU stop taking input from its backend (real hardware flags an
//! overrun, which is counted), and the reader waits until a consumer makes room. So a
//! paste is never dropped by the kernel; it is slowed to the speed of the consumer.

use caps::irq::{Armed, Draining, IrqLine};
use caps::napi::quiesce_with;
use core::sync::atomic::{AtomicU32, Ordering};
use heapless::Deque;

use crate::sched::{self, NotifyId};
use crate::sync::IrqLock;
use crate::{irq, platform, time};

/// Bytes buffered between the UART and the consumer (one screen of typing-ahead).
const CAPACITY: usize = 1024;

static INPUT: IrqLock<Deque<u8, CAPACITY>> = IrqLock::new(Deque::new());
/// Posted when bytes arrive in `INPUT`.
static READY: AtomicU32 = AtomicU32::new(NONE);
/// Posted when a consumer takes a byte out of a full `INPUT`.
static ROOM: AtomicU32 = AtomicU32::new(NONE);
static STALLS: AtomicU32 = AtomicU32::new(0);
const NONE: u32 = u32::MAX;

fn notify(id: &AtomicU32) -> Option<NotifyId> {
    match id.load(Ordering::Acquire) {
        NONE => None,
        id => Some(NotifyId(id)),
    }
}

/// Console input figures, for the monitor's `irqs` and `mem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputStats {
    /// Bytes the UART lost because its FIFO overflowed (its overrun flag).
    pub overruns: u32,
    /// Times the reader left bytes in the UART because the buffer was full (backpressure).
    pub stalls: u32,
    /// Bytes waiting in the buffer now.
    pub buffered: usize,
}

/// The figures so far.
pub fn stats() -> InputStats {
    InputStats {
        overruns: super::with_uart(|u| u.rx_overruns()).unwrap_or(0),
        stalls: STALLS.load(Ordering::Relaxed),
        buffered: INPUT.lock().len(),
    }
}

/// Starts the thread that owns the UART receive interrupt.
pub fn start_reader(uart_irq: Option<platform::Irq>) {
    let Some(uart_irq) = uart_irq else {
        log::warn!("the console UART has no interrupt: console input unavailable");
        return;
    };
    let (Ok(line_notify), Ok(ready), Ok(room)) = (
        sched::notify_create(),
        sched::notify_create(),
        sched::notify_create(),
    ) else {
        log::warn!("no notification for the console reader: console input unavailable");
        return;
    };
    READY.store(ready.0, Ordering::Release);
    ROOM.store(room.0, Ordering::Release);
    let owner = irq::owner_of(line_notify);
    let line = match irq::mint(uart_irq.intid, uart_irq.trigger, owner, "uart") {
        Ok(line) => line,
        Err(e) => {
            log::warn!(
                "console input unavailable: UART interrupt {} cannot be claimed ({e})",
                uart_irq.intid
            );
            return;
        }
    };
    super::with_uart(|u| u.enable_rx_interrupt());
    let reader = move || {
        let mut line = line.arm();
        loop {
            if sched::notify_wait(line_notify, u64::MAX).is_err() {
                continue;
            }
            line = match line.try_take() {
                Ok(draining) => drain(draining, ready, room),
                Err(armed) => armed, // stale wake-up: the line has not fired
            };
        }
    };
    if sched::spawn("console-rx", reader).is_err() {
        log::warn!("no stack for the console reader: console input unavailable");
    }
}

/// What one pass over the RX FIFO did.
struct Moved {
    bytes: usize,
    buffer_full: bool,
}

/// Moves bytes from the FIFO into the buffer until one of them is empty or full.
fn move_bytes() -> Moved {
    let mut moved = Moved {
        bytes: 0,
        buffer_full: false,
    };
    super::with_uart(|u| {
        let mut input = INPUT.lock();
        while !input.is_full() {
            let Some(b) = u.read_byte() else { return };
            // Cannot fail: checked not full above, under the same lock.
            let _ = input.push_back(b);
            moved.bytes += 1;
        }
        moved.buffer_full = !u.rx_fifo_empty();
    });
    moved
}

/// Drains the UART until its FIFO reads empty after the interrupt clear, then re-arms the
/// line with that proof. While the buffer is full it waits for room, line masked.
fn drain(mut line: IrqLine<Draining>, ready: NotifyId, room: NotifyId) -> IrqLine<Armed> {
    loop {
        let moved = move_bytes();
        if moved.bytes > 0 {
            let _ = sched::notify_post(ready, 1);
        }
        if moved.buffer_full {
            STALLS.fetch_add(1, Ordering::Relaxed);
            let _ = sched::notify_wait(room, u64::MAX);
            continue;
        }
        let clear = || {
            super::with_uart(|u| u.clear_rx_interrupt());
        };
        // Quiet means the FIFO is empty *after* the clear: a byte that arrived between the
        // last read and the clear has no interrupt of its own left (see the module note).
        let fifo_empty = || super::with_uart(|u| u.rx_fifo_empty()).unwrap_or(true);
        match quiesce_with(line, clear, fifo_empty) {
            Ok((quiet, draining)) => return draining.rearm(quiet),
            Err(draining) => line = draining,
        }
    }
}

/// Takes one byte from the buffer, telling the reader if that made room.
fn pop() -> Option<u8> {
    let (byte, was_full) = {
        let mut input = INPUT.lock();
        let was_full = input.is_full();
        (input.pop_front(), was_full)
    };
    if was_full
        && byte.is_some()
        && let Some(room) = notify(&ROOM)
    {
        let _ = sched::notify_post(room, 1);
    }
    byte
}

/// Blocks until a byte of console input arrives.
pub fn read_byte() -> u8 {
    loop {
        if let Some(b) = read_byte_until(u64::MAX) {
            return b;
        }
    }
}

/// Waits for a byte of console input until `deadline_ns`.
pub fn read_byte_until(deadline_ns: u64) -> Option<u8> {
    loop {
        if let Some(b) = pop() {
            return Some(b);
        }
        if time::now_ns() >= deadline_ns || sched::current_user_killed() {
            return None;
        }
        match notify(&READY) {
            Some(n) => {
                let _ = sched::notify_wait(n, deadline_ns);
            }
            None => sched::sleep_ns(10_000_000),
        }
    }
}
