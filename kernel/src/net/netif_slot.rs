//! A `NetIf` frame slot's header as the kernel takes it (`abi::netif`): the frame's length
//! and the driver's word on its checksum, refused unless they make sense. Pure, so it is
//! tested on the host; the interface's task (`stack/netif/task.rs`) reads the slots.

use abi::netif::{CSUM_PARTIAL, CSUM_VALID, SlotHeader};
use drivers::virtio::net::{RxCsum, RxMeta};

/// Largest frame taken from or put in a slot: Ethernet without FCS.
pub const MAX_ETH_FRAME: usize = 1514;
/// Shortest frame taken: an Ethernet header.
pub const MIN_ETH_FRAME: usize = 14;

/// Why a slot was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SlotRefused {
    /// The length is no Ethernet frame.
    Len,
    /// Undefined flags, both checksum flags, or a partial checksum outside the frame.
    Flags,
}

/// A slot header's frame length and checksum state, if they make sense.
pub fn rx_meta(h: &SlotHeader) -> Result<(usize, RxMeta), SlotRefused> {
    let len = usize::from(h.len);
    if !(MIN_ETH_FRAME..=MAX_ETH_FRAME).contains(&len) {
        return Err(SlotRefused::Len);
    }
    let csum = match h.flags {
        0 => RxCsum::Unchecked,
        CSUM_VALID => RxCsum::Valid,
        CSUM_PARTIAL if usize::from(h.csum_start) + usize::from(h.csum_offset) + 2 <= len => {
            RxCsum::Partial {
                start: h.csum_start,
                offset: h.csum_offset,
            }
        }
        _ => return Err(SlotRefused::Flags),
    };
    Ok((
        len,
        RxMeta {
            csum,
            ..RxMeta::PLAIN
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u16, flags: u16, start: u16, offset: u16) -> SlotHeader {
        SlotHeader {
            len,
            flags,
            csum_start: start,
            csum_offset: offset,
        }
    }

    #[test]
    fn a_slot_header_is_taken_only_when_it_makes_sense() {
        let csum = |h| rx_meta(&h).map(|(_, m)| m.csum);
        assert_eq!(csum(header(60, 0, 0, 0)), Ok(RxCsum::Unchecked));
        assert_eq!(csum(header(60, CSUM_VALID, 0, 0)), Ok(RxCsum::Valid));
        assert_eq!(
            csum(header(60, CSUM_PARTIAL, 34, 16)),
            Ok(RxCsum::Partial {
                start: 34,
                offset: 16
            })
        );
        // The checksum field must lie inside the frame: 34 + 24 + 2 = 60 fits, one more not.
        assert!(csum(header(60, CSUM_PARTIAL, 34, 24)).is_ok());
        assert_eq!(
            csum(header(60, CSUM_PARTIAL, 34, 25)),
            Err(SlotRefused::Flags)
        );
        assert_eq!(
            csum(header(60, CSUM_PARTIAL, u16::MAX, u16::MAX)),
            Err(SlotRefused::Flags)
        );
        assert_eq!(
            csum(header(60, CSUM_VALID | CSUM_PARTIAL, 34, 16)),
            Err(SlotRefused::Flags)
        );
        assert_eq!(csum(header(60, 1 << 7, 0, 0)), Err(SlotRefused::Flags));
        assert_eq!(csum(header(13, 0, 0, 0)), Err(SlotRefused::Len));
        assert_eq!(csum(header(1515, CSUM_VALID, 0, 0)), Err(SlotRefused::Len));
        assert_eq!(rx_meta(&header(1514, 0, 0, 0)).map(|(l, _)| l), Ok(1514));
    }
}
