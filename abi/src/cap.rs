//! `CapType` and `Rights`: what a capability slot holds and what it allows.
//!
//! Both live in the kernel slot, never in the handle (ABI.md "Handles"); `cap_info` reports
//! them to user space, so their encodings are part of the contract. `Rights` is hand-written
//! rather than `bitflags` to keep `abi` free of dependencies.

use core::ops::{BitAnd, BitOr};

/// The kind of object a capability slot holds.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CapType {
    /// An interrupt line (wired SPI or MSI vector), in any type state.
    IrqLine = 1,
    /// An MSI vector not (yet) bound to a line.
    MsiVector = 2,
    /// A PCI (or platform) device: config space, bus mastering, reset.
    Device = 3,
    /// A BAR window that can be mapped with `mmio_map`.
    MmioWindow = 4,
    /// A DMA region.
    DmaRegion = 5,
    /// A virtqueue.
    Vring = 6,
    /// An open file (procfs, initrd).
    File = 7,
    /// A socket.
    Socket = 8,
    /// A process's notification word: `notify_post` sets bits in it.
    Notification = 9,
    /// The right to power the machine off or reboot it (init holds it from boot).
    Power = 10,
    /// A network interface of the kernel's stack, fed by a user-mode NIC driver
    /// (`abi::netif`). Linear: stays with the driver that opened it.
    NetIf = 11,
}

impl CapType {
    /// Every type, in discriminant order.
    pub const ALL: [CapType; 11] = [
        CapType::IrqLine,
        CapType::MsiVector,
        CapType::Device,
        CapType::MmioWindow,
        CapType::DmaRegion,
        CapType::Vring,
        CapType::File,
        CapType::Socket,
        CapType::Notification,
        CapType::Power,
        CapType::NetIf,
    ];
}

impl TryFrom<u32> for CapType {
    /// The unknown value, handed back.
    type Error = u32;

    fn try_from(v: u32) -> Result<Self, u32> {
        Ok(match v {
            1 => CapType::IrqLine,
            2 => CapType::MsiVector,
            3 => CapType::Device,
            4 => CapType::MmioWindow,
            5 => CapType::DmaRegion,
            6 => CapType::Vring,
            7 => CapType::File,
            8 => CapType::Socket,
            9 => CapType::Notification,
            10 => CapType::Power,
            11 => CapType::NetIf,
            other => return Err(other),
        })
    }
}

/// A set of rights held in a capability slot.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Rights(u32);

impl Rights {
    /// May be granted to another process (`cap_grant`).
    pub const TRANSFER: Rights = Rights(1 << 0);
    /// May be inspected (`cap_info`, `dev_info`).
    pub const INSPECT: Rights = Rights(1 << 1);
    /// May arm, wait on and mask an interrupt line.
    pub const IRQ: Rights = Rights(1 << 2);
    /// May rearm (acknowledge) an interrupt line.
    pub const ACK: Rights = Rights(1 << 3);
    /// May map an MMIO window or DMA region.
    pub const MAP: Rights = Rights(1 << 4);
    /// May allocate DMA memory for a device and drive bus mastering.
    pub const DMA: Rights = Rights(1 << 5);
    /// May read (files, sockets).
    pub const READ: Rights = Rights(1 << 6);
    /// May write (files, sockets).
    pub const WRITE: Rights = Rights(1 << 7);

    const ALL_BITS: u32 = (1 << 8) - 1;

    /// No rights.
    pub const fn empty() -> Rights {
        Rights(0)
    }

    /// Every defined right.
    pub const fn all() -> Rights {
        Rights(Self::ALL_BITS)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Decodes raw bits; `None` if an undefined bit is set (never silently truncated).
    pub const fn from_bits(bits: u32) -> Option<Rights> {
        if bits & !Self::ALL_BITS != 0 {
            None
        } else {
            Some(Rights(bits))
        }
    }

    /// Whether every right in `other` is also in `self`.
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// Rights in either set.
    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    /// Rights in both sets.
    pub const fn intersection(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }

    /// Whether no right is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Rights {
    type Output = Rights;
    fn bitor(self, rhs: Rights) -> Rights {
        self.union(rhs)
    }
}

impl BitAnd for Rights {
    type Output = Rights;
    fn bitand(self, rhs: Rights) -> Rights {
        self.intersection(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_type_round_trip_and_reject() {
        for t in CapType::ALL {
            assert_eq!(CapType::try_from(t as u32), Ok(t));
        }
        for v in [0, 12, 100, u32::MAX] {
            assert_eq!(CapType::try_from(v), Err(v));
        }
    }

    #[test]
    fn rights_set_operations() {
        let r = Rights::IRQ | Rights::ACK;
        assert!(r.contains(Rights::IRQ));
        assert!(!r.contains(Rights::IRQ | Rights::TRANSFER));
        assert_eq!(r & Rights::ACK, Rights::ACK);
        assert!(Rights::empty().is_empty());
        assert!(Rights::all().contains(r));
    }

    #[test]
    fn rights_from_bits_rejects_unknown_bits() {
        assert_eq!(Rights::from_bits(Rights::all().bits()), Some(Rights::all()));
        assert_eq!(Rights::from_bits(1 << 8), None);
        assert_eq!(Rights::from_bits(u32::MAX), None);
        assert_eq!(Rights::from_bits(0), Some(Rights::empty()));
    }
}
