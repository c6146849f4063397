//! A `NetIf` frame's slot headers as the kernel takes them (`abi::netif`): each slot's
//! length, the driver's word on the frame's checksum and segmentation, and a frame spanning
//! slots, refused unless they make sense. Pure, so it is tested on the host; the interface's
//! task (`stack/netif/task.rs`) reads the slots.

use abi::netif::{
    CSUM_PARTIAL, CSUM_VALID, GSO_TCPV4, MAX_CHAIN, MAX_FRAME, MAX_PACKET, MORE, SlotHeader,
};
use drivers::virtio::net::{RxCsum, RxMeta};

/// Largest frame put in a slot, and largest frame taken without `GSO_TCPV4`: Ethernet
/// without FCS.
pub const MAX_ETH_FRAME: usize = 1514;
/// Shortest frame taken: an Ethernet header.
pub const MIN_ETH_FRAME: usize = 14;

/// Why a frame was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SlotRefused {
    /// A slot's length is 0 or over a slot, the frame is no Ethernet frame (too short, or
    /// too long for what its flags say), or it spans more than `MAX_CHAIN` slots.
    Len,
    /// Undefined flags, both checksum flags, a partial checksum outside the frame, a
    /// segment without a partial checksum or a size, or a continuation slot with more than
    /// `MORE`.
    Flags,
    /// The kernel had no memory for the frame just then (not the driver's doing).
    NoMemory,
}

/// The longest frame a slot chain with `meta` may carry: a segment up to the largest IPv4
/// datagram, anything else an Ethernet frame.
pub fn longest(meta: &RxMeta) -> usize {
    if meta.gso_size.is_some() {
        MAX_PACKET
    } else {
        MAX_ETH_FRAME
    }
}

/// A frame being read slot by slot: [`Chain::first`], then [`Chain::next`] while
/// [`Chain::more`], then [`Chain::finish`].
#[derive(Debug)]
pub struct Chain {
    meta: RxMeta,
    total: usize,
    slots: usize,
    more: bool,
}

/// A slot's own length: 1 to a slot's capacity.
fn piece(h: &SlotHeader) -> Result<usize, SlotRefused> {
    let len = usize::from(h.len);
    if (1..=MAX_FRAME).contains(&len) {
        Ok(len)
    } else {
        Err(SlotRefused::Len)
    }
}

impl Chain {
    /// A frame's first slot: the frame's checksum and segmentation, and this slot's bytes.
    pub fn first(h: &SlotHeader) -> Result<(Chain, usize), SlotRefused> {
        let len = piece(h)?;
        let csum = match h.flags & !(MORE | GSO_TCPV4) {
            0 => RxCsum::Unchecked,
            CSUM_VALID => RxCsum::Valid,
            CSUM_PARTIAL => RxCsum::Partial {
                start: h.csum_start,
                offset: h.csum_offset,
            },
            _ => return Err(SlotRefused::Flags),
        };
        let gso_size = if h.flags & GSO_TCPV4 == 0 {
            None
        } else if h.gso_size != 0 && matches!(csum, RxCsum::Partial { .. }) {
            Some(h.gso_size)
        } else {
            return Err(SlotRefused::Flags);
        };
        let chain = Chain {
            meta: RxMeta {
                csum,
                gso_size,
                ..RxMeta::PLAIN
            },
            total: len,
            slots: 1,
            more: h.flags & MORE != 0,
        };
        Ok((chain, len))
    }

    /// Whether the frame goes on in the next slot.
    pub fn more(&self) -> bool {
        self.more
    }

    /// A continuation slot: its bytes.
    pub fn next(&mut self, h: &SlotHeader) -> Result<usize, SlotRefused> {
        if h.flags & !MORE != 0 {
            return Err(SlotRefused::Flags);
        }
        let len = piece(h)?;
        if self.slots == MAX_CHAIN {
            return Err(SlotRefused::Len);
        }
        self.slots += 1;
        self.total += len;
        self.more = h.flags & MORE != 0;
        Ok(len)
    }

    /// The whole frame's length and metadata, if they make sense together.
    pub fn finish(self) -> Result<(usize, RxMeta), SlotRefused> {
        if self.more || !(MIN_ETH_FRAME..=longest(&self.meta)).contains(&self.total) {
            return Err(SlotRefused::Len);
        }
        if let RxCsum::Partial { start, offset } = self.meta.csum
            && usize::from(start) + usize::from(offset) + 2 > self.total
        {
            return Err(SlotRefused::Flags);
        }
        Ok((self.total, self.meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame in one slot: its length and metadata, if they make sense.
    fn rx_meta(h: &SlotHeader) -> Result<(usize, RxMeta), SlotRefused> {
        let (chain, _) = Chain::first(h)?;
        if chain.more() {
            return Err(SlotRefused::Len);
        }
        chain.finish()
    }

    fn header(len: u16, flags: u16, start: u16, offset: u16) -> SlotHeader {
        SlotHeader {
            len,
            flags,
            csum_start: start,
            csum_offset: offset,
            gso_size: 0,
        }
    }

    /// Reads a frame from its slots' headers as the task does.
    fn frame(slots: &[SlotHeader]) -> Result<(usize, RxMeta), SlotRefused> {
        let (first, rest) = slots.split_first().expect("a slot");
        let (mut chain, _) = Chain::first(first)?;
        for h in rest {
            assert!(chain.more(), "slots past the frame's end");
            chain.next(h)?;
        }
        chain.finish()
    }

    fn segment(pieces: &[u16]) -> Vec<SlotHeader> {
        let last = pieces.len() - 1;
        pieces
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let more = if i < last { MORE } else { 0 };
                if i == 0 {
                    SlotHeader {
                        len,
                        flags: CSUM_PARTIAL | GSO_TCPV4 | more,
                        csum_start: 34,
                        csum_offset: 16,
                        gso_size: 1448,
                    }
                } else {
                    header(len, more, 0, 0)
                }
            })
            .collect()
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
        assert_eq!(csum(header(0, 0, 0, 0)), Err(SlotRefused::Len));
        assert_eq!(csum(header(1515, CSUM_VALID, 0, 0)), Err(SlotRefused::Len));
        assert_eq!(rx_meta(&header(1514, 0, 0, 0)).map(|(l, _)| l), Ok(1514));
        // A frame that says it goes on is not a one-slot frame.
        assert_eq!(csum(header(60, MORE, 0, 0)), Err(SlotRefused::Len));
    }

    #[test]
    fn a_segment_spans_slots_up_to_the_largest_datagram() {
        let full = MAX_FRAME as u16;
        let (len, meta) = frame(&segment(&[full, full, 100])).unwrap();
        assert_eq!(len, 2 * MAX_FRAME + 100);
        assert_eq!(meta.gso_size, Some(1448));
        // 64 KiB behind an Ethernet header with a VLAN tag, in the most slots allowed.
        let mut pieces = [full; MAX_CHAIN];
        pieces[MAX_CHAIN - 1] = (MAX_PACKET - (MAX_CHAIN - 1) * MAX_FRAME) as u16;
        assert_eq!(frame(&segment(&pieces)).map(|(l, _)| l), Ok(MAX_PACKET));
        // One byte more, or one slot more, is no frame.
        pieces[MAX_CHAIN - 1] += 1;
        assert_eq!(frame(&segment(&pieces)), Err(SlotRefused::Len));
        let mut long = vec![1u16; MAX_CHAIN + 1];
        long[0] = 100;
        assert_eq!(frame(&segment(&long)), Err(SlotRefused::Len));
    }

    #[test]
    fn a_frame_over_the_mtu_must_be_a_segment_with_a_partial_checksum() {
        // Two slots, 2 100 bytes: refused without GSO_TCPV4 ...
        let mut plain = segment(&[2000, 100]);
        plain[0].flags &= !GSO_TCPV4;
        assert_eq!(frame(&plain), Err(SlotRefused::Len));
        // ... but the same 1 514 bytes in two slots are one frame.
        let mut small = segment(&[1000, 514]);
        small[0].flags &= !GSO_TCPV4;
        assert_eq!(frame(&small).map(|(l, _)| l), Ok(1514));
        // A segment needs its size and a partial checksum (virtio's rule).
        let mut sizeless = segment(&[2000, 100]);
        sizeless[0].gso_size = 0;
        assert_eq!(frame(&sizeless), Err(SlotRefused::Flags));
        let mut valid = segment(&[2000, 100]);
        valid[0].flags = CSUM_VALID | GSO_TCPV4 | MORE;
        assert_eq!(frame(&valid), Err(SlotRefused::Flags));
    }

    #[test]
    fn continuation_slots_carry_their_length_and_nothing_else() {
        for flags in [CSUM_VALID, CSUM_PARTIAL, GSO_TCPV4, 1 << 9] {
            let mut s = segment(&[2000, 1000, 100]);
            s[1].flags |= flags;
            assert_eq!(frame(&s), Err(SlotRefused::Flags), "flags {flags:#x}");
        }
        for len in [0, MAX_FRAME as u16 + 1, u16::MAX] {
            let mut s = segment(&[2000, 1000, 100]);
            s[1].len = len;
            assert_eq!(frame(&s), Err(SlotRefused::Len), "len {len}");
        }
        // The checksum field is checked against the whole frame, not the first slot.
        let mut far = segment(&[2000, 1000, 100]);
        far[0].csum_start = 2500;
        assert!(frame(&far).is_ok());
        far[0].csum_start = 3090;
        assert_eq!(frame(&far), Err(SlotRefused::Flags));
    }
}
