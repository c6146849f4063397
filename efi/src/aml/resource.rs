//! ACPI resource templates (`_CRS` buffers): windows, bus ranges, interrupts.
//!
//! A resource template is a list of small and large descriptors ended by an
//! End Tag (ACPI 6.5 §6.4). The ones an Arm VM's host bridge, link devices and
//! UART use are decoded; others are skipped by their length. Every length is
//! checked against the buffer.

use alloc::vec::Vec;

/// What an address-space descriptor describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Memory.
    Memory {
        /// `_MEM` says prefetchable.
        prefetchable: bool,
    },
    /// I/O ports.
    Io,
    /// Bus numbers.
    Bus,
}

/// One decoded descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Word/DWord/QWord/Extended address space (§6.4.3.5): `min..=max` on the child
    /// side, `translation` added for the CPU side.
    Address {
        /// Kind of window.
        space: Space,
        /// Lowest child address.
        min: u64,
        /// Highest child address.
        max: u64,
        /// CPU address = child address + translation.
        translation: u64,
        /// Length (0 means `max - min + 1`).
        len: u64,
        /// Whether the descriptor came from a QWord (64-bit) form.
        wide: bool,
    },
    /// Fixed 32-bit memory range (§6.4.3.4).
    Memory32 {
        /// Base.
        base: u64,
        /// Length.
        len: u64,
    },
    /// Extended interrupt (§6.4.3.6): the first GSIV and its mode.
    Interrupt {
        /// Global system interrupt number.
        gsiv: u32,
        /// Edge rather than level.
        edge: bool,
        /// Active low rather than high.
        active_low: bool,
    },
}

fn le(b: &[u8], at: usize, n: usize) -> Option<u64> {
    let s = b.get(at..at + n)?;
    Some(s.iter().rev().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
}

fn address(body: &[u8], width: usize) -> Option<Resource> {
    let space = match body.first()? {
        0 => Space::Memory {
            prefetchable: (body.get(2)? >> 1) & 3 == 3,
        },
        1 => Space::Io,
        2 => Space::Bus,
        _ => return None,
    };
    let field = |i: usize| le(body, 3 + width * i, width);
    Some(Resource::Address {
        space,
        min: field(1)?,
        max: field(2)?,
        translation: field(3)?,
        len: field(4)?,
        wide: width == 8,
    })
}

/// Decodes `template`; descriptors of other kinds are skipped. `None` if a length
/// runs past the buffer.
pub fn decode(template: &[u8]) -> Option<Vec<Resource>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < template.len() {
        let tag = template[at];
        if tag & 0x80 == 0 {
            if tag >> 3 == 0x0f {
                return Some(out);
            }
            at += 1 + usize::from(tag & 7);
            continue;
        }
        let len = le(template, at + 1, 2)? as usize;
        let body = template.get(at + 3..at + 3 + len)?;
        let decoded = match tag & 0x7f {
            0x06 => Some(Resource::Memory32 {
                base: le(body, 1, 4)?,
                len: le(body, 5, 4)?,
            }),
            0x07 => address(body, 4),
            0x08 => address(body, 2),
            0x0a => address(body, 8),
            // Extended Address Space: type, flags, specific, rev, reserved, then QWords.
            0x0b => address(&[&body[..3], body.get(5..)?].concat(), 8),
            0x09 => {
                let flags = *body.first()?;
                (*body.get(1)? > 0).then_some(()).and_then(|_| {
                    Some(Resource::Interrupt {
                        gsiv: le(body, 2, 4)? as u32,
                        edge: flags & 2 != 0,
                        active_low: flags & 4 != 0,
                    })
                })
            }
            _ => None,
        };
        out.extend(decoded);
        at += 3 + len;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU virt's PCI0 `_CRS` (from the fixture DSDT): bus 0..255, 32-bit memory,
    /// I/O translated to 0x3eff0000, 64-bit memory.
    const QEMU_PCI0_CRS: &str = "880d00020c0000000000ff0000000001871700000c010000000000000010fffffe3e000000000000ff2e871700010c030000000000000000ffff00000000ff3e000001008a2b00000c0100000000000000000000000080000000ffffffffff000000000000000000000000000000800000007900";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn qemu_host_bridge_windows() {
        let r = decode(&hex(QEMU_PCI0_CRS)).unwrap();
        assert_eq!(r.len(), 4);
        assert!(matches!(
            r[0],
            Resource::Address {
                space: Space::Bus,
                min: 0,
                max: 255,
                ..
            }
        ));
        assert_eq!(
            r[1],
            Resource::Address {
                space: Space::Memory {
                    prefetchable: false
                },
                min: 0x1000_0000,
                max: 0x3efe_ffff,
                translation: 0,
                len: 0x2eff_0000,
                wide: false
            }
        );
        assert!(matches!(
            r[2],
            Resource::Address {
                space: Space::Io,
                min: 0,
                max: 0xffff,
                translation: 0x3eff_0000,
                ..
            }
        ));
        assert!(matches!(
            r[3],
            Resource::Address {
                min: 0x80_0000_0000,
                wide: true,
                ..
            }
        ));
    }

    #[test]
    fn link_device_interrupt() {
        // Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) { 35 }
        let r = decode(&hex("890600010123000000" /* + end tag */)).unwrap();
        assert_eq!(
            r,
            [Resource::Interrupt {
                gsiv: 35,
                edge: false,
                active_low: false
            }]
        );
    }

    #[test]
    fn lengths_past_the_buffer_are_refused() {
        assert_eq!(decode(&hex("8717000c")), None);
        assert_eq!(decode(&hex("89ff00")), None);
        // A small descriptor's length running off the end just ends the walk.
        assert_eq!(decode(&hex("47")), Some(Vec::new()));
    }
}
