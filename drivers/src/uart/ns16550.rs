//! 16550-compatible UART driver (National Semiconductor PC16550D data sheet).
//!
//! VMware Fusion on Apple silicon gives its guests a 16550 rather than a PL011
//! (named by the ACPI SPCR/DBG2 tables; `ns16550a` in a device tree). The
//! registers are eight bytes wide apart by `1 << reg-shift` and accessed
//! `reg-io-width` bytes at a time, so the same driver serves the classic byte
//! layout and the 32-bit-stride layout of SoC UARTs. The baud rate is left as
//! firmware programmed it. Transmission polls `LSR.THRE` with a bound, so an
//! absent UART drops characters instead of hanging a panic path. "No input
//! pending" is judged from `LSR.DR` (receive data ready), the state the RX
//! interrupt is raised on.

use core::fmt;
use core::hint::spin_loop;
use core::sync::atomic::{AtomicU32, Ordering};

use bitflags::bitflags;

use crate::mmio::Mmio;

/// Register indices (PC16550D Table II); the byte offset is `index << shift`.
const RBR_THR: usize = 0;
const IER: usize = 1;
const IIR_FCR: usize = 2;
const LCR: usize = 3;
const MCR: usize = 4;
const LSR: usize = 5;

/// The register window: eight registers at up to a 4-byte stride (layout only).
pub(crate) struct Regs {
    _words: [u32; 8],
}

bitflags! {
    /// `LSR`, line status.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Lsr: u8 {
        /// Data ready: the receive buffer or FIFO holds a byte.
        const DR = 1 << 0;
        /// Overrun error (cleared by reading LSR).
        const OE = 1 << 1;
        /// Transmitter holding register empty.
        const THRE = 1 << 5;
    }
}

bitflags! {
    /// `IER`, interrupt enable.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Ier: u8 {
        /// Received data available (and, with FIFOs, the character timeout).
        const ERBFI = 1 << 0;
    }
}

/// `LCR` 8 data bits, no parity, 1 stop bit, DLAB clear.
const LCR_8N1: u8 = 0x03;
/// `FCR`: FIFOs on, both cleared, RX trigger at 1 byte.
const FCR_ENABLE_CLEAR: u8 = 0x07;
/// `MCR`: DTR, RTS, and OUT2 (which gates the interrupt line on PC-style wiring).
const MCR_DTR_RTS_OUT2: u8 = 0x0b;

/// Polls of `LSR` before giving up on a busy transmitter.
const TX_SPIN_LIMIT: u32 = 100_000;

/// A 16550-compatible UART.
pub struct Ns16550 {
    regs: Mmio<Regs>,
    shift: u8,
    wide: bool,
    dropped: AtomicU32,
    overruns: AtomicU32,
}

impl Ns16550 {
    /// Wraps the 16550 mapped at virtual address `base`, registers `1 << shift` bytes
    /// apart (`shift` ≤ 2), each accessed as a byte or, with `width` 4, as a 32-bit word.
    ///
    /// # Safety
    /// `base` maps the UART's `8 << shift` bytes of registers as device memory, valid
    /// for the life of the value and exclusively owned by it.
    #[must_use]
    pub const unsafe fn new(base: usize, shift: u8, width: u8) -> Self {
        Self {
            // SAFETY: the caller gives us the exclusive device mapping.
            regs: unsafe { Mmio::new(base) },
            shift: if shift > 2 { 2 } else { shift },
            wide: width == 4,
            dropped: AtomicU32::new(0),
            overruns: AtomicU32::new(0),
        }
    }

    fn read(&self, reg: usize) -> u8 {
        let at = reg << self.shift;
        if self.wide {
            self.regs.read32(at) as u8
        } else {
            self.regs.read8(at)
        }
    }

    fn write(&self, reg: usize, v: u8) {
        let at = reg << self.shift;
        if self.wide {
            self.regs.write32(at, v.into());
        } else {
            self.regs.write8(at, v);
        }
    }

    fn lsr(&self) -> Lsr {
        Lsr::from_bits_retain(self.read(LSR))
    }

    /// 8N1, FIFOs on and cleared, interrupts off, modem lines up.
    pub fn init(&self) {
        self.write(IER, 0);
        self.write(LCR, LCR_8N1);
        self.write(IIR_FCR, FCR_ENABLE_CLEAR);
        self.write(MCR, MCR_DTR_RTS_OUT2);
    }

    /// Sends one byte, waiting a bounded time for the holding register; a byte that
    /// never fits is dropped and counted.
    pub fn write_byte(&self, byte: u8) {
        for _ in 0..TX_SPIN_LIMIT {
            if self.lsr().contains(Lsr::THRE) {
                self.write(RBR_THR, byte);
                return;
            }
            spin_loop();
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes dropped by [`Ns16550::write_byte`].
    pub fn dropped(&self) -> u32 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// One received byte, if any (`LSR.DR`); an overrun the read of `LSR` reports is
    /// counted.
    pub fn read_byte(&self) -> Option<u8> {
        let lsr = self.lsr();
        if lsr.contains(Lsr::OE) {
            self.overruns.fetch_add(1, Ordering::Relaxed);
        }
        lsr.contains(Lsr::DR).then(|| self.read(RBR_THR))
    }

    /// Whether the receive FIFO is empty (`LSR.DR` clear): the state the
    /// received-data interrupt is raised on.
    pub fn rx_fifo_empty(&self) -> bool {
        !self.lsr().contains(Lsr::DR)
    }

    /// Receive overruns counted so far.
    pub fn rx_overruns(&self) -> u32 {
        self.overruns.load(Ordering::Relaxed)
    }

    /// Unmask the received-data interrupt (`IER.ERBFI`; with FIFOs it also covers the
    /// character timeout, so a lone byte interrupts).
    pub fn enable_rx_interrupt(&self) {
        let ier = self.read(IER);
        self.write(IER, ier | Ier::ERBFI.bits());
    }

    /// Mask the received-data interrupt.
    pub fn disable_rx_interrupt(&self) {
        let ier = self.read(IER);
        self.write(IER, ier & !Ier::ERBFI.bits());
    }

    /// Nothing to clear: the received-data interrupt drops when the FIFO is read empty.
    pub fn clear_rx_interrupt(&self) {}

    /// Writes `s`, turning `\n` into `\r\n` for terminals.
    pub fn write_str_crlf(&self, s: &str) {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
    }
}

// SAFETY: the received-data interrupt (PC16550D, IIR "received data available" and, with
// FIFOs, the character timeout) is asserted while `LSR.DR` is set, i.e. while a byte waits
// in the FIFO; it has no latch of its own to clear (`enable` does nothing), and it drops
// when the FIFO is read empty. `is_quiet` reads `LSR.DR` from the device: clear means no
// byte is left, and any byte that arrives later raises the interrupt afresh.
unsafe impl caps::quiet::QuietCheck for Ns16550 {
    fn is_quiet(&self, _: &caps::quiet::Seal) -> bool {
        self.rx_fifo_empty()
    }
}

impl fmt::Write for Ns16550 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_str_crlf(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use core::fmt::Write;

    use super::*;
    use crate::mmio::fake;

    #[test]
    fn byte_registers() {
        let mut mem = fake::frames(1);
        fake::w32(&mut mem, 0, 0);
        // LSR (byte 5): THRE and DR.
        let lsr_word = u32::from(Lsr::THRE.bits() | Lsr::DR.bits()) << 8;
        fake::w32(&mut mem, 4, lsr_word | 0x0e); // IIR at byte 2 would be in word 0
        let base = fake::base(&mut mem);
        // SAFETY: `mem` outlives the driver and is accessed only through it.
        let mut uart = unsafe { Ns16550::new(base, 0, 1) };
        uart.init();
        assert_eq!(fake::r32(&mem, 0) >> 24, u32::from(LCR_8N1));
        write!(uart, "A").unwrap();
        assert_eq!(fake::r32(&mem, 0) & 0xff, u32::from(b'A'));
        assert_eq!(uart.read_byte(), Some(b'A'));
        uart.enable_rx_interrupt();
        assert_eq!((fake::r32(&mem, 0) >> 8) & 0xff, 1);
        assert!(!uart.rx_fifo_empty(), "LSR.DR set");
    }

    #[test]
    fn word_registers_with_shift() {
        let mut mem = fake::frames(1);
        fake::w32(&mut mem, LSR << 2, u32::from(Lsr::THRE.bits()));
        let base = fake::base(&mut mem);
        // SAFETY: as above.
        let uart = unsafe { Ns16550::new(base, 2, 4) };
        uart.write_byte(b'x');
        assert_eq!(fake::r32(&mem, 0), u32::from(b'x'));
        assert_eq!(uart.read_byte(), None);
        assert!(uart.rx_fifo_empty());
        uart.init();
        assert_eq!(fake::r32(&mem, MCR << 2), u32::from(MCR_DTR_RTS_OUT2));
    }

    #[test]
    fn rx_quiet_check_reads_data_ready() {
        use caps::irq::Trigger;
        use caps::quiet::quiesce;
        let mut mem = fake::frames(1);
        let base = fake::base(&mut mem);
        // SAFETY: `mem` outlives the driver and is accessed only through it (and the test).
        let uart = unsafe { Ns16550::new(base, 0, 1) };
        let (gic, line) = caps::fakes::fired_line(33, Trigger::Level);
        // A byte still waits (LSR.DR): the line must stay masked.
        fake::w32(&mut mem, 4, u32::from(Lsr::DR.bits()) << 8);
        let line = quiesce(line, &uart).expect_err("a byte is queued");
        assert!(gic.is_masked(33));
        fake::w32(&mut mem, 4, u32::from(Lsr::THRE.bits()) << 8);
        let (quiet, line) = quiesce(line, &uart).expect("FIFO empty");
        let _armed = line.rearm(quiet);
        assert!(!gic.is_masked(33));
    }

    #[test]
    fn stuck_transmitter_drops() {
        let mut mem = fake::frames(1);
        let base = fake::base(&mut mem);
        // SAFETY: as above.
        let uart = unsafe { Ns16550::new(base, 0, 1) };
        uart.write_byte(b'x');
        assert_eq!(uart.dropped(), 1);
    }
}
