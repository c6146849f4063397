//! virtio-net receive path: refill, parse, deliver, NAPI poll.
//!
//! Receiving is where a flood or a hostile device hits first, so this half
//! of the driver recycles every buffer in place (no allocation per packet),
//! keeps the ring at its target fill as it drains, hands frames on only
//! after [`super::parse_rx`] accepted them, and bounds every loop by the
//! caller's budget. The NAPI entry points wrap `caps::napi` so the line and
//! ring type states do the interrupt protocol.

use caps::dma::{Cpu, DmaHal, DmaRegion};
use caps::napi::{self, NapiLine, PollOutcome, Quiesce, Raced, Round};
use caps::vring::{BufDir, Completion, Drainable, Rejected, RingMemory, RingState, Vring};

use super::{MAX_FRAME, RX_QUEUE, RxError, VirtioNet, feature, parse_rx};
use crate::virtio::Transport;

/// Receive path.
impl<T: Transport, H: DmaHal + 'static, const Q: usize> VirtioNet<T, H, Q> {
    fn rx_buf_len(&self) -> usize {
        self.hdr_len + MAX_FRAME
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

    /// Refills the RX ring (either state) and notifies the device if it wants it. The
    /// kernel calls this in polling mode; the NAPI path refills by itself.
    pub fn refill_rx<S: RingState, M: RingMemory>(&mut self, vq: &mut Vring<S, M, H, Q>) {
        self.fill_rx(vq);
        self.kick(RX_QUEUE, vq);
    }

    fn stash_rx(&mut self, region: DmaRegion<H, Cpu>) {
        // Overflow is impossible (at most Q buffers exist); dropping would free it.
        let _ = self.rx_spares.push(region);
    }

    /// One used element: deliver the frame if it is one, count it otherwise; returns the
    /// buffer to reuse, if the ring gave it back.
    fn rx_item<F: FnMut(&[u8])>(
        &mut self,
        item: Result<Completion<H>, Rejected<H>>,
        deliver: &mut F,
    ) -> Option<DmaRegion<H, Cpu>> {
        match item {
            Ok(c) => {
                self.rx_frame(&c, deliver);
                Some(c.region)
            }
            Err(r) => {
                self.count_rejected(RX_QUEUE, &r.error);
                r.reclaimed.map(|(region, _)| region)
            }
        }
    }

    fn rx_frame<F: FnMut(&[u8])>(&mut self, c: &Completion<H>, deliver: &mut F) {
        if self.rx_skip > 0 {
            self.rx_skip -= 1;
            return;
        }
        match parse_rx(c.data(), self.hdr_len, self.has(feature::MRG_RXBUF), Q) {
            Ok(frame) => {
                self.rx.packets += 1;
                self.rx.bytes += frame.len() as u64;
                deliver(frame);
            }
            Err(RxError::MultiBuffer(n)) => {
                self.rx.multi_buffer_dropped += 1;
                self.rx_skip = n - 1;
            }
            Err(_) => self.rx.malformed += 1,
        }
    }

    /// Receive from a ring whose device interrupts are off (a `Vring<Polled>` in polling
    /// mode, or the ring of a NAPI round): up to `budget` used elements, each buffer
    /// reposted at once. Returns how many were consumed (`budget` means there may be more).
    pub fn receive<S: Drainable, M: RingMemory, F: FnMut(&[u8])>(
        &mut self,
        vq: &mut Vring<S, M, H, Q>,
        budget: usize,
        mut deliver: F,
    ) -> usize {
        self.fill_rx(vq);
        let mut done = 0;
        while done < budget {
            let Some(item) = vq.pop_used() else { break };
            done += 1;
            if let Some(region) = self.rx_item(item, &mut deliver)
                && let Err((region, _)) = vq.post(region, BufDir::DeviceWrites, 0)
            {
                self.stash_rx(region);
            }
        }
        self.kick(RX_QUEUE, vq);
        done
    }

    /// One NAPI poll of the RX queue (DESIGN.md "Vring states and the NAPI loop"):
    /// delivers at most `budget` frames to `deliver`, recycling buffers as it goes, and
    /// returns `caps::napi::poll`'s outcome — `BudgetSpent` (yield, poll again) or
    /// `Drained` (finish with [`VirtioNet::rx_enable_and_recheck`]).
    pub fn poll_rx<M: RingMemory, F: FnMut(&[u8])>(
        &mut self,
        mut round: Round<M, H, Q>,
        budget: usize,
        mut deliver: F,
    ) -> PollOutcome<M, H, Q> {
        let done = self.receive(round.ring_mut(), budget, &mut deliver);
        // Whatever arrived since goes through `napi::poll`, which decides the outcome; its
        // buffers are reposted at the next refill.
        let outcome = napi::poll(round, budget - done, |item| {
            if let Some(region) = self.rx_item(item, &mut deliver) {
                self.stash_rx(region);
            }
        });
        match outcome {
            PollOutcome::BudgetSpent(mut round) => {
                self.rx.budget_exhausted += 1;
                self.refill_rx(round.ring_mut());
                PollOutcome::BudgetSpent(round)
            }
            drained => drained,
        }
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
    use super::super::{NetDevice, NetOptions, feature};
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
        assert_eq!(n, 2);
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
        assert_eq!(net.receive(&mut rx, 64, |f| got.push(f.to_vec())), 4);
        assert_eq!(got, [frame(3, 70)]);
        let s = net.rx_stats();
        assert_eq!((s.bad_descriptors, s.packets), (3, 1));
        assert_eq!(rx.in_flight(), 8, "the reclaimed buffer went back");
        assert!(!net.needs_reset());
        // A used index running too far ahead breaks the ring: counted, reset requested.
        w.rxq.bump_used_idx(100);
        assert_eq!(net.receive(&mut rx, 64, |_| panic!("nothing valid")), 1);
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
        w.inject(&frame(1, 60), 3); // three buffers: dropped with its two continuations
        w.inject(&frame(2, 60), 9);
        w.inject(&frame(3, 60), 0);
        w.inject(&frame(4, 60), 1);
        let mut got = Vec::new();
        net.receive(&mut rx, 64, |f| got.push(f.to_vec()));
        assert_eq!(got, [frame(4, 60)]);
        let s = net.rx_stats();
        assert_eq!((s.malformed, s.multi_buffer_dropped, s.packets), (4, 1, 1));
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
}
