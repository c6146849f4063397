//! Serial ports: the kernel console and the first device with an RX interrupt.
//!
//! QEMU `virt` and Parallels give a PL011 as the boot console, VMware a 16550;
//! the firmware (device tree `stdout-path`, or ACPI SPCR/DBG2 on the UEFI path)
//! says which. [`Uart`] puts both behind the one set of methods the console and
//! the monitor call, so neither knows which it drives. The PL011 is also the
//! simplest line to test the interrupt path end to end (loopback → RX interrupt
//! → GIC SPI).

pub mod ns16550;
pub mod pl011;

use core::fmt;

pub use ns16550::Ns16550;
pub use pl011::Pl011;

/// The console UART, whichever programming model it has.
pub enum Uart {
    /// Arm PL011.
    Pl011(Pl011),
    /// 16550-compatible.
    Ns16550(Ns16550),
}

/// Forwards a method to whichever UART this is.
macro_rules! forward {
    ($self:ident, $method:ident $(, $arg:expr)*) => {
        match $self {
            Uart::Pl011(u) => u.$method($($arg),*),
            Uart::Ns16550(u) => u.$method($($arg),*),
        }
    };
}

impl Uart {
    /// Programs the line (8N1, FIFOs on, interrupts masked); the baud rate stays as
    /// firmware set it.
    pub fn init(&self) {
        forward!(self, init)
    }

    /// Sends one byte (bounded wait; dropped and counted if the UART never takes it).
    pub fn write_byte(&self, byte: u8) {
        forward!(self, write_byte, byte)
    }

    /// Bytes dropped because the transmitter stayed busy.
    pub fn dropped(&self) -> u32 {
        forward!(self, dropped)
    }

    /// One received byte, if any.
    pub fn read_byte(&self) -> Option<u8> {
        forward!(self, read_byte)
    }

    /// Unmasks the receive interrupt.
    pub fn enable_rx_interrupt(&self) {
        forward!(self, enable_rx_interrupt)
    }

    /// Masks the receive interrupt.
    pub fn disable_rx_interrupt(&self) {
        forward!(self, disable_rx_interrupt)
    }

    /// Clears the receive interrupt where the UART latches it (PL011; a 16550 drops it
    /// when its FIFO is read empty).
    pub fn clear_rx_interrupt(&self) {
        forward!(self, clear_rx_interrupt)
    }

    /// Whether the receive FIFO is empty: the state the receive interrupt is raised on,
    /// so the console re-arms its line only when this reads true after the clear.
    pub fn rx_fifo_empty(&self) -> bool {
        forward!(self, rx_fifo_empty)
    }

    /// Receive overruns seen so far (bytes the UART lost because input was not read).
    pub fn rx_overruns(&self) -> u32 {
        forward!(self, rx_overruns)
    }

    /// Writes `s`, turning `\n` into `\r\n`.
    pub fn write_str_crlf(&self, s: &str) {
        forward!(self, write_str_crlf, s)
    }

    /// The PL011, for tests that use its loopback mode.
    pub fn as_pl011(&self) -> Option<&Pl011> {
        match self {
            Uart::Pl011(u) => Some(u),
            Uart::Ns16550(_) => None,
        }
    }
}

// SAFETY: forwards both calls to the UART this is, whose own `QuietCheck` reads its
// receive FIFO (PL011 `UARTFR.RXFE`, 16550 `LSR.DR`).
unsafe impl caps::quiet::QuietCheck for Uart {
    fn enable(&self, seal: &caps::quiet::Seal) {
        match self {
            Uart::Pl011(u) => caps::quiet::QuietCheck::enable(u, seal),
            Uart::Ns16550(u) => caps::quiet::QuietCheck::enable(u, seal),
        }
    }
    fn is_quiet(&self, seal: &caps::quiet::Seal) -> bool {
        match self {
            Uart::Pl011(u) => caps::quiet::QuietCheck::is_quiet(u, seal),
            Uart::Ns16550(u) => caps::quiet::QuietCheck::is_quiet(u, seal),
        }
    }
}

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_str_crlf(s);
        Ok(())
    }
}
