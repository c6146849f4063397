//! Interface set-up: the smoltcp interface over the NIC and the sockets the task serves.
//!
//! Everything here runs once when the net task starts; the interface then lives for the
//! task's lifetime and survives device resets (it keeps its address and sockets while
//! the NIC under it is replaced).

use alloc::vec;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress};

use super::phy::Phy;
use super::service::{DISCARD_PORT, ECHO_PORT, icmp_socket};
use super::socket::PORT_SEED;
use crate::net::gate::Gate;
use crate::net::virtio::VirtioNic;
use crate::time;

/// smoltcp's clock: microseconds since boot.
pub(super) fn now() -> Instant {
    Instant::from_micros((time::now_ns() / 1000) as i64)
}

/// Datagrams the discard service's socket holds between two polls: more than a batch
/// (`virtio::BUDGET`) can bring, so the socket never drops.
const DISCARD_SLOTS: usize = 512;

/// The sockets of the services the task runs itself.
pub(super) struct Services {
    /// The DHCP client.
    pub(super) dhcp: SocketHandle,
    /// `ping`'s ICMP socket (replaced when a request for a silent host is stuck in it).
    pub(super) icmp: SocketHandle,
    /// UDP echo (port 7).
    pub(super) echo: SocketHandle,
    /// UDP discard (port 9).
    pub(super) discard: SocketHandle,
}

/// The smoltcp interface for `nic`, with a per-boot random seed (`tcp_csum_ours`: smoltcp
/// leaves TCP checksums to the task; it reads the capabilities once, here).
pub(super) fn interface(nic: &mut VirtioNic, gate: &mut Gate, tcp_csum_ours: bool) -> Interface {
    let mac = nic.net.mac();
    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    let seed = seed(mac);
    config.random_seed = seed;
    PORT_SEED.store(seed as u32, core::sync::atomic::Ordering::Relaxed);
    let mut budget = 0;
    let mut phy = Phy::new(nic, gate, &mut budget, tcp_csum_ours);
    Interface::new(config, &mut phy, now())
}

/// Opens the services' sockets in `sockets`.
pub(super) fn services(sockets: &mut SocketSet<'_>) -> Services {
    let dhcp = sockets.add(dhcpv4::Socket::new());
    let icmp = sockets.add(icmp_socket());
    let echo_buf =
        || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 64 * 1024]);
    let mut echo_socket = udp::Socket::new(echo_buf(), echo_buf());
    let _ = echo_socket.bind(ECHO_PORT);
    let echo = sockets.add(echo_socket);
    let discard_buf = || {
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; DISCARD_SLOTS],
            vec![0; 64 * 1024],
        )
    };
    let mut discard_socket = udp::Socket::new(discard_buf(), discard_buf());
    let _ = discard_socket.bind(DISCARD_PORT);
    let discard = sockets.add(discard_socket);
    Services {
        dhcp,
        icmp,
        echo,
        discard,
    }
}

/// A per-boot random seed for an interface with `mac`. A fixed seed would give every boot
/// the same TCP initial sequence numbers and ports: a new connection then collides with the
/// previous boot's in the server's TIME_WAIT and stalls until its SYN is retransmitted
/// (RFC 6528, 6056). No RNG on cortex-a72 or virt: the boot-relative counter varies with
/// the host's timing.
pub(super) fn seed(mac: [u8; 6]) -> u64 {
    splitmix64(
        crate::arch::cpu::counter()
            ^ u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0]),
    )
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// IPv4 fragments one datagram can take (64 KiB in 1480-byte pieces).
const MAX_FRAGMENTS: usize = 45;

/// Sends now what smoltcp wants sent now, above all the rest of a fragmented datagram.
///
/// smoltcp puts out one IPv4 fragment per egress pass and starts a new fragmented datagram
/// over one still in progress: a 3000-byte echo reply whose last fragment waited for the
/// task's next turn was cut short by the next big reply (its last fragment never left).
/// Called after every poll, so a datagram's fragments leave together. Bounded.
pub(super) fn flush_egress<D: smoltcp::phy::Device + ?Sized>(
    iface: &mut Interface,
    device: &mut D,
    sockets: &mut SocketSet<'static>,
) {
    for _ in 0..MAX_FRAGMENTS {
        if iface.poll_delay(now(), sockets) != Some(smoltcp::time::Duration::ZERO) {
            break;
        }
        iface.poll_egress(now(), device, sockets);
    }
}
