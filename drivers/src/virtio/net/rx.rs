//! virtio-net receive path: refill, pull one packet at a time, gather, NAPI poll.
//!
//! Receiving is where a flood or a hostile device hits first, so this half
//! of the driver recycles every buffer in place (no allocation per packet),
//! keeps the ring at its target fill as it drains, hands packets on only
//! after their header passed [`super::parse_rx`], and bounds every loop.
//! The caller pulls packets ([`VirtioNet::pop_rx`]) and gives each buffer back
//! ([`VirtioNet::recycle_rx`]) when it is done with it, so a frame is read in
//! place, in the buffer the device wrote; only a packet spread over several
//! mergeable buffers is copied, once, into one gathering buffer. The NAPI entry
//! points wrap `caps::napi` so the line and ring type states do the interrupt
//! protocol.

use caps::dma::{Cpu, DmaHal, DmaRegion};
use caps::napi::{self, NapiLine, PollOutcome, Quiesce, Raced, Round};
use caps::vring::{BufDir, Completion, Drainable, Rejected, RingMemory, RingState, Vring};

use super::{
    MAX_FRAME, MAX_PACKET, RX_BIG, RX_PAGE, RX_QUEUE, RxMeta, RxOffloads, VirtioNet, parse_rx,
};
use crate::virtio::Transport;

/// A received packet, out of the ring until [`VirtioNet::recycle_rx`] takes it back.
#[must_use = "give it back with VirtioNet::recycle_rx"]
pub struct RxPacket<H: DmaHal + 'static> {
    region: DmaRegion<H, Cpu>,
    start: usize,
    len: usize,
    meta: RxMeta,
    gathered: bool,
}

impl<H: DmaHal + 'static> RxPacket<H> {
    /// The Ethernet frame (no virtio header).
    pub fn frame(&self) -> &[u8] {
        &self.region.bytes()[self.start..self.start + self.len]
    }

    /// What the device's header said about it.
    pub fn meta(&self) -> RxMeta {
        self.meta
    }
}

/// A packet being gathered from mergeable buffers.
pub(super) struct Merge {
    /// Buffers still to come.
    left: u16,
    /// Frame bytes gathered so far.
    len: usize,
    meta: RxMeta,
}

/// Receive path.
impl<T: Transport, H: DmaHal + 'static, const Q: usize> VirtioNet<T, H, Q> {
    fn rx_buf_len(&self) -> usize {
        match self.offloads {
            RxOffloads { tso4: true, .. } => RX_BIG,
            RxOffloads {
                mergeable: true, ..
            } => RX_PAGE,
            _ => self.hdr_len + MAX_FRAME,
        }
    }

    /// Posts spare (then newly allocated) buffers until the ring holds the target number.
    pub(super) fn fill_rx<S: RingState, M: RingMemory>(&mut self, vq: &mut Vring<S, M, H, Q>) {
        while vq.in_flight() < self.rx_target && !vq.is_broken() {
            let region = match self.rx_spares.pop() {
                Some(r) => r,
                None => match self.pool.alloc(self.rx_buf_len(), 8) {
                    Ok(r) => r,
                    Err(_) => {
                        self.rx.refill_failures += 1;
                        return;
                    }
                },
            };
            if let Err((region, _)) = vq.post(region, BufDir::DeviceWrites, 0) {
                self.stash_rx(region);
                return;
            }
        }
    }

    /// Refills the RX ring (either state) and notifies the device if it wants it.
    pub fn refill_rx<S: RingState, M: RingMemory>(&mut self, vq: &mut Vring<S, M, H, Q>) {
        self.fill_rx(vq);
        self.kick(RX_QUEUE, vq);
    }

    fn stash_rx(&mut self, region: DmaRegion<H, Cpu>) {
        // Overflow is impossible (at most Q buffers exist); dropping would free it.
        let _ = self.rx_spares.push(region);
    }

    /// The next packet from a ring whose device interrupts are off (`Vring<Polled>`, or a
    /// NAPI round's ring), or `None` when the ring has no complete one. Bad used elements
    /// and malformed packets on the way are counted and their buffers kept for reposting;
    /// the continuation buffers of a mergeable packet are gathered with it. Consumes at
    /// most the used elements the device published (≤ Q).
    pub fn pop_rx<S: Drainable, M: RingMemory>(
        &mut self,
        vq: &mut Vring<S, M, H, Q>,
    ) -> Option<RxPacket<H>> {
        loop {
            let item = vq.pop_used()?;
            let Some(c) = self.rx_completion(item) else {
                continue;
            };
            if self.rx_skip > 0 {
                self.rx_skip -= 1;
                self.stash_rx(c.region);
            } else if self.rx_merge.is_some() {
                if let Some(p) = self.gather_more(c) {
                    return Some(self.delivered(p));
                }
            } else if let Some(p) = self.rx_first(c) {
                return Some(self.delivered(p));
            }
        }
    }

    /// A completion, or `None` after counting a rejected element (which also ends a
    /// packet being gathered: one of its buffers is gone).
    fn rx_completion(&mut self, item: Result<Completion<H>, Rejected<H>>) -> Option<Completion<H>> {
        match item {
            Ok(c) => Some(c),
            Err(r) => {
                self.count_rejected(RX_QUEUE, &r.error);
                if let Some((region, _)) = r.reclaimed {
                    self.stash_rx(region);
                }
                if let Some(m) = self.rx_merge.take() {
                    self.rx.malformed += 1;
                    self.rx_skip = m.left.saturating_sub(1);
                }
                None
            }
        }
    }

    /// The first buffer of a packet: the whole packet, or the start of a gathering.
    fn rx_first(&mut self, c: Completion<H>) -> Option<RxPacket<H>> {
        let (meta, n, frame_len) = match parse_rx(c.data(), self.hdr_len, self.offloads, Q) {
            Ok((meta, n, frame)) => (meta, n, frame.len()),
            Err(_) => {
                self.rx.malformed += 1;
                self.stash_rx(c.region);
                return None;
            }
        };
        if n == 1 {
            return Some(RxPacket {
                region: c.region,
                start: self.hdr_len,
                len: frame_len,
                meta,
                gathered: false,
            });
        }
        let Some(mut gather) = self.gather_buffer() else {
            self.rx.multi_buffer_dropped += 1;
            self.rx_skip = n - 1;
            self.stash_rx(c.region);
            return None;
        };
        gather.bytes_mut()[..frame_len].copy_from_slice(&c.data()[self.hdr_len..]);
        self.rx_gather = Some(gather);
        self.stash_rx(c.region);
        self.rx_merge = Some(Merge {
            left: n - 1,
            len: frame_len,
            meta,
        });
        None
    }

    /// A continuation buffer: appended; the packet once its last buffer is in.
    fn gather_more(&mut self, c: Completion<H>) -> Option<RxPacket<H>> {
        let mut m = self.rx_merge.take()?;
        let data = c.data();
        let fits = m.len + data.len() <= MAX_PACKET;
        if let (true, Some(g)) = (fits, self.rx_gather.as_mut()) {
            g.bytes_mut()[m.len..m.len + data.len()].copy_from_slice(data);
            m.len += data.len();
        } else {
            self.rx.multi_buffer_dropped += 1;
            self.rx_skip = m.left - 1;
            self.stash_rx(c.region);
            return None;
        }
        self.stash_rx(c.region);
        m.left -= 1;
        if m.left > 0 {
            self.rx_merge = Some(m);
            return None;
        }
        if super::check_packet(&m.meta, m.len).is_err() {
            self.rx.malformed += 1;
            return None;
        }
        self.rx.merged += 1;
        Some(RxPacket {
            region: self.rx_gather.take()?,
            start: 0,
            len: m.len,
            meta: m.meta,
            gathered: true,
        })
    }

    /// The gathering buffer, allocated on first use (one page more than the largest
    /// packet, so a buffer's worth of overrun is caught by the length check, not a panic).
    fn gather_buffer(&mut self) -> Option<DmaRegion<H, Cpu>> {
        match self.rx_gather.take() {
            Some(g) => Some(g),
            None => self.pool.alloc(MAX_PACKET + RX_PAGE, 8).ok(),
        }
    }

    fn delivered(&mut self, p: RxPacket<H>) -> RxPacket<H> {
        self.rx.packets += 1;
        self.rx.bytes += p.len as u64;
        self.rx.gso += u64::from(p.meta.gso_size.is_some());
        self.rx.csum_offloaded += u64::from(p.meta.csum != super::RxCsum::Unchecked);
        p
    }

    /// Takes a packet's buffer back: a ring buffer is reposted at the next refill, the
    /// gathering buffer waits for the next merged packet.
    pub fn recycle_rx(&mut self, p: RxPacket<H>) {
        if p.gathered {
            self.rx_gather = Some(p.region);
        } else {
            self.stash_rx(p.region);
        }
    }

    /// Receives from a ring whose device interrupts are off (a `Vring<Polled>` in polling
    /// mode, or the ring of a NAPI round): drains up to `budget` packets into `deliver`,
    /// recycling each buffer, then refills and notifies. Returns the packets delivered
    /// (`budget` means there may be more).
    pub fn receive<S: Drainable, M: RingMemory, F: FnMut(&[u8])>(
        &mut self,
        vq: &mut Vring<S, M, H, Q>,
        budget: usize,
        mut deliver: F,
    ) -> usize {
        self.fill_rx(vq);
        let mut done = 0;
        while done < budget {
            let Some(p) = self.pop_rx(vq) else { break };
            deliver(p.frame());
            self.recycle_rx(p);
            done += 1;
        }
        self.refill_rx(vq);
        done
    }

    /// Ends a batch of [`VirtioNet::pop_rx`] in a NAPI round: refills, and returns
    /// `caps::napi::poll`'s verdict on the ring as it is now — `BudgetSpent` (counted;
    /// yield, pull again) if used elements are still waiting, else `Drained` (finish with
    /// [`VirtioNet::rx_enable_and_recheck`]).
    pub fn rx_batch_done<M: RingMemory>(
        &mut self,
        mut round: Round<M, H, Q>,
    ) -> PollOutcome<M, H, Q> {
        self.refill_rx(round.ring_mut());
        // A zero budget pops nothing: the call only judges whether work is left.
        match napi::poll(round, 0, |_| {}) {
            PollOutcome::BudgetSpent(round) => {
                self.rx.budget_exhausted += 1;
                PollOutcome::BudgetSpent(round)
            }
            drained => drained,
        }
    }

    /// One NAPI poll of the RX queue (DESIGN.md "Vring states and the NAPI loop"):
    /// delivers at most `budget` packets to `deliver`, recycling buffers as it goes, and
    /// returns the verdict of [`VirtioNet::rx_batch_done`].
    pub fn poll_rx<M: RingMemory, F: FnMut(&[u8])>(
        &mut self,
        mut round: Round<M, H, Q>,
        budget: usize,
        deliver: F,
    ) -> PollOutcome<M, H, Q> {
        self.receive(round.ring_mut(), budget, deliver);
        self.rx_batch_done(round)
    }

    /// Re-enables RX interrupts and rechecks (`Quiesce::enable_and_recheck`): on success
    /// the line is re-armed on that evidence and the ring refilled; a race is counted and
    /// handed back to poll again.
    pub fn rx_enable_and_recheck<M: RingMemory>(
        &mut self,
        q: Quiesce<M, H, Q>,
    ) -> Result<NapiLine<M, H, Q>, Raced<M, H, Q>> {
        match q.enable_and_recheck() {
            Ok(mut pair) => {
                self.refill_rx(pair.ring_mut());
                Ok(pair)
            }
            Err(raced) => {
                self.rx.rearm_races += 1;
                Err(raced)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::MAC;
    use super::super::tests::{CONFIG, bring_up, frame, modern};
    use super::super::{
        MAX_PACKET, NetDevice, NetOptions, RX_BIG, RX_PAGE, RxCsum, RxMeta, feature,
    };
    use crate::virtio::LegacyTransport;
    use crate::virtio::fake::{self, FakeWin};
    use crate::virtio::feature::EVENT_IDX;
    use caps::napi::{self, NapiLine, PollOutcome, Raced};
    use std::vec::Vec;

    #[test]
    fn rx_burst_larger_than_budget_then_drained_and_rearmed() {
        let (mut w, d) = modern::<256>(&NetOptions::default());
        let NetDevice {
            mut net,
            rx,
            tx: _tx,
        } = d;
        let pair = NapiLine::new(w.rx_line(), rx).ok().unwrap();
        for i in 0..100 {
            w.inject(&frame(i, 60 + usize::from(i)), 1);
        }
        let round = napi::take(pair).ok().expect("line fired");
        let mut got = Vec::new();
        let mut deliver = |f: &[u8]| got.push(f.to_vec());
        let PollOutcome::BudgetSpent(mut round) = net.poll_rx(round, 64, &mut deliver) else {
            panic!("100 frames, budget 64")
        };
        let vq = round.ring_mut();
        assert_eq!(vq.in_flight(), 256, "refilled while draining");
        let PollOutcome::Drained(q) = net.poll_rx(round, 64, &mut deliver) else {
            panic!("36 left, budget 64")
        };
        let Ok(pair) = net.rx_enable_and_recheck(q) else {
            panic!("nothing arrived meanwhile")
        };
        assert_eq!(pair.ring().in_flight(), 256);
        assert_eq!(got.len(), 100);
        for (i, f) in got.iter().enumerate() {
            assert_eq!(*f, frame(i as u8, 60 + i), "frame {i} intact and in order");
        }
        let s = net.rx_stats();
        assert_eq!((s.packets, s.budget_exhausted, s.rearm_races), (100, 1, 0));
        assert_eq!(s.bytes, (60..160).sum::<u64>());
        // The rearmed line fires for the next frame.
        w.inject(&frame(7, 64), 1);
        assert!(napi::take(pair).is_ok());
    }

    #[test]
    fn race_between_drain_and_rearm_is_counted_not_lost() {
        let (mut w, d) = modern::<64>(&NetOptions::default());
        let NetDevice {
            mut net,
            rx,
            tx: _tx,
        } = d;
        let pair = NapiLine::new(w.rx_line(), rx).ok().unwrap();
        w.inject(&frame(1, 60), 1);
        let round = napi::take(pair).ok().unwrap();
        let mut n = 0;
        let PollOutcome::Drained(q) = net.poll_rx(round, 64, |_| n += 1) else {
            panic!()
        };
        w.inject(&frame(2, 60), 1);
        let Err(Raced(round)) = net.rx_enable_and_recheck(q) else {
            panic!("the second frame raced the re-enable")
        };
        assert_eq!(net.rx_stats().rearm_races, 1);
        let PollOutcome::Drained(q) = net.poll_rx(round, 64, |_| n += 1) else {
            panic!()
        };
        let Ok(pair) = net.rx_enable_and_recheck(q) else {
            panic!()
        };
        assert!(!w.gic.is_masked(crate::virtio::fake::RX_INTID), "re-armed");
        drop(pair);
        assert_eq!(n, 2, "both frames, the one that raced included");
    }

    #[test]
    fn hostile_used_elements_are_counted_and_the_driver_keeps_going() {
        let opts = NetOptions {
            rx_buffers: 8,
            ..NetOptions::default()
        };
        let (mut w, d) = modern::<16>(&opts);
        let NetDevice {
            mut net,
            rx,
            tx: _tx,
        } = d;
        let mut rx = rx.into_polled();
        w.rxq.publish_raw(99, 0); // id out of range
        let (id, ..) = w.rxq.consume().unwrap();
        w.rxq.publish_raw(u32::from(id), 5000); // len past the buffer
        w.rxq.publish_raw(12, 0); // id not in flight
        w.inject(&frame(3, 70), 1);
        let mut got = Vec::new();
        assert_eq!(net.receive(&mut rx, 64, |f| got.push(f.to_vec())), 1);
        assert_eq!(got, [frame(3, 70)]);
        let s = net.rx_stats();
        assert_eq!((s.bad_descriptors, s.packets), (3, 1));
        assert_eq!(rx.in_flight(), 8, "the reclaimed buffer went back");
        assert!(!net.needs_reset());
        // A used index running too far ahead breaks the ring: counted, reset requested.
        w.rxq.bump_used_idx(100);
        assert_eq!(net.receive(&mut rx, 64, |_| panic!("nothing valid")), 0);
        assert_eq!(net.receive(&mut rx, 64, |_| panic!("nothing valid")), 0);
        assert_eq!(net.rx_stats().bad_descriptors, 4);
        assert!(net.needs_reset() && rx.is_broken());
    }

    #[test]
    fn malformed_frames_are_counted_and_dropped() {
        let (mut w, d) = modern::<16>(&NetOptions::default());
        let NetDevice {
            mut net,
            rx,
            tx: _tx,
        } = d;
        let mut rx = rx.into_polled();
        let (id, ..) = w.rxq.consume().unwrap();
        w.rxq.complete(u32::from(id), 5); // shorter than the header
        w.inject(&frame(1, 60), 0); // num_buffers 0
        w.inject(&frame(1, 60), 1000); // absurd num_buffers
        w.inject(&frame(1, 6), 1); // runt
        let mut bad = [0u8; 12];
        bad[0] = 4; // RSC_INFO: never negotiated
        bad[10] = 1;
        w.inject_with(bad, &frame(1, 60));
        bad[0] = 0;
        bad[1] = 1; // a TCPv4 segment, but GUEST_TSO4 was not offered
        w.inject_with(bad, &frame(1, 60));
        w.inject(&frame(4, 60), 1);
        let mut got = Vec::new();
        net.receive(&mut rx, 64, |f| got.push(f.to_vec()));
        assert_eq!(got, [frame(4, 60)]);
        let s = net.rx_stats();
        assert_eq!((s.malformed, s.multi_buffer_dropped, s.packets), (6, 0, 1));
        assert_eq!(rx.in_flight(), 16, "every buffer reused");
    }

    #[test]
    fn legacy_device_with_and_without_mergeable_buffers() {
        for (offered, hdr) in [(feature::MAC | feature::MRG_RXBUF, 12), (feature::MAC, 10)] {
            let dev = fake::device(offered | EVENT_IDX, &[16, 16], &CONFIG);
            let t: LegacyTransport<FakeWin> = fake::legacy(&dev, true);
            let (mut w, d) = bring_up::<_, 16>(dev.clone(), t, &NetOptions::default());
            let NetDevice {
                mut net,
                rx,
                tx: _tx,
            } = d.unwrap();
            assert_eq!((net.header_len(), net.mac()), (hdr, MAC));
            assert_eq!(dev.borrow().queues[0].pfn, 0x9000_0000 >> 12);
            assert_eq!(dev.borrow().status, 7, "no FEATURES_OK on legacy");
            w.hdr_len = hdr;
            let mut rx = rx.into_polled();
            w.inject(&frame(5, 64), 1);
            let mut got = Vec::new();
            net.receive(&mut rx, 8, |f| got.push(f.to_vec()));
            assert_eq!(got, [frame(5, 64)]);
        }
    }

    fn offload_device(
        q: u64,
    ) -> (
        crate::virtio::fake::NetWorld,
        super::super::tests::Dev<crate::virtio::ModernTransport<FakeWin>, 64>,
    ) {
        let offered = super::super::tests::QEMU | q;
        let dev = fake::device(offered, &[1024, 1024, 64], &CONFIG);
        let t = fake::modern(&dev);
        let (w, d) = bring_up(dev, t, &NetOptions::default());
        (w, d.unwrap())
    }

    fn seg_header() -> [u8; 12] {
        let mut h = [0u8; 12];
        h[0] = super::super::hdr::NEEDS_CSUM;
        h[1] = super::super::hdr::GSO_TCPV4;
        h[2..4].copy_from_slice(&54u16.to_le_bytes());
        h[4..6].copy_from_slice(&1448u16.to_le_bytes());
        h[6..8].copy_from_slice(&34u16.to_le_bytes());
        h[8..10].copy_from_slice(&16u16.to_le_bytes());
        h
    }

    fn long_frame(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|j| seed.wrapping_add((j / 251) as u8 ^ j as u8))
            .collect()
    }

    #[test]
    fn mergeable_packets_are_gathered_whole_and_buffers_reused() {
        let (mut w, d) = offload_device(feature::GUEST_TSO4);
        let NetDevice {
            mut net,
            rx,
            tx: _tx,
        } = d;
        assert_ne!(net.features() & feature::GUEST_TSO4, 0);
        let mut rx = rx.into_polled();
        // With large receive, a 64 KiB buffer holds nearly any segment whole; the largest
        // IPv4 packet spills 26 bytes into a second. A jumbo frame fits one.
        let jumbo = long_frame(1, 9000);
        assert_eq!(w.inject_merged([0; 12], &jumbo, RX_BIG), 1);
        let seg = long_frame(2, MAX_PACKET);
        assert_eq!(w.inject_merged(seg_header(), &seg, RX_BIG), 2);
        w.inject(&frame(3, 60), 1);
        let mut got = Vec::new();
        while let Some(p) = net.pop_rx(&mut rx) {
            got.push((p.frame().to_vec(), p.meta()));
            net.recycle_rx(p);
        }
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].0.as_slice(), got[0].1),
            (jumbo.as_slice(), RxMeta::PLAIN)
        );
        assert_eq!(got[1].0, seg, "a 64 KiB segment arrives intact");
        assert_eq!(got[1].1.gso_size, Some(1448));
        assert_eq!(
            got[1].1.csum,
            RxCsum::Partial {
                start: 34,
                offset: 16
            }
        );
        assert_eq!(got[2].0, frame(3, 60));
        let s = net.rx_stats();
        assert_eq!((s.packets, s.merged, s.gso, s.csum_offloaded), (3, 1, 1, 1));
        assert_eq!((s.malformed, s.multi_buffer_dropped), (0, 0));
        net.refill_rx(&mut rx);
        assert_eq!(rx.in_flight(), 64, "every buffer went back to the ring");
    }

    #[test]
    fn a_packet_split_across_two_polls_is_gathered_when_its_last_buffer_arrives() {
        let (mut w, d) = offload_device(0);
        let NetDevice {
            mut net,
            rx,
            tx: _tx,
        } = d;
        let mut rx = rx.into_polled();
        let big = long_frame(5, 5000);
        let mut h = [0u8; 12];
        h[10] = 2;
        w.inject_with(h, &big[..RX_PAGE - 12]);
        assert!(net.pop_rx(&mut rx).is_none(), "half a packet is no packet");
        w.inject_raw(&big[RX_PAGE - 12..]);
        let p = net.pop_rx(&mut rx).expect("the second buffer completes it");
        assert_eq!(p.frame(), big.as_slice());
        net.recycle_rx(p);
    }

    #[test]
    fn broken_merges_are_counted_and_the_next_packet_is_fine() {
        let (mut w, d) = offload_device(feature::GUEST_TSO4);
        let NetDevice {
            mut net,
            rx,
            tx: _tx,
        } = d;
        let mut rx = rx.into_polled();
        // Longer than any IPv4 packet: dropped, its remaining buffers skipped.
        let too_long = long_frame(7, MAX_PACKET + 2 * RX_PAGE);
        let n = w.inject_merged([0; 12], &too_long, RX_BIG);
        net.refill_rx(&mut rx);
        // A continuation lost to a rejected used element: malformed, the rest skipped.
        let mut h = [0u8; 12];
        h[10] = 3;
        w.inject_with(h, &frame(8, 100));
        w.rxq.publish_raw(999, 0);
        w.inject_raw(&frame(9, 100));
        // Valid flags but a checksum position past the gathered packet.
        let mut far = [0u8; 12];
        far[0] = super::super::hdr::NEEDS_CSUM;
        far[6..8].copy_from_slice(&u16::MAX.to_le_bytes());
        w.inject_merged(far, &long_frame(1, 65_530), RX_BIG);
        w.inject(&frame(4, 60), 1);
        let mut got = Vec::new();
        for _ in 0..4 {
            net.receive(&mut rx, 64, |f| got.push(f.to_vec()));
        }
        assert_eq!(n, 2, "the first 64 KiB and the rest");
        assert_eq!(got, [frame(4, 60)]);
        let s = net.rx_stats();
        assert_eq!(
            (s.multi_buffer_dropped, s.malformed, s.bad_descriptors),
            (1, 2, 1)
        );
        assert_eq!(s.packets, 1);
    }
}
