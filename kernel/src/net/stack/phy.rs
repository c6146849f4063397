//! smoltcp's view of the NIC: frames the NAPI round queued, and the TX ring.
//!
//! smoltcp pulls received frames and asks for transmit buffers through `phy::Device`.
//! Transmission writes straight into a TX ring buffer (`transmit_with`), so a frame is
//! built once, in the memory the device reads.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::net::virtio::VirtioNic;

/// The device smoltcp polls: the NIC and the frames the NAPI round queued for it.
pub(super) struct Phy<'a> {
    pub(super) nic: &'a mut VirtioNic,
    pub(super) rxq: &'a mut VecDeque<Vec<u8>>,
}

/// A received frame, owned.
pub(super) struct RxTok(Vec<u8>);
/// A transmit slot: the frame is built in a TX ring buffer.
pub(super) struct TxTok<'a>(&'a mut VirtioNic);

impl phy::RxToken for RxTok {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxTok<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let nic = self.0;
        let mut f = Some(f);
        let mut out = None;
        let sent = nic.net.transmit_with(&mut nic.tx, len, |buf| {
            out = f.take().map(|f| f(buf));
        });
        match (sent, out) {
            (Ok(()), Some(r)) => r,
            // Ring full or bad length: smoltcp still needs its packet built; it is dropped
            // (and counted by the driver as `full`).
            _ => f
                .map(|f| f(&mut vec![0u8; len]))
                .unwrap_or_else(|| unreachable!()),
        }
    }
}

impl phy::Device for Phy<'_> {
    type RxToken<'a>
        = RxTok
    where
        Self: 'a;
    type TxToken<'a>
        = TxTok<'a>
    where
        Self: 'a;

    fn receive(&mut self, _t: Instant) -> Option<(RxTok, TxTok<'_>)> {
        let frame = self.rxq.pop_front()?;
        Some((RxTok(frame), TxTok(self.nic)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<TxTok<'_>> {
        self.nic.reclaim();
        (self.nic.net.tx_free() > 0).then_some(TxTok(self.nic))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps.max_burst_size = Some(64);
        // `ingress::check` verified every received checksum already: smoltcp only
        // computes them for transmission.
        caps.checksum.ipv4 = phy::Checksum::Tx;
        caps.checksum.udp = phy::Checksum::Tx;
        caps.checksum.tcp = phy::Checksum::Tx;
        caps.checksum.icmpv4 = phy::Checksum::Tx;
        caps
    }
}

/// Counts ICMP echo requests to us in a received frame (for the "answers a ping" test).
pub(super) fn is_echo_request(frame: &[u8]) -> bool {
    // Ethernet (14) + IPv4 with IHL; proto 1 = ICMP; ICMP type 8 = echo request.
    if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 1 {
        return false;
    }
    let ihl = usize::from(frame[14] & 0xf) * 4;
    frame.get(14 + ihl).is_some_and(|&t| t == 8)
}
