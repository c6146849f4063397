//! IPv4 reassembly (RFC 791 §3.2), bounded and strict.
//!
//! Without reassembly a host cannot receive a datagram larger than the MTU (a big DNS
//! reply, a 3000-byte ping); with a careless one, fragments are an attack surface:
//! overlapping fragments that rewrite data already checked (the "teardrop" family),
//! offsets that add up past 64 KiB, datagrams that never complete, and floods of
//! distinct datagrams that exhaust memory. smoltcp's own reassembler keeps one datagram
//! and lets later fragments overwrite earlier bytes, so the kernel reassembles before
//! smoltcp and hands it only whole datagrams:
//!
//! - [`MAX_DATAGRAMS`] slots of 64 KiB each, allocated once when the table is made: a
//!   fragment never allocates (a flood cannot make the kernel allocate, nor free memory
//!   later at a time-out), and a new datagram beyond the slots evicts the oldest
//!   (counted), so a flood cannot pin the table and a datagram sent after it still
//!   gets through;
//! - at most [`MAX_PIECES`] fragments per datagram, each but the last a multiple of 8
//!   bytes, none empty, none reaching past 65 535 bytes of datagram;
//! - any overlap between two fragments drops the whole datagram (RFC 5722's rule for
//!   IPv6, Linux's for IPv4 since 2018); an exact duplicate is ignored;
//! - a datagram not complete [`TIMEOUT_NS`] after its first fragment is dropped
//!   (Linux's 30 s).
//!
//! The reassembled datagram carries the first fragment's header (and options) with
//! the fragment fields cleared, the total length set and the checksum recomputed; the
//! caller runs it through `ingress::check` again, which now checks its transport
//! checksum. Pure and host-tested.

use alloc::vec;
use alloc::vec::Vec;

use super::ingress::{Dropped, ETH_HEADER, fold, sum};

/// Datagrams reassembled at once (each in a 64 KiB slot made up front).
pub const MAX_DATAGRAMS: usize = 8;
/// Fragments per datagram.
pub const MAX_PIECES: usize = 64;
/// How long a datagram may take to complete.
pub const TIMEOUT_NS: u64 = 30_000_000_000;
/// The largest IPv4 datagram.
const MAX_DATAGRAM: usize = 65_535;
/// An Ethernet header and the largest IPv4 header.
const MAX_HEADERS: usize = ETH_HEADER + 60;

/// Fragments of one datagram are those with the same source, destination, protocol and
/// identification (RFC 791).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    id: u16,
}

/// One datagram's slot: its payload is written at the fragments' offsets as they come.
struct Slot {
    key: Option<Key>,
    started_ns: u64,
    /// The first fragment's Ethernet and IP headers, once it arrived (`header_len` > 0).
    header: [u8; MAX_HEADERS],
    header_len: usize,
    payload: Vec<u8>,
    /// (start, end) of each fragment's payload.
    pieces: heapless::Vec<(usize, usize), MAX_PIECES>,
    /// Payload length, once the last fragment arrived.
    total: Option<usize>,
}

impl Slot {
    fn new() -> Self {
        Slot {
            key: None,
            started_ns: 0,
            header: [0; MAX_HEADERS],
            header_len: 0,
            payload: vec![0; MAX_DATAGRAM],
            pieces: heapless::Vec::new(),
            total: None,
        }
    }

    fn clear(&mut self) {
        self.key = None;
        self.header_len = 0;
        self.pieces.clear();
        self.total = None;
    }

    fn bytes(&self) -> usize {
        self.pieces.iter().map(|(a, b)| b - a).sum()
    }

    fn complete(&self) -> bool {
        self.header_len > 0 && self.total.is_some_and(|t| self.bytes() == t)
    }
}

/// A fragment's fields, read from a frame `ingress::check` accepted.
struct Fragment<'a> {
    key: Key,
    offset: usize,
    more: bool,
    ihl: usize,
    payload: &'a [u8],
}

fn parse(frame: &[u8]) -> Option<Fragment<'_>> {
    let ip = frame.get(ETH_HEADER..)?;
    let ihl = usize::from(*ip.first()? & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let flags = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
    let addr = |at: usize| -> Option<[u8; 4]> { ip.get(at..at + 4)?.try_into().ok() };
    Some(Fragment {
        key: Key {
            src: addr(12)?,
            dst: addr(16)?,
            proto: *ip.get(9)?,
            id: u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]),
        },
        offset: usize::from(flags & 0x1fff) * 8,
        more: flags & 0x2000 != 0,
        ihl,
        payload: ip.get(ihl..total)?,
    })
}

/// The reassembly table.
pub struct Reassembler {
    slots: Vec<Slot>,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new()
    }
}

impl Reassembler {
    /// An empty table; its slots (`MAX_DATAGRAMS` × 64 KiB) are allocated here, once.
    pub fn new() -> Self {
        Reassembler {
            slots: (0..MAX_DATAGRAMS).map(|_| Slot::new()).collect(),
        }
    }

    /// Datagrams in progress.
    pub fn in_progress(&self) -> usize {
        self.slots.iter().filter(|s| s.key.is_some()).count()
    }

    /// Fragment bytes held.
    pub fn bytes(&self) -> usize {
        self.slots.iter().map(Slot::bytes).sum()
    }

    /// Adds one fragment (a frame `ingress::check` accepted as an IPv4 fragment) at time
    /// `now_ns`. Returns the whole datagram as an unfragmented frame when this fragment
    /// completed it; errors name why this fragment (and, for overlaps and oversize, its
    /// datagram) was dropped. `evicted` counts datagrams pushed out to make room.
    pub fn add(
        &mut self,
        frame: &[u8],
        now_ns: u64,
        evicted: &mut u64,
    ) -> Result<Option<Vec<u8>>, Dropped> {
        let f = parse(frame).ok_or(Dropped::FragMalformed)?;
        let end = f.offset + f.payload.len();
        if f.payload.is_empty() || (f.more && f.payload.len() % 8 != 0) {
            return Err(Dropped::FragMalformed);
        }
        let found = self.slots.iter().position(|s| s.key == Some(f.key));
        if f.ihl + end > MAX_DATAGRAM || f.ihl > MAX_HEADERS - ETH_HEADER {
            if let Some(i) = found {
                self.slots[i].clear();
            }
            return Err(Dropped::FragOversized);
        }
        let i = found.unwrap_or_else(|| self.start(f.key, now_ns, evicted));
        let slot = &mut self.slots[i];
        match place(slot, &f, end) {
            Ok(true) => {}
            Ok(false) => return Ok(None), // an exact duplicate
            Err(why) => {
                slot.clear();
                return Err(why);
            }
        }
        if f.offset == 0 {
            let n = ETH_HEADER + f.ihl;
            slot.header[..n].copy_from_slice(&frame[..n]);
            slot.header_len = n;
        }
        if !slot.complete() {
            return Ok(None);
        }
        let whole = assemble(slot);
        slot.clear();
        Ok(Some(whole))
    }

    /// A slot for a new datagram: a free one, else the oldest one's (evicted).
    fn start(&mut self, key: Key, now_ns: u64, evicted: &mut u64) -> usize {
        let i = match self.slots.iter().position(|s| s.key.is_none()) {
            Some(i) => i,
            None => {
                *evicted += 1;
                (0..self.slots.len())
                    .min_by_key(|&i| self.slots[i].started_ns)
                    .unwrap_or(0)
            }
        };
        let slot = &mut self.slots[i];
        slot.clear();
        slot.key = Some(key);
        slot.started_ns = now_ns;
        i
    }

    /// Drops datagrams older than `TIMEOUT_NS`; returns how many.
    pub fn expire(&mut self, now_ns: u64) -> u64 {
        let mut n = 0;
        for s in self.slots.iter_mut().filter(|s| s.key.is_some()) {
            if now_ns.saturating_sub(s.started_ns) >= TIMEOUT_NS {
                s.clear();
                n += 1;
            }
        }
        n
    }

    /// When the oldest datagram in progress times out (`None`: nothing in progress).
    pub fn next_timeout(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter(|s| s.key.is_some())
            .map(|s| s.started_ns.saturating_add(TIMEOUT_NS))
            .min()
    }
}

/// Checks `f` against the pieces already held and writes it into the slot.
/// `Ok(false)`: an exact duplicate, ignored.
fn place(slot: &mut Slot, f: &Fragment<'_>, end: usize) -> Result<bool, Dropped> {
    for &(start, stop) in &slot.pieces {
        if start == f.offset && stop == end && slot.payload[start..stop] == *f.payload {
            return Ok(false);
        }
        if f.offset < stop && start < end {
            return Err(Dropped::FragOverlap);
        }
    }
    if !f.more {
        if slot.total.is_some_and(|t| t != end) {
            return Err(Dropped::FragOverlap);
        }
        slot.total = Some(end);
    }
    let past_end = slot
        .total
        .is_some_and(|t| end > t || slot.pieces.iter().any(|&(_, stop)| stop > t));
    if past_end || slot.pieces.push((f.offset, end)).is_err() {
        return Err(Dropped::FragMalformed);
    }
    slot.payload[f.offset..end].copy_from_slice(f.payload);
    Ok(true)
}

/// The first fragment's headers with the fragment fields cleared, then the payload.
fn assemble(slot: &Slot) -> Vec<u8> {
    let total = slot.total.unwrap_or(0);
    let ihl = slot.header_len - ETH_HEADER;
    let mut out = Vec::with_capacity(slot.header_len + total);
    out.extend_from_slice(&slot.header[..slot.header_len]);
    out.extend_from_slice(&slot.payload[..total]);
    let ip = &mut out[ETH_HEADER..ETH_HEADER + ihl];
    ip[2..4].copy_from_slice(&((ihl + total) as u16).to_be_bytes());
    ip[6..8].fill(0); // flags and offset: one whole datagram now
    ip[10..12].fill(0);
    let c = !fold(sum(0, ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ingress::{Context, Frame, check};
    use std::vec;

    /// A datagram of `len` payload bytes (an ICMP echo request with a right checksum).
    fn datagram(len: usize, seed: u8) -> Vec<u8> {
        let mut p: Vec<u8> = (0..len).map(|i| seed.wrapping_add(i as u8)).collect();
        p[..8].copy_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1]);
        let c = !fold(sum(0, &p));
        p[2..4].copy_from_slice(&c.to_be_bytes());
        p
    }

    /// The fragment of `payload` at `offset..offset+len` (`more`: MF), id `id`.
    fn frag(payload: &[u8], offset: usize, len: usize, more: bool, id: u16) -> Vec<u8> {
        let mut f = vec![0x52, 0x54, 0, 0x12, 0x34, 0x56, 2, 0, 0, 0, 0, 1, 8, 0];
        let total = (20 + len) as u16;
        let flags = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 1, 192, 0, 2, 50,
        ];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&id.to_be_bytes());
        ip[6..8].copy_from_slice(&flags.to_be_bytes());
        let c = !fold(sum(0, &ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&payload[offset..offset + len]);
        f
    }

    fn thirds(p: &[u8], id: u16) -> [Vec<u8>; 3] {
        [
            frag(p, 0, 1480, true, id),
            frag(p, 1480, 1480, true, id),
            frag(p, 2960, p.len() - 2960, false, id),
        ]
    }

    fn whole_is(out: &[u8], payload: &[u8]) {
        let ctx = Context {
            addr: Some(([192, 0, 2, 50], 24)),
            max_frame: 14 + 65_535,
            ..Context::PLAIN
        };
        let Ok(Frame::Ipv4(info)) = check(out, &ctx) else {
            panic!("the reassembled datagram fails the ingress check")
        };
        assert!(!info.fragment && info.echo_request);
        assert_eq!(&out[34..], payload);
    }

    #[test]
    fn in_order_reversed_and_shuffled_fragments_reassemble() {
        let p = datagram(3000, 7);
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
            let mut r = Reassembler::new();
            let f = thirds(&p, 9);
            let mut ev = 0;
            let mut out = None;
            for (n, i) in order.into_iter().enumerate() {
                let got = r.add(&f[i], 0, &mut ev).unwrap();
                assert_eq!(got.is_some(), n == 2, "{order:?}");
                out = got.or(out);
            }
            whole_is(&out.unwrap(), &p);
            assert_eq!((r.in_progress(), r.bytes(), ev), (0, 0, 0));
        }
    }

    #[test]
    fn overlaps_drop_the_datagram_and_duplicates_are_ignored() {
        let p = datagram(3000, 1);
        let mut r = Reassembler::new();
        let mut ev = 0;
        let [a, b, c] = thirds(&p, 1);
        assert_eq!(r.add(&a, 0, &mut ev), Ok(None));
        assert_eq!(r.add(&a, 0, &mut ev), Ok(None), "exact duplicate");
        // Same range, other bytes: an attempt to rewrite checked data.
        let mut evil = p.clone();
        evil[100] ^= 0xff;
        assert_eq!(
            r.add(&frag(&evil, 0, 1480, true, 1), 0, &mut ev),
            Err(Dropped::FragOverlap)
        );
        assert_eq!(r.in_progress(), 0, "the whole datagram is gone");
        assert_eq!(r.add(&b, 0, &mut ev), Ok(None));
        assert_eq!(
            r.add(&frag(&p, 1472, 16, true, 1), 0, &mut ev),
            Err(Dropped::FragOverlap)
        );
        assert_eq!(r.add(&c, 0, &mut ev), Ok(None), "a fresh datagram");
        assert_eq!(
            r.add(&frag(&p, 2952, 48, false, 1), 0, &mut ev),
            Err(Dropped::FragOverlap)
        );
        // Two different ends.
        let mut r = Reassembler::new();
        assert_eq!(r.add(&frag(&p, 8, 8, false, 2), 0, &mut ev), Ok(None));
        assert_eq!(
            r.add(&frag(&p, 16, 8, false, 2), 0, &mut ev),
            Err(Dropped::FragOverlap)
        );
    }

    #[test]
    fn oversized_and_malformed_fragments_are_refused() {
        let p = vec![0u8; 70_000];
        let mut r = Reassembler::new();
        let mut ev = 0;
        assert_eq!(r.add(&frag(&p, 0, 1480, true, 3), 0, &mut ev), Ok(None));
        // Offset 65 528 (the largest) with 16 bytes: past 65 535 with the header.
        assert_eq!(
            r.add(&frag(&p, 65_528, 16, false, 3), 0, &mut ev),
            Err(Dropped::FragOversized)
        );
        assert_eq!(r.in_progress(), 0);
        assert_eq!(
            r.add(&frag(&p, 0, 100, true, 4), 0, &mut ev),
            Err(Dropped::FragMalformed),
            "not a multiple of 8"
        );
        assert_eq!(
            r.add(&frag(&p, 8, 0, false, 4), 0, &mut ev),
            Err(Dropped::FragMalformed),
            "empty"
        );
        // A piece past a known end.
        assert_eq!(r.add(&frag(&p, 8, 16, false, 5), 0, &mut ev), Ok(None));
        assert_eq!(
            r.add(&frag(&p, 24, 8, true, 5), 0, &mut ev),
            Err(Dropped::FragMalformed)
        );
        // Too many pieces.
        for i in 0..MAX_PIECES {
            assert_eq!(
                r.add(&frag(&p, 8 + i * 8, 8, true, 6), 0, &mut ev),
                Ok(None)
            );
        }
        assert_eq!(
            r.add(&frag(&p, 8 + MAX_PIECES * 8, 8, true, 6), 0, &mut ev),
            Err(Dropped::FragMalformed)
        );
    }

    #[test]
    fn never_completed_datagrams_time_out_and_floods_evict_the_oldest() {
        let p = datagram(3000, 3);
        let mut r = Reassembler::new();
        let mut ev = 0;
        assert_eq!(r.add(&frag(&p, 0, 1480, true, 1), 0, &mut ev), Ok(None));
        assert_eq!(r.next_timeout(), Some(TIMEOUT_NS));
        assert_eq!(r.expire(TIMEOUT_NS - 1), 0);
        assert_eq!(r.expire(TIMEOUT_NS), 1);
        assert_eq!(r.next_timeout(), None);
        // A flood of first fragments with distinct ids: the table never grows past its
        // bound, and a datagram sent afterwards still reassembles.
        for id in 0..1000u16 {
            let _ = r.add(&frag(&p, 0, 1480, true, 100 + id), u64::from(id), &mut ev);
            assert!(r.in_progress() <= MAX_DATAGRAMS && r.bytes() <= MAX_DATAGRAMS * MAX_DATAGRAM);
        }
        assert_eq!(ev, 1000 - MAX_DATAGRAMS as u64);
        let mut out = None;
        for f in thirds(&p, 7) {
            out = r.add(&f, 5000, &mut ev).unwrap().or(out);
        }
        whole_is(&out.unwrap(), &p);
        // Big pieces: the byte bound holds too.
        let big = vec![0u8; 65_000];
        for id in 0..20u16 {
            for k in 0..4 {
                let _ = r.add(
                    &frag(&big, k * 8000, 8000, true, 2000 + id),
                    6000 + u64::from(id),
                    &mut ev,
                );
            }
            assert!(
                r.bytes() <= MAX_DATAGRAMS * MAX_DATAGRAM,
                "{} bytes held",
                r.bytes()
            );
        }
    }

    #[test]
    fn random_fragments_never_panic_nor_break_the_bounds() {
        let p = vec![0x5a; 65_535];
        let mut r = Reassembler::new();
        let mut ev = 0;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for t in 0..20_000u64 {
            let off = (next() % 8200) as usize * 8;
            let len = 1 + (next() % 1480) as usize;
            let len = len.min(p.len() - off.min(p.len() - 1));
            let more = next() % 3 != 0;
            let id = (next() % 12) as u16;
            let f = frag(&p, off.min(p.len() - len), len, more, id);
            let _ = r.add(&f, t * 1000, &mut ev);
            assert!(r.in_progress() <= MAX_DATAGRAMS && r.bytes() <= MAX_DATAGRAMS * MAX_DATAGRAM);
        }
    }
}
