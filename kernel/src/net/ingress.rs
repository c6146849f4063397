//! The receive path's gate: every frame is checked before smoltcp sees it, and a bad one
//! is counted by reason and dropped.
//!
//! smoltcp drops malformed packets silently; a kernel that must "count, reject, go on"
//! needs to know why. `check` validates the Ethernet frame, the IPv4 header (version,
//! IHL, header checksum, total length against the frame) and, for unfragmented UDP, TCP
//! and ICMP, the transport header and its checksum (RFC 791, 768, 793, 792; the internet
//! checksum of RFC 1071). smoltcp is then told not to verify received checksums again
//! (`stack.rs`), so each byte is summed once. Other EtherTypes (ARP, IPv6) pass through:
//! smoltcp parses ARP with its own length checks and ignores what it does not speak.

/// Why a frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than an Ethernet header.
    Runt = 0,
    /// Longer than a VLAN-tagged Ethernet frame without FCS (1518 bytes).
    Oversized = 1,
    /// IPv4 header shorter than 20 bytes, not version 4, or IHL out of range.
    IpHeader = 2,
    /// IPv4 header checksum wrong.
    IpChecksum = 3,
    /// IPv4 total length shorter than the header or longer than the frame.
    IpLength = 4,
    /// UDP/TCP/ICMP header truncated or its length fields inconsistent.
    L4Header = 5,
    /// UDP/TCP/ICMP checksum wrong.
    L4Checksum = 6,
}

impl Malformed {
    /// Number of reasons (size of a counter array).
    pub const COUNT: usize = 7;
    /// Every reason, in counter order.
    pub const ALL: [Malformed; Self::COUNT] = [
        Self::Runt,
        Self::Oversized,
        Self::IpHeader,
        Self::IpChecksum,
        Self::IpLength,
        Self::L4Header,
        Self::L4Checksum,
    ];

    /// Short name for counters and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Runt => "runt",
            Self::Oversized => "oversized",
            Self::IpHeader => "ip-header",
            Self::IpChecksum => "ip-checksum",
            Self::IpLength => "ip-length",
            Self::L4Header => "l4-header",
            Self::L4Checksum => "l4-checksum",
        }
    }
}

/// Dropped frames per reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngressStats {
    /// Indexed by `Malformed as usize`.
    pub dropped: [u64; Malformed::COUNT],
}

impl IngressStats {
    /// Counts one drop.
    pub fn count(&mut self, why: Malformed) {
        self.dropped[why as usize] += 1;
    }

    /// Drops for one reason.
    pub fn get(&self, why: Malformed) -> u64 {
        self.dropped[why as usize]
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

const ETH_HEADER: usize = 14;
const MAX_FRAME: usize = 1518;
const ETHERTYPE_IPV4: u16 = 0x0800;
const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// The ones'-complement sum of `data` (RFC 1071), added to `acc`, unfolded. Sums 32-bit
/// big-endian words (two 16-bit words at once: the carries fold back the same way).
fn sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let mut pairs = words.remainder().chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Whether `data` (checksum field included) sums to all ones, i.e. its checksum is right.
fn verifies(acc: u64, data: &[u8]) -> bool {
    fold(sum(acc, data)) == 0xffff
}

/// Checks one received Ethernet frame (no FCS).
pub fn check(frame: &[u8]) -> Result<(), Malformed> {
    if frame.len() < ETH_HEADER {
        return Err(Malformed::Runt);
    }
    if frame.len() > MAX_FRAME {
        return Err(Malformed::Oversized);
    }
    if be16(frame, 12) != ETHERTYPE_IPV4 {
        return Ok(());
    }
    check_ipv4(&frame[ETH_HEADER..])
}

fn check_ipv4(ip: &[u8]) -> Result<(), Malformed> {
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return Err(Malformed::IpHeader);
    }
    let ihl = usize::from(ip[0] & 0xf) * 4;
    if ihl < 20 || ihl > ip.len() {
        return Err(Malformed::IpHeader);
    }
    if !verifies(0, &ip[..ihl]) {
        return Err(Malformed::IpChecksum);
    }
    let total = usize::from(be16(ip, 2));
    if total < ihl || total > ip.len() {
        return Err(Malformed::IpLength);
    }
    let fragmented = be16(ip, 6) & 0x3fff != 0; // MF or a fragment offset
    if fragmented {
        return Ok(()); // the transport header is checked once reassembled, by smoltcp
    }
    let payload = &ip[ihl..total];
    let pseudo = || {
        let acc = sum(0, &ip[12..20]); // source and destination addresses
        acc + u64::from(ip[9]) + payload.len() as u64
    };
    match ip[9] {
        PROTO_UDP => check_udp(payload, pseudo()),
        PROTO_TCP => check_tcp(payload, pseudo()),
        PROTO_ICMP => check_icmp(payload),
        _ => Ok(()),
    }
}

fn check_udp(udp: &[u8], pseudo: u64) -> Result<(), Malformed> {
    if udp.len() < 8 {
        return Err(Malformed::L4Header);
    }
    let len = usize::from(be16(udp, 4));
    if len < 8 || len > udp.len() {
        return Err(Malformed::L4Header);
    }
    // A zero checksum means "none" (RFC 768). The pseudo-header length is UDP's own length
    // field, which `pseudo` took from the IP payload: correct it if they differ.
    if be16(udp, 6) == 0 {
        return Ok(());
    }
    let pseudo = pseudo - udp.len() as u64 + len as u64;
    if verifies(pseudo, &udp[..len]) {
        Ok(())
    } else {
        Err(Malformed::L4Checksum)
    }
}

fn check_tcp(tcp: &[u8], pseudo: u64) -> Result<(), Malformed> {
    if tcp.len() < 20 {
        return Err(Malformed::L4Header);
    }
    let offset = usize::from(tcp[12] >> 4) * 4;
    if offset < 20 || offset > tcp.len() {
        return Err(Malformed::L4Header);
    }
    if verifies(pseudo, tcp) {
        Ok(())
    } else {
        Err(Malformed::L4Checksum)
    }
}

fn check_icmp(icmp: &[u8]) -> Result<(), Malformed> {
    if icmp.len() < 8 {
        return Err(Malformed::L4Header);
    }
    if verifies(0, icmp) {
        Ok(())
    } else {
        Err(Malformed::L4Checksum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn checksum(acc: u64, data: &[u8]) -> u16 {
        !fold(sum(acc, data))
    }

    /// An Ethernet + IPv4 frame carrying `proto`'s `l4` bytes, both checksums right
    /// (`l4_csum_at`: where the transport checksum goes, if any).
    fn frame(proto: u8, l4: &[u8], l4_csum_at: Option<usize>) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56, 2, 0, 0, 0, 0, 1, 8, 0]);
        let total = (20 + l4.len()) as u16;
        let mut ip = [
            0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0, 192, 0, 2, 1, 192, 0, 2, 50,
        ];
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

    fn udp(payload: &[u8]) -> Vec<u8> {
        let mut u = vec![0x30, 0x39, 0, 9, 0, 0, 0, 0];
        u[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(payload);
        frame(PROTO_UDP, &u, Some(6))
    }

    #[test]
    fn good_udp_tcp_icmp_and_other_ethertypes_pass() {
        assert_eq!(check(&udp(b"hello, odd")), Ok(()));
        assert_eq!(check(&udp(b"even")), Ok(()));
        let mut tcp = vec![0u8; 20];
        tcp[12] = 5 << 4;
        tcp.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(check(&frame(PROTO_TCP, &tcp, Some(16))), Ok(()));
        let icmp = [8, 0, 0, 0, 0, 1, 0, 1, 0xab];
        assert_eq!(check(&frame(PROTO_ICMP, &icmp, Some(2))), Ok(()));
        let mut arp = udp(b"x");
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(check(&arp), Ok(()), "ARP is smoltcp's to parse");
        // Ethernet padding after the IP datagram is fine.
        let mut padded = udp(b"");
        padded.extend_from_slice(&[0; 18]);
        assert_eq!(check(&padded), Ok(()));
        // UDP without a checksum.
        let mut none = udp(b"abc");
        none[14 + 20 + 6..14 + 20 + 8].fill(0);
        assert_eq!(check(&none), Ok(()));
    }

    #[test]
    fn each_kind_of_damage_is_named() {
        let good = udp(b"payload!");
        let ip = 14;
        let l4 = 14 + 20;
        assert_eq!(check(&good[..13]), Err(Malformed::Runt));
        assert_eq!(check(&[0u8; 1519]), Err(Malformed::Oversized));
        assert_eq!(check(&good[..ip + 19]), Err(Malformed::IpHeader));
        let mut v6 = good.clone();
        v6[ip] = 0x65;
        assert_eq!(check(&v6), Err(Malformed::IpHeader));
        let mut ihl = good.clone();
        ihl[ip] = 0x44;
        assert_eq!(check(&ihl), Err(Malformed::IpHeader));
        let mut ihl = good.clone();
        ihl[ip] = 0x4f; // 60 bytes of header in a 36-byte datagram
        assert_eq!(check(&ihl), Err(Malformed::IpHeader));
        let mut csum = good.clone();
        csum[ip + 8] = 1; // TTL changed, checksum not
        assert_eq!(check(&csum), Err(Malformed::IpChecksum));
        assert_eq!(check(&good[..good.len() - 1]), Err(Malformed::IpLength));
        let mut udp_len = good.clone();
        udp_len[l4 + 4..l4 + 6].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(check(&udp_len), Err(Malformed::L4Header));
        let mut udp_len = good.clone();
        udp_len[l4 + 4..l4 + 6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(check(&udp_len), Err(Malformed::L4Header));
        let mut body = good.clone();
        *body.last_mut().unwrap() ^= 0x40;
        assert_eq!(check(&body), Err(Malformed::L4Checksum));
        let mut tcp = vec![0u8; 20];
        tcp[12] = 4 << 4;
        assert_eq!(
            check(&frame(PROTO_TCP, &tcp, Some(16))),
            Err(Malformed::L4Header)
        );
        tcp[12] = 5 << 4;
        let mut bad = frame(PROTO_TCP, &tcp, Some(16));
        bad[l4 + 16] ^= 1;
        assert_eq!(check(&bad), Err(Malformed::L4Checksum));
        assert_eq!(
            check(&frame(PROTO_ICMP, &[8, 0, 0], None)),
            Err(Malformed::L4Header)
        );
        let icmp = [8, 0, 0x12, 0x34, 0, 1, 0, 1];
        assert_eq!(
            check(&frame(PROTO_ICMP, &icmp, None)),
            Err(Malformed::L4Checksum)
        );
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
        assert_eq!(check(&f), Ok(()));
    }

    #[test]
    fn a_udp_length_shorter_than_the_ip_payload_is_summed_over_its_own_length() {
        // The sender padded the IP payload past UDP's length (legal); the checksum covers
        // UDP's length only.
        let mut u = vec![0x30, 0x39, 0, 9, 0, 11, 0, 0, b'a', b'b', b'c'];
        let pseudo = sum(0, &[192, 0, 2, 1, 192, 0, 2, 50]) + u64::from(PROTO_UDP) + 11;
        let c = checksum(pseudo, &u);
        u[6..8].copy_from_slice(&c.to_be_bytes());
        u.extend_from_slice(&[0xee; 5]);
        assert_eq!(check(&frame(PROTO_UDP, &u, None)), Ok(()));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..200 {
            let mut f: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            if len > 14 {
                f[12..14].copy_from_slice(&[8, 0]);
                f[14] = 0x45;
            }
            let _ = check(&f);
        }
    }

    #[test]
    fn stats_count_by_reason() {
        let mut s = IngressStats::default();
        s.count(Malformed::Runt);
        s.count(Malformed::L4Checksum);
        s.count(Malformed::L4Checksum);
        assert_eq!(
            (s.get(Malformed::Runt), s.get(Malformed::L4Checksum)),
            (1, 2)
        );
        assert_eq!(s.total(), 3);
        assert_eq!(Malformed::ALL.map(|m| m as usize), [0, 1, 2, 3, 4, 5, 6]);
    }
}
