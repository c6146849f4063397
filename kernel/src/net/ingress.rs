//! The receive path's gate: every frame is checked before smoltcp sees it, and a bad one
//! is counted by reason and dropped.
//!
//! smoltcp drops malformed packets silently, answers some it should not (a broadcast
//! echo, a martian source, a source-routed datagram) and does not say why; a kernel that
//! must "count, reject, go on" needs to know. `check` validates the Ethernet frame, the
//! IPv4 header (version, IHL, options, header checksum, total length against the frame),
//! refuses martian sources (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7) and echo requests to a
//! broadcast or multicast address (RFC 1122 §3.2.2.6: "MAY be silently discarded"; a
//! host that answers is a smurf amplifier), and for unfragmented UDP, TCP and ICMP checks
//! the transport header and checksum (RFC 768, 793, 792; the internet checksum of RFC
//! 1071) unless the device vouched for it (`DATA_VALID`) or the packet never crossed a
//! wire (`NEEDS_CSUM`, whose checksum position must then be this packet's). ARP is parsed
//! for the neighbour logic (`neigh`). smoltcp is told not to verify received checksums
//! again (`stack/phy.rs`), so each byte is summed once. Pure and host-tested.

mod dropped;
pub mod options;
mod transport;

use drivers::virtio::net::RxCsum;

pub use dropped::{Dropped, IngressStats};
use transport::{check_transport, verifies};
pub use transport::{fold, sum, tcp_partial_checksum};

/// An IPv4 address as four octets (pure code does not depend on smoltcp's types).
pub type Ip4 = [u8; 4];

/// What the check needs to know about the interface and the packet's device header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context {
    /// Our address and prefix length, once configured.
    pub addr: Option<(Ip4, u8)>,
    /// The longest frame the device may deliver.
    pub max_frame: usize,
    /// What the device's header said about the transport checksum.
    pub csum: RxCsum,
    /// Whether the device's header marked a TCP segmentation-offload packet.
    pub gso: bool,
}

impl Context {
    /// A plain 1518-byte-MTU packet on an interface without an address.
    #[cfg(test)]
    pub const PLAIN: Context = Context {
        addr: None,
        max_frame: MAX_FRAME,
        csum: RxCsum::Unchecked,
        gso: false,
    };

    fn broadcast(&self) -> Option<Ip4> {
        let (a, len) = self.addr?;
        let host = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
        Some((u32::from_be_bytes(a) | host).to_be_bytes())
    }

    /// Whether `ip` is on our link (inside our prefix).
    pub fn on_link(&self, ip: Ip4) -> bool {
        self.addr.is_some_and(|(a, len)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from_be_bytes(a) & mask == u32::from_be_bytes(ip) & mask
        })
    }

    fn is_ours(&self, ip: Ip4) -> bool {
        self.addr.is_some_and(|(a, _)| a == ip)
    }
}

/// An IPv4 packet that passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Info {
    /// Source address.
    pub src: Ip4,
    /// Destination address.
    pub dst: Ip4,
    /// Transport protocol.
    pub proto: u8,
    /// A fragment (MF or an offset): reassemble before delivering.
    pub fragment: bool,
    /// An ICMP echo request (for the "answers pings" counter).
    pub echo_request: bool,
}

/// An Ethernet/IPv4 ARP packet (RFC 826).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpInfo {
    /// 1 request, 2 reply (others are passed on and ignored by smoltcp).
    pub op: u16,
    /// Sender hardware address.
    pub sha: [u8; 6],
    /// Sender protocol address (0.0.0.0 in an RFC 5227 probe).
    pub spa: Ip4,
    /// Target protocol address.
    pub tpa: Ip4,
}

/// What a frame is, once it passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// IPv4.
    Ipv4(Ipv4Info),
    /// ARP.
    Arp(ArpInfo),
    /// Another EtherType (IPv6, ...): smoltcp ignores what it does not speak.
    Other,
}

/// Ethernet header length.
pub const ETH_HEADER: usize = 14;
/// The longest frame without mergeable buffers: Ethernet + 1500 + a VLAN tag, no FCS.
pub const MAX_FRAME: usize = 1518;
pub(super) const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
/// ICMP.
pub const PROTO_ICMP: u8 = 1;
/// TCP.
pub const PROTO_TCP: u8 = 6;
/// UDP.
pub const PROTO_UDP: u8 = 17;

pub(super) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Checks one received Ethernet frame (no FCS) and says what it is.
pub fn check(frame: &[u8], ctx: &Context) -> Result<Frame, Dropped> {
    if frame.len() < ETH_HEADER {
        return Err(Dropped::Runt);
    }
    if frame.len() > ctx.max_frame {
        return Err(Dropped::Oversized);
    }
    let offloaded = ctx.gso || matches!(ctx.csum, RxCsum::Partial { .. });
    match be16(frame, 12) {
        ETHERTYPE_IPV4 => check_ipv4(&frame[ETH_HEADER..], ctx).map(Frame::Ipv4),
        _ if offloaded => Err(Dropped::BadOffload),
        ETHERTYPE_ARP => check_arp(&frame[ETH_HEADER..]).map(Frame::Arp),
        _ => Ok(Frame::Other),
    }
}

fn check_arp(arp: &[u8]) -> Result<ArpInfo, Dropped> {
    // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4.
    if arp.len() < 28 || arp[..6] != [0, 1, 8, 0, 6, 4] {
        return Err(Dropped::ArpMalformed);
    }
    let ip = |at: usize| [arp[at], arp[at + 1], arp[at + 2], arp[at + 3]];
    let mut sha = [0; 6];
    sha.copy_from_slice(&arp[8..14]);
    Ok(ArpInfo {
        op: be16(arp, 6),
        sha,
        spa: ip(14),
        tpa: ip(24),
    })
}

/// A source no host may use (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7).
fn martian(src: Ip4, ctx: &Context) -> bool {
    src[0] == 0
        || src[0] == 127
        || src[0] >= 224
        || ctx.is_ours(src)
        || ctx.broadcast() == Some(src)
}

/// A destination that reaches many hosts at once.
fn group(dst: Ip4, ctx: &Context) -> bool {
    dst == [255; 4] || (224..240).contains(&dst[0]) || ctx.broadcast() == Some(dst)
}

fn check_ipv4(ip: &[u8], ctx: &Context) -> Result<Ipv4Info, Dropped> {
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return Err(Dropped::IpHeader);
    }
    let ihl = usize::from(ip[0] & 0xf) * 4;
    if ihl < 20 || ihl > ip.len() {
        return Err(Dropped::IpHeader);
    }
    if !verifies(0, &ip[..ihl]) {
        return Err(Dropped::IpChecksum);
    }
    let total = usize::from(be16(ip, 2));
    if total < ihl || total > ip.len() {
        return Err(Dropped::IpLength);
    }
    options::check(&ip[20..ihl])?;
    let addr = |at: usize| [ip[at], ip[at + 1], ip[at + 2], ip[at + 3]];
    let (src, dst, proto) = (addr(12), addr(16), ip[9]);
    if martian(src, ctx) {
        return Err(Dropped::MartianSource);
    }
    let fragment = be16(ip, 6) & 0x3fff != 0; // MF or a fragment offset
    let payload = &ip[ihl..total];
    let echo_request = proto == PROTO_ICMP && !fragment && payload.first() == Some(&8);
    if proto == PROTO_ICMP
        && payload.first() == Some(&8)
        && be16(ip, 6) & 0x1fff == 0
        && group(dst, ctx)
    {
        return Err(Dropped::BroadcastEcho);
    }
    let info = Ipv4Info {
        src,
        dst,
        proto,
        fragment,
        echo_request,
    };
    if fragment {
        if ctx.gso || ctx.csum != RxCsum::Unchecked {
            return Err(Dropped::BadOffload);
        }
        return Ok(info); // the transport header is checked once reassembled
    }
    check_transport(ip, ihl, payload, ctx)?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_request_of_odd_length_checksums_to_all_ones() {
        // What the ICMP sockets send (stack/socket/task.rs): type 8, code 0, checksum 0,
        // identifier 0x1234, sequence 1, "hi!": an odd length, the last byte padded.
        let mut msg = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i', b'!'];
        let field = checksum(0, &msg);
        msg[2..4].copy_from_slice(&field.to_be_bytes());
        assert_eq!(fold(sum(0, &msg)), 0xffff);
        msg[10] ^= 1;
        assert_ne!(fold(sum(0, &msg)), 0xffff);
    }
    use std::vec::Vec;

    fn checksum(acc: u64, data: &[u8]) -> u16 {
        !fold(sum(acc, data))
    }

    const US: Ip4 = [192, 0, 2, 50];
    const LAB: Context = Context {
        addr: Some((US, 24)),
        ..Context::PLAIN
    };

    /// An Ethernet + IPv4 frame from `src` to `dst` carrying `proto`'s `l4` bytes with IP
    /// `options`, both checksums right (`l4_csum_at`: where the transport checksum goes).
    fn packet(
        src: Ip4,
        dst: Ip4,
        options: &[u8],
        proto: u8,
        l4: &[u8],
        l4_csum_at: Option<usize>,
    ) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56, 2, 0, 0, 0, 0, 1, 8, 0]);
        let ihl = 20 + options.len();
        let total = (ihl + l4.len()) as u16;
        let mut ip = std::vec![
            0x40 | (ihl / 4) as u8,
            0,
            0,
            0,
            0,
            1,
            0x40,
            0,
            64,
            proto,
            0,
            0
        ];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        ip.extend_from_slice(options);
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        let c = checksum(0, &ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut l4 = l4.to_vec();
        if let Some(at) = l4_csum_at {
            let pseudo = sum(0, &ip[12..20]) + u64::from(proto) + l4.len() as u64;
            let c = if proto == PROTO_ICMP {
                checksum(0, &l4)
            } else {
                checksum(pseudo, &l4)
            };
            l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        f.extend_from_slice(&l4);
        f
    }

    fn frame(proto: u8, l4: &[u8], l4_csum_at: Option<usize>) -> Vec<u8> {
        packet([192, 0, 2, 1], US, &[], proto, l4, l4_csum_at)
    }

    fn udp(payload: &[u8]) -> Vec<u8> {
        let mut u = std::vec![0x30, 0x39, 0, 9, 0, 0, 0, 0];
        u[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(payload);
        frame(PROTO_UDP, &u, Some(6))
    }

    fn echo(src: Ip4, dst: Ip4, options: &[u8]) -> Vec<u8> {
        packet(
            src,
            dst,
            options,
            PROTO_ICMP,
            &[8, 0, 0, 0, 0, 1, 0, 1, 0xab],
            Some(2),
        )
    }

    fn ok(f: &[u8]) -> Result<(), Dropped> {
        check(f, &LAB).map(|_| ())
    }

    #[test]
    fn good_udp_tcp_icmp_and_other_ethertypes_pass() {
        assert_eq!(ok(&udp(b"hello, odd")), Ok(()));
        assert_eq!(ok(&udp(b"even")), Ok(()));
        let mut tcp = std::vec![0u8; 20];
        tcp[12] = 5 << 4;
        tcp.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(ok(&frame(PROTO_TCP, &tcp, Some(16))), Ok(()));
        let e = echo([192, 0, 2, 1], US, &[]);
        let Ok(Frame::Ipv4(info)) = check(&e, &LAB) else {
            panic!("echo request refused")
        };
        assert!(info.echo_request && !info.fragment);
        assert_eq!(
            (info.src, info.dst, info.proto),
            ([192, 0, 2, 1], US, PROTO_ICMP)
        );
        let mut v6 = udp(b"x");
        v6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(
            check(&v6, &LAB),
            Ok(Frame::Other),
            "IPv6 is smoltcp's to ignore"
        );
        // Ethernet padding after the IP datagram is fine.
        let mut padded = udp(b"");
        padded.extend_from_slice(&[0; 18]);
        assert_eq!(ok(&padded), Ok(()));
        // UDP without a checksum.
        let mut none = udp(b"abc");
        none[14 + 20 + 6..14 + 20 + 8].fill(0);
        assert_eq!(ok(&none), Ok(()));
    }

    #[test]
    fn each_kind_of_damage_is_named() {
        let good = udp(b"payload!");
        let ip = 14;
        let l4 = 14 + 20;
        assert_eq!(ok(&good[..13]), Err(Dropped::Runt));
        assert_eq!(ok(&[0u8; 1519]), Err(Dropped::Oversized));
        let big = Context {
            max_frame: 65_553,
            ..LAB
        };
        assert_eq!(
            check(&[0u8; 1519], &big),
            Ok(Frame::Other),
            "with mergeable buffers"
        );
        assert_eq!(ok(&good[..ip + 19]), Err(Dropped::IpHeader));
        let mut v6 = good.clone();
        v6[ip] = 0x65;
        assert_eq!(ok(&v6), Err(Dropped::IpHeader));
        let mut ihl = good.clone();
        ihl[ip] = 0x44;
        assert_eq!(ok(&ihl), Err(Dropped::IpHeader));
        let mut ihl = good.clone();
        ihl[ip] = 0x4f; // 60 bytes of header in a 36-byte datagram
        assert_eq!(ok(&ihl), Err(Dropped::IpHeader));
        let mut csum = good.clone();
        csum[ip + 8] = 1; // TTL changed, checksum not
        assert_eq!(ok(&csum), Err(Dropped::IpChecksum));
        assert_eq!(ok(&good[..good.len() - 1]), Err(Dropped::IpLength));
        let mut udp_len = good.clone();
        udp_len[l4 + 4..l4 + 6].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(ok(&udp_len), Err(Dropped::L4Header));
        let mut udp_len = good.clone();
        udp_len[l4 + 4..l4 + 6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(ok(&udp_len), Err(Dropped::L4Header));
        let mut body = good.clone();
        *body.last_mut().unwrap() ^= 0x40;
        assert_eq!(ok(&body), Err(Dropped::L4Checksum));
        let mut tcp = std::vec![0u8; 20];
        tcp[12] = 4 << 4;
        assert_eq!(
            ok(&frame(PROTO_TCP, &tcp, Some(16))),
            Err(Dropped::L4Header)
        );
        tcp[12] = 5 << 4;
        let mut bad = frame(PROTO_TCP, &tcp, Some(16));
        bad[l4 + 16] ^= 1;
        assert_eq!(ok(&bad), Err(Dropped::L4Checksum));
        assert_eq!(
            ok(&frame(PROTO_ICMP, &[8, 0, 0], None)),
            Err(Dropped::L4Header)
        );
        let icmp = [8, 0, 0x12, 0x34, 0, 1, 0, 1];
        assert_eq!(
            ok(&frame(PROTO_ICMP, &icmp, None)),
            Err(Dropped::L4Checksum)
        );
    }

    #[test]
    fn options_are_validated_and_source_routes_refused() {
        let from = [192, 0, 2, 1];
        assert_eq!(ok(&echo(from, US, &[1, 1, 1, 0])), Ok(()), "NOPs and EOL");
        assert_eq!(
            ok(&echo(from, US, &[7, 7, 4, 0, 0, 0, 0, 0])),
            Ok(()),
            "record route"
        );
        assert_eq!(ok(&echo(from, US, &[7, 0, 4, 0])), Err(Dropped::IpOptions));
        assert_eq!(ok(&echo(from, US, &[0xff; 40])), Err(Dropped::IpOptions));
        assert_eq!(
            ok(&echo(from, US, &[131, 7, 4, 192, 0, 2, 9, 0])),
            Err(Dropped::SourceRoute)
        );
    }

    #[test]
    fn martian_sources_are_refused() {
        for src in [
            [127, 0, 0, 1],
            [0, 0, 0, 0],
            [0, 1, 2, 3],
            [224, 0, 0, 1],
            [239, 1, 1, 1],
            [240, 0, 0, 1],
            [255; 4],
            US,
            [192, 0, 2, 255],
        ] {
            assert_eq!(
                ok(&echo(src, US, &[])),
                Err(Dropped::MartianSource),
                "{src:?}"
            );
        }
        assert_eq!(
            check(&echo([192, 0, 2, 255], US, &[]), &Context::PLAIN).map(|_| ()),
            Ok(()),
            "no address: no subnet broadcast yet"
        );
        assert_eq!(
            ok(&echo([10, 0, 2, 2], US, &[])),
            Ok(()),
            "off-link unicast is fine"
        );
    }

    #[test]
    fn echo_requests_to_a_group_address_are_ignored() {
        let from = [192, 0, 2, 1];
        for dst in [[255; 4], [192, 0, 2, 255], [224, 0, 0, 1]] {
            assert_eq!(
                ok(&echo(from, dst, &[])),
                Err(Dropped::BroadcastEcho),
                "{dst:?}"
            );
        }
        // Other datagrams to the broadcast address (DHCP) pass.
        let mut d = udp(b"dhcp");
        d[14 + 16..14 + 20].copy_from_slice(&[255; 4]);
        d[14 + 10..14 + 12].fill(0);
        let c = checksum(0, &d[14..34]);
        d[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
        d[14 + 20 + 6..14 + 20 + 8].fill(0);
        assert_eq!(ok(&d), Ok(()));
    }

    #[test]
    fn device_checked_and_partial_checksums() {
        let mut tcp = std::vec![0u8; 20];
        tcp[12] = 5 << 4;
        tcp.extend_from_slice(b"data");
        let mut f = frame(PROTO_TCP, &tcp, None); // checksum field holds anything
        f[14 + 20 + 16] = 0x12;
        assert_eq!(ok(&f), Err(Dropped::L4Checksum));
        let valid = Context {
            csum: RxCsum::Valid,
            ..LAB
        };
        assert_eq!(check(&f, &valid).map(|_| ()), Ok(()));
        let partial = |start, offset| Context {
            csum: RxCsum::Partial { start, offset },
            ..LAB
        };
        assert_eq!(check(&f, &partial(34, 16)).map(|_| ()), Ok(()));
        assert_eq!(
            check(&f, &partial(34, 6)).map(|_| ()),
            Err(Dropped::BadOffload),
            "UDP's field in TCP"
        );
        assert_eq!(
            check(&f, &partial(30, 16)).map(|_| ()),
            Err(Dropped::BadOffload)
        );
        let seg = Context {
            gso: true,
            ..partial(34, 16)
        };
        assert_eq!(check(&f, &seg).map(|_| ()), Ok(()));
        let mut u = udp(b"abc");
        u[14 + 20 + 6] ^= 0xff;
        assert_eq!(check(&u, &partial(34, 6)).map(|_| ()), Ok(()));
        let useg = Context {
            gso: true,
            ..partial(34, 6)
        };
        assert_eq!(
            check(&u, &useg).map(|_| ()),
            Err(Dropped::BadOffload),
            "only TCP is segmented"
        );
        assert_eq!(
            check(&echo([192, 0, 2, 1], US, &[]), &partial(34, 2)).map(|_| ()),
            Err(Dropped::BadOffload)
        );
        let mut arp = arp_frame(1, [192, 0, 2, 1], US);
        arp.truncate(42);
        assert_eq!(check(&arp, &partial(34, 6)), Err(Dropped::BadOffload));
    }

    fn arp_frame(op: u16, spa: Ip4, tpa: Ip4) -> Vec<u8> {
        let mut f = std::vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 8, 6, 0, 1, 8, 0, 6, 4]);
        f.extend_from_slice(&op.to_be_bytes());
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&spa);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&tpa);
        f.resize(60, 0);
        f
    }

    #[test]
    fn arp_is_parsed() {
        let f = arp_frame(1, [0; 4], US);
        assert_eq!(
            check(&f, &LAB),
            Ok(Frame::Arp(ArpInfo {
                op: 1,
                sha: [2, 0, 0, 0, 0, 1],
                spa: [0; 4],
                tpa: US
            }))
        );
        assert_eq!(check(&f[..41], &LAB), Err(Dropped::ArpMalformed));
        let mut ipv6 = f.clone();
        ipv6[16..18].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(check(&ipv6, &LAB), Err(Dropped::ArpMalformed));
    }

    #[test]
    fn fragments_skip_the_transport_check() {
        let mut f = udp(b"first fragment");
        // Set MF and fix the IP checksum; the UDP checksum covers the whole datagram,
        // which is not here, so it must not be judged.
        f[14 + 6] |= 0x20;
        f[14 + 10..14 + 12].fill(0);
        let c = checksum(0, &f[14..34]);
        f[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
        *f.last_mut().unwrap() ^= 1;
        let Ok(Frame::Ipv4(info)) = check(&f, &LAB) else {
            panic!("fragment refused")
        };
        assert!(info.fragment);
        let valid = Context {
            csum: RxCsum::Valid,
            ..LAB
        };
        assert_eq!(
            check(&f, &valid),
            Err(Dropped::BadOffload),
            "a device cannot vouch for a fragment"
        );
    }

    #[test]
    fn a_udp_length_shorter_than_the_ip_payload_is_summed_over_its_own_length() {
        // The sender padded the IP payload past UDP's length (legal); the checksum covers
        // UDP's length only.
        let mut u = std::vec![0x30, 0x39, 0, 9, 0, 11, 0, 0, b'a', b'b', b'c'];
        let pseudo = sum(0, &[192, 0, 2, 1, 192, 0, 2, 50]) + u64::from(PROTO_UDP) + 11;
        let c = checksum(pseudo, &u);
        u[6..8].copy_from_slice(&c.to_be_bytes());
        u.extend_from_slice(&[0xee; 5]);
        assert_eq!(ok(&frame(PROTO_UDP, &u, None)), Ok(()));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let ctxs = [
            Context::PLAIN,
            LAB,
            Context {
                csum: RxCsum::Partial {
                    start: 34,
                    offset: 16,
                },
                gso: true,
                max_frame: 65_553,
                ..LAB
            },
        ];
        for len in 0..400 {
            let mut f: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            if len > 14 {
                f[12..14].copy_from_slice(&[8, if len % 3 == 0 { 6 } else { 0 }]);
                f[14] = 0x45 + (len % 11) as u8;
            }
            for ctx in &ctxs {
                let _ = check(&f, ctx);
            }
        }
    }

    #[test]
    fn tcp_checksums_for_transmission() {
        let mut tcp = std::vec![0u8; 20];
        tcp[12] = 5 << 4;
        tcp.extend_from_slice(b"segment data");
        let right = frame(PROTO_TCP, &tcp, Some(16));
        let mut soft = right.clone();
        soft[14 + 20 + 16..14 + 20 + 18].fill(0);
        assert_eq!(tcp_partial_checksum(&mut soft, false), None);
        assert_eq!(soft, right, "completed in software");
        let mut partial = soft.clone();
        partial[14 + 20 + 16..14 + 20 + 18].fill(0);
        assert_eq!(tcp_partial_checksum(&mut partial, true), Some((34, 16)));
        // What the device then does (sum from csum_start, complement, store) gives the
        // right checksum.
        let c = !fold(sum(0, &partial[34..]));
        partial[34 + 16..34 + 18].copy_from_slice(&c.to_be_bytes());
        assert_eq!(partial, right);
        let mut other = udp(b"x");
        let before = other.clone();
        assert_eq!(tcp_partial_checksum(&mut other, true), None);
        assert_eq!(other, before);
        assert_eq!(tcp_partial_checksum(&mut [0u8; 20], true), None);
    }
}
