//! Transport headers and the internet checksum (RFC 768, 793, 792, 1071).
//!
//! The gate checks UDP, TCP and ICMP headers and checksums of unfragmented datagrams,
//! unless the device vouched for the checksum; on the way out, TCP frames get the
//! pseudo-header sum the device completes (`CSUM`), or a whole checksum computed here.

use drivers::virtio::net::RxCsum;

use super::{Context, Dropped, ETH_HEADER, ETHERTYPE_IPV4, PROTO_ICMP, PROTO_TCP, PROTO_UDP, be16};

/// The ones'-complement sum of `data` (RFC 1071), added to `acc`, unfolded. Sums 32-bit
/// big-endian words (two 16-bit words at once: the carries fold back the same way).
pub fn sum(mut acc: u64, data: &[u8]) -> u64 {
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

/// Folds a sum to 16 bits.
pub fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Whether `data` (checksum field included) sums to all ones, i.e. its checksum is right.
pub(super) fn verifies(acc: u64, data: &[u8]) -> bool {
    fold(sum(acc, data)) == 0xffff
}

/// The transport header, and its checksum unless the device's offload covers it.
pub(super) fn check_transport(
    ip: &[u8],
    ihl: usize,
    payload: &[u8],
    ctx: &Context,
) -> Result<(), Dropped> {
    let proto = ip[9];
    let verify = match ctx.csum {
        RxCsum::Unchecked => true,
        RxCsum::Valid => false,
        RxCsum::Partial { start, offset } => {
            let field = match proto {
                PROTO_TCP => 16,
                PROTO_UDP => 6,
                _ => return Err(Dropped::BadOffload),
            };
            if usize::from(start) != ETH_HEADER + ihl || offset != field {
                return Err(Dropped::BadOffload);
            }
            false
        }
    };
    if ctx.gso && proto != PROTO_TCP {
        return Err(Dropped::BadOffload);
    }
    let pseudo = || {
        let acc = sum(0, &ip[12..20]); // source and destination addresses
        acc + u64::from(proto) + payload.len() as u64
    };
    match proto {
        PROTO_UDP => check_udp(payload, verify.then(pseudo)),
        PROTO_TCP => check_tcp(payload, verify.then(pseudo)),
        PROTO_ICMP => check_icmp(payload, verify),
        _ => Ok(()),
    }
}

fn check_udp(udp: &[u8], pseudo: Option<u64>) -> Result<(), Dropped> {
    if udp.len() < 8 {
        return Err(Dropped::L4Header);
    }
    let len = usize::from(be16(udp, 4));
    if len < 8 || len > udp.len() {
        return Err(Dropped::L4Header);
    }
    // A zero checksum means "none" (RFC 768). The pseudo-header length is UDP's own length
    // field, which `pseudo` took from the IP payload: correct it if they differ.
    let Some(pseudo) = pseudo.filter(|_| be16(udp, 6) != 0) else {
        return Ok(());
    };
    let pseudo = pseudo - udp.len() as u64 + len as u64;
    if verifies(pseudo, &udp[..len]) {
        Ok(())
    } else {
        Err(Dropped::L4Checksum)
    }
}

fn check_tcp(tcp: &[u8], pseudo: Option<u64>) -> Result<(), Dropped> {
    if tcp.len() < 20 {
        return Err(Dropped::L4Header);
    }
    let offset = usize::from(tcp[12] >> 4) * 4;
    if offset < 20 || offset > tcp.len() {
        return Err(Dropped::L4Header);
    }
    match pseudo {
        Some(p) if !verifies(p, tcp) => Err(Dropped::L4Checksum),
        _ => Ok(()),
    }
}

fn check_icmp(icmp: &[u8], verify: bool) -> Result<(), Dropped> {
    if icmp.len() < 8 {
        return Err(Dropped::L4Header);
    }
    if verify && !verifies(0, icmp) {
        return Err(Dropped::L4Checksum);
    }
    Ok(())
}

/// A TCP/IPv4 frame smoltcp built without its TCP checksum (`Checksum::None`: the field
/// is zero): with `device` (the device completes it, `CSUM`), writes the pseudo-header
/// sum into the field and returns (`csum_start`, `csum_offset`) for the virtio header;
/// without, computes the whole checksum here. Other frames are left alone (`None`).
pub fn tcp_partial_checksum(frame: &mut [u8], device: bool) -> Option<(u16, u16)> {
    if frame.len() < ETH_HEADER + 20 || be16(frame, 12) != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = &frame[ETH_HEADER..];
    let ihl = usize::from(ip[0] & 0xf) * 4;
    let total = usize::from(be16(ip, 2));
    let fragment = be16(ip, 6) & 0x3fff != 0;
    if ip[9] != PROTO_TCP || fragment || ihl < 20 || total < ihl + 20 || total > ip.len() {
        return None;
    }
    let pseudo = sum(0, &ip[12..20]) + u64::from(PROTO_TCP) + (total - ihl) as u64;
    let start = ETH_HEADER + ihl;
    let end = ETH_HEADER + total;
    let field = start + 16;
    if device {
        frame[field..field + 2].copy_from_slice(&fold(pseudo).to_be_bytes());
        Some((start as u16, 16))
    } else {
        frame[field..field + 2].fill(0);
        let c = !fold(sum(pseudo, &frame[start..end]));
        frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
        None
    }
}
