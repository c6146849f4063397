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
//!
//! Ctrl-C (0x03) is input like any byte unless a *foreground* process is named
//! ([`set_foreground`], the `console_fg` call a shell makes for the program it waits
//! for): then the byte ends that process instead (through the handler the process layer
//! installs, [`set_interrupt_handler`]) and the foreground is cleared, so the next
//! Ctrl-C reaches the shell as input.

use caps::irq::{Armed, Draining, IrqLine};
use caps::quiet::quiesce;
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

/// Ctrl-C.
const INTERRUPT: u8 = 0x03;
/// The pid Ctrl-C ends (0: none; the byte is then input).
static FOREGROUND: AtomicU32 = AtomicU32::new(0);
/// What ends it (installed by the process layer, which sits above the console).
static ON_INTERRUPT: spin::Once<fn(u32)> = spin::Once::new();
/// Ctrl-Cs that ended a foreground process.
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

/// Installs what Ctrl-C calls with the foreground pid (once, at boot).
pub fn set_interrupt_handler(handler: fn(u32)) {
    ON_INTERRUPT.call_once(|| handler);
}

/// Names the process Ctrl-C ends (0: none).
pub fn set_foreground(pid: u32) {
    FOREGROUND.store(pid, Ordering::Release);
}

/// Clears the foreground if it is `pid` (that process ended).
pub fn clear_foreground(pid: u32) {
    let _ = FOREGROUND.compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Relaxed);
}

/// The foreground pid (0: none).
pub fn foreground() -> u32 {
    FOREGROUND.load(Ordering::Acquire)
}

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
    /// Ctrl-Cs that ended a foreground process.
    pub interrupts: u32,
}

/// The figures so far.
pub fn stats() -> InputStats {
    InputStats {
        overruns: super::with_uart(|u| u.rx_overruns()).unwrap_or(0),
        stalls: STALLS.load(Ordering::Relaxed),
        buffered: INPUT.lock().len(),
        interrupts: INTERRUPTS.load(Ordering::Relaxed),
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
                Ok(draining) => match drain(draining, ready, room) {
                    Some(armed) => armed,
                    None => return, // the console went away: leave the line masked
                },
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
    /// A Ctrl-C for this foreground process arrived.
    interrupt: Option<u32>,
}

/// Moves bytes from the FIFO into the buffer until one of them is empty or full.
fn move_bytes() -> Moved {
    let mut moved = Moved {
        bytes: 0,
        buffer_full: false,
        interrupt: None,
    };
    super::with_uart(|u| {
        let mut input = INPUT.lock();
        while !input.is_full() {
            let Some(b) = u.read_byte() else { return };
            if b == INTERRUPT && moved.interrupt.is_none() {
                let fg = FOREGROUND.swap(0, Ordering::AcqRel);
                if fg != 0 {
                    moved.interrupt = Some(fg);
                    continue;
                }
            }
            // Cannot fail: checked not full above, under the same lock.
            let _ = input.push_back(b);
            moved.bytes += 1;
        }
        moved.buffer_full = !u.rx_fifo_empty();
    });
    moved
}

/// Drains the UART until its FIFO reads empty after the interrupt clear (the UART's
/// `QuietCheck`, read from the device), then re-arms the line with that proof. While the
/// buffer is full it waits for room, line masked. `None` if there is no console UART.
fn drain(mut line: IrqLine<Draining>, ready: NotifyId, room: NotifyId) -> Option<IrqLine<Armed>> {
    loop {
        let moved = move_bytes();
        if let Some(pid) = moved.interrupt
            && let Some(handler) = ON_INTERRUPT.get()
        {
            INTERRUPTS.fetch_add(1, Ordering::Relaxed);
            handler(pid);
        }
        if moved.bytes > 0 {
            let _ = sched::notify_post(ready, 1);
        }
        if moved.buffer_full {
            STALLS.fetch_add(1, Ordering::Relaxed);
            let _ = sched::notify_wait(room, u64::MAX);
            continue;
        }
        // Quiet means the FIFO is empty *after* the clear: a byte that arrived between the
        // last read and the clear has no interrupt of its own left (see the module note).
        match super::with_uart(|u| quiesce(line, &*u)) {
            Some(Ok((quiet, draining))) => return Some(draining.rearm(quiet)),
            Some(Err(draining)) => line = draining,
            None => return None,
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
