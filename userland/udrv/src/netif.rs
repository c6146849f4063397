//! `NetIf`: the frame area a NIC driver shares with the kernel's network stack.
//!
//! `netif_open` maps an area of two single-producer frame rings (`abi::netif`, the
//! contract): RX carries frames the driver received to the kernel, TX frames the kernel
//! wants sent to the driver. Each side writes only its own two indices; the driver keeps
//! its own (RX head, TX tail) here and never reads them back. What the kernel writes — its
//! RX tail, its TX head, each TX slot's length — is untrusted like anything a device
//! writes: a tail or head more than [`SLOTS`] away from ours, or a length over
//! [`MAX_FRAME`], is counted and refused (the frame skipped, or nothing taken), never
//! indexed or panicked on.

use abi::netif::{
    AREA_LEN, CSUM_PARTIAL, CSUM_VALID, GSO_TCPV4, MAX_FRAME, MORE, RX_HEAD, RX_RING, RX_TAIL,
    SLOT_HEADER, SLOTS, SlotHeader, TX_HEAD, TX_RING, TX_TAIL, pending, slot,
};
pub use abi::netif::{MAX_CHAIN, MAX_PACKET};
use abi::{Error, Handle};
pub use drivers::virtio::net::{RxCsum, RxMeta};

/// What a driver does after `NetIf::kick`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterKick {
    /// Waits for its next interrupt: the kernel's interface takes the frames on this CPU.
    Waits,
    /// Goes on polling (its budget ran out with work left): the interface takes the
    /// frames on another CPU meanwhile, if one is idle.
    Polls,
}

use crate::mmio::SharedMem;
use crate::{DevSys, Device, Result};

const _: () = assert!(
    MAX_PACKET == drivers::virtio::net::MAX_PACKET,
    "a slot chain carries the longest packet a virtio-net device delivers"
);

/// The RX slots a frame of `len` bytes fills.
pub const fn slots_for(len: usize) -> usize {
    if len == 0 { 1 } else { len.div_ceil(MAX_FRAME) }
}

/// What the area's two rings carried and refused so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifStats {
    /// Frames put in the RX ring.
    pub rx_frames: u64,
    /// Of those, frames that spanned slots (segments the device coalesced).
    pub rx_chained: u64,
    /// Received frames dropped: the RX ring was full.
    pub rx_full: u64,
    /// Received frames dropped: empty, longer than a slot carries, or (a segment) than
    /// [`MAX_PACKET`].
    pub rx_too_long: u64,
    /// Readings of an RX tail the kernel ran past our head or more than a ring behind.
    pub bad_rx_tail: u64,
    /// Frames taken from the TX ring.
    pub tx_frames: u64,
    /// Readings of a TX head more than a ring ahead of our tail (or behind it).
    pub bad_tx_head: u64,
    /// TX slots skipped: a length of 0, over [`MAX_FRAME`], or over the caller's buffer.
    pub tx_bad_len: u64,
}

/// Why [`NetIf::rx_push`] did not take a frame (counted in [`NetifStats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxRefused {
    /// Longer than [`MAX_FRAME`] (a `GSO_TCPV4` segment: than [`MAX_PACKET`]), or empty.
    TooLong,
    /// Too few slots are free for the frame.
    Full,
    /// The kernel's RX tail is not within a ring of our head.
    BadTail,
}

/// A frame [`NetIf::tx_take`] skipped: its slot's length (counted in [`NetifStats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadTxLen(pub u16);

/// An open network interface: the `NetIf` capability and its frame area. Not `Clone`;
/// dropping it drops the capability (the kernel unmaps the area; the interface waits for
/// the next driver).
#[must_use = "dropping it closes the interface"]
pub struct NetIf<B: DevSys> {
    sys: B,
    handle: Handle,
    area: SharedMem,
    /// Our RX head: frames written (`rx_head - published` of them not yet published).
    rx_head: u32,
    /// The RX head the kernel was last shown.
    published: u32,
    /// Our TX tail.
    tx_tail: u32,
    stats: NetifStats,
}

impl<B: DevSys> NetIf<B> {
    /// `netif_open(dev, bit, mac)`: the kernel's interface for NIC `device`, which sets
    /// `1 << bit` in this process's notification word when it queued frames to send.
    pub fn open(device: &Device<B>, bit: u8, mac: [u8; 6]) -> Result<Self> {
        let sys = device.sys();
        let (handle, addr) = sys.netif_open(device.handle(), bit, mac)?;
        if addr == 0 || !addr.is_multiple_of(8) {
            sys.cap_drop(handle);
            return Err(Error::EFAULT);
        }
        let area = SharedMem::mapped(addr, AREA_LEN);
        // Our indices start where the kernel's do: a fresh area is all zero, and a kernel
        // that kept frames across drivers tells us by its own indices.
        let rx_head = area.load_acquire32(RX_TAIL);
        let tx_tail = area.load_acquire32(TX_TAIL);
        Ok(NetIf {
            sys,
            handle,
            area,
            rx_head,
            published: rx_head,
            tx_tail,
            stats: NetifStats::default(),
        })
    }

    /// The capability's handle.
    pub fn handle(&self) -> Handle {
        self.handle
    }

    /// Counters so far.
    pub fn stats(&self) -> NetifStats {
        self.stats
    }

    /// Copies a received frame into the next RX slot; it reaches the kernel at the next
    /// [`NetIf::rx_publish`].
    pub fn rx_push(&mut self, frame: &[u8]) -> core::result::Result<(), RxRefused> {
        self.rx_push_csum(frame, RxCsum::Unchecked)
    }

    /// [`NetIf::rx_push`] with what the device said of the frame's transport checksum
    /// (the slot's `CSUM_*` word: verified, or a partial sum the kernel completes). The
    /// kernel checks the word's shape itself; a device's word is passed as it came.
    pub fn rx_push_csum(
        &mut self,
        frame: &[u8],
        csum: RxCsum,
    ) -> core::result::Result<(), RxRefused> {
        self.rx_push_frame(
            &[frame],
            RxMeta {
                csum,
                ..RxMeta::PLAIN
            },
        )
    }

    /// Copies a received frame given in pieces (a device's buffers, in order) into the next
    /// RX slots, with what the device said of its checksum and, for a TCP segment it
    /// coalesced (`meta.gso_size`), the segments' size. A frame longer than a slot fills
    /// as many as it needs (at most [`MAX_CHAIN`]), each but the last flagged `MORE`.
    pub fn rx_push_frame(
        &mut self,
        pieces: &[&[u8]],
        meta: RxMeta,
    ) -> core::result::Result<(), RxRefused> {
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        let most = if meta.gso_size.is_some() {
            MAX_PACKET
        } else {
            MAX_FRAME
        };
        if total == 0 || total > most {
            self.stats.rx_too_long += 1;
            return Err(RxRefused::TooLong);
        }
        let slots = slots_for(total);
        let tail = self.area.load_acquire32(RX_TAIL);
        match pending(self.rx_head, tail) {
            None => {
                self.stats.bad_rx_tail += 1;
                return Err(RxRefused::BadTail);
            }
            Some(n) if n as usize + slots > SLOTS => {
                self.stats.rx_full += 1;
                return Err(RxRefused::Full);
            }
            Some(_) => {}
        }
        let (mut flags, csum_start, csum_offset) = match meta.csum {
            RxCsum::Unchecked => (0, 0, 0),
            RxCsum::Valid => (CSUM_VALID, 0, 0),
            RxCsum::Partial { start, offset } => (CSUM_PARTIAL, start, offset),
        };
        if meta.gso_size.is_some() {
            flags |= GSO_TCPV4;
        }
        let mut first = SlotHeader {
            flags,
            csum_start,
            csum_offset,
            gso_size: meta.gso_size.unwrap_or(0),
            ..SlotHeader::default()
        };
        // The bytes, slot by slot: a piece may straddle slots, a slot may hold several.
        let mut bytes = pieces.iter().copied();
        let mut carry: &[u8] = &[];
        for i in 0..slots {
            let at = slot(RX_RING, self.rx_head.wrapping_add(i as u32));
            let mut filled = 0;
            while filled < MAX_FRAME {
                if carry.is_empty() {
                    match bytes.next() {
                        Some(c) => carry = c,
                        None => break,
                    }
                }
                let n = carry.len().min(MAX_FRAME - filled);
                self.area.copy_in(at + SLOT_HEADER + filled, &carry[..n]);
                carry = &carry[n..];
                filled += n;
            }
            let mut header = core::mem::take(&mut first);
            header.len = filled as u16;
            if i + 1 < slots {
                header.flags |= MORE;
            }
            self.area.copy_in(at, &header.encode());
        }
        self.rx_head = self.rx_head.wrapping_add(slots as u32);
        self.stats.rx_frames += 1;
        self.stats.rx_chained += u64::from(slots > 1);
        Ok(())
    }

    /// Free RX slots: how many one-slot frames [`NetIf::rx_push`] takes before the ring is
    /// full; a frame of any length fits when there are [`MAX_CHAIN`] (0 for a kernel tail
    /// not within a ring of our head: pushes are refused then).
    pub fn rx_room(&self) -> usize {
        let tail = self.area.load_acquire32(RX_TAIL);
        pending(self.rx_head, tail).map_or(0, |n| SLOTS.saturating_sub(n as usize))
    }

    /// Publishes the frames pushed since the last call (a release store of RX head);
    /// whether there were any (then [`NetIf::kick`] the kernel).
    pub fn rx_publish(&mut self) -> bool {
        if self.rx_head == self.published {
            return false;
        }
        self.area.store_release32(RX_HEAD, self.rx_head);
        self.published = self.rx_head;
        true
    }

    /// `netif_kick`: wakes the kernel's interface for the frames published; `next`, what
    /// this driver does now (the kernel wakes the interface beside a driver that polls on,
    /// on the CPU of one that waits).
    pub fn kick(&self, next: AfterKick) -> Result<()> {
        let flags = match next {
            AfterKick::Waits => 0,
            AfterKick::Polls => abi::netif::KICK_POLLING,
        };
        self.sys.netif_kick(self.handle, flags)
    }

    /// Frames the kernel queued for sending and we have not taken (0 for a bad head,
    /// counted).
    pub fn tx_pending(&mut self) -> u32 {
        let head = self.area.load_acquire32(TX_HEAD);
        match pending(head, self.tx_tail) {
            Some(n) => n,
            None => {
                self.stats.bad_tx_head += 1;
                0
            }
        }
    }

    /// Takes the next frame to send: copies it into `dst` and frees its slot. `None` if
    /// there is none; `Err` for a slot whose length is 0, over [`MAX_FRAME`] or over
    /// `dst.len()` (skipped and freed all the same, counted).
    pub fn tx_take(&mut self, dst: &mut [u8]) -> Option<core::result::Result<usize, BadTxLen>> {
        if self.tx_pending() == 0 {
            return None;
        }
        let at = slot(TX_RING, self.tx_tail);
        let len = self.area.read16(at);
        let n = usize::from(len);
        let result = if n == 0 || n > MAX_FRAME || n > dst.len() {
            self.stats.tx_bad_len += 1;
            Err(BadTxLen(len))
        } else {
            self.area.copy_out(at + SLOT_HEADER, &mut dst[..n]);
            self.stats.tx_frames += 1;
            Ok(n)
        };
        self.tx_tail = self.tx_tail.wrapping_add(1);
        self.area.store_release32(TX_TAIL, self.tx_tail);
        Some(result)
    }
}

impl<B: DevSys> Drop for NetIf<B> {
    fn drop(&mut self) {
        self.sys.cap_drop(self.handle);
    }
}

impl<B: DevSys> core::fmt::Debug for NetIf<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NetIf")
            .field("handle", &self.handle)
            .field("rx_head", &self.rx_head)
            .field("tx_tail", &self.tx_tail)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeKernel;
    use std::vec;
    use std::vec::Vec;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    /// The kernel's side of the area, as a test plays it.
    fn kernel_view(k: &FakeKernel, n: &NetIf<&'static FakeKernel>) -> SharedMem {
        SharedMem::mapped(k.netif_area(n.handle()), AREA_LEN)
    }

    #[test]
    fn received_frames_reach_the_kernel_only_when_published() {
        let (k, device) = FakeKernel::with_device();
        let mut n = NetIf::open(&device, 5, MAC).unwrap();
        assert_eq!(k.netif_opened(), Some((5, MAC)));
        let kv = kernel_view(k, &n);
        n.rx_push(&[0xaa; 60]).unwrap();
        n.rx_push(&[0xbb; 1514]).unwrap();
        assert_eq!(kv.load_acquire32(RX_HEAD), 0, "not published yet");
        assert!(n.rx_publish());
        assert!(!n.rx_publish(), "nothing new");
        assert_eq!(kv.load_acquire32(RX_HEAD), 2);
        assert_eq!(kv.read16(slot(RX_RING, 0)), 60);
        assert_eq!(kv.read16(slot(RX_RING, 1)), 1514);
        let mut f = [0u8; 1514];
        kv.copy_out(slot(RX_RING, 1) + SLOT_HEADER, &mut f);
        assert_eq!(f, [0xbb; 1514]);
        n.kick(AfterKick::Waits).unwrap();
        assert_eq!((k.kicks(), k.polling_kicks()), (1, 0));
        n.kick(AfterKick::Polls).unwrap();
        assert_eq!(
            (k.kicks(), k.polling_kicks()),
            (2, 1),
            "the driver polls on: flagged"
        );
        let header = |i: u32| {
            let mut b = [0u8; SLOT_HEADER];
            kv.copy_out(slot(RX_RING, i), &mut b);
            SlotHeader::decode(&b)
        };
        assert_eq!(header(0).flags, 0, "no word from the device: unchecked");
        n.rx_push_csum(&[0xcc; 80], RxCsum::Valid).unwrap();
        n.rx_push_csum(
            &[0xdd; 80],
            RxCsum::Partial {
                start: 34,
                offset: 16,
            },
        )
        .unwrap();
        n.rx_publish();
        let h = |len, flags, csum_start, csum_offset| SlotHeader {
            len,
            flags,
            csum_start,
            csum_offset,
            gso_size: 0,
        };
        assert_eq!(header(2), h(80, CSUM_VALID, 0, 0));
        assert_eq!(header(3), h(80, CSUM_PARTIAL, 34, 16));
        assert_eq!(n.rx_push(&[0; MAX_FRAME + 1]), Err(RxRefused::TooLong));
        assert_eq!(n.rx_push(&[]), Err(RxRefused::TooLong));
        assert_eq!(n.stats().rx_too_long, 2);
    }

    #[test]
    fn a_segment_spans_slots_in_order_and_waits_for_room_for_all_of_them() {
        let (k, device) = FakeKernel::with_device();
        let mut n = NetIf::open(&device, 0, MAC).unwrap();
        let kv = kernel_view(k, &n);
        let header = |i: u32| {
            let mut b = [0u8; SLOT_HEADER];
            kv.copy_out(slot(RX_RING, i), &mut b);
            SlotHeader::decode(&b)
        };
        // 5 000 bytes as a device hands them over: pieces of 12, 2 000, 2 988 bytes.
        let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let pieces = [&bytes[..12], &bytes[12..2012], &bytes[2012..]];
        let segment = RxMeta {
            csum: RxCsum::Partial {
                start: 34,
                offset: 16,
            },
            gso_size: Some(1448),
            ..RxMeta::PLAIN
        };
        n.rx_push(&[0xaa; 60]).unwrap();
        n.rx_push_frame(&pieces, segment).unwrap();
        assert!(n.rx_publish());
        assert_eq!(kv.load_acquire32(RX_HEAD), 4, "one slot, then three");
        let first = header(1);
        assert_eq!(
            first,
            SlotHeader {
                len: MAX_FRAME as u16,
                flags: CSUM_PARTIAL | GSO_TCPV4 | MORE,
                csum_start: 34,
                csum_offset: 16,
                gso_size: 1448,
            }
        );
        let rest = MAX_FRAME as u16;
        assert_eq!(
            header(2),
            SlotHeader {
                len: rest,
                flags: MORE,
                ..SlotHeader::default()
            }
        );
        let last = (5000 - 2 * MAX_FRAME) as u16;
        assert_eq!(
            header(3),
            SlotHeader {
                len: last,
                ..SlotHeader::default()
            }
        );
        let mut got = vec![0u8; 5000];
        for (i, piece) in got.chunks_mut(MAX_FRAME).enumerate() {
            kv.copy_out(slot(RX_RING, 1 + i as u32) + SLOT_HEADER, piece);
        }
        assert_eq!(got, bytes);
        // Too long: over a slot without GSO, over MAX_PACKET with it.
        let big = vec![0u8; MAX_PACKET + 1];
        assert_eq!(
            n.rx_push_frame(&[&big[..2100]], RxMeta::PLAIN),
            Err(RxRefused::TooLong)
        );
        assert_eq!(n.rx_push_frame(&[&big], segment), Err(RxRefused::TooLong));
        n.rx_push_frame(&[&big[..MAX_PACKET]], segment)
            .expect("the longest frame");
        assert_eq!(
            header(4 + MAX_CHAIN as u32 - 1).flags,
            0,
            "the chain ends in slot 4 + 32"
        );
        // Room for part of a frame is no room: the frame is refused whole.
        while n.rx_room() >= 3 {
            n.rx_push(&[1; 60]).unwrap();
        }
        let room = n.rx_room();
        assert_eq!(n.rx_push_frame(&pieces, segment), Err(RxRefused::Full));
        assert_eq!(n.rx_room(), room, "nothing written");
        let s = n.stats();
        assert_eq!((s.rx_chained, s.rx_too_long, s.rx_full), (2, 2, 1));
    }

    #[test]
    fn a_full_rx_ring_drops_and_a_bad_tail_is_refused() {
        let (k, device) = FakeKernel::with_device();
        let mut n = NetIf::open(&device, 0, MAC).unwrap();
        let kv = kernel_view(k, &n);
        for i in 0..SLOTS {
            n.rx_push(&[i as u8; 64]).unwrap();
        }
        assert_eq!(n.rx_push(&[1; 64]), Err(RxRefused::Full));
        assert_eq!(n.rx_room(), 0);
        n.rx_publish();
        kv.store_release32(RX_TAIL, 3);
        assert_eq!(n.rx_room(), 3);
        n.rx_push(&[2; 64]).expect("three slots free again");
        assert_eq!(n.rx_room(), 2);
        // A tail past our head, and one a full ring and more behind it.
        kv.store_release32(RX_TAIL, SLOTS as u32 + 2);
        assert_eq!(n.rx_push(&[3; 64]), Err(RxRefused::BadTail));
        assert_eq!(n.rx_room(), 0, "a bad tail leaves no room");
        kv.store_release32(RX_TAIL, 0u32.wrapping_sub(1000));
        assert_eq!(n.rx_push(&[3; 64]), Err(RxRefused::BadTail));
        let s = n.stats();
        assert_eq!(
            (s.rx_frames, s.rx_full, s.bad_rx_tail),
            (SLOTS as u64 + 1, 1, 2)
        );
    }

    #[test]
    fn frames_to_send_are_taken_in_order_and_hostile_lengths_skipped() {
        let (k, device) = FakeKernel::with_device();
        let mut n = NetIf::open(&device, 0, MAC).unwrap();
        let kv = kernel_view(k, &n);
        let put = |i: u32, len: u16, fill: u8| {
            let at = slot(TX_RING, i);
            kv.write16(at, len);
            kv.copy_in(at + SLOT_HEADER, &[fill; 100]);
        };
        put(0, 42, 1);
        put(1, 0xffff, 2);
        put(2, 0, 3);
        put(3, 100, 4);
        put(4, 60, 5);
        kv.store_release32(TX_HEAD, 5);
        assert_eq!(n.tx_pending(), 5);
        let mut buf = [0u8; 64];
        assert_eq!(n.tx_take(&mut buf), Some(Ok(42)));
        assert_eq!(buf[..42], [1; 42]);
        assert_eq!(n.tx_take(&mut buf), Some(Err(BadTxLen(0xffff))));
        assert_eq!(n.tx_take(&mut buf), Some(Err(BadTxLen(0))));
        assert_eq!(
            n.tx_take(&mut buf),
            Some(Err(BadTxLen(100))),
            "longer than the caller's buffer"
        );
        assert_eq!(n.tx_take(&mut buf), Some(Ok(60)));
        assert_eq!(n.tx_take(&mut buf), None);
        assert_eq!(kv.load_acquire32(TX_TAIL), 5, "every slot freed");
        // A head more than a ring ahead: nothing is taken, it is counted.
        kv.store_release32(TX_HEAD, 5 + SLOTS as u32 + 1);
        assert_eq!(n.tx_take(&mut buf), None);
        kv.store_release32(TX_HEAD, 4);
        assert_eq!(n.tx_pending(), 0);
        let s = n.stats();
        assert_eq!((s.tx_frames, s.tx_bad_len, s.bad_tx_head), (2, 3, 2));
    }

    #[test]
    fn indices_wrap_and_a_refused_open_is_an_error() {
        let (k, device) = FakeKernel::with_device();
        k.fail_next(Error::EBUSY);
        assert_eq!(NetIf::open(&device, 0, MAC).err(), Some(Error::EBUSY));
        k.netif_start_at(u32::MAX - 1);
        let mut n = NetIf::open(&device, 0, MAC).unwrap();
        let kv = kernel_view(k, &n);
        for i in 0..4u8 {
            n.rx_push(&[i; 10]).unwrap();
        }
        n.rx_publish();
        assert_eq!(kv.load_acquire32(RX_HEAD), 2, "wrapped");
        assert_eq!(kv.read16(slot(RX_RING, 1)), 10);
        kv.write16(slot(TX_RING, u32::MAX - 1), 7);
        kv.write16(slot(TX_RING, u32::MAX), 7);
        kv.store_release32(TX_HEAD, 0);
        let mut buf = [0u8; 16];
        assert_eq!(n.tx_take(&mut buf), Some(Ok(7)), "slot of u32::MAX - 1");
        assert_eq!(n.tx_take(&mut buf), Some(Ok(7)), "slot of u32::MAX");
        assert_eq!(n.tx_take(&mut buf), None);
        drop(n);
        assert!(k.dropped(k.last_handle()));
    }
}
