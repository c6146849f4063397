//! Serial ports: the kernel console and the first device with an RX interrupt.
//!
//! QEMU `virt`, VMware and most Arm boards give a PL011 as the boot console; it
//! is also the simplest line to test the interrupt path end to end (loopback →
//! RX interrupt → GIC SPI).

pub mod pl011;

pub use pl011::Pl011;
