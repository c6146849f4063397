//! DHCP steps for `log=debug`, read off the frames the net task sends and receives.
//!
//! smoltcp's DHCP client reports only "configured" and "deconfigured"; the steps in
//! between (discover, offer, request, ack, and the renewals of a lease) are visible only
//! on the wire. The net task hands each frame here when debug logging is on; this module
//! finds the DHCP message in it (Ethernet, IPv4 without fragmentation, UDP between ports
//! 67 and 68, the BOOTP fixed part and options: RFC 2131, RFC 2132) and says it in words.

use core::fmt;

/// A DHCP message, as much as the log says of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DhcpStep {
    /// Option 53, DHCP message type (1 discover … 8 inform).
    pub kind: u8,
    /// `ciaddr`: the client's address, set when it renews a lease it has.
    pub client: [u8; 4],
    /// `yiaddr`: the address offered or acknowledged.
    pub yours: [u8; 4],
    /// Option 54, the server identifier.
    pub server: Option<[u8; 4]>,
    /// Option 50, the address a request asks for.
    pub requested: Option<[u8; 4]>,
    /// Option 51, the lease time in seconds.
    pub lease_s: Option<u32>,
}

const DISCOVER: u8 = 1;
const OFFER: u8 = 2;
const REQUEST: u8 = 3;
const DECLINE: u8 = 4;
const ACK: u8 = 5;
const NAK: u8 = 6;
const RELEASE: u8 = 7;
const INFORM: u8 = 8;

/// The DHCP message `frame` (an Ethernet frame) carries, if it is one.
pub fn dhcp_step(frame: &[u8]) -> Option<DhcpStep> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0xf) * 4;
    let fragmented = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x3fff != 0;
    if ip[0] >> 4 != 4 || ihl < 20 || *ip.get(9)? != 17 || fragmented {
        return None;
    }
    let udp = ip.get(ihl..)?;
    let ports = (
        u16::from_be_bytes([*udp.first()?, *udp.get(1)?]),
        u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]),
    );
    if !matches!(ports, (68, 67) | (67, 68)) {
        return None;
    }
    let bootp = udp.get(8..)?;
    if bootp.get(236..240)? != [99, 130, 83, 99] {
        return None;
    }
    let addr = |at: usize| -> Option<[u8; 4]> { bootp.get(at..at + 4)?.try_into().ok() };
    let mut step = DhcpStep {
        kind: 0,
        client: addr(12)?,
        yours: addr(16)?,
        server: None,
        requested: None,
        lease_s: None,
    };
    let mut opts = &bootp[240..];
    while let Some((&code, rest)) = opts.split_first() {
        match code {
            0 => {
                opts = rest;
                continue;
            }
            255 => break,
            _ => {}
        }
        let (&len, rest) = rest.split_first()?;
        let data = rest.get(..usize::from(len))?;
        let four: Option<[u8; 4]> = data.try_into().ok();
        match code {
            53 => step.kind = *data.first()?,
            54 => step.server = four,
            50 => step.requested = four,
            51 => step.lease_s = four.map(u32::from_be_bytes),
            _ => {}
        }
        opts = &rest[usize::from(len)..];
    }
    (step.kind != 0).then_some(step)
}

/// An IPv4 address as people write it.
struct Ip([u8; 4]);

impl fmt::Display for Ip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// ` from <server>`, or nothing without a server identifier.
struct Server(Option<[u8; 4]>);

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, " from {}", Ip(s)),
            None => Ok(()),
        }
    }
}

/// `DHCP offer of 10.0.2.15 from 10.0.2.2`, `DHCP request to renew 10.0.2.15`, …
impl fmt::Display for DhcpStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let server = Server(self.server);
        match self.kind {
            DISCOVER => write!(f, "DHCP discover"),
            OFFER => write!(f, "DHCP offer of {}{server}", Ip(self.yours)),
            REQUEST if self.client != [0; 4] => {
                write!(f, "DHCP request to renew {}", Ip(self.client))
            }
            REQUEST => match self.requested {
                Some(r) => write!(f, "DHCP request for {}{server}", Ip(r)),
                None => write!(f, "DHCP request"),
            },
            ACK => {
                write!(f, "DHCP ack: {}{server}", Ip(self.yours))?;
                match self.lease_s {
                    Some(s) => write!(f, ", lease {s} s"),
                    None => Ok(()),
                }
            }
            NAK => write!(f, "DHCP nak{server}"),
            DECLINE => write!(f, "DHCP decline"),
            RELEASE => write!(f, "DHCP release of {}", Ip(self.client)),
            INFORM => write!(f, "DHCP inform"),
            other => write!(f, "DHCP message of type {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + UDP frame with a BOOTP body and `options` (end added).
    fn frame(ports: (u16, u16), ciaddr: [u8; 4], yiaddr: [u8; 4], options: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&ports.0.to_be_bytes());
        f.extend_from_slice(&ports.1.to_be_bytes());
        f.extend_from_slice(&[0; 4]);
        let mut bootp = vec![0u8; 236];
        bootp[12..16].copy_from_slice(&ciaddr);
        bootp[16..20].copy_from_slice(&yiaddr);
        bootp.extend_from_slice(&[99, 130, 83, 99]);
        bootp.extend_from_slice(options);
        bootp.push(255);
        f.extend_from_slice(&bootp);
        f
    }

    fn said(f: &[u8]) -> String {
        dhcp_step(f).map(|s| s.to_string()).unwrap_or_default()
    }

    #[test]
    fn the_steps_of_a_lease_in_words() {
        let discover = frame((68, 67), [0; 4], [0; 4], &[53, 1, 1]);
        assert_eq!(said(&discover), "DHCP discover");
        let offer = frame(
            (67, 68),
            [0; 4],
            [10, 0, 2, 15],
            &[53, 1, 2, 54, 4, 10, 0, 2, 2],
        );
        assert_eq!(said(&offer), "DHCP offer of 10.0.2.15 from 10.0.2.2");
        let opts = [53, 1, 3, 0, 50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2];
        let request = frame((68, 67), [0; 4], [0; 4], &opts);
        assert_eq!(said(&request), "DHCP request for 10.0.2.15 from 10.0.2.2");
        let ack_opts = [53, 1, 5, 54, 4, 10, 0, 2, 2, 51, 4, 0, 1, 0x51, 0x80];
        let ack = frame((67, 68), [0; 4], [10, 0, 2, 15], &ack_opts);
        assert_eq!(
            said(&ack),
            "DHCP ack: 10.0.2.15 from 10.0.2.2, lease 86400 s"
        );
        let renew = frame((68, 67), [10, 0, 2, 15], [0; 4], &[53, 1, 3]);
        assert_eq!(said(&renew), "DHCP request to renew 10.0.2.15");
    }

    #[test]
    fn other_frames_are_not_dhcp() {
        let mut dns = frame((68, 67), [0; 4], [0; 4], &[53, 1, 1]);
        dns[34..36].copy_from_slice(&53u16.to_be_bytes());
        assert_eq!(dhcp_step(&dns), None);
        let no_type = frame((68, 67), [0; 4], [0; 4], &[]);
        assert_eq!(dhcp_step(&no_type), None);
        let truncated = frame((68, 67), [0; 4], [0; 4], &[53, 1, 1]);
        assert_eq!(dhcp_step(&truncated[..200]), None);
        let bad_option = frame((68, 67), [0; 4], [0; 4], &[53, 9, 1]);
        assert_eq!(dhcp_step(&bad_option), None);
        let mut arp = frame((68, 67), [0; 4], [0; 4], &[53, 1, 1]);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(dhcp_step(&arp), None);
    }
}
