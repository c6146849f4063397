//! Neighbours: first contact in one ARP round trip, no reply lost to ARP, our address
//! defended.
//!
//! smoltcp sends at most one ARP request a second per interface and keeps no packet
//! while it waits: three new neighbours contacted at once cost a second each after the
//! first, and the echo reply (or TCP reset, or UDP answer) to a peer whose MAC it does
//! not know yet is simply lost. It also ignores RFC 5227 probes for its own address, so
//! a host joining the link believes our address is free. This module works around all
//! three from outside smoltcp, with the frames smoltcp already sees:
//!
//! - It mirrors smoltcp's neighbour cache from the same input (ARP requests and replies
//!   aimed at us, from a unicast sender on our subnet; `process_arp` fills on exactly
//!   those), so it knows which neighbours smoltcp lacks.
//! - For a neighbour the kernel is about to contact (a session or ping's next hop) it
//!   sends an ARP request itself, each address at most once a second ([`ASK_EVERY_NS`]),
//!   at most [`MAX_ASKING`] at once: smoltcp's own request goes out for one of them, and
//!   the replies to all of them fill its cache within one round trip.
//! - An IPv4 datagram to us from an on-link host we do not know is held (a copy, at
//!   most [`MAX_HELD`] in all and [`MAX_HELD_PER_HOST`] per host, as RFC 1122 §2.3.2.2
//!   asks a link layer to keep "at least one" packet per unresolved address) while an
//!   ARP request asks for the sender; the reply reaches smoltcp first, then the held
//!   datagram, whose answer now goes out at once. Held frames are handed on unanswered
//!   after [`HOLD_NS`], never dropped.
//! - A probe for our address (sender 0.0.0.0, target ours) is answered with an ARP
//!   reply, as Linux does; an ARP packet that claims our address from another MAC is
//!   not given to smoltcp (it would learn our address at a foreign MAC) and is answered
//!   with an announcement, at most once per [`DEFEND_INTERVAL_NS`] (RFC 5227 §2.4).
//!
//! Pure and host-tested; the net task feeds it frames and time and sends what it returns.

use alloc::vec::Vec;

use super::ingress::{ArpInfo, Context, Dropped, Ip4};

/// Neighbours remembered (least recently seen forgotten first).
pub const MAX_KNOWN: usize = 64;
/// Addresses being asked for at once.
pub const MAX_ASKING: usize = 16;
/// The same address is asked for at most this often.
pub const ASK_EVERY_NS: u64 = 1_000_000_000;
/// Datagrams held while their sender is resolved, in all.
pub const MAX_HELD: usize = 16;
/// Datagrams held per sender.
pub const MAX_HELD_PER_HOST: usize = 4;
/// How long a datagram is held before it is handed on anyway.
pub const HOLD_NS: u64 = 1_000_000_000;
/// How long a learned neighbour is trusted without news (smoltcp keeps them 60 s).
pub const KNOWN_NS: u64 = 50_000_000_000;
/// At most one announcement per this interval when our address is claimed (RFC 5227).
pub const DEFEND_INTERVAL_NS: u64 = 10_000_000_000;

const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;

/// What the neighbour logic did, for the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighStats {
    /// ARP requests the kernel sent itself.
    pub asked: u64,
    /// Datagrams held while their sender was resolved.
    pub held: u64,
    /// Held datagrams handed on because the sender answered.
    pub released: u64,
    /// Held datagrams handed on unanswered after `HOLD_NS`.
    pub expired: u64,
    /// RFC 5227 probes for our address answered.
    pub probes_answered: u64,
    /// Announcements sent because another host claimed our address.
    pub defended: u64,
}

struct Known {
    ip: Ip4,
    mac: [u8; 6],
    seen_ns: u64,
}

struct Asking {
    ip: Ip4,
    at_ns: u64,
}

struct Held {
    from: Ip4,
    since_ns: u64,
    frame: Vec<u8>,
}

/// What to do with an ARP packet.
#[derive(Debug, PartialEq, Eq)]
pub struct ArpOutcome {
    /// Hand it to smoltcp (else it is dropped for the reason given).
    pub deliver: Result<(), Dropped>,
    /// A frame to send (a reply to a probe, an announcement).
    pub send: Option<Vec<u8>>,
}

/// The neighbour state of one interface.
pub struct Neighbours {
    mac: [u8; 6],
    known: Vec<Known>,
    asking: Vec<Asking>,
    held: Vec<Held>,
    /// Frames released and ready for smoltcp, oldest first.
    ready: Vec<Vec<u8>>,
    last_defence_ns: Option<u64>,
    /// Counters.
    pub stats: NeighStats,
}

impl Neighbours {
    /// The neighbour state of an interface with MAC `mac`.
    pub fn new(mac: [u8; 6]) -> Self {
        Neighbours {
            mac,
            known: Vec::new(),
            asking: Vec::new(),
            held: Vec::new(),
            ready: Vec::new(),
            last_defence_ns: None,
            stats: NeighStats::default(),
        }
    }

    /// Whether `ip` is known (its MAC learned from ARP in the last `KNOWN_NS`).
    pub fn knows(&self, ip: Ip4, now_ns: u64) -> bool {
        self.known
            .iter()
            .any(|k| k.ip == ip && now_ns.saturating_sub(k.seen_ns) < KNOWN_NS)
    }

    /// Frames to hand to smoltcp now (released holds), oldest first.
    pub fn take_ready(&mut self) -> Vec<Vec<u8>> {
        core::mem::take(&mut self.ready)
    }

    /// Datagrams currently held.
    pub fn holding(&self) -> usize {
        self.held.len()
    }

    /// An ARP packet `ingress::check` accepted.
    pub fn on_arp(&mut self, arp: &ArpInfo, ctx: &Context, now_ns: u64) -> ArpOutcome {
        let deliver = ArpOutcome {
            deliver: Ok(()),
            send: None,
        };
        let Some((us, _)) = ctx.addr else {
            return deliver;
        };
        if arp.sha == self.mac {
            return deliver;
        }
        if arp.spa == us {
            // Someone else claims our address: keep smoltcp from learning it, defend.
            let due = self
                .last_defence_ns
                .is_none_or(|t| now_ns.saturating_sub(t) >= DEFEND_INTERVAL_NS);
            let send = due.then(|| {
                self.last_defence_ns = Some(now_ns);
                self.stats.defended += 1;
                arp_frame(ARP_REQUEST, [0xff; 6], self.mac, us, [0; 6], us)
            });
            return ArpOutcome {
                deliver: Err(Dropped::ArpConflict),
                send,
            };
        }
        if arp.op == ARP_REQUEST && arp.spa == [0; 4] && arp.tpa == us {
            // An RFC 5227 probe for our address: say it is taken.
            self.stats.probes_answered += 1;
            return ArpOutcome {
                deliver: Ok(()),
                send: Some(arp_frame(ARP_REPLY, arp.sha, self.mac, us, arp.sha, [0; 4])),
            };
        }
        let unicast = arp.sha[0] & 1 == 0 && arp.spa != [0; 4] && arp.spa != [255; 4];
        if arp.tpa == us
            && (arp.op == ARP_REQUEST || arp.op == ARP_REPLY)
            && unicast
            && ctx.on_link(arp.spa)
        {
            self.learn(arp.spa, arp.sha, now_ns);
        }
        deliver
    }

    fn learn(&mut self, ip: Ip4, mac: [u8; 6], now_ns: u64) {
        self.asking.retain(|a| a.ip != ip);
        match self.known.iter_mut().find(|k| k.ip == ip) {
            Some(k) => {
                k.mac = mac;
                k.seen_ns = now_ns;
            }
            None => {
                if self.known.len() >= MAX_KNOWN
                    && let Some(i) = (0..self.known.len()).min_by_key(|&i| self.known[i].seen_ns)
                {
                    self.known.swap_remove(i);
                }
                self.known.push(Known {
                    ip,
                    mac,
                    seen_ns: now_ns,
                });
            }
        }
        // Everything held for this sender can be answered now.
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].from == ip {
                let h = self.held.remove(i);
                self.ready.push(h.frame);
                self.stats.released += 1;
            } else {
                i += 1;
            }
        }
    }

    /// An IPv4 datagram to us that passed the checks. `Ok(())`: hand it on now. `Err`:
    /// it was held (copied; the caller may reuse its buffer), and `send` is an ARP request
    /// to transmit, if one is due.
    pub fn on_ipv4(
        &mut self,
        frame: &[u8],
        src: Ip4,
        dst: Ip4,
        ctx: &Context,
        now_ns: u64,
    ) -> Result<(), Option<Vec<u8>>> {
        let Some((us, _)) = ctx.addr else {
            return Ok(());
        };
        if dst != us || !ctx.on_link(src) {
            return Ok(());
        }
        let mac: [u8; 6] = frame[6..12].try_into().unwrap_or([0; 6]);
        if let Some(k) = self.known.iter_mut().find(|k| k.ip == src && k.mac == mac)
            && now_ns.saturating_sub(k.seen_ns) < KNOWN_NS
        {
            k.seen_ns = now_ns; // smoltcp extends its entry on traffic too
            return Ok(());
        }
        let per_host = self.held.iter().filter(|h| h.from == src).count();
        if self.held.len() >= MAX_HELD || per_host >= MAX_HELD_PER_HOST {
            return Ok(()); // never dropped: without room it goes on unheld
        }
        self.held.push(Held {
            from: src,
            since_ns: now_ns,
            frame: frame.to_vec(),
        });
        self.stats.held += 1;
        Err(self.ask(src, us, now_ns))
    }

    /// The kernel is about to send to `dst` (through `gateway` if off-link): an ARP request
    /// for the next hop if it is not known and not asked for recently.
    pub fn solicit(
        &mut self,
        dst: Ip4,
        gateway: Option<Ip4>,
        ctx: &Context,
        now_ns: u64,
    ) -> Option<Vec<u8>> {
        let (us, _) = ctx.addr?;
        let hop = if ctx.on_link(dst) { dst } else { gateway? };
        if hop == us || hop[0] == 127 || hop[0] >= 224 || self.knows(hop, now_ns) {
            return None;
        }
        self.ask(hop, us, now_ns)
    }

    fn ask(&mut self, ip: Ip4, us: Ip4, now_ns: u64) -> Option<Vec<u8>> {
        self.asking
            .retain(|a| now_ns.saturating_sub(a.at_ns) < ASK_EVERY_NS);
        if self.asking.iter().any(|a| a.ip == ip) || self.asking.len() >= MAX_ASKING {
            return None;
        }
        self.asking.push(Asking { ip, at_ns: now_ns });
        self.stats.asked += 1;
        Some(arp_frame(ARP_REQUEST, [0xff; 6], self.mac, us, [0; 6], ip))
    }

    /// Hands on datagrams held longer than `HOLD_NS` (to `take_ready`).
    pub fn expire(&mut self, now_ns: u64) {
        let mut i = 0;
        while i < self.held.len() {
            if now_ns.saturating_sub(self.held[i].since_ns) >= HOLD_NS {
                let h = self.held.remove(i);
                self.ready.push(h.frame);
                self.stats.expired += 1;
            } else {
                i += 1;
            }
        }
    }

    /// When the oldest held datagram is due (`None`: nothing held).
    pub fn next_timeout(&self) -> Option<u64> {
        self.held
            .iter()
            .map(|h| h.since_ns.saturating_add(HOLD_NS))
            .min()
    }
}

/// An Ethernet/IPv4 ARP frame (RFC 826), 42 bytes (the device pads it).
pub fn arp_frame(
    op: u16,
    eth_dst: [u8; 6],
    sha: [u8; 6],
    spa: Ip4,
    tha: [u8; 6],
    tpa: Ip4,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ingress::{Frame, check};

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    const US: Ip4 = [192, 0, 2, 50];
    const GW: Ip4 = [192, 0, 2, 1];
    const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const CTX: Context = Context {
        addr: Some((US, 24)),
        ..Context::PLAIN
    };

    fn arp(op: u16, sha: [u8; 6], spa: Ip4, tpa: Ip4) -> ArpInfo {
        let f = arp_frame(op, [0xff; 6], sha, spa, [0; 6], tpa);
        match check(&f, &CTX) {
            Ok(Frame::Arp(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    fn ipv4_from(src: Ip4, mac: [u8; 6]) -> Vec<u8> {
        let mut f = std::vec![0u8; 42];
        f[..6].copy_from_slice(&MAC);
        f[6..12].copy_from_slice(&mac);
        f[12..14].copy_from_slice(&[8, 0]);
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&US);
        f
    }

    #[test]
    fn arp_frames_are_what_rfc_826_says() {
        let f = arp_frame(ARP_REQUEST, [0xff; 6], MAC, US, [0; 6], GW);
        assert_eq!(f.len(), 42);
        assert_eq!(&f[12..22], &[8, 6, 0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(
            check(&f, &CTX),
            Ok(Frame::Arp(ArpInfo {
                op: 1,
                sha: MAC,
                spa: US,
                tpa: GW
            }))
        );
    }

    #[test]
    fn a_datagram_from_an_unknown_neighbour_waits_for_its_arp_reply() {
        let mut n = Neighbours::new(MAC);
        let ping = ipv4_from(GW, GW_MAC);
        let asked = n.on_ipv4(&ping, GW, US, &CTX, 0).expect_err("held");
        let req = asked.expect("an ARP request for the sender");
        assert_eq!(
            check(&req, &CTX),
            Ok(Frame::Arp(ArpInfo {
                op: 1,
                sha: MAC,
                spa: US,
                tpa: GW
            }))
        );
        assert_eq!(n.holding(), 1);
        // A second one from the same host is held too, without another request.
        assert_eq!(n.on_ipv4(&ping, GW, US, &CTX, 10), Err(None));
        // The reply releases both, after itself.
        let out = n.on_arp(&arp(ARP_REPLY, GW_MAC, GW, US), &CTX, 20);
        assert_eq!(
            out,
            ArpOutcome {
                deliver: Ok(()),
                send: None
            }
        );
        assert_eq!(n.take_ready(), [ping.clone(), ping.clone()]);
        assert_eq!(n.on_ipv4(&ping, GW, US, &CTX, 30), Ok(()), "known now");
        assert_eq!((n.stats.held, n.stats.released, n.stats.asked), (2, 2, 1));
        // A new MAC for a known address is asked about again.
        assert!(
            n.on_ipv4(&ipv4_from(GW, [2, 0, 0, 0, 0, 9]), GW, US, &CTX, 40)
                .is_err()
        );
    }

    #[test]
    fn held_datagrams_go_on_after_the_hold_and_room_is_bounded() {
        let mut n = Neighbours::new(MAC);
        let from = |i: u8| [192, 0, 2, 100 + i];
        for i in 0..(MAX_HELD as u8 + 4) {
            let f = ipv4_from(from(i), GW_MAC);
            let r = n.on_ipv4(&f, from(i), US, &CTX, 0);
            assert_eq!(r.is_err(), usize::from(i) < MAX_HELD, "{i}");
        }
        for _ in 0..MAX_HELD_PER_HOST {
            let _ = n.on_ipv4(&ipv4_from(from(0), GW_MAC), from(0), US, &CTX, 0);
        }
        assert_eq!(n.holding(), MAX_HELD);
        assert_eq!(n.next_timeout(), Some(HOLD_NS));
        n.expire(HOLD_NS - 1);
        assert!(n.take_ready().is_empty());
        n.expire(HOLD_NS);
        assert_eq!(n.take_ready().len(), MAX_HELD);
        assert_eq!((n.holding(), n.stats.expired), (0, MAX_HELD as u64));
        // Off-link sources, other destinations and an unconfigured interface are not held.
        assert_eq!(
            n.on_ipv4(
                &ipv4_from([10, 0, 0, 1], GW_MAC),
                [10, 0, 0, 1],
                US,
                &CTX,
                0
            ),
            Ok(())
        );
        assert_eq!(
            n.on_ipv4(&ipv4_from(GW, GW_MAC), GW, [192, 0, 2, 255], &CTX, 0),
            Ok(())
        );
        assert_eq!(
            n.on_ipv4(&ipv4_from(GW, GW_MAC), GW, US, &Context::PLAIN, 0),
            Ok(())
        );
    }

    #[test]
    fn three_new_neighbours_are_asked_for_at_once_each_once_a_second() {
        let mut n = Neighbours::new(MAC);
        let hosts = [[192, 0, 2, 5], [192, 0, 2, 6], [192, 0, 2, 7]];
        for h in hosts {
            assert!(n.solicit(h, Some(GW), &CTX, 0).is_some(), "{h:?}");
        }
        assert!(
            n.solicit(hosts[0], Some(GW), &CTX, 500_000_000).is_none(),
            "asked recently"
        );
        assert!(n.solicit(hosts[0], Some(GW), &CTX, ASK_EVERY_NS).is_some());
        // Off-link goes to the gateway; the gateway once known is not asked for.
        assert_eq!(
            n.solicit([10, 0, 0, 9], Some(GW), &CTX, 0)
                .map(|f| f[38..42].to_vec()),
            Some(GW.to_vec())
        );
        n.on_arp(&arp(ARP_REPLY, GW_MAC, GW, US), &CTX, 1);
        assert!(
            n.solicit([10, 0, 0, 9], Some(GW), &CTX, 2 * ASK_EVERY_NS)
                .is_none()
        );
        assert!(
            n.solicit([10, 0, 0, 9], None, &CTX, 0).is_none(),
            "no route"
        );
        assert!(n.solicit(US, Some(GW), &CTX, 0).is_none());
        assert!(
            n.solicit([192, 0, 2, 9], Some(GW), &Context::PLAIN, 0)
                .is_none(),
            "no address"
        );
        // Known entries age out.
        assert!(n.solicit(GW, Some(GW), &CTX, 1 + KNOWN_NS).is_some());
        // The asking list is bounded.
        let mut n = Neighbours::new(MAC);
        let asked = (0..40)
            .filter(|i| n.solicit([192, 0, 2, 100 + i], None, &CTX, 0).is_some())
            .count();
        assert_eq!(asked, MAX_ASKING);
    }

    #[test]
    fn our_address_is_defended() {
        let mut n = Neighbours::new(MAC);
        let other = [2, 0, 0, 0, 0, 0x66];
        // A probe: answered with a reply to the prober, sender = our address.
        let out = n.on_arp(&arp(ARP_REQUEST, other, [0; 4], US), &CTX, 0);
        let reply = out.send.expect("a reply");
        assert_eq!(&reply[..6], &other);
        assert_eq!(
            check(&reply, &CTX),
            Ok(Frame::Arp(ArpInfo {
                op: 2,
                sha: MAC,
                spa: US,
                tpa: [0; 4]
            }))
        );
        assert_eq!(n.stats.probes_answered, 1);
        // A claim on our address: not delivered, one announcement per interval.
        for (t, announce) in [(0, true), (1, false), (DEFEND_INTERVAL_NS, true)] {
            let out = n.on_arp(&arp(ARP_REPLY, other, US, US), &CTX, t);
            assert_eq!(out.deliver, Err(Dropped::ArpConflict));
            assert_eq!(out.send.is_some(), announce, "at {t}");
        }
        assert_eq!(n.stats.defended, 2);
        // Our own frames and an unconfigured interface are left alone.
        assert!(
            n.on_arp(&arp(ARP_REQUEST, MAC, US, US), &CTX, 0)
                .send
                .is_none()
        );
        assert!(
            n.on_arp(&arp(ARP_REQUEST, other, [0; 4], US), &Context::PLAIN, 0)
                .send
                .is_none()
        );
    }

    #[test]
    fn only_what_smoltcp_learns_from_is_learned() {
        let mut n = Neighbours::new(MAC);
        n.on_arp(&arp(ARP_REQUEST, GW_MAC, GW, [192, 0, 2, 9]), &CTX, 0);
        assert!(!n.knows(GW, 0), "aimed at another host");
        n.on_arp(&arp(ARP_REQUEST, GW_MAC, [10, 0, 0, 1], US), &CTX, 0);
        assert!(!n.knows([10, 0, 0, 1], 0), "off our subnet");
        n.on_arp(&arp(ARP_REQUEST, [3, 0, 0, 0, 0, 1], GW, US), &CTX, 0);
        assert!(!n.knows(GW, 0), "multicast sender MAC");
        n.on_arp(&arp(ARP_REQUEST, GW_MAC, GW, US), &CTX, 0);
        assert!(n.knows(GW, 0));
        for i in 0..(MAX_KNOWN as u8 + 10) {
            n.on_arp(
                &arp(ARP_REPLY, GW_MAC, [192, 0, 2, 100 + i], US),
                &CTX,
                u64::from(i) + 1,
            );
        }
        assert_eq!(n.known.len(), MAX_KNOWN);
    }
}
