//! virtio-net transmit path: header, many in flight, bounded reclaim.
//!
//! Transmission must never wait for the device: a frame goes into a buffer
//! from a fixed free list behind a `virtio_net_hdr` that is zero except for a
//! checksum the device is asked to complete (`CSUM`, virtio 1.2 §5.1.6.2), is
//! posted as exactly its own length, and the buffer comes back only through a
//! validated completion, reclaimed in bounded batches. A full ring is an error
//! value the caller retries after reclaim.

use caps::dma::DmaHal;
use caps::napi::{self, NapiLine, PollOutcome, Quiesce, Raced, Round};
use caps::vring::{BufDir, Completion, Drainable, Rejected, RingMemory, RingState, Vring};

use super::hdr::write_tx_header;
use super::{MAX_FRAME, TX_QUEUE, TxCsum, TxError, VirtioNet};
use crate::virtio::Transport;

/// Transmit path.
impl<T: Transport, H: DmaHal + 'static, const Q: usize> VirtioNet<T, H, Q> {
    /// Queues a `len`-byte frame that `fill` writes in place (smoltcp's `TxToken`), behind
    /// a zeroed header (no offloads, virtio 1.2 §5.1.6.2), and notifies the device if it
    /// wants it. Never waits: `Full` when no buffer or slot is free.
    pub fn transmit_with<S: RingState, M: RingMemory, R>(
        &mut self,
        vq: &mut Vring<S, M, H, Q>,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, TxError> {
        self.transmit_offload(vq, len, |b| (fill(b), TxCsum::None))
    }

    /// As [`VirtioNet::transmit_with`], where `fill` also says whether the device is to
    /// complete the frame's transport checksum (only when [`VirtioNet::tx_csum`]; the
    /// position must lie inside the frame, else the frame is not sent: `BadOffload`).
    pub fn transmit_offload<S: RingState, M: RingMemory, R>(
        &mut self,
        vq: &mut Vring<S, M, H, Q>,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> (R, TxCsum),
    ) -> Result<R, TxError> {
        if len == 0 || len > MAX_FRAME {
            return Err(TxError::BadLength);
        }
        if vq.is_broken() {
            return Err(TxError::Broken);
        }
        let free = if vq.in_flight() < Q {
            self.tx_free.pop()
        } else {
            None
        };
        let Some(mut region) = free else {
            self.tx.full += 1;
            return Err(TxError::Full);
        };
        let (hdr, total) = (self.hdr_len, self.hdr_len + len);
        let tx_csum = self.tx_csum();
        let bytes = region.bytes_mut();
        let (out, csum) = fill(&mut bytes[hdr..total]);
        let ok = match csum {
            TxCsum::None => true,
            TxCsum::Partial { start, offset } => {
                tx_csum && usize::from(start) + usize::from(offset) + 2 <= len
            }
        };
        if !ok {
            let _ = self.tx_free.push(region);
            return Err(TxError::BadOffload);
        }
        write_tx_header(&mut bytes[..hdr], csum);
        if let Err((region, _)) = vq.post_prefix(region, total, BufDir::DeviceReads, 0) {
            let _ = self.tx_free.push(region);
            return Err(TxError::Broken);
        }
        self.tx.packets += 1;
        self.tx.bytes += len as u64;
        self.tx.csum_offloaded += u64::from(csum != TxCsum::None);
        self.kick(TX_QUEUE, vq);
        Ok(out)
    }

    /// Queues a copy of `frame`.
    pub fn transmit<S: RingState, M: RingMemory>(
        &mut self,
        vq: &mut Vring<S, M, H, Q>,
        frame: &[u8],
    ) -> Result<(), TxError> {
        self.transmit_with(vq, frame.len(), |b| b.copy_from_slice(frame))
    }

    fn tx_item(&mut self, item: Result<Completion<H>, Rejected<H>>) {
        let region = match item {
            Ok(c) => Some(c.region),
            Err(r) => {
                self.count_rejected(TX_QUEUE, &r.error);
                r.reclaimed.map(|(region, _)| region)
            }
        };
        if let Some(region) = region {
            let _ = self.tx_free.push(region);
        }
    }

    /// Takes back up to `budget` completed TX buffers from a ring whose interrupts are off
    /// (`Vring<Polled>`, reclaimed before transmitting; or a NAPI round's ring); returns how
    /// many used elements were consumed.
    pub fn reclaim_tx<S: Drainable, M: RingMemory>(
        &mut self,
        vq: &mut Vring<S, M, H, Q>,
        budget: usize,
    ) -> usize {
        let mut done = 0;
        while done < budget {
            let Some(item) = vq.pop_used() else { break };
            self.tx_item(item);
            done += 1;
        }
        done
    }

    /// One NAPI poll of the TX queue, for a kernel that gives TX its own vector.
    pub fn poll_tx<M: RingMemory>(
        &mut self,
        round: Round<M, H, Q>,
        budget: usize,
    ) -> PollOutcome<M, H, Q> {
        let outcome = napi::poll(round, budget, |item| self.tx_item(item));
        if matches!(outcome, PollOutcome::BudgetSpent(..)) {
            self.tx.budget_exhausted += 1;
        }
        outcome
    }

    /// As [`VirtioNet::rx_enable_and_recheck`] for TX (counts races).
    pub fn tx_enable_and_recheck<M: RingMemory>(
        &mut self,
        q: Quiesce<M, H, Q>,
    ) -> Result<NapiLine<M, H, Q>, Raced<M, H, Q>> {
        q.enable_and_recheck()
            .inspect_err(|_| self.tx.rearm_races += 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{frame, modern};
    use super::super::{MAX_FRAME, NetDevice, NetOptions, TxError};

    #[test]
    fn tx_many_in_flight_reclaimed_without_waiting() {
        let (mut w, d) = modern::<16>(&NetOptions::default());
        let NetDevice {
            mut net,
            rx: _rx,
            tx,
        } = d;
        let mut tx = tx.into_polled();
        for i in 0..16 {
            net.transmit(&mut tx, &frame(i, 100)).unwrap();
        }
        assert_eq!(tx.in_flight(), 16);
        assert_eq!(net.transmit(&mut tx, &frame(0, 100)), Err(TxError::Full));
        assert_eq!(net.transmit(&mut tx, &[]), Err(TxError::BadLength));
        assert_eq!(
            net.transmit(&mut tx, &[0; MAX_FRAME + 1]),
            Err(TxError::BadLength)
        );
        assert_eq!(
            net.reclaim_tx(&mut tx, 64),
            0,
            "nothing completed: returns at once"
        );
        let sent = w.drain_tx();
        assert_eq!(sent.len(), 16);
        for (i, (hdr, f)) in sent.iter().enumerate() {
            assert_eq!((hdr.as_slice(), f), (&[0u8; 12][..], &frame(i as u8, 100)));
        }
        assert_eq!(net.reclaim_tx(&mut tx, 4), 4, "bounded by the budget");
        assert_eq!(net.reclaim_tx(&mut tx, 64), 12);
        assert_eq!((net.tx_free(), tx.in_flight()), (16, 0));
        assert_eq!(net.transmit_with(&mut tx, 60, |b| b.fill(0xab)), Ok(()));
        // A completion claiming more than the frame is rejected; the buffer comes back.
        let (id, ..) = w.txq.consume().unwrap();
        w.txq.publish_raw(u32::from(id), 5000);
        assert_eq!(net.reclaim_tx(&mut tx, 64), 1);
        let s = net.tx_stats();
        assert_eq!(
            (s.packets, s.bytes, s.bad_descriptors, s.full),
            (17, 1660, 1, 1)
        );
        assert_eq!(net.tx_free(), 16);
        assert!(s.notifications >= 1);
    }

    #[test]
    fn the_device_completes_a_checksum_only_when_it_offered_to() {
        use super::super::{TxCsum, tests::QEMU};
        use crate::virtio::fake;
        let partial = TxCsum::Partial {
            start: 34,
            offset: 16,
        };
        let (mut w, d) = modern::<16>(&NetOptions::default());
        let NetDevice {
            mut net,
            rx: _rx,
            tx,
        } = d;
        let mut tx = tx.into_polled();
        assert!(net.tx_csum());
        let sent = net.transmit_offload(&mut tx, 54, |b| {
            b.fill(7);
            (b.len(), partial)
        });
        assert_eq!(sent, Ok(54));
        let bad = net.transmit_offload(&mut tx, 40, |_| ((), partial));
        assert_eq!(
            bad,
            Err(TxError::BadOffload),
            "checksum field past the frame"
        );
        let out = w.drain_tx();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, [1, 0, 0, 0, 0, 0, 34, 0, 16, 0, 0, 0]);
        assert_eq!(net.tx_stats().csum_offloaded, 1);
        net.reclaim_tx(&mut tx, 64);
        assert_eq!(net.tx_free(), 16, "the refused frame's buffer came back");
        // A device without CSUM: the same request is refused.
        let dev = fake::device(
            QEMU & !super::super::feature::CSUM,
            &[64, 64],
            &super::super::tests::CONFIG,
        );
        let t = fake::modern(&dev);
        let (_w, d) = super::super::tests::bring_up::<_, 64>(dev, t, &NetOptions::default());
        let NetDevice {
            mut net,
            rx: _rx,
            tx,
        } = d.unwrap();
        let mut tx = tx.into_polled();
        assert!(!net.tx_csum());
        assert_eq!(
            net.transmit_offload(&mut tx, 54, |_| ((), partial)),
            Err(TxError::BadOffload)
        );
        assert_eq!(
            net.transmit_offload(&mut tx, 54, |_| ((), TxCsum::None)),
            Ok(())
        );
    }
}
