//! loom model: a level-triggered device without a ring, re-armed through its quiet check.
//!
//! A UART-like device asserts its (level) line while its receive interrupt status is set;
//! the driver drains the FIFO, then `caps::quiet::quiesce` clears the interrupt at the
//! device (the final re-enable), fences and reads the device. A byte that lands between the
//! drain and the clear is the race: the clear drops the level, so nothing will fire for
//! it. Reading the FIFO level (the state the data waits in) catches it; reading the
//! interrupt status after the clear (what a PL011 driver reading `UARTMIS` would do) does
//! not, and the byte is stranded with the line armed. This model runs the real
//! `quiesce`, `IrqLine::rearm` and ISR (`IrqControl::handle_irq`) in loom, the device in one
//! thread and the driver in another; the second model uses the status-reading check and
//! must be caught.
#![cfg(loom)]

use caps::irq::{Armed, IrqChip, IrqControl, IrqLine, LineStatus, Owner, Trigger};
use caps::quiet::{QuietCheck, Seal, quiesce};
use caps::sync::{AtomicU8, AtomicU32, Ordering};
use loom::thread;
use verification::fakes::{INTID, ModelCpu, leak};

/// Bytes the device receives in each model.
const BYTES: u32 = 2;
/// Wake-ups the driver handles before the settle step.
const ATTEMPTS: usize = 2;

/// The device: its FIFO level and its receive interrupt status (the line's level), in one
/// register word. Every access is a read-modify-write of that word, as device registers
/// behave: the device updates its state in one step, and a register read returns the
/// current state (a plain loom load could return an older value, which device memory
/// never does).
struct Uart {
    state: AtomicU32,
}

/// The receive interrupt status bit; the FIFO level is the rest of the word.
const STATUS: u32 = 1 << 31;

impl Uart {
    /// The device receives a byte: one more in the FIFO, receive interrupt asserted.
    fn receive(&self) {
        let _ = self
            .state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                Some((s + 1) | STATUS)
            });
    }
    /// The driver empties the FIFO; returns how many bytes it read.
    fn drain(&self) -> u32 {
        self.state.fetch_and(STATUS, Ordering::SeqCst) & !STATUS
    }
    /// The driver clears the receive interrupt (`UARTICR`).
    fn clear(&self) {
        self.state.fetch_and(!STATUS, Ordering::SeqCst);
    }
    fn read(&self) -> u32 {
        self.state.fetch_add(0, Ordering::SeqCst)
    }
    /// Bytes waiting (`UARTFR.RXFE` clear when non-zero).
    fn fifo(&self) -> u32 {
        self.read() & !STATUS
    }
    /// Whether the receive interrupt is asserted (`UARTMIS`).
    fn asserted(&self) -> bool {
        self.read() & STATUS != 0
    }
}

/// A GIC line with level semantics: pending exactly while the device asserts.
struct LevelGic {
    enabled: AtomicU8,
    uart: &'static Uart,
    claim: caps::irq::ControlClaim,
}

// SAFETY: a model: `mask`/`unmask` flip the enable flag in one atomic step; the level is the
// device's status, so nothing is latched or lost by masking; the claim is a field.
unsafe impl IrqChip for LevelGic {
    fn control_claim(&self) -> &caps::irq::ControlClaim {
        &self.claim
    }
    fn mask(&self, _: u32) {
        self.enabled.store(0, Ordering::SeqCst);
    }
    fn unmask(&self, _: u32) {
        self.enabled.store(1, Ordering::SeqCst);
    }
    fn configure(&self, _: u32, _: Trigger) {}
    fn eoi(&self, _: u32) {}
}

/// The CPU takes the interrupt if the line is enabled and the device asserts it.
fn deliver(gic: &LevelGic, ctl: &IrqControl<1>) {
    if gic.enabled.load(Ordering::SeqCst) == 1 && gic.uart.asserted() {
        let _ = caps::lock::with_irqs_masked::<ModelCpu, _>(|m| ctl.handle_irq(INTID, 0, 0, m));
    }
}

/// The right check: clear the interrupt, then read the FIFO level.
struct FifoCheck(&'static Uart);

// SAFETY: the model device asserts while `status` is set; `enable` clears it, `is_quiet`
// reads the FIFO, where unprocessed data waits.
unsafe impl QuietCheck for FifoCheck {
    fn enable(&self, _: &Seal) {
        self.0.clear();
    }
    fn is_quiet(&self, _: &Seal) -> bool {
        self.0.fifo() == 0
    }
}

/// The broken check: clear the interrupt, then read the interrupt status back (the
/// `UARTMIS` reading), which the clear itself just zeroed.
struct StatusCheck(&'static Uart);

// SAFETY: deliberately broken (it reads state other than what holds the data), for the
// must-fail model only.
unsafe impl QuietCheck for StatusCheck {
    fn enable(&self, _: &Seal) {
        self.0.clear();
    }
    fn is_quiet(&self, _: &Seal) -> bool {
        !self.0.asserted()
    }
}

/// One round: take the fired line, drain the FIFO, re-arm through the check (drain again
/// while it says not quiet); then the CPU takes the line if it asserts.
fn round<C: QuietCheck>(
    gic: &LevelGic,
    ctl: &IrqControl<1>,
    line: IrqLine<Armed>,
    check: &C,
    got: &mut u32,
) -> IrqLine<Armed> {
    let mut draining = match line.try_take() {
        Ok(draining) => draining,
        Err(armed) => {
            thread::yield_now();
            return armed;
        }
    };
    loop {
        *got += gic.uart.drain();
        match quiesce(draining, check) {
            Ok((quiet, line)) => {
                let armed = line.rearm(quiet);
                deliver(gic, ctl);
                return armed;
            }
            Err(line) => draining = line,
        }
    }
}

/// Executions the last model explored (a model that explores one proves nothing).
static EXECUTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn model<C: QuietCheck + 'static>(make_check: fn(&'static Uart) -> C) {
    EXECUTIONS.store(0, std::sync::atomic::Ordering::Relaxed);
    loom::model(move || {
        EXECUTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let uart: &'static Uart = leak(Uart {
            state: AtomicU32::new(0),
        });
        let gic: &'static LevelGic = leak(LevelGic {
            enabled: AtomicU8::new(0),
            uart,
            claim: caps::irq::ControlClaim::new(),
        });
        let token = caps::irq::ControlToken::take(gic).unwrap();
        let ctl: &'static IrqControl<1> = leak(IrqControl::new(token, INTID));
        let mut line = ctl.mint(INTID, Trigger::Level, Owner(1)).unwrap().arm();
        let check = make_check(uart);
        let device = thread::spawn(move || {
            for _ in 0..BYTES {
                uart.receive();
                deliver(gic, ctl);
            }
        });
        let mut got = 0;
        for _ in 0..ATTEMPTS {
            line = round(gic, ctl, line, &check, &mut got);
        }
        device.join().unwrap();
        deliver(gic, ctl);
        let status = line.status();
        assert!(
            uart.fifo() == 0 || status == LineStatus::Fired,
            "lost notification: data waits in the FIFO but the line is {status:?}, nothing asserted"
        );
        for _ in 0..2 {
            line = round(gic, ctl, line, &check, &mut got);
        }
        assert_eq!(got, BYTES, "every byte received");
        assert_eq!(line.status(), LineStatus::Armed);
    });
    let n = EXECUTIONS.load(std::sync::atomic::Ordering::Relaxed);
    std::println!("{n} executions explored");
    assert!(n > 1, "the model explored no interleavings");
}

#[test]
fn quiet_check_reading_the_fifo_loses_nothing() {
    model(FifoCheck);
}

#[test]
#[should_panic(expected = "lost notification")]
fn quiet_check_reading_the_status_after_the_clear_strands_a_byte() {
    model(StatusCheck);
}
