//! The receive gate: what happens to a frame between the ring and smoltcp.
//!
//! Every frame the driver hands over goes through [`Gate::admit`]: the ingress checks
//! (`ingress`), IPv4 reassembly (`reasm`) and the neighbour logic (`neigh`). The answer
//! is either "deliver this frame as it lies in its ring buffer" (the common case: no
//! copy) or "consumed" (dropped and counted, kept as a fragment, or held until its
//! sender is resolved). Frames the gate produces itself — a reassembled datagram, held
//! datagrams released — wait in [`Gate::next_ready`] for smoltcp, and frames to send
//! (ARP requests, replies, announcements) in [`Gate::take_outgoing`]. Nothing a device
//! handed over is dropped here for lack of room: the only drops are the counted
//! reasons of `ingress::Dropped`. Pure and host-tested; the net task owns one gate.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use drivers::virtio::net::{RxCsum, RxMeta};

use super::ingress::{self, Context, Dropped, Frame, IngressStats, Ip4};
use super::neigh::{NeighStats, Neighbours};
use super::reasm::Reassembler;

/// What to do with a frame from the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Hand it to smoltcp as it is.
    Deliver,
    /// The gate is done with it (dropped, stored or copied): recycle its buffer.
    Consumed,
}

/// The receive gate of one interface.
pub struct Gate {
    addr: Option<(Ip4, u8)>,
    gateway: Option<Ip4>,
    reasm: Reassembler,
    neigh: Neighbours,
    ready: VecDeque<Vec<u8>>,
    outgoing: Vec<Vec<u8>>,
    /// Frames dropped, by reason.
    pub dropped: IngressStats,
    /// ICMP echo requests to us admitted.
    pub echo_requests: u64,
    /// Datagrams reassembled from fragments.
    pub reassembled: u64,
    /// Frames handed to smoltcp (from the ring, reassembled, or released from a hold).
    pub delivered: u64,
}

impl Gate {
    /// A gate for an interface with MAC `mac` and no address yet.
    pub fn new(mac: [u8; 6]) -> Self {
        Gate {
            addr: None,
            gateway: None,
            reasm: Reassembler::new(),
            neigh: Neighbours::new(mac),
            ready: VecDeque::new(),
            outgoing: Vec::new(),
            dropped: IngressStats::ZERO,
            echo_requests: 0,
            reassembled: 0,
            delivered: 0,
        }
    }

    /// The interface's address (prefix length) and default gateway, from DHCP.
    pub fn set_address(&mut self, addr: Option<(Ip4, u8)>, gateway: Option<Ip4>) {
        self.addr = addr;
        self.gateway = gateway;
    }

    fn context(&self, max_frame: usize, meta: RxMeta) -> Context {
        Context {
            addr: self.addr,
            max_frame,
            csum: meta.csum,
            gso: meta.gso_size.is_some(),
        }
    }

    /// Judges one frame from the ring (`meta`: its device header; `max_frame`: the
    /// longest frame the device may deliver) at time `now_ns`.
    pub fn admit(&mut self, frame: &[u8], meta: RxMeta, max_frame: usize, now_ns: u64) -> Admit {
        let admit = self.judge(frame, meta, max_frame, now_ns);
        self.delivered += u64::from(admit == Admit::Deliver);
        admit
    }

    fn judge(&mut self, frame: &[u8], meta: RxMeta, max_frame: usize, now_ns: u64) -> Admit {
        let ctx = self.context(max_frame, meta);
        match ingress::check(frame, &ctx) {
            Err(why) => self.drop(why),
            Ok(Frame::Other) => Admit::Deliver,
            Ok(Frame::Arp(arp)) => {
                let out = self.neigh.on_arp(&arp, &ctx, now_ns);
                self.outgoing.extend(out.send);
                // Released holds go to smoltcp after this ARP frame.
                self.ready.extend(self.neigh.take_ready());
                match out.deliver {
                    Ok(()) => Admit::Deliver,
                    Err(why) => self.drop(why),
                }
            }
            Ok(Frame::Ipv4(ip)) if ip.fragment => {
                let mut evicted = 0;
                let got = self.reasm.add(frame, now_ns, &mut evicted);
                self.dropped.dropped[Dropped::FragEvicted as usize] += evicted;
                match got {
                    Err(why) => self.drop(why),
                    Ok(None) => Admit::Consumed,
                    Ok(Some(whole)) => {
                        self.reassembled += 1;
                        self.admit_whole(whole, now_ns);
                        Admit::Consumed
                    }
                }
            }
            Ok(Frame::Ipv4(ip)) => {
                self.echo_requests += u64::from(ip.echo_request);
                match self.neigh.on_ipv4(frame, ip.src, ip.dst, &ctx, now_ns) {
                    Ok(()) => Admit::Deliver,
                    Err(ask) => {
                        self.outgoing.extend(ask);
                        Admit::Consumed
                    }
                }
            }
        }
    }

    /// A reassembled datagram: checked again (its transport checksum now), then queued
    /// for smoltcp or held like any datagram.
    fn admit_whole(&mut self, whole: Vec<u8>, now_ns: u64) {
        let meta = RxMeta {
            csum: RxCsum::Unchecked,
            ..RxMeta::PLAIN
        };
        let ctx = self.context(ingress::ETH_HEADER + 65_535, meta);
        match ingress::check(&whole, &ctx) {
            Ok(Frame::Ipv4(ip)) => {
                self.echo_requests += u64::from(ip.echo_request);
                match self.neigh.on_ipv4(&whole, ip.src, ip.dst, &ctx, now_ns) {
                    Ok(()) => self.ready.push_back(whole),
                    Err(ask) => self.outgoing.extend(ask),
                }
            }
            Ok(_) => self.ready.push_back(whole),
            Err(why) => {
                self.drop(why);
            }
        }
    }

    fn drop(&mut self, why: Dropped) -> Admit {
        self.dropped.count(why);
        Admit::Consumed
    }

    /// The next frame the gate made for smoltcp (reassembled, or released from a hold).
    pub fn next_ready(&mut self) -> Option<Vec<u8>> {
        let f = self.ready.pop_front()?;
        self.delivered += 1;
        Some(f)
    }

    /// Frames to transmit (ARP), in order.
    pub fn take_outgoing(&mut self) -> Vec<Vec<u8>> {
        core::mem::take(&mut self.outgoing)
    }

    /// The kernel is about to send to `dst`: asks for its next hop's MAC if unknown.
    pub fn solicit(&mut self, dst: Ip4, now_ns: u64) {
        let ctx = self.context(ingress::MAX_FRAME, RxMeta::PLAIN);
        let ask = self.neigh.solicit(dst, self.gateway, &ctx, now_ns);
        self.outgoing.extend(ask);
    }

    /// Timeouts: incomplete datagrams are dropped, held ones handed on.
    pub fn tick(&mut self, now_ns: u64) {
        let expired = self.reasm.expire(now_ns);
        self.dropped.dropped[Dropped::FragTimeout as usize] += expired;
        self.neigh.expire(now_ns);
        self.ready.extend(self.neigh.take_ready());
    }

    /// When `tick` next has something to do.
    pub fn next_timeout(&self) -> Option<u64> {
        match (self.reasm.next_timeout(), self.neigh.next_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The neighbour counters.
    pub fn neigh_stats(&self) -> NeighStats {
        self.neigh.stats
    }

    /// Datagrams being reassembled, and the fragment bytes held.
    pub fn reassembly(&self) -> (usize, usize) {
        (self.reasm.in_progress(), self.reasm.bytes())
    }

    /// Frames held while their sender is resolved.
    pub fn holding(&self) -> usize {
        self.neigh.holding()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ingress::{PROTO_ICMP, fold, sum};
    use crate::net::neigh::arp_frame;
    use std::vec;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const US: Ip4 = [192, 0, 2, 50];
    const GW: Ip4 = [192, 0, 2, 1];

    fn gate() -> Gate {
        let mut g = Gate::new(MAC);
        g.set_address(Some((US, 24)), Some(GW));
        g
    }

    /// An echo request from the gateway, fragment `offset..offset+len` of a `total`-byte
    /// ICMP message (`total == len`: unfragmented).
    fn echo_part(icmp: &[u8], offset: usize, len: usize, id: u16) -> Vec<u8> {
        let mut f = vec![];
        f.extend_from_slice(&MAC);
        f.extend_from_slice(&GW_MAC);
        f.extend_from_slice(&[8, 0]);
        let more = offset + len < icmp.len();
        let flags = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, PROTO_ICMP, 0, 0];
        ip[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&id.to_be_bytes());
        ip[6..8].copy_from_slice(&flags.to_be_bytes());
        ip.extend_from_slice(&GW);
        ip.extend_from_slice(&US);
        let c = !fold(sum(0, &ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&icmp[offset..offset + len]);
        f
    }

    fn icmp(len: usize) -> Vec<u8> {
        let mut p: Vec<u8> = (0..len).map(|i| i as u8).collect();
        p[..8].copy_from_slice(&[8, 0, 0, 0, 0, 7, 0, 1]);
        let c = !fold(sum(0, &p));
        p[2..4].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn learn_gateway(g: &mut Gate) {
        let reply = arp_frame(2, MAC, GW_MAC, GW, MAC, US);
        assert_eq!(g.admit(&reply, RxMeta::PLAIN, 1518, 0), Admit::Deliver);
    }

    #[test]
    fn a_ping_from_an_unknown_host_waits_for_arp_then_goes_on() {
        let mut g = gate();
        let ping = echo_part(&icmp(64), 0, 64, 1);
        assert_eq!(g.admit(&ping, RxMeta::PLAIN, 1518, 0), Admit::Consumed);
        let out = g.take_outgoing();
        assert_eq!(out.len(), 1, "one ARP request for the sender");
        assert_eq!(g.next_ready(), None);
        learn_gateway(&mut g);
        assert_eq!(
            g.next_ready(),
            Some(ping.clone()),
            "released after the reply"
        );
        assert_eq!(g.admit(&ping, RxMeta::PLAIN, 1518, 1), Admit::Deliver);
        assert_eq!(g.echo_requests, 2);
        assert_eq!(
            g.delivered, 3,
            "the ARP reply, the released ping, the second ping"
        );
    }

    #[test]
    fn fragments_come_out_whole_and_bad_ones_are_counted() {
        let mut g = gate();
        learn_gateway(&mut g);
        let m = icmp(3000);
        for (off, len) in [(2960, 40), (1480, 1480), (0, 1480)] {
            assert_eq!(
                g.admit(&echo_part(&m, off, len, 5), RxMeta::PLAIN, 1518, 10),
                Admit::Consumed
            );
        }
        let whole = g.next_ready().expect("reassembled");
        assert_eq!((whole.len(), &whole[34..]), (14 + 20 + 3000, m.as_slice()));
        assert_eq!((g.reassembled, g.echo_requests), (1, 1));
        // A corrupted datagram fails its (now checkable) transport checksum.
        let mut bad = m.clone();
        bad[2000] ^= 1;
        for (off, len) in [(0, 1480), (1480, 1480), (2960, 40)] {
            g.admit(&echo_part(&bad, off, len, 6), RxMeta::PLAIN, 1518, 20);
        }
        assert_eq!(g.next_ready(), None);
        assert_eq!(g.dropped.get(Dropped::L4Checksum), 1);
        // Never completed: dropped at the timeout.
        g.admit(&echo_part(&m, 0, 1480, 7), RxMeta::PLAIN, 1518, 30);
        assert_eq!(g.reassembly().0, 1);
        let t = g.next_timeout().unwrap();
        g.tick(t);
        assert_eq!(
            (g.reassembly(), g.dropped.get(Dropped::FragTimeout)),
            ((0, 0), 1)
        );
    }

    #[test]
    fn probes_are_answered_and_claims_dropped() {
        let mut g = gate();
        let probe = arp_frame(1, [0xff; 6], [2, 0, 0, 0, 0, 0x66], [0; 4], [0; 6], US);
        assert_eq!(g.admit(&probe, RxMeta::PLAIN, 1518, 0), Admit::Deliver);
        assert_eq!(g.take_outgoing().len(), 1);
        let claim = arp_frame(2, [0xff; 6], [2, 0, 0, 0, 0, 0x66], US, [0; 6], US);
        assert_eq!(g.admit(&claim, RxMeta::PLAIN, 1518, 0), Admit::Consumed);
        assert_eq!(g.dropped.get(Dropped::ArpConflict), 1);
        assert_eq!(g.neigh_stats().probes_answered, 1);
    }

    #[test]
    fn solicit_sends_an_arp_request_for_the_next_hop() {
        let mut g = gate();
        g.solicit([192, 0, 2, 5], 0);
        g.solicit([198, 51, 100, 1], 0);
        let out = g.take_outgoing();
        assert_eq!(out.len(), 2);
        assert_eq!(&out[0][38..42], &[192, 0, 2, 5]);
        assert_eq!(&out[1][38..42], &GW, "off-link: the gateway");
    }
}
