//! Sockets for user processes: UDP, TCP (client, listener, accepted) and ICMP echo.
//!
//! A process holds a [`Socket`] (through a `Socket` capability); the net task owns the
//! smoltcp socket behind it. As with the kernel's sessions, the two meet in `SHARED`:
//! the caller queues what it sends and takes what arrived, the task moves bytes between
//! those queues and smoltcp after every poll and posts the socket's notification (and
//! the owner's chosen event bits) when it became readable, connected, or writable again.
//! Every queue is bounded, so a process's socket memory is at most
//! `abi::net::MAX_SOCKETS_PER_PROCESS` times one socket's buffers (the table in
//! docs/net.md).
//!
//! Dropping the `Socket` closes it: UDP and ICMP once the datagrams already given to it
//! have left (at most `LINGER_NS`), TCP with a FIN (the task
//! keeps the smoltcp socket until the close completes or `LINGER_NS` passes, then
//! aborts it with a RST). A process that dies drops its capabilities, so its sockets
//! close this way and nothing stays behind.
//!
//! This file holds the shared half and the `/proc/net` listing; `api.rs` is the
//! process's side (the `Socket` calls), `task.rs` the net task's (smoltcp).

mod api;
mod task;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use smoltcp::iface::SocketHandle;
use smoltcp::wire::Ipv4Address;

use super::{IfaceId, PRIMARY, SHARED};
use crate::sched::{self, NotifyId};

pub(super) use task::serve;

/// Sockets in the whole system (user and accepted-but-not-yet-taken); a process holds
/// at most `abi::net::MAX_SOCKETS_PER_PROCESS` (the process layer counts its table).
const MAX_SOCKETS: usize = 256;
/// Largest UDP payload sent or received (a reassembled datagram may be this large).
const MAX_DATAGRAM: usize = abi::net::MAX_DATAGRAM;
/// Datagrams a UDP or ICMP socket queues each way.
const DATAGRAMS_QUEUED: usize = 32;
/// Bytes a UDP socket's smoltcp buffers hold each way.
const UDP_BUFFER: usize = 64 * 1024;
/// TCP receive window (the smoltcp buffer) of a connection this side opened: the
/// window/round-trip product bounds a download, and a user-mode NIC's round trip is
/// longer (16 MiB through it: 275 MiB/s with 256 KiB, 385 with 1 MiB).
const TCP_RX: usize = 1024 * 1024;
/// TCP receive window of listening and accepted connections: a listener keeps up to
/// `MAX_BACKLOG` sockets listening, each with its buffers allocated.
const TCP_RX_ACCEPTED: usize = 256 * 1024;
/// Received TCP bytes queued for the owner, beyond the window.
const TCP_RX_QUEUED: usize = 128 * 1024;
/// TCP send buffer, and bytes the owner may queue beyond it.
const TCP_TX: usize = 64 * 1024;
/// Connections a listener keeps ready (its smoltcp listening sockets).
const MAX_BACKLOG: usize = 8;
/// How long a closed TCP connection may take to finish its FIN exchange.
const LINGER_NS: u64 = 5_000_000_000;
/// A UDP or ICMP datagram that cannot leave this long (its next hop does not answer
/// ARP) is dropped with everything queued behind it.
const STUCK_TX_NS: u64 = 3_000_000_000;

/// Randomises the ephemeral ports per boot (set when the interface comes up).
pub(super) static PORT_SEED: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// The first port of the dynamic range the kernel picks local ports from.
const EPHEMERAL_FIRST: u16 = 49152;

/// A socket's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// UDP datagrams.
    Udp,
    /// A TCP stream (or listener).
    Tcp,
    /// ICMP echo (the kernel fills in the identifier and checksum).
    Icmp,
}

/// Why a socket call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockError {
    /// The interface has no address yet (DHCP) or the stack is not running.
    NotConfigured,
    /// The deadline passed.
    Timeout,
    /// Nothing to take now and no wait was asked for.
    WouldBlock,
    /// The peer refused the connection.
    Refused,
    /// The connection was reset.
    Reset,
    /// Not connected (TCP send before connect, after shutdown).
    NotConnected,
    /// The port is taken.
    AddrInUse,
    /// The call does not fit the socket's state or protocol (listen on UDP, bind twice).
    BadState,
    /// A malformed argument (an ICMP message that is not an echo request, a datagram
    /// over `MAX_DATAGRAM`).
    Invalid,
    /// Too many sockets, or no memory for one's buffers.
    NoMemory,
    /// The caller was killed while it waited.
    Cancelled,
}

/// What the socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// UDP or ICMP, or TCP before connect/listen.
    Fresh,
    /// TCP connecting or connected to a remote.
    Stream,
    /// TCP listening.
    Listener { backlog: usize },
}

/// A datagram and its remote end.
struct Datagram {
    data: Vec<u8>,
    remote: (Ipv4Address, u16),
}

/// The shared half of one socket.
pub(super) struct SockState {
    id: u64,
    owner: u32,
    /// The interface it uses (`IfaceId`): chosen by `bind` with an address, or by the
    /// first remote it talks to (the interface whose subnet holds it, else the primary).
    iface: IfaceId,
    /// `iface` is decided.
    pinned: bool,
    proto: Proto,
    role: Role,
    /// Bound local port (UDP/TCP), or the ICMP identifier.
    local: Option<u16>,
    /// Connected remote (TCP), or the UDP filter set by `connect`.
    remote: Option<(Ipv4Address, u16)>,
    /// The smoltcp sockets: one, or a listener's listening sockets.
    handles: Vec<SocketHandle>,
    out_datagrams: VecDeque<Datagram>,
    in_datagrams: VecDeque<Datagram>,
    out_stream: VecDeque<u8>,
    /// Received stream bytes for the owner (a ring: a read takes from the front
    /// without moving what stays).
    in_stream: VecDeque<u8>,
    /// Accepted connections waiting for `accept` (their ids).
    ready: VecDeque<u64>,
    /// A listener's connection not yet handed out: which listener it came from.
    accepted_by: Option<u64>,
    /// Came from a listener: shares the listener's port without holding it.
    from_listener: bool,
    established: bool,
    /// The owner shut down sending (TCP: FIN queued after `out_stream`).
    write_shut: bool,
    /// The stream ended: `Ok` at the peer's FIN, or how it died.
    ended: Option<Result<(), SockError>>,
    notify: NotifyId,
    /// The owner's notification word and the bits to set there on news.
    events: Option<(NotifyId, u64)>,
    /// The owner dropped it; `closing_since` once its TCP close started.
    closed: bool,
    closing_since: Option<u64>,
    /// Since when a datagram has waited to leave (next hop unresolved).
    stuck_since: Option<u64>,
    rx_bytes: u64,
    tx_bytes: u64,
    tx_dropped: u64,
}

impl SockState {
    fn new(id: u64, owner: u32, proto: Proto, notify: NotifyId) -> SockState {
        SockState {
            id,
            owner,
            iface: PRIMARY,
            pinned: false,
            proto,
            role: Role::Fresh,
            local: None,
            remote: None,
            handles: Vec::new(),
            out_datagrams: VecDeque::new(),
            in_datagrams: VecDeque::new(),
            out_stream: VecDeque::new(),
            in_stream: VecDeque::new(),
            ready: VecDeque::new(),
            accepted_by: None,
            from_listener: false,
            established: false,
            write_shut: false,
            ended: None,
            notify,
            events: None,
            closed: false,
            closing_since: None,
            stuck_since: None,
            rx_bytes: 0,
            tx_bytes: 0,
            tx_dropped: 0,
        }
    }

    fn post(&self) {
        let _ = sched::notify_post(self.notify, 1);
        if let Some((word, bits)) = self.events {
            let _ = sched::notify_post(word, bits);
        }
    }

    /// `post` from the net task: the owner is woken on this CPU, and the task may yield
    /// to it next (see `poll::Stack::services`). How many threads were woken.
    fn post_here(&self) -> usize {
        let mut woke = usize::from(sched::notify_post_here(self.notify, 1).unwrap_or(false));
        if let Some((word, bits)) = self.events {
            woke += usize::from(sched::notify_post_here(word, bits).unwrap_or(false));
        }
        woke
    }

    /// Whether a read would not block (data, a connection, or the end).
    fn readable(&self) -> bool {
        !self.in_datagrams.is_empty()
            || !self.in_stream.is_empty()
            || !self.ready.is_empty()
            || self.ended.is_some()
    }

    /// Whether a send would not wait for room (the owner's queues are not full).
    fn writable(&self) -> bool {
        self.out_datagrams.len() < DATAGRAMS_QUEUED && self.out_stream.len() < TCP_TX
    }
}

/// A socket a process holds. Dropping it closes the socket (see the module note).
#[derive(Debug)]
pub struct Socket {
    id: u64,
    notify: NotifyId,
    proto: Proto,
}

/// One line of `/proc/net`.
#[derive(Debug, Clone, Copy)]
pub struct SocketInfo {
    /// Protocol.
    pub proto: Proto,
    /// Owner pid.
    pub owner: u32,
    /// Local port (or ICMP identifier).
    pub local: Option<u16>,
    /// Remote end.
    pub remote: Option<(Ipv4Address, u16)>,
    /// State, as a word.
    pub state: &'static str,
    /// Payload bytes received and sent.
    pub rx_bytes: u64,
    /// Payload bytes sent.
    pub tx_bytes: u64,
    /// Datagrams dropped because their next hop never answered.
    pub tx_dropped: u64,
    /// The interface (0: the kernel's NIC; others: `NetIf` interfaces).
    pub iface: IfaceId,
}

/// Every socket, for `/proc/net`.
pub fn list() -> Vec<SocketInfo> {
    SHARED
        .lock()
        .socks
        .iter()
        .filter(|s| !s.closed || s.closing_since.is_some())
        .map(|s| SocketInfo {
            proto: s.proto,
            owner: s.owner,
            local: s.local,
            remote: s.remote,
            state: state_word(s),
            rx_bytes: s.rx_bytes,
            tx_bytes: s.tx_bytes,
            tx_dropped: s.tx_dropped,
            iface: s.iface,
        })
        .collect()
}

fn state_word(s: &SockState) -> &'static str {
    match (s.role, s.ended, s.closed) {
        (_, _, true) => "closing",
        (_, Some(Ok(())), _) => "eof",
        (_, Some(Err(_)), _) => "failed",
        (Role::Listener { .. }, _, _) => "listen",
        (Role::Stream, _, _) if s.accepted_by.is_some() => "unaccepted",
        (Role::Stream, _, _) if s.established => "established",
        (Role::Stream, _, _) => "connecting",
        (Role::Fresh, _, _) if s.local.is_some() => "bound",
        (Role::Fresh, _, _) => "open",
    }
}
