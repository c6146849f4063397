//! The network-interface capability (`CapType::NetIf`): frames between a user-mode NIC
//! driver and the kernel's network stack.
//!
//! A driver that holds a NIC's `Device` capability opens the kernel's interface for that
//! device with `netif_open(dev, bit, mac)`. The kernel maps an area of [`AREA_LEN`] bytes
//! into the driver (read/write, never executable) and returns its address. The area holds
//! two single-producer rings of [`SLOTS`] frame slots each:
//!
//! - **RX** (driver → kernel): the driver copies a received frame into slot
//!   `RX_HEAD % SLOTS` of the RX ring, then advances `RX_HEAD` (a release store); the
//!   kernel takes frames up to `RX_HEAD` and advances `RX_TAIL`. After a batch the driver
//!   calls `netif_kick(h, flags)`, which wakes the kernel's interface ([`KICK_POLLING`]
//!   if it goes on polling). A frame longer than a slot
//!   (a TCP segment the device coalesced, up to [`MAX_PACKET`]) spans up to [`MAX_CHAIN`]
//!   consecutive slots, each but the last flagged [`MORE`]; `RX_HEAD` only ever moves past
//!   whole frames.
//! - **TX** (kernel → driver): the kernel puts a frame in slot `TX_HEAD % SLOTS` of the TX
//!   ring, advances `TX_HEAD`, and sets `1 << bit` in the driver's notification word (also
//!   when it took a slot from an RX ring with fewer than [`MAX_CHAIN`] free: there is room
//!   for a frame of any length again); the
//!   driver sends frames up to `TX_HEAD` and advances `TX_TAIL`. A full TX ring drops the
//!   frame (counted; TCP retransmits).
//!
//! A received frame may carry the device's word on its transport checksum (the slot's
//! flags): the kernel then checks the claim's shape (offsets inside the frame) but not the
//! sum, as for its own NIC. That trusts the driver with nothing new: it could as well hand
//! over any frame with a correct checksum.
//!
//! The four indices are free-running `u32`s, each on its own cache line of the header page;
//! each side writes only its own two. Everything the driver writes is untrusted: an index
//! more than [`SLOTS`] ahead, or a length over [`MAX_FRAME`], is counted and the frame (or
//! the batch) dropped, never a panic.
//!
//! The interface, its address and its sockets belong to the kernel and outlive the driver:
//! when the driver dies its area is unmapped and the interface is down (frames to send are
//! dropped and counted) until a new driver opens the same device's interface again. One
//! driver at a time (`EBUSY`).

/// The header page: the four ring indices.
pub const HEADER_LEN: usize = 4096;
/// Frame slots per ring.
pub const SLOTS: usize = 128;
/// Bytes per slot: a [`SLOT_HEADER`]-byte header and the frame.
pub const SLOT_LEN: usize = 2048;
/// Where the frame starts in its slot. The header: `len: u16` (the frame's bytes in this
/// slot) at [`SLOT_LEN_AT`], `flags: u16` ([`CSUM_VALID`], [`CSUM_PARTIAL`], [`MORE`],
/// [`GSO_TCPV4`]) at [`SLOT_FLAGS_AT`], `csum_start: u16` and `csum_offset: u16` at
/// [`SLOT_CSUM_AT`] (for `CSUM_PARTIAL`), `gso_size: u16` at [`SLOT_GSO_AT`] (for
/// `GSO_TCPV4`), then zeros. All little-endian. In a frame spanning slots the first slot's
/// header describes the frame; a continuation slot's has its `len` and at most `MORE`.
pub const SLOT_HEADER: usize = 16;
/// Slot header offset of the frame length.
pub const SLOT_LEN_AT: usize = 0;
/// Slot header offset of the flags.
pub const SLOT_FLAGS_AT: usize = 2;
/// Slot header offset of `csum_start`, followed by `csum_offset`.
pub const SLOT_CSUM_AT: usize = 4;
/// Slot header offset of `gso_size`.
pub const SLOT_GSO_AT: usize = 8;
/// RX flag: the device verified the frame's transport checksum (virtio `DATA_VALID`).
pub const CSUM_VALID: u16 = 1 << 0;
/// RX flag: the transport checksum field at `csum_start + csum_offset` holds only the
/// pseudo-header sum (virtio `NEEDS_CSUM`: the host's own stack sent it, no wire crossed).
pub const CSUM_PARTIAL: u16 = 1 << 1;
/// RX flag: the frame goes on in the next slot.
pub const MORE: u16 = 1 << 2;
/// RX flag: a TCP/IPv4 segment longer than the MTU that the device coalesced (virtio
/// `GSO_TCPV4` on receive), with the segments' size in `gso_size` (non-zero). Only with
/// `CSUM_PARTIAL`, as virtio has it: the frame is the host's, its checksum a partial sum.
pub const GSO_TCPV4: u16 = 1 << 3;
/// Every flag defined: a slot with another bit set, or both checksum flags, is refused.
pub const SLOT_FLAGS: u16 = CSUM_VALID | CSUM_PARTIAL | MORE | GSO_TCPV4;
/// Largest frame a slot carries: an Ethernet frame without its FCS (1514 bytes) fits; the
/// rest of the slot is spare.
pub const MAX_FRAME: usize = SLOT_LEN - SLOT_HEADER;
/// Longest frame: a 64 KiB IPv4 datagram behind an Ethernet header with one VLAN tag
/// (a `GSO_TCPV4` segment; any other frame fits one slot and is at most 1514 bytes).
pub const MAX_PACKET: usize = 65_535 + 18;
/// Most slots one frame spans.
pub const MAX_CHAIN: usize = MAX_PACKET.div_ceil(MAX_FRAME);
/// Bytes of the area `netif_open` maps.
pub const AREA_LEN: usize = HEADER_LEN + 2 * SLOTS * SLOT_LEN;

const _: () = assert!(MAX_FRAME >= 1514, "an Ethernet frame fits a slot");
const _: () = assert!(
    MAX_CHAIN < SLOTS / 2,
    "a ring holds two frames of any length"
);
const _: () = assert!(TX_TAIL + 4 <= HEADER_LEN, "the indices fit the header page");

/// Header offset of `RX_HEAD` (written by the driver).
pub const RX_HEAD: usize = 0;
/// Header offset of `RX_TAIL` (written by the kernel).
pub const RX_TAIL: usize = 64;
/// Header offset of `TX_HEAD` (written by the kernel).
pub const TX_HEAD: usize = 128;
/// Header offset of `TX_TAIL` (written by the driver).
pub const TX_TAIL: usize = 192;

/// Area offset of the RX ring's first slot.
pub const RX_RING: usize = HEADER_LEN;
/// Area offset of the TX ring's first slot.
pub const TX_RING: usize = HEADER_LEN + SLOTS * SLOT_LEN;

/// A slot's header, decoded (no check: the receiver checks what it reads).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotHeader {
    /// The frame's bytes.
    pub len: u16,
    /// `CSUM_*` flags.
    pub flags: u16,
    /// With `CSUM_PARTIAL`: where the checksummed bytes start, from the frame's start.
    pub csum_start: u16,
    /// With `CSUM_PARTIAL`: where the checksum field is, from `csum_start`.
    pub csum_offset: u16,
    /// With `GSO_TCPV4`: the size of the segments the device coalesced.
    pub gso_size: u16,
}

impl SlotHeader {
    /// Reads a header.
    pub fn decode(b: &[u8; SLOT_HEADER]) -> SlotHeader {
        let le = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
        SlotHeader {
            len: le(SLOT_LEN_AT),
            flags: le(SLOT_FLAGS_AT),
            csum_start: le(SLOT_CSUM_AT),
            csum_offset: le(SLOT_CSUM_AT + 2),
            gso_size: le(SLOT_GSO_AT),
        }
    }

    /// Writes a header (the reserved bytes zero).
    pub fn encode(&self) -> [u8; SLOT_HEADER] {
        let mut b = [0u8; SLOT_HEADER];
        b[SLOT_LEN_AT..SLOT_LEN_AT + 2].copy_from_slice(&self.len.to_le_bytes());
        b[SLOT_FLAGS_AT..SLOT_FLAGS_AT + 2].copy_from_slice(&self.flags.to_le_bytes());
        b[SLOT_CSUM_AT..SLOT_CSUM_AT + 2].copy_from_slice(&self.csum_start.to_le_bytes());
        b[SLOT_CSUM_AT + 2..SLOT_CSUM_AT + 4].copy_from_slice(&self.csum_offset.to_le_bytes());
        b[SLOT_GSO_AT..SLOT_GSO_AT + 2].copy_from_slice(&self.gso_size.to_le_bytes());
        b
    }
}

/// `netif_kick` flag: the driver goes on polling its device after this kick, so the
/// kernel wakes the interface on an idle CPU (where there is one) and the two work in
/// parallel. Without it the interface is woken on the driver's CPU, which the driver is
/// about to give up (it waits for its next interrupt): no cross-CPU wake-up, the shortest
/// round trip for a lone frame.
pub const KICK_POLLING: u64 = 1 << 0;
/// Every `netif_kick` flag (others are `EINVAL`).
pub const KICK_FLAGS: u64 = KICK_POLLING;

/// Area offset of the slot a free-running index names in the ring at `ring`.
pub const fn slot(ring: usize, idx: u32) -> usize {
    ring + (idx as usize % SLOTS) * SLOT_LEN
}

/// Frames between two free-running indices, or `None` if `head` is more than [`SLOTS`]
/// ahead of `tail` (a driver's bad index).
pub const fn pending(head: u32, tail: u32) -> Option<u32> {
    let n = head.wrapping_sub(tail);
    if n as usize > SLOTS { None } else { Some(n) }
}

/// `netif_open`'s MAC argument: the six bytes, the first in bits 47..40.
pub const fn mac_to_u64(mac: [u8; 6]) -> u64 {
    let mut v = 0u64;
    let mut i = 0;
    while i < 6 {
        v = v << 8 | mac[i] as u64;
        i += 1;
    }
    v
}

/// The six bytes of an encoded MAC (bits above 47 ignored).
pub const fn mac_from_u64(v: u64) -> [u8; 6] {
    let b = v.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_fit_the_area_and_do_not_overlap() {
        assert_eq!(slot(RX_RING, SLOTS as u32 - 1) + SLOT_LEN, TX_RING);
        assert_eq!(slot(TX_RING, u32::MAX) + SLOT_LEN, AREA_LEN);
        assert_eq!(slot(RX_RING, SLOTS as u32), RX_RING);
    }

    #[test]
    fn pending_counts_across_the_wrap_and_refuses_overruns() {
        assert_eq!(pending(5, u32::MAX - 2), Some(8));
        assert_eq!(pending(SLOTS as u32, 0), Some(SLOTS as u32));
        assert_eq!(pending(SLOTS as u32 + 1, 0), None);
        assert_eq!(pending(0, 1), None);
    }

    #[test]
    fn slot_headers_round_trip_little_endian() {
        let h = SlotHeader {
            len: 1514,
            flags: CSUM_PARTIAL | GSO_TCPV4 | MORE,
            csum_start: 34,
            csum_offset: 16,
            gso_size: 1448,
        };
        let b = h.encode();
        assert_eq!(&b[..10], &[0xea, 0x05, 14, 0, 34, 0, 16, 0, 0xa8, 0x05]);
        assert_eq!(b[10..], [0; 6]);
        assert_eq!(SlotHeader::decode(&b), h);
    }

    #[test]
    fn macs_round_trip_first_byte_high() {
        let mac = [0x52, 0x54, 0, 0xbb, 0, 0x0b];
        assert_eq!(mac_to_u64(mac), 0x5254_00bb_000b);
        assert_eq!(mac_from_u64(mac_to_u64(mac) | 0xffff << 48), mac);
    }
}
