//! Arm PrimeCell PL011 UART driver (ARM DDI 0183G).
//!
//! The boot console and an interrupt-capable test device. Transmission polls
//! `UARTFR.TXFF` with a bound, so a wedged or absent UART drops characters
//! instead of hanging the kernel in a panic path. Baud rate is left as firmware
//! (or QEMU, which ignores it) programmed, unless [`Pl011::set_baud`] is called.

use core::fmt;
use core::hint::spin_loop;
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, Ordering};

use bitfield_struct::bitfield;
use bitflags::bitflags;

use crate::mmio::Mmio;

/// PL011 register block, DDI 0183G §3.2 (Table 3-1). 4 KiB.
#[repr(C)]
pub(crate) struct Uart {
    /// `UARTDR`, §3.3.1: data; bits [11:8] are the receive error flags.
    pub dr: u32,
    /// `UARTRSR`/`UARTECR`, §3.3.2: receive status / error clear.
    pub rsr_ecr: u32,
    _reserved0: [u32; 4],
    /// `UARTFR`, §3.3.3.
    pub fr: u32,
    _reserved1: u32,
    /// `UARTILPR`, §3.3.4.
    pub ilpr: u32,
    /// `UARTIBRD`, §3.3.5.
    pub ibrd: u32,
    /// `UARTFBRD`, §3.3.6.
    pub fbrd: u32,
    /// `UARTLCR_H`, §3.3.7.
    pub lcr_h: u32,
    /// `UARTCR`, §3.3.8.
    pub cr: u32,
    /// `UARTIFLS`, §3.3.9.
    pub ifls: u32,
    /// `UARTIMSC`, §3.3.10.
    pub imsc: u32,
    /// `UARTRIS`, §3.3.11.
    pub ris: u32,
    /// `UARTMIS`, §3.3.12.
    pub mis: u32,
    /// `UARTICR`, §3.3.13 (write-one-to-clear, write-only).
    pub icr: u32,
    /// `UARTDMACR`, §3.3.14.
    pub dmacr: u32,
    _reserved2: [u32; 997],
    /// `UARTPeriphID0-3` and `UARTPCellID0-3`, §3.3.15–§3.3.16.
    pub id: [u32; 8],
}

const UARTDR: usize = offset_of!(Uart, dr);
const UARTECR: usize = offset_of!(Uart, rsr_ecr);
const UARTFR: usize = offset_of!(Uart, fr);
const UARTIBRD: usize = offset_of!(Uart, ibrd);
const UARTFBRD: usize = offset_of!(Uart, fbrd);
const UARTLCR_H: usize = offset_of!(Uart, lcr_h);
const UARTCR: usize = offset_of!(Uart, cr);
const UARTIMSC: usize = offset_of!(Uart, imsc);
const UARTMIS: usize = offset_of!(Uart, mis);
const UARTICR: usize = offset_of!(Uart, icr);

const _: () = assert!(UARTDR == 0x000);
const _: () = assert!(UARTECR == 0x004);
const _: () = assert!(UARTFR == 0x018);
const _: () = assert!(offset_of!(Uart, ilpr) == 0x020);
const _: () = assert!(UARTIBRD == 0x024);
const _: () = assert!(UARTFBRD == 0x028);
const _: () = assert!(UARTLCR_H == 0x02c);
const _: () = assert!(UARTCR == 0x030);
const _: () = assert!(offset_of!(Uart, ifls) == 0x034);
const _: () = assert!(UARTIMSC == 0x038);
const _: () = assert!(offset_of!(Uart, ris) == 0x03c);
const _: () = assert!(UARTMIS == 0x040);
const _: () = assert!(UARTICR == 0x044);
const _: () = assert!(offset_of!(Uart, dmacr) == 0x048);
const _: () = assert!(offset_of!(Uart, id) == 0xfe0);
const _: () = assert!(size_of::<Uart>() == 0x1000);

bitflags! {
    /// `UARTFR`, DDI 0183G §3.3.3.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Fr: u32 {
        const BUSY = 1 << 3;
        const RXFE = 1 << 4;
        const TXFF = 1 << 5;
        const RXFF = 1 << 6;
        const TXFE = 1 << 7;
    }
}

bitflags! {
    /// `UARTCR`, DDI 0183G §3.3.8.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Cr: u32 {
        const UARTEN = 1 << 0;
        const LBE = 1 << 7;
        const TXE = 1 << 8;
        const RXE = 1 << 9;
    }
}

bitflags! {
    /// `UARTIMSC` / `UARTRIS` / `UARTMIS` / `UARTICR` bits, DDI 0183G §3.3.10–§3.3.13.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Int: u32 {
        const RX = 1 << 4;
        const TX = 1 << 5;
        const RT = 1 << 6;
        const FE = 1 << 7;
        const PE = 1 << 8;
        const BE = 1 << 9;
        const OE = 1 << 10;
        const ALL = 0x7ff;
    }
}

/// `UARTLCR_H`, DDI 0183G §3.3.7.
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
struct LcrH {
    brk: bool,
    pen: bool,
    eps: bool,
    stp2: bool,
    fen: bool,
    /// Word length: 0b11 = 8 bits.
    #[bits(2)]
    wlen: u8,
    sps: bool,
    #[bits(24)]
    __: u32,
}

/// `UARTDR` receive error flags, DDI 0183G §3.3.1: FE, PE, BE, OE (bits 8-11).
const DR_ERRORS: u32 = 0xf00;
/// `UARTDR.OE`: overrun, the FIFO was full and a byte was lost.
const DR_OE: u32 = 1 << 11;

/// 8 data bits, no parity, 1 stop bit, FIFOs enabled.
const LCR_8N1_FIFO: LcrH = LcrH::new().with_wlen(0b11).with_fen(true);

/// Polls of `UARTFR` before giving up on a full TX FIFO or a busy transmitter.
/// At 115200 baud one character takes ~87 µs; this bound is well past that on
/// any emulated or real MMIO path.
const TX_SPIN_LIMIT: u32 = 100_000;

/// `(UARTIBRD, UARTFBRD)` for `clock_hz` and `baud`: the divisor is
/// clock / (16 × baud), its fraction kept to 6 bits, rounded (DDI 0183G §3.3.6).
/// `None` if the integer part does not fit 1..=0xffff.
pub const fn baud_divisors(clock_hz: u32, baud: u32) -> Option<(u16, u8)> {
    if baud == 0 {
        return None;
    }
    // 64 × clock / (16 × baud) = 4 × clock / baud, rounded to nearest.
    let div = (4 * clock_hz as u64 + baud as u64 / 2) / baud as u64;
    let ibrd = div >> 6;
    if ibrd == 0 || ibrd > 0xffff {
        return None;
    }
    Some((ibrd as u16, (div & 0x3f) as u8))
}

/// A PL011 UART.
pub struct Pl011 {
    regs: Mmio<Uart>,
    dropped: AtomicU32,
    overruns: AtomicU32,
}

impl Pl011 {
    /// Wraps the PL011 mapped at virtual address `base`.
    ///
    /// # Safety
    /// `base` maps the 4 KiB PL011 register block as device memory, valid for the
    /// life of the value and exclusively owned by it.
    #[must_use]
    pub const unsafe fn new(base: usize) -> Self {
        Self {
            // SAFETY: the caller gives us the exclusive 4 KiB device mapping.
            regs: unsafe { Mmio::new(base) },
            dropped: AtomicU32::new(0),
            overruns: AtomicU32::new(0),
        }
    }

    fn fr(&self) -> Fr {
        Fr::from_bits_retain(self.regs.read32(UARTFR))
    }

    /// Waits (bounded) until the transmitter is idle; false if it never was.
    fn wait_idle(&self) -> bool {
        for _ in 0..TX_SPIN_LIMIT {
            if !self.fr().contains(Fr::BUSY) {
                return true;
            }
            spin_loop();
        }
        false
    }

    /// 8N1 with FIFOs, all interrupts masked and cleared, TX and RX enabled.
    /// The baud divisors are left as they are (DDI 0183G §3.3.8 programming order:
    /// disable, drain, reprogram LCR_H, enable).
    pub fn init(&self) {
        self.regs.write32(UARTCR, 0);
        self.wait_idle();
        self.regs.write32(UARTLCR_H, LCR_8N1_FIFO.into_bits());
        self.regs.write32(UARTIMSC, 0);
        self.regs.write32(UARTICR, Int::ALL.bits());
        self.regs
            .write32(UARTCR, (Cr::UARTEN | Cr::TXE | Cr::RXE).bits());
    }

    /// Programs the baud divisors for a `clock_hz` reference clock (24 MHz on
    /// QEMU `virt`), e.g. `set_baud(24_000_000, 115_200)`. Returns false and
    /// changes nothing if the rate is not reachable. A `UARTLCR_H` write latches
    /// the divisors (§3.3.6), so it is rewritten afterwards.
    pub fn set_baud(&self, clock_hz: u32, baud: u32) -> bool {
        let Some((ibrd, fbrd)) = baud_divisors(clock_hz, baud) else {
            return false;
        };
        let cr = self.regs.read32(UARTCR);
        self.regs.write32(UARTCR, 0);
        self.wait_idle();
        self.regs.write32(UARTIBRD, ibrd.into());
        self.regs.write32(UARTFBRD, fbrd.into());
        self.regs.write32(UARTLCR_H, LCR_8N1_FIFO.into_bits());
        self.regs.write32(UARTCR, cr);
        true
    }

    /// Sends one byte, waiting a bounded time for FIFO space; if the FIFO stays
    /// full the byte is dropped and counted (see [`Pl011::dropped`]).
    pub fn write_byte(&self, byte: u8) {
        for _ in 0..TX_SPIN_LIMIT {
            if !self.fr().contains(Fr::TXFF) {
                self.regs.write32(UARTDR, byte.into());
                return;
            }
            spin_loop();
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes dropped by [`Pl011::write_byte`] because the TX FIFO stayed full.
    pub fn dropped(&self) -> u32 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// One received byte, if the RX FIFO holds any. Framing, parity, break and
    /// overrun flags are cleared (`UARTECR`); the data byte is still returned, and an
    /// overrun (bytes lost because the FIFO was full, `UARTDR.OE`) is counted.
    pub fn read_byte(&self) -> Option<u8> {
        if self.rx_fifo_empty() {
            return None;
        }
        let dr = self.regs.read32(UARTDR);
        if dr & DR_ERRORS != 0 {
            if dr & DR_OE != 0 {
                self.overruns.fetch_add(1, Ordering::Relaxed);
            }
            self.regs.write32(UARTECR, 0);
        }
        Some(dr as u8)
    }

    /// Whether the receive FIFO is empty (`UARTFR.RXFE`). This, read after the
    /// interrupt clear, is what says the receiver is quiet: the RX interrupt is raised
    /// on the FIFO's fill level, not remembered in `UARTMIS` once cleared.
    pub fn rx_fifo_empty(&self) -> bool {
        self.fr().contains(Fr::RXFE)
    }

    /// Times the receiver reported an overrun (`UARTDR.OE`, DDI 0183G §3.3.1).
    pub fn rx_overruns(&self) -> u32 {
        self.overruns.load(Ordering::Relaxed)
    }

    /// Unmask the receive and receive-timeout interrupts (`UARTIMSC` RXIM | RTIM),
    /// so a single byte sitting below the FIFO trigger level still interrupts.
    pub fn enable_rx_interrupt(&self) {
        let imsc = self.regs.read32(UARTIMSC);
        self.regs
            .write32(UARTIMSC, imsc | (Int::RX | Int::RT).bits());
    }

    /// Mask the receive and receive-timeout interrupts.
    pub fn disable_rx_interrupt(&self) {
        let imsc = self.regs.read32(UARTIMSC);
        self.regs
            .write32(UARTIMSC, imsc & !(Int::RX | Int::RT).bits());
    }

    /// Clear the receive and receive-timeout interrupts (`UARTICR`, write-one).
    /// The RX interrupt re-asserts while the FIFO is above its trigger level, so
    /// drain with [`Pl011::read_byte`] first.
    pub fn clear_rx_interrupt(&self) {
        self.regs.write32(UARTICR, (Int::RX | Int::RT).bits());
    }

    /// Internal loopback (`UARTCR.LBE`): TX feeds RX, nothing reaches the line.
    pub fn set_loopback(&self, on: bool) {
        let cr = Cr::from_bits_retain(self.regs.read32(UARTCR));
        self.regs.write32(
            UARTCR,
            cr.difference(Cr::LBE)
                .union(if on { Cr::LBE } else { Cr::empty() })
                .bits(),
        );
    }

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

// SAFETY: the receive interrupt (RXINTR/RTINTR, DDI 0183G §3.4) asserts while received
// data waits in the FIFO. `enable` clears both at `UARTICR` (the final re-enable: the level
// drops unless more data is pending), and `is_quiet` then reads `UARTFR.RXFE` from the
// device: an empty FIFO leaves nothing that would not raise a fresh interrupt, since any
// byte that arrives later sets RXRIS/RTRIS again. (`UARTMIS` would read 0 right after the
// clear even with bytes still queued, so it is not the state to read.)
unsafe impl caps::quiet::QuietCheck for Pl011 {
    fn enable(&self, _: &caps::quiet::Seal) {
        self.clear_rx_interrupt();
    }
    fn is_quiet(&self, _: &caps::quiet::Seal) -> bool {
        self.rx_fifo_empty()
    }
}

impl fmt::Write for Pl011 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_str_crlf(s);
        Ok(())
    }
}

impl fmt::Write for &Pl011 {
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
    fn divisors() {
        // 24 MHz / (16 × 115200) = 13.0208: IBRD 13, FBRD round(0.0208 × 64) = 1.
        assert_eq!(baud_divisors(24_000_000, 115_200), Some((13, 1)));
        // DDI 0183G §3.3.6 example: 4 MHz, 230400 → 1.085 → IBRD 1, FBRD 5.
        assert_eq!(baud_divisors(4_000_000, 230_400), Some((1, 5)));
        assert_eq!(baud_divisors(24_000_000, 0), None);
        assert_eq!(baud_divisors(1_000, 115_200), None);
    }

    #[test]
    fn line_control() {
        assert_eq!(LCR_8N1_FIFO.into_bits(), 0x70);
        assert_eq!((Int::RX | Int::RT).bits(), 0x50);
        assert_eq!((Cr::UARTEN | Cr::TXE | Cr::RXE).bits(), 0x301);
    }

    #[test]
    fn fake_uart() {
        let mut mem = fake::frames(1);
        let base = fake::base(&mut mem);
        // SAFETY: `mem` outlives the driver and is accessed only through it.
        let mut uart = unsafe { Pl011::new(base) };
        uart.init();
        assert_eq!(fake::r32(&mem, UARTCR), 0x301);
        assert_eq!(fake::r32(&mem, UARTLCR_H), 0x70);
        uart.set_loopback(true);
        assert_eq!(fake::r32(&mem, UARTCR), 0x381);
        uart.set_loopback(false);
        assert_eq!(fake::r32(&mem, UARTCR), 0x301);
        writeln!(uart, "hi").unwrap();
        assert_eq!(fake::r32(&mem, UARTDR), u32::from(b'\n'));
        uart.enable_rx_interrupt();
        assert_eq!(fake::r32(&mem, UARTIMSC), 0x50);
        uart.clear_rx_interrupt();
        assert_eq!(fake::r32(&mem, UARTICR), 0x50);
        assert!(uart.set_baud(24_000_000, 115_200));
        assert_eq!(
            (fake::r32(&mem, UARTIBRD), fake::r32(&mem, UARTFBRD)),
            (13, 1)
        );
        // RX FIFO "not empty" with a byte in DR.
        assert_eq!(uart.read_byte(), Some(b'\n'));
    }

    #[test]
    fn rx_quiet_check_clears_then_reads_the_fifo_not_mis() {
        use caps::irq::Trigger;
        use caps::quiet::quiesce;
        let mut mem = fake::frames(1);
        let base = fake::base(&mut mem);
        // SAFETY: `mem` outlives the driver and is accessed only through it (and the test).
        let uart = unsafe { Pl011::new(base) };
        let (gic, line) = caps::fakes::fired_line(33, Trigger::Level);
        // A byte still queued after the clear: UARTMIS reads 0 (the clear just dropped it),
        // but the FIFO is not empty, so the line must stay masked.
        fake::w32(&mut mem, UARTMIS, 0);
        fake::w32(&mut mem, UARTFR, 0);
        let line = quiesce(line, &uart).expect_err("a byte is queued");
        assert_eq!(fake::r32(&mem, UARTICR), 0x50, "RX and RT cleared first");
        assert!(gic.is_masked(33));
        fake::w32(&mut mem, UARTFR, Fr::RXFE.bits());
        fake::w32(&mut mem, UARTMIS, (Int::RX | Int::RT).bits());
        let (quiet, line) = quiesce(line, &uart).expect("FIFO empty");
        let _armed = line.rearm(quiet);
        assert!(!gic.is_masked(33));
    }

    #[test]
    fn full_fifo_drops_instead_of_hanging() {
        let mut mem = fake::frames(1);
        fake::w32(&mut mem, UARTFR, Fr::TXFF.bits() | Fr::RXFE.bits());
        let base = fake::base(&mut mem);
        // SAFETY: as above.
        let uart = unsafe { Pl011::new(base) };
        uart.write_byte(b'x');
        assert_eq!(uart.dropped(), 1);
        assert_eq!(uart.read_byte(), None);
        assert!(uart.rx_fifo_empty());
    }

    #[test]
    fn overrun_is_counted_and_cleared() {
        let mut mem = fake::frames(1);
        fake::w32(&mut mem, UARTDR, DR_OE | u32::from(b'z'));
        fake::w32(&mut mem, UARTECR, 0xdead);
        let base = fake::base(&mut mem);
        // SAFETY: as above.
        let uart = unsafe { Pl011::new(base) };
        assert!(!uart.rx_fifo_empty());
        assert_eq!(uart.read_byte(), Some(b'z'));
        assert_eq!(uart.rx_overruns(), 1);
        // The error flags were cleared through UARTECR (any write clears them).
        assert_ne!(fake::r32(&mem, UARTECR), 0xdead);
        assert_eq!(fake::r32(&mem, UARTECR), 0);
    }
}
