//! smoltcp's view of the NIC: frames pulled from the ring through the gate, and the TX
//! ring.
//!
//! smoltcp pulls received frames and asks for transmit buffers through `phy::Device`.
//! A receive token owns the ring buffer its frame lies in, so smoltcp reads the frame
//! where the device wrote it and the buffer goes back to the ring when the token is
//! done; a frame is taken from the ring only when smoltcp asks for one, so overload
//! stays in the ring (the device drops, and counts, what does not fit) and never in a
//! software queue. Each frame first passes the gate (`net::gate`: checks, reassembly,
//! neighbours), at most `budget` of them per batch. Transmission writes straight into
//! a TX ring buffer (`transmit_offload`), so a frame is built once, in the memory the
//! device reads; with the device's `CSUM` offload, TCP checksums are completed by it.

use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use drivers::virtio::net::{RxPacket, TxCsum};
use smoltcp::phy::{self, Checksum, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::arch::dma::KernelDma;
use crate::net::dhcp_log::dhcp_step;
use crate::net::gate::{Admit, Gate};
use crate::net::ingress::tcp_partial_checksum;
use crate::net::virtio::VirtioNic;
use crate::time;

/// The device smoltcp polls: the NIC, the gate, and the frames left in this batch.
pub(super) struct Phy<'a> {
    nic: RefCell<&'a mut VirtioNic>,
    gate: &'a mut Gate,
    budget: &'a mut usize,
    /// smoltcp leaves TCP checksums to us (decided when the interface was made, from the
    /// device's `CSUM`; smoltcp caches its capabilities then).
    tcp_csum_ours: bool,
}

impl<'a> Phy<'a> {
    /// smoltcp's device over `nic`, pulling at most `budget` frames from its ring.
    pub(super) fn new(
        nic: &'a mut VirtioNic,
        gate: &'a mut Gate,
        budget: &'a mut usize,
        tcp_csum_ours: bool,
    ) -> Self {
        Phy {
            nic: RefCell::new(nic),
            gate,
            budget,
            tcp_csum_ours,
        }
    }

    /// The next frame for smoltcp: one the gate made, else one from the ring that the
    /// gate lets through. Frames the gate consumed are recycled at once; ARP it wants
    /// sent goes out here.
    fn next_frame(&mut self) -> Option<RxFrame> {
        loop {
            if let Some(f) = self.gate.next_ready() {
                return Some(RxFrame::Made(f));
            }
            if *self.budget == 0 {
                return None;
            }
            let nic = self.nic.get_mut();
            let p = nic.pop_rx()?;
            *self.budget -= 1;
            let admit =
                self.gate
                    .admit(p.frame(), p.meta(), nic.net.max_rx_frame(), time::now_ns());
            for f in self.gate.take_outgoing() {
                let _ = nic.send(&f); // ARP; a full ring is counted by the driver
            }
            match admit {
                Admit::Deliver => {
                    log_dhcp("got", p.frame());
                    return Some(RxFrame::Ring(p));
                }
                Admit::Consumed => nic.recycle_rx(p),
            }
        }
    }
}

/// With `log=debug`, says which DHCP step `frame` is, if it is one.
fn log_dhcp(verb: &str, frame: &[u8]) {
    if log::log_enabled!(log::Level::Debug)
        && let Some(step) = dhcp_step(frame)
    {
        log::debug!("net: {verb} {step}");
    }
}

/// Where a received frame lies.
enum RxFrame {
    /// In its ring buffer.
    Ring(RxPacket<KernelDma>),
    /// In memory the gate allocated (reassembled, or released from a hold).
    Made(Vec<u8>),
}

/// A received frame; its ring buffer goes back to the driver when the token is dropped.
pub(super) struct RxTok<'b, 'a> {
    nic: &'b RefCell<&'a mut VirtioNic>,
    frame: Option<RxFrame>,
}

/// A transmit slot: the frame is built in a TX ring buffer.
pub(super) struct TxTok<'b, 'a> {
    nic: &'b RefCell<&'a mut VirtioNic>,
    tcp_csum_ours: bool,
}

impl phy::RxToken for RxTok<'_, '_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        match &self.frame {
            Some(RxFrame::Ring(p)) => f(p.frame()),
            Some(RxFrame::Made(v)) => f(v),
            None => f(&[]),
        }
    }
}

impl Drop for RxTok<'_, '_> {
    fn drop(&mut self) {
        if let Some(RxFrame::Ring(p)) = self.frame.take() {
            self.nic.borrow_mut().recycle_rx(p);
        }
    }
}

impl phy::TxToken for TxTok<'_, '_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut guard = self.nic.borrow_mut();
        let nic: &mut VirtioNic = &mut guard;
        // The device completes TCP checksums if it can; if it cannot (a device reset
        // brought back one without `CSUM`), they are computed here.
        let (ours, device) = (self.tcp_csum_ours, nic.net.tx_csum());
        let mut f = Some(f);
        let mut out = None;
        nic.reclaim();
        let sent = nic.net.transmit_offload(&mut nic.tx, len, |buf| {
            out = f.take().map(|f| f(buf));
            log_dhcp("sent", buf);
            let csum = match ours.then(|| tcp_partial_checksum(buf, device)).flatten() {
                Some((start, offset)) => TxCsum::Partial { start, offset },
                None => TxCsum::None,
            };
            ((), csum)
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

impl<'a> phy::Device for Phy<'a> {
    type RxToken<'b>
        = RxTok<'b, 'a>
    where
        Self: 'b;
    type TxToken<'b>
        = TxTok<'b, 'a>
    where
        Self: 'b;

    fn receive(&mut self, _t: Instant) -> Option<(RxTok<'_, 'a>, TxTok<'_, 'a>)> {
        let frame = self.next_frame()?;
        let (nic, tcp_csum_ours) = (&self.nic, self.tcp_csum_ours);
        Some((
            RxTok {
                nic,
                frame: Some(frame),
            },
            TxTok { nic, tcp_csum_ours },
        ))
    }

    fn transmit(&mut self, _t: Instant) -> Option<TxTok<'_, 'a>> {
        let nic = self.nic.get_mut();
        nic.reclaim();
        (nic.net.tx_free() > 0).then_some(TxTok {
            nic: &self.nic,
            tcp_csum_ours: self.tcp_csum_ours,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        // smoltcp leaves TCP checksums alone when the device completes them (`CSUM`).
        gated_capabilities(64, !self.tcp_csum_ours)
    }
}

/// smoltcp's view of an Ethernet device behind the gate, which verified every received
/// checksum already (or the device vouched for it): smoltcp only computes checksums for
/// transmission, TCP's only if `tcp_tx` (not when the device completes them).
pub(super) fn gated_capabilities(max_burst: usize, tcp_tx: bool) -> DeviceCapabilities {
    let mut caps = DeviceCapabilities::default();
    caps.medium = Medium::Ethernet;
    caps.max_transmission_unit = 1514;
    caps.max_burst_size = Some(max_burst);
    caps.checksum.ipv4 = Checksum::Tx;
    caps.checksum.udp = Checksum::Tx;
    caps.checksum.icmpv4 = Checksum::Tx;
    caps.checksum.tcp = if tcp_tx { Checksum::Tx } else { Checksum::None };
    caps
}
