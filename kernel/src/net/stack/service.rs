//! The services the net task runs itself: DHCP, ICMP echo (`ping`), UDP echo and discard.
//!
//! These need no thread of their own: the task serves their sockets after every smoltcp
//! poll. `ping` is the one a caller waits on; it queues a request that the task turns
//! into an echo request and matches with its reply.

use alloc::vec;

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::phy::DeviceCapabilities;
use smoltcp::socket::{dhcpv4, icmp, udp};
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, IpAddress, IpCidr, Ipv4Address, Ipv4Cidr};

use super::{NetError, SHARED};
use crate::net::gate::Gate;
use crate::sched::{self, NotifyId};
use crate::time;

const ICMP_IDENT: u16 = 0xca95;
/// The UDP echo service's port.
pub const ECHO_PORT: u16 = 7;
/// UDP discard service (RFC 863): datagrams are counted and dropped (flood tests).
pub const DISCARD_PORT: u16 = 9;
/// A datagram to the discard port with exactly this payload marks the end of a flood.
pub const FLOOD_END: &[u8] = b"capstan-flood-end";
/// ... and this one the end of scripts/netlab.d/hostile.py's frames.
pub const HOSTILE_END: &[u8] = b"capstan-hostile-end";

/// A `ping` waiting for its reply.
pub(super) struct Ping {
    target: Ipv4Address,
    seq: u16,
    sent_ns: Option<u64>,
    result: Option<Result<u64, NetError>>,
    notify: NotifyId,
}

/// Sends one ICMP echo request to `target` and waits for the reply; returns the round trip
/// in nanoseconds.
pub fn ping(target: Ipv4Address, seq: u16, timeout_ns: u64) -> Result<u64, NetError> {
    let notify = sched::notify_create().map_err(|_| NetError::Busy)?;
    let wake = {
        let mut s = SHARED.lock();
        if s.address.is_none() {
            sched::notify_destroy(notify);
            return Err(NetError::NotConfigured);
        }
        s.fresh_remotes.push(target);
        s.pings.push(Ping {
            target,
            seq,
            sent_ns: None,
            result: None,
            notify,
        });
        s.wake
    };
    if let Some(w) = wake {
        let _ = sched::notify_post(w, 2);
    }
    let _ = sched::notify_wait(notify, time::now_ns() + timeout_ns);
    let mut s = SHARED.lock();
    let pos = s.pings.iter().position(|p| p.notify == notify);
    let result = pos.and_then(|i| s.pings.remove(i).result);
    drop(s);
    sched::notify_destroy(notify);
    result.unwrap_or(Err(NetError::Timeout))
}

/// What a DHCP poll changed.
pub(super) enum Lease {
    /// An address (and perhaps a router and name servers), now on the interface.
    Got {
        /// The address and prefix.
        address: Ipv4Cidr,
        /// The default router.
        router: Option<Ipv4Address>,
        /// Up to three name servers.
        dns: heapless::Vec<Ipv4Address, 3>,
    },
    /// The lease is gone; the interface has no address.
    Lost,
}

/// Polls the DHCP client and applies what it says to the interface (address, default
/// route) and the gate; returns the change for the caller to publish.
pub(super) fn dhcp_poll(
    iface: &mut Interface,
    sockets: &mut SocketSet<'_>,
    dhcp: SocketHandle,
    gate: &mut Gate,
) -> Option<Lease> {
    match sockets.get_mut::<dhcpv4::Socket>(dhcp).poll()? {
        dhcpv4::Event::Configured(cfg) => {
            iface.update_ip_addrs(|addrs| {
                addrs.clear();
                let _ = addrs.push(IpCidr::Ipv4(cfg.address));
            });
            match cfg.router {
                Some(r) => {
                    let _ = iface.routes_mut().add_default_ipv4_route(r);
                }
                None => {
                    iface.routes_mut().remove_default_ipv4_route();
                }
            }
            gate.set_address(
                Some((cfg.address.address().octets(), cfg.address.prefix_len())),
                cfg.router.map(|r| r.octets()),
            );
            Some(Lease::Got {
                address: cfg.address,
                router: cfg.router,
                dns: cfg.dns_servers.iter().copied().take(3).collect(),
            })
        }
        dhcpv4::Event::Deconfigured => {
            iface.update_ip_addrs(|addrs| addrs.clear());
            iface.routes_mut().remove_default_ipv4_route();
            gate.set_address(None, None);
            Some(Lease::Lost)
        }
    }
}

/// The primary interface's DHCP: `dhcp_poll`, published in `SHARED` and logged.
pub(super) fn dhcp_events(
    iface: &mut Interface,
    sockets: &mut SocketSet<'_>,
    dhcp: SocketHandle,
    gate: &mut Gate,
) {
    match dhcp_poll(iface, sockets, dhcp, gate) {
        Some(Lease::Got {
            address,
            router,
            dns,
        }) => {
            let mut s = SHARED.lock();
            s.address = Some(address);
            s.gateway = router;
            s.dns_servers = dns.clone();
            drop(s);
            // Logged once the interface and the gate use the address: scripts/test pings us
            // the moment it reads this line.
            match router {
                Some(r) => log::info!("net: DHCP lease {address} via {r}"),
                None => log::info!("net: DHCP lease {address} (no router)"),
            }
            if log::log_enabled!(log::Level::Debug) {
                let dns: alloc::vec::Vec<_> =
                    dns.iter().map(alloc::string::ToString::to_string).collect();
                let dns = if dns.is_empty() {
                    alloc::string::String::from("none")
                } else {
                    dns.join(" ")
                };
                log::debug!("net: DHCP name servers: {dns}");
            }
        }
        Some(Lease::Lost) => {
            let mut s = SHARED.lock();
            if s.address.is_some() {
                log::info!("net: DHCP lease lost");
            }
            s.address = None;
            s.gateway = None;
            s.dns_servers.clear();
        }
        None => {}
    }
}

/// The UDP echo service (RFC 862): every datagram to port 7 goes back to its sender
/// (one larger than the MTU, reassembled on the way in, leaves in fragments).
pub(super) fn udp_echo(sockets: &mut SocketSet<'_>, echo: SocketHandle) {
    let socket = sockets.get_mut::<udp::Socket>(echo);
    let mut n = 0;
    let mut buf = [0u8; 2048];
    while socket.can_send() {
        let Ok((data, meta)) = socket.recv() else {
            break;
        };
        let endpoint = meta.endpoint;
        let sent = if data.len() <= buf.len() {
            let len = data.len();
            buf[..len].copy_from_slice(data);
            socket.send_slice(&buf[..len], endpoint)
        } else {
            let big = data.to_vec();
            socket.send_slice(&big, endpoint)
        };
        if sent.is_err() {
            break;
        }
        n += 1;
    }
    if n > 0 {
        SHARED.lock().echoed += n;
    }
}

/// The discard service: counts and drops datagrams (and those that did not fit one
/// 1500-byte frame); notes flood-end markers.
pub(super) fn udp_discard(sockets: &mut SocketSet<'_>, discard: SocketHandle) {
    let socket = sockets.get_mut::<udp::Socket>(discard);
    let (mut n, mut large, mut ends, mut hostile) = (0, 0, 0, 0);
    while let Ok((data, _)) = socket.recv() {
        n += 1;
        large += u64::from(data.len() > 1472);
        ends += u64::from(data == FLOOD_END);
        hostile += u64::from(data == HOSTILE_END);
    }
    if n > 0 {
        let mut s = SHARED.lock();
        s.discarded += n;
        s.discarded_large += large;
        s.flood_ends += ends;
        s.hostile_ends += hostile;
    }
}

/// The socket `ping` sends through, bound to our echo identifier.
pub(super) fn icmp_socket() -> icmp::Socket<'static> {
    let buf = || icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 16], vec![0; 4096]);
    let mut socket = icmp::Socket::new(buf(), buf());
    let _ = socket.bind(icmp::Endpoint::Ident(ICMP_IDENT));
    socket
}

/// Sends queued echo requests and matches replies.
pub(super) fn pings(sockets: &mut SocketSet<'_>, icmp: &mut SocketHandle) {
    let mut s = SHARED.lock();
    // A request can stay queued for a host that never answers ARP after its ping gave
    // up. smoltcp rate-limits ARP per interface (one request a second, any address)
    // and this socket comes first, so that request would re-arm the limit every second
    // and starve every socket's first packet to a new neighbour for good, and block
    // later pings queued behind it. Nothing dequeues it but a fresh socket, which is
    // safe once no ping is waiting on a request already handed to the socket.
    let waiting = s.pings.iter().any(|p| p.sent_ns.is_some());
    if !waiting && sockets.get::<icmp::Socket>(*icmp).send_queue() > 0 {
        sockets.remove(*icmp);
        *icmp = sockets.add(icmp_socket());
    }
    let socket = sockets.get_mut::<icmp::Socket>(*icmp);
    let caps = DeviceCapabilities::default().checksum;
    for p in s.pings.iter_mut().filter(|p| p.sent_ns.is_none()) {
        let repr = Icmpv4Repr::EchoRequest {
            ident: ICMP_IDENT,
            seq_no: p.seq,
            data: b"capstan",
        };
        let Ok(buf) = socket.send(repr.buffer_len(), IpAddress::Ipv4(p.target)) else {
            break;
        };
        repr.emit(&mut Icmpv4Packet::new_unchecked(buf), &caps);
        p.sent_ns = Some(time::now_ns());
    }
    while let Ok((data, from)) = socket.recv() {
        let Ok(packet) = Icmpv4Packet::new_checked(data) else {
            continue;
        };
        let Ok(Icmpv4Repr::EchoReply { seq_no, .. }) = Icmpv4Repr::parse(&packet, &caps) else {
            continue;
        };
        let done = s
            .pings
            .iter_mut()
            .find(|p| p.seq == seq_no && IpAddress::Ipv4(p.target) == from && p.result.is_none());
        if let Some(p) = done {
            let rtt = time::now_ns() - p.sent_ns.unwrap_or(0);
            p.result = Some(Ok(rtt));
            let _ = sched::notify_post(p.notify, 1);
        }
    }
}
